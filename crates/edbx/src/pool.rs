//! A fixed set of connection slots. The server runs one request at a time per connection, so
//! concurrency comes from spreading calls over connections; each connection also pipelines, so
//! a slot is never a lock.
//!
//! A call never waits for a connection to open while a live one can take it: it queues on the
//! least-loaded live connection, and the pool opens another one in the background (up to the
//! pool size). Only a call that finds no live connection at all opens one itself. After a failed
//! attempt a slot waits (exponential backoff with random jitter) before trying again, and calls
//! arriving meanwhile fail at once with the last error instead of hammering the server.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use edbx_wire::Response;
use tokio::sync::oneshot;
use tokio::time::Instant;

use crate::config::Config;
use crate::conn::{self, ConnHandle, Job, JobState};
use crate::error::{Error, ErrorKind, Result};

/// Backoff after failed connection attempts: doubling from this…
const BACKOFF_INITIAL: Duration = Duration::from_millis(100);
/// …up to this, each delay spread randomly over 50 %..100 %.
const BACKOFF_MAX: Duration = Duration::from_secs(5);

pub(crate) struct Pool {
    config: Config,
    slots: Vec<Slot>,
    next_id: AtomicU64,
    rotor: AtomicUsize,
    closed: AtomicBool,
}

#[derive(Default)]
struct Slot {
    /// The live connection, read on every call (a clone of three `Arc`s).
    conn: RwLock<Option<ConnHandle>>,
    /// Held while (re)connecting, so one slot never opens two sessions at once.
    connecting: tokio::sync::Mutex<()>,
    backoff: Mutex<Backoff>,
}

/// Failed attempts of a slot, and until when not to try again.
#[derive(Default)]
struct Backoff {
    failures: u32,
    retry_at: Option<Instant>,
    last_error: Option<Error>,
}

impl Slot {
    fn live(&self) -> Option<ConnHandle> {
        let guard = self.conn.read().unwrap_or_else(|e| e.into_inner());
        guard.as_ref().filter(|c| c.is_alive()).cloned()
    }

    fn backoff(&self) -> std::sync::MutexGuard<'_, Backoff> {
        self.backoff.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The last failure, if the slot is still waiting out its backoff.
    fn backing_off(&self) -> Option<Error> {
        let backoff = self.backoff();
        match (&backoff.retry_at, &backoff.last_error) {
            (Some(at), Some(error)) if Instant::now() < *at => Some(error.repeat(format!(
                "{} (no new attempt for another {:?})",
                error.message(),
                at.saturating_duration_since(Instant::now())
            ))),
            _ => None,
        }
    }
}

/// A request's place in a connection, for cancelling it if the caller gives up.
pub(crate) struct Sent {
    pub state: Arc<JobState>,
    pub reply: oneshot::Receiver<Result<Response>>,
}

impl Pool {
    pub(crate) fn new(config: Config) -> Self {
        let slots = (0..config.get_pool_size())
            .map(|_| Slot::default())
            .collect();
        Self {
            config,
            slots,
            next_id: AtomicU64::new(1),
            rotor: AtomicUsize::new(0),
            closed: AtomicBool::new(false),
        }
    }

    pub(crate) fn config(&self) -> &Config {
        &self.config
    }

    pub(crate) fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// A request that waits this long for its reply closes its connection (the peer is taken
    /// for gone): well past any caller's deadline.
    fn stall_after(&self) -> Duration {
        let timeout = self.config.get_request_timeout();
        timeout + (timeout / 2).max(Duration::from_secs(1))
    }

    /// Starts the driver of a new session: calls on it time out after the configured request
    /// timeout, and it closes when a request stalls past [`stall_after`](Self::stall_after).
    fn spawn(&self, session: conn::Established, max_in_flight: usize) -> ConnHandle {
        let timeout = self.config.get_request_timeout();
        conn::spawn(session, max_in_flight, timeout, self.stall_after())
    }

