//! `Event::apply_to` folds events into the state the server stores: at the last version it
//! equals `get`, and at earlier versions the snapshots the server took then.

use std::collections::BTreeMap;

use edbx::{Client, PatchOp};
use serde_json::json;

use crate::common::{ALL_MODES, config, server};

#[tokio::test]
async fn folding_the_events_gives_the_servers_state_at_every_snapshot_and_at_the_end() {
    let server = server(ALL_MODES[0]);
    let client = Client::connect(config(&server)).await.unwrap();
    let payloads = [
        json!({"text": "plain", "n": 42, "f": 1.5, "flag": true, "none": null}),
        json!({"nested": {"z": 1, "a": [1, "two", {"b": null}]}, "unicode": "é\"\\\n✓<b>"}),
        json!({"n": -7, "big": 12345678901234567u64, "empty": "", "list": [], "text": "42"}),
        json!({}),
        json!({"none": "now set", "f": 1e-7}),
    ];
    for (i, payload) in payloads.iter().enumerate() {
        client
            .apply("ledger", "f1", &format!("step.s{i}"), payload)
            .await
            .unwrap();
        client.create_snapshot("ledger", "f1").await.unwrap();
    }
    // A patch's event carries the new values of the top-level keys it touched.
    client
        .patch(
            "ledger",
            "f1",
            "fixed",
            &[
                PatchOp::replace("/nested/z", json!(2)),
                PatchOp::add("/nested/new", json!({"k": [true]})),
            ],
        )
        .await
        .unwrap();

    let events = client
        .events("ledger", "f1")
        .take(2)
        .stream()
        .collect_all()
        .await
        .unwrap();
    assert_eq!(events.len(), payloads.len() + 1);
    let state_at = |version: u64| {
        let mut state = BTreeMap::new();
        for event in events.iter().take_while(|e| e.version <= version) {
            event.apply_to(&mut state);
        }
        state
    };

    let current = client.get("ledger", "f1").await.unwrap().unwrap();
    assert_eq!(state_at(current.version), current.state);

    // Every snapshot the server took along the way matches the fold at its version.
    let listed = client
        .list_snapshots()
        .aggregate("ledger", "f1")
        .await
        .unwrap();
    assert_eq!(listed.len(), payloads.len());
    for snapshot in listed {
        assert_eq!(
            state_at(snapshot.version),
            snapshot.state,
            "at version {}",
            snapshot.version
        );
    }
}
