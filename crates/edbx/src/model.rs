//! What the server returns, as typed values. Every type keeps the server's JSON text in `raw`
//! (`serde_json::value::RawValue`), so nothing the server sent is lost to a typed view.

use std::collections::BTreeMap;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::error::{Error, Result};

/// An aggregate: its current state and bookkeeping.
#[derive(Debug, Clone, Deserialize)]
#[non_exhaustive]
pub struct Aggregate {
    /// Type, e.g. `orders`.
    pub aggregate_type: String,
    /// Id within its type.
    pub aggregate_id: String,
    /// Number of events applied.
    pub version: u64,
    /// State as the server stores it: every top-level payload key's latest value, as text —
    /// a JSON string verbatim, `null` as `""`, anything else as its compact JSON text. So the
    /// string `"42"` and the number `42` are stored alike, as are `""` and `null`, and `"true"`
    /// and `true`. Read it with [`state_as`](Self::state_as) into your own type, which decides
    /// how each text is read; [`state_value`](Self::state_value) and
    /// [`state_json`](Self::state_json) guess.
    #[serde(default)]
    pub state: BTreeMap<String, String>,
    /// Merkle root over the aggregate's event hashes.
    #[serde(default)]
    pub merkle_root: String,
    /// RFC 3339 creation time, when known.
    #[serde(default)]
    pub created_at: Option<String>,
    /// RFC 3339 time of the last change, when known.
    #[serde(default)]
    pub updated_at: Option<String>,
    /// Whether the aggregate is archived.
    #[serde(default)]
    pub archived: bool,
    /// Aggregate-level extensions (`@`-keys merged from event metadata, snake-cased).
    #[serde(flatten)]
    pub extensions: Map<String, Value>,
    /// The JSON the server sent.
    #[serde(skip)]
    pub raw: Option<Box<RawValue>>,
}

impl Aggregate {
    /// One state value, guessed: re-parsed as JSON when it is JSON text (`"42"` → `42`,
    /// `"true"` → `true`), else a string (`"paid"` → `"paid"`; `""` → `""`). The guess is wrong
    /// for strings that look like JSON (a zip code `"01234"` stays a string, `"12345"` becomes
    /// a number); [`state_as`](Self::state_as) lets your type decide instead.
    pub fn state_value(&self, key: &str) -> Option<Value> {
        self.state.get(key).map(|v| parse_state_value(v))
    }

    /// The whole state as a JSON object of guessed values (see
    /// [`state_value`](Self::state_value)).
    pub fn state_json(&self) -> Map<String, Value> {
        self.state
            .iter()
            .map(|(k, v)| (k.clone(), parse_state_value(v)))
            .collect()
    }

    /// The state read into your own type, which decides how each stored text is read: a
    /// `String` field gets the text as stored, a number or `bool` field parses it, an `Option`
    /// field is `None` for `""` (how `null` is stored), a struct, map or list field parses the
    /// text as JSON, and a unit enum variant matches the text. A field that does not fit fails
    /// with [`ErrorKind::Decode`](crate::ErrorKind::Decode) naming the field, the stored text
    /// and your type.
    ///
    /// ```
    /// # let aggregate: edbx::Aggregate = serde_json::from_str(
    /// #   r#"{"aggregate_type":"orders","aggregate_id":"o1","version":1,"state":{"total":"42.15","zip":"01234","vip":"true","note":""}}"#).unwrap();
    /// #[derive(serde::Deserialize)]
    /// struct Order { total: f64, zip: String, vip: bool, note: Option<String> }
    /// let order: Order = aggregate.state_as().unwrap();
    /// assert_eq!(order.total, 42.15);
    /// assert_eq!(order.zip, "01234");
    /// assert!(order.vip);
    /// assert_eq!(order.note, None); // the server stores null as ""
    /// ```
    pub fn state_as<T: DeserializeOwned>(&self) -> Result<T> {
        crate::state::state_as(&self.state)
    }
}

fn parse_state_value(value: &str) -> Value {
    serde_json::from_str(value).unwrap_or_else(|_| Value::String(value.to_owned()))
}

/// Who wrote an event (from the token's `group` and `user` claims).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct Actor {
    /// Token group.
    pub group: String,
    /// Token user.
    pub user: String,
}

