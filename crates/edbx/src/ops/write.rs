//! Writes: create, apply, patch, send_event, archive and restore.

use std::marker::PhantomData;

use edbx_wire::{AppendEvent, PatchEvent, Request, Response, SetArchive};
use serde::Serialize;
use serde_json::{Map, Value};

use super::BoxFuture;
use crate::client::{Client, unexpected};
use crate::error::{Error, ErrorKind, Result};
use crate::model::{Aggregate, Event, FromServerJson, Written, parse_echo};
use crate::replies::PublishTarget;
use crate::state::state_text;
use crate::validate;

/// An event to append, as plain data (for [`Client::send_event`]).
///
/// ```
/// let event = edbx::NewEvent::new("orders", "ord_1", "paid", r#"{"status":"paid"}"#)
///     .note("paid at the till");
/// assert_eq!(event.event_type, "paid");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct NewEvent {
    /// Aggregate type (lower snake case).
    pub aggregate_type: String,
    /// Aggregate id.
    pub aggregate_id: String,
    /// Event type (lower snake case segments, dots allowed).
    pub event_type: String,
    /// Payload as JSON text.
    pub payload_json: String,
    /// Note stored with the event (at most 128 characters).
    pub note: Option<String>,
    /// Metadata object as JSON text; keys start with `@`.
    pub metadata_json: Option<String>,
    /// Plugins to notify.
    pub publish_targets: Vec<PublishTarget>,
}

impl NewEvent {
    /// An event with a JSON text payload.
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
            note: None,
            metadata_json: None,
            publish_targets: Vec::new(),
        }
    }

    /// Sets the note.
    pub fn note(mut self, note: impl Into<String>) -> Self {
        self.note = Some(note.into());
        self
    }

    /// Sets the metadata JSON text.
    pub fn metadata_json(mut self, metadata_json: impl Into<String>) -> Self {
        self.metadata_json = Some(metadata_json.into());
        self
    }

    /// Adds a plugin to notify.
    pub fn publish_to(mut self, target: PublishTarget) -> Self {
        self.publish_targets.push(target);
        self
    }

    /// Checks the event by the rules a create or append applies before sending (identifiers,
    /// event type, payload object, note, metadata keys), without sending it. The row-size
    /// estimate, which depends on the writing token, is left to the write itself.
    pub fn check(&self) -> Result<()> {
        self.validate(false, None)
    }

    /// Checks the event; `listable` carries the writer's actor length when rows the server
    /// could not list must be refused.
    fn validate(&self, payload_is_patch: bool, listable: Option<usize>) -> Result<()> {
        validate::aggregate_type(&self.aggregate_type)?;
        validate::aggregate_id(&self.aggregate_id)?;
        validate::event_type(&self.event_type)?;
        validate::payload(&self.payload_json)?;
        let what = if payload_is_patch { "patch" } else { "payload" };
        let payload = validate::parse_json(what, &self.payload_json)?;
        if payload_is_patch {
            validate::patch(&payload)?;
        } else {
            validate::payload_object(&payload)?;
        }
        if let Some(note) = &self.note {
            validate::note(note)?;
        }
        let metadata = match &self.metadata_json {
            Some(text) => {
                let value = validate::parse_json("metadata", text)?;
                validate::metadata(&value, text.len())?;
                Some(value)
            }
            None => None,
        };
        self.publish_targets
            .iter()
            .try_for_each(validate::publish_target)?;
        // A patch's stored payload is computed by the server; only appends are estimated.
        if let Some(actor_len) = listable.filter(|_| !payload_is_patch) {
            let row = validate::listed_event_row(
                &self.aggregate_type,
                &self.aggregate_id,
                &self.event_type,
                &payload,
                metadata.as_ref(),
                self.note.as_deref(),
                actor_len,
            );
            if row > validate::MAX_LISTED_ROW_BYTES {
                return Err(Error::invalid_input(format!(
                    "this event would be stored as a row of about {row} bytes, and server 3.19.4 \
                     cannot list rows over {} bytes: listing this aggregate's events would fail \
                     from then on. Make the payload smaller, or allow it with \
                     `allow_unlistable(true)`",
                    validate::MAX_LISTED_ROW_BYTES
                )));
            }
        }
        Ok(())
    }

    fn targets(&self) -> Option<Vec<edbx_wire::PublishTarget>> {
        (!self.publish_targets.is_empty()).then(|| {
            self.publish_targets
                .iter()
                .map(PublishTarget::to_wire)
                .collect()
        })
    }
}

