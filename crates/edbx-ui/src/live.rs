//! New events as they arrive: one [`LiveSource`] feeds a hub, whose subscribers are the pages'
//! server-sent-event streams. The source runs only while a page listens.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Query, State};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use edbx::{Client, Event};
use serde::Deserialize;
use tokio::sync::broadcast;

use crate::api::event_json;
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

/// Where live events come from. [`Subscribed`] (the engine's subscription) is the default;
/// another source can take its place through
/// [`Options::live_source`](crate::Options::live_source).
///
/// The hub calls [`next_batch`](Self::next_batch) in a loop while any page listens, and makes
/// a fresh source (through the factory) when pages listen again after none did.
pub trait LiveSource: Send {
    /// A short name shown in the page (`subscription`).
    fn name(&self) -> &'static str;

    /// Waits for new events and returns them. The first call takes the source's starting
    /// point (what exists now) and may return nothing: events written after it returns are
    /// new, and every later call returns each of them once.
    fn next_batch(&mut self) -> Pin<Box<dyn Future<Output = edbx::Result<LiveBatch>> + Send + '_>>;
}

/// How long the subscription is waited on before the hub looks whether any page still listens.
const IDLE: Duration = Duration::from_secs(2);
/// How long each wait for the subscription to take its starting point lasts.
const STARTING: Duration = Duration::from_millis(50);
/// Events handed on at once, at most.
const BATCH: usize = 1_000;
/// How long the subscription tries again after a failure (the server restarting, a lost
/// connection) before the pages are told and it starts over from where it was.
const RETRY_FOR: Duration = Duration::from_secs(5);

/// The default [`LiveSource`]: the engine's catch-up subscription
/// ([`edbx::Client::subscribe`]), from now on. Its first batch ends once the subscription has
/// caught up with its starting point: every event acknowledged after that comes later (the
/// engine's guarantee for a subscription from now), and the pages are told they are live.
pub struct Subscribed {
    client: Client,
    poll_interval: Duration,
    subscription: Option<edbx::Subscription>,
    /// Where a subscription that failed stood: the next one goes on from there.
    resume: Option<edbx::Checkpoint>,
}

impl Subscribed {
    /// A subscription that looks for new events at least every `poll_interval` while nothing
    /// happens.
    pub fn new(client: Client, poll_interval: Duration) -> Self {
        Self {
            client,
            poll_interval,
            subscription: None,
            resume: None,
        }
    }

    async fn batch(&mut self) -> edbx::Result<LiveBatch> {
        let Some(subscription) = self.subscription.as_mut() else {
            let fastest = edbx::DEFAULT_MIN_POLL.min(self.poll_interval);
            let subscribe = self
                .client
                .subscribe()
                .poll_interval(fastest, self.poll_interval)
                .retry_for(Some(RETRY_FOR));
            let mut subscription = match self.resume.take() {
                Some(checkpoint) => subscribe.from_checkpoint(checkpoint.as_str()),
                None => subscribe.from_now(),
            }
            .stream()?;
            let mut events = Vec::new();
            while !subscription.is_caught_up() {
                // Cancelling a wait for a batch loses nothing (Subscription::next_batch).
                match tokio::time::timeout(STARTING, subscription.next_batch(BATCH)).await {
                    Ok(Some(Ok(batch))) => events.extend(batch.into_iter().map(|d| d.event)),
                    Ok(Some(Err(e))) => {
                        self.resume = Some(subscription.checkpoint().clone());
                        return Err(e);
                    }
                    Ok(None) => break,
                    Err(_) => {}
                }
            }
            self.subscription = Some(subscription);
            return Ok(LiveBatch::of(events));
        };
        let batch = match tokio::time::timeout(IDLE, subscription.next_batch(BATCH)).await {
            Ok(Some(Ok(batch))) => LiveBatch::of(batch.into_iter().map(|d| d.event).collect()),
            Ok(Some(Err(e))) => {
                // The next call goes on from where this one stood.
                self.resume = Some(subscription.checkpoint().clone());
                self.subscription = None;
                return Err(e);
            }
            Ok(None) => {
                self.subscription = None;
                LiveBatch::default()
            }
            Err(_) => LiveBatch::default(),
        };
        let unreadable = self
            .subscription
            .as_mut()
            .map(|s| s.take_unreadable())
            .unwrap_or_default();
        Ok(LiveBatch {
            gap: (!unreadable.is_empty()).then(|| {
                let names: Vec<String> = unreadable
                    .iter()
                    .map(|u| format!("{}/{}", u.aggregate_type, u.aggregate_id))
                    .collect();
                format!(
                    "archived before their new events could be read (not shown): {}",
                    names.join(", ")
                )
            }),
            ..batch
        })
    }
}

impl LiveSource for Subscribed {
    fn name(&self) -> &'static str {
        "subscription"
    }

    fn next_batch(&mut self) -> Pin<Box<dyn Future<Output = edbx::Result<LiveBatch>> + Send + '_>> {
        Box::pin(self.batch())
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
