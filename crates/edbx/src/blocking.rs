//! A blocking front for code without an async runtime: the async [`Client`](crate::Client) on a
//! runtime of its own, never a second implementation.

use std::future::IntoFuture;
use std::ops::Deref;

use crate::config::Config;
use crate::error::{Error, ErrorKind, Result};

/// A blocking EventDBX client. Every async call of [`crate::Client`] is available through
/// `Deref`; [`wait`](Client::wait) runs it to completion on the client's own runtime.
///
/// ```no_run
/// use edbx::blocking::Client;
/// use serde_json::json;
///
/// let db = Client::connect(edbx::Config::from_env()?)?;
/// db.wait(db.apply("orders", "ord_1", "paid", &json!({"status": "paid"})).note("till"))?;
/// let order = db.wait(db.get("orders", "ord_1"))?;
/// # Ok::<(), edbx::Error>(())
/// ```
///
/// Call it from plain threads, not from inside an async runtime (blocking there would stall
/// that runtime; use [`crate::Client`] instead).
pub struct Client {
    client: crate::Client,
    // Declared last so the connection tasks outlive the handle above while it closes.
    runtime: tokio::runtime::Runtime,
}

impl Client {
    /// Connects like [`crate::Client::connect`], on a runtime with one worker thread that owns
    /// the sockets between calls.
    pub fn connect(config: Config) -> Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("edbx-blocking")
            .enable_all()
            .build()
            .map_err(|e| {
                Error::new(ErrorKind::Config, format!("cannot start a runtime: {e}")).with_source(e)
            })?;
        let client = runtime.block_on(crate::Client::connect(config))?;
        Ok(Self { client, runtime })
    }

    /// Runs one call (any builder or future of [`crate::Client`]) and returns its result.
    pub fn wait<F: IntoFuture>(&self, call: F) -> F::Output {
        self.runtime.block_on(call.into_future())
    }

    /// The async client inside, e.g. to hand to async code.
    pub fn as_async(&self) -> &crate::Client {
        &self.client
    }
}

impl Deref for Client {
    type Target = crate::Client;

    fn deref(&self) -> &crate::Client {
        &self.client
    }
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("blocking::Client")
            .field(&self.client)
            .finish()
    }
}
