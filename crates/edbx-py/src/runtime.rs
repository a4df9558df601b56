//! Where clients run: a current-thread runtime per blocking client, one shared multi-thread
//! runtime for asyncio clients; the two ways a Python caller waits (blocking with the GIL
//! released, or through an asyncio future); and what `fork()` does to all of that.
//!
//! # Fork
//!
//! A forked child inherits the parent's sockets, Noise states and runtimes, but none of the
//! threads that drive them, and shares the kernel objects behind them (the sockets, and the
//! epoll instances that runtimes register sockets with) with the parent. So a child must never
//! use, close or even drop any of it: one encrypted frame sent by both processes under the same
//! nonce, or one socket deregistered from the shared epoll by the child, breaks the parent.
//!
//! Every fork (from `os.fork()`, `multiprocessing`, gunicorn, Celery, or C code) bumps a
//! process-wide generation in the child (`pthread_atfork`). A client compares it with the
//! generation it was made in on each call; in a child, it leaves its inherited state untouched
//! and unreleased (leaked, so that no destructor reaches the shared kernel objects) and starts
//! over with a fresh runtime and a pool that connects on the first call. The parent never
//! notices.

use std::future::Future;
use std::sync::atomic::{AtomicPtr, AtomicU64, Ordering};
use std::time::Duration;

use pyo3::IntoPyObjectExt;
use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use tokio::runtime::Runtime;

use crate::bridge::awaitable;
use crate::errors::to_py_err;

/// How often a blocking wait on the main thread takes the GIL to let Python run signal
/// handlers (Ctrl-C). Other threads never do: Python runs handlers on the main thread only.
const SIGNAL_POLL: Duration = Duration::from_millis(50);

/// Bumped in the child by every `fork()`.
static GENERATION: AtomicU64 = AtomicU64::new(0);

/// `threading.get_ident()` of the thread that runs Python's signal handlers.
static MAIN_THREAD: AtomicU64 = AtomicU64::new(0);

fn thread_ident() -> u64 {
    // SAFETY: `PyThread_get_thread_ident` only reads the calling thread's id (pthread_self on
    // POSIX); it needs neither the GIL nor an initialized interpreter.
    #[allow(unsafe_code)]
    unsafe {
        pyo3::ffi::PyThread_get_thread_ident() as u64
    }
}

/// The fork generation this process is in (0 in a process that was not forked).
pub(crate) fn generation() -> u64 {
    GENERATION.load(Ordering::Acquire)
}

#[cfg(unix)]
extern "C" fn after_fork_in_child() {
    // Only async-signal-safe work here: two atomic stores.
    GENERATION.fetch_add(1, Ordering::AcqRel);
    // The thread that forked is the child's only thread, and Python makes it the main thread.
    MAIN_THREAD.store(thread_ident(), Ordering::Release);
}

/// Registers the fork hook and notes the main thread (at module import).
pub(crate) fn init(py: Python<'_>) -> PyResult<()> {
    let main = py
        .import("threading")?
        .call_method0("main_thread")?
        .getattr("ident")?
        .extract::<u64>()?;
    MAIN_THREAD.store(main, Ordering::Release);
    #[cfg(unix)]
    {
        // SAFETY: registering a handler that only touches atomics.
        #[allow(unsafe_code)]
        let status = unsafe { libc::pthread_atfork(None, None, Some(after_fork_in_child)) };
        if status != 0 {
            return Err(PyRuntimeError::new_err(format!(
                "cannot register the fork handler (pthread_atfork returned {status})"
            )));
        }
    }
    Ok(())
}

/// The runtime of asyncio clients in one fork generation.
struct SharedRuntime {
    generation: u64,
    runtime: Runtime,
}

/// The current generation's shared runtime; runtimes of earlier generations are leaked (see the
/// module docs), never dropped.
static SHARED: AtomicPtr<SharedRuntime> = AtomicPtr::new(std::ptr::null_mut());

