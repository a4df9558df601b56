//! Catch-up subscriptions: every event of the store (or of some aggregate types), in order per
//! aggregate, resumable from a checkpoint. See [`Client::subscribe`] and `docs/SUBSCRIPTIONS.md`.
//!
//! Server 3.19.4 has no subscription call. What it has: an index of aggregates by the time of
//! their last change (an append sets it to the event's time, taken under the store's write lock,
//! so commits and times are in the same order), listings of that index newest first, listings of
//! all aggregates in key order with a filter on that time, and each aggregate's events after a
//! version. The subscription builds a feed on those:
//!
//! * **Floor and window.** It keeps a *floor* (a time) below which every event is delivered,
//!   and, for the aggregates it delivered events of at or after the floor, the version it
//!   delivered through (the *window*). For any other aggregate, the events before the first
//!   one written at or after the floor count as delivered.
//! * **Rounds** (following live): list the index newest first down to the floor; deliver what
//!   each aggregate has past its window entry (or past the floor), the listing's aggregates
//!   oldest change first; list again down to the top of the previous listing, and so on, until
//!   one listing is provably complete: a single page that reaches below its bound (one
//!   snapshot of the server), or a listing after which the top of the index has not changed
//!   (no write happened during it). An aggregate written to during a listing moves to the top,
//!   where the next listing finds it. Then the floor moves up to `top of the round's first
//!   listing − overlap`, and the window forgets what is below. A round that finds the top as
//!   the last complete round or pass left it does nothing more (the floor stays). Only a
//!   *deep* round lists down to the floor and raises it, once the top has moved half an
//!   overlap since the last; the others list down to the top the last round ended on. An
//!   aggregate's events are read up to its listed version.
//! * **The top** of the index, compared to tell whether anything was written, is its first
//!   page, and when every row of it has the same time, the pages after it down to the first
//!   row with an earlier time (or the end): a write in that same millisecond whose key sorts
//!   after theirs lands past a first page, which would then look unchanged.
//! * **Passes** (catching up): when a round grows past 32 pages, and for a subscription from
//!   the beginning, list every aggregate in key order (an order writes do not change) changed
//!   since the floor, and deliver its events up to the pass's cap (the top of the index when it
//!   began). The floor then moves to `cap − overlap`.
//!
//! Only the overlap covers a server clock that steps backwards; everything else follows from
//! the write lock (a commit made after the subscription saw time `T` carries a time ≥ `T`).

mod checkpoint;
mod driver;
mod projection;

use std::collections::VecDeque;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::sync::mpsc;

use crate::client::Client;
use crate::error::{Error, Result};
use crate::model::Event;
use crate::validate;

pub use checkpoint::Checkpoint;
pub use projection::{CheckpointStore, FileCheckpointStore, Projection, ProjectionError};

use checkpoint::{Pass, Position};
use driver::{Driver, Msg};

/// Default overlap: how far back each round looks again, the tolerance to a server clock that
/// steps backwards.
pub const DEFAULT_OVERLAP: Duration = Duration::from_secs(1);
/// Default shortest wait between rounds (after one that delivered events).
pub const DEFAULT_MIN_POLL: Duration = Duration::from_millis(50);
/// Default longest wait between rounds (doubling up to it while nothing happens).
pub const DEFAULT_MAX_POLL: Duration = Duration::from_secs(1);

/// Messages the driver may run ahead of the consumer.
const CHANNEL: usize = 256;
/// Reports of unreadable (archived) aggregates kept until taken.
const MAX_UNREADABLE: usize = 1_000;

/// One delivered event and the checkpoint just after it.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SubscribedEvent {
    /// The event.
    pub event: Event,
    /// Where the subscription stands once this event is handled: store it with the effects of
    /// handling it, and a subscription [`from_checkpoint`](Subscribe::from_checkpoint) goes on
    /// after it.
    pub checkpoint: Checkpoint,
}

