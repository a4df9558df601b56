//! edbx's own types for the tenant-administration replies and publish targets, so that the wire
//! crate stays a detail of this crate's version.

/// A plugin to notify about an event (what the plugin does with `mode` and `priority` is the
/// plugin's business; the server checks their spelling).
///
/// ```
/// let target = edbx::PublishTarget::new("search").mode("event-only").priority("high");
/// assert_eq!(target.plugin, "search");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PublishTarget {
    /// The plugin's name.
    pub plugin: String,
    /// `all`, `event-only`, `state-only`, `schema-only`, `event-and-schema` or
    /// `extensions-only`.
    pub mode: Option<String>,
    /// `low`, `normal` or `high`.
    pub priority: Option<String>,
}

impl PublishTarget {
    /// A target with the plugin's defaults.
    pub fn new(plugin: impl Into<String>) -> Self {
        Self {
            plugin: plugin.into(),
            mode: None,
            priority: None,
        }
    }

    /// Sets the mode.
    pub fn mode(mut self, mode: impl Into<String>) -> Self {
        self.mode = Some(mode.into());
        self
    }

    /// Sets the priority.
    pub fn priority(mut self, priority: impl Into<String>) -> Self {
        self.priority = Some(priority.into());
        self
    }

    pub(crate) fn to_wire(&self) -> edbx_wire::PublishTarget {
        let mut target = edbx_wire::PublishTarget::new(self.plugin.clone());
        target.mode = self.mode.clone();
        target.priority = self.priority.clone();
        target
    }
}

/// The answer to [`Client::tenant_assign`](crate::Client::tenant_assign).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TenantAssignment {
    /// Whether the assignment differed before.
    pub changed: bool,
    /// The shard now assigned.
    pub shard_id: String,
}

/// The answer to [`Client::tenant_quota_set`](crate::Client::tenant_quota_set).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TenantQuota {
    /// Whether the quota differed before.
    pub changed: bool,
    /// The quota now set, in MiB.
    pub quota_mb: Option<u64>,
}

/// The answer to [`Client::tenant_schema_publish`](crate::Client::tenant_schema_publish).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SchemaVersion {
    /// The new version's id (`v20261126T221500123Z`), or the latest one when skipped.
    pub version_id: String,
    /// Whether it was made the active version.
    pub activated: bool,
    /// Whether nothing was published because the schemas equal the latest version.
    pub skipped: bool,
}

impl From<edbx_wire::TenantAssignReply> for TenantAssignment {
    fn from(reply: edbx_wire::TenantAssignReply) -> Self {
        Self {
            changed: reply.changed,
            shard_id: reply.shard_id,
        }
    }
}

impl From<edbx_wire::TenantQuotaSetReply> for TenantQuota {
    fn from(reply: edbx_wire::TenantQuotaSetReply) -> Self {
        Self {
            changed: reply.changed,
            quota_mb: reply.quota_mb,
        }
    }
}

impl From<edbx_wire::TenantSchemaPublishReply> for SchemaVersion {
    fn from(reply: edbx_wire::TenantSchemaPublishReply) -> Self {
        Self {
            version_id: reply.version_id,
            activated: reply.activated,
            skipped: reply.skipped,
        }
    }
}