/// Bookkeeping of an event.
#[derive(Debug, Clone, Deserialize)]
#[non_exhaustive]
pub struct EventMetadata {
    /// Snowflake id (the server sends it as a decimal string).
    #[serde(deserialize_with = "u64_from_string_or_number")]
    pub event_id: u64,
    /// RFC 3339 time the event was stored.
    pub created_at: String,
    /// Writer identity.
    #[serde(default)]
    pub issued_by: Option<Actor>,
    /// Note attached on write.
    #[serde(default)]
    pub note: Option<String>,
}

/// One stored event.
///
/// The server stores event types normalized: dots become underscores, so an event written as
/// `order.paid` reads back with `event_type == "order_paid"`, and the type as written is kept in
/// [`event_type_raw`](Self::event_type_raw). [`is_type`](Self::is_type) matches either.
///
/// ```
/// # let event: edbx::Event = serde_json::from_str(r#"{"aggregate_type":"orders","aggregate_id":"o1",
/// #   "event_type":"order_paid","event_type_raw":"order.paid","payload":{},"version":2,
/// #   "metadata":{"event_id":"1","created_at":"2026-01-01T00:00:00Z"}}"#).unwrap();
/// assert_eq!(event.event_type, "order_paid");
/// assert!(event.is_type("order.paid"));
/// assert!(!event.is_type("order.shipped"));
/// ```
#[derive(Debug, Clone, Deserialize)]
#[non_exhaustive]
pub struct Event {
    /// Aggregate type.
    pub aggregate_type: String,
    /// Aggregate id.
    pub aggregate_id: String,
    /// Normalized event type (dots replaced by `_`).
    pub event_type: String,
    /// The event type exactly as written.
    #[serde(default)]
    pub event_type_raw: Option<String>,
    /// The payload as written (for a patch: the new values of every top-level key it touched).
    #[serde(default)]
    pub payload: Value,
    /// The metadata object written with the event (`@`-keys), if any.
    #[serde(default)]
    pub extensions: Option<Map<String, Value>>,
    /// Id, time, writer, note.
    pub metadata: EventMetadata,
    /// Aggregate version this event produced.
    pub version: u64,
    /// Hash of this event.
    #[serde(default)]
    pub hash: String,
    /// Merkle root of the aggregate after this event.
    #[serde(default)]
    pub merkle_root: String,
    /// The JSON the server sent.
    #[serde(skip)]
    pub raw: Option<Box<RawValue>>,
}

impl Event {
    /// The event type as it was written (`order.paid`), falling back to the normalized one.
    pub fn original_type(&self) -> &str {
        self.event_type_raw.as_deref().unwrap_or(&self.event_type)
    }

    /// Whether this event is of type `event_type`, given as written (`order.paid`) or
    /// normalized (`order_paid`).
    pub fn is_type(&self, event_type: &str) -> bool {
        self.original_type() == event_type || self.event_type == event_type.replace('.', "_")
    }

    /// The payload deserialized into your own type.
    pub fn payload_as<T: DeserializeOwned>(&self) -> Result<T> {
        T::deserialize(&self.payload).map_err(|e| Error::decode("event payload", e))
    }

    /// Applies this event to an aggregate's state as the server does when it stores it: every
    /// top-level payload key is set to its stored text (a string verbatim, `null` as `""`,
    /// anything else as compact JSON; a patch event's payload holds the new values of the keys
    /// it touched). Keys are never removed. Folding an aggregate's events 1..=v from an empty
    /// map gives [`Aggregate::state`] as it was at version v.
    ///
    /// ```no_run
    /// # async fn demo(client: edbx::Client) -> edbx::Result<()> {
    /// use std::collections::BTreeMap;
    ///
    /// let mut state = BTreeMap::new();
    /// let events = client.events("orders", "ord_1").stream().collect_all().await?;
    /// for event in events.iter().take_while(|e| e.version <= 3) {
    ///     event.apply_to(&mut state); // the state at version 3
    /// }
    /// # Ok(()) }
    /// ```
    pub fn apply_to(&self, state: &mut BTreeMap<String, String>) {
        crate::state::apply_payload(state, &self.payload);
    }
}

