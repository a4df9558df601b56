//! Import and export throughput of the `edbx` binary against what the server takes from the
//! library itself with the same concurrency (the library runs at 93–100 % of the raw-protocol
//! ceiling in BENCHMARKS.md), each run on a fresh real server.
//!
//! ```text
//! cargo bench -p edbx-cli --bench import_export
//! ```
//!
//! Prints a Markdown table (progress on stderr). Datasets: 20,000 aggregates of one event
//! (creates), and 1,000 aggregates of 8 events (one create and 7 appends each).

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use edbx::{Client, Config};
use edbx_testkit::{ServerOptions, TestServer};
use serde_json::{Value, json};

const EDBX: &str = env!("CARGO_BIN_EXE_edbx");
const CONCURRENCY: usize = 16;

fn start() -> TestServer {
    TestServer::start(ServerOptions::default())
        .unwrap_or_else(|e| panic!("cannot start the EventDBX server: {e}"))
}

fn config(server: &TestServer) -> Config {
    Config::new()
        .host(server.host())
        .port(server.port())
        .token(server.token())
        .tenant_id(server.tenant())
        .request_timeout(Duration::from_secs(60))
}

fn edbx(server: &TestServer, args: &[&str]) -> Value {
    let output = Command::new(EDBX)
        .args(args)
        .env("EVENTDBX_HOST", server.host())
        .env("EVENTDBX_PORT", server.port().to_string())
        .env("EVENTDBX_TOKEN", server.token())
        .env("EVENTDBX_TENANT_ID", server.tenant())
        .output()
        .expect("run edbx");
    assert!(
        output.status.success(),
        "edbx {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap_or(Value::Null)
}

fn dataset(aggregates: usize, events: usize) -> Vec<Value> {
    // Events of an aggregate spread through the file, as in an export of many writers.
    (0..events)
        .flat_map(|step| {
            (0..aggregates).map(move |i| {
                json!({
                    "aggregate_type": "bench", "aggregate_id": format!("a-{i}"),
                    "event_type": "step.done",
                    "payload": {"step": step, "customer": format!("customer {i}"), "total": i as f64 * 1.25},
                })
            })
        })
        .collect()
}

/// The same lines written by the library: 16 tasks, each aggregate's events in order, a create
/// for the first event and appends after it (what `edbx import` sends). Returns lines/s.
fn library_import(server: &TestServer, lines: &[Value]) -> f64 {
    let mut by_aggregate: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for line in lines {
        by_aggregate
            .entry(line["aggregate_id"].as_str().unwrap().to_owned())
            .or_default()
            .push(line.clone());
    }
    let work: Vec<Vec<Value>> = by_aggregate.into_values().collect();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let client = Client::connect(config(server)).await.unwrap();
        let work = Arc::new(std::sync::Mutex::new(work));
        let started = Instant::now();
        let tasks: Vec<_> = (0..CONCURRENCY)
            .map(|_| {
                let (client, work) = (client.clone(), work.clone());
                tokio::spawn(async move {
                    loop {
                        let Some(events) = work.lock().unwrap().pop() else {
                            return;
                        };
                        for (n, e) in events.iter().enumerate() {
                            let (t, id, kind) = (
                                e["aggregate_type"].as_str().unwrap(),
                                e["aggregate_id"].as_str().unwrap(),
                                e["event_type"].as_str().unwrap(),
                            );
                            if n == 0 {
                                client.create(t, id, kind, &e["payload"]).await.unwrap();
                            } else {
                                client.apply(t, id, kind, &e["payload"]).await.unwrap();
                            }
                        }
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
        lines.len() as f64 / started.elapsed().as_secs_f64()
    })
}

/// Every event read by the library: 8 aggregates at a time, as `edbx export` reads.
fn library_export(server: &TestServer) -> (u64, f64) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let client = Client::connect(config(server)).await.unwrap();
        let started = Instant::now();
        let mut ids = Vec::new();
        let mut rows = client.list().stream();
        while let Some(row) = rows.next().await {
            let row = row.unwrap();
            ids.push((row.aggregate_type, row.aggregate_id));
        }
        let ids = Arc::new(std::sync::Mutex::new(ids));
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let (client, ids) = (client.clone(), ids.clone());
                tokio::spawn(async move {
                    let mut count = 0u64;
                    loop {
                        let Some((t, id)) = ids.lock().unwrap().pop() else {
                            return count;
                        };
                        let mut events = client.events(&t, &id).stream();
                        while let Some(event) = events.next().await {
                            event.unwrap();
                            count += 1;
                        }
                    }
                })
            })
            .collect();
        let mut count = 0;
        for task in tasks {
            count += task.await.unwrap();
        }
        (count, count as f64 / started.elapsed().as_secs_f64())
    })
}

fn write_lines(path: &Path, lines: &[Value]) {
    let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
    std::fs::write(path, text).unwrap();
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    println!(
        "| dataset | `edbx import` (16 at once) | library, same writes (16 tasks) | import / library |"
    );
    println!("|---|--:|--:|--:|");
    let mut exported = None;
    for (name, aggregates, events) in [
        ("20,000 aggregates × 1 event (creates)", 20_000, 1),
        (
            "1,000 aggregates × 8 events (1 create + 7 appends each)",
            1_000,
            8,
        ),
    ] {
        let lines = dataset(aggregates, events);
        let input = dir.path().join(format!("{aggregates}x{events}.ndjson"));
        write_lines(&input, &lines);
        eprintln!("bench: {name}: edbx import");
        let server = start();
        let summary = edbx(
            &server,
            &[
                "import",
                input.to_str().unwrap(),
                "--concurrency",
                "16",
                "--progress",
                "never",
            ],
        );
        assert_eq!(summary["acked"], lines.len(), "{summary}");
        let cli = lines.len() as f64 / summary["seconds"].as_f64().unwrap();
        eprintln!("bench: {name}: library");
        let library = library_import(&start(), &lines);
        println!(
            "| {name} | {cli:.0} lines/s | {library:.0} lines/s | {:.0} % |",
            cli / library * 100.0
        );
        if events > 1 {
            exported = Some(server);
        }
    }
    let server = exported.expect("the 8-event dataset's server");
    eprintln!("bench: export");
    let out = dir.path().join("export.ndjson");
    let started = Instant::now();
    edbx(
        &server,
        &[
            "export",
            "--out",
            out.to_str().unwrap(),
            "--progress",
            "never",
        ],
    );
    let seconds = started.elapsed().as_secs_f64();
    let written = std::fs::read_to_string(&out).unwrap().lines().count();
    let (read, library) = library_export(&server);
    assert_eq!(written as u64, read);
    println!();
    println!(
        "| export | `edbx export` (8 aggregates at once) | library, same reads | export / library |"
    );
    println!("|---|--:|--:|--:|");
    println!(
        "| {written} events of 1,000 aggregates | {:.0} events/s | {library:.0} events/s | {:.0} % |",
        written as f64 / seconds,
        written as f64 / seconds / library * 100.0
    );
}
