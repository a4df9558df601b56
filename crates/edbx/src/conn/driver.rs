//! The task that owns one socket: it writes queued requests, reads replies, and hands each reply
//! to the caller waiting for it.
//!
//! The server answers strictly in order, so replies are matched first-in first-out and checked
//! against the request id. A caller that gave up (timeout, dropped future) does not disturb the
//! stream: a request it cancelled before it was written is never written, and the reply to one
//! already written is read and discarded.
//!
//! The driver also keeps each call's deadline: a call that is not answered by then gets its
//! timeout error from here, saying whether its request was written. One timer per connection,
//! moved only when an earlier deadline arrives, does that for every call on it, so that a call
//! does not arm and clear a timer of its own. Every admitted request is in the driver's hands
//! (a connection admits at most twice [`Config::max_in_flight`](crate::Config::max_in_flight)
//! requests, which bounds what it holds); those that cannot be written yet wait in its backlog.
//!
//! A connection whose oldest written request has waited far past any caller's deadline (a peer
//! that went silent: a partition, a black hole) is closed, so that the pool replaces it; while
//! such a request is merely late, the pool already routes new calls elsewhere.
//!
//! A connection that sat idle is checked before a request goes on it: a runtime that was not
//! driven meanwhile (a blocking client between calls) has not seen the server close it (a
//! restart) or the kernel's keepalive fail it. A dead one takes the request back unwritten
//! ([`ErrorKind::NotSent`]), so that it goes to a live connection instead of becoming a write
//! of unknown outcome.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU8, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use edbx_wire::{
    FrameDecoder, MessageBuffer, NoiseSession, Response, decode_response_in, encode_frame_into,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, TryAcquireError, mpsc, oneshot};
use tokio::time::Instant;

use super::establish::Established;
use super::socket::quickack;
use crate::client::deadline_passed;
use crate::error::{Error, ErrorKind, Result};

/// Write no further request while this many bytes wait to be written (admitted ones wait in the
/// backlog).
const OUTPUT_HIGH_WATER: usize = 256 * 1024;
const READ_CHUNK: usize = 64 * 1024;
/// A connection idle this long is checked for a close before a request is written on it. A
/// busy connection is not: its reads would have seen the close.
const IDLE_CHECK_AFTER: Duration = Duration::from_millis(1);

/// Where a request is: the caller and the driver race to move it out of `QUEUED`.
#[derive(Debug, Default)]
pub(crate) struct JobState(AtomicU8);

const QUEUED: u8 = 0;
const WRITTEN: u8 = 1;
const CANCELLED: u8 = 2;

