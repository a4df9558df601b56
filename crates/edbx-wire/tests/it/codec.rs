//! Request and response codecs: every variant, the `has*` flags, hostile input.

use capnp::message::Builder;
use edbx_wire::generated::control_capnp::{control_request, control_response};
use edbx_wire::*;
use proptest::prelude::*;

/// A protocol struct with the given fields and the rest at their defaults. The structs are
/// `#[non_exhaustive]`, so other crates cannot write them as literals.
macro_rules! wire {
    ($ty:ident { $($field:ident $(: $value:expr)?),* $(,)? }) => {{
        let mut value = $ty::default();
        $(wire!(@set value, $field $(, $value)?);)*
        value
    }};
    (@set $v:ident, $field:ident, $value:expr) => { $v.$field = $value; };
    (@set $v:ident, $field:ident) => { $v.$field = $field; };
}

const TOKEN: &str = "tok.en";

fn s(value: &str) -> String {
    value.to_owned()
}

fn targets() -> Vec<PublishTarget> {
    vec![
        wire!(PublishTarget {
            plugin: s("search"),
            mode: Some(s("event-only")),
            priority: Some(s("high")),
        }),
        wire!(PublishTarget {
            plugin: s("audit"),
            mode: None,
            priority: None,
        }),
    ]
}

