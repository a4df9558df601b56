//! The blocking client, from plain threads, against the real server.

use std::time::Duration;

use crate::common::{ALL_MODES, config, server};
use edbx::blocking::Client;
use edbx::{ErrorKind, NewEvent};
use serde_json::json;

#[test]
fn blocking_calls_return_results_and_listings_iterate() {
    let server = server(ALL_MODES[0]);
    let db = Client::connect(config(&server)).unwrap();
    let created = db
        .create("orders", "b-1", "created", &json!({"total": 1}))
        .unwrap();
    assert_eq!(created.require_echo().unwrap().version, 1);
    db.send_event(
        NewEvent::new("orders", "b-1", "order.paid", r#"{"status":"paid"}"#).note("till"),
    )
    .unwrap();
    for i in 0..5 {
        db.create(
            "orders",
            &format!("b-{}", i + 2),
            "created",
            &json!({"i": i}),
        )
        .unwrap();
    }
    let ids: Vec<String> = db
        .list()
        .aggregate_type("orders")
        .take(2)
        .into_iter()
        .map(|a| a.unwrap().aggregate_id)
        .collect();
    assert_eq!(ids, ["b-1", "b-2", "b-3", "b-4", "b-5", "b-6"]);
    assert_eq!(
        db.list()
            .aggregate_type("orders")
            .limit(3)
            .into_iter()
            .count(),
        3
    );
    let page = db.list().aggregate_type("orders").take(4).page().unwrap();
    assert_eq!(page.items.len(), 4);

    let events: Vec<_> = db
        .events("orders", "b-1")
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert_eq!(events.len(), 2);
    assert!(events[1].is_type("order.paid"));
    assert_eq!(db.get("orders", "b-1").unwrap().unwrap().version, 2);
    assert!(db.verify("orders", "b-1").unwrap().is_intact());
    db.archive("orders", "b-1", Some("done")).unwrap();
    assert!(db.get("orders", "b-1").unwrap().unwrap().archived);
    db.restore("orders", "b-1").unwrap();
    let snapshot = db.create_snapshot("orders", "b-1", None).unwrap();
    assert_eq!(
        db.snapshots_of("orders", "b-1").unwrap()[0].snapshot_id,
        snapshot.snapshot_id
    );
    // Any async builder still runs, with its options.
    db.run(
        db.as_async()
            .apply("orders", "b-2", "noted", &json!({"n": 1}))
            .note("via run"),
    )
    .unwrap();
}

#[test]
fn blocking_calls_from_several_threads_land_once_each() {
    let server = server(ALL_MODES[0]);
    let db = Client::connect(config(&server)).unwrap();
    db.create("orders", "b-1", "created", &json!({"total": 1}))
        .unwrap();
    std::thread::scope(|scope| {
        for t in 0..4 {
            let db = &db;
            scope.spawn(move || {
                for seq in 0..5 {
                    db.apply("orders", "b-1", "noted", &json!({"t": t, "seq": seq}))
                        .unwrap();
                    assert!(db.get("orders", "b-1").unwrap().is_some());
                }
            });
        }
    });
    assert_eq!(db.get("orders", "b-1").unwrap().unwrap().version, 21);
    let mut seen: Vec<(u64, u64)> = db
        .events("orders", "b-1")
        .into_iter()
        .skip(1)
        .map(|e| {
            let p = e.unwrap().payload;
            (p["t"].as_u64().unwrap(), p["seq"].as_u64().unwrap())
        })
        .collect();
    seen.sort();
    let expected: Vec<(u64, u64)> = (0..4).flat_map(|t| (0..5).map(move |s| (t, s))).collect();
    assert_eq!(seen, expected, "every write exactly once");
    assert!(db.as_async().is_encrypted());
}

/// Between calls nothing drives a blocking client's connections, so they cannot see the server
/// close them; the first write after a restart must still go out once, on a live connection,
/// not become an "outcome unknown" on a dead one. With four idle connections, each is found
/// dead in turn before a new one takes the write.
#[test]
fn the_first_write_after_a_server_restart_lands_once() {
    let mut server = server(ALL_MODES[0]);
    let db = std::sync::Arc::new(Client::connect(config(&server).pool_size(4)).unwrap());
    db.create("orders", "idle-1", "created", &json!({"n": 0}))
        .unwrap();
    // Concurrent calls until the pool has all four connections open.
    while db.as_async().open_connections() < 4 {
        std::thread::scope(|scope| {
            for _ in 0..8 {
                scope.spawn(|| db.get("orders", "idle-1").unwrap());
            }
        });
    }
    server.stop().unwrap();
    server.restart().unwrap();
    db.apply("orders", "idle-1", "paid", &json!({"n": 1}))
        .unwrap();
    let versions: Vec<u64> = db
        .events("orders", "idle-1")
        .into_iter()
        .map(|e| e.unwrap().version)
        .collect();
    assert_eq!(versions, [1, 2]);
}

/// Without a runtime of its own, a blocking call still ends by its deadline, says whether it
/// was sent, and leaves the connection in order for the next call.
#[test]
fn blocking_calls_end_by_their_deadline_while_the_server_is_stalled() {
    let mut server = server(ALL_MODES[0]);
    let db = Client::connect(
        config(&server)
            .pool_size(1)
            .request_timeout(Duration::from_millis(500)),
    )
    .unwrap();
    db.create("orders", "late-1", "created", &json!({"total": 1}))
        .unwrap();
    server.pause().unwrap();
    let read = db.get("orders", "late-1").unwrap_err();
    assert_eq!(read.kind(), ErrorKind::Timeout, "{read}");
    assert!(read.was_sent() && read.is_retryable(), "{read}");
    let write = db
        .run(
            db.as_async()
                .apply("orders", "late-1", "paid", &json!({"total": 2}))
                .allow_unlistable(true),
        )
        .unwrap_err();
    assert_eq!(write.kind(), ErrorKind::OutcomeUnknown, "{write}");
    assert!(write.is_timeout() && write.was_sent(), "{write}");
    server.resume().unwrap();
    // The late replies are read and dropped in order; this call gets its own.
    let order = db.get("orders", "late-1").unwrap().unwrap();
    assert_eq!(order.aggregate_id, "late-1");
    assert_eq!(
        order.version, 2,
        "the write that timed out was applied once"
    );
}
