//! Catch-up subscriptions against the real server: order, no gaps with concurrent writers,
//! restarts from checkpoints, from now, type filters, malformed checkpoints, archived
//! aggregates, the blocking iterator and the projection helper. The ledger test with kills and
//! server restarts is in `subscribe_ledger.rs`.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use edbx::{Client, ErrorKind, FileCheckpointStore, Projection, SubscribedEvent};
use serde_json::json;

use crate::common::{Mode, client, config, server};

const MODE: Mode = Mode {
    noise: true,
    verbose: true,
};

type Versions = BTreeMap<(String, String), Vec<u64>>;

/// Every event of a subscription that ends once caught up.
async fn until_caught_up(
    subscribe: edbx::Subscribe<'_>,
) -> (Vec<SubscribedEvent>, edbx::Subscription) {
    let mut subscription = subscribe.until_caught_up(true).stream().unwrap();
    let mut events = Vec::new();
    while let Some(event) = subscription.next().await {
        events.push(event.unwrap());
    }
    assert!(subscription.is_caught_up());
    (events, subscription)
}

fn versions(events: &[SubscribedEvent]) -> Versions {
    let mut out = Versions::new();
    for e in events {
        out.entry((e.event.aggregate_type.clone(), e.event.aggregate_id.clone()))
            .or_default()
            .push(e.event.version);
    }
    out
}

fn contiguous(from: u64, to: u64) -> Vec<u64> {
    (from..=to).collect()
}

pub(crate) async fn write(client: &Client, t: &str, id: &str, n: u64) {
    client
        .apply(t, id, "noted", &json!({ "n": n }))
        .await
        .unwrap_or_else(|e| panic!("append to {t}/{id}: {e}"));
}

#[tokio::test]
async fn catches_up_from_the_beginning_in_version_order() {
    let server = server(MODE);
    let client = client(&server, true).await;
    for n in 1..=4 {
        write(&client, "orders", "o1", n).await;
        write(&client, "orders", "o2", n).await;
        write(&client, "users", "u1", n).await;
    }
    // Enough events to take several event pages (~7.5 KiB each).
    let filler = "x".repeat(300);
    for n in 1..=40 {
        client
            .apply(
                "orders",
                "big",
                "noted",
                &json!({ "n": n, "filler": filler }),
            )
            .await
            .unwrap();
    }
    let (events, subscription) = until_caught_up(client.subscribe()).await;
    let got = versions(&events);
    assert_eq!(got.len(), 4, "{got:?}");
    for (key, v) in &got {
        let n = if key.1 == "big" { 40 } else { 4 };
        assert_eq!(v, &contiguous(1, n), "versions of {key:?}");
    }
    // Each event's checkpoint parses; after the last one, and after the whole subscription
    // (whose checkpoint moved on as it caught up), nothing is left.
    for e in &events {
        e.checkpoint.as_str().parse::<edbx::Checkpoint>().unwrap();
    }
    for checkpoint in [
        &events.last().unwrap().checkpoint,
        subscription.checkpoint(),
    ] {
        let (rest, _) =
            until_caught_up(client.subscribe().from_checkpoint(checkpoint.as_str())).await;
        assert!(rest.is_empty(), "{checkpoint}: {:?}", versions(&rest));
    }
    // The payload is the one written.
    let big = events
        .iter()
        .find(|e| e.event.aggregate_id == "big" && e.event.version == 7)
        .unwrap();
    assert_eq!(big.event.payload["n"], json!(7));
}

#[tokio::test]
async fn restarts_from_any_checkpoint_without_gaps_or_repeats() {
    let server = server(MODE);
    let client = client(&server, true).await;
    for n in 1..=5 {
        write(&client, "orders", "a", n).await;
        write(&client, "orders", "b", n).await;
    }
    let (first, subscription) = until_caught_up(client.subscribe()).await;
    assert_eq!(first.len(), 10);
    let at_end = subscription.checkpoint().clone();
    let midway = first[3].checkpoint.clone();
    for n in 6..=8 {
        write(&client, "orders", "a", n).await;
        write(&client, "orders", "c", n).await;
    }
    // From the end: exactly the new events.
    let (again, _) = until_caught_up(client.subscribe().from_checkpoint(at_end.as_str())).await;
    let got = versions(&again);
    assert_eq!(got[&("orders".into(), "a".into())], contiguous(6, 8));
    assert_eq!(got[&("orders".into(), "c".into())], contiguous(1, 3));
    assert_eq!(got.len(), 2, "{got:?}");
    // From the fourth event: the rest of the first run, then the new ones. Together with the
    // first four, every version once.
    let (rest, _) = until_caught_up(client.subscribe().from_checkpoint(midway.as_str())).await;
    let mut all = first[..4].to_vec();
    all.extend(rest);
    let got = versions(&all);
    assert_eq!(got[&("orders".into(), "a".into())], contiguous(1, 8));
    assert_eq!(got[&("orders".into(), "b".into())], contiguous(1, 5));
    assert_eq!(got[&("orders".into(), "c".into())], contiguous(1, 3));
}

