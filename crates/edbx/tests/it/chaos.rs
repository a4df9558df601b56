//! Chaos with a ledger: 16 writers append through one client while the server is killed and
//! restarted and a proxy cuts, corrupts and black-holes connections. Afterwards every writer's
//! events are read back and checked against what the client told each writer:
//!
//! * acknowledged writes: each present exactly once (lost = 0, duplicated = 0);
//! * writes refused or provably never sent: absent;
//! * writes of unknown outcome: present at most once (counted).
//!
//! `EDBX_CHAOS_SECONDS` (default 20) sets how long the faults run; `scripts/chaos.sh` runs a
//! longer variant and prints the figures.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use edbx::{Client, ErrorKind};
use serde_json::json;
use tokio::time::Instant;

use crate::common::config;
use crate::proxy::proxied_client;

const WRITERS: usize = 16;

#[derive(Default, Debug)]
struct Ledger {
    acked: BTreeSet<u64>,
    unknown: BTreeSet<u64>,
    not_applied: BTreeSet<u64>,
}

#[derive(Debug, Default)]
struct Figures {
    acked: usize,
    unknown: usize,
    unknown_landed: usize,
    not_applied: usize,
    lost: usize,
    duplicated: usize,
    applied_but_refused: usize,
    kills: usize,
    cuts: usize,
    corruptions: usize,
    black_holes: usize,
}

async fn writer(client: Client, n: usize, stop: Arc<AtomicBool>) -> Ledger {
    let mut ledger = Ledger::default();
    let id = format!("w{n:02}");
    let mut seq = 0u64;
    while !stop.load(Ordering::Relaxed) {
        seq += 1;
        let payload = json!({"writer": n, "seq": seq});
        match client.apply("chaos", &id, "wrote", &payload).await {
            Ok(_) => {
                ledger.acked.insert(seq);
            }
            Err(e) if e.outcome_unknown() => {
                ledger.unknown.insert(seq);
            }
            Err(e) => {
                // Everything else was refused by the server or never written.
                assert!(
                    !e.was_sent() || e.kind() == ErrorKind::Server,
                    "a written request reported as {:?}: {e}",
                    e.kind()
                );
                ledger.not_applied.insert(seq);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
    ledger
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_survive_kills_and_network_faults_exactly_once() {
    let seconds: u64 = std::env::var("EDBX_CHAOS_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    let (mut server, proxy, client) =
        proxied_client(|config| config.request_timeout(Duration::from_secs(2))).await;

    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..WRITERS)
        .map(|n| tokio::spawn(writer(client.clone(), n, stop.clone())))
        .collect();

    // The faults, in a fixed rotation so that every kind happens in every run.
    let mut figures = Figures::default();
    let started = Instant::now();
    let mut round = 0u64;
    while started.elapsed() < Duration::from_secs(seconds) || figures.kills < 3 {
        tokio::time::sleep(Duration::from_millis(700)).await;
        match round % 5 {
            0 | 3 => {
                server.kill().unwrap();
                tokio::time::sleep(Duration::from_millis(300)).await;
                server.restart().unwrap();
                figures.kills += 1;
            }
            1 => {
                proxy.cut_all();
                figures.cuts += 1;
            }
            2 => {
                proxy.corrupt_next();
                figures.corruptions += 1;
            }
            _ => {
                proxy.black_hole_open_connections();
                figures.black_holes += 1;
            }
        }
        round += 1;
    }
    // Let the last faults settle, then stop the writers.
    tokio::time::sleep(Duration::from_secs(4)).await;
    stop.store(true, Ordering::Relaxed);
    let mut ledgers = Vec::new();
    for w in writers {
        ledgers.push(w.await.unwrap());
    }

    // Read back directly from the server.
    let reader = Client::connect(config(&server)).await.unwrap();
    for (n, ledger) in ledgers.iter().enumerate() {
        let events = reader
            .events("chaos", &format!("w{n:02}"))
            .stream()
            .collect_all()
            .await
            .unwrap();
        let versions: Vec<u64> = events.iter().map(|e| e.version).collect();
        assert_eq!(
            versions,
            (1..=events.len() as u64).collect::<Vec<_>>(),
            "versions of writer {n} are contiguous"
        );
        let mut seen: BTreeMap<u64, usize> = BTreeMap::new();
        for event in &events {
            let seq = event.payload["seq"].as_u64().expect("seq in payload");
            *seen.entry(seq).or_default() += 1;
        }
        figures.duplicated += seen.values().filter(|&&c| c > 1).count();
        figures.lost += ledger
            .acked
            .iter()
            .filter(|s| !seen.contains_key(s))
            .count();
        figures.applied_but_refused += ledger
            .not_applied
            .iter()
            .filter(|s| seen.contains_key(s))
            .count();
        figures.unknown_landed += ledger
            .unknown
            .iter()
            .filter(|s| seen.contains_key(s))
            .count();
        figures.acked += ledger.acked.len();
        figures.unknown += ledger.unknown.len();
        figures.not_applied += ledger.not_applied.len();
    }
    eprintln!(
        "chaos {seconds} s: {} writers, {} kills, {} cuts, {} corruptions, {} black holes; \
         acked {}, outcome unknown {} (landed {}), not applied {}; lost {}, duplicated {}, \
         applied although refused {}",
        WRITERS,
        figures.kills,
        figures.cuts,
        figures.corruptions,
        figures.black_holes,
        figures.acked,
        figures.unknown,
        figures.unknown_landed,
        figures.not_applied,
        figures.lost,
        figures.duplicated,
        figures.applied_but_refused,
    );
    assert!(figures.kills >= 3);
    assert!(figures.acked > 0, "some writes went through");
    assert_eq!(figures.lost, 0, "acknowledged writes lost: {figures:?}");
    assert_eq!(figures.duplicated, 0, "writes applied twice: {figures:?}");
    assert_eq!(
        figures.applied_but_refused, 0,
        "writes reported as not applied were applied: {figures:?}"
    );
}
