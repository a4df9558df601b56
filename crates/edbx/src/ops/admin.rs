//! Schemas and tenant administration.

use edbx_wire::{
    ReplaceSchemas, Request, Response, TenantAssign, TenantQuotaSet, TenantSchemaPublish,
};
use serde::Serialize;
use serde_json::{Map, Value};

use super::awaitable;
use crate::client::{Client, unexpected};
use crate::error::{Error, Result};
use crate::replies::{SchemaVersion, TenantAssignment, TenantQuota};
use crate::validate;

/// Builder of [`Client::tenant_schema_publish`]; await it.
#[must_use = "a request does nothing until awaited"]
pub struct SchemaPublish<'a> {
    client: &'a Client,
    request: TenantSchemaPublish,
}

impl<'a> SchemaPublish<'a> {
    /// Why this version is published.
    pub fn reason(mut self, reason: impl Into<String>) -> Self {
        self.request.reason = Some(reason.into());
        self
    }
    /// Who publishes it.
    pub fn actor(mut self, actor: impl Into<String>) -> Self {
        self.request.actor = Some(actor.into());
        self
    }
    /// Adds a label.
    pub fn label(mut self, label: impl Into<String>) -> Self {
        self.request.labels.push(label.into());
        self
    }
    /// Make the new version active.
    pub fn activate(mut self, activate: bool) -> Self {
        self.request.activate = activate;
        self
    }
    /// Publish even if identical to the latest version.
    pub fn force(mut self, force: bool) -> Self {
        self.request.force = force;
        self
    }
    /// Reload the tenant afterwards.
    pub fn reload(mut self, reload: bool) -> Self {
        self.request.reload = reload;
        self
    }

    async fn run(self) -> Result<SchemaVersion> {
        validate::tenant_id(&self.request.tenant_id)?;
        match self
            .client
            .execute(Request::TenantSchemaPublish(self.request))
            .await?
        {
            Response::TenantSchemaPublish(reply) => Ok(reply.into()),
            other => Err(unexpected("tenantSchemaPublish", &other)),
        }
    }
}
awaitable!(SchemaPublish, SchemaVersion);

macro_rules! expect {
    ($response:expr, $variant:ident, $name:literal) => {
        match $response {
            Response::$variant(value) => Ok(value),
            other => Err(unexpected($name, &other)),
        }
    };
}

impl Client {
    /// The tenant's schemas: aggregate type → schema JSON.
    pub async fn list_schemas(&self) -> Result<Map<String, Value>> {
        let json = expect!(
            self.execute(Request::ListSchemas).await?,
            ListSchemas,
            "listSchemas"
        )?;
        serde_json::from_str(&json).map_err(|e| Error::decode("schemas", e))
    }

    /// Replaces the tenant's whole schema set (a map of aggregate type → schema, e.g. the
    /// edited output of [`list_schemas`](Self::list_schemas)); returns how many are stored.
    pub async fn replace_schemas(&self, schemas: &impl Serialize) -> Result<u32> {
        let value = serde_json::to_value(schemas)
            .map_err(|e| Error::invalid_input(format!("schemas do not serialize: {e}")))?;
        if !value.is_object() {
            return Err(Error::invalid_input(
                "schemas must be a JSON object keyed by aggregate type",
            ));
        }
        let request = Request::ReplaceSchemas(ReplaceSchemas::new(value.to_string()));
        expect!(
            self.execute(request).await?,
            ReplaceSchemas,
            "replaceSchemas"
        )
    }

    /// Assigns a tenant to a shard.
    pub async fn tenant_assign(&self, tenant_id: &str, shard_id: &str) -> Result<TenantAssignment> {
        validate::tenant_id(tenant_id)?;
        let request = Request::TenantAssign(TenantAssign::new(tenant_id, shard_id));
        expect!(self.execute(request).await?, TenantAssign, "tenantAssign").map(Into::into)
    }

    /// Clears a tenant's shard assignment; `true` if there was one.
    pub async fn tenant_unassign(&self, tenant_id: &str) -> Result<bool> {
        validate::tenant_id(tenant_id)?;
        let request = Request::TenantUnassign(tenant_id.to_owned());
        expect!(
            self.execute(request).await?,
            TenantUnassign,
            "tenantUnassign"
        )
    }

    /// Sets a tenant's storage quota in MiB.
    pub async fn tenant_quota_set(
        &self,
        tenant_id: &str,
        max_storage_mb: u64,
    ) -> Result<TenantQuota> {
        validate::tenant_id(tenant_id)?;
        let request = Request::TenantQuotaSet(TenantQuotaSet::new(tenant_id, max_storage_mb));
        expect!(
            self.execute(request).await?,
            TenantQuotaSet,
            "tenantQuotaSet"
        )
        .map(Into::into)
    }

    /// Removes a tenant's quota; `true` if there was one.
    pub async fn tenant_quota_clear(&self, tenant_id: &str) -> Result<bool> {
        validate::tenant_id(tenant_id)?;
        let request = Request::TenantQuotaClear(tenant_id.to_owned());
        expect!(
            self.execute(request).await?,
            TenantQuotaClear,
            "tenantQuotaClear"
        )
    }

    /// Recomputes a tenant's storage use; returns it in bytes.
    pub async fn tenant_quota_recalc(&self, tenant_id: &str) -> Result<u64> {
        validate::tenant_id(tenant_id)?;
        let request = Request::TenantQuotaRecalc(tenant_id.to_owned());
        expect!(
            self.execute(request).await?,
            TenantQuotaRecalc,
            "tenantQuotaRecalc"
        )
    }

    /// Drops the server's cached context of a tenant and reopens its store; `true` when
    /// reopened. `false` when the store could not be reopened, e.g. because open sessions of
    /// that tenant (this client's own, for its tenant) still hold it.
    pub async fn tenant_reload(&self, tenant_id: &str) -> Result<bool> {
        validate::tenant_id(tenant_id)?;
        let request = Request::TenantReload(tenant_id.to_owned());
        expect!(self.execute(request).await?, TenantReload, "tenantReload")
    }

    /// Publishes the tenant's live schemas as a new version; see [`SchemaPublish`].
    pub fn tenant_schema_publish(&self, tenant_id: &str) -> SchemaPublish<'_> {
        SchemaPublish {
            client: self,
            request: TenantSchemaPublish::new(tenant_id),
        }
    }
}