#[tokio::test]
async fn a_long_window_is_read_by_a_pass_from_the_floor() {
    let server = server(MODE);
    let client = client(&server, true).await;
    for n in 0..5 {
        write(&client, "orders", &format!("early{n}"), 1).await;
    }
    // An overlap of an hour keeps every write of this test inside the window.
    let hour = Duration::from_secs(3600);
    let (_, subscription) = until_caught_up(client.subscribe().overlap(hour)).await;
    let checkpoint = subscription.checkpoint().clone();
    // More aggregates changed since the checkpoint than 32 one-row pages hold: the round gives
    // way to a pass over the aggregates changed since its floor, and once that is done the
    // unchanged top ends the next round (it used to give way to a pass again, for ever).
    for n in 0..40 {
        write(&client, "orders", &format!("late{n:02}"), 1).await;
    }
    write(&client, "orders", "early0", 2).await;
    let subscribe = client
        .subscribe()
        .from_checkpoint(checkpoint.as_str())
        .overlap(hour)
        .page_size(1);
    let (events, _) = tokio::time::timeout(Duration::from_secs(120), until_caught_up(subscribe))
        .await
        .expect("the subscription catches up");
    let got = versions(&events);
    assert_eq!(got.len(), 41, "{got:?}");
    assert_eq!(got[&("orders".into(), "early0".into())], vec![2]);
    assert!(got.iter().all(|(k, v)| k.1 == "early0" || v == &[1]));
    // From the beginning too.
    let subscribe = client.subscribe().overlap(hour).page_size(1);
    let (events, _) = tokio::time::timeout(Duration::from_secs(120), until_caught_up(subscribe))
        .await
        .expect("the subscription catches up");
    assert_eq!(events.len(), 46, "5 + 1 + 40 events");
}

#[tokio::test]
async fn from_now_skips_what_is_there_and_delivers_what_comes() {
    let server = server(MODE);
    let client = client(&server, true).await;
    for n in 1..=3 {
        write(&client, "orders", "old", n).await;
    }
    let (events, subscription) = until_caught_up(client.subscribe().from_now()).await;
    assert!(
        events.is_empty(),
        "history delivered: {:?}",
        versions(&events)
    );
    let now = subscription.checkpoint().clone();
    write(&client, "orders", "old", 4).await;
    write(&client, "orders", "new", 1).await;
    let (events, _) = until_caught_up(client.subscribe().from_checkpoint(now.as_str())).await;
    let got = versions(&events);
    assert_eq!(got[&("orders".into(), "old".into())], vec![4]);
    assert_eq!(got[&("orders".into(), "new".into())], vec![1]);
    assert_eq!(got.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follows_concurrent_writers_live_without_gaps() {
    let server = server(MODE);
    let client = client(&server, true).await;
    let seen: Arc<Mutex<Vec<SubscribedEvent>>> = Arc::default();
    let mut subscription = client.subscribe().stream().unwrap();
    let collector = {
        let seen = seen.clone();
        tokio::spawn(async move {
            while let Some(event) = subscription.next().await {
                seen.lock().unwrap().push(event.unwrap());
            }
        })
    };
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let client = client.clone();
            tokio::spawn(async move {
                for n in 0..40u64 {
                    let id = format!("a{}", (n * 7 + w) % 12);
                    client
                        .apply("live", &id, "noted", &json!({ "w": w, "n": n }))
                        .await
                        .unwrap();
                }
            })
        })
        .collect();
    for w in writers {
        w.await.unwrap();
    }
    // Wait for the subscription to deliver every event written (a state, not a time).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while seen.lock().unwrap().len() < 160 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "only {} of 160 events delivered",
            seen.lock().unwrap().len()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    collector.abort();
    let events = seen.lock().unwrap().clone();
    assert_eq!(events.len(), 160, "no event delivered twice");
    let stored = client
        .list()
        .aggregate_type("live")
        .stream()
        .collect_all()
        .await
        .unwrap();
    let got = versions(&events);
    assert_eq!(got.len(), stored.len());
    for aggregate in stored {
        let key = (aggregate.aggregate_type, aggregate.aggregate_id);
        assert_eq!(got[&key], contiguous(1, aggregate.version), "{key:?}");
    }
}

