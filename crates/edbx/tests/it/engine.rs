//! The connection engine against the real server: truncated pages, concurrency, pipelining,
//! timeouts, lost connections.

use std::collections::BTreeSet;
use std::time::Duration;

use crate::common::{ALL_MODES, client, config, server, until};
use edbx::{Client, ErrorKind, Event, RetryOptions};
use serde_json::json;

/// Every event of one aggregate, through the cursor-following stream.
async fn all_events(client: &Client, aggregate_type: &str, aggregate_id: &str) -> Vec<Event> {
    client
        .events(aggregate_type, aggregate_id)
        .stream()
        .collect_all()
        .await
        .unwrap()
}

/// The `seq` payload field of each event, in order.
fn seqs(events: &[Event]) -> Vec<i64> {
    events
        .iter()
        .map(|e| e.payload["seq"].as_i64().unwrap())
        .collect()
}

#[tokio::test]
async fn listing_40_large_aggregates_returns_each_exactly_once() {
    let server = server(ALL_MODES[0]);
    let client = client(&server, true).await;
    let filler = "x".repeat(3_000);
    for i in 0..40 {
        client
            .create(
                "bulk",
                &format!("b-{i:03}"),
                "created",
                &json!({"blob": filler, "n": i}),
            )
            .await
            .unwrap();
    }

    // Page by page, following the cursors the client hands out.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut repaired = false;
    let mut pages = 0;
    loop {
        let mut request = client.list().take(40);
        if let Some(c) = cursor.take() {
            request = request.cursor(c);
        }
        let page = request.await.unwrap();
        pages += 1;
        repaired |= page.repaired;
        seen.extend(page.items.iter().map(|a| a.aggregate_id.clone()));
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
        assert!(pages < 100, "pagination does not end");
    }
    let expected: Vec<String> = (0..40).map(|i| format!("b-{i:03}")).collect();
    assert_eq!(seen, expected, "every aggregate once, in order");
    assert!(
        repaired,
        "the server's cursor skipped rows and the client repaired it"
    );
    assert!(pages > 1, "the server shortened the 40-row page");

    // The same through a stream.
    let streamed = client.list().take(40).stream().collect_all().await.unwrap();
    let ids: Vec<String> = streamed.into_iter().map(|a| a.aggregate_id).collect();
    assert_eq!(ids, expected);
}

#[tokio::test]
async fn event_pages_cut_by_the_server_lose_nothing() {
    let server = server(ALL_MODES[0]);
    let client = client(&server, true).await;
    let filler = "y".repeat(1_000);
    for i in 0..30 {
        client
            .apply("ledger", "l-1", "entry", &json!({"seq": i, "memo": filler}))
            .await
            .unwrap();
    }
    let events = all_events(&client, "ledger", "l-1").await;
    assert_eq!(seqs(&events), (0..30).collect::<Vec<_>>());
    let versions: Vec<u64> = events.iter().map(|e| e.version).collect();
    assert_eq!(versions, (1..=30).collect::<Vec<_>>());
}

