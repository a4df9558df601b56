# edbx: the EventDBX control-plane messages, as spoken by server 3.19.4.
#
# Written for edbx from the protocol notes; it is wire-compatible with the server's schema:
# every struct keeps the server's field ordinals, field types and union member order, which is
# all that determines the encoded layout. Names follow the server's because they are the
# interface; the file id, comments and declaration order are ours.
#
# After editing, refresh the checked-in Rust code:
#   EDBX_REGEN=1 cargo test -p edbx-wire --test it generated_fresh

@0xe67b412a29134e47;

using Admin = import "admin.capnp";

# ---------------------------------------------------------------------------------------------
# Connection opening: one bare (unframed) stream message each way.
# ---------------------------------------------------------------------------------------------

struct ControlHello {
  # First message on a connection, client to server.
  protocolVersion @0 :UInt16;  # Always 1.
  token @1 :Text;              # Must always be set, or the server takes the connection for a CLI call.
  tenantId @2 :Text;           # Empty selects the server's default domain.
  noNoise @3 :Bool;            # Ask for a plaintext session.
}

struct ControlHelloResponse {
  # The server's answer to ControlHello; the connection is closed when not accepted.
  accepted @0 :Bool;
  message @1 :Text;
  noNoise @2 :Bool;            # The session is plaintext; follow this, not the request.
}

# ---------------------------------------------------------------------------------------------
# Session envelopes: one per frame.
# ---------------------------------------------------------------------------------------------

struct ControlRequest {
  # A request frame. The server echoes `id` in the response.
  id @0 :UInt64;
  payload :union {
    listAggregates @1 :ListAggregatesRequest;
    getAggregate @2 :GetAggregateRequest;
    listEvents @3 :ListEventsRequest;
    appendEvent @4 :AppendEventRequest;
    verifyAggregate @5 :VerifyAggregateRequest;
    patchEvent @6 :PatchEventRequest;
    selectAggregate @7 :SelectAggregateRequest;
    createAggregate @8 :CreateAggregateRequest;
    setAggregateArchive @9 :SetAggregateArchiveRequest;
    listSchemas @10 :Admin.ListSchemasRequest;
    replaceSchemas @11 :Admin.ReplaceSchemasRequest;
    tenantAssign @12 :Admin.TenantAssignRequest;
    tenantUnassign @13 :Admin.TenantUnassignRequest;
    tenantQuotaSet @14 :Admin.TenantQuotaSetRequest;
    tenantQuotaClear @15 :Admin.TenantQuotaClearRequest;
    tenantQuotaRecalc @16 :Admin.TenantQuotaRecalcRequest;
    tenantReload @17 :Admin.TenantReloadRequest;
    tenantSchemaPublish @18 :Admin.TenantSchemaPublishRequest;
    createSnapshot @19 :CreateSnapshotRequest;
    listSnapshots @20 :ListSnapshotsRequest;
    getSnapshot @21 :GetSnapshotRequest;
    listReferrers @22 :ListReferrersRequest;
  }
}

struct ControlResponse {
  # A response frame; `id` copies the request's. patchEvent is answered with appendEvent.
  id @0 :UInt64;
  payload :union {
    listAggregates @1 :ListAggregatesResponse;
    getAggregate @2 :GetAggregateResponse;
    listEvents @3 :ListEventsResponse;
    appendEvent @4 :AppendEventResponse;
    verifyAggregate @5 :VerifyAggregateResponse;
    selectAggregate @6 :SelectAggregateResponse;
    error @7 :ControlError;
    createAggregate @8 :CreateAggregateResponse;
    setAggregateArchive @9 :SetAggregateArchiveResponse;
    listSchemas @10 :Admin.ListSchemasResponse;
    replaceSchemas @11 :Admin.ReplaceSchemasResponse;
    tenantAssign @12 :Admin.TenantAssignResponse;
    tenantUnassign @13 :Admin.TenantUnassignResponse;
    tenantQuotaSet @14 :Admin.TenantQuotaSetResponse;
    tenantQuotaClear @15 :Admin.TenantQuotaClearResponse;
    tenantQuotaRecalc @16 :Admin.TenantQuotaRecalcResponse;
    tenantReload @17 :Admin.TenantReloadResponse;
    tenantSchemaPublish @18 :Admin.TenantSchemaPublishResponse;
    createSnapshot @19 :CreateSnapshotResponse;
    listSnapshots @20 :ListSnapshotsResponse;
    getSnapshot @21 :GetSnapshotResponse;
    listReferrers @22 :ListReferrersResponse;
  }
}

struct ControlError {
  # A failed request; the session stays open.
  code @0 :Text;
  message @1 :Text;
}

# ---------------------------------------------------------------------------------------------
# Reads. An optional field `x` is only looked at when its `hasX` flag is true.
# ---------------------------------------------------------------------------------------------

struct ListAggregatesRequest {
  cursor @0 :Text;
  hasCursor @1 :Bool;
  take @2 :UInt64;
  hasTake @3 :Bool;
  filter @4 :Text;
  hasFilter @5 :Bool;
  sort @6 :Text;
  hasSort @7 :Bool;
  includeArchived @8 :Bool;
  archivedOnly @9 :Bool;
  token @10 :Text;
  resolve @11 :Bool;
  resolveDepth @12 :UInt32;
  hasResolveDepth @13 :Bool;
}