/// One RFC 6902 operation of the kinds the server applies.
///
/// ```
/// use edbx::PatchOp;
/// use serde_json::json;
/// let ops = [PatchOp::replace("/total", json!(45.10)), PatchOp::remove("/address/line2")];
/// assert_eq!(serde_json::to_value(&ops[0]).unwrap(),
///            json!({"op": "replace", "path": "/total", "value": 45.10}));
/// ```
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "op", rename_all = "lowercase")]
pub enum PatchOp {
    /// Add a value at `path`.
    Add {
        /// JSON pointer.
        path: String,
        /// New value.
        value: Value,
    },
    /// Replace the value at `path`.
    Replace {
        /// JSON pointer.
        path: String,
        /// New value.
        value: Value,
    },
    /// Remove a nested value (the server refuses top-level removals).
    Remove {
        /// JSON pointer.
        path: String,
    },
}

impl PatchOp {
    /// `{"op": "add", …}`.
    pub fn add(path: impl Into<String>, value: impl Into<Value>) -> Self {
        Self::Add {
            path: path.into(),
            value: value.into(),
        }
    }
    /// `{"op": "replace", …}`.
    pub fn replace(path: impl Into<String>, value: impl Into<Value>) -> Self {
        Self::Replace {
            path: path.into(),
            value: value.into(),
        }
    }
    /// `{"op": "remove", …}`.
    pub fn remove(path: impl Into<String>) -> Self {
        Self::Remove { path: path.into() }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum WriteKind {
    Create,
    Append,
    Patch,
}

/// Builder of [`Client::create`], [`Client::apply`], [`Client::patch`] and
/// [`Client::send_event`]; await it. `T` is what the server echoes: the new [`Aggregate`] for
/// create, the stored [`Event`] otherwise.
#[must_use = "a write does nothing until awaited"]
pub struct EventWrite<'a, T> {
    client: &'a Client,
    kind: WriteKind,
    event: NewEvent,
    /// A problem found while building (e.g. a payload that does not serialize), reported when
    /// awaited so that the chain stays fluent.
    error: Option<Error>,
    allow_unlistable: bool,
    echo: PhantomData<fn() -> T>,
}

impl<'a, T> EventWrite<'a, T> {
    fn new(client: &'a Client, kind: WriteKind, event: NewEvent, error: Option<Error>) -> Self {
        Self {
            client,
            kind,
            event,
            error,
            allow_unlistable: false,
            echo: PhantomData,
        }
    }

    /// Attaches a note (at most 128 characters).
    pub fn note(mut self, note: impl Into<String>) -> Self {
        self.event.note = Some(note.into());
        self
    }

    /// Attaches metadata: a JSON object whose keys start with `@`, e.g.
    /// `json!({"@trace": {"id": "t-1"}})`.
    pub fn metadata(mut self, metadata: &impl Serialize) -> Self {
        match serde_json::to_string(metadata) {
            Ok(json) => self.event.metadata_json = Some(json),
            Err(e) => self.fail(format!("metadata does not serialize: {e}")),
        }
        self
    }

    /// Notifies a plugin about this event (ignored by the server on create).
    pub fn publish_to(mut self, target: PublishTarget) -> Self {
        self.event.publish_targets.push(target);
        self
    }

    /// Writes the event even if the server could not list it afterwards, which is refused by
    /// default (with [`ErrorKind::InvalidInput`](crate::ErrorKind::InvalidInput), nothing
    /// sent). Two checks are lifted:
    ///
    /// - the event's own stored row over 7,605 bytes: afterwards `events` of this aggregate
    ///   fails with [`ErrorKind::ReplyTooLarge`](crate::ErrorKind::ReplyTooLarge);
    /// - the aggregate's listed JSON (its state with this event's keys merged in) over 7,597
    ///   bytes: afterwards every `list` that reaches the aggregate fails, for every caller.
    ///
    /// The second check needs the aggregate's current size. Creates need nothing (the state is
    /// the payload). An append to an aggregate this process wrote last (the echo's version
    /// shows no write came in between; up to 1,024 aggregates remembered) is checked against
    /// the size remembered from that write plus everything the event could add; otherwise,
    /// or when that bound would not fit, it costs one `get` round trip first (~0.2 ms of server
    /// time, against ~25 ms for the append itself), whose failure (a timeout, say) fails the
    /// write with nothing sent. Writes by other processes are seen at the next `get`: an append
    /// checked against a remembered size can miss what they added since. Patches are not
    /// estimated (the server computes their result). An aggregate that is already unlistable
    /// (or too large for `get`) is not checked: the write does not make it so.
    pub fn allow_unlistable(mut self, allow: bool) -> Self {
        self.allow_unlistable = allow;
        self
    }

