//! New events as they arrive: one [`LiveSource`] feeds a hub, whose subscribers are the pages'
//! server-sent-event streams. The source runs only while a page listens.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Query, State};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use edbx::{Aggregate, Client, Event};
use serde::Deserialize;
use tokio::sync::broadcast;

use crate::api::event_json;
use crate::time::ms;
use crate::{AppState, LiveSourceFactory};

/// What a [`LiveSource`] found: new events, and whether it knows it missed some.
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct LiveBatch {
    /// New events, each aggregate's in version order.
    pub events: Vec<Event>,
    /// Why some events may be missing from this batch, when the source knows it.
    pub gap: Option<String>,
}

impl LiveBatch {
    /// A batch of `events`, complete.
    pub fn of(events: Vec<Event>) -> Self {
        Self { events, gap: None }
    }
}

/// Where live events come from. [`Polling`] is the default; a catch-up subscription can take
/// its place through [`Options::live_source`](crate::Options::live_source).
///
/// The hub calls [`next_batch`](Self::next_batch) in a loop while any page listens, and makes
/// a fresh source (through the factory) when pages listen again after none did.
pub trait LiveSource: Send {
    /// A short name shown in the page (`polling`, `subscription`).
    fn name(&self) -> &'static str;

    /// Waits for new events and returns them. The first call takes the source's starting
    /// point (what exists now) and may return nothing: events written after it returns are
    /// new, and every later call returns each of them once.
    fn next_batch(&mut self) -> Pin<Box<dyn Future<Output = edbx::Result<LiveBatch>> + Send + '_>>;
}

/// How far back each look reaches before the newest change it saw: writes of other aggregates
/// are timed when they start and become visible when they commit, so one that committed late
/// may carry a time a little before the newest one seen.
const OVERLAP_MS: i64 = 3_000;
/// Changed aggregates read per look, at most (a burst beyond it is reported as a gap).
const MAX_CHANGED_PER_LOOK: usize = 2_000;

/// The default [`LiveSource`]: every `interval`, the aggregates changed since the newest
/// change it saw (a listing sorted by `updated_at:desc`, read until it reaches older ones),
/// then each one's events after the version it last saw.
pub struct Polling {
    client: Client,
    interval: Duration,
    /// The newest `updated_at` seen (ms); `None` before the first look.
    newest: Option<i64>,
    /// Versions seen of the aggregates changed within [`OVERLAP_MS`] of `newest`.
    seen: HashMap<(String, String), (u64, i64)>,
}

impl Polling {
    /// A source that looks every `interval`.
    pub fn new(client: Client, interval: Duration) -> Self {
        Self {
            client,
            interval,
            newest: None,
            seen: HashMap::new(),
        }
    }

    async fn look(&mut self) -> edbx::Result<LiveBatch> {
        let first = self.newest.is_none();
        if !first {
            tokio::time::sleep(self.interval).await;
        }
        let (changed, capped) =
            changed_since(&self.client, self.newest.map(|n| n - OVERLAP_MS)).await?;
        let mut batch = LiveBatch::default();
        if capped {
            batch.gap = Some(format!(
                "more than {MAX_CHANGED_PER_LOOK} aggregates changed between two looks: some \
                 events are not shown"
            ));
        }
        let floor = self.newest.unwrap_or(i64::MIN).saturating_sub(OVERLAP_MS);
        // Oldest change first, so that the events come out roughly in time order.
        for (aggregate, updated) in changed.into_iter().rev() {
            let key = (
                aggregate.aggregate_type.clone(),
                aggregate.aggregate_id.clone(),
            );
            let known = self.seen.get(&key).map(|(version, _)| *version);
            let mut version = aggregate.version;
            if !first {
                let events = match known {
                    Some(v) if aggregate.version <= v => Vec::new(),
                    Some(v) => after_version(&self.client, &aggregate, v).await?,
                    // Not changed within the window before: its events from the window on
                    // are new (earlier ones were older than any look's window).
                    None => since(&self.client, &aggregate, floor).await?,
                };
                if let Some(last) = events.last() {
                    version = version.max(last.version);
                }
                batch.events.extend(events);
            }
            let version = version.max(known.unwrap_or(0));
            self.seen.insert(key, (version, updated));
            self.newest = Some(self.newest.map_or(updated, |n| n.max(updated)));
        }
        if self.newest.is_none() {
            // An empty store: everything from now on is new.
            self.newest = Some(i64::MIN + OVERLAP_MS);
        }
        let keep_from = self.newest.unwrap_or(i64::MIN).saturating_sub(OVERLAP_MS);
        self.seen.retain(|_, (_, updated)| *updated >= keep_from);
        Ok(batch)
    }
}