/// An archived aggregate whose events the subscription could not read (server 3.19.4 serves
/// the events of active aggregates only).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Unreadable {
    /// Its type.
    pub aggregate_type: String,
    /// Its id.
    pub aggregate_id: String,
    /// Its version when it was listed, archived.
    pub version: u64,
    /// The version the subscription had delivered through: the events after it, up to
    /// `version`, were not delivered. `None` when the subscription cannot tell: it delivered
    /// every event written before its floor, and the aggregate was archived long enough after
    /// the floor that it may have had later events.
    pub delivered_through: Option<u64>,
}

/// Where a new subscription starts.
#[derive(Debug, Clone)]
enum Start {
    Beginning,
    Now,
    Checkpoint(String),
}

/// The subscription's settings, fixed when it starts.
#[derive(Debug, Clone)]
pub(crate) struct Options {
    pub overlap_ms: i64,
    pub min_poll: Duration,
    pub max_poll: Duration,
    pub page_size: u64,
    pub events_page_size: u64,
    pub prefetch: usize,
    pub until_caught_up: bool,
    pub retry_for: Option<Duration>,
}

/// Builder of [`Client::subscribe`]: choose what to follow and from where, then call
/// [`stream`](Subscribe::stream).
///
/// ```no_run
/// # async fn demo(client: edbx::Client, saved: Option<String>) -> edbx::Result<()> {
/// let subscribe = client.subscribe().aggregate_type("orders");
/// let mut orders = match saved {
///     Some(checkpoint) => subscribe.from_checkpoint(checkpoint),
///     None => subscribe.from_beginning(),
/// }
/// .stream()?;
/// while let Some(delivered) = orders.next().await {
///     let delivered = delivered?;
///     let event = &delivered.event;
///     println!("{}/{} v{} {}", event.aggregate_type, event.aggregate_id, event.version, event.event_type);
///     // … apply it, then store delivered.checkpoint with the result …
/// }
/// # Ok(()) }
/// ```
#[must_use = "a subscription does nothing until streamed"]
#[derive(Clone)]
pub struct Subscribe<'a> {
    client: &'a Client,
    types: Vec<String>,
    start: Start,
    options: Options,
    invalid: Option<Error>,
}

