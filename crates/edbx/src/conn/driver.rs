//! The task that owns one socket: it writes queued requests, reads replies, and hands each reply
//! to the caller waiting for it.
//!
//! The server answers strictly in order, so replies are matched first-in first-out and checked
//! against the request id. A caller that gave up (timeout, dropped future) does not disturb the
//! stream: a request it cancelled before it was written is never written, and the reply to one
//! already written is read and discarded.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};

use edbx_wire::{FrameDecoder, NoiseSession, Response, decode_response, encode_frame_into};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::{mpsc, oneshot};

use super::establish::Established;
use super::socket::quickack;
use crate::error::{Error, ErrorKind, Result};

/// Stop taking new requests while this many bytes wait to be written.
const OUTPUT_HIGH_WATER: usize = 256 * 1024;
const READ_CHUNK: usize = 64 * 1024;

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
    encrypted: bool,
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

    /// Queues a job, waiting while the connection's queue is full (backpressure).
    pub(crate) async fn submit(&self, job: Job) -> Result<()> {
        self.load.fetch_add(1, Ordering::Relaxed);
        if self.tx.send(job).await.is_err() {
            self.load.fetch_sub(1, Ordering::Relaxed);
            return Err(Error::new(
                ErrorKind::NotSent,
                "connection closed before the request was queued",
            ));
        }
        Ok(())
    }
}

/// Starts the driver task of an established session.
pub(crate) fn spawn(session: Established, max_in_flight: usize) -> ConnHandle {
    let (tx, rx) = mpsc::channel(max_in_flight);
    let load = Arc::new(AtomicUsize::new(0));
    let encrypted = session.noise.is_some();
    let (reader, writer) = session.stream.into_split();
    let driver = Driver {
        rx,
        load: load.clone(),
        noise: session.noise,
        decoder: session.decoder,
        pending: VecDeque::with_capacity(max_in_flight),
        max_in_flight,
        out: Vec::new(),
        out_pos: 0,
        queued_bytes: 0,
        flushed_bytes: 0,
    };
    tokio::spawn(driver.run(reader, writer));
    ConnHandle {
        tx,
        load,
        encrypted,
    }
}

struct Pending {
    id: u64,
    mutation: bool,
    /// Offset of the request's first byte in everything this connection ever queued.
    start: u64,
    reply: oneshot::Sender<Result<Response>>,
}

struct Driver {
    rx: mpsc::Receiver<Job>,
    load: Arc<AtomicUsize>,
    noise: Option<NoiseSession>,
    decoder: FrameDecoder,
    pending: VecDeque<Pending>,
    max_in_flight: usize,
    out: Vec<u8>,
    out_pos: usize,
    queued_bytes: u64,
    flushed_bytes: u64,
}

impl Driver {
    async fn run(mut self, mut reader: OwnedReadHalf, mut writer: OwnedWriteHalf) {
        let mut buf = vec![0u8; READ_CHUNK];
        let mut accepting = true;
        // QUICKACK is a syscall: arm it only when a reply is due and the kernel may have left
        // quick-ACK mode since (after each read, and after new requests go out).
        let mut arm_quickack = true;
        let failure = loop {
            if !accepting && self.pending.is_empty() && self.out_pos == self.out.len() {
                // Every handle is gone and every reply delivered: close quietly.
                return;
            }
            if arm_quickack && !self.pending.is_empty() {
                quickack(reader.as_ref());
                arm_quickack = false;
            }
            let can_take = accepting
                && self.pending.len() < self.max_in_flight
                && self.out.len() - self.out_pos < OUTPUT_HIGH_WATER;
            tokio::select! {
                biased;
                read = reader.read(&mut buf) => match read {
                    Ok(0) => break Error::new(ErrorKind::Disconnected, "server closed the connection"),
                    Ok(n) => {
                        arm_quickack = true;
                        if let Err(e) = self.on_bytes(&buf[..n]) {
                            break e;
                        }
                    }
                    Err(e) => break Error::new(ErrorKind::Disconnected, format!("read failed: {e}")).with_source(e),
                },
                written = writer.write(&self.out[self.out_pos..]), if self.out_pos < self.out.len() => match written {
                    Ok(0) => break Error::new(ErrorKind::Disconnected, "connection closed while writing"),
                    Ok(n) => {
                        self.out_pos += n;
                        self.flushed_bytes += n as u64;
                        if self.out_pos == self.out.len() {
                            self.out.clear();
                            self.out_pos = 0;
                        }
                    }
                    Err(e) => break Error::new(ErrorKind::Disconnected, format!("write failed: {e}")).with_source(e),
                },
                job = self.rx.recv(), if can_take => match job {
                    None => accepting = false,
                    Some(job) => {
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
            }
        };
        tracing::debug!("connection ended: {failure}");
        self.fail_all(&failure);
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
            let err = Error::from(e);
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
        self.pending.push_back(Pending {
            id: job.id,
            mutation: job.mutation,
            start,
            reply: job.reply,
        });
    }

    fn on_bytes(&mut self, bytes: &[u8]) -> Result<()> {
        self.decoder.extend(bytes);
        while let Some(frame) = self.decoder.next_frame()? {
            let message = match &mut self.noise {
                Some(noise) => noise.decrypt(&frame)?,
                None => frame,
            };
            let (id, response) = decode_response(&message)?;
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
            // A caller that timed out has dropped its receiver: the reply is discarded here.
            let _ = waiting.reply.send(Ok(response));
        }
        Ok(())
    }

    /// Fails every request this connection still owes an answer, each with what is known
    /// about it: never written, written read, or written mutation (outcome unknown).
    fn fail_all(&mut self, cause: &Error) {
        for waiting in self.pending.drain(..) {
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
            let err = Error::new(kind, format!("{}; {what}", cause.message()));
            let _ = waiting.reply.send(Err(err));
        }
        self.rx.close();
        while let Ok(job) = self.rx.try_recv() {
            let _ = job.reply.send(Err(Error::new(
                ErrorKind::NotSent,
                format!("{}; the request was never written", cause.message()),
            )));
        }
        self.load.store(0, Ordering::Relaxed);
    }
}
