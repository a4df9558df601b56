//! `ControlResponse` encoding and decoding.

use capnp::message::Builder;

use super::{MessageBuffer, check_text, opt_text, read_message, read_message_in_place, text};
use crate::generated::control_capnp::control_response;
use crate::response::*;
use crate::{Response, WireError};

/// Encodes one `ControlResponse` as an unpacked Cap'n Proto stream message (a frame body).
///
/// This is the server side of [`decode_response`], for fake servers and tests. Like the real
/// server it writes every `has*` flag explicitly and leaves absent text unset (read as `""`).
/// A `patchEvent` request is answered with [`Response::AppendEvent`].
///
/// # Errors
///
/// [`WireError::InvalidInput`] only for a text Cap'n Proto cannot represent (512 MiB or more).
pub fn encode_response(id: u64, response: &Response) -> Result<Vec<u8>, WireError> {
    let mut message = Builder::new_default();
    let mut root = message.init_root::<control_response::Builder<'_>>();
    root.set_id(id);
    let payload = root.init_payload();
    match response {
        Response::ListAggregates(r) => {
            let mut b = payload.init_list_aggregates();
            b.set_aggregates_json(check_text("aggregatesJson", &r.aggregates_json)?);
            b.set_has_next_cursor(r.next_cursor.is_some());
            if let Some(cursor) = &r.next_cursor {
                b.set_next_cursor(check_text("nextCursor", cursor)?);
            }
            b.set_has_resolved_json(r.resolved_json.is_some());
            if let Some(resolved) = &r.resolved_json {
                b.set_resolved_json(check_text("resolvedJson", resolved)?);
            }
        }
        Response::GetAggregate(r) => {
            let mut b = payload.init_get_aggregate();
            b.set_found(r.found);
            b.set_aggregate_json(check_text("aggregateJson", &r.aggregate_json)?);
            b.set_has_resolved_json(r.resolved_json.is_some());
            if let Some(resolved) = &r.resolved_json {
                b.set_resolved_json(check_text("resolvedJson", resolved)?);
            }
        }
        Response::ListEvents(r) => {
            let mut b = payload.init_list_events();
            b.set_events_json(check_text("eventsJson", &r.events_json)?);
            b.set_has_next_cursor(r.next_cursor.is_some());
            if let Some(cursor) = &r.next_cursor {
                b.set_next_cursor(check_text("nextCursor", cursor)?);
            }
        }
        Response::AppendEvent(event_json) => {
            let mut b = payload.init_append_event();
            b.set_event_json(check_text("eventJson", event_json)?);
        }
        Response::VerifyAggregate(merkle_root) => {
            let mut b = payload.init_verify_aggregate();
            b.set_merkle_root(check_text("merkleRoot", merkle_root)?);
        }
        Response::SelectAggregate(r) => {
            let mut b = payload.init_select_aggregate();
            b.set_found(r.found);
            b.set_selection_json(check_text("selectionJson", &r.selection_json)?);
        }
        Response::Error(r) => {
            let mut b = payload.init_error();
            b.set_code(check_text("code", &r.code)?);
            b.set_message(check_text("message", &r.message)?);
        }
        Response::CreateAggregate(aggregate_json) => {
            let mut b = payload.init_create_aggregate();
            b.set_aggregate_json(check_text("aggregateJson", aggregate_json)?);
        }
        Response::SetAggregateArchive(aggregate_json) => {
            let mut b = payload.init_set_aggregate_archive();
            b.set_aggregate_json(check_text("aggregateJson", aggregate_json)?);
        }
        Response::ListSchemas(schemas_json) => {
            let mut b = payload.init_list_schemas();
            b.set_schemas_json(check_text("schemasJson", schemas_json)?);
        }
        Response::ReplaceSchemas(replaced) => {
            payload.init_replace_schemas().set_replaced(*replaced);
        }
        Response::TenantAssign(r) => {
            let mut b = payload.init_tenant_assign();
            b.set_changed(r.changed);
            b.set_shard_id(check_text("shardId", &r.shard_id)?);
        }
        Response::TenantUnassign(changed) => {
            payload.init_tenant_unassign().set_changed(*changed);
        }
        Response::TenantQuotaSet(r) => {
            let mut b = payload.init_tenant_quota_set();
            b.set_changed(r.changed);
            b.set_has_quota(r.quota_mb.is_some());
            b.set_quota_mb(r.quota_mb.unwrap_or_default());
        }
        Response::TenantQuotaClear(changed) => {
            payload.init_tenant_quota_clear().set_changed(*changed);
        }
        Response::TenantQuotaRecalc(storage_bytes) => {
            payload
                .init_tenant_quota_recalc()
                .set_storage_bytes(*storage_bytes);
        }
        Response::TenantReload(reloaded) => {
            payload.init_tenant_reload().set_reloaded(*reloaded);
        }
        Response::TenantSchemaPublish(r) => {
            let mut b = payload.init_tenant_schema_publish();
            b.set_version_id(check_text("versionId", &r.version_id)?);
            b.set_activated(r.activated);
            b.set_skipped(r.skipped);
        }
        Response::CreateSnapshot(snapshot_json) => {
            let mut b = payload.init_create_snapshot();
            b.set_snapshot_json(check_text("snapshotJson", snapshot_json)?);
        }
        Response::ListSnapshots(snapshots_json) => {
            let mut b = payload.init_list_snapshots();
            b.set_snapshots_json(check_text("snapshotsJson", snapshots_json)?);
        }
        Response::GetSnapshot(r) => {
            let mut b = payload.init_get_snapshot();
            b.set_found(r.found);
            b.set_snapshot_json(check_text("snapshotJson", &r.snapshot_json)?);
        }
        Response::ListReferrers(referrers_json) => {
            let mut b = payload.init_list_referrers();
            b.set_referrers_json(check_text("referrersJson", referrers_json)?);
        }
    }
    Ok(super::write_message(&message))
}

