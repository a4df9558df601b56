//! The clients being compared. Each runs the same workloads against the same server.

pub mod ceiling;
pub mod ceiling_async;
pub mod edbx;
pub mod edbx_blocking;
pub mod official;
pub mod python;
pub mod python_edbx;

use std::path::Path;

use clap::ValueEnum;

use crate::stats::Run;
use crate::workload::{Plan, Target, Workload};

/// Settings that change the edbx contender (for investigations; the headline run uses the
/// `Config` defaults).
#[derive(Debug, Clone, Copy, Default)]
pub struct EdbxTuning {
    pub pool_size: Option<usize>,
    pub max_in_flight: Option<usize>,
}

/// Everything a contender needs to run a workload.
pub struct Env<'a> {
    pub target: &'a Target,
    pub plan: &'a Plan,
    pub runtime: &'a tokio::runtime::Runtime,
    pub edbx: EdbxTuning,
    /// An interpreter with this workspace's Python package installed, for the Python
    /// contenders.
    pub python: Option<&'a Path>,
    /// An interpreter with the official `eventdbx` 0.1.8 installed, for
    /// [`Contender::PyOfficial`].
    pub python_official: Option<&'a Path>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, ValueEnum)]
pub enum Contender {
    /// edbx with `Config` defaults (only host, port, token and tenant set).
    Edbx,
    /// `edbx::blocking::Client` with `Config` defaults, called from one plain thread; sequential
    /// workloads only (the same engine as `edbx`, on a runtime the calling thread drives).
    EdbxBlocking,
    /// eventdbx-client 1.2.1, one client shared by every task.
    Official,
    /// eventdbx-client 1.2.1, one client (connection) per task.
    OfficialPerTask,
    /// A blocking loop over edbx-wire, one thread and one connection per task.
    Ceiling,
    /// The same raw session on the tokio runtime edbx runs on: one task and one connection per
    /// task, each writing its request and reading its reply itself (what the runtime costs).
    CeilingAsync,
    /// This workspace's Python package: OS threads sharing one `EventDBXClient`.
    PyThreads,
    /// This workspace's Python package: asyncio tasks sharing one `AsyncEventDBXClient`.
    PyAsyncio,
    /// The same asyncio tasks on uvloop's event loop.
    PyAsyncioUvloop,
    /// The official Python client `eventdbx` 0.1.8, its three connection bugs patched at run
    /// time (`python/official_0_1_8.py`); sequential workloads only (it is blocking, with one
    /// request in flight).
    PyOfficial,
}

impl Contender {
    pub const ALL: [Contender; 10] = [
        Contender::Edbx,
        Contender::EdbxBlocking,
        Contender::Official,
        Contender::OfficialPerTask,
        Contender::Ceiling,
        Contender::CeilingAsync,
        Contender::PyThreads,
        Contender::PyAsyncio,
        Contender::PyAsyncioUvloop,
        Contender::PyOfficial,
    ];

    /// Whether this contender runs this workspace's Python package (and needs `--python`).
    pub fn is_python(self) -> bool {
        matches!(
            self,
            Contender::PyThreads | Contender::PyAsyncio | Contender::PyAsyncioUvloop
        )
    }

    pub fn label(self, tuning: EdbxTuning) -> String {
        match self {
            Contender::Edbx => match (tuning.pool_size, tuning.max_in_flight) {
                (None, None) => "edbx (defaults)".to_owned(),
                (pool, in_flight) => format!(
                    "edbx (pool {}, in-flight {})",
                    pool.unwrap_or(::edbx::Config::DEFAULT_POOL_SIZE),
                    in_flight.unwrap_or(::edbx::Config::DEFAULT_MAX_IN_FLIGHT)
                ),
            },
            Contender::EdbxBlocking => "edbx blocking client (defaults)".to_owned(),
            Contender::Official => "official 1.2.1, shared client".to_owned(),
            Contender::OfficialPerTask => "official 1.2.1, client per task".to_owned(),
            Contender::Ceiling => "ceiling (raw edbx-wire)".to_owned(),
            Contender::CeilingAsync => {
                "ceiling on tokio (raw edbx-wire, a task per connection)".to_owned()
            }
            Contender::PyThreads => "python edbx, threads sharing one client".to_owned(),
            Contender::PyAsyncio => "python edbx, asyncio tasks sharing one client".to_owned(),
            Contender::PyAsyncioUvloop => {
                "python edbx, asyncio tasks sharing one client, uvloop".to_owned()
            }
            Contender::PyOfficial => "python eventdbx 0.1.8, 3 bugs patched at run time".to_owned(),
        }
    }

    /// Short name used in aggregate ids.
    pub fn tag(self) -> &'static str {
        match self {
            Contender::Edbx => "edbx",
            Contender::EdbxBlocking => "edbb",
            Contender::Official => "offs",
            Contender::OfficialPerTask => "offt",
            Contender::Ceiling => "ceil",
            Contender::CeilingAsync => "ceia",
            Contender::PyThreads => "pyth",
            Contender::PyAsyncio => "pyas",
            Contender::PyAsyncioUvloop => "pyuv",
            Contender::PyOfficial => "pyof",
        }
    }

    /// Whether this contender has a distinct configuration for `workload`: a client per task
    /// is the shared client when there is one task.
    pub fn runs(self, workload: Workload) -> bool {
        match self {
            Contender::OfficialPerTask => workload.tasks() > 1,
            Contender::PyThreads => workload != Workload::Connect && workload.tasks() <= 16,
            Contender::PyAsyncio | Contender::PyAsyncioUvloop => {
                workload != Workload::Connect && workload.tasks() >= 16
            }
            Contender::PyOfficial | Contender::EdbxBlocking => {
                workload != Workload::Connect && workload.tasks() == 1
            }
            Contender::CeilingAsync => workload != Workload::Connect,
            _ => true,
        }
    }

    /// Runs `workload` once. `run_tag` is unique per (contender, repetition). A failure to set
    /// up (e.g. connect) is returned as a run with one error.
    pub fn run(self, env: &Env<'_>, workload: Workload, run_tag: &str) -> Run {
        let outcome = match self {
            Contender::Edbx => edbx::run(env, workload, run_tag),
            Contender::EdbxBlocking => edbx_blocking::run(env, workload, run_tag),
            Contender::Official => official::run(env, workload, run_tag, false),
            Contender::OfficialPerTask => official::run(env, workload, run_tag, true),
            Contender::Ceiling => ceiling::run(env, workload, run_tag),
            Contender::CeilingAsync => ceiling_async::run(env, workload, run_tag),
            Contender::PyThreads => {
                python_edbx::run(env, workload, run_tag, python_edbx::Mode::Threads)
            }
            Contender::PyAsyncio => {
                python_edbx::run(env, workload, run_tag, python_edbx::Mode::Asyncio)
            }
            Contender::PyAsyncioUvloop => {
                python_edbx::run(env, workload, run_tag, python_edbx::Mode::AsyncioUvloop)
            }
            Contender::PyOfficial => {
                python_edbx::run(env, workload, run_tag, python_edbx::Mode::Official)
            }
        };
        outcome.unwrap_or_else(|e| Run {
            errors: 1,
            first_error: Some(format!("setup failed: {e}")),
            ..Run::default()
        })
    }
}