impl LiveSource for Polling {
    fn name(&self) -> &'static str {
        "polling"
    }

    fn next_batch(&mut self) -> Pin<Box<dyn Future<Output = edbx::Result<LiveBatch>> + Send + '_>> {
        Box::pin(self.look())
    }
}

/// Aggregates changed at or after `floor` (ms), newest first, with their change times; without
/// a floor, those changed within [`OVERLAP_MS`] of the newest change. Whether it stopped at
/// [`MAX_CHANGED_PER_LOOK`].
async fn changed_since(
    client: &Client,
    floor: Option<i64>,
) -> edbx::Result<(Vec<(Aggregate, i64)>, bool)> {
    let mut stream = client.list().sort("updated_at:desc").take(50).stream();
    let mut floor = floor;
    let mut rows = Vec::new();
    while let Some(aggregate) = stream.next().await {
        let aggregate = aggregate?;
        let Some(updated) = aggregate.updated_at.as_deref().and_then(ms) else {
            continue;
        };
        let floor = *floor.get_or_insert(updated - OVERLAP_MS);
        if updated < floor {
            return Ok((rows, false));
        }
        if rows.len() == MAX_CHANGED_PER_LOOK {
            return Ok((rows, true));
        }
        rows.push((aggregate, updated));
    }
    Ok((rows, false))
}

/// An aggregate's events after `version`.
pub(crate) async fn after_version(
    client: &Client,
    aggregate: &Aggregate,
    version: u64,
) -> edbx::Result<Vec<Event>> {
    client
        .events(&aggregate.aggregate_type, &aggregate.aggregate_id)
        .after_version(version)
        .take(1000)
        .stream()
        .collect_all()
        .await
}

/// An aggregate's events created at or after `floor` (ms), read from its end backwards in
/// growing steps, so an aggregate with a long history costs only its recent events.
pub(crate) async fn since(
    client: &Client,
    aggregate: &Aggregate,
    floor: i64,
) -> edbx::Result<Vec<Event>> {
    let mut step = 8u64;
    loop {
        let after = aggregate.version.saturating_sub(step);
        let events = after_version(client, aggregate, after).await?;
        let reaches_back = events
            .first()
            .and_then(|e| ms(&e.metadata.created_at))
            .is_none_or(|t| t < floor);
        if after == 0 || reaches_back {
            return Ok(events
                .into_iter()
                .filter(|e| ms(&e.metadata.created_at).is_some_and(|t| t >= floor))
                .collect());
        }
        step = step.saturating_mul(4);
    }
}

/// What the hub sends its subscribers.
#[derive(Debug)]
enum Message {
    /// The source is watching: events from now on will come.
    Ready,
    /// A new event (as JSON text), of this aggregate.
    Event(String, String, String),
    /// A problem with the source, in words.
    Status(String),
}

/// One live source shared by every page that listens.
pub(crate) struct Hub {
    client: Client,
    factory: LiveSourceFactory,
    name: &'static str,
    sender: broadcast::Sender<Arc<Message>>,
    /// Whether the source's task runs; subscribing and the task's decision to stop both hold
    /// this lock, so a page that subscribes as the task stops starts a new one.
    running: Arc<Mutex<bool>>,
    ready: Arc<AtomicBool>,
}

