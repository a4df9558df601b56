//! # edbx — the EventDBX client
//!
//! An async ([tokio]) client for the [EventDBX](https://eventdbx.com) event store's control
//! protocol (server 3.19.4): every operation the server offers, typed results, and a
//! connection engine that stays correct when things go wrong.
//!
//! ```no_run
//! use edbx::{Client, Config};
//! use serde_json::json;
//!
//! # async fn demo() -> edbx::Result<()> {
//! let client = Client::connect(Config::new().token("…").tenant_id("tenant-123")).await?;
//!
//! client.create("orders", "ord_123", "created", &json!({"total": 42.15})).await?;
//! client.apply("orders", "ord_123", "paid", &json!({"status": "paid"}))
//!     .note("paid at the till")
//!     .metadata(&json!({"@trace": {"id": "t-1"}}))
//!     .await?;
//!
//! let order = client.get("orders", "ord_123").await?.expect("exists");
//! assert_eq!(order.state_value("status"), Some(json!("paid")));
//!
//! let mut events = client.events("orders", "ord_123").stream();
//! while let Some(event) = events.next().await {
//!     let event = event?;
//!     println!("v{} {}", event.version, event.event_type);
//! }
//! # Ok(()) }
//! ```
//!
//! ## How it behaves
//!
//! * **Connections.** A [`Client`] is a cheap clone over a pool of connections
//!   ([`Config::pool_size`]). One task owns each socket; calls reach it over a bounded queue, so
//!   a burst waits instead of piling up. A call never waits for a connection to open while a
//!   live one can take it: it queues on the least-loaded connection, and the pool grows in the
//!   background; after a failed connect a slot backs off (exponential, with random jitter), and
//!   calls meanwhile fail at once instead of hammering the server.
//! * **Pipelining.** The server answers one request at a time per connection, in order; up to
//!   [`Config::max_in_flight`] requests are written ahead on each connection, and replies are
//!   matched to callers in order and by id.
//! * **Latency.** Sockets use `TCP_NODELAY`, one write per frame, and on Linux `TCP_QUICKACK`
//!   before every read: the server writes each reply in two pieces with Nagle on, which
//!   otherwise costs ~40 ms per call.
//! * **Deadlines.** [`Config::request_timeout`] bounds a whole call: connecting, queueing,
//!   writing, reading, retrying. A call that times out never desynchronises its connection: a
//!   request not yet written is withdrawn, and a late reply is read and dropped. Dropping a call
//!   (`tokio::time::timeout`, `select!`, an aborted task) withdraws an unsent request the same
//!   way. Each connection keeps the deadlines of the calls on it with one timer, so a call arms
//!   no timer of its own once its request is queued.
//! * **Dead peers.** TCP keepalive ([`Config::tcp_keepalive`], 30 s) notices a silent peer on
//!   an idle connection; a connection whose oldest request has waited 1.5× the request timeout
//!   is closed and replaced, and new calls avoid one whose oldest request is merely late.
//! * **Retries.** Only what is provably safe: requests never written, failed connects, and reads
//!   whose connection dropped ([`RetryOptions`]). A request that was never written because its
//!   connection had died goes to another connection once more, free. A write whose reply never
//!   came fails with [`ErrorKind::OutcomeUnknown`] — never reported as failed or as done, never
//!   sent again. A read whose connection the server closed while its reply was due is sent once
//!   more, alone on a fresh connection, then fails with [`ErrorKind::ReplyTooLarge`].
//! * **Security.** Noise (`NNpsk0`, keyed from the token) is on by default. Plaintext is used only
//!   when the caller asks for it *and* the server allows it; a server that answers "plaintext" to
//!   a client that asked for Noise is refused. Tokens are redacted in `Debug` output.
//! * **Validation.** Aggregate types and ids, event types, payloads (a JSON object), metadata
//!   keys, notes, patches, sizes and listability are checked before sending, with an
//!   [`ErrorKind::InvalidInput`] naming the problem.
//! * **Pagination.** The server silently shortens list pages to ~7.5 KiB and returns a cursor
//!   that skips the rows it dropped. Every [`Page`] carries a cursor rebuilt from its last row,
//!   and [`PageStream`]s follow those, so no row is skipped or repeated; only an empty page ends a
//!   listing, and a page is never called [`complete`](Page::complete) unless it is.
//! * **Whole-store reads.** [`Client::scan_events`] reads every event of every aggregate (the
//!   exports of the `edbx` command line and of the Python package are made of it): several
//!   aggregates at once, a few pages ahead each, handed on in listing order with bounded
//!   memory; archived aggregates, whose events the server does not serve, are counted and
//!   named ([`ArchivedLeftOut`]), never silently missing.
//! * **Subscriptions.** [`Client::subscribe`] follows every event of the store (or of some
//!   aggregate types) from the beginning, from now or from a [`Checkpoint`], catching up and
//!   then polling: no event skipped (also under concurrent writers, server restarts and the
//!   subscriber's own restarts), each aggregate's events in version order, bounded memory;
//!   [`Projection`] runs one into a handler and stores its checkpoint. The guarantees and how
//!   they hold on a server with no subscription call: `docs/SUBSCRIPTIONS.md`.
//! * **Blocking use.** [`blocking::Client`] runs the same client on a runtime of its own for code
//!   without one.
//! * **Verbose responses.** When the server runs with `verbose_responses = false`, writes still
//!   succeed and return [`Written::NoEcho`].
//!
//! ## Limits of server 3.19.4
//!
//! | what | limit | what happens past it |
//! | --- | --- | --- |
//! | one request | 65,519 bytes encoded under Noise (65,535 in plaintext), the token included (~550 bytes for the test kit's) | refused before sending ([`ErrorKind::InvalidInput`]) |
//! | one listed event row | 7,605 bytes of JSON: payload, metadata, note, ids and ~400 bytes of bookkeeping | the server closes the connection instead of listing it; such writes are refused before sending unless [`EventWrite::allow_unlistable`] |
//! | one listed aggregate | 7,597 bytes of JSON (measured), its whole state included | `list` of a range that holds it fails with [`ErrorKind::ReplyTooLarge`] (naming the cursor after which it stops), for every caller, unless [`List::skip_unlistable`] steps past it (by probing, at a cost). Appends and creates that would take an aggregate past it are refused before sending unless [`EventWrite::allow_unlistable`]; an append pays one `get` for this check unless this process wrote the aggregate last. Patches are not estimated |
//! | one aggregate on `get` | ~32 KB of JSON (the reply carries it twice) | `get` fails with [`ErrorKind::ReplyTooLarge`] |
//! | one list page | ~7.5 KiB of JSON, whatever `take` says | the page comes back short; the client's cursors continue after its last row |
//! | `payload` by the server's own rule | 256 KiB | unreachable: the frame limit comes first |
//! | note | 128 characters | refused before sending |
//! | aggregate id, event type | 128 characters | refused before sending |
//!
//! ## Not found, and writes that create
//!
//! | call | aggregate missing | aggregate archived |
//! | --- | --- | --- |
//! | [`get`](Client::get), [`select`](Client::select) | `Ok(None)` | returned (`archived = true`) |
//! | [`events`](Client::events) | an empty page | an empty page |
//! | [`verify`](Client::verify), [`patch`](Client::patch), [`archive`](Client::archive), [`restore`](Client::restore), [`create_snapshot`](Client::create_snapshot), [`referrers`](Client::referrers) | [`ServerCode::AggregateNotFound`] | work (`patch`: [`ServerCode::AggregateArchived`]) |
//! | [`apply`](Client::apply), [`send_event`](Client::send_event) | **creates it** (version 1) | [`ServerCode::AggregateArchived`] |
//! | [`create`](Client::create) | creates it | [`ServerCode::SchemaViolation`] (exists) |