/// The runtime of asyncio clients: two workers own their sockets; started on first use in each
/// process.
fn shared() -> PyResult<&'static Runtime> {
    let generation = generation();
    loop {
        let current = SHARED.load(Ordering::Acquire);
        // SAFETY: a published runtime is never freed (leaked), so the pointer stays valid.
        #[allow(unsafe_code)]
        if let Some(shared) = unsafe { current.as_ref() } {
            if shared.generation == generation {
                return Ok(&shared.runtime);
            }
        }
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("edbx-io")
            .enable_all()
            .build()
            .map_err(|e| PyRuntimeError::new_err(format!("cannot start a tokio runtime: {e}")))?;
        let fresh = Box::into_raw(Box::new(SharedRuntime {
            generation,
            runtime,
        }));
        if SHARED
            .compare_exchange(current, fresh, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            // Another thread of this process published one first: ours has never run a task.
            // SAFETY: `fresh` came from Box::into_raw above and was never shared.
            #[allow(unsafe_code)]
            let ours = unsafe { Box::from_raw(fresh) };
            ours.runtime.shutdown_background();
        }
    }
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
    /// turns driving it while the others wait. Between calls nothing drives it: the engine
    /// checks an idle connection before writing on it.
    Blocking(std::sync::Arc<OwnRuntime>),
    /// An asyncio client: the shared multi-thread runtime of the current fork generation.
    Shared,
}

impl Home {
    /// A home for a new blocking client.
    pub(crate) fn blocking() -> PyResult<Home> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| PyRuntimeError::new_err(format!("cannot start a tokio runtime: {e}")))?;
        Ok(Home::Blocking(std::sync::Arc::new(OwnRuntime(Some(
            runtime,
        )))))
    }

    /// A home like this one, for the same client in a forked child.
    pub(crate) fn renewed(&self) -> PyResult<Home> {
        match self {
            Home::Blocking(_) => Home::blocking(),
            Home::Shared => Ok(Home::Shared),
        }
    }

    fn runtime(&self) -> PyResult<&Runtime> {
        match self {
            Home::Blocking(own) => Ok(own.0.as_ref().expect("present until dropped")),
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
            (true, Home::Shared) => awaitable(py, shared()?, call),
            (true, Home::Blocking(_)) => Err(PyRuntimeError::new_err(
                "a blocking client cannot be awaited; use AsyncEventDBXClient",
            )),
            (false, _) => self.wait(py, call)?.into_bound_py_any(py),
        }
    }

    /// Runs `call` to completion from a Python thread, with the GIL released so that other
    /// Python threads run and share the client.
    ///
    /// On the main thread the wait takes the GIL back every [`SIGNAL_POLL`] to run signal
    /// handlers; one that raises (`KeyboardInterrupt` from Ctrl-C) drops the call, which
    /// withdraws its request if it was not written yet. If a write had been written, the
    /// exception gets a note (PEP 678, Python 3.11+) that its outcome is unknown.
    pub(crate) fn wait<T, F>(&self, py: Python<'_>, call: F) -> PyResult<T>
    where
        F: Future<Output = edbx::Result<T>> + Send,
        T: Send,
    {
        let runtime = self.runtime()?;
        if thread_ident() != MAIN_THREAD.load(Ordering::Acquire) {
            return py
                .detach(|| runtime.block_on(call))
                .map_err(|e| to_py_err(py, e));
        }
        let abandoned_before = edbx::abandoned_writes();
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
        });
        match outcome {
            Ok(done) => done.map_err(|e| to_py_err(py, e)),
            Err(interrupted) => {
                // The call was dropped on this thread when the wait ended.
                if edbx::abandoned_writes() > abandoned_before {
                    add_note(
                        py,
                        &interrupted,
                        "eventdbx: the write was sent before the interrupt; its outcome is \
                         unknown (read the aggregate back before writing it again)",
                    );
                }
                Err(interrupted)
            }
        }
    }
}

/// `exception.add_note(note)` where Python has it (3.11+); older versions keep the exception
/// as it is.
fn add_note(py: Python<'_>, error: &PyErr, note: &str) {
    let value = error.value(py);
    if value.hasattr("add_note").unwrap_or(false) {
        let _ = value.call_method1("add_note", (note,));
    } else {
        // What add_note does, for the tools that read `__notes__` on older versions.
        let _ = value.setattr("__notes__", vec![note]);
    }
}
