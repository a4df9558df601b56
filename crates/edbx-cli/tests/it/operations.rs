//! Every subcommand that talks to a server, each write read back.

use serde_json::json;

use crate::common::{Env, Run, ServerOptions};

#[test]
fn every_operation_with_read_back() {
    let env = Env::start();

    // create: inline payload, note and metadata.
    let created = env
        .run(&[
            "create",
            "orders",
            "ord-1",
            "order.placed",
            r#"{"total": 42.15, "status": "placed"}"#,
            "--note",
            "first",
            "--metadata",
            r#"{"@source": "till"}"#,
        ])
        .ok()
        .json();
    assert_eq!(created["version"], 1);
    assert_eq!(created["state"]["status"], "placed");

    // apply: payload from a file, and from stdin.
    let payment = env.path("payment.json");
    std::fs::write(&payment, r#"{"status": "paid", "paid_by": "card"}"#).unwrap();
    let paid = env
        .run(&[
            "apply",
            "orders",
            "ord-1",
            "order.paid",
            &format!("@{}", payment.display()),
        ])
        .ok()
        .json();
    assert_eq!(
        (paid["version"].clone(), paid["event_type_raw"].clone()),
        (json!(2), json!("order.paid"))
    );
    env.run_stdin(
        &["apply", "orders", "ord-1", "order.shipped", "-"],
        r#"{"status": "shipped"}"#,
    )
    .ok();

    // patch.
    env.run(&[
        "patch",
        "orders",
        "ord-1",
        "order.adjusted",
        r#"[{"op": "replace", "path": "/total", "value": 40}]"#,
    ])
    .ok();

    // get, select, resolve: what the writes made.
    let order = env.run(&["get", "orders", "ord-1"]).ok().json();
    assert_eq!(order["version"], 4);
    assert_eq!(order["state"]["status"], "shipped");
    assert_eq!(order["state"]["paid_by"], "card");
    assert_eq!(order["state"]["total"], "40");
    let library = env.client().get("orders", "ord-1").unwrap().unwrap();
    assert_eq!(library.version, 4);
    assert_eq!(order["merkle_root"], library.merkle_root);
    let selected = env
        .run(&["select", "orders", "ord-1", "status", "paid_by"])
        .ok()
        .json();
    assert_eq!(selected, json!({"status": "shipped", "paid_by": "card"}));
    let resolved = env.run(&["resolve", "orders", "ord-1"]).ok().json();
    assert_eq!(resolved["aggregate"]["aggregate_id"], "ord-1");

    // events: every event, in order, types as written, note and metadata kept.
    let events = env
        .run(&["events", "orders", "ord-1", "--all", "-o", "ndjson"])
        .ok()
        .ndjson();
    let types: Vec<_> = events.iter().map(|e| e["event_type_raw"].clone()).collect();
    assert_eq!(
        types,
        [
            json!("order.placed"),
            json!("order.paid"),
            json!("order.shipped"),
            json!("order.adjusted")
        ]
    );
    assert_eq!(events[0]["metadata"]["note"], "first");
    assert_eq!(events[0]["extensions"]["@source"], "till");
    let after = env
        .run(&[
            "events",
            "orders",
            "ord-1",
            "--after-version",
            "2",
            "-o",
            "ndjson",
        ])
        .ok()
        .ndjson();
    assert_eq!(
        after
            .iter()
            .map(|e| e["version"].clone())
            .collect::<Vec<_>>(),
        [json!(3), json!(4)]
    );
    let table = env
        .run(&["events", "orders", "ord-1", "-o", "table"])
        .ok()
        .stdout;
    assert!(table.starts_with("VER"), "{table}");
    assert!(table.contains("order.shipped"), "{table}");

    // verify.
    let verified = env.run(&["verify", "orders", "ord-1"]).ok().json();
    assert_eq!(verified["intact"], true);
    assert_eq!(verified["events"], 4);
    assert_eq!(verified["merkle_root"], library.merkle_root);

    // list: NDJSON when piped, a JSON array with -o json, a table, a filter, --all.
    for i in 2..=6 {
        env.run(&[
            "create",
            "orders",
            &format!("ord-{i}"),
            "order.placed",
            &format!(r#"{{"total": {i}}}"#),
        ])
        .ok();
    }
    let rows = env.run(&["list", "--type", "orders"]).ok().ndjson();
    assert_eq!(rows.len(), 6);
    let array = env
        .run(&["list", "--type", "orders", "-o", "json"])
        .ok()
        .json();
    assert_eq!(array.as_array().map(Vec::len), Some(6));
    let table = env.run(&["list", "-o", "table"]).ok().stdout;
    assert!(table.lines().next().unwrap().starts_with("TYPE"), "{table}");
    assert_eq!(table.lines().count(), 7, "{table}");
    let filtered = env
        .run(&["list", "--type", "orders", "--filter", "total > 4", "--all"])
        .ok()
        .ndjson();
    let mut ids: Vec<_> = filtered
        .iter()
        .map(|r| r["aggregate_id"].as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    assert_eq!(ids, ["ord-1", "ord-5", "ord-6"]);
    let paged = env
        .run(&[
            "list", "--type", "orders", "--take", "2", "--all", "--limit", "5",
        ])
        .ok()
        .ndjson();
    assert_eq!(paged.len(), 5);

    // referrers: none declared.
    let referrers = env
        .run(&["referrers", "orders", "ord-1", "-o", "json"])
        .ok()
        .json();
    assert_eq!(referrers, json!([]));

    // snapshots.
    let snapshot = env
        .run(&[
            "snapshots",
            "create",
            "orders",
            "ord-1",
            "--comment",
            "before audit",
        ])
        .ok()
        .json();
    let snapshot_id = snapshot["snapshot_id"]
        .as_u64()
        .unwrap_or_else(|| snapshot["snapshot_id"].as_str().unwrap().parse().unwrap());
    let listed = env
        .run(&["snapshots", "list", "--type", "orders", "--id", "ord-1"])
        .ok()
        .ndjson();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["comment"], "before audit");
    let fetched = env
        .run(&["snapshots", "get", &snapshot_id.to_string()])
        .ok()
        .json();
    assert_eq!(fetched["state"], order["state"]);

    // archive and restore.
    env.run(&["archive", "orders", "ord-2", "--comment", "cancelled"])
        .ok();
    let archived = env.run(&["list", "--archived-only"]).ok().ndjson();
    assert_eq!(archived.len(), 1);
    assert_eq!(archived[0]["aggregate_id"], "ord-2");
    let refused = env
        .run(&["apply", "orders", "ord-2", "order.paid", "{}"])
        .code(3);
    assert!(
        refused.stderr.contains("aggregate_archived"),
        "{}",
        refused.stderr
    );
    assert!(
        refused.stderr.contains("edbx restore"),
        "{}",
        refused.stderr
    );
    env.run(&["restore", "orders", "ord-2"]).ok();
    assert!(env.run(&["list", "--archived-only"]).ok().stdout.is_empty());

    // schemas.
    let schemas = env.path("schemas.json");
    std::fs::write(
        &schemas,
        json!({"orders": {
            "aggregate": "orders", "snapshot_threshold": null, "locked": false,
            "field_locks": [], "hidden": false, "hidden_fields": [],
            "events": {"created": {"fields": ["total"]}},
            "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z"
        }})
        .to_string(),
    )
    .unwrap();
    let replaced = env
        .run(&[
            "schemas",
            "replace",
            &format!("@{}", schemas.display()),
            "--yes",
        ])
        .ok()
        .json();
    assert_eq!(replaced["replaced"], 1);
    let listed = env.run(&["schemas", "list"]).ok().json();
    assert_eq!(listed["orders"]["aggregate"], "orders");
    // Removing schemas needs --yes when nobody is at a terminal to ask; nothing is sent.
    let unconfirmed = env.run(&["schemas", "replace", "{}"]).code(2);
    assert!(
        unconfirmed
            .stderr
            .contains("would remove every schema of the tenant (1 now): confirm with --yes"),
        "{}",
        unconfirmed.stderr
    );
    assert_eq!(env.run(&["schemas", "list"]).ok().json(), listed);
    env.run(&["schemas", "replace", "{}", "-y"]).ok();
    assert_eq!(env.run(&["schemas", "list"]).ok().json(), json!({}));

    // tenant administration.
    let assigned = env
        .run(&["tenant", "assign", "edbx-t", "shard-0003"])
        .ok()
        .json();
    assert_eq!(assigned, json!({"changed": true, "shard_id": "shard-0003"}));
    env.run(&["tenant", "unassign", "edbx-t"]).code(2);
    assert_eq!(
        env.run(&["tenant", "unassign", "edbx-t", "--yes"])
            .ok()
            .json()["changed"],
        true
    );
    assert_eq!(
        env.run(&["tenant", "quota-set", "edbx-t", "100"])
            .ok()
            .json()["quota_mb"],
        100
    );
    env.run(&["tenant", "quota-clear", "edbx-t"]).code(2);
    assert_eq!(
        env.run(&["tenant", "quota-clear", "edbx-t", "--yes"])
            .ok()
            .json()["changed"],
        true
    );
    assert!(env.run(&["tenant", "quota-recalc", "edbx-t"]).ok().json()["storage_bytes"].is_u64());
    assert_eq!(
        env.run(&["tenant", "reload", "edbx-t"]).ok().json()["reloaded"],
        true
    );
    let published = env
        .run(&[
            "tenant", "publish", "default", "--reason", "test", "--force",
        ])
        .ok()
        .json();
    assert!(
        published["version_id"].as_str().unwrap().starts_with('v'),
        "{published}"
    );

    // ping.
    let ping = env.run(&["ping", "--count", "3"]).ok().json();
    assert_eq!(ping["encrypted"], true);
    assert_eq!(ping["round_trip_ms"]["count"], 3);
    assert_eq!(ping["server"], format!("127.0.0.1:{}", env.server.port()));
    let status = env.run(&["status"]).ok().json();
    assert_eq!(status["encrypted"], true);
}

#[test]
fn pipes_stdin_and_output_formats() {
    let env = Env::start();
    // Metadata from stdin, payload inline.
    env.run_stdin(
        &[
            "apply",
            "things",
            "t-1",
            "made",
            r#"{"size": 3}"#,
            "--metadata",
            "-",
        ],
        r#"{"@origin": "stdin"}"#,
    )
    .ok();
    let event = &env
        .run(&["events", "things", "t-1", "-o", "ndjson"])
        .ok()
        .ndjson()[0];
    assert_eq!(event["extensions"]["@origin"], "stdin");
    assert_eq!(event["payload"], json!({"size": 3}));

    // Piped single values are compact JSON on one line; -o json on a pipe too.
    let got = env.run(&["get", "things", "t-1"]).ok();
    assert_eq!(got.stdout.lines().count(), 1, "{}", got.stdout);
    let ndjson = env.run(&["get", "things", "t-1", "-o", "ndjson"]).ok();
    assert_eq!(ndjson.stdout, got.stdout);
    let table = env
        .run(&["get", "things", "t-1", "-o", "table"])
        .ok()
        .stdout;
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("aggregate_id") && l.ends_with("t-1")),
        "{table}"
    );

    // A patch from stdin.
    env.run_stdin(
        &["patch", "things", "t-1", "resized", "-"],
        r#"[{"op": "replace", "path": "/size", "value": 4}]"#,
    )
    .ok();
    assert_eq!(
        env.client().get("things", "t-1").unwrap().unwrap().state["size"],
        "4"
    );

    // Nothing is invented: an empty stdin is an error, and nothing is written.
    let empty = env
        .run_stdin(&["apply", "things", "t-2", "made", "-"], "")
        .code(2);
    assert!(empty.stderr.contains("not valid JSON"), "{}", empty.stderr);
    assert!(env.client().get("things", "t-2").unwrap().is_none());
}