#![warn(missing_docs)]

pub mod blocking;
mod client;
mod config;
mod conn;
mod error;
mod jitter;
mod model;
mod ops;
mod page;
mod pool;
mod replies;
mod state;
mod subscribe;
mod validate;
mod verify;

pub use client::{Client, Repeat, abandoned_writes};
pub use config::{Config, RetryOptions, Setting, Token};
pub use error::{Error, ErrorKind, Result, ServerCode};
pub use model::{
    Actor, Aggregate, Event, EventMetadata, RawJson, Reference, Referrer, Resolved, Snapshot,
    State, Written,
};
pub use ops::{
    Archive, ArchivedLeftOut, BoxFuture, CreateSnapshot, EventScan, EventWrite, Events, Get, List,
    ListSnapshots, MAX_SCAN_CONCURRENCY, NewEvent, PatchOp, ScanEvents, SchemaPublish,
};
pub use page::{Page, PageStream};
pub use replies::{PublishTarget, SchemaVersion, TenantAssignment, TenantQuota};
pub use subscribe::{
    Checkpoint, CheckpointStore, DEFAULT_MAX_POLL, DEFAULT_MIN_POLL, DEFAULT_OVERLAP,
    FileCheckpointStore, Projection, ProjectionError, Subscribe, SubscribedEvent, Subscription,
    Unreadable,
};
pub use verify::{Unverifiable, Verification, VerifyOutcome};

