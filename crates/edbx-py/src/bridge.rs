//! Rust futures as asyncio futures.
//!
//! A call runs as a task of the shared runtime; its result is handed to the event loop with
//! `loop.call_soon_threadsafe`, from a blocking-pool thread (taking the GIL must not stall a
//! runtime worker). Cancelling the asyncio future aborts the task, which drops the call: a
//! request not yet written is withdrawn.
//!
//! Handing over needs the GIL on a thread Python does not know, which is unsafe once the
//! interpreter finalizes. So every hand-over passes a gate that the interpreter's exit closes
//! (`close_gate`, registered with `atexit`): closing waits for the hand-overs in progress and
//! makes later ones drop their result unseen.

use std::future::Future;
use std::sync::RwLock;

use pyo3::IntoPyObjectExt;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use tokio::runtime::Runtime;
use tokio::task::AbortHandle;

use crate::errors::to_py_err;

/// Open while results may be handed to Python.
static GATE: RwLock<bool> = RwLock::new(true);

static RESOLVE: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

/// Closes the gate at interpreter exit (see the module docs).
#[pyfunction]
pub(crate) fn close_gate(py: Python<'_>) {
    // Hand-overs in progress need the GIL to finish; release it while waiting for them.
    py.detach(|| *GATE.write().unwrap_or_else(|e| e.into_inner()) = false);
}

/// Sets a future's outcome unless it was cancelled meanwhile (runs on the event loop).
#[pyfunction]
fn resolve(
    future: &Bound<'_, PyAny>,
    error: Option<Bound<'_, PyAny>>,
    value: Bound<'_, PyAny>,
) -> PyResult<()> {
    if future.call_method0("done")?.is_truthy()? {
        return Ok(());
    }
    match error {
        Some(error) => future.call_method1("set_exception", (error,))?,
        None => future.call_method1("set_result", (value,))?,
    };
    Ok(())
}

/// Aborts the task of a call whose asyncio future was cancelled.
#[pyclass(frozen)]
struct CancelOnDone {
    task: AbortHandle,
}

#[pymethods]
impl CancelOnDone {
    fn __call__(&self, future: &Bound<'_, PyAny>) -> PyResult<()> {
        if future.call_method0("cancelled")?.is_truthy()? {
            self.task.abort();
        }
        Ok(())
    }
}

/// An asyncio future of the running loop that completes with `call`'s result.
pub(crate) fn awaitable<'py, T, F>(
    py: Python<'py>,
    runtime: &Runtime,
    call: F,
) -> PyResult<Bound<'py, PyAny>>
where
    F: Future<Output = edbx::Result<T>> + Send + 'static,
    T: for<'a> IntoPyObject<'a> + Send + 'static,
{
    let event_loop = py.import("asyncio")?.call_method0("get_running_loop")?;
    let future = event_loop.call_method0("create_future")?;
    let (event_loop_ref, future_ref) = (event_loop.unbind(), future.clone().unbind());
    let task = runtime.spawn(async move {
        let outcome = call.await;
        // Taking the GIL may wait; not on a worker of the runtime.
        let _ = tokio::task::spawn_blocking(move || hand_over(event_loop_ref, future_ref, outcome))
            .await;
    });
    future.call_method1(
        "add_done_callback",
        (CancelOnDone {
            task: task.abort_handle(),
        },),
    )?;
    Ok(future)
}

fn hand_over<T>(event_loop: Py<PyAny>, future: Py<PyAny>, outcome: edbx::Result<T>)
where
    T: for<'a> IntoPyObject<'a>,
{
    let gate = GATE.read().unwrap_or_else(|e| e.into_inner());
    if !*gate {
        return;
    }
    Python::attach(|py| {
        let delivered = (|| -> PyResult<()> {
            let (error, value) = match outcome {
                Ok(value) => (None, value.into_bound_py_any(py)?),
                Err(e) => (
                    Some(to_py_err(py, e).into_value(py).into_bound(py).into_any()),
                    py.None().into_bound(py),
                ),
            };
            let resolve = RESOLVE.get_or_try_init(py, || {
                wrap_pyfunction!(resolve, py).map(|f| f.into_any().unbind())
            })?;
            event_loop.bind(py).call_method1(
                "call_soon_threadsafe",
                (resolve.bind(py), future.bind(py), error, value),
            )?;
            Ok(())
        })();
        // A closed loop (its `asyncio.run` ended before the call did) has no one to tell.
        drop(delivered);
    });
    drop(gate);
}
