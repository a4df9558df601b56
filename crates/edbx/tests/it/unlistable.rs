//! Aggregates that grow past what the server can list (issue 14 item 6): writes that would make
//! one unlistable are refused before sending, and listings step past one that already is.

use edbx::{Client, ErrorKind};
use serde_json::json;

use crate::common::{ALL_MODES, config, server};

/// The aggregate limit the client checks against (7,597 bytes of listed JSON) is the server's,
/// whatever the length of the ids.
#[tokio::test]
async fn the_listed_aggregate_limit_is_7597_bytes() {
    let server = server(ALL_MODES[0]);
    let client = Client::connect(config(&server)).await.unwrap();
    for prefix in ["m", "a_much_longer_identifier_"] {
        let (mut largest_listed, mut smallest_refused) = (0, usize::MAX);
        for n in 7_300..7_360 {
            let id = format!("{prefix}{n}");
            client
                .apply("doc", &id, "added", &json!({"blob": "x".repeat(n)}))
                .allow_unlistable(true)
                .await
                .unwrap();
            let stored = client.get("doc", &id).await.unwrap().unwrap();
            let len = stored.raw.as_ref().unwrap().get().len();
            let page = client
                .list()
                .filter(format!("aggregate_id = '{id}'"))
                .take(1)
                .await;
            match page {
                Ok(page) => {
                    assert_eq!(page.items[0].raw.as_ref().unwrap().get().len(), len);
                    largest_listed = largest_listed.max(len);
                }
                Err(e) => {
                    assert_eq!(e.kind(), ErrorKind::ReplyTooLarge, "{e}");
                    smallest_refused = smallest_refused.min(len);
                }
            }
        }
        assert_eq!(
            (largest_listed, smallest_refused),
            (7_597, 7_598),
            "{prefix}"
        );
    }
}

