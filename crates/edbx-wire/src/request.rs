//! Typed control requests: one struct per `ControlRequest` payload variant.
//!
//! Optional fields are `Option`s; the codec turns them into the schema's explicit `has*` flags.
//! The token is not part of these structs: it travels beside the request (see
//! [`encode_request`](crate::encode_request)) so that a client can set it once per session and
//! override it per call.

/// A plugin routing target for appended events (`PublishTarget` in the schema).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct PublishTarget {
    /// Plugin name; must be non-empty.
    pub plugin: String,
    /// `all`, `event-only`, `state-only`, `schema-only`, `event-and-schema` or `extensions-only`.
    pub mode: Option<String>,
    /// `low`, `normal` or `high`.
    pub priority: Option<String>,
}

/// `listAggregates`: a page of aggregates.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct ListAggregates {
    /// Exclusive resume point (`a:<type>:<id>`, `r:<type>:<id>` or a `ts:` cursor).
    pub cursor: Option<String>,
    /// Page size; the server default is 10, its cap 1000.
    pub take: Option<u64>,
    /// Filter expression, e.g. `status = 'paid' AND qty > 2`.
    pub filter: Option<String>,
    /// Sort directives, e.g. `created_at:desc`.
    pub sort: Option<String>,
    /// Include archived aggregates after the active ones.
    pub include_archived: bool,
    /// Only archived aggregates.
    pub archived_only: bool,
    /// Resolve references of each aggregate.
    pub resolve: bool,
    /// Reference resolution depth (server default 2, max 5).
    pub resolve_depth: Option<u32>,
}

/// `getAggregate`: one aggregate by type and id.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct GetAggregate {
    /// Aggregate type (lower snake case).
    pub aggregate_type: String,
    /// Aggregate id.
    pub aggregate_id: String,
    /// Also resolve the aggregate's references (`resolvedJson`).
    pub resolve: bool,
    /// Reference resolution depth (server default 2, max 5).
    pub resolve_depth: Option<u32>,
}

/// `listEvents`: a page of one aggregate's events, ascending by version.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct ListEvents {
    /// Aggregate type.
    pub aggregate_type: String,
    /// Aggregate id.
    pub aggregate_id: String,
    /// Exclusive resume point `a:<type>:<id>:<version>`.
    pub cursor: Option<String>,
    /// Page size; the server default and cap are both 1000.
    pub take: Option<u64>,
    /// Sent for completeness; server 3.19.4 ignores event filters.
    pub filter: Option<String>,
}

/// The body shared by `appendEvent` and `createAggregate`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct AppendEvent {
    /// Aggregate type (`appendEvent` creates a missing aggregate with its first event).
    pub aggregate_type: String,
    /// Aggregate id.
    pub aggregate_id: String,
    /// Event type, e.g. `order.paid` (dots are stored as `_`).
    pub event_type: String,
    /// The event payload as JSON text.
    pub payload_json: String,
    /// Event note (at most 128 characters); `Some("")` stores an empty note.
    pub note: Option<String>,
    /// A JSON object whose keys all start with `@`.
    pub metadata_json: Option<String>,
    /// Plugin routing; `None` sends no targets.
    pub publish_targets: Option<Vec<PublishTarget>>,
}

/// `patchEvent`: append an event computed from an RFC 6902 patch of the current state.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct PatchEvent {
    /// Aggregate type; the aggregate must exist.
    pub aggregate_type: String,
    /// Aggregate id.
    pub aggregate_id: String,
    /// Event type of the appended event.
    pub event_type: String,
    /// A JSON array of RFC 6902 operations.
    pub patch_json: String,
    /// Event note.
    pub note: Option<String>,
    /// A JSON object whose keys all start with `@`.
    pub metadata_json: Option<String>,
    /// Plugin routing; `None` sends no targets.
    pub publish_targets: Option<Vec<PublishTarget>>,
}

/// An aggregate address: `verifyAggregate` and `listReferrers`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct AggregateRef {
    /// Aggregate type.
    pub aggregate_type: String,
    /// Aggregate id.
    pub aggregate_id: String,
}

