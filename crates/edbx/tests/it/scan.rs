//! `Client::scan_events`: every event of a store in listing order, with archived aggregates
//! counted and named, also when one is archived after it was listed.

use edbx::ErrorKind;
use serde_json::json;

use crate::common::{ALL_MODES, client, server};

#[tokio::test]
async fn a_scan_hands_on_every_event_in_listing_order_and_names_the_archived() {
    let server = server(ALL_MODES[0]);
    let client = client(&server, true).await;
    for (t, id) in [
        ("orders", "o-2"),
        ("customers", "c-1"),
        ("orders", "o-1"),
        ("customers", "c-2"),
    ] {
        client
            .create(t, id, "created", &json!({"n": 1}))
            .await
            .unwrap();
    }
    client
        .apply("orders", "o-1", "paid", &json!({"paid": true}))
        .await
        .unwrap();
    client.archive("customers", "c-2").await.unwrap();

    for concurrency in [1, 3, 256] {
        let mut scan = client.scan_events().concurrency(concurrency).stream();
        let mut seen = Vec::new();
        while let Some(page) = scan.next_page().await {
            for e in page.unwrap() {
                seen.push((e.aggregate_type, e.aggregate_id, e.version));
            }
        }
        let key = |t: &str, id: &str, v: u64| (t.to_owned(), id.to_owned(), v);
        assert_eq!(
            seen,
            [
                key("customers", "c-1", 1),
                key("orders", "o-1", 1),
                key("orders", "o-1", 2),
                key("orders", "o-2", 1),
            ]
        );
        assert_eq!((scan.events(), scan.aggregates()), (4, 3));
        assert_eq!(scan.archived().count, 1);
        assert_eq!(scan.archived().to_string(), "customers/c-2");
        assert!(
            scan.next_page().await.is_none(),
            "a finished scan stays finished"
        );
    }
    let mut orders = client.scan_events().aggregate_type("orders").stream();
    let mut n = 0;
    while let Some(page) = orders.next_page().await {
        n += page.unwrap().len();
    }
    assert_eq!((n, orders.archived().count), (3, 0));
}

#[tokio::test]
async fn an_aggregate_archived_after_it_was_listed_is_left_out_not_lost() {
    let server = server(ALL_MODES[0]);
    let client = client(&server, true).await;
    client
        .create("items", "a", "created", &json!({"n": 1}))
        .await
        .unwrap();
    client
        .create("items", "b", "created", &json!({"n": 2}))
        .await
        .unwrap();
    // One aggregate read at a time: `b` is listed with `a`, but read only after `a`'s events
    // were handed on, by when it is archived.
    let mut scan = client.scan_events().concurrency(1).stream();
    let first = scan.next_page().await.unwrap().unwrap();
    assert_eq!(first[0].aggregate_id, "a");
    client.archive("items", "b").await.unwrap();
    assert!(scan.next_page().await.is_none());
    assert_eq!((scan.events(), scan.aggregates()), (1, 1));
    assert_eq!(scan.archived().to_string(), "items/b");
}

#[tokio::test]
async fn bad_scan_options_are_refused_before_sending() {
    let server = server(ALL_MODES[0]);
    let client = client(&server, true).await;
    for scan in [
        client.scan_events().concurrency(0),
        client.scan_events().concurrency(257),
        client.scan_events().aggregate_type("Not A Type"),
    ] {
        assert_eq!(scan.check().unwrap_err().kind(), ErrorKind::InvalidInput);
        let mut stream = scan.stream();
        let error = stream.next_page().await.unwrap().unwrap_err();
        assert_eq!(error.kind(), ErrorKind::InvalidInput);
        // A failed scan never looks finished: the error comes again.
        let again = stream
            .next_page()
            .await
            .expect("the error again, not the end");
        assert_eq!(again.unwrap_err().kind(), ErrorKind::InvalidInput);
    }
    assert_eq!(client.pending_requests(), 0);
}

#[tokio::test]
async fn a_scan_that_failed_mid_way_keeps_failing_instead_of_ending() {
    let mut server = server(ALL_MODES[0]);
    let client = edbx::Client::connect(
        crate::common::config(&server)
            .retry(edbx::RetryOptions::none())
            .request_timeout(std::time::Duration::from_millis(300)),
    )
    .await
    .unwrap();
    for id in ["a", "b", "c"] {
        client
            .create("doc", id, "created", &json!({"n": 1}))
            .await
            .unwrap();
    }
    let mut scan = client.scan_events().concurrency(1).stream();
    let first = scan.next_page().await.unwrap().unwrap();
    assert_eq!(first[0].aggregate_id, "a");

    server.pause().unwrap();
    let err = loop {
        match scan.next_page().await {
            Some(Err(e)) => break e,
            Some(Ok(_)) => continue,
            None => panic!("the scan ended while the server could not answer"),
        }
    };
    server.resume().unwrap();
    assert!(err.is_timeout(), "{err}");
    for _ in 0..2 {
        let again = scan
            .next_page()
            .await
            .expect("the error again, not the end");
        assert!(again.unwrap_err().is_timeout());
    }
}
