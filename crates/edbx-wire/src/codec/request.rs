//! `ControlRequest` encoding and decoding.

use capnp::message::Builder;

use super::{check_text, fill_text_list, list_len, opt_text, read_message, text, text_list};
use crate::generated::control_capnp::{control_request, publish_target};
use crate::request::*;
use crate::{Request, WireError};

/// Writes the fields shared by `appendEvent`, `patchEvent` and `createAggregate` (their structs
/// have the same layout but distinct generated types).
macro_rules! write_event {
    ($builder:expr, $token:expr, $r:expr, $setter:ident, $body:ident, $body_name:literal) => {{
        let mut b = $builder;
        let r = $r;
        b.set_token($token);
        b.set_aggregate_type(check_text("aggregateType", &r.aggregate_type)?);
        b.set_aggregate_id(check_text("aggregateId", &r.aggregate_id)?);
        b.set_event_type(check_text("eventType", &r.event_type)?);
        b.$setter(check_text($body_name, &r.$body)?);
        b.set_has_note(r.note.is_some());
        if let Some(note) = &r.note {
            b.set_note(check_text("note", note)?);
        }
        b.set_has_metadata(r.metadata_json.is_some());
        if let Some(metadata) = &r.metadata_json {
            b.set_metadata_json(check_text("metadataJson", metadata)?);
        }
        b.set_has_publish_targets(r.publish_targets.is_some());
        if let Some(targets) = &r.publish_targets {
            let len = list_len("publishTargets", targets.len())?;
            let mut list = b.init_publish_targets(len);
            for (index, target) in (0..len).zip(targets) {
                write_publish_target(list.reborrow().get(index), target)?;
            }
        }
    }};
}

/// Reads the fields shared by `appendEvent`, `patchEvent` and `createAggregate` into the struct
/// `$ty`, whose body field (`payload_json` or `patch_json`) is read with `$getter`.
macro_rules! read_event {
    ($reader:expr, $ty:ident, $getter:ident, $body:ident, $body_name:literal) => {{
        let r = $reader;
        let publish_targets = if r.get_has_publish_targets() {
            let list = r.get_publish_targets()?;
            let mut targets = Vec::with_capacity(list.len() as usize);
            for target in list.iter() {
                targets.push(read_publish_target(target)?);
            }
            Some(targets)
        } else {
            None
        };
        (
            text("token", r.get_token())?,
            $ty {
                aggregate_type: text("aggregateType", r.get_aggregate_type())?,
                aggregate_id: text("aggregateId", r.get_aggregate_id())?,
                event_type: text("eventType", r.get_event_type())?,
                $body: text($body_name, r.$getter())?,
                note: opt_text("note", r.get_has_note(), r.get_note())?,
                metadata_json: opt_text(
                    "metadataJson",
                    r.get_has_metadata(),
                    r.get_metadata_json(),
                )?,
                publish_targets,
            },
        )
    }};
}

/// A first segment that holds the whole request, and little more: the default (8 KiB, zeroed
/// on allocation) costs more to clear than a small request costs to encode. Texts other than
/// the bulky ones take a few words each, covered by the slack; an underestimate only adds a
/// segment.
fn first_segment_words(token_len: usize, request: &Request) -> u32 {
    let optional = |text: &Option<String>| text.as_ref().map_or(0, String::len);
    let bulk = match request {
        Request::AppendEvent(e) | Request::CreateAggregate(e) => {
            e.payload_json.len() + optional(&e.note) + optional(&e.metadata_json)
        }
        Request::PatchEvent(p) => {
            p.patch_json.len() + optional(&p.note) + optional(&p.metadata_json)
        }
        Request::ReplaceSchemas(r) => r.schemas_json.len(),
        _ => 0,
    };
    const SLACK_WORDS: usize = 96;
    u32::try_from((token_len + bulk) / 8 + SLACK_WORDS).unwrap_or(u32::MAX)
}

