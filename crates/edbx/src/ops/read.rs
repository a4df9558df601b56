//! Single-aggregate reads: get, select, verify, referrers.

use edbx_wire::{AggregateRef, GetAggregate, Request, Response, SelectAggregate};
use serde_json::{Map, Value};

use super::awaitable;
use crate::client::{Client, unexpected};
use crate::error::{Error, Result};
use crate::model::{Aggregate, Referrer, Resolved, parse_one};
use crate::validate;
use crate::verify::Verification;

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

    /// Fetches the aggregate's JSON exactly as the server sent it, without parsing it: for
    /// code that hands the text on (a proxy, a binding to another language), it saves the
    /// typed parse, most of a get's client-side work. `None` if it does not exist.
    ///
    /// ```no_run
    /// # async fn demo(client: edbx::Client) -> edbx::Result<()> {
    /// if let Some(json) = client.get("orders", "ord_123").json().await? {
    ///     println!("{json}");
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn json(self) -> Result<Option<String>> {
        Ok(self.fetch().await?.map(|(json, _)| json))
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
    ///
    /// The values are the server's guesses: it parses each stored text as JSON when it can, so
    /// a string `"12345"` comes back as the number 12345 and `"true"` as `true`, while `null`
    /// (stored as `""`) comes back as `""`. For exact texts, read the aggregate and use
    /// [`Aggregate::state_as`](crate::Aggregate::state_as).
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

    /// The Merkle root the server stored for the aggregate (64 hex characters). The server
    /// only reports it — [`verify`](Self::verify) checks the history against it.
    pub async fn merkle_root(&self, aggregate_type: &str, aggregate_id: &str) -> Result<String> {
        let request = Request::VerifyAggregate(aggregate_ref(aggregate_type, aggregate_id)?);
        match self.execute(request).await? {
            Response::VerifyAggregate(root) => Ok(root),
            other => Err(unexpected("verifyAggregate", &other)),
        }
    }

    /// Checks an aggregate's history: reads every event back, recomputes each event's hash
    /// from its contents and the Merkle root from the hashes, and compares them with what the
    /// server stored. The server's own `verifyAggregate` recomputes nothing (it returns the
    /// stored root, see [`merkle_root`](Self::merkle_root)); this is the check. Reads every
    /// event of the aggregate. A missing aggregate is
    /// [`ServerCode::AggregateNotFound`](crate::ServerCode::AggregateNotFound); an archived one
    /// cannot be checked (its events are not listed) and has no
    /// [`recomputed_root`](Verification::recomputed_root).
    pub async fn verify(&self, aggregate_type: &str, aggregate_id: &str) -> Result<Verification> {
        let merkle_root = self.merkle_root(aggregate_type, aggregate_id).await?;
        let archived = self
            .get(aggregate_type, aggregate_id)
            .await?
            .is_some_and(|a| a.archived);
        if archived {
            return Ok(Verification {
                merkle_root,
                recomputed_root: None,
                events: 0,
                first_bad_version: None,
            });
        }
        let mut events = self.events(aggregate_type, aggregate_id).stream();
        let mut hashes = Vec::new();
        let mut first_bad_version = None;
        while let Some(event) = events.next().await {
            let event = event?;
            let hash = crate::verify::event_hash(&event)?;
            if hash != event.hash && first_bad_version.is_none() {
                first_bad_version = Some(event.version);
            }
            hashes.push(event.hash);
        }
        Ok(Verification {
            recomputed_root: Some(crate::verify::merkle_root(&hashes)),
            events: hashes.len() as u64,
            merkle_root,
            first_bad_version,
        })
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