#[test]
fn no_silent_shortfalls_take_follows_cursors_and_missing_aggregates_fail() {
    // The server cuts every page at 4 rows, whatever was asked.
    let env = Env::with(ServerOptions::default().page_limit(4));
    let client = env.client();
    for i in 0..10 {
        client
            .create(
                "orders",
                &format!("o-{i:02}"),
                "placed",
                &json!({"total": i}),
            )
            .unwrap();
    }
    for i in 1..10 {
        client
            .apply("orders", "o-00", "bumped", &json!({"total": i}))
            .unwrap();
    }
    let ids = |run: &Run| -> Vec<String> {
        run.ndjson()
            .iter()
            .map(|r| r["aggregate_id"].as_str().unwrap().to_owned())
            .collect()
    };

    // --take N and --limit N: N rows when N exist, across the server's cut pages, in order.
    let seven = env.run(&["list", "--type", "orders", "--take", "7"]).ok();
    let expected: Vec<String> = (0..7).map(|i| format!("o-{i:02}")).collect();
    assert_eq!(ids(&seven), expected);
    let limit = env.run(&["list", "--type", "orders", "--limit", "7"]).ok();
    assert_eq!(ids(&limit), expected);
    // More than exist: all of them, and that is no failure.
    let all = env.run(&["list", "--type", "orders", "--take", "100"]).ok();
    assert_eq!(ids(&all).len(), 10);
    // One default page is never passed off as everything, piped or not.
    let page = env.run(&["list", "--type", "orders"]).ok();
    assert_eq!(ids(&page).len(), 4);
    assert!(page.stderr.contains("more may follow"), "{}", page.stderr);
    // A sort the server cannot page, cut short: the rows it gave, and a failure that says so.
    let sorted = env
        .run(&[
            "list",
            "--type",
            "orders",
            "--sort",
            "aggregate_id:desc",
            "--take",
            "7",
        ])
        .code(3);
    assert_eq!(ids(&sorted).len(), 4);
    assert!(
        sorted.stderr.contains("only 4 of 7 rows"),
        "{}",
        sorted.stderr
    );

    // events --take: the same.
    let events = env.run(&["events", "orders", "o-00", "--take", "7"]).ok();
    let versions: Vec<u64> = events
        .ndjson()
        .iter()
        .map(|e| e["version"].as_u64().unwrap())
        .collect();
    assert_eq!(versions, [1, 2, 3, 4, 5, 6, 7]);
    let rest = env
        .run(&[
            "events",
            "orders",
            "o-00",
            "--take",
            "50",
            "--after-version",
            "7",
        ])
        .ok();
    assert_eq!(rest.ndjson().len(), 3);

    // A missing aggregate's events are an error, as get's (exit 3), in every mode.
    for args in [
        &["events", "orders", "nobody"][..],
        &["events", "orders", "nobody", "--all"],
        &["events", "orders", "nobody", "--take", "5"],
    ] {
        let missing = env.run(args).code(3);
        assert!(
            missing.stderr.contains("no aggregate orders/nobody"),
            "{}",
            missing.stderr
        );
    }
    // An archived one's cannot be read: said so, not an empty history.
    env.run(&["archive", "orders", "o-09"]).ok();
    let archived = env.run(&["events", "orders", "o-09"]).code(3);
    assert!(archived.stderr.contains("archived"), "{}", archived.stderr);
    // An existing aggregate with nothing after the given version is fine.
    env.run(&["events", "orders", "o-01", "--after-version", "1"])
        .ok();
}

#[test]
fn table_columns_line_up_with_wide_characters() {
    use unicode_width::UnicodeWidthStr;
    let env = Env::start();
    // Notes in two-column characters: short, and long enough to be cut.
    for (event, note) in [
        ("placed", "東京"),
        ("paid", "plain"),
        ("shipped", "東京都千代田区丸の内一丁目"),
    ] {
        env.run(&[
            "apply",
            "orders",
            "o-1",
            event,
            r#"{"n": 1}"#,
            "--note",
            note,
        ])
        .ok();
    }
    let table = env
        .run(&["events", "orders", "o-1", "-o", "table"])
        .ok()
        .stdout;
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 4, "{table}");
    // The PAYLOAD column starts at the same display column on every line.
    let at = |line: &str, mark: &str| line[..line.find(mark).unwrap()].width();
    let column = at(lines[0], "PAYLOAD");
    for line in &lines[1..] {
        assert_eq!(at(line, "{"), column, "{table}");
    }
    assert!(table.contains("東京都千代田区…"), "{table}");
}
