//! What the server returns, as typed values. Every type keeps the server's JSON text in `raw`
//! ([`RawJson`]), so nothing the server sent is lost to a typed view.
//!
//! A reply is read once: the typed fields come from one pass over the text, which also proves
//! the text is JSON, so it is kept as it came without a second validating pass. An aggregate's
//! state is kept as its text and parsed into a map when it is first read ([`State`]).

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::ops::{Deref, DerefMut};
use std::sync::OnceLock;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
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
    /// and `true`. A [`State`] reads as a `BTreeMap<String, String>` (it dereferences to one,
    /// parsed when first read). Read it with [`state_as`](Self::state_as) into your own type,
    /// which decides how each text is read; [`state_value`](Self::state_value) and
    /// [`state_json`](Self::state_json) guess.
    #[serde(default)]
    pub state: State,
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
    /// The JSON the server sent (`None` for a value deserialized by your own code).
    #[serde(skip)]
    pub raw: Option<RawJson>,
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
    /// The JSON the server sent (`None` for a value deserialized by your own code).
    #[serde(skip)]
    pub raw: Option<RawJson>,
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
    pub state: State,
    /// Merkle root at that version.
    #[serde(default)]
    pub merkle_root: String,
    /// RFC 3339 creation time.
    #[serde(default)]
    pub created_at: Option<String>,
    /// Comment given when it was taken.
    #[serde(default)]
    pub comment: Option<String>,
    /// The JSON the server sent (`None` for a value deserialized by your own code).
    #[serde(skip)]
    pub raw: Option<RawJson>,
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

/// JSON text exactly as the server sent it: one JSON value, already proven well-formed by the
/// parse that produced the typed value beside it.
///
/// ```
/// # let aggregate: edbx::Aggregate = serde_json::from_str(
/// #   r#"{"aggregate_type":"orders","aggregate_id":"o1","version":1}"#).unwrap();
/// // A value that came from the server carries its text:
/// if let Some(raw) = &aggregate.raw {
///     let value: serde_json::Value = serde_json::from_str(raw.get()).unwrap();
///     println!("{value}");
/// }
/// let raw = edbx::RawJson::from_string(r#"{"total": 42}"#.to_owned()).unwrap();
/// assert_eq!(raw.get(), r#"{"total": 42}"#);
/// assert!(edbx::RawJson::from_string("{not json".to_owned()).is_err());
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct RawJson(Box<str>);

impl RawJson {
    /// Checks that `text` is one JSON value and keeps it as it is.
    pub fn from_string(text: String) -> Result<RawJson> {
        serde_json::from_str::<serde::de::IgnoredAny>(&text)
            .map_err(|e| Error::invalid_input(format!("not valid JSON: {e}")))?;
        Ok(RawJson(text.into_boxed_str()))
    }

    /// Text a successful parse has just read as one JSON value.
    fn parsed(text: impl Into<Box<str>>) -> RawJson {
        RawJson(text.into())
    }

    /// The JSON text.
    pub fn get(&self) -> &str {
        &self.0
    }

    /// The JSON text, owned.
    pub fn into_string(self) -> String {
        self.0.into_string()
    }

    /// The text as a `serde_json` raw value, for embedding it verbatim in JSON you serialize.
    pub fn to_raw_value(&self) -> Box<RawValue> {
        RawValue::from_string(self.0.to_string()).expect("RawJson holds one JSON value")
    }
}

impl fmt::Debug for RawJson {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("RawJson").field(&&*self.0).finish()
    }
}