    fn fail(&mut self, message: String) {
        self.error
            .get_or_insert_with(|| Error::invalid_input(message));
    }

    async fn run(self) -> Result<Written<T>>
    where
        T: FromServerJson,
    {
        if let Some(e) = self.error {
            return Err(e);
        }
        let listable = (!self.allow_unlistable).then(|| self.client.token().actor_len());
        self.event
            .validate(self.kind == WriteKind::Patch, listable)?;
        let sized = if !self.allow_unlistable && self.kind != WriteKind::Patch {
            check_listable_aggregate(self.client, &self.event, self.kind).await?
        } else {
            None
        };
        // Every write changes the size: those not estimated (patches, allowed ones) forget it.
        let cache_key = SizeKey::new(self.client, &self.event);
        let event = self.event;
        let publish_targets = event.targets();
        let request = match self.kind {
            WriteKind::Patch => {
                let mut body = PatchEvent::new(
                    event.aggregate_type,
                    event.aggregate_id,
                    event.event_type,
                    event.payload_json,
                );
                body.note = event.note;
                body.metadata_json = event.metadata_json;
                body.publish_targets = publish_targets;
                Request::PatchEvent(body)
            }
            kind => {
                let mut body = AppendEvent::new(
                    event.aggregate_type,
                    event.aggregate_id,
                    event.event_type,
                    event.payload_json,
                );
                body.note = event.note;
                body.metadata_json = event.metadata_json;
                body.publish_targets = publish_targets;
                if kind == WriteKind::Create {
                    Request::CreateAggregate(body)
                } else {
                    Request::AppendEvent(body)
                }
            }
        };
        let reply = self.client.execute(request).await;
        // Remember the size only when the echo proves no other write came in between.
        let echoed = match &reply {
            Ok(Response::CreateAggregate(json) | Response::AppendEvent(json)) => {
                serde_json::from_str::<Versioned>(json)
                    .ok()
                    .map(|v| v.version)
            }
            _ => None,
        };
        remember_size(cache_key, sized.filter(|s| echoed == Some(s.version + 1)));
        match (self.kind, reply?) {
            (WriteKind::Create, Response::CreateAggregate(json))
            | (WriteKind::Append | WriteKind::Patch, Response::AppendEvent(json)) => {
                parse_echo(json)
            }
            (WriteKind::Create, other) => Err(unexpected("createAggregate", &other)),
            (_, other) => Err(unexpected("appendEvent", &other)),
        }
    }
}

impl<'a, T: FromServerJson + 'a> std::future::IntoFuture for EventWrite<'a, T> {
    type Output = Result<Written<T>>;
    type IntoFuture = BoxFuture<'a, Self::Output>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(self.run())
    }
}

/// The longest JSON of one aggregate that server 3.19.4 can send in a listing page, measured:
/// an aggregate of 7,597 bytes lists, one of 7,598 fails the page, whatever its ids' length.
/// (`get` answers up to ~32 KB, so it still reads such an aggregate.)
pub(crate) const MAX_LISTED_AGGREGATE_BYTES: usize = 7_597;
/// The bytes of a listed aggregate besides its type, id, state and extensions: measured as 233
/// with a one-digit version, plus room for longer versions and timestamps.
const AGGREGATE_ROW_FIXED_BYTES: usize = 233 + 24;
/// What a write can add to an existing aggregate's JSON besides its state and extensions: one
/// more version digit and a longer `updated_at`.
const AGGREGATE_ROW_SLACK_BYTES: usize = 16;

fn json_len(value: &impl Serialize) -> usize {
    serde_json::to_string(value).map_or(0, |s| s.len())
}

/// An aggregate's listed size as estimated before a write: its version then, and an upper
/// bound on its JSON after the write.
#[derive(Debug, Clone, Copy)]
struct Sized {
    version: u64,
    after: usize,
}

#[derive(serde::Deserialize)]
struct Versioned {
    version: u64,
}

/// Which aggregate, on which server.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct SizeKey(String, u16, Option<String>, String, String);

