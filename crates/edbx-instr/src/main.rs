//! `edbx-instr`: client instructions and heap allocations per call, for edbx and for the
//! raw-protocol ceiling, against a real server — numbers that do not drift with the machine's
//! load, unlike wall-clock benchmarks.
//!
//! It starts a test server, then runs itself once per (operation, client) under
//! `valgrind --tool=callgrind`, collecting only inside the measured loop (`--toggle-collect`),
//! so the count is the client's own work per call (the server is another process, and kernel
//! work is not counted). Allocations are counted by a counting global allocator over the same
//! loop. The edbx client measured is `edbx::blocking::Client`: the engine on a current-thread
//! runtime, so its driver tasks run inside the loop and are counted.
//!
//! ```text
//! cargo run --release -p edbx-instr                      # the table
//! cargo run --release -p edbx-instr -- --check           # and compare with baseline.json
//! cargo run --release -p edbx-instr -- --write-baseline  # record the current counts
//! EDBX_INSTR_KEEP=1 cargo run --release -p edbx-instr     # keep the callgrind files
//! EDBX_INSTR_BASELINE=path/baseline.json …                # another baseline file
//! ```

use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use edbx_instr::raw;
use edbx_testkit::{ServerOptions, TestServer};
use edbx_wire::{AppendEvent, GetAggregate, ListAggregates, Request, Response};
use serde_json::{Value, json};

/// Counts allocations while `COUNTING` is on.
struct CountingAllocator;

static COUNTING: AtomicBool = AtomicBool::new(false);
static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

// SAFETY: every call is forwarded to the system allocator unchanged.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: forwarded as is.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded as is.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: forwarded as is.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

const AGGREGATE_TYPE: &str = "instr";
/// Aggregates preloaded for the get and list workloads.
const PRELOAD: usize = 64;
/// Rows per listed page.
const PAGE: u64 = 20;
/// Calls before the measured loop (connections open, caches and buffers grow).
const WARM_UP: u64 = 50;
/// Where the recorded counts live, beside this crate's manifest.
const BASELINE: &str = "baseline.json";
/// How far a count may rise above the baseline before `--check` fails: compiler versions move
/// counts by a few percent; a regression worth stopping for moves them more.
const TOLERANCE: f64 = 0.10;

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Op {
    Get,
    /// The same get, its state then read (the state is parsed when first read).
    GetState,
    /// A get whose JSON is handed on unparsed (`Get::json`, what the Python binding does).
    GetJson,
    Apply,
    List,
}

impl Op {
    const ALL: [Op; 5] = [Op::Get, Op::GetState, Op::GetJson, Op::Apply, Op::List];

    fn name(self) -> &'static str {
        match self {
            Op::Get => "get",
            Op::GetState => "get-state",
            Op::GetJson => "get-json",
            Op::Apply => "apply",
            Op::List => "list",
        }
    }

    fn parse(name: &str) -> Option<Op> {
        Op::ALL.into_iter().find(|op| op.name() == name)
    }

    /// Calls measured: enough to average out one-offs, few enough to keep valgrind quick
    /// (an append waits ~25 ms for the server's disk).
    fn calls(self) -> u64 {
        match self {
            Op::Get | Op::GetState | Op::GetJson => 2_000,
            Op::Apply => 100,
            Op::List => 300,
        }
    }

    fn what(self) -> &'static str {
        match self {
            Op::Get => "get of one aggregate (~300 B of state), parsed into `Aggregate`",
            Op::GetState => "the same get, then its state read (parsed on first read)",
            Op::GetJson => "the same get, its JSON handed on unparsed (`Get::json`)",
            Op::Apply => "apply of a small event",
            Op::List => "list of a page of 20 aggregates",
        }
    }
}

const CLIENTS: [&str; 2] = ["edbx", "ceiling"];

/// Where the server is, for a measuring child.
struct Target {
    host: String,
    port: u16,
    token: String,
    tenant: String,
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let outcome = match args.first().map(String::as_str) {
        Some("measure") => measure(&args[1..]),
        _ => drive(&args),
    };
    match outcome {
        Ok(code) => code,
        Err(e) => {
            eprintln!("edbx-instr: {e}");
            ExitCode::FAILURE
        }
    }
}