impl fmt::Display for RawJson {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for RawJson {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// Serializes as the JSON it holds, verbatim.
impl Serialize for RawJson {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let raw: &RawValue = serde_json::from_str(&self.0).map_err(serde::ser::Error::custom)?;
        raw.serialize(serializer)
    }
}

/// An aggregate's (or snapshot's) state: a map from each top-level key to its stored text.
///
/// It dereferences to a `BTreeMap<String, String>`, so it reads like one. A state that came
/// from the server is kept as its JSON text and parsed into the map the first time it is read,
/// so a caller that only wants the version, the Merkle root or the raw JSON never pays for it.
/// The text was checked to be a JSON object when the reply was read; a value that is not a
/// string (which the server does not send) reads as its compact JSON text, `null` as `""`.
///
/// ```
/// # let aggregate: edbx::Aggregate = serde_json::from_str(
/// #   r#"{"aggregate_type":"orders","aggregate_id":"o1","version":1,"state":{"status":"paid","total":"42.15"}}"#).unwrap();
/// assert_eq!(aggregate.state["status"], "paid");
/// assert_eq!(aggregate.state.get("total").map(String::as_str), Some("42.15"));
/// for (key, text) in &aggregate.state {
///     println!("{key} = {text}");
/// }
/// let map: std::collections::BTreeMap<String, String> = aggregate.state.clone().into_map();
/// assert_eq!(map.len(), 2);
/// ```
#[derive(Default)]
pub struct State {
    map: OnceLock<BTreeMap<String, String>>,
    /// The object's text, until the map is built from it.
    text: Option<Box<str>>,
}

impl State {
    /// The state of a reply: `text` is the `state` member, which the reply's parse read as one
    /// JSON value. Parsed now when reading it later could fail (it is not an object, or it has
    /// `\u` escapes, which may be lone surrogates that a string cannot hold); kept as text else.
    fn from_reply(text: &str) -> Result<State> {
        let trimmed = text.trim_start();
        if trimmed.starts_with("null") {
            return Ok(State::default());
        }
        if !trimmed.starts_with('{') {
            return Err(Error::new(
                crate::ErrorKind::Decode,
                "cannot decode the aggregate: its state is not a JSON object",
            ));
        }
        if text.contains("\\u") {
            return parse_state(text).map(State::from);
        }
        Ok(State {
            map: OnceLock::new(),
            text: Some(text.into()),
        })
    }

    fn map(&self) -> &BTreeMap<String, String> {
        self.map.get_or_init(|| match &self.text {
            // Cannot fail: the text is a JSON object (checked by the reply's parse and by
            // `from_reply`) whose strings hold no `\u` escape, and `parse_state` accepts any
            // value. An empty map would be the answer if that reasoning were ever wrong.
            Some(text) => parse_state(text).unwrap_or_default(),
            None => BTreeMap::new(),
        })
    }

    /// The map, owned.
    pub fn into_map(mut self) -> BTreeMap<String, String> {
        self.map();
        self.map.take().unwrap_or_default()
    }
}

/// Parses a state object, each value as the server stores it ([`state_text`]: strings as they
/// are, `null` as `""`, anything else as compact JSON).
///
/// [`state_text`]: crate::state::state_text
fn parse_state(text: &str) -> Result<BTreeMap<String, String>> {
    let decode = |e| Error::decode("aggregate state", e);
    if let Ok(map) = serde_json::from_str::<BTreeMap<String, String>>(text) {
        return Ok(map);
    }
    // Each value kept as text first: a value nested deeper than serde_json's recursion limit
    // is kept as its text rather than failing the whole state.
    let values: BTreeMap<String, Box<RawValue>> = serde_json::from_str(text).map_err(decode)?;
    values
        .into_iter()
        .map(|(key, value)| {
            let value = value.get();
            let text = if value.starts_with('"') {
                serde_json::from_str::<String>(value).map_err(decode)?
            } else {
                serde_json::from_str::<Value>(value)
                    .map(|v| crate::state::state_text(&v))
                    .unwrap_or_else(|_| value.to_owned())
            };
            Ok((key, text))
        })
        .collect()
}

impl Deref for State {
    type Target = BTreeMap<String, String>;

    fn deref(&self) -> &BTreeMap<String, String> {
        self.map()
    }
}

impl DerefMut for State {
    fn deref_mut(&mut self) -> &mut BTreeMap<String, String> {
        self.map();
        self.text = None;
        self.map.get_mut().expect("initialized just above")
    }
}

impl From<BTreeMap<String, String>> for State {
    fn from(map: BTreeMap<String, String>) -> State {
        State {
            map: OnceLock::from(map),
            text: None,
        }
    }
}

impl From<State> for BTreeMap<String, String> {
    fn from(state: State) -> BTreeMap<String, String> {
        state.into_map()
    }
}

impl FromIterator<(String, String)> for State {
    fn from_iter<I: IntoIterator<Item = (String, String)>>(iter: I) -> State {
        State::from(iter.into_iter().collect::<BTreeMap<_, _>>())
    }
}

impl<'a> IntoIterator for &'a State {
    type Item = (&'a String, &'a String);
    type IntoIter = std::collections::btree_map::Iter<'a, String, String>;