impl SizeKey {
    fn new(client: &Client, event: &NewEvent) -> Self {
        let config = client.config();
        Self(
            config.get_host().to_owned(),
            config.get_port(),
            config.get_tenant_id().map(str::to_owned),
            event.aggregate_type.clone(),
            event.aggregate_id.clone(),
        )
    }
}

/// The aggregates this process wrote last, with their version and an upper bound on their
/// listed JSON, so that the next append to one needs no `get` to be checked.
const SIZE_CACHE_ENTRIES: usize = 1024;

type SizeCache = std::collections::HashMap<SizeKey, (Sized, u64)>;

fn size_cache() -> std::sync::MutexGuard<'static, (SizeCache, u64)> {
    static CACHE: std::sync::OnceLock<std::sync::Mutex<(SizeCache, u64)>> =
        std::sync::OnceLock::new();
    CACHE
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn cached_size(key: &SizeKey) -> Option<Sized> {
    let mut cache = size_cache();
    let (entries, tick) = &mut *cache;
    *tick += 1;
    let entry = entries.get_mut(key)?;
    entry.1 = *tick;
    Some(entry.0)
}

/// Records the aggregate's size after a write (with its new version), or forgets it.
fn remember_size(key: SizeKey, sized: Option<Sized>) {
    let mut cache = size_cache();
    let (entries, tick) = &mut *cache;
    let Some(sized) = sized else {
        entries.remove(&key);
        return;
    };
    *tick += 1;
    let after = Sized {
        version: sized.version + 1,
        after: sized.after,
    };
    entries.insert(key, (after, *tick));
    if entries.len() > SIZE_CACHE_ENTRIES {
        if let Some(oldest) = entries
            .iter()
            .min_by_key(|(_, (_, used))| *used)
            .map(|(k, _)| k.clone())
        {
            entries.remove(&oldest);
        }
    }
}

/// Estimates (as an upper bound) the aggregate's listed JSON after `event` and refuses the write
/// if that would be the one to make the aggregate unlistable. Returns the estimate, to be
/// remembered once the write's echo shows it was the only write in between; `None` when it
/// could not be made.
///
/// The current size comes from, in order: nothing for a create (the state is the payload);
/// this process's last write to the aggregate, when that bound plus everything this event
/// could add still fits; else a `get`.
async fn check_listable_aggregate(
    client: &Client,
    event: &NewEvent,
    kind: WriteKind,
) -> Result<Option<Sized>> {
    let payload: Map<String, Value> = serde_json::from_str(&event.payload_json).unwrap_or_default();
    // Metadata `@`-keys become aggregate extensions: counted in full.
    let metadata = event.metadata_json.as_ref().map_or(0, String::len);
    if kind != WriteKind::Create {
        if let Some(cached) = cached_size(&SizeKey::new(client, event)) {
            // Every key counted as new: `,"key":"value"`.
            let growth: usize = payload
                .iter()
                .map(|(k, v)| 4 + json_len(k) + json_len(&state_text(v)))
                .sum();
            let after = cached.after + AGGREGATE_ROW_SLACK_BYTES + growth + metadata;
            if after <= MAX_LISTED_AGGREGATE_BYTES {
                return Ok(Some(Sized {
                    version: cached.version,
                    after,
                }));
            }
        }
    }
    let current = if kind == WriteKind::Create {
        None
    } else {
        match client.get(&event.aggregate_type, &event.aggregate_id).await {
            Ok(current) => current,
            // Too large even for `get`: far past the listing limit already.
            Err(e) if e.kind() == ErrorKind::ReplyTooLarge => return Ok(None),
            Err(e) => {
                return Err(e.context(
                    "the write was not sent: reading the aggregate to check its size failed",
                ));
            }
        }
    };
    let (version, mut state, base) = match current {
        Some(aggregate) => {
            let Some(raw) = aggregate.raw.as_ref().map(|raw| raw.get().len()) else {
                return Ok(None);
            };
            if raw > MAX_LISTED_AGGREGATE_BYTES {
                return Ok(None);
            }
            let base = raw - json_len(&aggregate.state).min(raw) + AGGREGATE_ROW_SLACK_BYTES;
            (aggregate.version, aggregate.state, base)
        }
        None => (
            0,
            Default::default(),
            AGGREGATE_ROW_FIXED_BYTES + event.aggregate_type.len() + event.aggregate_id.len(),
        ),
    };
    for (key, value) in payload {
        state.insert(key, state_text(&value));
    }
    let estimate = base + json_len(&state) + metadata;
    if estimate > MAX_LISTED_AGGREGATE_BYTES {
        return Err(Error::invalid_input(format!(
            "this write would make aggregate {}/{} about {estimate} bytes of JSON, and server \
             3.19.4 cannot list aggregates over {MAX_LISTED_AGGREGATE_BYTES} bytes: every listing \
             that reaches it would fail, for every caller. Keep the state smaller (e.g. split it \
             over several aggregates), or allow it with `allow_unlistable(true)`",
            event.aggregate_type, event.aggregate_id
        )));
    }
    Ok(Some(Sized {
        version,
        after: estimate,
    }))
}