#[tokio::test]
async fn follows_only_the_given_types() {
    let server = server(MODE);
    let client = client(&server, true).await;
    for t in ["alpha", "beta", "gamma"] {
        write(&client, t, "x", 1).await;
        write(&client, t, "x", 2).await;
    }
    let (events, subscription) = until_caught_up(
        client
            .subscribe()
            .aggregate_type("gamma")
            .aggregate_types(["alpha"]),
    )
    .await;
    let got = versions(&events);
    assert_eq!(
        got.keys().map(|k| k.0.as_str()).collect::<Vec<_>>(),
        ["alpha", "gamma"]
    );
    assert!(got.values().all(|v| v == &[1, 2]));
    // Its checkpoint says nothing about beta: refused for another set of types.
    let err = client
        .subscribe()
        .aggregate_type("alpha")
        .from_checkpoint(subscription.checkpoint().as_str())
        .stream()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidCheckpoint);
    assert!(err.message().contains("alpha, gamma"), "{err}");
    // The same types in another order are the same subscription.
    client
        .subscribe()
        .aggregate_types(["gamma", "alpha"])
        .from_checkpoint(subscription.checkpoint().as_str())
        .stream()
        .unwrap();
}

#[tokio::test]
async fn malformed_checkpoints_and_options_are_refused_before_sending() {
    // Nothing listens here: a refusal cannot come from the server.
    let client = Client::connect_lazy(
        edbx::Config::new()
            .host("127.0.0.1")
            .port(9)
            .token("t")
            .tenant_id("default"),
    )
    .unwrap();
    for bad in [
        "",
        "esub1;t=*",
        "esub1;t=*;f=x;p=-;w=-",
        "esub9;t=*;f=1;p=-;w=-",
    ] {
        let err = client
            .subscribe()
            .from_checkpoint(bad)
            .stream()
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidCheckpoint, "{bad:?}: {err}");
    }
    let err = client
        .subscribe()
        .aggregate_type("Bad Type")
        .stream()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    let err = client
        .subscribe()
        .poll_interval(Duration::from_secs(2), Duration::from_secs(1))
        .stream()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    let err = client
        .subscribe()
        .overlap(Duration::ZERO)
        .stream()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert_eq!(client.open_connections(), 0);
}

#[tokio::test]
async fn archived_aggregates_are_reported_and_followed_again_once_restored() {
    let server = server(MODE);
    let client = client(&server, true).await;
    for n in 1..=3 {
        write(&client, "orders", "gone", n).await;
    }
    write(&client, "orders", "kept", 1).await;
    client.archive("orders", "gone").await.unwrap();
    let (events, mut subscription) = until_caught_up(client.subscribe()).await;
    assert_eq!(versions(&events).len(), 1, "only the active aggregate");
    let unreadable = subscription.take_unreadable();
    assert_eq!(unreadable.len(), 1, "{unreadable:?}");
    assert_eq!(
        (
            unreadable[0].aggregate_id.as_str(),
            unreadable[0].version,
            unreadable[0].delivered_through
        ),
        ("gone", 3, Some(0))
    );
    let checkpoint = subscription.checkpoint().clone();
    client.restore("orders", "gone").await.unwrap();
    write(&client, "orders", "gone", 4).await;
    let (events, mut subscription) =
        until_caught_up(client.subscribe().from_checkpoint(checkpoint.as_str())).await;
    assert_eq!(
        versions(&events)[&("orders".into(), "gone".into())],
        vec![4]
    );
    assert!(subscription.take_unreadable().is_empty());
}

