//! Measures the memory one pending call costs: N gets are made against a paused server (so
//! none is answered), the resident set size is read once they are all waiting, and they are
//! then left to end at their deadline. Linux only (reads `/proc/self/statm`).
//!
//! ```text
//! cargo run --release -p edbx --example pending_memory -- 100000
//! ```

use std::time::Duration;

use edbx::{Client, Config};
use edbx_testkit::{ServerOptions, TestServer};

fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("reading /proc/self/statm");
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .expect("resident pages in /proc/self/statm");
    pages * 4096
}

#[tokio::main]
async fn main() {
    let calls: usize = std::env::args()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(100_000);
    let mut server = TestServer::start(ServerOptions::default()).expect("start the server");
    let client = Client::connect(
        Config::new()
            .host(server.host())
            .port(server.port())
            .token(server.token())
            .tenant_id(server.tenant())
            .request_timeout(Duration::from_secs(20)),
    )
    .await
    .expect("connect");
    // Open the whole pool first, so that connections do not count as pending-call memory.
    let warm: Vec<_> = (0..64)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move { client.get("bench", "none").await })
        })
        .collect();
    for w in warm {
        w.await.unwrap().unwrap();
    }
    server.pause().expect("pause the server");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let before = rss_bytes();
    let mut tasks = Vec::with_capacity(calls);
    for i in 0..calls {
        let client = client.clone();
        tasks.push(tokio::spawn(async move {
            client.get("bench", &format!("g-{i}")).await.is_err()
        }));
    }
    // Let every call reach its place (queued on a connection or waiting for room).
    tokio::time::sleep(Duration::from_secs(2)).await;
    let pending = rss_bytes();
    let per_call = (pending.saturating_sub(before)) as f64 / calls as f64;
    println!(
        "{calls} pending gets: RSS {:.1} MB before, {:.1} MB with them waiting: {:.0} bytes per pending call",
        before as f64 / 1e6,
        pending as f64 / 1e6,
        per_call
    );
    server.resume().expect("resume the server");
    let mut failed = 0;
    for task in tasks {
        failed += usize::from(task.await.unwrap());
    }
    println!("all ended: {} answered, {failed} failed", calls - failed);
}