impl JobState {
    /// Caller side: true if the request had not been written and now never will be.
    pub(crate) fn try_cancel(&self) -> bool {
        self.0
            .compare_exchange(QUEUED, CANCELLED, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    fn try_mark_written(&self) -> bool {
        self.0
            .compare_exchange(QUEUED, WRITTEN, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }
}

/// One request on its way to a connection.
pub(crate) struct Job {
    pub id: u64,
    /// The encoded `ControlRequest` (plaintext).
    pub message: Arc<[u8]>,
    pub mutation: bool,
    /// When the caller's time is up: the driver answers it then if the server has not.
    pub deadline: Instant,
    pub state: Arc<JobState>,
    pub reply: oneshot::Sender<Result<Response>>,
}

/// A job the connection admitted: it holds its place until its reply is read or it is dropped.
struct Admitted {
    job: Job,
    _place: OwnedSemaphorePermit,
}

/// A cheap handle to a connection's driver task.
#[derive(Clone)]
pub(crate) struct ConnHandle {
    tx: mpsc::UnboundedSender<Admitted>,
    /// Places for requests on this connection, queued or in flight (backpressure).
    places: Arc<Semaphore>,
    load: Arc<AtomicUsize>,
    /// When the oldest request still awaiting its reply was written, in ms since [`epoch`] (0
    /// when none is waiting).
    oldest_written_ms: Arc<AtomicU64>,
    /// When the server was last heard from on this connection (the handshake, then each
    /// reply), in ms since [`epoch`].
    last_reply_ms: Arc<AtomicU64>,
    encrypted: bool,
}

/// The origin of the millisecond clocks shared between drivers and the pool.
fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

/// Milliseconds since [`epoch`], at least 1 (0 means "none").
fn millis_since_epoch(at: Instant) -> u64 {
    (at.saturating_duration_since(epoch()).as_millis() as u64).max(1)
}

impl ConnHandle {
    /// Requests queued or in flight on this connection.
    pub(crate) fn load(&self) -> usize {
        self.load.load(Ordering::Relaxed)
    }

    /// Whether the session runs under Noise.
    pub(crate) fn is_encrypted(&self) -> bool {
        self.encrypted
    }

    /// Whether the driver is still running.
    pub(crate) fn is_alive(&self) -> bool {
        !self.tx.is_closed()
    }

    /// When the oldest request awaiting its reply was written (ms since [`epoch`]), if that
    /// is more than `late` ago: the peer may be gone, so new calls should go elsewhere.
    pub(crate) fn late_since(&self, late: Duration) -> Option<u64> {
        match self.oldest_written_ms.load(Ordering::Relaxed) {
            0 => None,
            oldest => (millis_since_epoch(Instant::now()).saturating_sub(oldest)
                > late.as_millis() as u64)
                .then_some(oldest),
        }
    }

    /// Whether the server was heard from on this connection at or after `since` (ms since
    /// [`epoch`]).
    pub(crate) fn heard_since(&self, since: u64) -> bool {
        self.last_reply_ms.load(Ordering::Relaxed) >= since
    }

    /// Whether the server was heard from on this connection within the last `window`.
    pub(crate) fn heard_within(&self, window: Duration) -> bool {
        let now = millis_since_epoch(Instant::now());
        self.heard_since(now.saturating_sub(window.as_millis() as u64))
    }

    /// Queues a job, waiting while the connection holds as many as it admits (backpressure).
    /// Dropping the future while it waits leaves nothing behind: the load is counted only once
    /// the job is in the queue.
    pub(crate) async fn submit(&self, job: Job) -> Result<()> {
        let closed = || {
            Error::new(
                ErrorKind::NotSent,
                "connection closed before the request was queued",
            )
        };
        let place = match self.places.clone().try_acquire_owned() {
            Ok(place) => place,
            Err(TryAcquireError::NoPermits) => self
                .places
                .clone()
                .acquire_owned()
                .await
                .map_err(|_| closed())?,
            Err(TryAcquireError::Closed) => return Err(closed()),
        };
        self.load.fetch_add(1, Ordering::Relaxed);
        if self.tx.send(Admitted { job, _place: place }).is_err() {
            self.load.fetch_sub(1, Ordering::Relaxed);
            return Err(closed());
        }
        Ok(())
    }
}

/// Starts the driver task of an established session. Calls time out after `request_timeout`
/// (their jobs' deadlines), and a request that waits `stall_after` for its reply closes the
/// connection.
pub(crate) fn spawn(
    session: Established,
    max_in_flight: usize,
    request_timeout: Duration,
    stall_after: Duration,
) -> ConnHandle {
    let (tx, rx) = mpsc::unbounded_channel();
    // As many written ahead as allowed, and as many again waiting for their turn.
    let places = Arc::new(Semaphore::new(max_in_flight.saturating_mul(2)));
    let load = Arc::new(AtomicUsize::new(0));
    let oldest_written_ms = Arc::new(AtomicU64::new(0));
    // The handshake that just finished is the server's first answer.
    let last_reply_ms = Arc::new(AtomicU64::new(millis_since_epoch(Instant::now())));
    let encrypted = session.noise.is_some();
    let (reader, writer) = session.stream.into_split();
    let driver = Driver {
        rx,
        places: places.clone(),
        load: load.clone(),
        oldest_written_ms: oldest_written_ms.clone(),
        last_reply_ms: last_reply_ms.clone(),
        request_timeout,
        stall_after,
        timer_at: None,
        backlog: VecDeque::new(),
        noise: session.noise,
        decoder: session.decoder,
        message: MessageBuffer::new(),
        pending: VecDeque::with_capacity(max_in_flight),
        max_in_flight,
        out: Vec::new(),
        out_pos: 0,
        queued_bytes: 0,
        flushed_bytes: 0,
        idle_since: Instant::now(),
    };
    tokio::spawn(driver.run(reader, writer));
    ConnHandle {
        tx,
        places,
        load,
        oldest_written_ms,
        last_reply_ms,
        encrypted,
    }
}

struct Pending {
    id: u64,
    mutation: bool,
    /// When the request went into the output buffer.
    written_at: Instant,
    deadline: Instant,
    /// Offset of the request's first byte in everything this connection ever queued.
    start: u64,
    /// `None` once the caller was told its time was up; the reply is then read and dropped.
    reply: Option<oneshot::Sender<Result<Response>>>,
    _place: OwnedSemaphorePermit,
}

struct Driver {
    rx: mpsc::UnboundedReceiver<Admitted>,
    places: Arc<Semaphore>,
    load: Arc<AtomicUsize>,
    oldest_written_ms: Arc<AtomicU64>,
    last_reply_ms: Arc<AtomicU64>,
    request_timeout: Duration,
    stall_after: Duration,
    /// When the timer fires: no later than any waiting caller's deadline and the oldest
    /// written request's stall time (`None`: disarmed, nothing to watch).
    timer_at: Option<Instant>,
    /// Admitted jobs not written yet: the output buffer is full or enough are in flight.
    backlog: VecDeque<Admitted>,
    noise: Option<NoiseSession>,
    decoder: FrameDecoder,
    /// The message being decoded, in memory reused from one reply to the next.
    message: MessageBuffer,
    pending: VecDeque<Pending>,
    max_in_flight: usize,
    out: Vec<u8>,
    out_pos: usize,
    queued_bytes: u64,
    flushed_bytes: u64,
    /// Since when nothing is pending or waiting to be written.
    idle_since: Instant,
}

/// Why a connection ended: whether the server closed it (then the request whose reply was due
/// is the likely cause).
struct Ended {
    error: Error,
    server_closed: bool,
}

impl Ended {
    fn by_server(error: Error) -> Self {
        Self {
            error,
            server_closed: true,
        }
    }

    fn other(error: Error) -> Self {
        Self {
            error,
            server_closed: false,
        }
    }
}

/// Whether an I/O error means the peer closed the connection.
fn closed_by_peer(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::{BrokenPipe, ConnectionAborted, ConnectionReset};
    matches!(e.kind(), ConnectionReset | ConnectionAborted | BrokenPipe)
}

impl Driver {
    async fn run(mut self, mut reader: OwnedReadHalf, mut writer: OwnedWriteHalf) {
        let mut buf = vec![0u8; READ_CHUNK];
        let mut accepting = true;
        // QUICKACK is a syscall: arm it only when a reply is due and the kernel may have left
        // quick-ACK mode since (after each read, and after new requests go out).
        let mut arm_quickack = true;
        // One timer for every deadline and the stall check; it is moved only when something
        // is due earlier than it is set for, so a busy connection does not touch the timer
        // wheel per request.
        let timer = tokio::time::sleep(Duration::ZERO);
        tokio::pin!(timer);
        let mut timer_set_for: Option<Instant> = None;
        let ended = loop {
            self.write_backlog();
            if !accepting
                && self.pending.is_empty()
                && self.backlog.is_empty()
                && self.out_pos == self.out.len()
            {
                // Every handle is gone and every reply delivered: close quietly.
                return;
            }
            if arm_quickack && !self.pending.is_empty() {
                quickack(reader.as_ref());
                arm_quickack = false;
            }
            if self.timer_at != timer_set_for {
                if let Some(at) = self.timer_at {
                    timer.as_mut().reset(at);
                }
                timer_set_for = self.timer_at;
            }
            tokio::select! {
                biased;
                read = reader.read(&mut buf) => match read {
                    Ok(0) => break Ended::by_server(Error::new(ErrorKind::Disconnected, "server closed the connection")),
                    Ok(n) => {
                        arm_quickack = true;
                        if let Err(e) = self.on_bytes(&buf[..n]) {
                            break Ended::other(e);
                        }
                    }
                    Err(e) => {
                        let by_server = closed_by_peer(&e);
                        let error = Error::new(ErrorKind::Disconnected, format!("read failed: {e}")).with_source(e);
                        break if by_server { Ended::by_server(error) } else { Ended::other(error) };
                    }
                },
                written = writer.write(&self.out[self.out_pos..]), if self.out_pos < self.out.len() => match written {
                    Ok(0) => break Ended::other(Error::new(ErrorKind::Disconnected, "connection closed while writing")),
                    Ok(n) => {
                        self.out_pos += n;
                        self.flushed_bytes += n as u64;
                        if self.out_pos == self.out.len() {
                            self.out.clear();
                            self.out_pos = 0;
                        }
                    }
                    Err(e) => {
                        let by_server = closed_by_peer(&e);
                        let error = Error::new(ErrorKind::Disconnected, format!("write failed: {e}")).with_source(e);
                        break if by_server { Ended::by_server(error) } else { Ended::other(error) };
                    }
                },
                job = self.rx.recv(), if accepting => match job {
                    None => accepting = false,
                    Some(job) => {
                        if let Some(gone) = self.gone_while_idle(&reader) {
                            self.load.fetch_sub(1, Ordering::Relaxed);
                            let _ = job.job.reply.send(Err(Error::new(
                                ErrorKind::NotSent,
                                format!("{}; the request was never written", gone.message()),
                            )));
                            break Ended::by_server(gone);
                        }
                        arm_quickack = true;
                        self.admit(job);
                        // Batch whatever else is waiting into the same write.
                        while let Ok(job) = self.rx.try_recv() {
                            self.admit(job);
                        }
                    }
                },
                () = &mut timer, if timer_set_for.is_some() => {
                    timer_set_for = None;
                    if let Err(e) = self.on_timer(Instant::now()) {
                        break Ended::other(e);
                    }
                },
            }
        };
        tracing::debug!("connection ended: {}", ended.error);
        self.fail_all(ended);
    }

    /// Takes an admitted job: written at once when there is room, else into the backlog.
    fn admit(&mut self, admitted: Admitted) {
        if self.timer_at.is_none_or(|at| admitted.job.deadline < at) {
            self.timer_at = Some(admitted.job.deadline);
        }
        if self.backlog.is_empty() && self.has_room() {
            self.enqueue(admitted);
        } else {
            self.backlog.push_back(admitted);
        }
    }

    /// Whether another request may be written now.
    fn has_room(&self) -> bool {
        self.pending.len() < self.max_in_flight && self.out.len() - self.out_pos < OUTPUT_HIGH_WATER
    }

    /// Writes backlogged jobs while there is room.
    fn write_backlog(&mut self) {
        while !self.backlog.is_empty() && self.has_room() {
            if let Some(admitted) = self.backlog.pop_front() {
                self.enqueue(admitted);
            }
        }
    }

    /// The timer fired: closes a stalled connection, answers callers whose time is up, and
    /// sets the timer for what is due next.
    fn on_timer(&mut self, now: Instant) -> Result<()> {
        if self
            .pending
            .front()
            .is_some_and(|p| now.saturating_duration_since(p.written_at) >= self.stall_after)
        {
            return Err(Error::new(
                ErrorKind::Disconnected,
                format!(
                    "no reply for {:?}: the peer looks gone; closing the connection",
                    self.stall_after
                ),
            ));
        }
        let after = self.request_timeout;
        let mut next: Option<Instant> = self
            .pending
            .front()
            .map(|p| p.written_at + self.stall_after);
        let mut earliest = |at: Instant| {
            if next.is_none_or(|n| at < n) {
                next = Some(at);
            }
        };
        for waiting in &mut self.pending {
            if waiting.reply.is_none() {
                continue;
            }
            if waiting.deadline <= now {
                if let Some(reply) = waiting.reply.take() {
                    let _ = reply.send(Err(deadline_passed(after, true, waiting.mutation)));
                }
            } else {
                earliest(waiting.deadline);
            }
        }
        let mut kept = VecDeque::with_capacity(self.backlog.len());
        for admitted in std::mem::take(&mut self.backlog) {
            if admitted.job.deadline > now {
                earliest(admitted.job.deadline);
                kept.push_back(admitted);
                continue;
            }
            self.expire_unwritten(admitted.job);
        }
        self.backlog = kept;
        self.timer_at = next;
        Ok(())
    }

    /// Answers a job whose time ran out before it was written, and withdraws it so that it
    /// never is (unless its caller withdrew it first).
    fn expire_unwritten(&self, job: Job) {
        self.load.fetch_sub(1, Ordering::Relaxed);
        if job.state.try_cancel() {
            let timed_out = deadline_passed(self.request_timeout, false, job.mutation);
            let _ = job.reply.send(Err(timed_out));
        }
    }

    /// Whether the peer closed (or the kernel failed) this connection while it sat idle; a
    /// non-blocking peek, only after [`IDLE_CHECK_AFTER`] without traffic.
    fn gone_while_idle(&self, reader: &OwnedReadHalf) -> Option<Error> {
        if !self.pending.is_empty()
            || !self.backlog.is_empty()
            || self.out_pos < self.out.len()
            || self.idle_since.elapsed() < IDLE_CHECK_AFTER
        {
            return None;
        }
        let mut byte = [std::mem::MaybeUninit::<u8>::uninit()];
        // Tokio's sockets are non-blocking: no data yet is `WouldBlock`.
        match socket2::SockRef::from(reader.as_ref()).peek(&mut byte) {
            Ok(0) => Some(Error::new(
                ErrorKind::Disconnected,
                "server closed the connection while it was idle",
            )),
            Ok(_) => None,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => None,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => None,
            Err(e) => Some(
                Error::new(
                    ErrorKind::Disconnected,
                    format!("connection failed while it was idle: {e}"),
                )
                .with_source(e),
            ),
        }
    }

    fn enqueue(&mut self, admitted: Admitted) {
        let Admitted { job, _place: place } = admitted;
        let written_at = Instant::now();
        if written_at >= job.deadline {
            // Its time ran out while it waited (a busy runtime): never write it.
            self.expire_unwritten(job);
            return;
        }
        if !job.state.try_mark_written() {
            // The caller gave up before we got to it: never write it.
            self.load.fetch_sub(1, Ordering::Relaxed);
            return;
        }
        let before = self.out.len();
        let framed = match &mut self.noise {
            Some(noise) => noise.encrypt_frame_into(&job.message, &mut self.out),
            None => encode_frame_into(&job.message, &mut self.out),
        };
        if let Err(e) = framed {
            self.out.truncate(before);
            self.load.fetch_sub(1, Ordering::Relaxed);
            let err = Error::from_wire(e);
            let kind = if err.kind() == ErrorKind::InvalidInput {
                ErrorKind::InvalidInput
            } else {
                ErrorKind::NotSent
            };
            let _ = job.reply.send(Err(err.with_kind(kind)));
            return;
        }
        let start = self.queued_bytes;
        self.queued_bytes += (self.out.len() - before) as u64;
        if self.pending.is_empty() {
            self.oldest_written_ms
                .store(millis_since_epoch(written_at), Ordering::Relaxed);
        }
        self.pending.push_back(Pending {
            id: job.id,
            mutation: job.mutation,
            written_at,
            deadline: job.deadline,
            start,
            reply: Some(job.reply),
            _place: place,
        });
    }

    fn on_bytes(&mut self, bytes: &[u8]) -> Result<()> {
        self.decoder.extend(bytes);
        let mut heard = false;
        while let Some(frame) = self.decoder.next_frame_ref().map_err(Error::from_wire)? {
            match &mut self.noise {
                Some(noise) => noise
                    .decrypt_into(frame, &mut self.message)
                    .map_err(Error::from_wire)?,
                None => self.message.fill(frame),
            }
            let (id, response) = decode_response_in(&self.message).map_err(Error::from_wire)?;
            let Some(waiting) = self.pending.pop_front() else {
                return Err(Error::protocol(format!(
                    "reply {id} arrived with no request waiting"
                )));
            };
            if waiting.id != id {
                let err = Error::protocol(format!(
                    "reply {id} arrived while request {} was next",
                    waiting.id
                ));
                self.pending.push_front(waiting);
                return Err(err);
            }
            self.load.fetch_sub(1, Ordering::Relaxed);
            heard = true;
            let oldest = self
                .pending
                .front()
                .map_or(0, |next| millis_since_epoch(next.written_at));
            self.oldest_written_ms.store(oldest, Ordering::Relaxed);
            // A caller that gave up (or was told its time was up) has no receiver: the reply
            // is discarded here.
            if let Some(reply) = waiting.reply {
                let _ = reply.send(Ok(response));
            }
        }
        if heard {
            let now = Instant::now();
            self.last_reply_ms
                .store(millis_since_epoch(now), Ordering::Relaxed);
            if self.pending.is_empty() {
                self.idle_since = now;
            }
        }
        Ok(())
    }

    /// Fails every request this connection still owes an answer, each with what is known
    /// about it: never written, written read, or written mutation (outcome unknown). When the
    /// server closed the connection, the written read at the front of the line (whose reply was
    /// due) is marked: the server may have closed because of it.
    fn fail_all(&mut self, ended: Ended) {
        let cause = Arc::new(ended.error);
        for (position, waiting) in self.pending.drain(..).enumerate() {
            let (kind, what) = if waiting.start >= self.flushed_bytes {
                (ErrorKind::NotSent, "the request was never written")
            } else if waiting.mutation {
                (
                    ErrorKind::OutcomeUnknown,
                    "the write may or may not have been applied",
                )
            } else {
                (ErrorKind::Disconnected, "the read can be sent again")
            };
            let mut err = Error::new(kind, format!("{}; {what}", cause.message()))
                .with_shared_source(cause.clone());
            if position == 0 && ended.server_closed && kind == ErrorKind::Disconnected {
                err = err.mark_closed_while_due();
            }
            if let Some(reply) = waiting.reply {
                let _ = reply.send(Err(err));
            }
        }
        // Callers waiting for a place get theirs refused; queued jobs were never written.
        self.places.close();
        self.rx.close();
        let queued = std::mem::take(&mut self.backlog);
        for admitted in queued
            .into_iter()
            .chain(std::iter::from_fn(|| self.rx.try_recv().ok()))
        {
            let _ = admitted.job.reply.send(Err(Error::new(
                ErrorKind::NotSent,
                format!("{}; the request was never written", cause.message()),
            )
            .with_shared_source(cause.clone())));
        }
        self.load.store(0, Ordering::Relaxed);
        self.oldest_written_ms.store(0, Ordering::Relaxed);
    }
}
