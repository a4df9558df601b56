//! Where clients run: a current-thread runtime per blocking client, one shared multi-thread
//! runtime for asyncio clients; and the two ways a Python caller waits: blocking with the GIL
//! released, or through an asyncio future.

use std::future::Future;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use pyo3::IntoPyObjectExt;
use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use tokio::runtime::Runtime;

use crate::bridge::awaitable;
use crate::errors::to_py_err;

/// How often a blocking wait takes the GIL to let Python handle signals (Ctrl-C).
const SIGNAL_POLL: Duration = Duration::from_millis(100);

static SHARED: OnceLock<Runtime> = OnceLock::new();

/// The runtime of asyncio clients: two workers own their sockets; started on first use.
fn shared() -> &'static Runtime {
    SHARED.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("edbx-io")
            .enable_all()
            .build()
            .expect("cannot start the edbx tokio runtime")
    })
}

/// A current-thread runtime that shuts down without blocking when dropped (it may be dropped
/// from any thread).
pub(crate) struct OwnRuntime(Option<Runtime>);

impl Drop for OwnRuntime {
    fn drop(&mut self) {
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}

/// Where a client's connections live, and so how its calls wait.
#[derive(Clone)]
pub(crate) enum Home {
    /// A blocking client: a current-thread runtime of its own, driven by whichever Python thread
    /// waits on a call. A sequential caller thus does its own I/O, with no hand-off between
    /// threads (a third of the latency of a call on loopback); threads sharing the client take
    /// turns driving it while the others wait.
    Blocking(Arc<OwnRuntime>),
    /// An asyncio client: the shared multi-thread runtime.
    Shared,
}

impl Home {
    /// A home for a new blocking client.
    pub(crate) fn blocking() -> std::io::Result<Home> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        Ok(Home::Blocking(Arc::new(OwnRuntime(Some(runtime)))))
    }

    fn runtime(&self) -> &Runtime {
        match self {
            Home::Blocking(own) => own.0.as_ref().expect("present until dropped"),
            Home::Shared => shared(),
        }
    }

    /// Runs `call` blocking or as an awaitable, as the caller asked, and returns the Python
    /// value. Only asyncio clients give awaitables: a blocking client's connections are driven
    /// by its waiting callers.
    pub(crate) fn run<'py, T, F>(
        &self,
        py: Python<'py>,
        asynchronous: bool,
        call: F,
    ) -> PyResult<Bound<'py, PyAny>>
    where
        F: Future<Output = edbx::Result<T>> + Send + 'static,
        T: for<'a> IntoPyObject<'a> + Send + 'static,
    {
        match (asynchronous, self) {
            (true, Home::Shared) => awaitable(py, shared(), call),
            (true, Home::Blocking(_)) => Err(PyRuntimeError::new_err(
                "a blocking client cannot be awaited; use AsyncEventDBXClient",
            )),
            (false, _) => self.wait(py, call)?.into_bound_py_any(py),
        }
    }

    /// Runs `call` to completion from a Python thread: the GIL is released while waiting, so
    /// other Python threads run and share the client; every [`SIGNAL_POLL`] the GIL is taken
    /// back briefly to run signal handlers, and a raised `KeyboardInterrupt` drops the call
    /// (which withdraws it if it was not sent yet).
    pub(crate) fn wait<T, F>(&self, py: Python<'_>, call: F) -> PyResult<T>
    where
        F: Future<Output = edbx::Result<T>> + Send,
        T: Send,
    {
        let runtime = self.runtime();
        let outcome = py.detach(|| {
            runtime.block_on(async {
                tokio::pin!(call);
                loop {
                    match tokio::time::timeout(SIGNAL_POLL, &mut call).await {
                        Ok(done) => return Ok::<_, PyErr>(done),
                        Err(_) => Python::attach(|py| py.check_signals())?,
                    }
                }
            })
        })?;
        outcome.map_err(|e| to_py_err(py, e))
    }
}
