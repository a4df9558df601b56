//! Rust futures as asyncio futures, with one wake-up of the event loop per batch of finished
//! calls.
//!
//! A call runs as a task of the shared runtime. Its outcome, still a Rust value, goes into the
//! queue of the event loop that made the call, and the loop is woken only when that queue was
//! empty: on POSIX by one byte on a socket pair whose reading end the loop watches
//! (`loop.add_reader`), written by the runtime thread without the GIL; elsewhere by
//! `call_soon_threadsafe` from a blocking-pool thread. Woken, the loop converts and resolves
//! every queued outcome at once, with the GIL it already holds. So under load many calls share
//! one wake-up, and on POSIX no runtime thread ever waits for the GIL (nor can it touch Python
//! while the interpreter finalizes).
//!
//! Cancelling the asyncio future aborts the task, which drops the call: a request not yet
//! written is withdrawn.

use std::cell::RefCell;
use std::future::Future;
use std::sync::{Arc, Mutex};

use pyo3::IntoPyObjectExt;
use pyo3::prelude::*;
use tokio::runtime::Runtime;
use tokio::task::AbortHandle;

use crate::errors::to_py_err;
use crate::runtime;

/// Turns a finished call's outcome into `(exception, value)` for its future (on the loop).
type Deliver = Box<dyn FnOnce(Python<'_>) -> PyResult<(Option<Py<PyAny>>, Py<PyAny>)> + Send>;

struct Completion {
    future: Py<PyAny>,
    deliver: Deliver,
}

/// The finished calls of one event loop, and how to wake it.
struct LoopQueue {
    finished: Mutex<Vec<Completion>>,
    waker: Waker,
}

impl LoopQueue {
    fn push(&self, completion: Completion) {
        let was_empty = {
            let mut finished = self.finished.lock().unwrap_or_else(|e| e.into_inner());
            finished.push(completion);
            finished.len() == 1
        };
        if was_empty {
            self.waker.wake();
        }
    }

    /// Resolves every queued future (runs on the loop).
    fn drain(&self, py: Python<'_>) {
        self.waker.clear();
        let batch = std::mem::take(&mut *self.finished.lock().unwrap_or_else(|e| e.into_inner()));
        for completion in batch {
            // A future cancelled meanwhile, or a loop closing, has no one to tell.
            let _ = resolve(py, completion);
        }
    }
}

fn resolve(py: Python<'_>, completion: Completion) -> PyResult<()> {
    let future = completion.future.bind(py);
    if future
        .call_method0(pyo3::intern!(py, "done"))?
        .is_truthy()?
    {
        return Ok(());
    }
    match (completion.deliver)(py)? {
        (Some(error), _) => future.call_method1(pyo3::intern!(py, "set_exception"), (error,))?,
        (None, value) => future.call_method1(pyo3::intern!(py, "set_result"), (value,))?,
    };
    Ok(())
}

#[cfg(unix)]
struct Waker {
    /// Written by runtime threads (one byte per wake-up).
    ring: std::os::unix::net::UnixStream,
    /// Watched by the loop.
    bell: std::os::unix::net::UnixStream,
}

#[cfg(unix)]
impl Waker {
    fn new(_event_loop: &Bound<'_, PyAny>) -> PyResult<Self> {
        let (ring, bell) = std::os::unix::net::UnixStream::pair()?;
        ring.set_nonblocking(true)?;
        bell.set_nonblocking(true)?;
        Ok(Self { ring, bell })
    }

    fn wake(&self) {
        use std::io::Write;
        // A full socket buffer means wake-ups are pending already.
        let _ = (&self.ring).write(&[1]);
    }

    fn clear(&self) {
        use std::io::Read;
        let mut bytes = [0u8; 64];
        while let Ok(n) = (&self.bell).read(&mut bytes) {
            if n < bytes.len() {
                break;
            }
        }
    }

    fn watch(&self, event_loop: &Bound<'_, PyAny>, drain: Bound<'_, Drain>) -> PyResult<()> {
        use std::os::fd::AsRawFd;
        event_loop.call_method1("add_reader", (self.bell.as_raw_fd(), drain))?;
        Ok(())
    }
}

/// Without `add_reader` for sockets everywhere (Windows' proactor loop), a wake-up is a
/// `call_soon_threadsafe` from a blocking-pool thread.
#[cfg(not(unix))]
struct Waker {
    event_loop: Py<PyAny>,
    drain: std::sync::OnceLock<Py<Drain>>,
}

#[cfg(not(unix))]
impl Waker {
    fn new(event_loop: &Bound<'_, PyAny>) -> PyResult<Self> {
        Ok(Self {
            event_loop: event_loop.clone().unbind(),
            drain: std::sync::OnceLock::new(),
        })
    }

    fn wake(&self) {
        let (Some(drain), Ok(handle)) = (self.drain.get(), tokio::runtime::Handle::try_current())
        else {
            return;
        };
        let (event_loop, drain) =
            Python::try_attach(|py| (self.event_loop.clone_ref(py), drain.clone_ref(py))).unzip();
        let (Some(event_loop), Some(drain)) = (event_loop, drain) else {
            return;
        };
        handle.spawn_blocking(move || {
            Python::try_attach(|py| {
                let _ = event_loop
                    .bind(py)
                    .call_method1("call_soon_threadsafe", (drain,));
            });
        });
    }

    fn clear(&self) {}

    fn watch(&self, _event_loop: &Bound<'_, PyAny>, drain: Bound<'_, Drain>) -> PyResult<()> {
        let _ = self.drain.set(drain.unbind());
        Ok(())
    }
}

/// The loop's callback: resolves what finished.
#[pyclass(frozen)]
struct Drain(Arc<LoopQueue>);

#[pymethods]
impl Drain {
    fn __call__(&self, py: Python<'_>) {
        self.0.drain(py);
    }
}

/// The queue of one event loop that made calls on this thread.
struct Current {
    event_loop: Py<PyAny>,
    generation: u64,
    queue: Arc<LoopQueue>,
}

thread_local! {
    /// Usually one entry; more when a thread runs several loops in turn, each of which may
    /// still have calls in flight, so an entry stays until its loop is closed.
    static CURRENT: RefCell<Vec<Current>> = const { RefCell::new(Vec::new()) };
}

fn queue_for(event_loop: &Bound<'_, PyAny>) -> PyResult<Arc<LoopQueue>> {
    let generation = runtime::generation();
    CURRENT.with(|current| {
        let mut current = current.borrow_mut();
        if let Some(known) = current
            .iter()
            .find(|c| c.generation == generation && c.event_loop.is(event_loop))
        {
            return Ok(known.queue.clone());
        }
        // A new loop: forget the queues of loops that are closed, and leave those inherited
        // across fork() untouched (their selectors are shared with the parent).
        let py = event_loop.py();
        let mut kept = Vec::with_capacity(current.len() + 1);
        for old in current.drain(..) {
            if old.generation != generation {
                std::mem::forget(old);
            } else if !old
                .event_loop
                .bind(py)
                .call_method0("is_closed")
                .and_then(|closed| closed.is_truthy())
                .unwrap_or(true)
            {
                kept.push(old);
            }
        }
        *current = kept;
        let queue = Arc::new(LoopQueue {
            finished: Mutex::new(Vec::new()),
            waker: Waker::new(event_loop)?,
        });
        queue
            .waker
            .watch(event_loop, Bound::new(py, Drain(queue.clone()))?)?;
        current.push(Current {
            event_loop: event_loop.clone().unbind(),
            generation,
            queue: queue.clone(),
        });
        Ok(queue)
    })
}

/// Aborts the task of a call whose asyncio future was cancelled.
#[pyclass(frozen)]
struct CancelOnDone {
    task: AbortHandle,
}

#[pymethods]
impl CancelOnDone {
    fn __call__(&self, future: &Bound<'_, PyAny>) -> PyResult<()> {
        if future
            .call_method0(pyo3::intern!(future.py(), "cancelled"))?
            .is_truthy()?
        {
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
    let event_loop = py
        .import(pyo3::intern!(py, "asyncio"))?
        .call_method0(pyo3::intern!(py, "get_running_loop"))?;
    let queue = queue_for(&event_loop)?;
    let future = event_loop.call_method0(pyo3::intern!(py, "create_future"))?;
    let future_ref = future.clone().unbind();
    let task = runtime.spawn(async move {
        let outcome = call.await;
        let deliver: Deliver = Box::new(move |py| match outcome {
            Ok(value) => Ok((None, value.into_py_any(py)?)),
            Err(e) => Ok((Some(to_py_err(py, e).into_value(py).into_any()), py.None())),
        });
        queue.push(Completion {
            future: future_ref,
            deliver,
        });
    });
    future.call_method1(
        pyo3::intern!(py, "add_done_callback"),
        (CancelOnDone {
            task: task.abort_handle(),
        },),
    )?;
    Ok(future)
}
