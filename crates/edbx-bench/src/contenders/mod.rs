//! The clients being compared. Each runs the same workloads against the same server.

pub mod ceiling;
pub mod edbx;
pub mod official;
pub mod python;

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
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, ValueEnum)]
pub enum Contender {
    /// edbx with `Config` defaults (only host, port, token and tenant set).
    Edbx,
    /// eventdbx-client 1.2.1, one client shared by every task.
    Official,
    /// eventdbx-client 1.2.1, one client (connection) per task.
    OfficialPerTask,
    /// A blocking loop over edbx-wire, one thread and one connection per task.
    Ceiling,
}

impl Contender {
    pub const ALL: [Contender; 4] = [
        Contender::Edbx,
        Contender::Official,
        Contender::OfficialPerTask,
        Contender::Ceiling,
    ];

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
            Contender::Official => "official 1.2.1, shared client".to_owned(),
            Contender::OfficialPerTask => "official 1.2.1, client per task".to_owned(),
            Contender::Ceiling => "ceiling (raw edbx-wire)".to_owned(),
        }
    }

    /// Short name used in aggregate ids.
    pub fn tag(self) -> &'static str {
        match self {
            Contender::Edbx => "edbx",
            Contender::Official => "offs",
            Contender::OfficialPerTask => "offt",
            Contender::Ceiling => "ceil",
        }
    }

    /// Whether this contender has a distinct configuration for `workload`: a client per task
    /// is the shared client when there is one task.
    pub fn runs(self, workload: Workload) -> bool {
        match self {
            Contender::OfficialPerTask => workload.tasks() > 1,
            _ => true,
        }
    }

    /// Runs `workload` once. `run_tag` is unique per (contender, repetition). A failure to set
    /// up (e.g. connect) is returned as a run with one error.
    pub fn run(self, env: &Env<'_>, workload: Workload, run_tag: &str) -> Run {
        let outcome = match self {
            Contender::Edbx => edbx::run(env, workload, run_tag),
            Contender::Official => official::run(env, workload, run_tag, false),
            Contender::OfficialPerTask => official::run(env, workload, run_tag, true),
            Contender::Ceiling => ceiling::run(env, workload, run_tag),
        };
        outcome.unwrap_or_else(|e| Run {
            errors: 1,
            first_error: Some(format!("setup failed: {e}")),
            ..Run::default()
        })
    }
}