/// Every request variant with every optional field set (`Some`, non-default values).
fn requests_all_some() -> Vec<Request> {
    vec![
        Request::ListAggregates(wire!(ListAggregates {
            cursor: Some(s("a:order:o-1")),
            take: Some(25),
            filter: Some(s("status = 'paid'")),
            sort: Some(s("created_at:desc")),
            include_archived: true,
            archived_only: true,
            resolve: true,
            resolve_depth: Some(3),
        })),
        Request::GetAggregate(wire!(GetAggregate {
            aggregate_type: s("order"),
            aggregate_id: s("o-1"),
            resolve: true,
            resolve_depth: Some(5),
        })),
        Request::ListEvents(wire!(ListEvents {
            aggregate_type: s("order"),
            aggregate_id: s("o-1"),
            cursor: Some(s("a:order:o-1:3")),
            take: Some(0),
            filter: Some(s("version > 1")),
        })),
        Request::AppendEvent(wire!(AppendEvent {
            aggregate_type: s("order"),
            aggregate_id: s("o-1"),
            event_type: s("order.paid"),
            payload_json: s(r#"{"status":"paid"}"#),
            note: Some(s("")),
            metadata_json: Some(s(r#"{"@trace":{"id":"t"}}"#)),
            publish_targets: Some(targets()),
        })),
        Request::VerifyAggregate(wire!(AggregateRef {
            aggregate_type: s("order"),
            aggregate_id: s("o-1"),
        })),
        Request::PatchEvent(wire!(PatchEvent {
            aggregate_type: s("order"),
            aggregate_id: s("o-1"),
            event_type: s("order_patched"),
            patch_json: s(r#"[{"op":"replace","path":"/status","value":"x"}]"#),
            note: Some(s("why")),
            metadata_json: Some(s("{}")),
            publish_targets: Some(Vec::new()),
        })),
        Request::SelectAggregate(wire!(SelectAggregate {
            aggregate_type: s("order"),
            aggregate_id: s("o-1"),
            fields: vec![s("addr.city"), s(""), s("tags.0")],
        })),
        Request::CreateAggregate(wire!(AppendEvent {
            aggregate_type: s("order"),
            aggregate_id: s("o-2"),
            event_type: s("order_created"),
            payload_json: s(r#"{"qty":3}"#),
            note: Some(s("first")),
            metadata_json: Some(s(r#"{"@a":1}"#)),
            publish_targets: Some(targets()),
        })),
        Request::SetAggregateArchive(wire!(SetArchive {
            aggregate_type: s("order"),
            aggregate_id: s("o-1"),
            archived: true,
            note: Some(s("done")),
        })),
        Request::ListSchemas,
        Request::ReplaceSchemas(wire!(ReplaceSchemas {
            schemas_json: s(r#"{"order":{}}"#),
        })),
        Request::TenantAssign(wire!(TenantAssign {
            tenant_id: s("acme"),
            shard_id: s("shard-0001"),
        })),
        Request::TenantUnassign(s("acme")),
        Request::TenantQuotaSet(wire!(TenantQuotaSet {
            tenant_id: s("acme"),
            max_storage_mb: u64::MAX,
        })),
        Request::TenantQuotaClear(s("acme")),
        Request::TenantQuotaRecalc(s("acme")),
        Request::TenantReload(s("acme")),
        Request::TenantSchemaPublish(wire!(TenantSchemaPublish {
            tenant_id: s("acme"),
            reason: Some(s("release")),
            actor: Some(s("ci")),
            labels: vec![s("stable"), s("v2")],
            activate: true,
            force: true,
            reload: true,
        })),
        Request::CreateSnapshot(wire!(CreateSnapshot {
            aggregate_type: s("order"),
            aggregate_id: s("o-1"),
            comment: Some(s("snap")),
        })),
        Request::ListSnapshots(wire!(ListSnapshots {
            aggregate_type: Some(s("order")),
            aggregate_id: Some(s("o-1")),
            version: Some(7),
        })),
        Request::GetSnapshot(1_234_567_890_123_456_789),
        Request::ListReferrers(wire!(AggregateRef {
            aggregate_type: s("customer"),
            aggregate_id: s("c-1"),
        })),
    ]
}

/// Every request variant with every optional field absent and everything else default.
fn requests_all_none() -> Vec<Request> {
    vec![
        Request::ListAggregates(ListAggregates::default()),
        Request::GetAggregate(GetAggregate::default()),
        Request::ListEvents(ListEvents::default()),
        Request::AppendEvent(AppendEvent::default()),
        Request::VerifyAggregate(AggregateRef::default()),
        Request::PatchEvent(PatchEvent::default()),
        Request::SelectAggregate(SelectAggregate::default()),
        Request::CreateAggregate(AppendEvent::default()),
        Request::SetAggregateArchive(SetArchive::default()),
        Request::ListSchemas,
        Request::ReplaceSchemas(ReplaceSchemas::default()),
        Request::TenantAssign(TenantAssign::default()),
        Request::TenantUnassign(String::new()),
        Request::TenantQuotaSet(TenantQuotaSet::default()),
        Request::TenantQuotaClear(String::new()),
        Request::TenantQuotaRecalc(String::new()),
        Request::TenantReload(String::new()),
        Request::TenantSchemaPublish(TenantSchemaPublish::default()),
        Request::CreateSnapshot(CreateSnapshot::default()),
        Request::ListSnapshots(ListSnapshots::default()),
        Request::GetSnapshot(0),
        Request::ListReferrers(AggregateRef::default()),
    ]
}

fn responses_all_some() -> Vec<Response> {
    vec![
        Response::ListAggregates(wire!(ListAggregatesReply {
            aggregates_json: s("[{}]"),
            next_cursor: Some(s("a:order:o-9")),
            resolved_json: Some(s("[]")),
        })),
        Response::GetAggregate(wire!(GetAggregateReply {
            found: true,
            aggregate_json: s(r#"{"aggregate_id":"o-1"}"#),
            resolved_json: Some(s(r#"{"domain":"default"}"#)),
        })),
        Response::ListEvents(wire!(ListEventsReply {
            events_json: s("[{},{}]"),
            next_cursor: Some(s("a:order:o-1:2")),
        })),
        Response::AppendEvent(s(r#"{"version":2}"#)),
        Response::VerifyAggregate(s(&"ab".repeat(32))),
        Response::SelectAggregate(wire!(SelectReply {
            found: true,
            selection_json: s(r#"{"qty":3}"#),
        })),
        Response::Error(wire!(ControlError {
            code: s("aggregate_not_found"),
            message: s("aggregate not found"),
        })),
        Response::CreateAggregate(s(r#"{"version":1}"#)),
        Response::SetAggregateArchive(s(r#"{"archived":true}"#)),
        Response::ListSchemas(s(r#"{"order":{}}"#)),
        Response::ReplaceSchemas(u32::MAX),
        Response::TenantAssign(wire!(TenantAssignReply {
            changed: true,
            shard_id: s("shard-0001"),
        })),
        Response::TenantUnassign(true),
        Response::TenantQuotaSet(wire!(TenantQuotaSetReply {
            changed: true,
            quota_mb: Some(1024),
        })),
        Response::TenantQuotaClear(true),
        Response::TenantQuotaRecalc(u64::MAX),
        Response::TenantReload(true),
        Response::TenantSchemaPublish(wire!(TenantSchemaPublishReply {
            version_id: s("v20250101T000000000Z"),
            activated: true,
            skipped: true,
        })),
        Response::CreateSnapshot(s(r#"{"snapshot_id":"1"}"#)),
        Response::ListSnapshots(s("[]")),
        Response::GetSnapshot(wire!(GetSnapshotReply {
            found: true,
            snapshot_json: s("{}"),
        })),
        Response::ListReferrers(s(r#"[{"path":"order"}]"#)),
    ]
}

fn responses_all_none() -> Vec<Response> {
    vec![
        Response::ListAggregates(ListAggregatesReply::default()),
        Response::GetAggregate(GetAggregateReply::default()),
        Response::ListEvents(ListEventsReply::default()),
        Response::AppendEvent(String::new()),
        Response::VerifyAggregate(String::new()),
        Response::SelectAggregate(SelectReply::default()),
        Response::Error(ControlError::default()),
        Response::CreateAggregate(String::new()),
        Response::SetAggregateArchive(String::new()),
        Response::ListSchemas(String::new()),
        Response::ReplaceSchemas(0),
        Response::TenantAssign(TenantAssignReply::default()),
        Response::TenantUnassign(false),
        Response::TenantQuotaSet(TenantQuotaSetReply::default()),
        Response::TenantQuotaClear(false),
        Response::TenantQuotaRecalc(0),
        Response::TenantReload(false),
        Response::TenantSchemaPublish(TenantSchemaPublishReply::default()),
        Response::CreateSnapshot(String::new()),
        Response::ListSnapshots(String::new()),
        Response::GetSnapshot(GetSnapshotReply::default()),
        Response::ListReferrers(String::new()),
    ]
}

/// The union discriminant sits in the root's data section right after the 8-byte id: byte 24 of
/// a one-segment message (8-byte segment table, 8-byte root pointer, 8-byte id).
fn discriminant(bytes: &[u8]) -> u16 {
    u16::from_le_bytes([bytes[24], bytes[25]])
}

#[test]
fn every_request_variant_round_trips() {
    for (set, requests) in [("Some", requests_all_some()), ("None", requests_all_none())] {
        assert_eq!(requests.len(), 22, "{set}: all 22 variants");
        for (index, request) in requests.iter().enumerate() {
            let id = 1000 + index as u64;
            let bytes = encode_request(id, &format!("  {TOKEN}\n"), request).unwrap();
            assert_eq!(
                discriminant(&bytes),
                index as u16,
                "{set}: {} must be union member {index}",
                request.name()
            );
            let (got_id, token, decoded) = decode_request(&bytes).unwrap();
            assert_eq!(got_id, id);
            assert_eq!(&decoded, request, "{set}: {}", request.name());
            let expected_token = if request.name() == "verifyAggregate" {
                ""
            } else {
                TOKEN
            };
            assert_eq!(token, expected_token, "{set}: {} token", request.name());
        }
    }
}

#[test]
fn every_response_variant_round_trips() {
    for (set, responses) in [
        ("Some", responses_all_some()),
        ("None", responses_all_none()),
    ] {
        assert_eq!(responses.len(), 22, "{set}: all 22 variants");
        for (index, response) in responses.iter().enumerate() {
            let id = u64::MAX - index as u64;
            let bytes = encode_response(id, response).unwrap();
            assert_eq!(
                discriminant(&bytes),
                index as u16,
                "{set}: {} must be union member {index}",
                response.name()
            );
            let (got_id, decoded) = decode_response(&bytes).unwrap();
            assert_eq!(got_id, id);
            assert_eq!(&decoded, response, "{set}: {}", response.name());
        }
    }
}

#[test]
fn ordinal_to_discriminant_spot_checks() {
    // The schema's union: discriminant = ordinal - 1.
    let get = encode_request(1, TOKEN, &Request::GetAggregate(GetAggregate::default())).unwrap();
    assert_eq!(discriminant(&get), 1);
    let referrers =
        encode_request(1, TOKEN, &Request::ListReferrers(AggregateRef::default())).unwrap();
    assert_eq!(discriminant(&referrers), 21);
    let error = encode_response(1, &Response::Error(ControlError::default())).unwrap();
    assert_eq!(discriminant(&error), 6);
    let select = encode_response(1, &Response::SelectAggregate(SelectReply::default())).unwrap();
    assert_eq!(discriminant(&select), 5);
}

#[test]
fn encoding_is_plain_write_message_to_words() {
    let bytes = encode_request(42, TOKEN, &Request::GetSnapshot(9)).unwrap();
    let mut message = Builder::new_default();
    let mut root = message.init_root::<control_request::Builder<'_>>();
    root.set_id(42);
    let mut b = root.init_payload().init_get_snapshot();
    b.set_token(TOKEN);
    b.set_snapshot_id(9);
    assert_eq!(bytes, capnp::serialize::write_message_to_words(&message));
}

/// Reads the raw `has*` flags with the generated reader, independently of `decode_request`.
#[test]
fn has_flags_are_written_explicitly() {
    let some = encode_request(1, TOKEN, &requests_all_some()[0]).unwrap();
    let none = encode_request(1, TOKEN, &requests_all_none()[0]).unwrap();
    for (bytes, expected) in [(&some, true), (&none, false)] {
        let message =
            capnp::serialize::read_message(&mut bytes.as_slice(), reader_options()).unwrap();
        let root = message.get_root::<control_request::Reader<'_>>().unwrap();
        let control_request::payload::Which::ListAggregates(r) =
            root.get_payload().which().unwrap()
        else {
            panic!("wrong variant")
        };
        let r = r.unwrap();
        assert_eq!(r.get_has_cursor(), expected);
        assert_eq!(r.get_has_take(), expected);
        assert_eq!(r.get_has_filter(), expected);
        assert_eq!(r.get_has_sort(), expected);
        assert_eq!(r.get_has_resolve_depth(), expected);
        assert_eq!(r.get_token().unwrap().to_str().unwrap(), TOKEN);
        if !expected {
            assert!(!r.has_cursor(), "absent text stays a null pointer");
            assert_eq!(r.get_take(), 0);
        }
    }

    let append = encode_request(1, TOKEN, &requests_all_some()[3]).unwrap();
    let message = capnp::serialize::read_message(&mut append.as_slice(), reader_options()).unwrap();
    let root = message.get_root::<control_request::Reader<'_>>().unwrap();
    let control_request::payload::Which::AppendEvent(r) = root.get_payload().which().unwrap()
    else {
        panic!("wrong variant")
    };
    let r = r.unwrap();
    assert!(r.get_has_note() && r.get_has_metadata() && r.get_has_publish_targets());
    let first = r.get_publish_targets().unwrap().get(0);
    assert!(first.get_has_mode() && first.get_has_priority());
    let second = r.get_publish_targets().unwrap().get(1);
    assert!(!second.get_has_mode() && !second.get_has_priority());
}

#[test]
fn values_without_their_flag_are_ignored() {
    let mut message = Builder::new_default();
    let mut root = message.init_root::<control_request::Builder<'_>>();
    root.set_id(5);
    let mut b = root.init_payload().init_list_aggregates();
    b.set_cursor("ignored");
    b.set_take(99);
    b.set_resolve_depth(4);
    let bytes = capnp::serialize::write_message_to_words(&message);
    let (_, _, request) = decode_request(&bytes).unwrap();
    assert_eq!(request, Request::ListAggregates(ListAggregates::default()));

    let mut message = Builder::new_default();
    let mut root = message.init_root::<control_response::Builder<'_>>();
    root.set_id(6);
    let mut b = root.init_payload().init_tenant_quota_set();
    b.set_changed(true);
    b.set_quota_mb(12);
    let bytes = capnp::serialize::write_message_to_words(&message);
    let (_, response) = decode_response(&bytes).unwrap();
    assert_eq!(
        response,
        Response::TenantQuotaSet(wire!(TenantQuotaSetReply {
            changed: true,
            quota_mb: None
        }))
    );
}

#[test]
fn unknown_discriminants_are_reported() {
    let mut request = encode_request(1, TOKEN, &Request::ListSchemas).unwrap();
    request[24..26].copy_from_slice(&99u16.to_le_bytes());
    assert_eq!(
        decode_request(&request).unwrap_err(),
        WireError::UnknownVariant {
            what: "request",
            discriminant: 99
        }
    );
    let mut response = encode_response(1, &Response::TenantReload(true)).unwrap();
    response[24..26].copy_from_slice(&22u16.to_le_bytes());
    assert_eq!(
        decode_response(&response).unwrap_err(),
        WireError::UnknownVariant {
            what: "response",
            discriminant: 22
        }
    );
}

#[test]
fn malformed_input_is_an_error() {
    let bytes = encode_response(3, &Response::ListSchemas(s("{}"))).unwrap();
    for len in 0..bytes.len() {
        assert!(
            matches!(decode_response(&bytes[..len]), Err(WireError::Malformed(_))),
            "prefix of {len} bytes"
        );
    }
    let mut trailing = bytes.clone();
    trailing.extend_from_slice(&[0; 8]);
    assert!(matches!(
        decode_response(&trailing),
        Err(WireError::Malformed(_))
    ));

    // Not UTF-8: the "{}" text is the last word of the message.
    let mut bad = bytes.clone();
    let at = bad.len() - 8;
    bad[at] = 0xc3;
    bad[at + 1] = 0x28;
    assert!(matches!(
        decode_response(&bad),
        Err(WireError::Malformed(_))
    ));

    let request = encode_request(3, "\u{ff}", &Request::ListSchemas).unwrap();
    let mut bad = request.clone();
    let at = bad.len() - 8;
    bad[at] = 0xff;
    assert!(matches!(decode_request(&bad), Err(WireError::Malformed(_))));
}

#[test]
fn frames_from_unaligned_buffers_decode() {
    let bytes = encode_request(8, TOKEN, &requests_all_some()[3]).unwrap();
    let mut shifted = vec![0u8; 3];
    shifted.extend_from_slice(&bytes);
    let (id, token, request) = decode_request(&shifted[3..]).unwrap();
    assert_eq!((id, token.as_str()), (8, TOKEN));
    assert_eq!(request, requests_all_some()[3]);
}

#[test]
fn reader_options_are_bounded() {
    let options = reader_options();
    let limit = options.traversal_limit_in_words.expect("a traversal limit");
    assert!(limit >= 65_535 / 8, "must admit a full frame");
    assert!(limit <= 1 << 20, "must stay far below capnp's default");
    assert!(options.nesting_limit >= 5 && options.nesting_limit <= 32);

    // A message whose segment table announces more than the limit is refused outright.
    let mut huge = 0u32.to_le_bytes().to_vec();
    huge.extend_from_slice(&u32::try_from(limit + 1).unwrap().to_le_bytes());
    huge.resize(8 + (limit + 1) * 8, 0);
    assert!(matches!(
        decode_response(&huge),
        Err(WireError::Malformed(_))
    ));
}

// ----- property tests -----

fn text() -> impl Strategy<Value = String> {
    any::<String>()
}

fn opt_text() -> impl Strategy<Value = Option<String>> {
    proptest::option::of(any::<String>())
}

fn texts() -> impl Strategy<Value = Vec<String>> {
    proptest::collection::vec(any::<String>(), 0..4)
}

fn publish_targets() -> impl Strategy<Value = Option<Vec<PublishTarget>>> {
    proptest::option::of(proptest::collection::vec(
        (text(), opt_text(), opt_text()).prop_map(|(plugin, mode, priority)| {
            wire!(PublishTarget {
                plugin,
                mode,
                priority,
            })
        }),
        0..3,
    ))
}

fn append_event() -> impl Strategy<Value = AppendEvent> {
    (
        text(),
        text(),
        text(),
        text(),
        opt_text(),
        opt_text(),
        publish_targets(),
    )
        .prop_map(
            |(
                aggregate_type,
                aggregate_id,
                event_type,
                payload_json,
                note,
                metadata_json,
                publish_targets,
            )| {
                wire!(AppendEvent {
                    aggregate_type,
                    aggregate_id,
                    event_type,
                    payload_json,
                    note,
                    metadata_json,
                    publish_targets,
                })
            },
        )
}

fn aggregate_ref() -> impl Strategy<Value = AggregateRef> {
    (text(), text()).prop_map(|(aggregate_type, aggregate_id)| {
        wire!(AggregateRef {
            aggregate_type,
            aggregate_id,
        })
    })
}

fn any_request() -> BoxedStrategy<Request> {
    let variants: Vec<BoxedStrategy<Request>> = vec![
        (
            opt_text(),
            any::<Option<u64>>(),
            opt_text(),
            opt_text(),
            any::<(bool, bool, bool)>(),
            any::<Option<u32>>(),
        )
            .prop_map(
                |(
                    cursor,
                    take,
                    filter,
                    sort,
                    (include_archived, archived_only, resolve),
                    resolve_depth,
                )| {
                    Request::ListAggregates(wire!(ListAggregates {
                        cursor,
                        take,
                        filter,
                        sort,
                        include_archived,
                        archived_only,
                        resolve,
                        resolve_depth,
                    }))
                },
            )
            .boxed(),
        (text(), text(), any::<bool>(), any::<Option<u32>>())
            .prop_map(|(aggregate_type, aggregate_id, resolve, resolve_depth)| {
                Request::GetAggregate(wire!(GetAggregate {
                    aggregate_type,
                    aggregate_id,
                    resolve,
                    resolve_depth,
                }))
            })
            .boxed(),
        (text(), text(), opt_text(), any::<Option<u64>>(), opt_text())
            .prop_map(|(aggregate_type, aggregate_id, cursor, take, filter)| {
                Request::ListEvents(wire!(ListEvents {
                    aggregate_type,
                    aggregate_id,
                    cursor,
                    take,
                    filter,
                }))
            })
            .boxed(),
        append_event().prop_map(Request::AppendEvent).boxed(),
        aggregate_ref().prop_map(Request::VerifyAggregate).boxed(),
        append_event()
            .prop_map(|e| {
                Request::PatchEvent(wire!(PatchEvent {
                    aggregate_type: e.aggregate_type,
                    aggregate_id: e.aggregate_id,
                    event_type: e.event_type,
                    patch_json: e.payload_json,
                    note: e.note,
                    metadata_json: e.metadata_json,
                    publish_targets: e.publish_targets,
                }))
            })
            .boxed(),
        (text(), text(), texts())
            .prop_map(|(aggregate_type, aggregate_id, fields)| {
                Request::SelectAggregate(wire!(SelectAggregate {
                    aggregate_type,
                    aggregate_id,
                    fields,
                }))
            })
            .boxed(),
        append_event().prop_map(Request::CreateAggregate).boxed(),
        (text(), text(), any::<bool>(), opt_text())
            .prop_map(|(aggregate_type, aggregate_id, archived, note)| {
                Request::SetAggregateArchive(wire!(SetArchive {
                    aggregate_type,
                    aggregate_id,
                    archived,
                    note,
                }))
            })
            .boxed(),
        Just(Request::ListSchemas).boxed(),
        text()
            .prop_map(|schemas_json| {
                Request::ReplaceSchemas(wire!(ReplaceSchemas { schemas_json }))
            })
            .boxed(),
        (text(), text())
            .prop_map(|(tenant_id, shard_id)| {
                Request::TenantAssign(wire!(TenantAssign {
                    tenant_id,
                    shard_id,
                }))
            })
            .boxed(),
        text().prop_map(Request::TenantUnassign).boxed(),
        (text(), any::<u64>())
            .prop_map(|(tenant_id, max_storage_mb)| {
                Request::TenantQuotaSet(wire!(TenantQuotaSet {
                    tenant_id,
                    max_storage_mb,
                }))
            })
            .boxed(),
        text().prop_map(Request::TenantQuotaClear).boxed(),
        text().prop_map(Request::TenantQuotaRecalc).boxed(),
        text().prop_map(Request::TenantReload).boxed(),
        (
            text(),
            opt_text(),
            opt_text(),
            texts(),
            any::<(bool, bool, bool)>(),
        )
            .prop_map(
                |(tenant_id, reason, actor, labels, (activate, force, reload))| {
                    Request::TenantSchemaPublish(wire!(TenantSchemaPublish {
                        tenant_id,
                        reason,
                        actor,
                        labels,
                        activate,
                        force,
                        reload,
                    }))
                },
            )
            .boxed(),
        (text(), text(), opt_text())
            .prop_map(|(aggregate_type, aggregate_id, comment)| {
                Request::CreateSnapshot(wire!(CreateSnapshot {
                    aggregate_type,
                    aggregate_id,
                    comment,
                }))
            })
            .boxed(),
        (opt_text(), opt_text(), any::<Option<u64>>())
            .prop_map(|(aggregate_type, aggregate_id, version)| {
                Request::ListSnapshots(wire!(ListSnapshots {
                    aggregate_type,
                    aggregate_id,
                    version,
                }))
            })
            .boxed(),
        any::<u64>().prop_map(Request::GetSnapshot).boxed(),
        aggregate_ref().prop_map(Request::ListReferrers).boxed(),
    ];
    assert_eq!(variants.len(), 22);
    proptest::strategy::Union::new(variants).boxed()
}

fn any_response() -> BoxedStrategy<Response> {
    let variants: Vec<BoxedStrategy<Response>> = vec![
        (text(), opt_text(), opt_text())
            .prop_map(|(aggregates_json, next_cursor, resolved_json)| {
                Response::ListAggregates(wire!(ListAggregatesReply {
                    aggregates_json,
                    next_cursor,
                    resolved_json,
                }))
            })
            .boxed(),
        (any::<bool>(), text(), opt_text())
            .prop_map(|(found, aggregate_json, resolved_json)| {
                Response::GetAggregate(wire!(GetAggregateReply {
                    found,
                    aggregate_json,
                    resolved_json,
                }))
            })
            .boxed(),
        (text(), opt_text())
            .prop_map(|(events_json, next_cursor)| {
                Response::ListEvents(wire!(ListEventsReply {
                    events_json,
                    next_cursor,
                }))
            })
            .boxed(),
        text().prop_map(Response::AppendEvent).boxed(),
        text().prop_map(Response::VerifyAggregate).boxed(),
        (any::<bool>(), text())
            .prop_map(|(found, selection_json)| {
                Response::SelectAggregate(wire!(SelectReply {
                    found,
                    selection_json,
                }))
            })
            .boxed(),
        (text(), text())
            .prop_map(|(code, message)| Response::Error(wire!(ControlError { code, message })))
            .boxed(),
        text().prop_map(Response::CreateAggregate).boxed(),
        text().prop_map(Response::SetAggregateArchive).boxed(),
        text().prop_map(Response::ListSchemas).boxed(),
        any::<u32>().prop_map(Response::ReplaceSchemas).boxed(),
        (any::<bool>(), text())
            .prop_map(|(changed, shard_id)| {
                Response::TenantAssign(wire!(TenantAssignReply { changed, shard_id }))
            })
            .boxed(),
        any::<bool>().prop_map(Response::TenantUnassign).boxed(),
        (any::<bool>(), any::<Option<u64>>())
            .prop_map(|(changed, quota_mb)| {
                Response::TenantQuotaSet(wire!(TenantQuotaSetReply { changed, quota_mb }))
            })
            .boxed(),
        any::<bool>().prop_map(Response::TenantQuotaClear).boxed(),
        any::<u64>().prop_map(Response::TenantQuotaRecalc).boxed(),
        any::<bool>().prop_map(Response::TenantReload).boxed(),
        (text(), any::<bool>(), any::<bool>())
            .prop_map(|(version_id, activated, skipped)| {
                Response::TenantSchemaPublish(wire!(TenantSchemaPublishReply {
                    version_id,
                    activated,
                    skipped,
                }))
            })
            .boxed(),
        text().prop_map(Response::CreateSnapshot).boxed(),
        text().prop_map(Response::ListSnapshots).boxed(),
        (any::<bool>(), text())
            .prop_map(|(found, snapshot_json)| {
                Response::GetSnapshot(wire!(GetSnapshotReply {
                    found,
                    snapshot_json,
                }))
            })
            .boxed(),
        text().prop_map(Response::ListReferrers).boxed(),
    ];
    assert_eq!(variants.len(), 22);
    proptest::strategy::Union::new(variants).boxed()
}

proptest! {
    #[test]
    fn requests_round_trip(id in any::<u64>(), token in any::<String>(), request in any_request()) {
        let bytes = encode_request(id, &token, &request).unwrap();
        prop_assert_eq!(stream_message_len(&bytes, usize::MAX).unwrap(), Some(bytes.len()));
        let (got_id, got_token, decoded) = decode_request(&bytes).unwrap();
        prop_assert_eq!(got_id, id);
        let expected_token = if matches!(request, Request::VerifyAggregate(_)) { "" } else { token.trim() };
        prop_assert_eq!(got_token, expected_token);
        prop_assert_eq!(decoded, request);
    }

    #[test]
    fn responses_round_trip(id in any::<u64>(), response in any_response()) {
        let bytes = encode_response(id, &response).unwrap();
        prop_assert_eq!(stream_message_len(&bytes, usize::MAX).unwrap(), Some(bytes.len()));
        let (got_id, decoded) = decode_response(&bytes).unwrap();
        prop_assert_eq!(got_id, id);
        prop_assert_eq!(decoded, response);
    }

    /// Reading in place (one segment) or by copy (any other input) gives the same answer,
    /// for valid replies and for what is not one.
    #[test]
    fn in_place_decoding_agrees_with_copying(
        id in any::<u64>(),
        response in any_response(),
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4),
        cut in any::<prop::sample::Index>(),
        garbage in proptest::collection::vec(any::<u64>(), 0..64),
    ) {
        let valid = encode_response(id, &response).unwrap();
        let mut mutated = valid.clone();
        for (index, value) in &flips {
            let at = index.index(mutated.len());
            mutated[at] = *value;
        }
        let truncated = valid[..cut.index(valid.len())].to_vec();
        let mut framed_garbage = 0u32.to_le_bytes().to_vec();
        framed_garbage.extend_from_slice(&(garbage.len() as u32).to_le_bytes());
        for word in &garbage {
            framed_garbage.extend_from_slice(&word.to_le_bytes());
        }
        let mut buffer = MessageBuffer::new();
        for bytes in [valid, mutated, truncated, framed_garbage] {
            buffer.fill(&bytes);
            prop_assert_eq!(decode_response_in(&buffer), decode_response(&bytes));
        }
    }

    #[test]
    fn decoders_never_panic_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..1024)) {
        let _ = decode_request(&bytes);
        let _ = decode_response(&bytes);
        let mut buffer = MessageBuffer::new();
        buffer.fill(&bytes);
        prop_assert_eq!(decode_response_in(&buffer), decode_response(&bytes));
        let _ = ControlHello::parse(&bytes);
        let _ = HelloResponse::parse(&bytes);
        let _ = stream_message_len(&bytes, 65_535);
    }

    /// Random words behind a consistent segment table get past the framing checks and exercise
    /// pointer validation, unions and text decoding.
    #[test]
    fn decoders_never_panic_on_well_framed_garbage(words in proptest::collection::vec(any::<u64>(), 0..128)) {
        let mut bytes = 0u32.to_le_bytes().to_vec();
        bytes.extend_from_slice(&(words.len() as u32).to_le_bytes());
        for word in &words {
            bytes.extend_from_slice(&word.to_le_bytes());
        }
        let _ = decode_request(&bytes);
        let _ = decode_response(&bytes);
        let _ = ControlHello::parse(&bytes);
        let _ = HelloResponse::parse(&bytes);
    }

    /// Valid messages with a few bytes changed: the most realistic hostile input.
    #[test]
    fn decoders_never_panic_on_mutated_messages(
        request in any_request(),
        response in any_response(),
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
    ) {
        let mut request_bytes = encode_request(1, TOKEN, &request).unwrap();
        let mut response_bytes = encode_response(1, &response).unwrap();
        for (index, value) in &flips {
            let at = index.index(request_bytes.len());
            request_bytes[at] = *value;
            let at = index.index(response_bytes.len());
            response_bytes[at] = *value;
        }
        let _ = decode_request(&request_bytes);
        let _ = decode_response(&request_bytes);
        let _ = decode_request(&response_bytes);
        let _ = decode_response(&response_bytes);
    }
}
