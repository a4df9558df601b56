//! Catch-up subscriptions for `client.subscribe(...)`: the engine's `Subscription`, handed to
//! Python a batch of events at a time, each event as its JSON text with its checkpoint; and
//! the engine's checkpoint file, for `FileCheckpointStore`.

use std::sync::Arc;
use std::time::Duration;

use edbx::{CheckpointStore, Client, FileCheckpointStore, Subscribe};
use pyo3::prelude::*;
use tokio::sync::Mutex;

use crate::client::RawText;
use crate::runtime::{self, Home};

/// What Python reads without waiting: the checkpoint after the last batch Python received,
/// whether it had caught up, and the unreadable aggregates met; and the batch handed over but
/// not yet known to be received.
#[derive(Default)]
struct Seen {
    checkpoint: String,
    caught_up: bool,
    unreadable: Vec<(String, String, u64, Option<u64>)>,
    /// Batches handed over so far (each one's number).
    handed: u64,
    /// The last batch handed over, kept until Python says it has it: a Ctrl-C or a cancelled
    /// task can lose a batch between the core and the caller (the signal is handled as the
    /// call returns, the cancellation as the task resumes), and the next call then gets it
    /// again instead of the events after it.
    unreceived: Option<Handed>,
}

/// A batch handed over, with what the subscription stood at after it.
struct Handed {
    number: u64,
    batch: Batch,
    checkpoint: String,
    caught_up: bool,
}

impl Seen {
    /// Python has every batch up to `received`: the one kept for it, if it is one of them,
    /// counts as delivered (the checkpoint moves past it).
    fn received(&mut self, received: u64) {
        if self
            .unreceived
            .as_ref()
            .is_some_and(|h| h.number <= received)
        {
            let handed = self.unreceived.take().expect("checked above");
            self.checkpoint = handed.checkpoint;
            self.caught_up = handed.caught_up;
        }
    }
}

/// A running subscription. Safe to share, though one consumer is what makes sense.
#[pyclass(frozen, module = "eventdbx._native")]
pub(crate) struct NativeSubscription {
    inner: Arc<Mutex<edbx::Subscription>>,
    seen: Arc<std::sync::Mutex<Seen>>,
    home: Home,
    /// The fork generation it was started in: it runs on that process's engine only.
    generation: u64,
}

/// The options of `NativeClient.subscribe`, as Python gives them.
pub(crate) struct SubscribeOptions {
    pub types: Vec<String>,
    pub start: String,
    pub checkpoint: Option<String>,
    pub until_caught_up: bool,
    pub overlap: Option<Duration>,
    pub poll_interval: Option<(Duration, Duration)>,
    pub page_size: Option<u64>,
    pub events_page_size: Option<u64>,
    pub prefetch: Option<usize>,
    pub retry_for: Option<Duration>,
}

impl SubscribeOptions {
    fn apply<'a>(self, mut subscribe: Subscribe<'a>) -> edbx::Result<Subscribe<'a>> {
        subscribe = subscribe
            .aggregate_types(&self.types)
            .until_caught_up(self.until_caught_up)
            .retry_for(self.retry_for);
        subscribe = match (self.checkpoint, self.start.as_str()) {
            (Some(checkpoint), _) => subscribe.from_checkpoint(checkpoint),
            (None, "beginning") => subscribe.from_beginning(),
            (None, "now") => subscribe.from_now(),
            (None, other) => {
                return Err(edbx::Error::invalid_input(format!(
                    "start must be \"beginning\" or \"now\", got {other:?}"
                )));
            }
        };
        if let Some(overlap) = self.overlap {
            subscribe = subscribe.overlap(overlap);
        }
        if let Some((min, max)) = self.poll_interval {
            subscribe = subscribe.poll_interval(min, max);
        }
        if let Some(rows) = self.page_size {
            subscribe = subscribe.page_size(rows);
        }
        if let Some(events) = self.events_page_size {
            subscribe = subscribe.events_page_size(events);
        }
        if let Some(aggregates) = self.prefetch {
            subscribe = subscribe.prefetch(aggregates);
        }
        Ok(subscribe)
    }
}

impl NativeSubscription {
    /// Checks the options and starts nothing yet: the first batch asked for starts it.
    pub(crate) fn start(
        client: &Client,
        home: Home,
        options: SubscribeOptions,
    ) -> edbx::Result<Self> {
        let subscription = options.apply(client.subscribe())?.stream()?;
        let seen = Seen {
            checkpoint: subscription.checkpoint().to_string(),
            ..Seen::default()
        };
        Ok(Self {
            inner: Arc::new(Mutex::new(subscription)),
            seen: Arc::new(std::sync::Mutex::new(seen)),
            home,
            generation: runtime::generation(),
        })
    }