    /// Opens the first connection, so that a bad address or token fails at connect time. The
    /// caller paces its attempts itself, so the slot's own backoff is waived.
    pub(crate) async fn warm_up(&self) -> Result<()> {
        *self.slots[0].backoff() = Backoff::default();
        self.connect_slot(0).await.map(|_| ())
    }

    /// Queues a request on the least-loaded live connection.
    pub(crate) async fn send(
        self: &Arc<Self>,
        id: u64,
        message: Arc<[u8]>,
        mutation: bool,
        deadline: Instant,
    ) -> Result<Sent> {
        if self.closed.load(Ordering::Acquire) {
            return Err(Error::new(ErrorKind::Closed, "the client was closed"));
        }
        let conn = self.pick().await?;
        submit(&conn, id, message, mutation, deadline).await
    }

    /// Sends one request on a connection of its own, closed after the reply: for a request
    /// that may make the server close its connection, so that no other call shares its fate.
    pub(crate) async fn send_alone(
        &self,
        id: u64,
        message: Arc<[u8]>,
        deadline: Instant,
    ) -> Result<Response> {
        let session = conn::establish(&self.config).await?;
        let conn = self.spawn(session, 1);
        let sent = submit(&conn, id, message, false, deadline).await?;
        drop(conn);
        sent.reply.await.unwrap_or_else(|_| {
            Err(Error::new(
                ErrorKind::Disconnected,
                "the connection task ended without answering",
            ))
        })
    }

    async fn pick(self: &Arc<Self>) -> Result<ConnHandle> {
        // Start at a rotating slot so ties spread evenly.
        let start = self.rotor.fetch_add(1, Ordering::Relaxed);
        let n = self.slots.len();
        let late = self.config.get_request_timeout();
        let mut idle: Option<ConnHandle> = None;
        let mut best: Option<ConnHandle> = None;
        let mut late_best: Option<ConnHandle> = None;
        let mut empty: Option<usize> = None;
        // Since when some connection's oldest request has gone unanswered past the deadline.
        let mut silent_since: Option<u64> = None;
        for i in 0..n {
            let index = (start + i) % n;
            match self.slots[index].live() {
                // A connection whose oldest request is past its deadline may be dead: prefer
                // any other.
                Some(conn) => match conn.late_since(late) {
                    Some(since) => {
                        silent_since = Some(silent_since.map_or(since, |s| s.min(since)));
                        if late_best.as_ref().is_none_or(|b| conn.load() < b.load()) {
                            late_best = Some(conn);
                        }
                    }
                    // Heard from within the deadline, it cannot have gone silent with a sibling
                    // (that one's silence began longer ago than that): take it.
                    None if conn.load() == 0 && idle.is_none() && conn.heard_within(late) => {
                        return Ok(conn);
                    }
                    None if conn.load() == 0 => {
                        idle.get_or_insert(conn);
                    }
                    None => {
                        if best.as_ref().is_none_or(|b| conn.load() < b.load()) {
                            best = Some(conn);
                        }
                    }
                },
                None => {
                    empty = empty.or(Some(index));
                }
            }
        }
        let idle = match silent_since {
            None => idle,
            // A connection went silent (a partition, a black hole): idle ones that have not
            // heard from the server since may be as dead, while looking healthy. Each would
            // take a call's whole timeout to find out, so they are replaced instead.
            Some(since) => idle
                .filter(|conn| conn.heard_since(since))
                .or_else(|| self.idle_heard_since(since, &mut empty)),
        };
        if let Some(conn) = idle {
            return Ok(conn);
        }
        match (best, empty) {
            // Every live connection is busy: queue on the least-loaded one and grow the pool
            // in the background.
            (Some(conn), Some(index)) => {
                self.grow_in_background(index);
                Ok(conn)
            }
            (Some(conn), None) => Ok(conn),
            // No healthy live connection: open one, on this call's deadline. (Boxed: the
            // connect's state would otherwise sit in every pending call's future.)
            (None, Some(index)) => match Box::pin(self.connect_slot(index)).await {
                Ok(conn) => Ok(conn),
                Err(e) => late_best.ok_or(e),
            },
            (None, None) => late_best
                .ok_or_else(|| Error::new(ErrorKind::Closed, "the pool has no connection slot")),
        }
    }