    fn into_iter(self) -> Self::IntoIter {
        self.map().iter()
    }
}

impl IntoIterator for State {
    type Item = (String, String);
    type IntoIter = std::collections::btree_map::IntoIter<String, String>;

    fn into_iter(self) -> Self::IntoIter {
        self.into_map().into_iter()
    }
}

impl Clone for State {
    fn clone(&self) -> State {
        match self.map.get() {
            Some(map) => State::from(map.clone()),
            None => State {
                map: OnceLock::new(),
                text: self.text.clone(),
            },
        }
    }
}

impl PartialEq for State {
    fn eq(&self, other: &State) -> bool {
        self.map() == other.map()
    }
}

impl Eq for State {}

impl PartialEq<BTreeMap<String, String>> for State {
    fn eq(&self, other: &BTreeMap<String, String>) -> bool {
        self.map() == other
    }
}

impl PartialEq<State> for BTreeMap<String, String> {
    fn eq(&self, other: &State) -> bool {
        self == other.map()
    }
}

impl fmt::Debug for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.map().fmt(f)
    }
}

impl Serialize for State {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.map().serialize(serializer)
    }
}

/// Deserializes a state object eagerly, each value as the server stores it (the client's own
/// reads use the lazy path, which reads values the same way).
impl<'de> Deserialize<'de> for State {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<State, D::Error> {
        let values = Option::<BTreeMap<String, Value>>::deserialize(deserializer)?;
        Ok(values
            .unwrap_or_default()
            .into_iter()
            .map(|(key, value)| {
                let text = crate::state::state_text(&value);
                (key, text)
            })
            .collect())
    }
}

/// An aggregate reply as the client reads it: the state borrowed as text, the rest typed.
#[derive(Deserialize)]
pub(crate) struct AggregateReply<'a> {
    #[serde(borrow)]
    aggregate_type: Cow<'a, str>,
    #[serde(borrow)]
    aggregate_id: Cow<'a, str>,
    version: u64,
    #[serde(default, borrow)]
    state: Option<&'a RawValue>,
    #[serde(default)]
    merkle_root: String,
    #[serde(default)]
    created_at: Option<String>,
    #[serde(default)]
    updated_at: Option<String>,
    #[serde(default)]
    archived: bool,
    #[serde(flatten)]
    extensions: Map<String, Value>,
}

/// Types read from one JSON value of a reply, keeping its text.
pub(crate) trait FromServerJson: Sized {
    const WHAT: &'static str;

    /// What one pass over the value's text reads (borrowing from the text where that saves
    /// work); the pass also proves the text is JSON.
    type Reply<'a>: Deserialize<'a>;

    /// The value from what the pass read.
    fn build(reply: Self::Reply<'_>) -> Result<Self>;

    /// Keeps the text the value was read from.
    fn set_raw(&mut self, raw: RawJson);
}

impl FromServerJson for Aggregate {
    const WHAT: &'static str = "aggregate";
    type Reply<'a> = AggregateReply<'a>;

    fn build(reply: AggregateReply<'_>) -> Result<Aggregate> {
        Aggregate::build_named(reply, |aggregate_type, aggregate_id| {
            (aggregate_type.into_owned(), aggregate_id.into_owned())
        })
    }