/// `selectAggregate`: project dot-path fields of one aggregate's state.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct SelectAggregate {
    /// Aggregate type.
    pub aggregate_type: String,
    /// Aggregate id.
    pub aggregate_id: String,
    /// Dot paths into the state (`addr.city`, `tags.0`); blank entries are skipped.
    pub fields: Vec<String>,
}

/// `setAggregateArchive`: archive (`archived = true`) or restore an aggregate.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct SetArchive {
    /// Aggregate type.
    pub aggregate_type: String,
    /// Aggregate id.
    pub aggregate_id: String,
    /// `true` archives, `false` restores.
    pub archived: bool,
    /// Archive note; trimmed by the server, empty means none.
    pub note: Option<String>,
}

/// `replaceSchemas`: replace the tenant's whole schema set.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct ReplaceSchemas {
    /// JSON object mapping aggregate type to schema.
    pub schemas_json: String,
}

/// `tenantAssign`: record the shard of a tenant.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct TenantAssign {
    /// Tenant id (lower case, `[a-z0-9][a-z0-9_-]*`).
    pub tenant_id: String,
    /// Shard id, stored as given.
    pub shard_id: String,
}

/// `tenantQuotaSet`: set a tenant's storage quota in MiB.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct TenantQuotaSet {
    /// Tenant id.
    pub tenant_id: String,
    /// Quota in MiB.
    pub max_storage_mb: u64,
}

/// `tenantSchemaPublish`: version (and optionally activate) a tenant's live schemas.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct TenantSchemaPublish {
    /// Tenant id.
    pub tenant_id: String,
    /// Why the schemas are published.
    pub reason: Option<String>,
    /// Who publishes them.
    pub actor: Option<String>,
    /// Labels stored with the version.
    pub labels: Vec<String>,
    /// Make the new version the active one.
    pub activate: bool,
    /// Store a version even if identical to the latest.
    pub force: bool,
    /// Reload the tenant afterwards.
    pub reload: bool,
}

/// `createSnapshot`: snapshot an aggregate's current state.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct CreateSnapshot {
    /// Aggregate type.
    pub aggregate_type: String,
    /// Aggregate id.
    pub aggregate_id: String,
    /// Snapshot comment; trimmed by the server, empty means none.
    pub comment: Option<String>,
}

/// `listSnapshots`: snapshots, optionally narrowed to a type, an aggregate and a version.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct ListSnapshots {
    /// Only snapshots of this aggregate type.
    pub aggregate_type: Option<String>,
    /// Requires `aggregate_type`.
    pub aggregate_id: Option<String>,
    /// Only snapshots at this aggregate version.
    pub version: Option<u64>,
}

impl PublishTarget {
    /// A target for `plugin`, with the server's default mode and priority.
    pub fn new(plugin: impl Into<String>) -> Self {
        Self {
            plugin: plugin.into(),
            ..Self::default()
        }
    }
}

impl ListAggregates {
    /// The first page of every active aggregate, with the server's default page size.
    pub fn new() -> Self {
        Self::default()
    }
}

impl GetAggregate {
    /// The aggregate `aggregate_type`/`aggregate_id`, without resolving references.
    pub fn new(aggregate_type: impl Into<String>, aggregate_id: impl Into<String>) -> Self {
        Self {
            aggregate_type: aggregate_type.into(),
            aggregate_id: aggregate_id.into(),
            ..Self::default()
        }
    }
}

impl ListEvents {
    /// The first page of the aggregate's events, with the server's default page size.
    pub fn new(aggregate_type: impl Into<String>, aggregate_id: impl Into<String>) -> Self {
        Self {
            aggregate_type: aggregate_type.into(),
            aggregate_id: aggregate_id.into(),
            ..Self::default()
        }
    }
}

