//! The listing options a first-time user meets: every filter example of the documentation run
//! against the real server, `aggregate_type`, the page size and stream limits.

use edbx::{Client, ErrorKind, ServerCode};
use serde_json::json;

use crate::common::{ALL_MODES, config, server};

/// The examples table of `src/ops/filters.md` (included in `List::filter`'s docs).
const FILTERS_DOC: &str = include_str!("../../src/ops/filters.md");

fn documented_examples() -> Vec<(String, String)> {
    FILTERS_DOC
        .lines()
        .filter_map(|line| {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            // `| `filter` | outcome |`
            match cells.as_slice() {
                ["", filter, outcome, ""] if filter.starts_with('`') => {
                    Some((filter.trim_matches('`').to_owned(), (*outcome).to_owned()))
                }
                _ => None,
            }
        })
        .collect()
}

#[tokio::test]
async fn every_documented_filter_example_behaves_as_documented() {
    let server = server(ALL_MODES[0]);
    let client = Client::connect(config(&server)).await.unwrap();
    client
        .create(
            "orders",
            "o1",
            "created",
            &json!({"status": "paid", "total": 42.5, "n": 3, "vip": true, "addr": {"city": "Oslo"}}),
        )
        .metadata(&json!({"@trace": {"id": "t-1"}}))
        .await
        .unwrap();
    let examples = documented_examples();
    assert!(examples.len() >= 20, "the table was found: {examples:?}");
    for (filter, outcome) in examples {
        let result = client.list().filter(filter.as_str()).await;
        match outcome.as_str() {
            "yes" | "no" => {
                let page = result.unwrap_or_else(|e| panic!("`{filter}` failed: {e}"));
                let matched = page.items.iter().any(|a| a.aggregate_id == "o1");
                assert_eq!(matched, outcome == "yes", "`{filter}`");
            }
            "invalid" => {
                let err = result.expect_err(&filter);
                assert_eq!(err.kind(), ErrorKind::InvalidInput, "`{filter}`: {err}");
                assert_eq!(err.server_code(), Some(ServerCode::InvalidSchema));
                assert!(err.message().contains("filter"), "{err}");
            }
            other => panic!("unknown outcome {other:?} in filters.md"),
        }
    }
}

#[tokio::test]
async fn aggregate_type_take_and_limit() {
    let server = server(ALL_MODES[0]);
    let client = Client::connect(config(&server)).await.unwrap();
    for i in 0..7 {
        client
            .create("orders", &format!("o{i}"), "created", &json!({"n": i}))
            .await
            .unwrap();
        client
            .create("carts", &format!("c{i}"), "created", &json!({"n": i}))
            .await
            .unwrap();
    }
    let orders = client
        .list()
        .aggregate_type("orders")
        .filter("n > 2")
        .take(100)
        .await
        .unwrap();
    let ids: Vec<_> = orders
        .items
        .iter()
        .map(|a| a.aggregate_id.as_str())
        .collect();
    assert_eq!(ids, ["o3", "o4", "o5", "o6"]);

    // `take` is the page size: a stream reads every row, page after page.
    let all_carts = client
        .list()
        .aggregate_type("carts")
        .take(2)
        .stream()
        .collect_all()
        .await
        .unwrap();
    assert_eq!(all_carts.len(), 7);
    // `limit` ends a stream early, also within a page.
    let three = client
        .list()
        .aggregate_type("carts")
        .take(2)
        .stream()
        .limit(3)
        .collect_all()
        .await
        .unwrap();
    assert_eq!(three.len(), 3);

    let zero = client.list().take(0).await.unwrap_err();
    assert_eq!(zero.kind(), ErrorKind::InvalidInput, "{zero}");
    let zero_events = client.events("orders", "o1").take(0).await.unwrap_err();
    assert_eq!(zero_events.kind(), ErrorKind::InvalidInput);
    let bad_type = client.list().aggregate_type("Orders!").await.unwrap_err();
    assert_eq!(bad_type.kind(), ErrorKind::InvalidInput);
    let mut stream = client.list().aggregate_type("x y").stream();
    assert_eq!(
        stream.next().await.unwrap().unwrap_err().kind(),
        ErrorKind::InvalidInput
    );
}