impl std::fmt::Debug for Subscribe<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscribe")
            .field("types", &self.types)
            .field("start", &self.start)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl<'a> Subscribe<'a> {
    fn invalid(mut self, error: Error) -> Self {
        self.invalid.get_or_insert(error);
        self
    }

    /// Follows aggregates of this type (call again for more types). Without it, every type.
    pub fn aggregate_type(mut self, aggregate_type: &str) -> Self {
        if let Err(e) = validate::aggregate_type(aggregate_type) {
            return self.invalid(e);
        }
        if let Err(at) = self
            .types
            .binary_search_by(|t| t.as_str().cmp(aggregate_type))
        {
            self.types.insert(at, aggregate_type.to_owned());
        }
        self
    }

    /// Follows aggregates of these types (added to any given before).
    pub fn aggregate_types<I, S>(self, types: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        types
            .into_iter()
            .fold(self, |s, t| s.aggregate_type(t.as_ref()))
    }

    /// Starts with the first event of every aggregate (the default).
    pub fn from_beginning(mut self) -> Self {
        self.start = Start::Beginning;
        self
    }

    /// Starts with the events written after the subscription starts. "Now" is the store's
    /// latest write as the server reports it, not this machine's clock, read when the
    /// subscription is first polled.
    ///
    /// Every event acknowledged after the subscription has caught up
    /// ([`Subscription::is_caught_up`], which turns true one round after the start, with or
    /// without an event to deliver) is delivered. Events acknowledged between
    /// [`stream`](Self::stream) and then may come or not: what the store holds when the
    /// subscription first lists it counts as there before it. Those that come, come in
    /// version order from some version on, without a gap.
    ///
    /// ```no_run
    /// # async fn demo(client: edbx::Client) -> edbx::Result<()> {
    /// use std::time::Duration;
    ///
    /// let mut feed = client.subscribe().from_now().stream()?;
    /// // Poll until it has caught up (the timeout only lets the loop look; nothing is lost).
    /// while !feed.is_caught_up() {
    ///     let wait = tokio::time::timeout(Duration::from_millis(50), feed.next());
    ///     if let Ok(Some(delivered)) = wait.await {
    ///         println!("written while it started: {}", delivered?.event.aggregate_id);
    ///     }
    /// }
    /// // From here on, every acknowledged write is delivered.
    /// client.apply("orders", "o1", "order.paid", &serde_json::json!({"paid": true})).await?;
    /// while let Some(delivered) = feed.next().await {
    ///     let event = delivered?.event;
    ///     println!("{}/{} v{}", event.aggregate_type, event.aggregate_id, event.version);
    /// }
    /// # Ok(()) }
    /// ```
    pub fn from_now(mut self) -> Self {
        self.start = Start::Now;
        self
    }

    /// Goes on after a checkpoint a subscription to the same aggregate types gave (see
    /// [`SubscribedEvent::checkpoint`]). A text that is not one fails
    /// [`stream`](Self::stream) with [`ErrorKind::InvalidCheckpoint`](crate::ErrorKind).
    pub fn from_checkpoint(mut self, checkpoint: impl Into<String>) -> Self {
        self.start = Start::Checkpoint(checkpoint.into());
        self
    }

    /// How far back (in the server's time) each round looks again, default 1 s: the largest
    /// backward step of the server's clock that cannot make the subscription miss an event,
    /// and the bound on repeats after a restart. At least 1 ms.
    pub fn overlap(mut self, overlap: Duration) -> Self {
        match i64::try_from(overlap.as_millis()) {
            Ok(ms) if (1..=86_400_000).contains(&ms) => self.options.overlap_ms = ms,
            _ => {
                return self.invalid(Error::invalid_input(format!(
                    "overlap must be between 1 ms and one day, got {overlap:?}"
                )));
            }
        }
        self
    }

    /// The wait between rounds: `min` after a round that delivered events, doubling up to `max`
    /// while nothing happens (defaults 50 ms and 1 s). An idle subscription costs the server
    /// about one listing per `max`.
    pub fn poll_interval(mut self, min: Duration, max: Duration) -> Self {
        if min.is_zero() || min > max || max > Duration::from_secs(3_600) {
            return self.invalid(Error::invalid_input(format!(
                "poll interval must be 0 < min <= max <= 1 h, got min {min:?}, max {max:?}"
            )));
        }
        self.options.min_poll = min;
        self.options.max_poll = max;
        self
    }

    /// Aggregates asked for per listing request (default 32, 1 to 1000; the server also cuts
    /// pages to ~7.5 KiB).
    pub fn page_size(mut self, rows: u64) -> Self {
        match within("page size", rows, 1000) {
            Ok(rows) => self.options.page_size = rows,
            Err(e) => return self.invalid(e),
        }
        self
    }

    /// Events asked for per request (default 1000, 1 to 1000; the server cuts pages to
    /// ~7.5 KiB).
    pub fn events_page_size(mut self, events: u64) -> Self {
        match within("events page size", events, 1000) {
            Ok(events) => self.options.events_page_size = events,
            Err(e) => return self.invalid(e),
        }
        self
    }

    /// Aggregates whose events are read at once, ahead of delivery (default 8, 1 to 256).
    /// Events are still delivered one aggregate after the other.
    pub fn prefetch(mut self, aggregates: usize) -> Self {
        match within("prefetch", aggregates as u64, 256) {
            Ok(n) => self.options.prefetch = n as usize,
            Err(e) => return self.invalid(e),
        }
        self
    }

    /// Ends the stream once the subscription has caught up: when every event written before
    /// some moment after it started has been delivered. For scripts and tests.
    pub fn until_caught_up(mut self, yes: bool) -> Self {
        self.options.until_caught_up = yes;
        self
    }

    /// How long to keep trying again when reads fail with a retryable error (the server is
    /// restarting, the connection dropped), before the stream fails with that error (returned
    /// again by every later call, so a failed stream never looks finished). Default:
    /// for ever. The waits between tries follow the client's [`RetryOptions`](crate::RetryOptions).
    pub fn retry_for(mut self, limit: Option<Duration>) -> Self {
        self.options.retry_for = limit;
        self
    }

    /// Checks the options (and the checkpoint) and returns the subscription; nothing is sent
    /// until it is polled, which must be inside a Tokio runtime (it reads the events of several
    /// aggregates at once on tasks of its own).
    pub fn stream(self) -> Result<Subscription> {
        if let Some(e) = self.invalid {
            return Err(e);
        }
        let (position, silent_start) = match self.start {
            Start::Beginning => (
                Position {
                    types: self.types.clone(),
                    floor: i64::MIN,
                    pass: Some(Pass {
                        cap: None,
                        after: None,
                    }),
                    window: Default::default(),
                },
                false,
            ),
            Start::Now => (
                Position {
                    types: self.types.clone(),
                    floor: i64::MIN,
                    pass: None,
                    window: Default::default(),
                },
                true,
            ),
            Start::Checkpoint(text) => {
                let position = Checkpoint::parse(&text)?.position();
                if position.types != self.types {
                    let name = |t: &[String]| {
                        if t.is_empty() {
                            "all aggregate types".to_owned()
                        } else {
                            format!("aggregate types {}", t.join(", "))
                        }
                    };
                    return Err(Error::new(
                        crate::ErrorKind::InvalidCheckpoint,
                        format!(
                            "this checkpoint was made by a subscription to {}, not to {}: \
                             its floor says nothing about the others",
                            name(&position.types),
                            name(&self.types)
                        ),
                    ));
                }
                (position, false)
            }
        };
        let checkpoint = position.encode();
        let (tx, rx) = mpsc::channel(CHANNEL);
        let driver = Driver::new(self.client.clone(), self.options, position, tx);
        Ok(Subscription {
            driver: Some(Box::pin(driver.run(silent_start))),
            rx,
            checkpoint,
            caught_up: false,
            ended: false,
            unreadable: VecDeque::new(),
            deferred: None,
            failed: None,
        })
    }
}