/// Decodes one `ControlResponse` stream message (a frame body): returns the echoed request id
/// and the response.
///
/// Optional fields are `Some` exactly when their `has*` flag is set. The reply to a
/// `patchEvent` request arrives as [`Response::AppendEvent`]; a failed request arrives as
/// [`Response::Error`] (still `Ok` here: the message itself decoded fine).
///
/// # Errors
///
/// [`WireError::Malformed`] for bytes that are not exactly one valid message (truncated,
/// trailing bytes, over the [`reader_options`](crate::reader_options) limits, wrong pointer
/// kinds, text that is not UTF-8); [`WireError::UnknownVariant`] for a payload discriminant
/// this crate does not know (a newer server). Never panics.
pub fn decode_response(bytes: &[u8]) -> Result<(u64, Response), WireError> {
    decode_response_from(read_message(bytes)?)
}

/// Decodes the response held in `buffer` (see [`decode_response`]), reading it in place when
/// it is one segment (a reply up to ~8 KiB): no copy of the message and no allocation besides
/// the reply's own texts. Same result and errors as `decode_response(buffer.as_bytes())`.
///
/// ```
/// use edbx_wire::{MessageBuffer, Response, decode_response_in, encode_response};
///
/// let reply = Response::VerifyAggregate("root".into());
/// let bytes = encode_response(7, &reply).unwrap();
/// let mut buffer = MessageBuffer::new();
/// buffer.fill(&bytes);
/// assert_eq!(decode_response_in(&buffer).unwrap(), (7, reply));
/// ```
pub fn decode_response_in(buffer: &MessageBuffer) -> Result<(u64, Response), WireError> {
    match read_message_in_place(buffer)? {
        Some(message) => decode_response_from(message),
        None => decode_response(buffer.as_bytes()),
    }
}