impl AppendEvent {
    /// An event with no note, metadata or publish targets.
    pub fn new(
        aggregate_type: impl Into<String>,
        aggregate_id: impl Into<String>,
        event_type: impl Into<String>,
        payload_json: impl Into<String>,
    ) -> Self {
        Self {
            aggregate_type: aggregate_type.into(),
            aggregate_id: aggregate_id.into(),
            event_type: event_type.into(),
            payload_json: payload_json.into(),
            ..Self::default()
        }
    }
}

impl PatchEvent {
    /// A patch with no note, metadata or publish targets.
    pub fn new(
        aggregate_type: impl Into<String>,
        aggregate_id: impl Into<String>,
        event_type: impl Into<String>,
        patch_json: impl Into<String>,
    ) -> Self {
        Self {
            aggregate_type: aggregate_type.into(),
            aggregate_id: aggregate_id.into(),
            event_type: event_type.into(),
            patch_json: patch_json.into(),
            ..Self::default()
        }
    }
}

impl AggregateRef {
    /// The aggregate `aggregate_type`/`aggregate_id`.
    pub fn new(aggregate_type: impl Into<String>, aggregate_id: impl Into<String>) -> Self {
        Self {
            aggregate_type: aggregate_type.into(),
            aggregate_id: aggregate_id.into(),
            ..Self::default()
        }
    }
}

impl SelectAggregate {
    /// The `fields` (dot paths) of the aggregate.
    pub fn new(
        aggregate_type: impl Into<String>,
        aggregate_id: impl Into<String>,
        fields: Vec<String>,
    ) -> Self {
        Self {
            aggregate_type: aggregate_type.into(),
            aggregate_id: aggregate_id.into(),
            fields,
            ..Self::default()
        }
    }
}

impl SetArchive {
    /// Archives (`true`) or restores (`false`) the aggregate, without a note.
    pub fn new(
        aggregate_type: impl Into<String>,
        aggregate_id: impl Into<String>,
        archived: bool,
    ) -> Self {
        Self {
            aggregate_type: aggregate_type.into(),
            aggregate_id: aggregate_id.into(),
            archived,
            ..Self::default()
        }
    }
}

impl ReplaceSchemas {
    /// Replaces every schema with `schemas_json`.
    pub fn new(schemas_json: impl Into<String>) -> Self {
        Self {
            schemas_json: schemas_json.into(),
            ..Self::default()
        }
    }
}

impl TenantAssign {
    /// Assigns `tenant_id` to `shard_id`.
    pub fn new(tenant_id: impl Into<String>, shard_id: impl Into<String>) -> Self {
        Self {
            tenant_id: tenant_id.into(),
            shard_id: shard_id.into(),
            ..Self::default()
        }
    }
}

impl TenantQuotaSet {
    /// Sets the tenant's storage quota.
    pub fn new(tenant_id: impl Into<String>, max_storage_mb: u64) -> Self {
        Self {
            tenant_id: tenant_id.into(),
            max_storage_mb,
            ..Self::default()
        }
    }
}

impl TenantSchemaPublish {
    /// Publishes the tenant's schemas with no reason, actor, labels or flags.
    pub fn new(tenant_id: impl Into<String>) -> Self {
        Self {
            tenant_id: tenant_id.into(),
            ..Self::default()
        }
    }
}

impl CreateSnapshot {
    /// A snapshot of the aggregate, without a comment.
    pub fn new(aggregate_type: impl Into<String>, aggregate_id: impl Into<String>) -> Self {
        Self {
            aggregate_type: aggregate_type.into(),
            aggregate_id: aggregate_id.into(),
            ..Self::default()
        }
    }
}

impl ListSnapshots {
    /// Every snapshot.
    pub fn new() -> Self {
        Self::default()
    }
}