fn to_json(what: &str, value: &impl Serialize) -> (String, Option<Error>) {
    match serde_json::to_string(value) {
        Ok(json) => (json, None),
        Err(e) => (
            String::new(),
            Some(Error::invalid_input(format!(
                "{what} does not serialize: {e}"
            ))),
        ),
    }
}

impl Client {
    /// Creates an aggregate with its first event. Fails with
    /// [`ServerCode::SchemaViolation`](crate::ServerCode::SchemaViolation) if it already exists
    /// (active or archived).
    ///
    /// `payload` is anything `Serialize`: a struct, `serde_json::json!(…)`, or raw JSON text as
    /// `&serde_json::value::RawValue`.
    pub fn create(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
        event_type: &str,
        payload: &impl Serialize,
    ) -> EventWrite<'_, Aggregate> {
        let (json, error) = to_json("payload", payload);
        let event = NewEvent::new(aggregate_type, aggregate_id, event_type, json);
        EventWrite::new(self, WriteKind::Create, event, error)
    }

    /// Appends an event; the aggregate is created by it if it does not exist yet. The state
    /// takes each top-level key of the payload.
    pub fn apply(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
        event_type: &str,
        payload: &impl Serialize,
    ) -> EventWrite<'_, Event> {
        let (json, error) = to_json("payload", payload);
        let event = NewEvent::new(aggregate_type, aggregate_id, event_type, json);
        EventWrite::new(self, WriteKind::Append, event, error)
    }

    /// Appends an event built as plain data (the lower-level form of [`apply`](Self::apply)).
    pub fn send_event(&self, event: NewEvent) -> EventWrite<'_, Event> {
        EventWrite::new(self, WriteKind::Append, event, None)
    }

    /// Appends an event computed by applying RFC 6902 operations (`add`, `replace`, `remove`)
    /// to the current state; the aggregate must exist. `operations` is a slice of [`PatchOp`]
    /// or any JSON array.
    pub fn patch(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
        event_type: &str,
        operations: &impl Serialize,
    ) -> EventWrite<'_, Event> {
        let (json, error) = to_json("patch", operations);
        let event = NewEvent::new(aggregate_type, aggregate_id, event_type, json);
        EventWrite::new(self, WriteKind::Patch, event, error)
    }

    /// Archives an aggregate: it keeps its history and stays readable with `get`, but takes no
    /// events and leaves default listings until [`restore`](Self::restore)d.
    pub fn archive(&self, aggregate_type: &str, aggregate_id: &str) -> Archive<'_> {
        Archive::new(self, aggregate_type, aggregate_id, true)
    }

    /// Restores an archived aggregate.
    pub fn restore(&self, aggregate_type: &str, aggregate_id: &str) -> Archive<'_> {
        Archive::new(self, aggregate_type, aggregate_id, false)
    }
}

/// Builder of [`Client::archive`] and [`Client::restore`]; await it.
#[must_use = "a write does nothing until awaited"]
pub struct Archive<'a> {
    client: &'a Client,
    request: SetArchive,
}

impl<'a> Archive<'a> {
    fn new(client: &'a Client, aggregate_type: &str, aggregate_id: &str, archived: bool) -> Self {
        Self {
            client,
            request: SetArchive::new(aggregate_type, aggregate_id, archived),
        }
    }

    /// Records why (stored as the archive comment).
    pub fn comment(mut self, comment: impl Into<String>) -> Self {
        self.request.note = Some(comment.into());
        self
    }

    async fn run(self) -> Result<Written<Aggregate>> {
        validate::aggregate_type(&self.request.aggregate_type)?;
        validate::aggregate_id(&self.request.aggregate_id)?;
        match self
            .client
            .execute(Request::SetAggregateArchive(self.request))
            .await?
        {
            Response::SetAggregateArchive(json) => parse_echo(json),
            other => Err(unexpected("setAggregateArchive", &other)),
        }
    }
}
super::awaitable!(Archive, Written<Aggregate>);