#[tokio::test]
async fn a_write_that_would_make_an_aggregate_unlistable_is_refused_unless_allowed() {
    let server = server(ALL_MODES[0]);
    let client = Client::connect(config(&server)).await.unwrap();
    let part = |key: &str| json!({ key: "x".repeat(5_000) });
    client
        .apply("doc", "grows", "added", &part("a"))
        .await
        .unwrap();

    // Each event fits a listing; together they would not.
    let err = client
        .apply("doc", "grows", "added", &part("b"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    let message = err.to_string();
    for needle in ["doc/grows", "7597", "allow_unlistable", "bytes"] {
        assert!(message.contains(needle), "{needle}: {message}");
    }
    assert_eq!(
        client.get("doc", "grows").await.unwrap().unwrap().version,
        1,
        "nothing was sent"
    );
    assert_eq!(
        client
            .list()
            .take(10)
            .stream()
            .collect_all()
            .await
            .unwrap()
            .len(),
        1
    );

    // Replacing a key does not grow the state: accepted.
    client
        .apply("doc", "grows", "replaced", &part("a"))
        .await
        .unwrap();
    // A create is estimated from its payload alone.
    let err = client
        .create(
            "doc",
            "born_big",
            "created",
            &json!({"a": "x".repeat(4_000), "b": "y".repeat(3_500)}),
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");

    // Allowed explicitly: written, and listings that reach it now fail.
    client
        .apply("doc", "grows", "added", &part("b"))
        .allow_unlistable(true)
        .await
        .unwrap();
    assert_eq!(
        client.get("doc", "grows").await.unwrap().unwrap().version,
        3
    );
    let err = client.list().take(10).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ReplyTooLarge, "{err}");
    // Further writes to an aggregate that is already unlistable are not refused by this check.
    client
        .apply("doc", "grows", "more", &json!({"c": 1}))
        .await
        .unwrap();
}

#[tokio::test]
async fn a_listing_steps_past_aggregates_the_server_cannot_send() {
    let server = server(ALL_MODES[0]);
    let client = Client::connect(config(&server)).await.unwrap();
    let huge = json!({"blob": "x".repeat(7_400)});
    // Unlistable rows first of all, in the middle (two in a row), and last.
    let rows = [
        ("alpha", "Big-1", true),
        ("doc", "a1", false),
        ("doc", "b_huge", true),
        ("doc", "b_huge2", true),
        ("doc", "c1", false),
        ("zeta", "z-9", false),
        ("zeta", "zz", true),
    ];
    for (t, id, unlistable) in rows {
        let payload = if unlistable {
            huge.clone()
        } else {
            json!({"n": 1})
        };
        client
            .apply(t, id, "added", &payload)
            .allow_unlistable(true)
            .await
            .unwrap();
    }
    let err = client
        .list()
        .take(3)
        .stream()
        .collect_all()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ReplyTooLarge, "{err}");

    let mut stream = client.list().take(3).skip_unlistable(true).stream();
    let mut listed = Vec::new();
    while let Some(row) = stream.next().await {
        let row = row.unwrap();
        listed.push(format!("{}/{}", row.aggregate_type, row.aggregate_id));
    }
    assert_eq!(listed, ["doc/a1", "doc/c1", "zeta/z-9"]);
    let skipped: Vec<String> = stream
        .skipped()
        .iter()
        .map(|(t, id)| format!("{t}/{id}"))
        .collect();
    assert_eq!(
        skipped,
        ["alpha/Big-1", "doc/b_huge", "doc/b_huge2", "zeta/zz"]
    );

    // One page at a time: the page that meets one names it and continues after it.
    let page = client
        .list()
        .aggregate_type("doc")
        .cursor("a:doc:a1")
        .skip_unlistable(true)
        .await
        .unwrap();
    assert!(page.items.is_empty() && !page.complete);
    assert_eq!(page.skipped.len(), 2, "{:?}", page.skipped);
    let next = client
        .list()
        .aggregate_type("doc")
        .cursor(page.next_cursor.unwrap())
        .await
        .unwrap();
    assert_eq!(next.items[0].aggregate_id, "c1");
}

/// An append right after this process's own write to the same aggregate is checked against
/// the size remembered from that write, without a `get`: a paused server shows it, as the
/// write then times out after being sent (outcome unknown) rather than before (a read).
#[tokio::test]
async fn an_append_after_our_own_write_needs_no_read_to_be_checked() {
    let mut server = server(ALL_MODES[0]);
    let client = Client::connect(
        config(&server)
            .request_timeout(std::time::Duration::from_millis(500))
            .retry(edbx::RetryOptions::none()),
    )
    .await
    .unwrap();
    client
        .create("doc", "cached", "created", &json!({"n": 0}))
        .await
        .unwrap();
    server.pause().unwrap();
    let err = client
        .apply("doc", "cached", "bumped", &json!({"n": 1}))
        .await
        .unwrap_err();
    server.resume().unwrap();
    assert_eq!(err.kind(), ErrorKind::OutcomeUnknown, "{err}");

    // A growth the remembered bound cannot vouch for is read first, and refused.
    let other = Client::connect(config(&server)).await.unwrap();
    other
        .apply("doc", "cached", "grown", &json!({"a": "x".repeat(5_000)}))
        .await
        .unwrap();
    let err = client
        .apply("doc", "cached", "grown", &json!({"b": "x".repeat(5_000)}))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");

    // A write that is not estimated (allowed, or a patch) makes the next append read first.
    client
        .apply("doc", "cached", "allowed", &json!({"c": 1}))
        .allow_unlistable(true)
        .await
        .unwrap();
    server.pause().unwrap();
    let err = client
        .apply("doc", "cached", "bumped", &json!({"n": 2}))
        .await
        .unwrap_err();
    server.resume().unwrap();
    assert_eq!(err.kind(), ErrorKind::Timeout, "the read timed out: {err}");
    assert!(!err.outcome_unknown(), "nothing was sent: {err}");
}