fn decode_response_from<S: capnp::message::ReaderSegments>(
    message: capnp::message::Reader<S>,
) -> Result<(u64, Response), WireError> {
    decode_root(message.get_root::<control_response::Reader<'_>>()?)
}

fn decode_root(root: control_response::Reader<'_>) -> Result<(u64, Response), WireError> {
    let id = root.get_id();
    let which = root
        .get_payload()
        .which()
        .map_err(|err| WireError::UnknownVariant {
            what: "response",
            discriminant: err.0,
        })?;
    use control_response::payload::Which as W;
    let response = match which {
        W::ListAggregates(r) => {
            let r = r?;
            Response::ListAggregates(ListAggregatesReply {
                aggregates_json: text("aggregatesJson", r.get_aggregates_json())?,
                next_cursor: opt_text("nextCursor", r.get_has_next_cursor(), r.get_next_cursor())?,
                resolved_json: opt_text(
                    "resolvedJson",
                    r.get_has_resolved_json(),
                    r.get_resolved_json(),
                )?,
            })
        }
        W::GetAggregate(r) => {
            let r = r?;
            Response::GetAggregate(GetAggregateReply {
                found: r.get_found(),
                aggregate_json: text("aggregateJson", r.get_aggregate_json())?,
                resolved_json: opt_text(
                    "resolvedJson",
                    r.get_has_resolved_json(),
                    r.get_resolved_json(),
                )?,
            })
        }
        W::ListEvents(r) => {
            let r = r?;
            Response::ListEvents(ListEventsReply {
                events_json: text("eventsJson", r.get_events_json())?,
                next_cursor: opt_text("nextCursor", r.get_has_next_cursor(), r.get_next_cursor())?,
            })
        }
        W::AppendEvent(r) => Response::AppendEvent(text("eventJson", r?.get_event_json())?),
        W::VerifyAggregate(r) => {
            Response::VerifyAggregate(text("merkleRoot", r?.get_merkle_root())?)
        }
        W::SelectAggregate(r) => {
            let r = r?;
            Response::SelectAggregate(SelectReply {
                found: r.get_found(),
                selection_json: text("selectionJson", r.get_selection_json())?,
            })
        }
        W::Error(r) => {
            let r = r?;
            Response::Error(ControlError {
                code: text("code", r.get_code())?,
                message: text("message", r.get_message())?,
            })
        }
        W::CreateAggregate(r) => {
            Response::CreateAggregate(text("aggregateJson", r?.get_aggregate_json())?)
        }
        W::SetAggregateArchive(r) => {
            Response::SetAggregateArchive(text("aggregateJson", r?.get_aggregate_json())?)
        }
        W::ListSchemas(r) => Response::ListSchemas(text("schemasJson", r?.get_schemas_json())?),
        W::ReplaceSchemas(r) => Response::ReplaceSchemas(r?.get_replaced()),
        W::TenantAssign(r) => {
            let r = r?;
            Response::TenantAssign(TenantAssignReply {
                changed: r.get_changed(),
                shard_id: text("shardId", r.get_shard_id())?,
            })
        }
        W::TenantUnassign(r) => Response::TenantUnassign(r?.get_changed()),
        W::TenantQuotaSet(r) => {
            let r = r?;
            Response::TenantQuotaSet(TenantQuotaSetReply {
                changed: r.get_changed(),
                quota_mb: r.get_has_quota().then(|| r.get_quota_mb()),
            })
        }
        W::TenantQuotaClear(r) => Response::TenantQuotaClear(r?.get_changed()),
        W::TenantQuotaRecalc(r) => Response::TenantQuotaRecalc(r?.get_storage_bytes()),
        W::TenantReload(r) => Response::TenantReload(r?.get_reloaded()),
        W::TenantSchemaPublish(r) => {
            let r = r?;
            Response::TenantSchemaPublish(TenantSchemaPublishReply {
                version_id: text("versionId", r.get_version_id())?,
                activated: r.get_activated(),
                skipped: r.get_skipped(),
            })
        }
        W::CreateSnapshot(r) => {
            Response::CreateSnapshot(text("snapshotJson", r?.get_snapshot_json())?)
        }
        W::ListSnapshots(r) => {
            Response::ListSnapshots(text("snapshotsJson", r?.get_snapshots_json())?)
        }
        W::GetSnapshot(r) => {
            let r = r?;
            Response::GetSnapshot(GetSnapshotReply {
                found: r.get_found(),
                snapshot_json: text("snapshotJson", r.get_snapshot_json())?,
            })
        }
        W::ListReferrers(r) => {
            Response::ListReferrers(text("referrersJson", r?.get_referrers_json())?)
        }
    };
    Ok((id, response))
}