struct ListAggregatesResponse {
  aggregatesJson @0 :Text;
  nextCursor @1 :Text;
  hasNextCursor @2 :Bool;
  resolvedJson @3 :Text;
  hasResolvedJson @4 :Bool;
}

struct GetAggregateRequest {
  aggregateType @0 :Text;
  aggregateId @1 :Text;
  token @2 :Text;
  resolve @3 :Bool;
  resolveDepth @4 :UInt32;
  hasResolveDepth @5 :Bool;
}

struct GetAggregateResponse {
  found @0 :Bool;
  aggregateJson @1 :Text;
  resolvedJson @2 :Text;
  hasResolvedJson @3 :Bool;
}

struct ListEventsRequest {
  aggregateType @0 :Text;
  aggregateId @1 :Text;
  cursor @2 :Text;
  hasCursor @3 :Bool;
  take @4 :UInt64;
  hasTake @5 :Bool;
  filter @6 :Text;             # Ignored by server 3.19.4.
  hasFilter @7 :Bool;
  token @8 :Text;
}

struct ListEventsResponse {
  eventsJson @0 :Text;
  nextCursor @1 :Text;
  hasNextCursor @2 :Bool;
}

struct VerifyAggregateRequest {
  # The only request without a token.
  aggregateType @0 :Text;
  aggregateId @1 :Text;
}

struct VerifyAggregateResponse {
  merkleRoot @0 :Text;
}

struct SelectAggregateRequest {
  aggregateType @0 :Text;
  aggregateId @1 :Text;
  fields @2 :List(Text);
  token @3 :Text;
}

struct SelectAggregateResponse {
  found @0 :Bool;
  selectionJson @1 :Text;
}

struct ListReferrersRequest {
  token @0 :Text;
  aggregateType @1 :Text;
  aggregateId @2 :Text;
}

struct ListReferrersResponse {
  referrersJson @0 :Text;
}

# ---------------------------------------------------------------------------------------------
# Writes.
# ---------------------------------------------------------------------------------------------

struct PublishTarget {
  # Routes the appended event to a plugin.
  plugin @0 :Text;
  mode @1 :Text;
  hasMode @2 :Bool;
  priority @3 :Text;
  hasPriority @4 :Bool;
}

struct AppendEventRequest {
  token @0 :Text;
  aggregateType @1 :Text;
  aggregateId @2 :Text;
  eventType @3 :Text;
  payloadJson @4 :Text;
  note @5 :Text;
  hasNote @6 :Bool;
  metadataJson @7 :Text;
  hasMetadata @8 :Bool;
  publishTargets @9 :List(PublishTarget);
  hasPublishTargets @10 :Bool;
}

struct AppendEventResponse {
  # Also the answer to PatchEventRequest.
  eventJson @0 :Text;
}

struct PatchEventRequest {
  # Same shape as AppendEventRequest, with an RFC 6902 patch in place of the payload.
  token @0 :Text;
  aggregateType @1 :Text;
  aggregateId @2 :Text;
  eventType @3 :Text;
  patchJson @4 :Text;
  note @5 :Text;
  hasNote @6 :Bool;
  metadataJson @7 :Text;
  hasMetadata @8 :Bool;
  publishTargets @9 :List(PublishTarget);
  hasPublishTargets @10 :Bool;
}

struct CreateAggregateRequest {
  token @0 :Text;
  aggregateType @1 :Text;
  aggregateId @2 :Text;
  eventType @3 :Text;
  payloadJson @4 :Text;
  note @5 :Text;
  hasNote @6 :Bool;
  metadataJson @7 :Text;
  hasMetadata @8 :Bool;
  publishTargets @9 :List(PublishTarget);
  hasPublishTargets @10 :Bool;
}

struct CreateAggregateResponse {
  aggregateJson @0 :Text;
}

struct SetAggregateArchiveRequest {
  token @0 :Text;
  aggregateType @1 :Text;
  aggregateId @2 :Text;
  archived @3 :Bool;           # true archives, false restores.
  note @4 :Text;
  hasNote @5 :Bool;
}

struct SetAggregateArchiveResponse {
  aggregateJson @0 :Text;
}

# ---------------------------------------------------------------------------------------------
# Snapshots.
# ---------------------------------------------------------------------------------------------

struct CreateSnapshotRequest {
  token @0 :Text;
  aggregateType @1 :Text;
  aggregateId @2 :Text;
  comment @3 :Text;
  hasComment @4 :Bool;
}

struct CreateSnapshotResponse {
  snapshotJson @0 :Text;
}

struct ListSnapshotsRequest {
  token @0 :Text;
  aggregateType @1 :Text;
  aggregateId @2 :Text;
  hasAggregateType @3 :Bool;
  hasAggregateId @4 :Bool;
  version @5 :UInt64;
  hasVersion @6 :Bool;
}

struct ListSnapshotsResponse {
  snapshotsJson @0 :Text;
}

struct GetSnapshotRequest {
  token @0 :Text;
  snapshotId @1 :UInt64;
}

struct GetSnapshotResponse {
  found @0 :Bool;
  snapshotJson @1 :Text;
}