impl Hub {
    pub(crate) fn new(client: Client, factory: LiveSourceFactory) -> Self {
        let name = factory(client.clone()).name();
        Self {
            client,
            factory,
            name,
            sender: broadcast::channel(4096).0,
            running: Arc::new(Mutex::new(false)),
            ready: Arc::new(AtomicBool::new(false)),
        }
    }

    pub(crate) fn source_name(&self) -> &'static str {
        self.name
    }

    fn subscribe(&self) -> (broadcast::Receiver<Arc<Message>>, bool) {
        let mut running = self.running.lock().expect("hub lock");
        let receiver = self.sender.subscribe();
        if !*running {
            *running = true;
            self.ready.store(false, Ordering::SeqCst);
            let source = (self.factory)(self.client.clone());
            tokio::spawn(run(
                source,
                self.sender.clone(),
                self.ready.clone(),
                self.running.clone(),
            ));
        }
        (receiver, self.ready.load(Ordering::SeqCst))
    }
}

async fn run(
    mut source: Box<dyn LiveSource>,
    sender: broadcast::Sender<Arc<Message>>,
    ready: Arc<AtomicBool>,
    running: Arc<Mutex<bool>>,
) {
    let mut failures = 0u32;
    loop {
        {
            let mut running = running.lock().expect("hub lock");
            if sender.receiver_count() == 0 {
                *running = false;
                return;
            }
        }
        match source.next_batch().await {
            Ok(batch) => {
                if failures > 0 || !ready.swap(true, Ordering::SeqCst) {
                    failures = 0;
                    let _ = sender.send(Arc::new(Message::Ready));
                }
                if let Some(gap) = batch.gap {
                    let _ = sender.send(Arc::new(Message::Status(gap)));
                }
                for event in batch.events {
                    let json = event_json(&event).to_string();
                    let _ = sender.send(Arc::new(Message::Event(
                        event.aggregate_type,
                        event.aggregate_id,
                        json,
                    )));
                }
            }
            Err(e) => {
                failures += 1;
                let _ = sender.send(Arc::new(Message::Status(format!(
                    "live events paused, trying again: {e}"
                ))));
                tokio::time::sleep(Duration::from_millis(500 * u64::from(failures.min(10)))).await;
            }
        }
    }
}

#[derive(Deserialize)]
pub(crate) struct LiveQuery {
    #[serde(rename = "type")]
    aggregate_type: Option<String>,
    id: Option<String>,
}

/// Server-sent events: `ready` once the source watches, `event` for each new event of the
/// type or aggregate asked for (all when neither), `status` for problems, `lagged` when this
/// page fell behind and should reload.
pub(crate) async fn sse(
    State(state): State<Arc<AppState>>,
    Query(q): Query<LiveQuery>,
) -> Response {
    let (receiver, ready) = state.hub.subscribe();
    let first = ready.then(|| {
        SseEvent::default()
            .event("ready")
            .data(state.hub.source_name())
    });
    let filter = (
        q.aggregate_type.filter(|t| !t.is_empty()),
        q.id.filter(|i| !i.is_empty()),
    );
    let name = state.hub.source_name();
    let stream = futures_util::stream::unfold(
        (receiver, filter, first),
        move |(mut receiver, filter, mut first)| async move {
            if let Some(event) = first.take() {
                return Some((Ok::<_, Infallible>(event), (receiver, filter, first)));
            }
            loop {
                let event = match receiver.recv().await {
                    Ok(message) => match &*message {
                        Message::Ready => SseEvent::default().event("ready").data(name),
                        Message::Status(text) => SseEvent::default()
                            .event("status")
                            .data(text.replace('\n', " ")),
                        Message::Event(t, id, json) => {
                            let wanted = filter.0.as_ref().is_none_or(|f| f == t)
                                && filter.1.as_ref().is_none_or(|f| f == id);
                            if !wanted {
                                continue;
                            }
                            SseEvent::default().event("event").data(json.as_str())
                        }
                    },
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        SseEvent::default().event("lagged").data(n.to_string())
                    }
                    Err(broadcast::error::RecvError::Closed) => return None,
                };
                return Some((Ok(event), (receiver, filter, first)));
            }
        },
    );
    Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response()
}