/// A stored snapshot of an aggregate's state.
#[derive(Debug, Clone, Deserialize)]
#[non_exhaustive]
pub struct Snapshot {
    /// Snapshot id (for [`Client::get_snapshot`](crate::Client::get_snapshot)).
    #[serde(deserialize_with = "u64_from_string_or_number")]
    pub snapshot_id: u64,
    /// Aggregate type.
    pub aggregate_type: String,
    /// Aggregate id.
    pub aggregate_id: String,
    /// Version captured.
    pub version: u64,
    /// State at that version, string-valued like [`Aggregate::state`].
    #[serde(default)]
    pub state: BTreeMap<String, String>,
    /// Merkle root at that version.
    #[serde(default)]
    pub merkle_root: String,
    /// RFC 3339 creation time.
    #[serde(default)]
    pub created_at: Option<String>,
    /// Comment given when it was taken.
    #[serde(default)]
    pub comment: Option<String>,
    /// The JSON the server sent.
    #[serde(skip)]
    pub raw: Option<Box<RawValue>>,
}

impl Snapshot {
    /// The captured state read into your own type (see [`Aggregate::state_as`]).
    pub fn state_as<T: DeserializeOwned>(&self) -> Result<T> {
        crate::state::state_as(&self.state)
    }
}

/// An aggregate that references another through a schema reference field.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct Referrer {
    /// Referring aggregate's type.
    pub aggregate_type: String,
    /// Referring aggregate's id.
    pub aggregate_id: String,
    /// Field path holding the reference.
    pub path: String,
}

/// An aggregate with its references resolved (`resolve` on `get` and `list`).
#[derive(Debug, Clone, Deserialize)]
#[non_exhaustive]
pub struct Resolved {
    /// Tenant domain of the aggregate.
    #[serde(default)]
    pub domain: String,
    /// The aggregate.
    pub aggregate: Aggregate,
    /// Each reference and what it resolved to.
    #[serde(default)]
    pub references: Vec<Reference>,
}

/// One reference of a [`Resolved`] aggregate.
#[derive(Debug, Clone, Deserialize)]
#[non_exhaustive]
pub struct Reference {
    /// Field path.
    pub path: String,
    /// The referenced aggregate's address, as the server reports it.
    #[serde(default)]
    pub reference: Value,
    /// `ok`, `not_found`, `forbidden`, `cycle` or `depth_exceeded`.
    pub status: String,
    /// The referenced aggregate, for `ok`.
    #[serde(default)]
    pub resolved: Option<Box<Resolved>>,
}

/// The result of a write: the server's echo, or a note that none came back because the server
/// runs with `verbose_responses = false`. The write succeeded either way.
#[derive(Debug, Clone)]
pub enum Written<T> {
    /// The server echoed the stored value.
    Echo(T),
    /// The write succeeded; the server sent no echo.
    NoEcho,
}

impl<T> Written<T> {
    /// Whether the server sent an echo.
    pub fn has_echo(&self) -> bool {
        matches!(self, Written::Echo(_))
    }

    /// The echo, or an error when the server sent none — for code that relies on the echo and
    /// would rather fail loudly against a server running with `verbose_responses = false`.
    /// The write itself succeeded either way.
    ///
    /// ```no_run
    /// # async fn demo(client: edbx::Client) -> edbx::Result<()> {
    /// let order = client.create("orders", "ord_1", "created", &serde_json::json!({"total": 1}))
    ///     .await?
    ///     .require_echo()?;
    /// println!("created version {}", order.version);
    /// # Ok(()) }
    /// ```
    pub fn require_echo(self) -> Result<T> {
        match self {
            Written::Echo(value) => Ok(value),
            Written::NoEcho => Err(Error::new(
                crate::ErrorKind::Protocol,
                "the write succeeded, but the server sent no echo: it runs with \
                 verbose_responses = false",
            )),
        }
    }

    /// Applies `f` to the echo, if there is one.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Written<U> {
        match self {
            Written::Echo(value) => Written::Echo(f(value)),
            Written::NoEcho => Written::NoEcho,
        }
    }

    /// The echo, if the server sent one.
    pub fn echo(&self) -> Option<&T> {
        match self {
            Written::Echo(value) => Some(value),
            Written::NoEcho => None,
        }
    }

    /// The echo, consuming the result.
    pub fn into_echo(self) -> Option<T> {
        match self {
            Written::Echo(value) => Some(value),
            Written::NoEcho => None,
        }
    }
}