/// Encodes one `ControlRequest` as an unpacked Cap'n Proto stream message: the body of one
/// session frame (before Noise encryption).
///
/// `token` is trimmed and copied into the request's own `token` field; the server authorizes
/// every request again with it. `verifyAggregate` has no token field, so the token is unused
/// there. The token is not validated: an empty one makes the server reply `invalid_token`.
///
/// Every optional field's `has*` flag is written explicitly: `Some(v)` sets the flag and the
/// value, `None` clears the flag and leaves the value unset (the server ignores it).
///
/// The output is not size-checked against the frame limit; framing does that.
///
/// # Errors
///
/// [`WireError::InvalidInput`] only for inputs Cap'n Proto cannot represent at all (a text of
/// 512 MiB or more, a list of 2^29 or more entries).
pub fn encode_request(id: u64, token: &str, request: &Request) -> Result<Vec<u8>, WireError> {
    let token = check_text("token", token.trim())?;
    let mut message = Builder::new(
        capnp::message::HeapAllocator::new()
            .first_segment_words(first_segment_words(token.len(), request)),
    );
    let mut root = message.init_root::<control_request::Builder<'_>>();
    root.set_id(id);
    let payload = root.init_payload();
    match request {
        Request::ListAggregates(r) => {
            let mut b = payload.init_list_aggregates();
            b.set_token(token);
            b.set_has_cursor(r.cursor.is_some());
            if let Some(cursor) = &r.cursor {
                b.set_cursor(check_text("cursor", cursor)?);
            }
            b.set_has_take(r.take.is_some());
            b.set_take(r.take.unwrap_or_default());
            b.set_has_filter(r.filter.is_some());
            if let Some(filter) = &r.filter {
                b.set_filter(check_text("filter", filter)?);
            }
            b.set_has_sort(r.sort.is_some());
            if let Some(sort) = &r.sort {
                b.set_sort(check_text("sort", sort)?);
            }
            b.set_include_archived(r.include_archived);
            b.set_archived_only(r.archived_only);
            b.set_resolve(r.resolve);
            b.set_has_resolve_depth(r.resolve_depth.is_some());
            b.set_resolve_depth(r.resolve_depth.unwrap_or_default());
        }
        Request::GetAggregate(r) => {
            let mut b = payload.init_get_aggregate();
            b.set_token(token);
            b.set_aggregate_type(check_text("aggregateType", &r.aggregate_type)?);
            b.set_aggregate_id(check_text("aggregateId", &r.aggregate_id)?);
            b.set_resolve(r.resolve);
            b.set_has_resolve_depth(r.resolve_depth.is_some());
            b.set_resolve_depth(r.resolve_depth.unwrap_or_default());
        }
        Request::ListEvents(r) => {
            let mut b = payload.init_list_events();
            b.set_token(token);
            b.set_aggregate_type(check_text("aggregateType", &r.aggregate_type)?);
            b.set_aggregate_id(check_text("aggregateId", &r.aggregate_id)?);
            b.set_has_cursor(r.cursor.is_some());
            if let Some(cursor) = &r.cursor {
                b.set_cursor(check_text("cursor", cursor)?);
            }
            b.set_has_take(r.take.is_some());
            b.set_take(r.take.unwrap_or_default());
            b.set_has_filter(r.filter.is_some());
            if let Some(filter) = &r.filter {
                b.set_filter(check_text("filter", filter)?);
            }
        }
        Request::AppendEvent(r) => {
            let b = payload.init_append_event();
            write_event!(b, token, r, set_payload_json, payload_json, "payloadJson");
        }
        Request::VerifyAggregate(r) => {
            let mut b = payload.init_verify_aggregate();
            b.set_aggregate_type(check_text("aggregateType", &r.aggregate_type)?);
            b.set_aggregate_id(check_text("aggregateId", &r.aggregate_id)?);
        }
        Request::PatchEvent(r) => {
            let b = payload.init_patch_event();
            write_event!(b, token, r, set_patch_json, patch_json, "patchJson");
        }
        Request::SelectAggregate(r) => {
            let mut b = payload.init_select_aggregate();
            b.set_token(token);
            b.set_aggregate_type(check_text("aggregateType", &r.aggregate_type)?);
            b.set_aggregate_id(check_text("aggregateId", &r.aggregate_id)?);
            let len = list_len("fields", r.fields.len())?;
            fill_text_list("fields", b.init_fields(len), &r.fields)?;
        }
        Request::CreateAggregate(r) => {
            let b = payload.init_create_aggregate();
            write_event!(b, token, r, set_payload_json, payload_json, "payloadJson");
        }
        Request::SetAggregateArchive(r) => {
            let mut b = payload.init_set_aggregate_archive();
            b.set_token(token);
            b.set_aggregate_type(check_text("aggregateType", &r.aggregate_type)?);
            b.set_aggregate_id(check_text("aggregateId", &r.aggregate_id)?);
            b.set_archived(r.archived);
            b.set_has_note(r.note.is_some());
            if let Some(note) = &r.note {
                b.set_note(check_text("note", note)?);
            }
        }
        Request::ListSchemas => {
            payload.init_list_schemas().set_token(token);
        }
        Request::ReplaceSchemas(r) => {
            let mut b = payload.init_replace_schemas();
            b.set_token(token);
            b.set_schemas_json(check_text("schemasJson", &r.schemas_json)?);
        }
        Request::TenantAssign(r) => {
            let mut b = payload.init_tenant_assign();
            b.set_token(token);
            b.set_tenant_id(check_text("tenantId", &r.tenant_id)?);
            b.set_shard_id(check_text("shardId", &r.shard_id)?);
        }
        Request::TenantUnassign(tenant) => {
            let mut b = payload.init_tenant_unassign();
            b.set_token(token);
            b.set_tenant_id(check_text("tenantId", tenant)?);
        }
        Request::TenantQuotaSet(r) => {
            let mut b = payload.init_tenant_quota_set();
            b.set_token(token);
            b.set_tenant_id(check_text("tenantId", &r.tenant_id)?);
            b.set_max_storage_mb(r.max_storage_mb);
        }
        Request::TenantQuotaClear(tenant) => {
            let mut b = payload.init_tenant_quota_clear();
            b.set_token(token);
            b.set_tenant_id(check_text("tenantId", tenant)?);
        }
        Request::TenantQuotaRecalc(tenant) => {
            let mut b = payload.init_tenant_quota_recalc();
            b.set_token(token);
            b.set_tenant_id(check_text("tenantId", tenant)?);
        }
        Request::TenantReload(tenant) => {
            let mut b = payload.init_tenant_reload();
            b.set_token(token);
            b.set_tenant_id(check_text("tenantId", tenant)?);
        }
        Request::TenantSchemaPublish(r) => {
            let mut b = payload.init_tenant_schema_publish();
            b.set_token(token);
            b.set_tenant_id(check_text("tenantId", &r.tenant_id)?);
            b.set_has_reason(r.reason.is_some());
            if let Some(reason) = &r.reason {
                b.set_reason(check_text("reason", reason)?);
            }
            b.set_has_actor(r.actor.is_some());
            if let Some(actor) = &r.actor {
                b.set_actor(check_text("actor", actor)?);
            }
            b.set_activate(r.activate);
            b.set_force(r.force);
            b.set_reload(r.reload);
            let len = list_len("labels", r.labels.len())?;
            fill_text_list("labels", b.init_labels(len), &r.labels)?;
        }
        Request::CreateSnapshot(r) => {
            let mut b = payload.init_create_snapshot();
            b.set_token(token);
            b.set_aggregate_type(check_text("aggregateType", &r.aggregate_type)?);
            b.set_aggregate_id(check_text("aggregateId", &r.aggregate_id)?);
            b.set_has_comment(r.comment.is_some());
            if let Some(comment) = &r.comment {
                b.set_comment(check_text("comment", comment)?);
            }
        }
        Request::ListSnapshots(r) => {
            let mut b = payload.init_list_snapshots();
            b.set_token(token);
            b.set_has_aggregate_type(r.aggregate_type.is_some());
            if let Some(aggregate_type) = &r.aggregate_type {
                b.set_aggregate_type(check_text("aggregateType", aggregate_type)?);
            }
            b.set_has_aggregate_id(r.aggregate_id.is_some());
            if let Some(aggregate_id) = &r.aggregate_id {
                b.set_aggregate_id(check_text("aggregateId", aggregate_id)?);
            }
            b.set_has_version(r.version.is_some());
            b.set_version(r.version.unwrap_or_default());
        }
        Request::GetSnapshot(snapshot_id) => {
            let mut b = payload.init_get_snapshot();
            b.set_token(token);
            b.set_snapshot_id(*snapshot_id);
        }
        Request::ListReferrers(r) => {
            let mut b = payload.init_list_referrers();
            b.set_token(token);
            b.set_aggregate_type(check_text("aggregateType", &r.aggregate_type)?);
            b.set_aggregate_id(check_text("aggregateId", &r.aggregate_id)?);
        }
    }
    Ok(super::write_message(&message))
}