    fn seen(&self) -> std::sync::MutexGuard<'_, Seen> {
        self.seen.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for NativeSubscription {
    fn drop(&mut self) {
        if self.generation != runtime::generation() {
            // Inherited across fork(): never released in the child (see `runtime`).
            std::mem::forget(self.inner.clone());
            std::mem::forget(self.home.clone());
        }
    }
}

/// One batch: `(event JSON, checkpoint after it)` pairs.
type Batch = Vec<(String, String)>;

#[pymethods]
impl NativeSubscription {
    /// `(number, events)`: the next events (at least one, at most `max_events`) and the batch's
    /// number, `(received, [])` if none came within `timeout` seconds, or `None` when the
    /// subscription ended. `received` is the number of the last batch the caller has: a batch
    /// handed over after it and never received is handed over again, before any new event.
    #[pyo3(signature = (max_events=1000, timeout=None, received=0, asynchronous=false))]
    fn next_batch<'py>(
        &self,
        py: Python<'py>,
        max_events: usize,
        timeout: Option<f64>,
        received: u64,
        asynchronous: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        if self.generation != runtime::generation() {
            return Err(crate::errors::invalid_input(
                py,
                "this subscription was started before the process forked; start it again in \
                 this process from its last checkpoint",
            ));
        }
        let timeout = match timeout {
            Some(seconds) if seconds.is_finite() && seconds >= 0.0 => {
                Some(Duration::from_secs_f64(seconds))
            }
            Some(seconds) => {
                return Err(crate::errors::invalid_input(
                    py,
                    format!("timeout must be a number of seconds, at least 0, got {seconds}"),
                ));
            }
            None => None,
        };
        let max_events = max_events.max(1);
        let (inner, seen) = (self.inner.clone(), self.seen.clone());
        self.home.run(py, asynchronous, async move {
            let mut subscription = inner.lock().await;
            {
                let mut seen_now = seen.lock().unwrap_or_else(|e| e.into_inner());
                seen_now.received(received);
                if let Some(handed) = &seen_now.unreceived {
                    return Ok(Some((handed.number, handed.batch.clone())));
                }
            }
            let next = subscription.next_batch(max_events);
            let batch = match timeout {
                None => Some(next.await),
                Some(limit) => tokio::time::timeout(limit, next).await.ok(),
            };
            let mut seen_now = seen.lock().unwrap_or_else(|e| e.into_inner());
            seen_now
                .unreadable
                .extend(subscription.take_unreadable().into_iter().map(|u| {
                    (
                        u.aggregate_type,
                        u.aggregate_id,
                        u.version,
                        u.delivered_through,
                    )
                }));
            let checkpoint = subscription.checkpoint().to_string();
            let caught_up = subscription.is_caught_up();
            let events = match batch {
                Some(Some(events)) => events?,
                // No event came in time, or the stream ended: nothing to lose, and the
                // checkpoint may have moved (rounds complete while idle).
                idle_or_ended => {
                    seen_now.checkpoint = checkpoint;
                    seen_now.caught_up = caught_up;
                    return Ok(match idle_or_ended {
                        None => Some((seen_now.handed, Batch::new())),
                        Some(_) => None,
                    });
                }
            };
            let batch: Batch = events
                .into_iter()
                .map(|d| (d.event.raw_text(), d.checkpoint.to_string()))
                .collect();
            seen_now.handed += 1;
            let number = seen_now.handed;
            seen_now.unreceived = Some(Handed {
                number,
                batch: batch.clone(),
                checkpoint,
                caught_up,
            });
            Ok(Some((number, batch)))
        })
    }

    /// The caller has every batch up to number `received`: the checkpoint moves past them.
    fn received(&self, received: u64) {
        self.seen().received(received);
    }

    /// The checkpoint after every event handed over so far (it moves while idle too).
    #[getter]
    fn checkpoint(&self) -> String {
        self.seen().checkpoint.clone()
    }

    /// Whether the subscription had caught up when the last batch was handed over.
    #[getter]
    fn caught_up(&self) -> bool {
        self.seen().caught_up
    }

    /// The archived aggregates met whose events could not be read, since the last call:
    /// `(aggregate_type, aggregate_id, version, delivered_through)`.
    fn take_unreadable(&self) -> Vec<(String, String, u64, Option<u64>)> {
        std::mem::take(&mut self.seen().unreadable)
    }
}

/// The checkpoint stored in a file, or `None` if there is no file.
#[pyfunction]
pub(crate) fn load_checkpoint_file(
    py: Python<'_>,
    path: std::path::PathBuf,
) -> PyResult<Option<String>> {
    FileCheckpointStore::new(path)
        .load()
        .map_err(|e| match e.downcast::<edbx::Error>() {
            // A file that holds no checkpoint: EventDBXCheckpointError.
            Ok(e) => crate::errors::to_py_err(py, *e),
            Err(e) => pyo3::exceptions::PyOSError::new_err(e.to_string()),
        })
}

/// Replaces the file's checkpoint atomically (temporary file, fsync, rename, fsync of the
/// directory), after checking that it is one.
#[pyfunction]
pub(crate) fn save_checkpoint_file(
    py: Python<'_>,
    path: std::path::PathBuf,
    checkpoint: &str,
) -> PyResult<()> {
    let checkpoint =
        edbx::Checkpoint::parse(checkpoint).map_err(|e| crate::errors::to_py_err(py, e))?;
    py.detach(|| FileCheckpointStore::new(path).save(&checkpoint))
        .map_err(|e| pyo3::exceptions::PyOSError::new_err(e.to_string()))
}
