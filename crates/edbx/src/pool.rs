//! A fixed set of connection slots, filled on demand. The server runs one request at a time per
//! connection, so concurrency comes from spreading calls over connections; each connection also
//! pipelines, so a slot is never a lock.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};

use edbx_wire::Response;
use tokio::sync::{Mutex, oneshot};

use crate::config::Config;
use crate::conn::{self, ConnHandle, Job, JobState};
use crate::error::{Error, ErrorKind, Result};

pub(crate) struct Pool {
    config: Config,
    slots: Vec<Slot>,
    next_id: AtomicU64,
    rotor: AtomicUsize,
    closed: AtomicBool,
}

#[derive(Default)]
struct Slot {
    /// The live connection, read on every call (a clone of two `Arc`s).
    conn: RwLock<Option<ConnHandle>>,
    /// Held while (re)connecting, so one slot never opens two sessions at once.
    connecting: Mutex<()>,
}

impl Slot {
    fn live(&self) -> Option<ConnHandle> {
        let guard = self.conn.read().unwrap_or_else(|e| e.into_inner());
        guard.as_ref().filter(|c| c.is_alive()).cloned()
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

    /// Opens the first connection, so that a bad address or token fails at connect time.
    pub(crate) async fn warm_up(&self) -> Result<()> {
        self.connect_slot(&self.slots[0]).await.map(|_| ())
    }

    /// Queues a request on the least busy connection, opening one if a slot is free.
    pub(crate) async fn send(&self, id: u64, message: Arc<[u8]>, mutation: bool) -> Result<Sent> {
        if self.closed.load(Ordering::Acquire) {
            return Err(Error::new(ErrorKind::Closed, "the client was closed"));
        }
        let conn = self.pick().await?;
        let state = Arc::new(JobState::default());
        let (tx, rx) = oneshot::channel();
        conn.submit(Job {
            id,
            message,
            mutation,
            state: state.clone(),
            reply: tx,
        })
        .await?;
        Ok(Sent { state, reply: rx })
    }

    async fn pick(&self) -> Result<ConnHandle> {
        // Start at a rotating slot so ties spread evenly.
        let start = self.rotor.fetch_add(1, Ordering::Relaxed);
        let n = self.slots.len();
        let mut best: Option<ConnHandle> = None;
        let mut empty: Option<&Slot> = None;
        for i in 0..n {
            let slot = &self.slots[(start + i) % n];
            match slot.live() {
                Some(conn) if conn.load() == 0 => return Ok(conn),
                Some(conn) => {
                    if best.as_ref().is_none_or(|b| conn.load() < b.load()) {
                        best = Some(conn);
                    }
                }
                None => {
                    if empty.is_none() {
                        empty = Some(slot);
                    }
                }
            }
        }
        // Every live connection is busy: grow into a free slot if there is one.
        match (empty, best) {
            (Some(slot), best) => match self.connect_slot(slot).await {
                Ok(conn) => Ok(conn),
                // Growing failed; a busy connection still beats an error.
                Err(e) => best.ok_or(e),
            },
            (None, Some(conn)) => Ok(conn),
            (None, None) => unreachable!("a pool has at least one slot"),
        }
    }

    async fn connect_slot(&self, slot: &Slot) -> Result<ConnHandle> {
        let _connecting = slot.connecting.lock().await;
        if let Some(conn) = slot.live() {
            return Ok(conn);
        }
        let session = conn::establish(&self.config).await?;
        let conn = conn::spawn(session, self.config.get_max_in_flight());
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