// ----- the driver: a server, then one valgrind run per cell -----

fn drive(args: &[String]) -> Result<ExitCode, String> {
    let check = args.iter().any(|a| a == "--check");
    let write = args.iter().any(|a| a == "--write-baseline");
    if let Some(other) = args
        .iter()
        .find(|a| !matches!(a.as_str(), "--check" | "--write-baseline"))
    {
        return Err(format!(
            "unknown argument {other:?} (use --check or --write-baseline)"
        ));
    }
    let valgrind = Command::new("valgrind").arg("--version").output();
    if !valgrind.is_ok_and(|o| o.status.success()) {
        return Err("valgrind is not installed (Debian: apt-get install valgrind)".into());
    }
    let server = TestServer::start(ServerOptions::default()).map_err(|e| e.to_string())?;
    let target = Target {
        host: server.host().to_owned(),
        port: server.port(),
        token: server.token().to_owned(),
        tenant: server.tenant().to_owned(),
    };
    preload(&target)?;
    let me = std::env::current_exe().map_err(|e| e.to_string())?;
    let scratch = std::env::temp_dir().join(format!("edbx-instr-{}", std::process::id()));
    std::fs::create_dir_all(&scratch).map_err(|e| e.to_string())?;

    let mut counts: BTreeMap<String, Counts> = BTreeMap::new();
    for op in Op::ALL {
        for client in CLIENTS {
            let cell = run_cell(&me, &scratch, &target, op, client)?;
            eprintln!(
                "{:>5} {:>7}: {:>9.0} instructions, {:>6.1} allocations per call",
                op.name(),
                client,
                cell.instructions,
                cell.allocations
            );
            counts.insert(format!("{}/{client}", op.name()), cell);
        }
    }
    if std::env::var_os("EDBX_INSTR_KEEP").is_some() {
        eprintln!(
            "edbx-instr: callgrind files kept in {} (callgrind_annotate FILE)",
            scratch.display()
        );
    } else {
        let _ = std::fs::remove_dir_all(&scratch);
    }
    drop(server);

    println!("{}", table(&counts));
    // The path baked in at build time names the checkout that built the binary, which is
    // another one when checkouts share a target folder: scripts/instr.sh names its own.
    let baseline_path = std::env::var_os("EDBX_INSTR_BASELINE")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join(BASELINE));
    if write {
        let json = serde_json::to_string_pretty(&baseline_json(&counts)).expect("plain JSON");
        std::fs::write(&baseline_path, json + "\n").map_err(|e| e.to_string())?;
        eprintln!("edbx-instr: wrote {}", baseline_path.display());
    }
    if check {
        return compare(&counts, &baseline_path);
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Clone, Copy)]
struct Counts {
    instructions: f64,
    allocations: f64,
}

fn preload(target: &Target) -> Result<(), String> {
    let mut conn = raw::Conn::open(&target.host, target.port, &target.token, &target.tenant)?;
    for i in 0..PRELOAD {
        let state = json!({
            "customer": format!("customer-{i:04}"),
            "total": 42.15 + i as f64,
            "status": "paid",
            "items": [{"sku": "A-1", "qty": 2}, {"sku": "B-7", "qty": 1}],
            "note": "a state of about three hundred bytes, like the wall-clock benchmark's",
        });
        let request = Request::AppendEvent(AppendEvent::new(
            AGGREGATE_TYPE,
            format!("a{i:04}"),
            "created",
            state.to_string(),
        ));
        if let Response::Error(e) = conn.call(&request)? {
            return Err(format!("preload: {}: {}", e.code, e.message));
        }
    }
    Ok(())
}

