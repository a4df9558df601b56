//! The subscription ledger: four writers append to 300 aggregates while a subscriber follows.
//! Mid-run the subscriber is killed (its task aborted at an arbitrary point, no clean-up, as
//! SIGKILL would) and restarted from the checkpoint it last stored, twice, and the server is
//! killed and restarted. At the end, every event the store holds — every acknowledged write
//! among them — was delivered, with its payload, per aggregate in version order, with no gap.
//!
//! Repeats: the consumer stores each event's checkpoint with the event (under one lock), and a
//! checkpoint carries the versions of the whole overlap window (up to 2,000 aggregates), so a
//! restart repeats nothing here; the documented bound (events within the overlap) is what a
//! truncated window would allow.
//!
//! Every step waits on a state (events delivered, writes acknowledged), never on a time.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use edbx::{Client, Written};
use serde_json::json;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::common::{Mode, config, server};

const WRITERS: u64 = 4;
const AGGREGATES: u64 = 300;
const TYPE: &str = "ledger";

/// What the consumer has stored: its checkpoint and what it was delivered, updated together.
#[derive(Default)]
struct Consumer {
    checkpoint: Option<String>,
    /// Versions delivered per aggregate: the last one (they must come 1, 2, 3, …).
    last: HashMap<String, u64>,
    /// Each delivered event's writer sequence number.
    payloads: HashMap<(String, u64), u64>,
    delivered: usize,
    repeats: Vec<String>,
    gaps: Vec<String>,
    /// Subscriber runs started.
    runs: u32,
}

/// One run of the subscriber, from the stored checkpoint. `page_size` 2 makes rounds long
/// enough to turn into passes through the store, so both ways of reading are killed midway.
async fn consume(client: Client, consumer: Arc<Mutex<Consumer>>, page_size: u64) {
    let stored = consumer.lock().unwrap().checkpoint.clone();
    let subscribe = client
        .subscribe()
        .aggregate_type(TYPE)
        .page_size(page_size)
        .poll_interval(Duration::from_millis(10), Duration::from_millis(200));
    let subscribe = match stored {
        Some(checkpoint) => subscribe.from_checkpoint(checkpoint),
        None => subscribe,
    };
    let mut subscription = subscribe.stream().unwrap();
    let run = {
        let mut c = consumer.lock().unwrap();
        c.runs += 1;
        c.runs
    };
    while let Some(delivered) = subscription.next().await {
        let delivered = delivered.expect("a subscription rides out failures");
        let event = &delivered.event;
        let mut c = consumer.lock().unwrap();
        let last = c.last.get(&event.aggregate_id).copied().unwrap_or(0);
        let what = format!(
            "{} v{} after v{last} (run {run}, checkpoint {})",
            event.aggregate_id, event.version, delivered.checkpoint
        );
        if event.version <= last {
            c.repeats.push(what);
        } else if event.version != last + 1 {
            c.gaps.push(what);
        } else {
            c.last.insert(event.aggregate_id.clone(), event.version);
            let seq = event.payload["s"].as_u64().expect("seq in payload");
            c.payloads
                .insert((event.aggregate_id.clone(), event.version), seq);
            c.delivered += 1;
        }
        c.checkpoint = Some(delivered.checkpoint.to_string());
    }
}

/// Kills the running subscriber (wherever it is) and starts another from the stored checkpoint.
async fn restart(
    subscriber: JoinHandle<()>,
    client: &Client,
    consumer: &Arc<Mutex<Consumer>>,
    page_size: u64,
) -> JoinHandle<()> {
    subscriber.abort();
    let _ = subscriber.await;
    tokio::spawn(consume(client.clone(), consumer.clone(), page_size))
}

/// Acknowledged writes: (aggregate id, version, sequence number).
type Acked = Vec<(String, u64, u64)>;