impl Client {
    /// A catch-up subscription: every event of the store, or of some aggregate types, from the
    /// beginning, from now or from a checkpoint, caught up and then followed live, in version
    /// order per aggregate; see [`Subscribe`] for the options and [`Subscription`] for what
    /// it guarantees.
    ///
    /// ```no_run
    /// # async fn demo(client: edbx::Client) -> edbx::Result<()> {
    /// let mut feed = client.subscribe().from_now().stream()?;
    /// while let Some(delivered) = feed.next().await {
    ///     let delivered = delivered?;
    ///     println!("{} v{}", delivered.event.aggregate_id, delivered.event.version);
    /// }
    /// # Ok(()) }
    /// ```
    pub fn subscribe(&self) -> Subscribe<'_> {
        Subscribe {
            client: self,
            types: Vec::new(),
            start: Start::Beginning,
            options: Options {
                overlap_ms: DEFAULT_OVERLAP.as_millis() as i64,
                min_poll: DEFAULT_MIN_POLL,
                max_poll: DEFAULT_MAX_POLL,
                page_size: 32,
                events_page_size: 1000,
                prefetch: 8,
                until_caught_up: false,
                retry_for: None,
            },
            invalid: None,
        }
    }
}

type DriverFuture = Pin<Box<dyn std::future::Future<Output = ()> + Send>>;