    fn set_raw(&mut self, raw: RawJson) {
        self.raw = Some(raw);
    }
}

impl Aggregate {
    /// The aggregate of a reply, its type and id made into strings by `names`.
    fn build_named(
        reply: AggregateReply<'_>,
        names: impl FnOnce(Cow<'_, str>, Cow<'_, str>) -> (String, String),
    ) -> Result<Aggregate> {
        let (aggregate_type, aggregate_id) = names(reply.aggregate_type, reply.aggregate_id);
        Ok(Aggregate {
            aggregate_type,
            aggregate_id,
            version: reply.version,
            state: match reply.state {
                Some(state) => State::from_reply(state.get())?,
                None => State::default(),
            },
            merkle_root: reply.merkle_root,
            created_at: reply.created_at,
            updated_at: reply.updated_at,
            archived: reply.archived,
            extensions: reply.extensions,
            raw: None,
        })
    }
}

/// Parses a get's reply (see [`parse_one`]), reusing the type and id the get asked for.
pub(crate) fn parse_got(
    json: String,
    aggregate_type: String,
    aggregate_id: String,
) -> Result<Aggregate> {
    let reply: AggregateReply<'_> =
        serde_json::from_str(&json).map_err(|e| Error::decode(Aggregate::WHAT, e))?;
    // A get's reply names what was asked for: the caller's strings are reused, not copied.
    let reuse = |reply: Cow<'_, str>, asked: String| {
        if *reply == *asked {
            asked
        } else {
            reply.into_owned()
        }
    };
    let mut aggregate = Aggregate::build_named(reply, |reply_type, reply_id| {
        (
            reuse(reply_type, aggregate_type),
            reuse(reply_id, aggregate_id),
        )
    })?;
    aggregate.set_raw(RawJson::parsed(json));
    Ok(aggregate)
}

macro_rules! read_typed {
    ($($ty:ty => $what:literal),* $(,)?) => {$(
        impl FromServerJson for $ty {
            const WHAT: &'static str = $what;
            type Reply<'a> = $ty;

            fn build(reply: $ty) -> Result<$ty> {
                Ok(reply)
            }

            fn set_raw(&mut self, raw: RawJson) {
                self.raw = Some(raw);
            }
        }
    )*};
}
read_typed!(Event => "event", Snapshot => "snapshot");

/// Parses one object, keeping its text.
pub(crate) fn parse_one<T: FromServerJson>(json: String) -> Result<T> {
    let reply: T::Reply<'_> = serde_json::from_str(&json).map_err(|e| Error::decode(T::WHAT, e))?;
    let mut value = T::build(reply)?;
    value.set_raw(RawJson::parsed(json));
    Ok(value)
}

/// Parses a JSON array of objects, keeping each one's text: one pass over each element, whose
/// text is where that pass started and ended (the array's brackets, commas and whitespace are
/// read here).
pub(crate) fn parse_list<T: FromServerJson>(json: &str) -> Result<Vec<T>> {
    let malformed = |what: &str| {
        Error::new(
            crate::ErrorKind::Decode,
            format!("cannot decode the {} list: {what}", T::WHAT),
        )
    };
    let bytes = json.as_bytes();
    let skip_whitespace = |mut at: usize| {
        while bytes
            .get(at)
            .is_some_and(|b| matches!(b, b' ' | b'\n' | b'\r' | b'\t'))
        {
            at += 1;
        }
        at
    };
    let mut at = skip_whitespace(0);
    if bytes.get(at) != Some(&b'[') {
        return Err(malformed("not a JSON array"));
    }
    at = skip_whitespace(at + 1);
    let mut rows = Vec::new();
    if bytes.get(at) == Some(&b']') {
        at += 1;
    } else {
        loop {
            let rest = &json[at..];
            let mut stream = serde_json::Deserializer::from_str(rest).into_iter::<T::Reply<'_>>();
            let reply = match stream.next() {
                Some(Ok(reply)) => reply,
                Some(Err(e)) => return Err(Error::decode(T::WHAT, e)),
                None => return Err(malformed("the array is not closed")),
            };
            let end = at + stream.byte_offset();
            let mut value = T::build(reply)?;
            value.set_raw(RawJson::parsed(&json[at..end]));
            rows.push(value);
            at = skip_whitespace(end);
            match bytes.get(at) {
                Some(b',') => at = skip_whitespace(at + 1),
                Some(b']') => {
                    at += 1;
                    break;
                }
                _ => return Err(malformed("expected `,` or `]` after an element")),
            }
        }
    }
    if skip_whitespace(at) != bytes.len() {
        return Err(malformed("text after the array"));
    }
    Ok(rows)
}

