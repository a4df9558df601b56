//! `verify` recomputes event hashes and the Merkle root exactly as the server does.

use edbx::{Client, PatchOp, Unverifiable, VerifyOutcome};
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
    // "Could not check" is its own outcome, never a mismatch.
    assert!(!archived.is_mismatch(), "{archived:?}");
    assert_eq!(
        archived.outcome,
        VerifyOutcome::Unverifiable(Unverifiable::Archived)
    );
    assert!(archived.detail.contains("restore"), "{}", archived.detail);
    assert_eq!(archived.merkle_root, check.merkle_root);
    client.restore("ledger", "v1").await.unwrap();
    assert!(client.verify("ledger", "v1").await.unwrap().is_intact());
}

#[tokio::test]
async fn verify_is_never_a_mismatch_while_appends_run() {
    let server = server(ALL_MODES[0]);
    let client = Client::connect(config(&server).pool_size(4)).await.unwrap();
    client
        .create("ledger", "busy", "opened", &json!({"n": 0}))
        .await
        .unwrap();
    // Each check runs alongside a burst of appends from two writers (bounded, so the history
    // stays small enough to read 60 times).
    let burst = |i: u64| {
        let client = client.clone();
        async move {
            let one = |w: u64| {
                let client = client.clone();
                async move {
                    for n in 0..4 {
                        client
                            .apply("ledger", "busy", "moved", &json!({"w": w, "i": i, "n": n}))
                            .await
                            .unwrap();
                    }
                }
            };
            tokio::join!(one(0), one(1));
        }
    };
    let mut versions = Vec::new();
    for i in 0..60 {
        let (check, ()) = tokio::join!(client.verify("ledger", "busy"), burst(i));
        let check = check.unwrap();
        assert!(check.is_intact(), "verify {i} under appends: {check:?}");
        assert_eq!(check.events, check.version);
        versions.push(check.version);
    }
    // The appends really ran during the checks: the checked version kept moving.
    assert!(
        versions.first() < versions.last(),
        "the version moved while verifying: {versions:?}"
    );
    let last = client.verify("ledger", "busy").await.unwrap();
    assert!(last.is_intact(), "{last:?}");
    assert_eq!(last.version, 1 + 60 * 8);
}

#[tokio::test]
async fn verify_of_events_the_server_cannot_list_is_unverifiable_not_a_mismatch() {
    let server = server(ALL_MODES[0]);
    let client = Client::connect(config(&server)).await.unwrap();
    client
        .apply("doc", "huge", "added", &json!({"blob": "x".repeat(7_400)}))
        .allow_unlistable(true)
        .await
        .unwrap();
    let check = client.verify("doc", "huge").await.unwrap();
    assert_eq!(
        check.outcome,
        VerifyOutcome::Unverifiable(Unverifiable::TooLarge),
        "{check:?}"
    );
    assert!(!check.is_mismatch());
    assert_eq!(check.version, 1);
}

#[tokio::test]
async fn verify_of_an_aggregate_too_large_for_get_reads_root_events_root() {
    let server = server(ALL_MODES[0]);
    let client = Client::connect(config(&server)).await.unwrap();
    // Each event lists (under ~7.5 KiB); together the state is over get's ~32 KiB.
    for i in 0..6 {
        client
            .apply(
                "doc",
                "big",
                "grew",
                &json!({ format!("part{i}"): "x".repeat(6_800) }),
            )
            .allow_unlistable(true)
            .await
            .unwrap();
    }
    let get = client.get("doc", "big").await.unwrap_err();
    assert_eq!(get.kind(), edbx::ErrorKind::ReplyTooLarge, "{get}");
    let check = client.verify("doc", "big").await.unwrap();
    assert!(check.is_intact(), "{check:?}");
    assert_eq!((check.events, check.version), (6, 6));
    assert_eq!(
        check.merkle_root,
        client.merkle_root("doc", "big").await.unwrap()
    );
}