fn u64_from_string_or_number<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Either {
        Text(String),
        Number(u64),
    }
    match Either::deserialize(d)? {
        Either::Number(n) => Ok(n),
        Either::Text(s) => s.parse().map_err(serde::de::Error::custom),
    }
}

/// Types parsed from one JSON value that keep their raw text.
pub(crate) trait FromServerJson: DeserializeOwned {
    const WHAT: &'static str;
    fn set_raw(&mut self, raw: Box<RawValue>);
}

macro_rules! keeps_raw {
    ($($ty:ty => $what:literal),* $(,)?) => {$(
        impl FromServerJson for $ty {
            const WHAT: &'static str = $what;
            fn set_raw(&mut self, raw: Box<RawValue>) {
                self.raw = Some(raw);
            }
        }
    )*};
}
keeps_raw!(Aggregate => "aggregate", Event => "event", Snapshot => "snapshot");

/// Parses one object, keeping its text.
pub(crate) fn parse_one<T: FromServerJson>(json: &str) -> Result<T> {
    let raw: Box<RawValue> = serde_json::from_str(json).map_err(|e| Error::decode(T::WHAT, e))?;
    let mut value: T = serde_json::from_str(raw.get()).map_err(|e| Error::decode(T::WHAT, e))?;
    value.set_raw(raw);
    Ok(value)
}

/// Parses a JSON array of objects, keeping each one's text.
pub(crate) fn parse_list<T: FromServerJson>(json: &str) -> Result<Vec<T>> {
    let rows: Vec<Box<RawValue>> =
        serde_json::from_str(json).map_err(|e| Error::decode(T::WHAT, e))?;
    rows.into_iter()
        .map(|raw| {
            let mut value: T =
                serde_json::from_str(raw.get()).map_err(|e| Error::decode(T::WHAT, e))?;
            value.set_raw(raw);
            Ok(value)
        })
        .collect()
}

/// Parses an echo that is empty when the server runs without verbose responses.
pub(crate) fn parse_echo<T: FromServerJson>(json: &str) -> Result<Written<T>> {
    if json.trim().is_empty() {
        Ok(Written::NoEcho)
    } else {
        parse_one(json).map(Written::Echo)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aggregate_keeps_extensions_raw_and_typed_state() {
        let json = r#"{"aggregate_type":"order","aggregate_id":"o-1","version":2,
            "state":{"status":"paid","qty":"3","addr":"{\"city\":\"Oslo\"}","gone":""},
            "@trace":{"id":"t-1"},"merkle_root":"ab","created_at":"2025-01-01T00:00:00Z",
            "archived":true}"#;
        let agg: Aggregate = parse_one(json).unwrap();
        assert_eq!(agg.version, 2);
        assert!(agg.archived);
        assert_eq!(agg.extensions["@trace"]["id"], "t-1");
        assert_eq!(agg.state_value("qty"), Some(Value::from(3)));
        assert_eq!(agg.state_value("status"), Some(Value::from("paid")));
        assert_eq!(agg.state_value("addr").unwrap()["city"], "Oslo");
        assert_eq!(agg.raw.as_ref().unwrap().get(), json);
    }

    #[test]
    fn event_ids_arrive_as_strings() {
        let json = r#"[{"aggregate_type":"order","aggregate_id":"o-1","event_type":"order_created",
            "event_type_raw":"order.created","payload":{"qty":3},
            "metadata":{"event_id":"1234567890123456789","created_at":"2025-01-01T00:00:00Z",
            "issued_by":{"group":"cli","user":"root"}},"version":1,"hash":"h","merkle_root":"m"}]"#;
        let events: Vec<Event> = parse_list(json).unwrap();
        assert_eq!(events[0].metadata.event_id, 1_234_567_890_123_456_789);
        assert_eq!(events[0].metadata.issued_by.as_ref().unwrap().user, "root");
        assert_eq!(events[0].payload["qty"], 3);
        assert!(parse_list::<Event>("{}").is_err());
    }

    #[test]
    fn empty_echo_means_no_echo() {
        assert!(matches!(parse_echo::<Aggregate>(""), Ok(Written::NoEcho)));
        assert!(parse_echo::<Aggregate>("not json").is_err());
    }
}
