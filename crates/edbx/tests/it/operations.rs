//! Every operation against the real server, in Noise and plaintext sessions, with verbose
//! responses on and off. Each write is checked by reading the stored result back.

use crate::common::{ALL_MODES, Mode, client, server};
use edbx::{ErrorKind, NewEvent, PatchOp, PublishTarget, ServerCode, Written};
use serde_json::{Value, json};

fn code(err: &edbx::Error) -> Option<ServerCode> {
    err.server_code()
}

async fn every_operation(mode: Mode) {
    let server = server(mode);
    let client = client(&server, mode.noise).await;
    assert_eq!(
        client.is_encrypted(),
        mode.noise,
        "session security for {mode:?}"
    );

    create_and_read_back(&client, mode).await;
    apply_and_send_event(&client, mode).await;
    events_page_and_stream(&client).await;
    list_with_and_without_filter(&client).await;
    get_select_verify(&client).await;
    patch_appends_an_event(&client, mode).await;
    snapshots(&client).await;
    references(&client).await;
    archive_and_restore(&client, mode).await;
    publish_targets(&client).await;
    schemas_and_tenants(&client).await;
}

async fn create_and_read_back(client: &edbx::Client, mode: Mode) {
    // create: echo when verbose, then read back.
    let created = client
        .create(
            "orders",
            "ord_1",
            "created",
            &json!({"total": 42.15, "lines": [1, 2]}),
        )
        .note("first")
        .metadata(&json!({"@trace": {"id": "t-1"}}))
        .await
        .unwrap();
    match (&created, mode.verbose) {
        (Written::Echo(agg), true) => {
            assert_eq!((agg.aggregate_id.as_str(), agg.version), ("ord_1", 1));
            assert_eq!(agg.state_value("total"), Some(json!(42.15)));
        }
        (Written::NoEcho, false) => {}
        (other, verbose) => panic!("create returned {other:?} with verbose={verbose}"),
    }
    let stored = client
        .get("orders", "ord_1")
        .await
        .unwrap()
        .expect("created");
    assert_eq!(stored.version, 1);
    assert_eq!(stored.state_value("total"), Some(json!(42.15)));
    assert_eq!(stored.state_value("lines"), Some(json!([1, 2])));
    assert_eq!(stored.extensions["@trace"]["id"], "t-1");
    assert!(stored.raw.as_ref().unwrap().get().contains("\"ord_1\""));

    let again = client
        .create("orders", "ord_1", "created", &json!({"total": 1}))
        .await
        .unwrap_err();
    assert_eq!(code(&again), Some(ServerCode::SchemaViolation), "{again}");
}

