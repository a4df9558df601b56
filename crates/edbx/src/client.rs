//! The client handle and the one path every call takes: encode, send, await with a deadline,
//! retry only what is safe, map server errors.

use std::sync::Arc;
use std::time::Duration;

use edbx_wire::{MAX_FRAME_LEN, MAX_NOISE_PLAINTEXT_LEN, Request, Response, encode_request};
use tokio::time::Instant;

use crate::config::{Config, Token};
use crate::conn::JobState;
use crate::error::{Error, ErrorKind, Result};
use crate::pool::Pool;

/// An EventDBX client: a cheap, cloneable handle to a pool of pipelined connections.
///
/// Clones share the pool. Each call has one deadline ([`Config::request_timeout`]) covering
/// connecting, queueing, writing and reading. Dropping the last clone, or calling
/// [`close`](Client::close), lets connections finish the calls already made and then closes them.
///
/// ```no_run
/// # async fn demo() -> edbx::Result<()> {
/// use edbx::{Client, Config};
/// use serde_json::json;
///
/// let client = Client::connect(Config::from_env()?).await?;
/// client.create("orders", "ord_1", "created", &json!({"total": 42.15})).await?;
/// client.apply("orders", "ord_1", "paid", &json!({"status": "paid"})).await?;
/// let order = client.get("orders", "ord_1").await?.expect("just created");
/// assert_eq!(order.version, 2);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Client {
    pool: Arc<Pool>,
    /// The token sent with each request; `with_token` swaps it for one handle.
    token: Token,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("config", self.pool.config())
            .finish_non_exhaustive()
    }
}

