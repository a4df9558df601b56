//! The task that owns one socket: it writes queued requests, reads replies, and hands each reply
//! to the caller waiting for it.
//!
//! The server answers strictly in order, so replies are matched first-in first-out and checked
//! against the request id. A caller that gave up (timeout, dropped future) does not disturb the
//! stream: a request it cancelled before it was written is never written, and the reply to one
//! already written is read and discarded.
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
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use super::establish::Established;
use super::socket::quickack;
use crate::error::{Error, ErrorKind, Result};

/// Stop taking new requests while this many bytes wait to be written.
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
    pub state: Arc<JobState>,
    pub reply: oneshot::Sender<Result<Response>>,
}

/// A cheap handle to a connection's driver task.
#[derive(Clone)]
pub(crate) struct ConnHandle {
    tx: mpsc::Sender<Job>,
    load: Arc<AtomicUsize>,
    /// When the oldest request still awaiting its reply was written, in ms since [`epoch`] (0
    /// when none is waiting).
    oldest_written_ms: Arc<AtomicU64>,
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

    /// Whether the oldest request awaiting its reply was written more than `late` ago: the
    /// peer may be gone, so new calls should go elsewhere.
    pub(crate) fn is_late(&self, late: Duration) -> bool {
        match self.oldest_written_ms.load(Ordering::Relaxed) {
            0 => false,
            oldest => {
                millis_since_epoch(Instant::now()).saturating_sub(oldest) > late.as_millis() as u64
            }
        }
    }

    /// Queues a job, waiting while the connection's queue is full (backpressure). Dropping the
    /// future while it waits leaves nothing behind: the load is counted only once the job is
    /// in the queue.
    pub(crate) async fn submit(&self, job: Job) -> Result<()> {
        let Ok(permit) = self.tx.reserve().await else {
            return Err(Error::new(
                ErrorKind::NotSent,
                "connection closed before the request was queued",
            ));
        };
        self.load.fetch_add(1, Ordering::Relaxed);
        permit.send(job);
        Ok(())
    }
}

/// Starts the driver task of an established session. A request that waits `stall_after` for
/// its reply closes the connection.
pub(crate) fn spawn(
    session: Established,
    max_in_flight: usize,
    stall_after: Duration,
) -> ConnHandle {
    let (tx, rx) = mpsc::channel(max_in_flight);
    let load = Arc::new(AtomicUsize::new(0));
    let oldest_written_ms = Arc::new(AtomicU64::new(0));
    let encrypted = session.noise.is_some();
    let (reader, writer) = session.stream.into_split();
    let driver = Driver {
        rx,
        load: load.clone(),
        oldest_written_ms: oldest_written_ms.clone(),
        stall_after,
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
        load,
        oldest_written_ms,
        encrypted,
    }
}

struct Pending {
    id: u64,
    mutation: bool,
    /// When the request went into the output buffer.
    written_at: Instant,
    /// Offset of the request's first byte in everything this connection ever queued.
    start: u64,
    reply: oneshot::Sender<Result<Response>>,
}

struct Driver {
    rx: mpsc::Receiver<Job>,
    load: Arc<AtomicUsize>,
    oldest_written_ms: Arc<AtomicU64>,
    stall_after: Duration,
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
        // Armed for the oldest pending request; re-armed lazily when it fires, so that a busy
        // connection does not touch the timer wheel per request.
        let stall_timer = tokio::time::sleep(self.stall_after);
        tokio::pin!(stall_timer);
        let mut stall_armed = false;
        let ended = loop {
            if !accepting && self.pending.is_empty() && self.out_pos == self.out.len() {
                // Every handle is gone and every reply delivered: close quietly.
                return;
            }
            if arm_quickack && !self.pending.is_empty() {
                quickack(reader.as_ref());
                arm_quickack = false;
            }
            if let Some(oldest) = self.pending.front().filter(|_| !stall_armed) {
                stall_timer
                    .as_mut()
                    .reset(oldest.written_at + self.stall_after);
                stall_armed = true;
            }
            let can_take = accepting
                && self.pending.len() < self.max_in_flight
                && self.out.len() - self.out_pos < OUTPUT_HIGH_WATER;
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
                job = self.rx.recv(), if can_take => match job {
                    None => accepting = false,
                    Some(job) => {
                        if let Some(gone) = self.gone_while_idle(&reader) {
                            self.load.fetch_sub(1, Ordering::Relaxed);
                            let _ = job.reply.send(Err(Error::new(
                                ErrorKind::NotSent,
                                format!("{}; the request was never written", gone.message()),
                            )));
                            break Ended::by_server(gone);
                        }
                        arm_quickack = true;
                        self.enqueue(job);
                        // Batch whatever else is waiting into the same write.
                        while self.pending.len() < self.max_in_flight
                            && self.out.len() - self.out_pos < OUTPUT_HIGH_WATER
                        {
                            match self.rx.try_recv() {
                                Ok(job) => self.enqueue(job),
                                Err(_) => break,
                            }
                        }
                    }
                },
                () = &mut stall_timer, if stall_armed => {
                    stall_armed = false;
                    if self.pending.front().is_some_and(|p| p.written_at.elapsed() >= self.stall_after) {
                        break Ended::other(Error::new(
                            ErrorKind::Disconnected,
                            format!(
                                "no reply for {:?}: the peer looks gone; closing the connection",
                                self.stall_after
                            ),
                        ));
                    }
                },
            }
        };
        tracing::debug!("connection ended: {}", ended.error);
        self.fail_all(ended);
    }

    /// Whether the peer closed (or the kernel failed) this connection while it sat idle; a
    /// non-blocking peek, only after [`IDLE_CHECK_AFTER`] without traffic.
    fn gone_while_idle(&self, reader: &OwnedReadHalf) -> Option<Error> {
        if !self.pending.is_empty()
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

    fn enqueue(&mut self, job: Job) {
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
        let written_at = Instant::now();
        if self.pending.is_empty() {
            self.oldest_written_ms
                .store(millis_since_epoch(written_at), Ordering::Relaxed);
        }
        self.pending.push_back(Pending {
            id: job.id,
            mutation: job.mutation,
            written_at,
            start,
            reply: job.reply,
        });
    }

    fn on_bytes(&mut self, bytes: &[u8]) -> Result<()> {
        self.decoder.extend(bytes);
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
            let oldest = match self.pending.front() {
                Some(next) => millis_since_epoch(next.written_at),
                None => {
                    self.idle_since = Instant::now();
                    0
                }
            };
            self.oldest_written_ms.store(oldest, Ordering::Relaxed);
            // A caller that timed out has dropped its receiver: the reply is discarded here.
            let _ = waiting.reply.send(Ok(response));
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
            let _ = waiting.reply.send(Err(err));
        }
        self.rx.close();
        while let Ok(job) = self.rx.try_recv() {
            let _ = job.reply.send(Err(Error::new(
                ErrorKind::NotSent,
                format!("{}; the request was never written", cause.message()),
            )
            .with_shared_source(cause.clone())));
        }
        self.load.store(0, Ordering::Relaxed);
        self.oldest_written_ms.store(0, Ordering::Relaxed);
    }
}