#[tokio::test]
async fn sixty_four_tasks_through_one_client_write_exactly_once() {
    let server = server(ALL_MODES[0]);
    let client = client(&server, true).await;
    let mut tasks = Vec::new();
    for task in 0..64 {
        let client = client.clone();
        tasks.push(tokio::spawn(async move {
            for seq in 0..10 {
                client
                    .apply(
                        "counter",
                        &format!("c-{task}"),
                        "incremented",
                        &json!({"seq": seq}),
                    )
                    .await
                    .unwrap();
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    assert!(
        client.open_connections() > 1,
        "concurrency opened more connections"
    );
    assert!(
        client.open_connections() <= edbx::Config::DEFAULT_POOL_SIZE,
        "no more than the default pool size ({}): {}",
        edbx::Config::DEFAULT_POOL_SIZE,
        client.open_connections()
    );
    for task in 0..64 {
        let id = format!("c-{task}");
        let events = all_events(&client, "counter", &id).await;
        assert_eq!(seqs(&events), (0..10).collect::<Vec<_>>(), "aggregate {id}");
        assert_eq!(
            client.get("counter", &id).await.unwrap().unwrap().version,
            10
        );
    }
    let all = client
        .list()
        .take(100)
        .stream()
        .collect_all()
        .await
        .unwrap();
    assert_eq!(all.len(), 64);
}

#[tokio::test]
async fn pipelined_requests_on_one_connection_get_their_own_replies() {
    let server = server(ALL_MODES[0]);
    let client = Client::connect(config(&server).pool_size(1).max_in_flight(32))
        .await
        .unwrap();
    for i in 0..20 {
        client
            .create("item", &format!("i-{i}"), "created", &json!({"n": i}))
            .await
            .unwrap();
    }
    let mut calls = Vec::new();
    for round in 0..10 {
        for i in 0..20 {
            let client = client.clone();
            calls.push(tokio::spawn(async move {
                let id = format!("i-{}", (i + round) % 20);
                let got = client.get("item", &id).await.unwrap().unwrap();
                assert_eq!(got.aggregate_id, id);
                assert_eq!(got.state_value("n"), Some(json!((i + round) % 20)));
            }));
        }
    }
    for call in calls {
        call.await.unwrap();
    }
    assert_eq!(client.open_connections(), 1);
}

#[tokio::test]
async fn a_timed_out_request_leaves_the_connection_in_sync() {
    let mut server = server(ALL_MODES[0]);
    let client = Client::connect(
        config(&server)
            .pool_size(1)
            .retry(RetryOptions::none())
            .request_timeout(Duration::from_millis(400)),
    )
    .await
    .unwrap();
    for id in ["a", "b", "c"] {
        client
            .create("doc", id, "created", &json!({"name": id}))
            .await
            .unwrap();
    }

    // A read written to a server that cannot answer in time.
    server.pause().unwrap();
    let err = client.get("doc", "a").await.unwrap_err();
    assert!(err.is_timeout(), "{err}");
    assert!(!err.outcome_unknown());
    server.resume().unwrap();

    // The late reply for "a" must not be taken for the answer to "b".
    for id in ["b", "c", "a", "b"] {
        let got = client.get("doc", id).await.unwrap().unwrap();
        assert_eq!(got.aggregate_id, id);
    }

    // A write that times out after being sent: its outcome is unknown, and it is not resent.
    server.pause().unwrap();
    let err = client
        .apply("doc", "a", "edited", &json!({"name": "A"}))
        // Without the pre-write read of the size check: this is about the write's own frame.
        .allow_unlistable(true)
        .await
        .unwrap_err();
    assert!(err.is_timeout() && err.outcome_unknown(), "{err}");
    server.resume().unwrap();
    let events = client.events("doc", "a").await.unwrap();
    assert_eq!(
        events.items.len(),
        2,
        "the write was applied once, after the server resumed"
    );
    assert_eq!(
        client.get("doc", "c").await.unwrap().unwrap().aggregate_id,
        "c"
    );
    assert_eq!(
        client.open_connections(),
        1,
        "the same connection kept working"
    );
}

#[tokio::test]
async fn a_write_in_flight_when_the_server_dies_is_outcome_unknown() {
    let mut server = server(ALL_MODES[0]);
    let client = Client::connect(config(&server).pool_size(1)).await.unwrap();
    client
        .create("doc", "a", "created", &json!({"v": 1}))
        .await
        .unwrap();
    server.pause().unwrap();
    let write = {
        let client = client.clone();
        // Without the pre-write read of the size check: this is about the write's own frame.
        tokio::spawn(async move {
            client
                .apply("doc", "a", "edited", &json!({"v": 2}))
                .allow_unlistable(true)
                .await
        })
    };
    until("the write is on the connection", || {
        client.pending_requests() == 1
    })
    .await;
    server.kill().unwrap();
    let err = write.await.unwrap().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::OutcomeUnknown, "{err}");
    assert!(err.outcome_unknown() && !err.is_retryable());

    // After a restart on the same data the client reconnects by itself.
    server.restart().unwrap();
    let doc = client.get("doc", "a").await.unwrap().unwrap();
    assert!(doc.version >= 1);
}

#[tokio::test]
async fn reads_reconnect_after_a_server_restart() {
    let mut server = server(ALL_MODES[0]);
    let client = client(&server, true).await;
    client
        .create("doc", "a", "created", &json!({"v": 1}))
        .await
        .unwrap();
    server.stop().unwrap();
    server.restart().unwrap();
    let doc = client.get("doc", "a").await.unwrap().unwrap();
    assert_eq!(doc.version, 1);
    let ids: BTreeSet<String> = client
        .list()
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|a| a.aggregate_id)
        .collect();
    assert!(ids.contains("a"));
}

#[tokio::test]
async fn bad_input_is_refused_before_sending() {
    let server = server(ALL_MODES[0]);
    let client = client(&server, true).await;
    let cases = [
        client
            .apply("Orders", "o1", "paid", &json!({}))
            .await
            .unwrap_err(),
        client
            .apply("orders", "o 1", "paid", &json!({}))
            .await
            .unwrap_err(),
        client
            .apply("orders", "o1", "Paid", &json!({}))
            .await
            .unwrap_err(),
        client
            .apply("orders", "o1", "paid", &json!({}))
            .metadata(&json!({"trace": 1}))
            .await
            .unwrap_err(),
        client
            .apply("orders", "o1", "paid", &json!({}))
            .note("n".repeat(129))
            .await
            .unwrap_err(),
        client
            .apply("orders", "o1", "paid", &json!({"big": "z".repeat(70_000)}))
            .await
            .unwrap_err(),
        client
            .patch(
                "orders",
                "o1",
                "fix",
                &json!([{"op": "remove", "path": "/total"}]),
            )
            .await
            .unwrap_err(),
        client.get("orders", "").await.unwrap_err(),
    ];
    for err in &cases {
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    }
    assert!(cases[0].to_string().contains("aggregate_type"));
    assert!(cases[5].to_string().contains("bytes"));
    // Nothing reached the store.
    assert!(client.list().await.unwrap().items.is_empty());
}

#[tokio::test]
async fn a_closed_client_refuses_new_calls() {
    let server = server(ALL_MODES[0]);
    let client = client(&server, true).await;
    let other = client.clone();
    client.close();
    let err = other.get("doc", "a").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Closed);
}

#[tokio::test]
async fn ids_that_prefix_each_other_page_correctly() {
    let server = server(ALL_MODES[0]);
    let client = client(&server, true).await;
    for id in ["l-1", "l-10", "l-11", "l-2"] {
        for seq in 0..3 {
            client
                .apply("ledger", id, "entry", &json!({"seq": seq}))
                .await
                .unwrap();
        }
    }
    // Server 3.19.4 resumes an event cursor by key prefix and runs into `l-10`'s events;
    // the client stops at the aggregate's end.
    let rest = client
        .events("ledger", "l-1")
        .after_version(1)
        .await
        .unwrap();
    let got: Vec<(String, u64)> = rest
        .items
        .iter()
        .map(|e| (e.aggregate_id.clone(), e.version))
        .collect();
    assert_eq!(got, [("l-1".to_string(), 2), ("l-1".to_string(), 3)]);
    assert_eq!(rest.next_cursor, None);
    let all = client
        .events("ledger", "l-1")
        .take(1)
        .stream()
        .collect_all()
        .await
        .unwrap();
    assert_eq!(all.iter().map(|e| e.version).collect::<Vec<_>>(), [1, 2, 3]);
    assert!(all.iter().all(|e| e.aggregate_id == "l-1"));

    // Aggregate cursors are exclusive keys: paging one at a time visits each id once.
    let ids: Vec<String> = client
        .list()
        .take(1)
        .stream()
        .collect_all()
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.aggregate_id)
        .collect();
    assert_eq!(ids, ["l-1", "l-10", "l-11", "l-2"]);
}

#[tokio::test]
async fn sorted_listings_page_by_timestamp_and_refuse_what_cannot_be_paged() {
    let server = server(ALL_MODES[0]);
    let client = client(&server, true).await;
    for id in ["s-1", "s-2", "s-3", "s-4", "s-5"] {
        client
            .create("sorted", id, "created", &json!({"id": id}))
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let newest = client.list().sort("created_at:desc").take(2).await.unwrap();
    let ids: Vec<&str> = newest
        .items
        .iter()
        .map(|a| a.aggregate_id.as_str())
        .collect();
    assert_eq!(ids, ["s-5", "s-4"]);
    assert_eq!(newest.next_cursor.as_deref(), Some("ts:sorted:s-4"));

    let all: Vec<String> = client
        .list()
        .sort("created_at:desc")
        .take(2)
        .stream()
        .collect_all()
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.aggregate_id)
        .collect();
    assert_eq!(all, ["s-5", "s-4", "s-3", "s-2", "s-1"]);

    let by_id = client
        .list()
        .sort("aggregate_id:desc")
        .take(10)
        .await
        .unwrap();
    let ids: Vec<&str> = by_id
        .items
        .iter()
        .map(|a| a.aggregate_id.as_str())
        .collect();
    assert_eq!(ids, ["s-5", "s-4", "s-3", "s-2", "s-1"]);
    assert_eq!(by_id.next_cursor, None);
    let err = client
        .list()
        .sort("aggregate_id:desc")
        .stream()
        .collect_all()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
}

/// `Client::ride_out`, the outage policy of long jobs: a read waits for a restarting server;
/// a write that is never sent is given up when the caller says stop, and is not applied.
#[tokio::test]
async fn ride_out_waits_for_a_restarting_server() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    let mut server = crate::common::server(crate::common::ALL_MODES[0]);
    let client = crate::common::client(&server, true).await;
    client
        .create("orders", "o-1", "placed", &serde_json::json!({"n": 1}))
        .await
        .unwrap();
    server.stop().unwrap();

    let waits = Arc::new(AtomicUsize::new(0));
    let read = tokio::spawn({
        let (client, waits) = (client.clone(), waits.clone());
        async move {
            client
                .ride_out(
                    Duration::from_secs(120),
                    edbx::Repeat::Idempotent,
                    || client.get("orders", "o-1"),
                    |_| {
                        waits.fetch_add(1, Ordering::SeqCst);
                        true
                    },
                )
                .await
        }
    });
    crate::common::until("the read waits for the server", || {
        waits.load(Ordering::SeqCst) > 0
    })
    .await;
    server.restart().unwrap();
    let order = read.await.unwrap().unwrap().expect("the aggregate exists");
    assert_eq!(order.version, 1);

    server.stop().unwrap();
    let err = client
        .ride_out(
            Duration::from_secs(120),
            edbx::Repeat::OnlyUnsent,
            || client.apply("orders", "o-1", "paid", &serde_json::json!({"n": 2})),
            |_| false,
        )
        .await
        .unwrap_err();
    assert!(!err.was_sent(), "{err}");
    server.restart().unwrap();
    let order = client.get("orders", "o-1").await.unwrap().unwrap();
    assert_eq!(order.version, 1, "the write given up was never applied");
}

