//! `verify` recomputes event hashes and the Merkle root exactly as the server does.

use edbx::{Client, PatchOp};
use serde_json::json;

use crate::common::{ALL_MODES, config, server};

#[tokio::test]
async fn verify_recomputes_what_the_server_stored() {
    let server = server(ALL_MODES[0]);
    let client = Client::connect(config(&server)).await.unwrap();
    let payloads = [
        json!({"text": "plain", "n": 42, "f": 1.5, "flag": true, "none": null}),
        json!({"nested": {"z": 1, "a": [1, "two", {"b": null}]}, "unicode": "é\"\\\n✓"}),
        json!({"n": -7, "big": 12345678901234567u64, "empty": "", "list": []}),
        json!({}),
        json!({"text": "again"}),
    ];
    for (i, payload) in payloads.iter().enumerate() {
        client
            .apply("ledger", "v1", &format!("step.s{i}"), payload)
            .await
            .unwrap();
    }
    client
        .patch(
            "ledger",
            "v1",
            "fixed",
            &[PatchOp::replace("/nested/z", json!(2))],
        )
        .await
        .unwrap();
    let check = client.verify("ledger", "v1").await.unwrap();
    assert!(check.is_intact(), "{check:?}");
    assert_eq!(check.events, 6);
    assert_eq!(check.first_bad_version, None);

    // An archived aggregate cannot be checked (its events are not listed).
    client.archive("ledger", "v1").await.unwrap();
    let archived = client.verify("ledger", "v1").await.unwrap();
    assert_eq!(archived.recomputed_root, None);
    assert!(!archived.is_intact());
    assert_eq!(archived.merkle_root, check.merkle_root);
}
