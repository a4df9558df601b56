//! Faults injected between the client and the real server by a loopback proxy that corrupts the
//! server's bytes or cuts connections.

use crate::common::TestServer;
use crate::proxy::{Proxy, proxied_client};
use edbx::{Client, ErrorKind};
use serde_json::json;

/// A server, a proxy in front of it, a one-connection client through the proxy, and one
/// aggregate `doc/a` at version 1.
async fn proxied() -> (TestServer, Proxy, Client) {
    let (server, proxy, client) = proxied_client(|config| config.pool_size(1)).await;
    client
        .create("doc", "a", "created", &json!({"v": 1}))
        .await
        .unwrap();
    (server, proxy, client)
}

#[tokio::test]
async fn a_corrupted_reply_to_a_read_is_retried_on_a_fresh_connection() {
    let (_server, proxy, client) = proxied().await;

    proxy.corrupt_next();
    let doc = client.get("doc", "a").await.unwrap().unwrap();
    assert_eq!(doc.aggregate_id, "a");
    assert_eq!(proxy.accepted(), 2, "one reconnect after the bad bytes");
    assert_eq!(client.get("doc", "a").await.unwrap().unwrap().version, 1);
}

#[tokio::test]
async fn a_corrupted_reply_to_a_write_is_outcome_unknown_and_the_write_landed_once() {
    let (_server, proxy, client) = proxied().await;

    proxy.corrupt_next();
    let err = client
        .apply("doc", "a", "edited", &json!({"v": 2}))
        // Without the pre-write read of the size check: this is about the write's own reply.
        .allow_unlistable(true)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::OutcomeUnknown, "{err}");
    assert!(!err.is_retryable());
    // Reading back (on a new connection) shows the write was applied, exactly once.
    let events = client.events("doc", "a").await.unwrap();
    assert_eq!(
        events.items.iter().map(|e| e.version).collect::<Vec<_>>(),
        [1, 2]
    );
}