/// Parses JSON text into a value that [`Client::apply`] and friends send verbatim.
///
/// ```
/// let raw = edbx::raw_json(r#"{"total": 42.15}"#).unwrap();
/// assert!(edbx::raw_json("{not json").is_err());
/// ```
pub fn raw_json(text: impl Into<String>) -> Result<Box<serde_json::value::RawValue>> {
    serde_json::value::RawValue::from_string(text.into())
        .map_err(|e| Error::invalid_input(format!("not valid JSON: {e}")))
}

/// The README's code, compiled as doctests so that it cannot rot.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
mod readme {}

/// The subscriptions guide's code, compiled as doctests too.
#[cfg(doctest)]
#[doc = include_str!("../../../docs/SUBSCRIPTIONS.md")]
mod subscriptions_doc {}

/// This crate's README (shown on crates.io), compiled as doctests too.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
mod crate_readme {}

#[cfg(test)]
mod send_sync {
    use super::*;

    fn assert_send_sync<T: Send + Sync>(_: &T) {}
    fn assert_send<T: Send>(_: &T) {}

    /// Compile-time proof that the client and its values can be shared across threads, and that
    /// the futures of its calls can be spawned and held across `.await`s in multi-threaded runtimes. Builder
    /// and `async fn` futures promise `Send` only.
    #[allow(dead_code, unused_must_use, clippy::let_underscore_future)]
    fn futures_are_send_and_sync(client: Client) {
        use std::future::IntoFuture;
        assert_send_sync(&client);
        assert_send_sync(&Config::new());
        assert_send_sync(&Error::invalid_input("x"));
        assert_send(&Client::connect(Config::new()));
        assert_send(&client.get("a", "b").into_future());
        assert_send(&client.get("a", "b").resolved());
        assert_send(&client.list().into_future());
        assert_send_sync(&client.list().stream());
        assert_send(&client.events("a", "b").into_future());
        assert_send_sync(&client.events("a", "b").stream());
        assert_send(&client.scan_events().stream());
        assert_send(&client.scan_events().stream().next_page());
        assert_send(&client.create("a", "b", "c", &1).into_future());
        assert_send(&client.apply("a", "b", "c", &1).into_future());
        assert_send(&client.patch("a", "b", "c", &1).into_future());
        assert_send(&client.archive("a", "b").into_future());
        assert_send(&client.verify("a", "b"));
        assert_send(&client.select("a", "b", &["x"]));
        assert_send(&client.referrers("a", "b"));
        assert_send(&client.create_snapshot("a", "b").into_future());
        assert_send(&client.list_snapshots().into_future());
        assert_send(&client.get_snapshot(1));
        assert_send(&client.list_schemas());
        assert_send(&client.replace_schemas(&1));
        assert_send(&client.tenant_assign("t", "s"));
        assert_send(&client.tenant_schema_publish("t").into_future());
    }
}
