//! Single-aggregate reads: get, select, verify, referrers.

use edbx_wire::{AggregateRef, GetAggregate, Request, Response, SelectAggregate};
use serde_json::{Map, Value};

use super::awaitable;
use crate::client::{Client, unexpected};
use crate::error::{Error, ErrorKind, Result, ServerCode};
use crate::model::{Aggregate, Referrer, Resolved, parse_got};
use crate::validate;
use crate::verify::{self, Unverifiable, Verification};

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
        match self.fetch().await?.1 {
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
        Ok(self.fetch().await?.1.map(|(json, _)| json))
    }

    pub(crate) async fn run(self) -> Result<Option<Aggregate>> {
        match self.fetch().await? {
            (asked, Some((json, _))) => {
                parse_got(json, asked.aggregate_type, asked.aggregate_id).map(Some)
            }
            (_, None) => Ok(None),
        }
    }

    /// The request as asked (its strings can go into the result), and the aggregate's JSON
    /// and resolved JSON if it exists.
    async fn fetch(self) -> Result<(GetAggregate, Option<(String, Option<String>)>)> {
        validate::aggregate_type(&self.request.aggregate_type)?;
        validate::aggregate_id(&self.request.aggregate_id)?;
        let request = Request::GetAggregate(self.request);
        let encoded = self.client.encode(&request)?;
        let asked = match request {
            Request::GetAggregate(asked) => asked,
            _ => GetAggregate::new("", ""),
        };
        match self.client.send_encoded(encoded).await? {
            Response::GetAggregate(reply) if reply.found => {
                Ok((asked, Some((reply.aggregate_json, reply.resolved_json))))
            }
            Response::GetAggregate(_) => Ok((asked, None)),
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
            request: GetAggregate::new(aggregate_type, aggregate_id),
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
        let request = Request::SelectAggregate(SelectAggregate::new(
            aggregate_type,
            aggregate_id,
            fields.iter().map(|f| f.as_ref().to_owned()).collect(),
        ));
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

    /// Checks an aggregate's history: reads the stored Merkle root with the version it was
    /// stored for (one `get`), then the events up to that version, recomputes each event's
    /// hash from its contents and the root from the hashes, and compares. The server's own
    /// `verifyAggregate` recomputes nothing (it returns the stored root, see
    /// [`merkle_root`](Self::merkle_root)); this is the check.
    ///
    /// Appends running meanwhile do not disturb it: the server stores the root and the version
    /// together and never rewrites an event, so events after the version read are simply left
    /// for the next check. The outcome is three-way ([`VerifyOutcome`](crate::VerifyOutcome)):
    /// intact, mismatch, or could not be checked — archived (the server lists no events of an
    /// archived aggregate), or too large for the server to send. An aggregate too large for
    /// `get` is checked by reading the root, the events and the root again, until the root
    /// holds still (a few attempts).
    ///
    /// A missing aggregate is [`ServerCode::AggregateNotFound`](crate::ServerCode::AggregateNotFound).
    pub async fn verify(&self, aggregate_type: &str, aggregate_id: &str) -> Result<Verification> {
        const ATTEMPTS: usize = 5;
        for _ in 0..ATTEMPTS {
            let aggregate = match self.get(aggregate_type, aggregate_id).await {
                Ok(Some(aggregate)) => aggregate,
                // The server's own not-found error (or, if it was created meanwhile, again).
                Ok(None) => {
                    self.merkle_root(aggregate_type, aggregate_id).await?;
                    continue;
                }
                Err(e) if e.kind() == ErrorKind::ReplyTooLarge => {
                    return self.verify_unsized(aggregate_type, aggregate_id).await;
                }
                Err(e) => return Err(e),
            };
            let (root, version) = (aggregate.merkle_root, aggregate.version);
            if aggregate.archived {
                return Ok(archived(root, version));
            }
            let events = match self
                .events_up_to(aggregate_type, aggregate_id, version)
                .await
            {
                Ok(events) => events,
                Err(e) if e.kind() == ErrorKind::ReplyTooLarge => {
                    return Ok(Verification::unverifiable_because(
                        Unverifiable::TooLarge,
                        root,
                        version,
                        format!("the server cannot list its events: {e}"),
                    ));
                }
                // Archived while the events were read: look again.
                Err(e) if e.server_code() == Some(ServerCode::AggregateArchived) => continue,
                Err(e) => return Err(e),
            };
            let check = verify::check(&events, root, version)?;
            if check.is_mismatch() && check.events < version {
                // Events missing: archived meanwhile (its events are then not listed)?
                match self.get(aggregate_type, aggregate_id).await {
                    Ok(Some(now)) if now.archived => continue,
                    _ => {}
                }
            }
            return Ok(check);
        }
        Ok(Verification::unverifiable_because(
            Unverifiable::KeptChanging,
            String::new(),
            0,
            format!("it kept changing (archived, restored or created) over {ATTEMPTS} attempts"),
        ))
    }

    /// The events of versions 1..=`version`, stopping once past it.
    async fn events_up_to(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
        version: u64,
    ) -> Result<Vec<crate::Event>> {
        let mut events = Vec::new();
        if version == 0 {
            return Ok(events);
        }
        let mut stream = self.events(aggregate_type, aggregate_id).stream();
        while let Some(event) = stream.next().await {
            let event = event?;
            let last = event.version >= version;
            events.push(event);
            if last {
                break;
            }
        }
        Ok(events)
    }

    /// [`verify`](Self::verify) of an aggregate `get` cannot return: root, events, root again,
    /// until the root did not move while the events were read.
    async fn verify_unsized(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
    ) -> Result<Verification> {
        const ATTEMPTS: usize = 5;
        let mut root = String::new();
        for _ in 0..ATTEMPTS {
            root = self.merkle_root(aggregate_type, aggregate_id).await?;
            let mut stream = self.events(aggregate_type, aggregate_id).stream();
            let mut events = Vec::new();
            while let Some(event) = stream.next().await {
                match event {
                    Ok(event) => events.push(event),
                    Err(e) if e.kind() == ErrorKind::ReplyTooLarge => {
                        return Ok(Verification::unverifiable_because(
                            Unverifiable::TooLarge,
                            root,
                            0,
                            format!(
                                "the server can send neither the aggregate nor all its events: {e}"
                            ),
                        ));
                    }
                    Err(e) if e.server_code() == Some(ServerCode::AggregateArchived) => {
                        return Ok(archived(root, 0));
                    }
                    Err(e) => return Err(e),
                }
            }
            if self.merkle_root(aggregate_type, aggregate_id).await? != root {
                continue;
            }
            let version = events.last().map_or(0, |e| e.version);
            if events.is_empty() && root != verify::merkle_root_of(&[]) {
                // Events exist (the root is not the empty one) but none are listed: archived,
                // which `get` cannot tell us here.
                return Ok(archived(root, 0));
            }
            return verify::check(&events, root, version);
        }
        Ok(Verification::unverifiable_because(
            Unverifiable::KeptChanging,
            root,
            0,
            format!(
                "too large for `get`, and appended to while its events were read, {ATTEMPTS} \
                 times"
            ),
        ))
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
    Ok(AggregateRef::new(aggregate_type, aggregate_id))
}

fn archived(merkle_root: String, version: u64) -> Verification {
    Verification::unverifiable_because(
        Unverifiable::Archived,
        merkle_root,
        version,
        "it is archived, and the server lists no events of an archived aggregate: restore it to \
         check",
    )
}