/// A running subscription: a [`Stream`](futures_core::Stream) of [`SubscribedEvent`]s, or use
/// its own [`next`](Self::next).
///
/// What it guarantees (server 3.19.4, whose clock may step backwards by at most the
/// [overlap](Subscribe::overlap)):
///
/// * **No gaps.** Every event of a followed active aggregate is delivered — also events written
///   while it reads, by any number of writers, across server restarts, and across the
///   subscriber's own restarts from its last stored checkpoint.
/// * **Order.** An aggregate's events come in version order, each version once per stream.
///   Events of different aggregates are not ordered by time; following live, each round hands
///   on the aggregates it found oldest change first, so writes to different aggregates usually
///   arrive in the order they were made. A catch-up pass goes in key order.
/// * **From now** ([`Subscribe::from_now`]): every event acknowledged after the subscription
///   has caught up ([`is_caught_up`](Self::is_caught_up)) is delivered.
/// * **Repeats** happen only after a restart from a checkpoint: events written within the
///   overlap before the checkpoint's floor moved may come again, never more than that
///   (at-least-once). An aggregate's repeats start at some version and go on in order.
/// * **Bounded memory**, whatever the store's size: the window holds the aggregates written to
///   within the overlap and the current round.
/// * **Archived aggregates** are not followed: server 3.19.4 serves only the events of active
///   aggregates. Events an aggregate had not delivered when it was archived are reported as
///   [`Unreadable`] (see [`take_unreadable`](Self::take_unreadable)) and not delivered; events
///   written after it is restored are.
/// * **Failures.** Reads that fail with a retryable error (connection lost, server restarting)
///   are tried again, with the client's retry delays, for as long as
///   [`Subscribe::retry_for`] says (default: for ever); anything else stops the stream, which
///   then returns that error on every call.
pub struct Subscription {
    driver: Option<DriverFuture>,
    rx: mpsc::Receiver<Msg>,
    checkpoint: Checkpoint,
    caught_up: bool,
    ended: bool,
    unreadable: VecDeque<Unreadable>,
    /// A failure met while filling a batch, yielded next.
    deferred: Option<Error>,
    /// The failure that stopped the stream, returned again on every later call.
    failed: Option<Error>,
}

impl std::fmt::Debug for Subscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription")
            .field("checkpoint", &self.checkpoint)
            .field("caught_up", &self.caught_up)
            .finish_non_exhaustive()
    }
}

impl Subscription {
    /// The next delivered event, or `None` when the stream ended (after
    /// [`until_caught_up`](Subscribe::until_caught_up)). After an error the subscription stops
    /// reading and every later call returns the error again, so that a loop that retries on
    /// errors never mistakes a failed subscription for a finished one; resume from its
    /// [`checkpoint`](Self::checkpoint) with a new subscription.
    pub async fn next(&mut self) -> Option<Result<SubscribedEvent>> {
        std::future::poll_fn(|cx| self.poll_event(cx)).await
    }

    /// The next event and those already read after it, up to `max` (at least one), without
    /// waiting for more; `None` at the end. For callers that hand events on in batches, e.g.
    /// language bindings. Cancelling it (dropping the future) loses nothing.
    ///
    /// ```no_run
    /// # async fn demo(client: edbx::Client) -> edbx::Result<()> {
    /// let mut feed = client.subscribe().stream()?;
    /// while let Some(batch) = feed.next_batch(500).await {
    ///     let batch = batch?;
    ///     // … apply the batch, then store batch.last().unwrap().checkpoint …
    /// #   let _ = batch;
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn next_batch(&mut self, max: usize) -> Option<Result<Vec<SubscribedEvent>>> {
        let first = match self.next().await? {
            Ok(first) => first,
            Err(e) => return Some(Err(e)),
        };
        let mut batch = vec![first];
        std::future::poll_fn(|cx| {
            while batch.len() < max {
                match self.poll_event(cx) {
                    Poll::Ready(Some(Ok(event))) => batch.push(event),
                    Poll::Ready(Some(Err(e))) => {
                        // The events before it are good: the failure comes next time.
                        self.deferred = Some(e);
                        break;
                    }
                    Poll::Ready(None) | Poll::Pending => break,
                }
            }
            Poll::Ready(())
        })
        .await;
        Some(Ok(batch))
    }

    /// The checkpoint after everything this stream has yielded so far. It also moves while no
    /// event comes (as rounds complete), so storing it when idle saves work after a restart.
    pub fn checkpoint(&self) -> &Checkpoint {
        &self.checkpoint
    }