fn run_cell(
    me: &Path,
    scratch: &Path,
    target: &Target,
    op: Op,
    client: &str,
) -> Result<Counts, String> {
    let out_file = scratch.join(format!("callgrind.{}.{client}", op.name()));
    let output = Command::new("valgrind")
        .arg("--tool=callgrind")
        .arg(format!("--callgrind-out-file={}", out_file.display()))
        .arg("--toggle-collect=*measured_calls*")
        .arg("--trace-children=no")
        .arg(me)
        .args(["measure", op.name(), client])
        .args([&target.host, &target.port.to_string(), &target.tenant])
        .env("EDBX_INSTR_TOKEN", &target.token)
        .output()
        .map_err(|e| format!("cannot run valgrind: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "{} {client} under valgrind failed: {}",
            op.name(),
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let report: Value = serde_json::from_str(stdout.trim())
        .map_err(|e| format!("bad report from the measuring run ({e}): {stdout}"))?;
    let calls = report["calls"].as_u64().unwrap_or(0).max(1) as f64;
    let allocations = report["allocations"].as_u64().unwrap_or(0) as f64;
    let instructions = total_instructions(&out_file)? as f64;
    Ok(Counts {
        instructions: instructions / calls,
        allocations: allocations / calls,
    })
}

/// The `totals:` (or `summary:`) line of a callgrind output file: instructions (Ir) collected.
fn total_instructions(file: &PathBuf) -> Result<u64, String> {
    let text = std::fs::read_to_string(file).map_err(|e| format!("{}: {e}", file.display()))?;
    text.lines()
        .rev()
        .find_map(|line| {
            line.strip_prefix("totals:")
                .or_else(|| line.strip_prefix("summary:"))
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|n| n.parse().ok())
        })
        .ok_or_else(|| format!("no totals in {}", file.display()))
}

fn table(counts: &BTreeMap<String, Counts>) -> String {
    let mut out = String::from(
        "| operation | edbx instructions/call | ceiling instructions/call | edbx / ceiling | edbx allocations/call | ceiling allocations/call |\n|---|--:|--:|--:|--:|--:|\n",
    );
    for op in Op::ALL {
        let edbx = counts[&format!("{}/edbx", op.name())];
        let ceiling = counts[&format!("{}/ceiling", op.name())];
        out.push_str(&format!(
            "| {} | {:.0} | {:.0} | {:.2}× | {:.1} | {:.1} |\n",
            op.what(),
            edbx.instructions,
            ceiling.instructions,
            edbx.instructions / ceiling.instructions,
            edbx.allocations,
            ceiling.allocations,
        ));
    }
    out
}

fn baseline_json(counts: &BTreeMap<String, Counts>) -> Value {
    let cells: serde_json::Map<String, Value> = counts
        .iter()
        .map(|(cell, c)| {
            (
                cell.clone(),
                json!({"instructions": c.instructions.round(), "allocations": (c.allocations * 10.0).round() / 10.0}),
            )
        })
        .collect();
    json!({
        "note": "client instructions (callgrind Ir) and heap allocations per call; cargo run --release -p edbx-instr -- --write-baseline",
        "tolerance": TOLERANCE,
        "cells": cells,
    })
}

fn compare(counts: &BTreeMap<String, Counts>, baseline_path: &Path) -> Result<ExitCode, String> {
    let text = std::fs::read_to_string(baseline_path)
        .map_err(|e| format!("{}: {e}", baseline_path.display()))?;
    let baseline: Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
    let mut failed = false;
    for (cell, now) in counts.iter().filter(|(cell, _)| cell.ends_with("/edbx")) {
        let Some(was) = baseline["cells"].get(cell) else {
            return Err(format!("{cell} is not in {}", baseline_path.display()));
        };
        for (what, now, was) in [
            (
                "instructions",
                now.instructions,
                was["instructions"].as_f64(),
            ),
            ("allocations", now.allocations, was["allocations"].as_f64()),
        ] {
            let was = was.ok_or_else(|| format!("{cell}: no {what} in the baseline"))?;
            // Allocations are small whole numbers: allow half of one on top of the tolerance.
            let limit = was * (1.0 + TOLERANCE) + if what == "allocations" { 0.5 } else { 0.0 };
            let verdict = if now > limit { "REGRESSED" } else { "ok" };
            eprintln!(
                "check {cell} {what}: {now:.1} against {was:.1} (limit {limit:.1}): {verdict}"
            );
            failed |= now > limit;
        }
    }
    if failed {
        eprintln!(
            "edbx-instr: the client does more per call than {} records; find out why (callgrind_annotate \
             on a --callgrind-out-file), or record the new counts with --write-baseline if it is worth it",
            baseline_path.display()
        );
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

// ----- the measuring child (under valgrind) -----

fn measure(args: &[String]) -> Result<ExitCode, String> {
    let [op, client, host, port, tenant] = args else {
        return Err("usage: edbx-instr measure OP CLIENT HOST PORT TENANT".into());
    };
    let op = Op::parse(op).ok_or_else(|| format!("unknown operation {op:?}"))?;
    let target = Target {
        host: host.clone(),
        port: port.parse().map_err(|_| format!("bad port {port:?}"))?,
        token: std::env::var("EDBX_INSTR_TOKEN").map_err(|_| "EDBX_INSTR_TOKEN is not set")?,
        tenant: tenant.clone(),
    };
    let mut call: Calls = match client.as_str() {
        "edbx" => edbx_calls(&target, op)?,
        "ceiling" => ceiling_calls(&target, op)?,
        other => return Err(format!("unknown client {other:?}")),
    };
    for i in 0..WARM_UP {
        call(i)?;
    }
    let calls = op.calls();
    let allocations = measured_calls(&mut call, WARM_UP, calls)?;
    println!("{}", json!({"calls": calls, "allocations": allocations}));
    Ok(ExitCode::SUCCESS)
}

/// The loop callgrind collects in (`--toggle-collect=*measured_calls*`): calls
/// `first..first + calls`, counting allocations.
#[inline(never)]
fn measured_calls(
    call: &mut dyn FnMut(u64) -> Result<(), String>,
    first: u64,
    calls: u64,
) -> Result<u64, String> {
    ALLOCATIONS.store(0, Ordering::Relaxed);
    COUNTING.store(true, Ordering::Relaxed);
    let outcome = (first..first + calls).try_for_each(&mut *call);
    COUNTING.store(false, Ordering::Relaxed);
    outcome.map(|()| ALLOCATIONS.load(Ordering::Relaxed))
}

/// One client's call number `i`, for the measured loop.
type Calls = Box<dyn FnMut(u64) -> Result<(), String>>;

fn get_id(i: u64) -> String {
    format!("a{:04}", i % PRELOAD as u64)
}

fn apply_payload(i: u64) -> Value {
    json!({"n": i, "status": "noted"})
}

fn edbx_calls(target: &Target, op: Op) -> Result<Calls, String> {
    let config = edbx::Config::new()
        .host(target.host.clone())
        .port(target.port)
        .token(target.token.clone())
        .tenant_id(target.tenant.clone());
    let db = edbx::blocking::Client::connect(config).map_err(|e| e.to_string())?;
    let apply_id = format!("apply-edbx-{}", std::process::id());
    Ok(Box::new(move |i| {
        let done = match op {
            Op::Get => db
                .get(AGGREGATE_TYPE, &get_id(i))
                .map(|found| found.map(|a| a.version)),
            Op::GetState => db
                .get(AGGREGATE_TYPE, &get_id(i))
                .map(|found| found.map(|a| a.state.len() as u64)),
            Op::GetJson => db
                .run(db.as_async().get(AGGREGATE_TYPE, &get_id(i)).json())
                .map(|found| found.map(|json| json.len() as u64)),
            Op::Apply => db
                .apply(AGGREGATE_TYPE, &apply_id, "noted", &apply_payload(i))
                .map(|_| None),
            Op::List => db
                .list()
                .take(PAGE)
                .page()
                .map(|page| Some(page.items.len() as u64)),
        };
        done.map(drop).map_err(|e| e.to_string())
    }))
}

fn ceiling_calls(target: &Target, op: Op) -> Result<Calls, String> {
    let mut conn = raw::Conn::open(&target.host, target.port, &target.token, &target.tenant)?;
    let apply_id = format!("apply-ceiling-{}", std::process::id());
    Ok(Box::new(move |i| {
        let request = match op {
            Op::Get | Op::GetState | Op::GetJson => {
                Request::GetAggregate(GetAggregate::new(AGGREGATE_TYPE, get_id(i)))
            }
            Op::Apply => Request::AppendEvent(AppendEvent::new(
                AGGREGATE_TYPE,
                apply_id.clone(),
                "noted",
                apply_payload(i).to_string(),
            )),
            Op::List => Request::ListAggregates({
                let mut list = ListAggregates::new();
                list.take = Some(PAGE);
                list
            }),
        };
        match conn.call(&request)? {
            Response::Error(e) => Err(format!("{}: {}", e.code, e.message)),
            _ => Ok(()),
        }
    }))
}
