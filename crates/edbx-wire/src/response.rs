//! Typed control responses: one struct per `ControlResponse` payload variant.
//!
//! JSON-carrying fields stay JSON text here: the protocol crate does not interpret them. Optional
//! fields are `Option`s built from the schema's `has*` flags.

/// `listAggregates` reply.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct ListAggregatesReply {
    /// JSON array of aggregates; may hold fewer rows than `take` (the server truncates pages).
    pub aggregates_json: String,
    /// Cursor for the next page, when the page was full (never with a sort).
    pub next_cursor: Option<String>,
    /// JSON array of resolved aggregates, when resolution was requested.
    pub resolved_json: Option<String>,
}

/// `getAggregate` reply.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct GetAggregateReply {
    /// Whether the aggregate exists (and is visible to the token).
    pub found: bool,
    /// The aggregate JSON; empty when not found.
    pub aggregate_json: String,
    /// The resolved aggregate; the server sends it for every found aggregate.
    pub resolved_json: Option<String>,
}

/// `listEvents` reply.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct ListEventsReply {
    /// JSON array of events; may hold fewer rows than `take` (the server truncates pages).
    pub events_json: String,
    /// Cursor for the next page, when the page was full.
    pub next_cursor: Option<String>,
}

/// `selectAggregate` reply.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct SelectReply {
    /// Whether the aggregate exists.
    pub found: bool,
    /// JSON object of path → value; empty when not found.
    pub selection_json: String,
}

/// An error reply (`ControlError`): the request failed on the server; the session goes on.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct ControlError {
    /// Machine-readable code such as `aggregate_not_found`.
    pub code: String,
    /// Human-readable message.
    pub message: String,
}

/// `tenantAssign` reply.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct TenantAssignReply {
    /// Whether the assignment differed before.
    pub changed: bool,
    /// The shard id, echoed from the request.
    pub shard_id: String,
}

/// `tenantQuotaSet` reply.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct TenantQuotaSetReply {
    /// Whether the quota differed before.
    pub changed: bool,
    /// The quota now set, in MiB.
    pub quota_mb: Option<u64>,
}

/// `tenantSchemaPublish` reply.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct TenantSchemaPublishReply {
    /// The stored version (`v%Y%m%dT%H%M%S%3fZ`, possibly with a `-NN` suffix).
    pub version_id: String,
    /// Whether the version was activated.
    pub activated: bool,
    /// Whether nothing was stored because the schemas equal the latest version.
    pub skipped: bool,
}

/// `getSnapshot` reply.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct GetSnapshotReply {
    /// Whether the snapshot exists.
    pub found: bool,
    /// Snapshot JSON; empty when not found.
    pub snapshot_json: String,
}

impl ListAggregatesReply {
    /// A page with no next cursor and nothing resolved.
    pub fn new(aggregates_json: impl Into<String>) -> Self {
        Self {
            aggregates_json: aggregates_json.into(),
            ..Self::default()
        }
    }
}

impl GetAggregateReply {
    /// A reply with nothing resolved (`aggregate_json` empty when not found).
    pub fn new(found: bool, aggregate_json: impl Into<String>) -> Self {
        Self {
            found,
            aggregate_json: aggregate_json.into(),
            ..Self::default()
        }
    }
}

impl ListEventsReply {
    /// A page with no next cursor.
    pub fn new(events_json: impl Into<String>) -> Self {
        Self {
            events_json: events_json.into(),
            ..Self::default()
        }
    }
}

impl SelectReply {
    /// A selection (`selection_json` empty when not found).
    pub fn new(found: bool, selection_json: impl Into<String>) -> Self {
        Self {
            found,
            selection_json: selection_json.into(),
            ..Self::default()
        }
    }
}

impl ControlError {
    /// A server error with its code and message.
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            code: code.into(),
            message: message.into(),
            ..Self::default()
        }
    }
}

impl TenantAssignReply {
    /// An assignment reply.
    pub fn new(changed: bool, shard_id: impl Into<String>) -> Self {
        Self {
            changed,
            shard_id: shard_id.into(),
            ..Self::default()
        }
    }
}

