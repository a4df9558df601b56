//! The client handle and the one path every call takes: encode, send, await with a deadline,
//! retry only what is safe, map server errors.

use std::sync::Arc;

use edbx_wire::{MAX_FRAME_LEN, MAX_NOISE_PLAINTEXT_LEN, Request, Response, encode_request};
use tokio::time::Instant;

use crate::config::{Config, Token};
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
    pub async fn connect(config: Config) -> Result<Client> {
        config.validate()?;
        let token = config.get_token().cloned().expect("validated");
        let pool = Arc::new(Pool::new(config));
        pool.warm_up().await?;
        Ok(Client { pool, token })
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
        let config = self.pool.config();
        let deadline = Instant::now() + config.get_request_timeout();
        let id = self.pool.next_id();
        let message: Arc<[u8]> = encode_request(id, self.token.expose(), &request)?.into();
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
        let mutation = request.is_mutation();
        let retry = config.get_retry();
        let mut attempt = 1;
        // A request that was never written because its connection had died meanwhile (found
        // out only now, e.g. by a blocking client whose connections idle undriven) goes to
        // another connection once, without using up the caller's retries.
        let mut resend_unsent = true;
        loop {
            let outcome = self.attempt(id, &message, mutation, deadline).await;
            match outcome {
                Ok(Response::Error(e)) => return Err(Error::server(&e.code, &e.message)),
                Ok(response) => return Ok(response),
                Err(e) if e.kind() == ErrorKind::NotSent && resend_unsent => {
                    tracing::debug!("resending {} on another connection: {e}", request.name());
                    resend_unsent = false;
                }
                Err(e) if e.is_retryable() && attempt < retry.attempts => {
                    let delay = retry.delay(attempt, id ^ u64::from(attempt));
                    if Instant::now() + delay >= deadline {
                        return Err(e);
                    }
                    tracing::debug!(attempt, "retrying {}: {e}", request.name());
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
        let timed_out = |written: bool| {
            let after = self.pool.config().get_request_timeout();
            let what = match (written, mutation) {
                (false, _) => "the request was not sent",
                (true, false) => "the request was sent; its late reply will be discarded",
                (true, true) => "the write was sent and may or may not be applied",
            };
            let mut err = Error::new(
                ErrorKind::Timeout,
                format!("no reply within {after:?}: {what}"),
            );
            if written && mutation {
                err = err.mark_outcome_unknown();
            }
            err
        };
        let sent =
            match tokio::time::timeout_at(deadline, self.pool.send(id, message.clone(), mutation))
                .await
            {
                Ok(sent) => sent?,
                Err(_) => return Err(timed_out(false)),
            };
        match tokio::time::timeout_at(deadline, sent.reply).await {
            Ok(Ok(reply)) => reply,
            Ok(Err(_)) => Err(Error::new(
                if mutation {
                    ErrorKind::OutcomeUnknown
                } else {
                    ErrorKind::Disconnected
                },
                "the connection task ended without answering",
            )),
            Err(_) => Err(timed_out(!sent.state.try_cancel())),
        }
    }
}

/// Turns a reply of the wrong variant into a protocol error.
pub(crate) fn unexpected(expected: &str, got: &Response) -> Error {
    Error::protocol(format!("expected a {expected} reply, got {}", got.name()))
}