/// Every request the server 3.19.4 understands, in schema ordinal order.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Request {
    /// List aggregates (`listAggregates @1`).
    ListAggregates(ListAggregates),
    /// Fetch one aggregate (`getAggregate @2`).
    GetAggregate(GetAggregate),
    /// List one aggregate's events (`listEvents @3`).
    ListEvents(ListEvents),
    /// Append an event, creating the aggregate if needed (`appendEvent @4`).
    AppendEvent(AppendEvent),
    /// Read an aggregate's stored Merkle root (`verifyAggregate @5`, no token).
    VerifyAggregate(AggregateRef),
    /// Append an event computed from a JSON patch (`patchEvent @6`).
    PatchEvent(PatchEvent),
    /// Project fields of one aggregate (`selectAggregate @7`).
    SelectAggregate(SelectAggregate),
    /// Create an aggregate with its first event; fails if it exists (`createAggregate @8`).
    CreateAggregate(AppendEvent),
    /// Archive or restore an aggregate (`setAggregateArchive @9`).
    SetAggregateArchive(SetArchive),
    /// Read all aggregate schemas (`listSchemas @10`).
    ListSchemas,
    /// Replace all aggregate schemas (`replaceSchemas @11`).
    ReplaceSchemas(ReplaceSchemas),
    /// Assign a tenant to a shard (`tenantAssign @12`).
    TenantAssign(TenantAssign),
    /// Clear a tenant's shard assignment (tenant id).
    TenantUnassign(String),
    /// Set a tenant's storage quota (`tenantQuotaSet @14`).
    TenantQuotaSet(TenantQuotaSet),
    /// Remove a tenant's quota (tenant id).
    TenantQuotaClear(String),
    /// Recompute a tenant's storage usage (tenant id).
    TenantQuotaRecalc(String),
    /// Reopen a tenant's store (tenant id).
    TenantReload(String),
    /// Publish a tenant's schemas as a new version (`tenantSchemaPublish @18`).
    TenantSchemaPublish(TenantSchemaPublish),
    /// Snapshot an aggregate (`createSnapshot @19`).
    CreateSnapshot(CreateSnapshot),
    /// List snapshots (`listSnapshots @20`).
    ListSnapshots(ListSnapshots),
    /// Fetch one snapshot by its id.
    GetSnapshot(u64),
    /// List the aggregates that reference one aggregate (`listReferrers @22`).
    ListReferrers(AggregateRef),
}

impl Request {
    /// The schema name of this request's variant, e.g. `"appendEvent"`.
    pub fn name(&self) -> &'static str {
        match self {
            Request::ListAggregates(_) => "listAggregates",
            Request::GetAggregate(_) => "getAggregate",
            Request::ListEvents(_) => "listEvents",
            Request::AppendEvent(_) => "appendEvent",
            Request::VerifyAggregate(_) => "verifyAggregate",
            Request::PatchEvent(_) => "patchEvent",
            Request::SelectAggregate(_) => "selectAggregate",
            Request::CreateAggregate(_) => "createAggregate",
            Request::SetAggregateArchive(_) => "setAggregateArchive",
            Request::ListSchemas => "listSchemas",
            Request::ReplaceSchemas(_) => "replaceSchemas",
            Request::TenantAssign(_) => "tenantAssign",
            Request::TenantUnassign(_) => "tenantUnassign",
            Request::TenantQuotaSet(_) => "tenantQuotaSet",
            Request::TenantQuotaClear(_) => "tenantQuotaClear",
            Request::TenantQuotaRecalc(_) => "tenantQuotaRecalc",
            Request::TenantReload(_) => "tenantReload",
            Request::TenantSchemaPublish(_) => "tenantSchemaPublish",
            Request::CreateSnapshot(_) => "createSnapshot",
            Request::ListSnapshots(_) => "listSnapshots",
            Request::GetSnapshot(_) => "getSnapshot",
            Request::ListReferrers(_) => "listReferrers",
        }
    }

    /// Whether the request changes server state. A mutation whose connection dies after it was
    /// written has an unknown outcome and must not be retried blindly.
    pub fn is_mutation(&self) -> bool {
        !matches!(
            self,
            Request::ListAggregates(_)
                | Request::GetAggregate(_)
                | Request::ListEvents(_)
                | Request::VerifyAggregate(_)
                | Request::SelectAggregate(_)
                | Request::ListSchemas
                | Request::ListSnapshots(_)
                | Request::GetSnapshot(_)
                | Request::ListReferrers(_)
        )
    }
}