    /// Whether the subscription has caught up at least once: every event written before some
    /// moment after it started has been yielded, and every event acknowledged from now on
    /// will be. It changes only while the subscription is polled (the message that says so
    /// comes through the stream without an event): poll with a timeout to wait for it, as
    /// [`Subscribe::from_now`] shows.
    pub fn is_caught_up(&self) -> bool {
        self.caught_up
    }

    /// The archived aggregates met since the last call whose events could not be read (also
    /// logged as `tracing` warnings). At most the latest 1,000 are kept.
    pub fn take_unreadable(&mut self) -> Vec<Unreadable> {
        self.unreadable.drain(..).collect()
    }

    fn poll_event(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<SubscribedEvent>>> {
        if let Some(e) = self.deferred.take() {
            return Poll::Ready(Some(Err(e)));
        }
        if let Some(e) = &self.failed {
            return Poll::Ready(Some(Err(e.clone())));
        }
        loop {
            if self.ended {
                return Poll::Ready(None);
            }
            match self.rx.poll_recv(cx) {
                Poll::Ready(Some(msg)) => match msg {
                    Msg::Event(delivered) => {
                        self.checkpoint = delivered.checkpoint.clone();
                        return Poll::Ready(Some(Ok(*delivered)));
                    }
                    Msg::Progress(checkpoint) => self.checkpoint = checkpoint,
                    Msg::CaughtUp(checkpoint) => {
                        self.checkpoint = checkpoint;
                        self.caught_up = true;
                    }
                    Msg::Unreadable(report) => {
                        if self.unreadable.len() == MAX_UNREADABLE {
                            self.unreadable.pop_front();
                        }
                        self.unreadable.push_back(report);
                    }
                    Msg::Failed(error) => {
                        self.ended = true;
                        self.failed = Some(error.clone());
                        return Poll::Ready(Some(Err(error)));
                    }
                },
                Poll::Ready(None) => {
                    self.ended = true;
                    return Poll::Ready(None);
                }
                Poll::Pending => {}
            }
            // Nothing queued: let the driver work. It ends only after queueing its last message.
            match self.driver.as_mut() {
                Some(driver) => match driver.as_mut().poll(cx) {
                    Poll::Ready(()) => self.driver = None,
                    Poll::Pending => return Poll::Pending,
                },
                None => return Poll::Pending,
            }
        }
    }
}

impl futures_core::Stream for Subscription {
    type Item = Result<SubscribedEvent>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().poll_event(cx)
    }
}

/// `value` if it is 1 to `max`.
fn within(what: &str, value: u64, max: u64) -> Result<u64> {
    if (1..=max).contains(&value) {
        Ok(value)
    } else {
        Err(Error::invalid_input(format!(
            "{what} must be 1 to {max}, got {value}"
        )))
    }
}

/// Milliseconds since the epoch of an RFC 3339 time the server wrote.
pub(crate) fn millis(what: &str, text: &str) -> Result<i64> {
    let time = humantime::parse_rfc3339(text).map_err(|e| {
        Error::new(
            crate::ErrorKind::Decode,
            format!("{what} {text:?} is not an RFC 3339 UTC time: {e}"),
        )
    })?;
    let since = time.duration_since(std::time::UNIX_EPOCH).map_err(|_| {
        Error::new(
            crate::ErrorKind::Decode,
            format!("{what} {text:?} is before 1970"),
        )
    })?;
    i64::try_from(since.as_millis()).map_err(|_| {
        Error::new(
            crate::ErrorKind::Decode,
            format!("{what} {text:?} is too far off"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::millis;

    #[test]
    fn server_times_read_to_the_millisecond() {
        assert_eq!(millis("t", "1970-01-01T00:00:01Z").unwrap(), 1000);
        assert_eq!(
            millis("t", "2025-01-01T00:00:00.123456789Z").unwrap(),
            1_735_689_600_123
        );
        assert!(millis("t", "yesterday").is_err());
    }
}