async fn apply_and_send_event(client: &edbx::Client, mode: Mode) {
    // apply and send_event.
    let paid = client
        .apply("orders", "ord_1", "paid", &json!({"status": "paid"}))
        .await
        .unwrap();
    assert_eq!(paid.echo().is_some(), mode.verbose);
    if let Some(event) = paid.echo() {
        assert_eq!((event.event_type.as_str(), event.version), ("paid", 2));
    }
    let sent = client
        .send_event(
            NewEvent::new("orders", "ord_1", "order.shipped", r#"{"carrier":"dhl"}"#)
                .note("left the warehouse")
                .metadata_json(r#"{"@region":"eu"}"#),
        )
        .await
        .unwrap();
    assert_eq!(sent.echo().is_some(), mode.verbose);

    // Raw JSON text goes out verbatim.
    let raw = edbx::raw_json(r#"{"carrier_ref":"X-1"}"#).unwrap();
    client
        .apply("orders", "ord_3", "labelled", &raw)
        .await
        .unwrap();
    assert_eq!(
        client
            .get("orders", "ord_3")
            .await
            .unwrap()
            .unwrap()
            .state_value("carrier_ref"),
        Some(json!("X-1"))
    );
}

async fn events_page_and_stream(client: &edbx::Client) {
    // events: one page, then the whole stream, read back.
    let first = client.events("orders", "ord_1").take(1).await.unwrap();
    assert_eq!(first.items.len(), 1);
    assert_eq!(first.next_cursor.as_deref(), Some("a:orders:ord_1:1"));
    let events = client
        .events("orders", "ord_1")
        .take(1)
        .stream()
        .collect_all()
        .await
        .unwrap();
    let versions: Vec<u64> = events.iter().map(|e| e.version).collect();
    assert_eq!(versions, [1, 2, 3]);
    assert_eq!(events[0].metadata.note.as_deref(), Some("first"));
    assert_eq!(events[1].payload, json!({"status": "paid"}));
    assert_eq!(events[2].event_type, "order_shipped");
    assert_eq!(events[2].event_type_raw.as_deref(), Some("order.shipped"));
    assert_eq!(
        events[2].metadata.note.as_deref(),
        Some("left the warehouse")
    );
    assert_eq!(events[2].extensions.as_ref().unwrap()["@region"], "eu");
    let after = client
        .events("orders", "ord_1")
        .after_version(2)
        .await
        .unwrap();
    assert_eq!(
        after.items.iter().map(|e| e.version).collect::<Vec<_>>(),
        [3]
    );
}

async fn list_with_and_without_filter(client: &edbx::Client) {
    // list, with and without a filter.
    client
        .apply("orders", "ord_2", "created", &json!({"status": "open"}))
        .await
        .unwrap();
    let page = client.list().take(50).await.unwrap();
    let ids: Vec<&str> = page.items.iter().map(|a| a.aggregate_id.as_str()).collect();
    assert_eq!(ids, ["ord_1", "ord_2", "ord_3"]);
    let paid_only = client.list().filter("status = 'paid'").await.unwrap();
    assert_eq!(paid_only.items.len(), 1);
    assert_eq!(paid_only.items[0].aggregate_id, "ord_1");
}

async fn get_select_verify(client: &edbx::Client) {
    // get, select, verify.
    let latest = client.get("orders", "ord_1").await.unwrap().unwrap();
    assert_eq!(latest.version, 3);
    assert!(client.get("orders", "nobody").await.unwrap().is_none());
    let selection = client
        .select("orders", "ord_1", &["total", "status", "lines.1", "nope"])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        Value::Object(selection),
        json!({"total": 42.15, "status": "paid", "lines.1": 2, "nope": null})
    );
    assert!(
        client
            .select("orders", "nobody", &["total"])
            .await
            .unwrap()
            .is_none()
    );
    let root = client.merkle_root("orders", "ord_1").await.unwrap();
    assert_eq!(root.len(), 64);
    assert_eq!(root, latest.merkle_root);
    // verify recomputes every event's hash and the root, as the server does.
    let check = client.verify("orders", "ord_1").await.unwrap();
    assert!(check.is_intact(), "{check:?}");
    assert_eq!(check.merkle_root, root);
    assert_eq!(check.events, latest.version);
    let missing = client.verify("orders", "nobody").await.unwrap_err();
    assert!(missing.is_not_found(), "{missing}");
}

async fn patch_appends_an_event(client: &edbx::Client, mode: Mode) {
    // patch: a new event with the new value.
    let patched = client
        .patch(
            "orders",
            "ord_1",
            "corrected",
            &[PatchOp::replace("/total", json!(45.10))],
        )
        .await
        .unwrap();
    assert_eq!(patched.echo().map(|e| e.version), mode.verbose.then_some(4));
    let after_patch = client.get("orders", "ord_1").await.unwrap().unwrap();
    assert_eq!(
        (after_patch.version, after_patch.state_value("total")),
        (4, Some(json!(45.1)))
    );
    let no_target = client
        .patch(
            "orders",
            "nobody",
            "corrected",
            &json!([{"op": "add", "path": "/x", "value": 1}]),
        )
        .await
        .unwrap_err();
    assert!(no_target.is_not_found(), "{no_target}");
}

async fn snapshots(client: &edbx::Client) {
    // snapshots.
    let snapshot = client
        .create_snapshot("orders", "ord_1")
        .comment("snap")
        .await
        .unwrap();
    assert_eq!(
        (snapshot.version, snapshot.comment.as_deref()),
        (4, Some("snap"))
    );
    let listed = client
        .list_snapshots()
        .aggregate("orders", "ord_1")
        .await
        .unwrap();
    assert_eq!(
        listed.iter().map(|s| s.snapshot_id).collect::<Vec<_>>(),
        [snapshot.snapshot_id]
    );
    let fetched = client
        .get_snapshot(snapshot.snapshot_id)
        .await
        .unwrap()
        .unwrap();
    let current = client.get("orders", "ord_1").await.unwrap().unwrap();
    assert_eq!(fetched.state, current.state);
    assert!(
        client
            .get_snapshot(snapshot.snapshot_id + 1)
            .await
            .unwrap()
            .is_none()
    );
}

async fn references(client: &edbx::Client) {
    // references: none declared, so none found; a missing target is an error.
    assert!(
        client
            .referrers("orders", "ord_1")
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        client
            .referrers("orders", "nobody")
            .await
            .unwrap_err()
            .is_not_found()
    );
    let resolved = client
        .get("orders", "ord_1")
        .resolved()
        .await
        .unwrap()
        .unwrap();
    assert_eq!(resolved.aggregate.aggregate_id, "ord_1");
    assert!(resolved.references.is_empty());
}

async fn archive_and_restore(client: &edbx::Client, mode: Mode) {
    // archive and restore.
    let archived = client
        .archive("orders", "ord_1")
        .comment("customer request")
        .await
        .unwrap();
    if mode.verbose {
        assert!(archived.echo().unwrap().archived);
    }
    assert!(
        client
            .get("orders", "ord_1")
            .await
            .unwrap()
            .unwrap()
            .archived
    );
    let refused = client
        .apply("orders", "ord_1", "paid", &json!({"x": 1}))
        .await
        .unwrap_err();
    assert_eq!(code(&refused), Some(ServerCode::AggregateArchived));
    let active: Vec<String> = client
        .list()
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|a| a.aggregate_id)
        .collect();
    assert_eq!(active, ["ord_2", "ord_3"]);
    let archived_only = client.list().archived_only(true).await.unwrap();
    assert_eq!(archived_only.items.len(), 1);
    assert!(archived_only.items[0].archived);
    let everything = client
        .list()
        .include_archived(true)
        .stream()
        .collect_all()
        .await
        .unwrap();
    assert_eq!(everything.len(), 3);
    client.restore("orders", "ord_1").await.unwrap();
    assert!(
        !client
            .get("orders", "ord_1")
            .await
            .unwrap()
            .unwrap()
            .archived
    );
    client
        .apply("orders", "ord_1", "reopened", &json!({"status": "open"}))
        .await
        .unwrap();
    assert_eq!(
        client
            .get("orders", "ord_1")
            .await
            .unwrap()
            .unwrap()
            .version,
        5
    );
}

async fn publish_targets(client: &edbx::Client) {
    // publish targets are validated by the server too; a valid one is accepted.
    client
        .apply("orders", "ord_2", "noted", &json!({"n": 1}))
        .publish_to(
            PublishTarget::new("search")
                .mode("event-only")
                .priority("high"),
        )
        .await
        .unwrap();
}

async fn schemas_and_tenants(client: &edbx::Client) {
    let before = client.list_schemas().await.unwrap();
    assert!(before.is_empty(), "fresh store has no schemas: {before:?}");
    let schema = json!({
        "orders": {
            "aggregate": "orders", "snapshot_threshold": null, "locked": false,
            "field_locks": [], "hidden": false, "hidden_fields": [],
            "events": {"created": {"fields": ["total"]}},
            "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z"
        }
    });
    assert_eq!(client.replace_schemas(&schema).await.unwrap(), 1);
    let after = client.list_schemas().await.unwrap();
    assert_eq!(after["orders"]["aggregate"], "orders");
    assert!(after["orders"]["events"]["created"]["fields"].is_array());
    assert_eq!(client.replace_schemas(&json!({})).await.unwrap(), 0);
    assert!(client.list_schemas().await.unwrap().is_empty());

    let assigned = client.tenant_assign("edbx-t", "shard-0003").await.unwrap();
    assert!(assigned.changed);
    assert_eq!(assigned.shard_id, "shard-0003");
    assert!(
        !client
            .tenant_assign("edbx-t", "shard-0003")
            .await
            .unwrap()
            .changed
    );
    assert!(client.tenant_unassign("edbx-t").await.unwrap());
    assert!(!client.tenant_unassign("edbx-t").await.unwrap());
    let quota = client.tenant_quota_set("edbx-t", 100).await.unwrap();
    assert_eq!(quota.quota_mb, Some(100));
    assert!(client.tenant_quota_clear("edbx-t").await.unwrap());
    let _bytes: u64 = client.tenant_quota_recalc("edbx-t").await.unwrap();
    assert!(client.tenant_reload("edbx-t").await.unwrap());
    // The session's own tenant is held open by this very session: the server cannot reopen it.
    assert!(!client.tenant_reload("default").await.unwrap());
    let published = client
        .tenant_schema_publish("default")
        .reason("test")
        .force(true)
        .await
        .unwrap();
    assert!(published.version_id.starts_with('v'), "{published:?}");
    let bad = client.tenant_reload("bad id!").await.unwrap_err();
    assert_eq!(bad.kind(), ErrorKind::InvalidInput);
}

#[tokio::test]
async fn every_operation_noise_verbose() {
    every_operation(ALL_MODES[0]).await;
}

#[tokio::test]
async fn every_operation_plaintext_verbose() {
    every_operation(ALL_MODES[1]).await;
}

#[tokio::test]
async fn every_operation_noise_quiet() {
    every_operation(ALL_MODES[2]).await;
}

#[tokio::test]
async fn every_operation_plaintext_quiet() {
    every_operation(ALL_MODES[3]).await;
}