/// Writes one `PublishTarget`.
fn write_publish_target(
    mut b: publish_target::Builder<'_>,
    target: &PublishTarget,
) -> Result<(), WireError> {
    b.set_plugin(check_text("publishTargets.plugin", &target.plugin)?);
    b.set_has_mode(target.mode.is_some());
    if let Some(mode) = &target.mode {
        b.set_mode(check_text("publishTargets.mode", mode)?);
    }
    b.set_has_priority(target.priority.is_some());
    if let Some(priority) = &target.priority {
        b.set_priority(check_text("publishTargets.priority", priority)?);
    }
    Ok(())
}

/// Reads one `PublishTarget`.
fn read_publish_target(r: publish_target::Reader<'_>) -> Result<PublishTarget, WireError> {
    Ok(PublishTarget {
        plugin: text("publishTargets.plugin", r.get_plugin())?,
        mode: opt_text("publishTargets.mode", r.get_has_mode(), r.get_mode())?,
        priority: opt_text(
            "publishTargets.priority",
            r.get_has_priority(),
            r.get_priority(),
        )?,
    })
}

/// Decodes one `ControlRequest` stream message (a frame body): returns the request id, the
/// token exactly as sent (empty for `verifyAggregate`, which has none) and the request.
///
/// This is the server side of [`encode_request`], for fake servers and tests. Optional fields
/// are `Some` exactly when their `has*` flag is set; a value sent without its flag is ignored,
/// as the real server does.
///
/// # Errors
///
/// [`WireError::Malformed`] for bytes that are not exactly one valid message (truncated,
/// trailing bytes, over the [`reader_options`](crate::reader_options) limits, wrong pointer
/// kinds, text that is not UTF-8); [`WireError::UnknownVariant`] for a payload discriminant
/// this crate does not know. Never panics.
pub fn decode_request(bytes: &[u8]) -> Result<(u64, String, Request), WireError> {
    let message = read_message(bytes)?;
    let root = message.get_root::<control_request::Reader<'_>>()?;
    let id = root.get_id();
    let which = root
        .get_payload()
        .which()
        .map_err(|err| WireError::UnknownVariant {
            what: "request",
            discriminant: err.0,
        })?;
    use control_request::payload::Which as W;
    let (token, request) = match which {
        W::ListAggregates(r) => {
            let r = r?;
            let request = ListAggregates {
                cursor: opt_text("cursor", r.get_has_cursor(), r.get_cursor())?,
                take: r.get_has_take().then(|| r.get_take()),
                filter: opt_text("filter", r.get_has_filter(), r.get_filter())?,
                sort: opt_text("sort", r.get_has_sort(), r.get_sort())?,
                include_archived: r.get_include_archived(),
                archived_only: r.get_archived_only(),
                resolve: r.get_resolve(),
                resolve_depth: r.get_has_resolve_depth().then(|| r.get_resolve_depth()),
            };
            (
                text("token", r.get_token())?,
                Request::ListAggregates(request),
            )
        }
        W::GetAggregate(r) => {
            let r = r?;
            let request = GetAggregate {
                aggregate_type: text("aggregateType", r.get_aggregate_type())?,
                aggregate_id: text("aggregateId", r.get_aggregate_id())?,
                resolve: r.get_resolve(),
                resolve_depth: r.get_has_resolve_depth().then(|| r.get_resolve_depth()),
            };
            (
                text("token", r.get_token())?,
                Request::GetAggregate(request),
            )
        }
        W::ListEvents(r) => {
            let r = r?;
            let request = ListEvents {
                aggregate_type: text("aggregateType", r.get_aggregate_type())?,
                aggregate_id: text("aggregateId", r.get_aggregate_id())?,
                cursor: opt_text("cursor", r.get_has_cursor(), r.get_cursor())?,
                take: r.get_has_take().then(|| r.get_take()),
                filter: opt_text("filter", r.get_has_filter(), r.get_filter())?,
            };
            (text("token", r.get_token())?, Request::ListEvents(request))
        }
        W::AppendEvent(r) => {
            let (token, body) = read_event!(
                r?,
                AppendEvent,
                get_payload_json,
                payload_json,
                "payloadJson"
            );
            (token, Request::AppendEvent(body))
        }
        W::VerifyAggregate(r) => {
            let r = r?;
            let request = AggregateRef {
                aggregate_type: text("aggregateType", r.get_aggregate_type())?,
                aggregate_id: text("aggregateId", r.get_aggregate_id())?,
            };
            (String::new(), Request::VerifyAggregate(request))
        }
        W::PatchEvent(r) => {
            let (token, body) =
                read_event!(r?, PatchEvent, get_patch_json, patch_json, "patchJson");
            (token, Request::PatchEvent(body))
        }
        W::SelectAggregate(r) => {
            let r = r?;
            let request = SelectAggregate {
                aggregate_type: text("aggregateType", r.get_aggregate_type())?,
                aggregate_id: text("aggregateId", r.get_aggregate_id())?,
                fields: text_list("fields", r.get_fields())?,
            };
            (
                text("token", r.get_token())?,
                Request::SelectAggregate(request),
            )
        }
        W::CreateAggregate(r) => {
            let (token, body) = read_event!(
                r?,
                AppendEvent,
                get_payload_json,
                payload_json,
                "payloadJson"
            );
            (token, Request::CreateAggregate(body))
        }
        W::SetAggregateArchive(r) => {
            let r = r?;
            let request = SetArchive {
                aggregate_type: text("aggregateType", r.get_aggregate_type())?,
                aggregate_id: text("aggregateId", r.get_aggregate_id())?,
                archived: r.get_archived(),
                note: opt_text("note", r.get_has_note(), r.get_note())?,
            };
            (
                text("token", r.get_token())?,
                Request::SetAggregateArchive(request),
            )
        }
        W::ListSchemas(r) => (text("token", r?.get_token())?, Request::ListSchemas),
        W::ReplaceSchemas(r) => {
            let r = r?;
            let request = ReplaceSchemas {
                schemas_json: text("schemasJson", r.get_schemas_json())?,
            };
            (
                text("token", r.get_token())?,
                Request::ReplaceSchemas(request),
            )
        }
        W::TenantAssign(r) => {
            let r = r?;
            let request = TenantAssign {
                tenant_id: text("tenantId", r.get_tenant_id())?,
                shard_id: text("shardId", r.get_shard_id())?,
            };
            (
                text("token", r.get_token())?,
                Request::TenantAssign(request),
            )
        }
        W::TenantUnassign(r) => {
            let r = r?;
            let tenant = text("tenantId", r.get_tenant_id())?;
            (
                text("token", r.get_token())?,
                Request::TenantUnassign(tenant),
            )
        }
        W::TenantQuotaSet(r) => {
            let r = r?;
            let request = TenantQuotaSet {
                tenant_id: text("tenantId", r.get_tenant_id())?,
                max_storage_mb: r.get_max_storage_mb(),
            };
            (
                text("token", r.get_token())?,
                Request::TenantQuotaSet(request),
            )
        }
        W::TenantQuotaClear(r) => {
            let r = r?;
            let tenant = text("tenantId", r.get_tenant_id())?;
            (
                text("token", r.get_token())?,
                Request::TenantQuotaClear(tenant),
            )
        }
        W::TenantQuotaRecalc(r) => {
            let r = r?;
            let tenant = text("tenantId", r.get_tenant_id())?;
            (
                text("token", r.get_token())?,
                Request::TenantQuotaRecalc(tenant),
            )
        }
        W::TenantReload(r) => {
            let r = r?;
            let tenant = text("tenantId", r.get_tenant_id())?;
            (text("token", r.get_token())?, Request::TenantReload(tenant))
        }
        W::TenantSchemaPublish(r) => {
            let r = r?;
            let request = TenantSchemaPublish {
                tenant_id: text("tenantId", r.get_tenant_id())?,
                reason: opt_text("reason", r.get_has_reason(), r.get_reason())?,
                actor: opt_text("actor", r.get_has_actor(), r.get_actor())?,
                labels: text_list("labels", r.get_labels())?,
                activate: r.get_activate(),
                force: r.get_force(),
                reload: r.get_reload(),
            };
            (
                text("token", r.get_token())?,
                Request::TenantSchemaPublish(request),
            )
        }
        W::CreateSnapshot(r) => {
            let r = r?;
            let request = CreateSnapshot {
                aggregate_type: text("aggregateType", r.get_aggregate_type())?,
                aggregate_id: text("aggregateId", r.get_aggregate_id())?,
                comment: opt_text("comment", r.get_has_comment(), r.get_comment())?,
            };
            (
                text("token", r.get_token())?,
                Request::CreateSnapshot(request),
            )
        }
        W::ListSnapshots(r) => {
            let r = r?;
            let request = ListSnapshots {
                aggregate_type: opt_text(
                    "aggregateType",
                    r.get_has_aggregate_type(),
                    r.get_aggregate_type(),
                )?,
                aggregate_id: opt_text(
                    "aggregateId",
                    r.get_has_aggregate_id(),
                    r.get_aggregate_id(),
                )?,
                version: r.get_has_version().then(|| r.get_version()),
            };
            (
                text("token", r.get_token())?,
                Request::ListSnapshots(request),
            )
        }
        W::GetSnapshot(r) => {
            let r = r?;
            (
                text("token", r.get_token())?,
                Request::GetSnapshot(r.get_snapshot_id()),
            )
        }
        W::ListReferrers(r) => {
            let r = r?;
            let request = AggregateRef {
                aggregate_type: text("aggregateType", r.get_aggregate_type())?,
                aggregate_id: text("aggregateId", r.get_aggregate_id())?,
            };
            (
                text("token", r.get_token())?,
                Request::ListReferrers(request),
            )
        }
    };
    Ok((id, token, request))
}