/// Parses an echo that is empty when the server runs without verbose responses.
pub(crate) fn parse_echo<T: FromServerJson>(json: String) -> Result<Written<T>> {
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
    fn a_got_aggregate_has_the_names_its_reply_gives() {
        // The id escaped, so that it is read as an owned string.
        let json = r#"{"aggregate_type":"order","aggregate_id":"o\u002d1","version":1}"#;
        let names = |agg: &Aggregate| (agg.aggregate_type.clone(), agg.aggregate_id.clone());
        let asked = parse_got(json.to_owned(), "order".into(), "o-1".into()).unwrap();
        assert_eq!(names(&asked), ("order".into(), "o-1".into()));
        let other = parse_got(json.to_owned(), "Order".into(), "o-2".into()).unwrap();
        assert_eq!(
            names(&other),
            ("order".into(), "o-1".into()),
            "the reply's names win"
        );
        assert_eq!(other.raw.unwrap().get(), json);
    }

    #[test]
    fn aggregate_keeps_extensions_raw_and_typed_state() {
        let json = r#"{"aggregate_type":"order","aggregate_id":"o-1","version":2,
            "state":{"status":"paid","qty":"3","addr":"{\"city\":\"Oslo\"}","gone":""},
            "@trace":{"id":"t-1"},"merkle_root":"ab","created_at":"2025-01-01T00:00:00Z",
            "archived":true}"#;
        let agg: Aggregate = parse_one(json.to_owned()).unwrap();
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
        assert!(matches!(
            parse_echo::<Aggregate>(String::new()),
            Ok(Written::NoEcho)
        ));
        assert!(parse_echo::<Aggregate>("not json".into()).is_err());
    }

    fn reply(state: &str) -> String {
        format!(r#"{{"aggregate_type":"orders","aggregate_id":"o1","version":3,"state":{state}}}"#)
    }

    #[test]
    fn a_state_read_later_equals_the_one_read_at_once() {
        let json = reply(r#"{"items":"[{\"qty\":2}]","note":"","total":"42.15","city":"Zürich"}"#);
        let lazy: Aggregate = parse_one(json.clone()).unwrap();
        let eager: Aggregate = serde_json::from_str(&json).unwrap();
        assert_eq!(lazy.state, eager.state);
        assert_eq!(lazy.state["items"], r#"[{"qty":2}]"#);
        assert_eq!(lazy.state["city"], "Zürich");
        assert_eq!(lazy.state.len(), 4);
        assert_eq!(lazy.raw.as_ref().unwrap().get(), json);
        let mut seen = Vec::new();
        for (key, _) in &lazy.state {
            seen.push(key.as_str());
        }
        assert_eq!(seen, ["city", "items", "note", "total"]);
    }

    #[test]
    fn a_state_that_is_not_an_object_is_refused_when_the_reply_is_read() {
        for bad in [r#"["a"]"#, r#""text""#, "42"] {
            let e = parse_one::<Aggregate>(reply(bad)).unwrap_err();
            assert_eq!(e.kind(), crate::ErrorKind::Decode, "{bad}");
        }
        for empty in ["null", "{}"] {
            let agg: Aggregate = parse_one(reply(empty)).unwrap();
            assert!(agg.state.is_empty(), "{empty}");
        }
        let agg: Aggregate =
            parse_one(r#"{"aggregate_type":"orders","aggregate_id":"o1","version":0}"#.to_owned())
                .unwrap();
        assert!(agg.state.is_empty());
        // Malformed JSON inside the state fails the whole reply, not a later read.
        assert!(parse_one::<Aggregate>(reply(r#"{"a":"b""#)).is_err());
        assert!(parse_one::<Aggregate>(reply(r#"{"a":"\q"}"#)).is_err());
    }

    #[test]
    fn a_lone_surrogate_in_the_state_fails_the_read_not_a_later_access() {
        let e = parse_one::<Aggregate>(reply(r#"{"a":"\ud800"}"#)).unwrap_err();
        assert_eq!(e.kind(), crate::ErrorKind::Decode);
        let agg: Aggregate = parse_one(reply(r#"{"a":"\u00e9\n"}"#)).unwrap();
        assert_eq!(agg.state["a"], "é\n");
    }

    #[test]
    fn state_values_that_are_not_strings_read_as_the_server_stores_them() {
        let agg: Aggregate =
            parse_one(reply(r#"{"n":42,"z":null,"o":{"k": [1, true]},"s":"x"}"#)).unwrap();
        assert_eq!(agg.state["n"], "42");
        assert_eq!(agg.state["z"], "");
        assert_eq!(agg.state["o"], r#"{"k":[1,true]}"#);
        assert_eq!(agg.state["s"], "x");
        let eager: Aggregate =
            serde_json::from_str(&reply(r#"{"n":42,"z":null,"o":{"k": [1, true]},"s":"x"}"#))
                .unwrap();
        assert_eq!(eager.state, agg.state);
    }

    #[test]
    fn a_state_value_nested_past_the_recursion_limit_reads_as_its_text() {
        let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
        let agg: Aggregate = parse_one(reply(&format!(r#"{{"deep":{deep},"s":"x"}}"#))).unwrap();
        assert_eq!(agg.state["deep"], deep);
        assert_eq!(agg.state["s"], "x");
    }

    #[test]
    fn state_can_be_cloned_changed_compared_and_taken() {
        let agg: Aggregate = parse_one(reply(r#"{"a":"1"}"#)).unwrap();
        let mut copy = agg.state.clone();
        assert_eq!(copy, agg.state);
        copy.insert("b".into(), "2".into());
        assert_ne!(copy, agg.state);
        assert_eq!(copy.len(), 2);
        let map: BTreeMap<String, String> = copy.into_map();
        assert_eq!(map["b"], "2");
        assert_eq!(map, State::from(map.clone()));
        assert_eq!(serde_json::to_string(&agg.state).unwrap(), r#"{"a":"1"}"#);
        assert_eq!(format!("{:?}", agg.state), r#"{"a": "1"}"#);
        let collected: State = [("k".to_owned(), "v".to_owned())].into_iter().collect();
        assert_eq!(collected["k"], "v");
    }

    #[test]
    fn raw_json_keeps_the_text_and_serializes_it_verbatim() {
        let raw = RawJson::from_string(r#"{"b": 1, "a": [2]}"#.to_owned()).unwrap();
        assert_eq!(raw.get(), r#"{"b": 1, "a": [2]}"#);
        assert_eq!(
            serde_json::to_string(&BTreeMap::from([("x", raw.to_raw_value())])).unwrap(),
            r#"{"x":{"b": 1, "a": [2]}}"#
        );
        assert_eq!(
            serde_json::to_string(&BTreeMap::from([("x", &raw)])).unwrap(),
            r#"{"x":{"b": 1, "a": [2]}}"#
        );
        assert_eq!(raw.to_string(), raw.get());
        for bad in ["", "{", "{} {}", "nul"] {
            let e = RawJson::from_string(bad.to_owned()).unwrap_err();
            assert_eq!(e.kind(), crate::ErrorKind::InvalidInput, "{bad:?}");
        }
    }

    #[test]
    fn a_list_is_one_json_array_and_nothing_else() {
        let row = reply(r#"{"a":"1"}"#);
        for empty in ["[]", " [ ] ", "\n[\t]\n"] {
            assert!(
                parse_list::<Aggregate>(empty).unwrap().is_empty(),
                "{empty:?}"
            );
        }
        let spaced = format!("\n[ {row} ,\n\t{row} ]\n");
        let rows: Vec<Aggregate> = parse_list(&spaced).unwrap();
        assert_eq!(rows.len(), 2);
        assert!(rows.iter().all(|r| r.raw.as_ref().unwrap().get() == row));
        for bad in [
            String::new(),
            "{}".to_owned(),
            "[".to_owned(),
            format!("[{row}"),
            format!("[{row},]"),
            format!("[{row} {row}]"),
            format!("[{row}] x"),
            format!("[{row}][]"),
            "[1]".to_owned(),
            "[,]".to_owned(),
        ] {
            let e = parse_list::<Aggregate>(&bad).unwrap_err();
            assert_eq!(e.kind(), crate::ErrorKind::Decode, "{bad:?}");
        }
    }

    #[test]
    fn a_listed_row_keeps_exactly_its_own_text() {
        let rows = format!("[{}, {}]", reply(r#"{"a":"1"}"#), reply(r#"{"a":"2"}"#));
        let aggs: Vec<Aggregate> = parse_list(&rows).unwrap();
        assert_eq!(aggs[0].raw.as_ref().unwrap().get(), reply(r#"{"a":"1"}"#));
        assert_eq!(aggs[1].raw.as_ref().unwrap().get(), reply(r#"{"a":"2"}"#));
        assert_eq!(aggs[1].state["a"], "2");
    }
}