    /// An idle connection that heard from the server at or after `since`; the idle ones that
    /// did not are taken out of the pool (each closes once nothing holds it), and `empty` is
    /// set to a slot left free.
    fn idle_heard_since(&self, since: u64, empty: &mut Option<usize>) -> Option<ConnHandle> {
        let mut heard = None;
        for (index, slot) in self.slots.iter().enumerate() {
            let mut guard = slot.conn.write().unwrap_or_else(|e| e.into_inner());
            let Some(conn) = guard.as_ref().filter(|c| c.is_alive() && c.load() == 0) else {
                continue;
            };
            if conn.heard_since(since) {
                heard = heard.or_else(|| Some(conn.clone()));
            } else {
                tracing::debug!(
                    "replacing an idle connection that has not heard from the server since another went silent"
                );
                guard.take();
                *empty = empty.or(Some(index));
            }
        }
        heard
    }

    /// Opens a connection into slot `index` from a task of its own, unless one is being opened
    /// or the slot is backing off.
    fn grow_in_background(self: &Arc<Self>, index: usize) {
        let slot = &self.slots[index];
        if self.closed.load(Ordering::Acquire)
            || slot.connecting.try_lock().is_err()
            || slot.backing_off().is_some()
        {
            return;
        }
        let pool = self.clone();
        tokio::spawn(async move {
            if let Err(e) = pool.connect_slot(index).await {
                tracing::debug!("opening another connection failed: {e}");
            }
        });
    }

    async fn connect_slot(&self, index: usize) -> Result<ConnHandle> {
        let slot = &self.slots[index];
        let _connecting = slot.connecting.lock().await;
        if let Some(conn) = slot.live() {
            return Ok(conn);
        }
        if let Some(error) = slot.backing_off() {
            return Err(error);
        }
        let session = match conn::establish(&self.config).await {
            Ok(session) => session,
            Err(e) => {
                let mut backoff = slot.backoff();
                backoff.failures = backoff.failures.saturating_add(1);
                let base = BACKOFF_INITIAL
                    .saturating_mul(1u32 << (backoff.failures - 1).min(16))
                    .min(BACKOFF_MAX);
                backoff.retry_at = Some(Instant::now() + crate::jitter::spread(base, 0.5, 1.0));
                backoff.last_error = Some(e.repeat(e.message()));
                return Err(e);
            }
        };
        *slot.backoff() = Backoff::default();
        let conn = self.spawn(session, self.config.get_max_in_flight());
        if self.closed.load(Ordering::Acquire) {
            return Err(Error::new(ErrorKind::Closed, "the client was closed"));
        }
        *slot.conn.write().unwrap_or_else(|e| e.into_inner()) = Some(conn.clone());
        Ok(conn)
    }

    /// Stops taking calls and lets every connection finish what it already has, then close.
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::Release);
        for slot in &self.slots {
            slot.conn.write().unwrap_or_else(|e| e.into_inner()).take();
        }
    }

    /// Live connections (for tests and diagnostics).
    pub(crate) fn live_connections(&self) -> impl Iterator<Item = ConnHandle> + '_ {
        self.slots.iter().filter_map(Slot::live)
    }
}

async fn submit(
    conn: &ConnHandle,
    id: u64,
    message: Arc<[u8]>,
    mutation: bool,
    deadline: Instant,
) -> Result<Sent> {
    let state = Arc::new(JobState::default());
    let (tx, rx) = oneshot::channel();
    conn.submit(Job {
        id,
        message,
        mutation,
        deadline,
        state: state.clone(),
        reply: tx,
    })
    .await?;
    Ok(Sent { state, reply: rx })
}