#[tokio::test]
async fn a_listing_that_failed_goes_on_from_the_last_row_handed_out() {
    let mut server = server(ALL_MODES[0]);
    let client = Client::connect(
        config(&server)
            .retry(RetryOptions::none())
            .request_timeout(Duration::from_millis(400)),
    )
    .await
    .unwrap();
    let ids: Vec<String> = (0..12).map(|i| format!("row-{i:02}")).collect();
    for id in &ids {
        client
            .create("doc", id, "created", &json!({}))
            .await
            .unwrap();
    }
    let mut rows = client.list().aggregate_type("doc").take(5).stream();
    let mut seen = Vec::new();
    for _ in 0..5 {
        seen.push(rows.next().await.unwrap().unwrap().aggregate_id);
    }

    // The second page's request times out: the stream says so, and does not end.
    server.pause().unwrap();
    let err = rows.next().await.unwrap().unwrap_err();
    assert!(err.is_timeout() && err.is_retryable(), "{err}");
    server.resume().unwrap();

    // Called again, it asks for that page again: every row once, none skipped.
    while let Some(row) = rows.next().await {
        seen.push(row.unwrap().aggregate_id);
    }
    assert_eq!(seen, ids);
}

#[tokio::test]
async fn a_listing_that_cannot_be_sent_keeps_failing_instead_of_ending() {
    let server = server(ALL_MODES[0]);
    let client = Client::connect(config(&server)).await.unwrap();
    // A page size the client refuses before sending anything.
    let mut rows = client.list().take(0).stream();
    for _ in 0..3 {
        let err = rows
            .next()
            .await
            .expect("an error, not the end")
            .unwrap_err();
        assert_eq!(err.kind(), edbx::ErrorKind::InvalidInput, "{err}");
    }
}