async fn write(client: Client, w: u64, stop: Arc<AtomicBool>, acked: Arc<AtomicUsize>) -> Acked {
    let mut ledger = Acked::new();
    let mut seq = 0u64;
    while !stop.load(Ordering::Relaxed) {
        seq += 1;
        // Spread over every aggregate, each writer on its own path through them.
        let id = format!("l{:03}", (seq * 37 + w * 101) % AGGREGATES);
        match client
            .apply(
                TYPE,
                &id,
                "posted",
                &json!({ "w": w, "s": seq * WRITERS + w }),
            )
            .await
        {
            Ok(Written::Echo(event)) => {
                ledger.push((id, event.version, seq * WRITERS + w));
                acked.fetch_add(1, Ordering::Relaxed);
            }
            Ok(Written::NoEcho) => panic!("the test server runs with verbose responses"),
            // Refused, not sent, or of unknown outcome while the server restarts: the store is
            // the truth for those; pause so that a down server is not hammered.
            Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
    ledger
}

/// Waits until `state` holds, failing after `limit` (a generous bound, not a timing claim).
async fn until(what: &str, limit: Duration, mut state: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !state() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acknowledged_event_is_delivered_in_order_through_kills_and_restarts() {
    let mut server = server(Mode {
        noise: true,
        verbose: true,
    });
    let client = Client::connect(config(&server).request_timeout(Duration::from_secs(5)))
        .await
        .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(AtomicUsize::new(0));
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| tokio::spawn(write(client.clone(), w, stop.clone(), acked.clone())))
        .collect();
    let consumer: Arc<Mutex<Consumer>> = Arc::default();
    let delivered = || consumer.lock().unwrap().delivered;
    let minute = Duration::from_secs(60);

    let restart = |subscriber, page_size| restart(subscriber, &client, &consumer, page_size);

    let mut subscriber = tokio::spawn(consume(client.clone(), consumer.clone(), 32));
    until("150 events are delivered", minute, || delivered() >= 150).await;
    subscriber = restart(subscriber, 2).await;

    until("250 writes are acknowledged", minute, || {
        acked.load(Ordering::Relaxed) >= 250
    })
    .await;
    tokio::task::block_in_place(|| {
        server.kill().unwrap();
        server.restart().unwrap();
    });
    let after_restart = delivered();
    until(
        "100 more events are delivered after the restart",
        minute,
        || delivered() >= after_restart + 100,
    )
    .await;
    subscriber = restart(subscriber, 32).await;

    until("500 writes are acknowledged", minute, || {
        acked.load(Ordering::Relaxed) >= 500
    })
    .await;
    stop.store(true, Ordering::Relaxed);
    let mut ledger = Acked::new();
    for w in writers {
        ledger.extend(w.await.unwrap());
    }

    // The truth: what the store holds.
    let mut truth: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    let stored = client
        .list()
        .aggregate_type(TYPE)
        .stream()
        .collect_all()
        .await
        .unwrap();
    for aggregate in &stored {
        let events = client
            .events(TYPE, &aggregate.aggregate_id)
            .stream()
            .collect_all()
            .await
            .unwrap();
        let seqs = events
            .iter()
            .map(|e| e.payload["s"].as_u64().unwrap())
            .collect();
        truth.insert(aggregate.aggregate_id.clone(), seqs);
    }
    let total: usize = truth.values().map(Vec::len).sum();
    assert!(
        truth.len() >= 250,
        "hundreds of aggregates: {}",
        truth.len()
    );
    until("every stored event is delivered", minute, || {
        delivered() >= total
    })
    .await;
    subscriber.abort();
    let _ = subscriber.await;

    let c = consumer.lock().unwrap();
    assert!(c.gaps.is_empty(), "gaps: {:?}", c.gaps);
    assert!(c.repeats.is_empty(), "repeats: {:?}", c.repeats);
    assert_eq!(c.delivered, total, "every stored event once");
    for (id, seqs) in &truth {
        assert_eq!(
            c.last.get(id).copied().unwrap_or(0),
            seqs.len() as u64,
            "{id}"
        );
        for (v, seq) in seqs.iter().enumerate() {
            assert_eq!(
                c.payloads.get(&(id.clone(), v as u64 + 1)),
                Some(seq),
                "{id} v{}",
                v + 1
            );
        }
    }
    for (id, version, seq) in &ledger {
        assert_eq!(
            c.payloads.get(&(id.clone(), *version)),
            Some(seq),
            "acknowledged write {id} v{version} delivered as written"
        );
    }
    eprintln!(
        "subscription ledger: {} aggregates, {total} events ({} acknowledged), 2 subscriber \
         kills, 1 server restart; gaps 0, repeats 0",
        truth.len(),
        ledger.len()
    );
}
