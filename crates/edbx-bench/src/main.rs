//! `edbx-bench`: edbx side by side with the official `eventdbx-client` 1.2.1 and a raw
//! edbx-wire ceiling, against one real EventDBX server (the cached `dbx` 3.19.4 release build,
//! started through edbx-testkit).
//!
//! ```text
//! cargo run --release -p edbx-bench -- --reps 3 --duration-ms 2000
//! cargo run --release -p edbx-bench -- --subscriptions
//! ```
//!
//! Contenders alternate round-robin within each repetition (the starting contender rotates
//! between repetitions); each cell reports medians over the repetitions. A cell with any error
//! is reported as INVALID, never with numbers.

mod contenders;
mod cpu;
mod report;
mod stats;
mod subscribe;
mod workload;

use std::collections::HashMap;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};
use edbx_testkit::{ServerOptions, TestServer};

use crate::contenders::{Contender, EdbxTuning, Env};
use crate::report::{Cell, Report};
use crate::stats::{Paired, Run, Summary};
use crate::workload::{Plan, Target, Workload};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Kind {
    /// Connect + hello + Noise handshake.
    Connect,
    /// Sequential get and apply on one connection.
    Sequential,
    /// get and apply from each `--concurrency` number of tasks.
    Concurrent,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Op {
    Get,
    Apply,
}

/// Benchmarks edbx against the official Rust client and a raw-protocol ceiling on a real server.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Measured time of each run (one contender, one workload, one repetition), in ms.
    #[arg(long, default_value_t = 2_000)]
    duration_ms: u64,
    /// Unmeasured warm-up before each run, in ms (connections open, caches fill).
    #[arg(long, default_value_t = 300)]
    warmup_ms: u64,
    /// Repetitions of every run; the report shows medians.
    #[arg(long, default_value_t = 3)]
    reps: usize,
    /// Concurrent task counts of the concurrent workloads.
    #[arg(long, value_delimiter = ',', default_values_t = [16, 64])]
    concurrency: Vec<usize>,
    /// Aggregates created before timing, read by the get workloads.
    #[arg(long, default_value_t = 256)]
    preload: usize,
    /// Events an apply task appends to one aggregate before moving to a fresh one.
    #[arg(long, default_value_t = 8)]
    events_per_aggregate: u64,
    /// Contenders to run (default: all).
    #[arg(long, value_enum, value_delimiter = ',')]
    contenders: Vec<Contender>,
    /// Workload groups to run (default: all).
    #[arg(long, value_enum, value_delimiter = ',')]
    workloads: Vec<Kind>,
    /// Operations of the sequential and concurrent groups (default: both).
    #[arg(long, value_enum, value_delimiter = ',')]
    ops: Vec<Op>,
    /// Worker threads of the tokio runtime the async clients run on (default: one per core).
    #[arg(long)]
    worker_threads: Option<usize>,
    /// Override edbx's pool size (investigations only; the headline run uses the defaults).
    #[arg(long)]
    edbx_pool_size: Option<usize>,
    /// Override edbx's requests in flight per connection (investigations only).
    #[arg(long)]
    edbx_max_in_flight: Option<usize>,
    /// Python interpreter with this workspace's Python package installed, for the Python
    /// contenders (scripts/bench.sh builds one). Without it they are left out.
    #[arg(long, env = "EDBX_BENCH_PYTHON")]
    python: Option<std::path::PathBuf>,
    /// Python interpreter with the official `eventdbx` 0.1.8 installed (its own environment:
    /// both packages are imported as `eventdbx`), for the `py-official` contender, which
    /// patches its three connection bugs at run time (scripts/bench.sh builds one). Without it
    /// that contender is left out.
    #[arg(long, env = "EDBX_BENCH_PYTHON_OFFICIAL")]
    python_official: Option<std::path::PathBuf>,
    /// Instead of the table above: catch-up subscriptions against the export read path, live
    /// lag under steady writes, and the polling cost (BENCHMARKS.md, "Subscriptions"). Uses
    /// --reps; about 3 minutes.
    #[arg(long)]
    subscriptions: bool,
    /// With --subscriptions: seconds of steady writes per live-lag row.
    #[arg(long, default_value_t = 20)]
    live_secs: u64,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let report = if args.subscriptions {
        if cfg!(debug_assertions) {
            eprintln!("warning: a debug build; run with --release for meaningful numbers");
        }
        subscribe::run(args.reps, args.live_secs)
    } else {
        bench(&args)
    };
    match report {
        Ok(report) => {
            println!("{report}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("edbx-bench: {e}");
            ExitCode::FAILURE
        }
    }
}

fn workloads(args: &Args) -> Vec<Workload> {
    let kinds = if args.workloads.is_empty() {
        vec![Kind::Connect, Kind::Sequential, Kind::Concurrent]
    } else {
        args.workloads.clone()
    };
    let ops = if args.ops.is_empty() {
        vec![Op::Get, Op::Apply]
    } else {
        args.ops.clone()
    };
    let both = |tasks| {
        ops.iter().map(move |op| match op {
            Op::Get => Workload::Get { tasks },
            Op::Apply => Workload::Apply { tasks },
        })
    };
    let mut list = Vec::new();
    if kinds.contains(&Kind::Connect) {
        list.push(Workload::Connect);
    }
    if kinds.contains(&Kind::Sequential) {
        list.extend(both(1));
    }
    if kinds.contains(&Kind::Concurrent) {
        for &tasks in args.concurrency.iter().filter(|&&n| n > 1) {
            list.extend(both(tasks));
        }
    }
    list
}

/// `Python 3.11.7`, as the interpreter reports itself.
fn python_version(python: &std::path::Path) -> String {
    std::process::Command::new(python)
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_else(|e| format!("{} ({e})", python.display()))
}

fn bench(args: &Args) -> Result<String, String> {
    if cfg!(debug_assertions) {
        eprintln!("warning: a debug build; run with --release for meaningful numbers");
    }
    let plan = Plan {
        duration: Duration::from_millis(args.duration_ms),
        warmup: Duration::from_millis(args.warmup_ms),
        preload: args.preload.max(1),
        events_per_aggregate: args.events_per_aggregate.max(1),
    };
    let workloads = workloads(args);
    let contenders: Vec<Contender> = if args.contenders.is_empty() {
        if args.python.is_none() {
            eprintln!(
                "note: no --python interpreter, so the Python contenders are left out \
                 (scripts/bench.sh runs them)"
            );
        }
        if args.python_official.is_none() {
            eprintln!(
                "note: no --python-official interpreter, so the official Python client 0.1.8 \
                 is left out (scripts/bench.sh runs it)"
            );
        }
        Contender::ALL
            .into_iter()
            .filter(|c| args.python.is_some() || !c.is_python())
            .filter(|c| args.python_official.is_some() || *c != Contender::PyOfficial)
            .collect()
    } else {
        args.contenders.clone()
    };
    if args.python.is_none() && contenders.iter().any(|c| c.is_python()) {
        return Err("the Python contenders need --python (or run scripts/bench.sh)".into());
    }
    if args.python_official.is_none() && contenders.contains(&Contender::PyOfficial) {
        return Err(
            "the official Python client needs --python-official (or run scripts/bench.sh)".into(),
        );
    }
    let tuning = EdbxTuning {
        pool_size: args.edbx_pool_size,
        max_in_flight: args.edbx_max_in_flight,
    };

    let server = TestServer::start(ServerOptions::default())
        .map_err(|e| format!("cannot start the EventDBX server: {e}"))?;
    let server_version = std::process::Command::new(server.dbx_path())
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_else(|e| format!("unknown ({e})"));
    let target = Target {
        host: server.host().to_owned(),
        port: server.port(),
        token: server.token().to_owned(),
        tenant: server.tenant().to_owned(),
    };
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if let Some(threads) = args.worker_threads {
        builder.worker_threads(threads.max(1));
    }
    let runtime = builder
        .enable_all()
        .build()
        .map_err(|e| format!("tokio runtime: {e}"))?;
    let env = Env {
        target: &target,
        plan: &plan,
        runtime: &runtime,
        edbx: tuning,
        python: args.python.as_deref(),
        python_official: args.python_official.as_deref(),
    };

    eprintln!(
        "server {server_version} on {}:{}; preloading {} aggregates…",
        target.host, target.port, plan.preload
    );
    contenders::edbx::preload(&env).map_err(|e| format!("preload: {e}"))?;
    let python = contenders::python::probe(&target);
    let python_overhead = env
        .python
        .filter(|_| contenders.iter().any(|c| c.is_python()))
        .map(|_| contenders::python_edbx::overhead(&env));
    let python_fork = env
        .python
        .filter(|_| contenders.iter().any(|c| c.is_python()))
        .map(|_| contenders::python_edbx::fork_first_call(&env));

    let started = Instant::now();
    let mut runs: HashMap<(usize, Contender), Vec<Run>> = HashMap::new();
    for rep in 0..args.reps.max(1) {
        for (w, &workload) in workloads.iter().enumerate() {
            let here: Vec<Contender> = contenders
                .iter()
                .copied()
                .filter(|c| c.runs(workload))
                .collect();
            // Round-robin, starting one further along each repetition.
            for k in 0..here.len() {
                let contender = here[(k + rep) % here.len()];
                let run_tag = format!("{}-r{rep}", contender.tag());
                let run = contender.run(&env, workload, &run_tag);
                eprintln!(
                    "[{:>5.1}s] rep {} {:<20} {:<32} {:>9.1} ops/s  p50 {:>9}  errors {}{}",
                    started.elapsed().as_secs_f64(),
                    rep + 1,
                    workload.label(),
                    contender.label(tuning),
                    run.ops_per_sec(),
                    report::dur(run.percentile(0.5)),
                    run.errors,
                    run.first_error
                        .as_deref()
                        .map(|e| format!(" ({e})"))
                        .unwrap_or_default(),
                );
                runs.entry((w, contender)).or_default().push(run);
            }
        }
    }

    let mut cells = Vec::new();
    for (w, &workload) in workloads.iter().enumerate() {
        for &contender in &contenders {
            if let Some(reps) = runs.get(&(w, contender)) {
                cells.push(Cell {
                    workload,
                    contender,
                    label: contender.label(tuning),
                    summary: Summary::of(reps),
                });
            }
        }
    }
    let mut paired = Vec::new();
    for (w, &workload) in workloads.iter().enumerate() {
        for (a, b) in report::PAIRS {
            if let (Some(ra), Some(rb)) = (runs.get(&(w, a)), runs.get(&(w, b))) {
                paired.push(report::PairedCell {
                    workload,
                    a,
                    b,
                    paired: Paired::of(ra, rb),
                });
            }
        }
    }
    let mut machine = report::machine_facts();
    machine.push((
        "server".to_owned(),
        format!("{server_version} (release build, Noise on, verbose responses, loopback)"),
    ));
    machine.push((
        "contenders".to_owned(),
        format!(
            "edbx {} (this workspace), eventdbx-client 1.2.1, ceiling = blocking loop over edbx-wire{}{}",
            env!("CARGO_PKG_VERSION"),
            match &args.python {
                Some(python) => format!(
                    ", python edbx = this workspace's Python package (release wheel) run by {}",
                    python_version(python)
                ),
                None => String::new(),
            },
            match &args.python_official {
                Some(python) => format!(
                    ", python eventdbx 0.1.8 = the official Python client from the Python index, \
                     its three connection bugs patched at run time, run by {}",
                    python_version(python)
                ),
                None => String::new(),
            }
        ),
    ));
    machine.push((
        "tokio runtime".to_owned(),
        match args.worker_threads {
            Some(n) => format!("multi-thread, {n} worker thread(s)"),
            None => "multi-thread, default worker threads (one per core)".to_owned(),
        },
    ));
    machine.push((
        "plan".to_owned(),
        format!(
            "{} ms per run after {} ms warm-up, {} repetitions, {} preloaded aggregates, {} events per applied aggregate; total {:.0} s",
            args.duration_ms,
            args.warmup_ms,
            args.reps.max(1),
            plan.preload,
            plan.events_per_aggregate,
            started.elapsed().as_secs_f64()
        ),
    ));
    let report = Report {
        machine,
        cells: &cells,
        paired: &paired,
        python: (contenders::python::LABEL, python),
        python_overhead,
        python_fork,
        workloads: &workloads,
    };
    drop(server);
    Ok(report.render())
}