impl Client {
    /// Checks `config`, opens the first connection (hello and handshake included) and returns
    /// the client. More connections open as concurrent calls need them, up to the pool size.
    ///
    /// A server that cannot be reached ([`ErrorKind::Connect`]) is tried again per
    /// [`Config::retry`] (backoff with jitter); a refused token or handshake is not.
    pub async fn connect(config: Config) -> Result<Client> {
        let client = Self::connect_lazy(config)?;
        let retry = client.config().get_retry();
        let mut attempt = 1;
        loop {
            match client.pool.warm_up().await {
                Ok(()) => return Ok(client),
                Err(e) if e.kind() == ErrorKind::Connect && attempt < retry.attempts => {
                    tracing::debug!(attempt, "connecting again: {e}");
                    tokio::time::sleep(retry.delay(attempt)).await;
                    attempt += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Checks `config` and returns a client that opens its first connection with its first
    /// call (which then fails with [`ErrorKind::Connect`] if the server cannot be reached).
    /// For a process that must not connect yet: a client made before `fork()`, or one made at
    /// import time.
    ///
    /// ```no_run
    /// # async fn demo() -> edbx::Result<()> {
    /// let client = edbx::Client::connect_lazy(edbx::Config::from_env()?)?; // no I/O yet
    /// let order = client.get("orders", "ord_1").await?;                   // connects here
    /// # Ok(()) }
    /// ```
    pub fn connect_lazy(config: Config) -> Result<Client> {
        config.validate()?;
        let token = config.get_token().cloned().expect("validated");
        Ok(Client {
            pool: Arc::new(Pool::new(config)),
            token,
        })
    }

    /// A handle that sends `token` with its requests instead of the configured one (the
    /// sessions themselves stay opened by the configured token). Shares the pool.
    ///
    /// ```no_run
    /// # async fn demo(client: edbx::Client, reader_token: String) -> edbx::Result<()> {
    /// let as_reader = client.with_token(reader_token);
    /// let order = as_reader.get("orders", "ord_1").await?;
    /// # Ok(()) }
    /// ```
    pub fn with_token(&self, token: impl Into<Token>) -> Client {
        Client {
            pool: self.pool.clone(),
            token: token.into(),
        }
    }

    /// The token this handle sends.
    pub(crate) fn token(&self) -> &Token {
        &self.token
    }

    /// Requests queued or waiting for their reply on this client's connections: a diagnostic
    /// (0 once every call has ended, also calls that were cancelled).
    pub fn pending_requests(&self) -> usize {
        self.pool.live_connections().map(|c| c.load()).sum()
    }

    /// The configuration this client was built from.
    pub fn config(&self) -> &Config {
        self.pool.config()
    }

    /// Stops new calls (they fail with [`ErrorKind::Closed`]); calls already made complete,
    /// then connections close.
    pub fn close(&self) {
        self.pool.close();
    }

    /// Connections currently open.
    pub fn open_connections(&self) -> usize {
        self.pool.live_connections().count()
    }

    /// Whether every open connection runs under Noise encryption (`true` when none is open:
    /// new sessions follow the configuration and the server's answer).
    ///
    /// Plaintext happens only when the configuration turned Noise off *and* the server allows
    /// plaintext.
    pub fn is_encrypted(&self) -> bool {
        self.pool.live_connections().all(|c| c.is_encrypted())
    }

    /// Sends one request and returns the server's reply, mapping an error reply to
    /// [`ErrorKind::Server`].
    pub(crate) async fn execute(&self, request: Request) -> Result<Response> {
        let encoded = self.encode(&request)?;
        // Only the encoded bytes are needed from here on; a pending call keeps nothing else.
        drop(request);
        self.send_encoded(encoded).await
    }

    /// Encodes a request for [`send_encoded`](Self::send_encoded), starting its deadline: for a
    /// caller that keeps the request (to reuse its strings in the result).
    pub(crate) fn encode(&self, request: &Request) -> Result<Encoded> {
        let config = self.pool.config();
        let deadline = Instant::now() + config.get_request_timeout();
        let id = self.pool.next_id();
        let message: Arc<[u8]> = encode_request(id, self.token.expose(), request)
            .map_err(Error::from_wire)?
            .into();
        let limit = if config.get_noise() {
            MAX_NOISE_PLAINTEXT_LEN
        } else {
            MAX_FRAME_LEN
        };
        if message.len() > limit {
            return Err(Error::invalid_input(format!(
                "{} request is {} bytes encoded; one frame holds at most {limit}",
                request.name(),
                message.len()
            )));
        }
        Ok(Encoded {
            id,
            message,
            mutation: request.is_mutation(),
            name: request.name(),
            deadline,
        })
    }

    /// Sends an encoded request (retrying as the configuration says) and returns the reply.
    pub(crate) async fn send_encoded(&self, encoded: Encoded) -> Result<Response> {
        let Encoded {
            id,
            message,
            mutation,
            name,
            deadline,
        } = encoded;
        let config = self.pool.config();
        let retry = config.get_retry();
        let mut attempt = 1;
        // A request handed back unwritten by a connection found dead (closed while idle, or
        // ended before it got to the request) goes to another connection without using up the
        // caller's retries. Each such hand-back retires one connection, so after a server
        // restart every idle connection of the pool may do it once: bounded by the pool size.
        let mut unsent_resends = config.get_pool_size() + 1;
        loop {
            let outcome = self.attempt(id, &message, mutation, deadline).await;
            match outcome {
                Ok(Response::Error(e)) => return Err(Error::server(&e.code, &e.message)),
                Ok(response) => return Ok(response),
                Err(e) if e.kind() == ErrorKind::NotSent && unsent_resends > 0 => {
                    tracing::debug!("resending {name} on another connection: {e}");
                    unsent_resends -= 1;
                }
                // The server closed the connection with this read's reply due: on 3.19.4 that is
                // what a reply over its frame limit does. Try once more alone, so that it takes
                // no other caller's request down with it if it happens again.
                Err(e) if e.closed_while_due() => {
                    return Box::pin(self.attempt_alone(id, &message, deadline, e)).await;
                }
                Err(e) if e.is_retryable() && attempt < retry.attempts => {
                    let delay = retry.delay(attempt);
                    if Instant::now() + delay >= deadline {
                        return Err(e);
                    }
                    tracing::debug!(attempt, "retrying {name}: {e}");
                    tokio::time::sleep(delay).await;
                    attempt += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }

    async fn attempt(
        &self,
        id: u64,
        message: &Arc<[u8]>,
        mutation: bool,
        deadline: Instant,
    ) -> Result<Response> {
        let sent = match tokio::time::timeout_at(
            deadline,
            self.pool.send(id, message.clone(), mutation, deadline),
        )
        .await
        {
            Ok(sent) => sent?,
            Err(_) => return Err(self.timed_out(false, mutation)),
        };
        // Dropping this call (a caller's timeout, `select!`, an aborted task) withdraws the
        // request if it was not written yet.
        let mut withdraw = Withdraw {
            state: sent.state,
            mutation,
            settled: false,
        };
        // No timer here: the connection answers the call by its deadline (see conn::driver).
        let reply = match sent.reply.await {
            Ok(reply) => reply,
            Err(_) => Err(Error::new(
                if mutation {
                    ErrorKind::OutcomeUnknown
                } else {
                    ErrorKind::Disconnected
                },
                "the connection task ended without answering",
            )),
        };
        // Whatever happened is in `reply` now: nothing is abandoned.
        withdraw.settled = true;
        drop(withdraw);
        reply
    }

    /// The error of a call whose deadline passed.
    fn timed_out(&self, written: bool, mutation: bool) -> Error {
        deadline_passed(self.pool.config().get_request_timeout(), written, mutation)
    }

    /// Sends a read once more on a connection of its own, after the server closed the pooled
    /// one instead of answering it.
    async fn attempt_alone(
        &self,
        id: u64,
        message: &Arc<[u8]>,
        deadline: Instant,
        first: Error,
    ) -> Result<Response> {
        let alone = tokio::time::timeout_at(
            deadline,
            self.pool.send_alone(id, message.clone(), deadline),
        );
        match alone.await {
            Ok(Ok(Response::Error(e))) => Err(Error::server(&e.code, &e.message)),
            Ok(Ok(response)) => Ok(response),
            Ok(Err(again)) if again.closed_while_due() => Err(Error::new(
                ErrorKind::ReplyTooLarge,
                "the server closed the connection instead of answering, also when the request \
                 was sent again alone; server 3.19.4 does that when the reply exceeds its frame \
                 limit (a listed row over ~7.5 KiB of JSON, or an aggregate over ~32 KiB for get)",
            )
            .with_shared_source(Arc::new(first))),
            Ok(Err(other)) => Err(other),
            Err(_) => Err(self.timed_out(true, false)),
        }
    }
}

/// The error of a call whose deadline (`after` from its start) passed, by whether its request
/// was written and whether it is a write.
pub(crate) fn deadline_passed(after: Duration, written: bool, mutation: bool) -> Error {
    match (written, mutation) {
        (false, _) => Error::new(
            ErrorKind::Timeout,
            format!("no reply within {after:?}: the request was not sent; safe to retry"),
        ),
        (true, false) => Error::new(
            ErrorKind::Timeout,
            format!(
                "no reply within {after:?}: the request was sent; its late reply will be \
                 discarded"
            ),
        )
        .mark_written(),
        (true, true) => Error::written_write_timed_out(format!(
            "no reply within {after:?}: the write was sent and may or may not be applied"
        )),
    }
}

/// A request encoded for sending, with its deadline.
pub(crate) struct Encoded {
    id: u64,
    message: Arc<[u8]>,
    mutation: bool,
    name: &'static str,
    deadline: Instant,
}

/// Withdraws a request that was not written yet when the call is dropped; counts a dropped
/// write that was already written (see [`abandoned_writes`]).
struct Withdraw {
    state: Arc<JobState>,
    mutation: bool,
    settled: bool,
}

impl Drop for Withdraw {
    fn drop(&mut self) {
        if !self.state.try_cancel() && self.mutation && !self.settled {
            ABANDONED_WRITES.with(|n| n.set(n.get() + 1));
        }
    }
}

/// Whether a call may be run again by [`Client::ride_out`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Repeat {
    /// A read, or anything else that may run twice: repeated after any failure that a
    /// restarting server causes, including one it reports while shutting down.
    Idempotent,
    /// A write: repeated only while it was never sent, so that it is never applied twice.
    OnlyUnsent,
}

impl Client {
    /// Runs `call` until it succeeds or fails for another reason than an unreachable server,
    /// waiting out an outage (a server restart) for up to `wait` from the first failure:
    /// the policy of long-running jobs (an import, a subscription), on top of the per-call
    /// retries of [`Config::retry`]. Waits between tries grow from the retry options' initial
    /// delay to their maximum, with jitter.
    ///
    /// `before_wait` is told each failure that is about to be waited out (to report it, say);
    /// returning `false` gives up with that error (a job that was asked to stop).
    ///
    /// ```no_run
    /// # async fn demo(client: &edbx::Client) -> edbx::Result<()> {
    /// use std::time::Duration;
    /// use edbx::Repeat;
    /// let order = client
    ///     .ride_out(Duration::from_secs(60), Repeat::Idempotent, || client.get("orders", "o-1"), |e| {
    ///         eprintln!("waiting for the server: {e}");
    ///         true
    ///     })
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub async fn ride_out<T, Fut>(
        &self,
        wait: std::time::Duration,
        repeat: Repeat,
        mut call: impl FnMut() -> Fut,
        mut before_wait: impl FnMut(&Error) -> bool,
    ) -> Result<T>
    where
        Fut: std::future::IntoFuture<Output = Result<T>>,
    {
        let retry = self.config().get_retry();
        let mut since: Option<Instant> = None;
        let mut tries = 0u32;
        loop {
            let err = match call().into_future().await {
                Ok(value) => return Ok(value),
                Err(err) => err,
            };
            // A server shutting down answers a read in flight with a storage or I/O error
            // (3.19.4: `task was cancelled`); repeating a read then is as safe as after a drop.
            let outage = match repeat {
                Repeat::Idempotent => {
                    err.is_retryable()
                        || matches!(
                            err.server_code(),
                            Some(crate::ServerCode::Storage | crate::ServerCode::Io)
                        )
                }
                Repeat::OnlyUnsent => err.is_retryable() && !err.was_sent(),
            };
            let first = *since.get_or_insert_with(Instant::now);
            if !outage || first.elapsed() >= wait || !before_wait(&err) {
                return Err(err);
            }
            tries = tries.saturating_add(1);
            tracing::info!(tries, "the server cannot be reached; waiting for it: {err}");
            // A zero initial delay would spin; a restart takes longer than this anyway.
            tokio::time::sleep(retry.delay(tries).max(std::time::Duration::from_millis(20))).await;
        }
    }
}

thread_local! {
    static ABANDONED_WRITES: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// How many write calls this thread has dropped after their request was written, before the
/// reply came: writes whose outcome nobody will learn. A counter that only grows; compare it
/// before and after dropping a call (on the thread that drops it) to tell an interrupted write
/// that may have been applied from one that was withdrawn unsent.
///
/// ```no_run
/// # fn demo(db: &edbx::blocking::Client) {
/// let before = edbx::abandoned_writes();
/// // ... a call is interrupted and its future dropped on this thread ...
/// if edbx::abandoned_writes() > before {
///     eprintln!("the interrupted write may or may not have been applied");
/// }
/// # }
/// ```
pub fn abandoned_writes() -> u64 {
    ABANDONED_WRITES.with(|n| n.get())
}

/// Turns a reply of the wrong variant into a protocol error.
pub(crate) fn unexpected(expected: &str, got: &Response) -> Error {
    Error::protocol(format!("expected a {expected} reply, got {}", got.name()))
}
