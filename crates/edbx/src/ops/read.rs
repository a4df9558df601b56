//! Single-aggregate reads: get, select, verify, referrers.

use edbx_wire::{AggregateRef, GetAggregate, Request, Response, SelectAggregate};
use serde_json::{Map, Value};

use super::awaitable;
use crate::client::{Client, unexpected};
use crate::error::{Error, Result};
use crate::model::{Aggregate, Referrer, Resolved, parse_one};
use crate::validate;

/// Builder of [`Client::get`]; await it.
#[must_use = "a request does nothing until awaited"]
pub struct Get<'a> {
    client: &'a Client,
    request: GetAggregate,
}

impl<'a> Get<'a> {
    /// Also resolve the aggregate's references, to `depth` levels (server default 2, max 5).
    /// The result is then available through [`Get::resolved`].
    pub fn resolve_depth(mut self, depth: u32) -> Self {
        self.request.resolve = true;
        self.request.resolve_depth = Some(depth);
        self
    }

    /// Fetches the aggregate with its references resolved (server default depth unless
    /// [`resolve_depth`](Self::resolve_depth) was set).
    pub async fn resolved(mut self) -> Result<Option<Resolved>> {
        self.request.resolve = true;
        match self.fetch().await? {
            Some((_, Some(resolved))) => serde_json::from_str(&resolved)
                .map(Some)
                .map_err(|e| Error::decode("resolved aggregate", e)),
            Some((_, None)) => Err(Error::protocol("getAggregate reply lacks resolvedJson")),
            None => Ok(None),
        }
    }

    async fn run(self) -> Result<Option<Aggregate>> {
        match self.fetch().await? {
            Some((json, _)) => parse_one(&json).map(Some),
            None => Ok(None),
        }
    }

    async fn fetch(self) -> Result<Option<(String, Option<String>)>> {
        validate::aggregate_type(&self.request.aggregate_type)?;
        validate::aggregate_id(&self.request.aggregate_id)?;
        match self
            .client
            .execute(Request::GetAggregate(self.request))
            .await?
        {
            Response::GetAggregate(reply) if reply.found => {
                Ok(Some((reply.aggregate_json, reply.resolved_json)))
            }
            Response::GetAggregate(_) => Ok(None),
            other => Err(unexpected("getAggregate", &other)),
        }
    }
}
awaitable!(Get, Option<Aggregate>);

impl Client {
    /// Fetches an aggregate's current state; `None` if it does not exist. Archived aggregates
    /// are returned too (with `archived = true`).
    ///
    /// ```no_run
    /// # async fn demo(client: edbx::Client) -> edbx::Result<()> {
    /// if let Some(order) = client.get("orders", "ord_123").await? {
    ///     println!("v{} total={:?}", order.version, order.state_value("total"));
    /// }
    /// # Ok(()) }
    /// ```
    pub fn get(&self, aggregate_type: &str, aggregate_id: &str) -> Get<'_> {
        Get {
            client: self,
            request: GetAggregate {
                aggregate_type: aggregate_type.to_owned(),
                aggregate_id: aggregate_id.to_owned(),
                resolve: false,
                resolve_depth: None,
            },
        }
    }

    /// Projects fields of an aggregate's state by dot path (`"address.city"`, `"items.0"`);
    /// paths that do not resolve map to `null`. `None` if the aggregate does not exist.
    pub async fn select<S: AsRef<str>>(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
        fields: &[S],
    ) -> Result<Option<Map<String, Value>>> {
        validate::aggregate_type(aggregate_type)?;
        validate::aggregate_id(aggregate_id)?;
        let request = Request::SelectAggregate(SelectAggregate {
            aggregate_type: aggregate_type.to_owned(),
            aggregate_id: aggregate_id.to_owned(),
            fields: fields.iter().map(|f| f.as_ref().to_owned()).collect(),
        });
        match self.execute(request).await? {
            Response::SelectAggregate(reply) if reply.found => {
                serde_json::from_str(&reply.selection_json)
                    .map(Some)
                    .map_err(|e| Error::decode("selection", e))
            }
            Response::SelectAggregate(_) => Ok(None),
            other => Err(unexpected("selectAggregate", &other)),
        }
    }

    /// The aggregate's stored Merkle root (64 hex characters).
    pub async fn verify(&self, aggregate_type: &str, aggregate_id: &str) -> Result<String> {
        let request = Request::VerifyAggregate(aggregate_ref(aggregate_type, aggregate_id)?);
        match self.execute(request).await? {
            Response::VerifyAggregate(root) => Ok(root),
            other => Err(unexpected("verifyAggregate", &other)),
        }
    }

    /// Aggregates whose schema reference fields point at this one.
    pub async fn referrers(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
    ) -> Result<Vec<Referrer>> {
        let request = Request::ListReferrers(aggregate_ref(aggregate_type, aggregate_id)?);
        match self.execute(request).await? {
            Response::ListReferrers(json) => {
                serde_json::from_str(&json).map_err(|e| Error::decode("referrers", e))
            }
            other => Err(unexpected("listReferrers", &other)),
        }
    }
}

pub(crate) fn aggregate_ref(aggregate_type: &str, aggregate_id: &str) -> Result<AggregateRef> {
    validate::aggregate_type(aggregate_type)?;
    validate::aggregate_id(aggregate_id)?;
    Ok(AggregateRef {
        aggregate_type: aggregate_type.to_owned(),
        aggregate_id: aggregate_id.to_owned(),
    })
}
