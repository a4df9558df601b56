//! The Python package of this workspace (`eventdbx`, distribution `edbx`, on the Rust core),
//! run by `python/bench_client.py` in an interpreter that has the wheel installed
//! (`--python`; `scripts/bench.sh` builds the release wheel into a virtual environment). The
//! script runs the same workload, ids, payloads, warm-up and barriers as the Rust drivers and
//! reports one run as JSON; its CPU time is the Python process's own.
//!
//! The same script runs the official Python client `eventdbx` 0.1.8 (`--python-official`, an
//! interpreter that has it installed), after patching its three connection bugs in memory
//! (`python/official_0_1_8.py`).

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use super::Env;
use crate::cpu::CpuTime;
use crate::stats::Run;
use crate::workload::Workload;

/// The benchmark script, found from this crate's folder.
const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/python/bench_client.py");

/// How the Python callers share one client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// OS threads sharing one `EventDBXClient` (calls release the GIL).
    Threads,
    /// asyncio tasks on one loop sharing one `AsyncEventDBXClient`.
    Asyncio,
    /// The same, on uvloop's event loop.
    AsyncioUvloop,
    /// The official `eventdbx` 0.1.8, patched to connect, from one thread.
    Official,
}

impl Mode {
    /// `--mode`, `--client` and `--loop` of the script.
    fn args(self) -> [&'static str; 3] {
        match self {
            Mode::Threads => ["threads", "edbx", "asyncio"],
            Mode::Asyncio => ["asyncio", "edbx", "asyncio"],
            Mode::AsyncioUvloop => ["asyncio", "edbx", "uvloop"],
            Mode::Official => ["threads", "official", "asyncio"],
        }
    }
}

fn command(python: &Path, env: &Env<'_>, mode: &str) -> Command {
    let t = env.target;
    let mut cmd = Command::new(python);
    cmd.arg(SCRIPT)
        .args(["--host", &t.host])
        .args(["--port", &t.port.to_string()])
        .args(["--tenant", &t.tenant])
        .args(["--mode", mode])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// Starts the script, hands it the token on stdin, and returns its JSON answer.
fn call(mut cmd: Command, token: &str) -> Result<Value, String> {
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot start {:?}: {e}", cmd.get_program()))?;
    if let Some(mut stdin) = child.stdin.take() {
        writeln!(stdin, "{token}").map_err(|e| format!("writing the token: {e}"))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| format!("waiting for the benchmark script: {e}"))?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let last = stderr.lines().last().unwrap_or("no output");
        return Err(format!("benchmark script failed ({}): {last}", out.status));
    }
    serde_json::from_slice(&out.stdout).map_err(|e| format!("benchmark script output: {e}"))
}

fn ns(value: &Value, key: &str) -> Duration {
    Duration::from_nanos(value[key].as_f64().unwrap_or(0.0).max(0.0) as u64)
}

pub fn run(env: &Env<'_>, workload: Workload, run_tag: &str, mode: Mode) -> Result<Run, String> {
    let python = match mode {
        Mode::Official => env.python_official.ok_or(
            "no interpreter with eventdbx 0.1.8 given (--python-official, or run scripts/bench.sh)",
        )?,
        _ => env
            .python
            .ok_or("no Python interpreter given (--python, or run scripts/bench.sh)")?,
    };
    let [mode_arg, client, event_loop] = mode.args();
    let op = match workload {
        Workload::Get { .. } => "get",
        Workload::Apply { .. } => "apply",
        Workload::Connect => return Err("the Python contenders do not run connect".into()),
    };
    let plan = env.plan;
    let mut cmd = command(python, env, mode_arg);
    cmd.args(["--client", client, "--loop", event_loop])
        .args(["--op", op])
        .args(["--tasks", &workload.tasks().to_string()])
        .args(["--duration-ms", &plan.duration.as_millis().to_string()])
        .args(["--warmup-ms", &plan.warmup.as_millis().to_string()])
        .args(["--preload", &plan.preload.to_string()])
        .args([
            "--events-per-aggregate",
            &plan.events_per_aggregate.to_string(),
        ])
        .args(["--run-tag", run_tag]);
    let answer = call(cmd, &env.target.token)?;
    let latencies_ns = answer["latencies_ns"]
        .as_array()
        .ok_or("benchmark script output lacks latencies")?
        .iter()
        .filter_map(Value::as_u64)
        .collect();
    Ok(Run {
        ops: answer["ops"].as_u64().unwrap_or(0),
        errors: answer["errors"].as_u64().unwrap_or(1),
        first_error: answer["first_error"].as_str().map(str::to_owned),
        elapsed: ns(&answer, "elapsed_ns"),
        cpu: CpuTime {
            user: ns(&answer, "cpu_user_ns"),
            system: ns(&answer, "cpu_system_ns"),
            switches: answer["context_switches"].as_u64().unwrap_or(0),
        },
        latencies_ns,
    })
}

/// Mean time of a Python call that the Rust core refuses before any I/O (argument passing,
/// GIL release, runtime round trip and raising the exception): the binding's own cost.
pub fn overhead(env: &Env<'_>) -> Result<Duration, String> {
    let python = env.python.ok_or("no Python interpreter given")?;
    let answer = call(command(python, env, "overhead"), &env.target.token)?;
    Ok(ns(&answer, "per_call_ns"))
}

/// A forked child's first call on a client it inherited, and a fresh client's first call with
/// its connect (medians): `(forked, fresh)`.
pub fn fork_first_call(env: &Env<'_>) -> Result<(Duration, Duration), String> {
    let python = env.python.ok_or("no Python interpreter given")?;
    let answer = call(command(python, env, "fork"), &env.target.token)?;
    Ok((ns(&answer, "forked_ns"), ns(&answer, "fresh_ns")))
}
