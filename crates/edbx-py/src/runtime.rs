//! The one tokio runtime of the process, and the two ways a Python caller waits on it: blocking
//! with the GIL released, or through an asyncio future.

use std::future::Future;
use std::sync::OnceLock;
use std::time::Duration;

use pyo3::IntoPyObjectExt;
use pyo3::prelude::*;
use tokio::runtime::Runtime;

use crate::errors::to_py_err;

/// How often a blocking wait takes the GIL to let Python handle signals (Ctrl-C).
const SIGNAL_POLL: Duration = Duration::from_millis(100);

static RUNTIME: OnceLock<Runtime> = OnceLock::new();

/// Starts the runtime (two workers own the sockets) and hands it to `pyo3-async-runtimes`.
pub(crate) fn init() {
    let runtime = RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("edbx-io")
            .enable_all()
            .build()
            .expect("cannot start the edbx tokio runtime")
    });
    // Fails only if already set (the module imported twice in one process): same runtime.
    let _ = pyo3_async_runtimes::tokio::init_with_runtime(runtime);
}

fn runtime() -> &'static Runtime {
    RUNTIME
        .get()
        .expect("the runtime starts when the module is imported")
}

/// Runs `call` to completion on the runtime, from a Python thread: the GIL is released while
/// waiting, so other Python threads run and share the client; every [`SIGNAL_POLL`] the GIL is
/// taken back briefly to run signal handlers, and a raised `KeyboardInterrupt` drops the call
/// (which withdraws it if it was not sent yet).
pub(crate) fn wait<T, F>(py: Python<'_>, call: F) -> PyResult<T>
where
    F: Future<Output = edbx::Result<T>> + Send,
    T: Send,
{
    let outcome = py.detach(|| {
        runtime().block_on(async {
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

/// Wraps `call` in an asyncio future of the running loop; cancelling that future drops the call.
pub(crate) fn awaitable<'py, T, F>(py: Python<'py>, call: F) -> PyResult<Bound<'py, PyAny>>
where
    F: Future<Output = edbx::Result<T>> + Send + 'static,
    T: for<'a> IntoPyObject<'a> + Send + 'static,
{
    pyo3_async_runtimes::tokio::future_into_py(py, async move {
        call.await
            .map_err(|e| Python::attach(|py| to_py_err(py, e)))
    })
}

/// Runs `call` blocking or as an awaitable, as the caller asked, and returns the Python value.
pub(crate) fn run<'py, T, F>(
    py: Python<'py>,
    asynchronous: bool,
    call: F,
) -> PyResult<Bound<'py, PyAny>>
where
    F: Future<Output = edbx::Result<T>> + Send + 'static,
    T: for<'a> IntoPyObject<'a> + Send + 'static,
{
    if asynchronous {
        awaitable(py, call)
    } else {
        let value = wait(py, call)?;
        value.into_bound_py_any(py)
    }
}