impl TenantQuotaSetReply {
    /// A quota reply with no quota.
    pub fn new(changed: bool) -> Self {
        Self {
            changed,
            ..Self::default()
        }
    }
}

impl TenantSchemaPublishReply {
    /// A publish reply.
    pub fn new(version_id: impl Into<String>, activated: bool, skipped: bool) -> Self {
        Self {
            version_id: version_id.into(),
            activated,
            skipped,
            ..Self::default()
        }
    }
}

impl GetSnapshotReply {
    /// A snapshot reply (`snapshot_json` empty when not found).
    pub fn new(found: bool, snapshot_json: impl Into<String>) -> Self {
        Self {
            found,
            snapshot_json: snapshot_json.into(),
            ..Self::default()
        }
    }
}

/// Every response the server 3.19.4 sends, in schema ordinal order.
///
/// Mutations that echo JSON (`AppendEvent`, `CreateAggregate`, `SetAggregateArchive`) carry an
/// empty string when the server runs with `verbose_responses = false`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Response {
    /// A page of aggregates.
    ListAggregates(ListAggregatesReply),
    /// One aggregate.
    GetAggregate(GetAggregateReply),
    /// A page of events.
    ListEvents(ListEventsReply),
    /// Reply to `appendEvent` and to `patchEvent`: the event JSON, or `""`.
    AppendEvent(String),
    /// The aggregate's stored Merkle root.
    VerifyAggregate(String),
    /// Projected fields of one aggregate.
    SelectAggregate(SelectReply),
    /// The request failed; the session goes on.
    Error(ControlError),
    /// The new aggregate JSON, or `""`.
    CreateAggregate(String),
    /// The aggregate JSON after archiving or restoring, or `""`.
    SetAggregateArchive(String),
    /// JSON object of aggregate type → schema.
    ListSchemas(String),
    /// Number of schemas now stored.
    ReplaceSchemas(u32),
    /// Tenant shard assignment result.
    TenantAssign(TenantAssignReply),
    /// `changed`.
    TenantUnassign(bool),
    /// Tenant quota result.
    TenantQuotaSet(TenantQuotaSetReply),
    /// `changed`.
    TenantQuotaClear(bool),
    /// Storage bytes now accounted to the tenant.
    TenantQuotaRecalc(u64),
    /// `reloaded`.
    TenantReload(bool),
    /// Schema publication result.
    TenantSchemaPublish(TenantSchemaPublishReply),
    /// The snapshot JSON.
    CreateSnapshot(String),
    /// JSON array of snapshots.
    ListSnapshots(String),
    /// One snapshot.
    GetSnapshot(GetSnapshotReply),
    /// JSON array of referrers.
    ListReferrers(String),
}

impl Response {
    /// The schema name of this response's variant, e.g. `"appendEvent"`.
    pub fn name(&self) -> &'static str {
        match self {
            Response::ListAggregates(_) => "listAggregates",
            Response::GetAggregate(_) => "getAggregate",
            Response::ListEvents(_) => "listEvents",
            Response::AppendEvent(_) => "appendEvent",
            Response::VerifyAggregate(_) => "verifyAggregate",
            Response::SelectAggregate(_) => "selectAggregate",
            Response::Error(_) => "error",
            Response::CreateAggregate(_) => "createAggregate",
            Response::SetAggregateArchive(_) => "setAggregateArchive",
            Response::ListSchemas(_) => "listSchemas",
            Response::ReplaceSchemas(_) => "replaceSchemas",
            Response::TenantAssign(_) => "tenantAssign",
            Response::TenantUnassign(_) => "tenantUnassign",
            Response::TenantQuotaSet(_) => "tenantQuotaSet",
            Response::TenantQuotaClear(_) => "tenantQuotaClear",
            Response::TenantQuotaRecalc(_) => "tenantQuotaRecalc",
            Response::TenantReload(_) => "tenantReload",
            Response::TenantSchemaPublish(_) => "tenantSchemaPublish",
            Response::CreateSnapshot(_) => "createSnapshot",
            Response::ListSnapshots(_) => "listSnapshots",
            Response::GetSnapshot(_) => "getSnapshot",
            Response::ListReferrers(_) => "listReferrers",
        }
    }
}