#[test]
fn the_blocking_iterator_catches_up() {
    let server = server(MODE);
    let db = edbx::blocking::Client::connect(config(&server)).unwrap();
    for n in 1..=3 {
        db.apply("orders", "b1", "noted", &json!({ "n": n }))
            .unwrap();
    }
    let mut subscription = db.subscribe().until_caught_up(true).stream().unwrap();
    let got: Vec<u64> = (&mut subscription)
        .map(|e| e.unwrap().event.version)
        .collect();
    assert_eq!(got, [1, 2, 3]);
    assert!(subscription.is_caught_up());
    db.apply("orders", "b1", "noted", &json!({ "n": 4 }))
        .unwrap();
    let checkpoint = subscription.checkpoint().to_string();
    let got: Vec<u64> = db
        .subscribe()
        .from_checkpoint(checkpoint)
        .until_caught_up(true)
        .stream()
        .unwrap()
        .map(|e| e.unwrap().event.version)
        .collect();
    assert_eq!(got, [4]);
}

/// One run of a projection counting events per aggregate; the versions it handled.
async fn project(
    client: &Client,
    path: &std::path::Path,
    totals: &mut BTreeMap<String, u64>,
) -> Vec<u64> {
    let mut seen = Vec::new();
    Projection::new(
        client
            .subscribe()
            .aggregate_type("orders")
            .until_caught_up(true),
        FileCheckpointStore::new(path),
    )
    .save_every(2, Duration::from_secs(1))
    .run(|delivered| {
        *totals
            .entry(delivered.event.aggregate_id.clone())
            .or_default() += 1;
        seen.push(delivered.event.version);
        std::future::ready(Ok::<(), std::convert::Infallible>(()))
    })
    .await
    .unwrap();
    seen
}

#[tokio::test]
async fn a_projection_stores_its_checkpoint_and_goes_on_from_it() {
    let server = server(MODE);
    let client = client(&server, true).await;
    let dir = std::env::temp_dir().join(format!("edbx-projection-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("orders.checkpoint");
    for n in 1..=3 {
        write(&client, "orders", "p1", n).await;
    }
    let mut totals: BTreeMap<String, u64> = BTreeMap::new();
    assert_eq!(project(&client, &path, &mut totals).await, [1, 2, 3]);
    let stored = std::fs::read_to_string(&path).unwrap();
    stored.trim().parse::<edbx::Checkpoint>().unwrap();
    assert_eq!(
        project(&client, &path, &mut totals).await,
        Vec::<u64>::new()
    );
    write(&client, "orders", "p1", 4).await;
    assert_eq!(project(&client, &path, &mut totals).await, [4]);
    assert_eq!(totals["p1"], 4);
    // A handler's failure stops the projection, keeping the checkpoint before the event.
    write(&client, "orders", "p1", 5).await;
    let err = Projection::new(
        client
            .subscribe()
            .aggregate_type("orders")
            .until_caught_up(true),
        FileCheckpointStore::new(&path),
    )
    .run(|_| std::future::ready(Err::<(), _>(std::io::Error::other("disk full"))))
    .await
    .unwrap_err();
    assert!(matches!(err, edbx::ProjectionError::Handler(_)), "{err}");
    assert_eq!(project(&client, &path, &mut totals).await, [5]);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn a_subscription_that_gave_up_keeps_failing_instead_of_ending() {
    let mut server = server(MODE);
    let client = Client::connect(
        config(&server)
            .retry(edbx::RetryOptions::none())
            .request_timeout(Duration::from_millis(300)),
    )
    .await
    .unwrap();
    write(&client, "doc", "a", 1).await;
    let mut subscription = client
        .subscribe()
        .from_beginning()
        .retry_for(Some(Duration::from_millis(500)))
        .stream()
        .unwrap();
    assert_eq!(subscription.next().await.unwrap().unwrap().event.version, 1);

    // The server stops answering: once the retries run out the stream fails, and every later
    // call says so again rather than looking like a stream that ended.
    server.pause().unwrap();
    let err = match subscription.next().await {
        Some(Err(e)) => e,
        Some(Ok(event)) => panic!("no event was written: {event:?}"),
        None => panic!("the stream ended instead of failing"),
    };
    server.resume().unwrap();
    for _ in 0..3 {
        let again = subscription
            .next()
            .await
            .expect("the failure again, not the end")
            .unwrap_err();
        assert_eq!(again.kind(), err.kind(), "{again}");
    }
}
