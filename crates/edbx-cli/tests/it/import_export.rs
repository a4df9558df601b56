//! Bulk import with its result log, interrupted (Ctrl-C, SIGKILL, a server restart) and
//! resumed; export, and the round trip into an empty server.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

use crate::common::{Env, finish, signal, wait_until};

type Histories = BTreeMap<(String, String), Vec<Value>>;

/// 10,000 lines: 8,000 aggregates of one event and 500 of four, whose events are spread
/// through the file so that each aggregate's order matters.
fn ten_thousand_lines() -> Vec<Value> {
    let mut singles = (0..8000).map(|i| {
        let mut line = json!({
            "aggregate_type": "single", "aggregate_id": format!("s-{i}"),
            "event_type": "item.created", "payload": {"n": i, "label": format!("item {i} ü")},
        });
        if i % 10 == 0 {
            line["note"] = json!(format!("note {i}"));
        }
        if i % 7 == 0 {
            line["metadata"] = json!({"@batch": i % 3});
        }
        line
    });
    let mut steps = (0..4).flat_map(|step| {
        (0..500).map(move |j| {
            json!({
                "aggregate_type": "multi", "aggregate_id": format!("m-{j}"),
                "event_type": "step.done", "payload": {"step": step, "of": j, "nested": {"k": [step, j]}},
            })
        })
    });
    (0..10_000)
        .map(|k| {
            if k % 5 == 4 {
                steps.next().unwrap()
            } else {
                singles.next().unwrap()
            }
        })
        .collect()
}

fn write_lines(path: &Path, lines: &[Value]) {
    let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
    std::fs::write(path, text).unwrap();
}

/// Lines grouped by aggregate, in order.
fn histories(lines: impl IntoIterator<Item = Value>) -> Histories {
    let mut histories = Histories::new();
    for line in lines {
        let key = (
            line["aggregate_type"].as_str().unwrap().to_owned(),
            line["aggregate_id"].as_str().unwrap().to_owned(),
        );
        histories.entry(key).or_default().push(line);
    }
    histories
}

fn acked_records(log: &Path) -> usize {
    std::fs::read_to_string(log).map_or(0, |text| text.matches(r#""status":"acked""#).count())
}

fn spawn_import(env: &Env, input: &Path, log: &Path, extra: &[&str]) -> Child {
    let (input, log) = (input.to_str().unwrap(), log.to_str().unwrap());
    let mut args = vec!["import", input, "--log", log, "--concurrency", "16"];
    args.extend_from_slice(extra);
    env.spawn(&args)
}

/// Every event's content, as export writes it, without the original record of each event
/// (version, time, id, writer), which a write into another server does not keep.
fn export_events(env: &Env) -> Histories {
    let run = env
        .run(&["export", "--skip-archived", "--progress", "never"])
        .ok();
    histories(run.ndjson().into_iter().map(|mut line| {
        for record in ["version", "created_at", "event_id", "issued_by"] {
            line.as_object_mut().unwrap().remove(record);
        }
        line
    }))
}

/// Every event exactly as the server holds it, its time, id and version included.
fn stored_events(env: &Env) -> Vec<Value> {
    env.run(&["export", "--skip-archived", "--progress", "never"])
        .ok()
        .ndjson()
}

#[test]
fn an_import_interrupted_three_ways_ends_with_every_line_exactly_once() {
    let mut env = Env::start();
    let lines = ten_thousand_lines();
    let input = env.path("events.ndjson");
    let log = env.path("events.log");
    write_lines(&input, &lines);

    // Ctrl-C: the writes in flight finish, the rest waits for --resume.
    let child = spawn_import(&env, &input, &log, &["--progress", "never"]);
    wait_until(Duration::from_secs(120), "2,500 acked lines", || {
        acked_records(&log) >= 2500
    });
    signal(&child, libc::SIGINT);
    let first = finish(child, Duration::from_secs(120), "import (Ctrl-C)").code(130);
    assert!(first.stderr.contains("--resume"), "{}", first.stderr);

    // The log is not overwritten by a plain rerun.
    let refused = env
        .run(&[
            "import",
            input.to_str().unwrap(),
            "--log",
            log.to_str().unwrap(),
        ])
        .code(2);
    assert!(refused.stderr.contains("--resume"), "{}", refused.stderr);

    // SIGKILL: writes in flight are left as "sending" in the log.
    let mut child = spawn_import(&env, &input, &log, &["--resume", "--progress", "never"]);
    wait_until(Duration::from_secs(120), "5,500 acked lines", || {
        acked_records(&log) >= 5500
    });
    signal(&child, libc::SIGKILL);
    child.wait().unwrap();

    // A server restart in the middle of the last run: the import waits for the server, then
    // reads back the writes it lost the answer to.
    let child = spawn_import(&env, &input, &log, &["--resume", "--progress", "always"]);
    wait_until(Duration::from_secs(120), "8,000 acked lines", || {
        acked_records(&log) >= 8000
    });
    env.server.restart().expect("restart the server");
    let last = finish(
        child,
        Duration::from_secs(300),
        "import --resume (server restart)",
    );
    if last.code != 0 {
        let log = std::fs::read_to_string(&log).unwrap();
        let failed: Vec<&str> = log
            .lines()
            .filter(|l| !l.contains(r#""acked""#) && !l.contains(r#""sending""#))
            .take(20)
            .collect();
        panic!(
            "import --resume exited {}: {}\n{}\nlog: {failed:#?}",
            last.code, last.stdout, last.stderr
        );
    }
    let summary = last.json();
    assert_eq!(
        (
            summary["acked"].clone(),
            summary["rejected"].clone(),
            summary["unknown"].clone(),
            summary["skipped"].clone(),
            summary["not_attempted"].clone()
        ),
        (json!(10_000), json!(0), json!(0), json!(0), json!(0)),
        "{summary}"
    );
    // Progress is printed as plain lines when stderr is not a terminal.
    assert!(
        last.stderr.contains("edbx: import: 10,000 of 10,000 lines"),
        "{}",
        last.stderr
    );

    // Every line is in the store exactly once, each aggregate's in order.
    let stored = export_events(&env);
    let expected = histories(lines);
    assert_eq!(stored.len(), 8500);
    for (key, history) in &expected {
        assert_eq!(stored.get(key), Some(history), "aggregate {key:?}");
    }
    let versions: u64 = env
        .client()
        .list()
        .into_iter()
        .map(|a| a.unwrap().version)
        .sum();
    assert_eq!(versions, 10_000);
}

#[test]
fn export_then_import_into_an_empty_server_gives_the_same_aggregates() {
    let source = Env::start();
    let client = source.client();
    // Varied histories: creates, appends, patches (replace and add), notes, metadata,
    // dotted types, nested and non-ASCII payloads, and one archived aggregate.
    for i in 0..200 {
        let payload = json!({"name": format!("Zoë {i}"), "tier": "basic", "tags": ["a", i]});
        let create =
            client
                .as_async()
                .create("customers", &format!("c-{i}"), "customer.joined", &payload);
        let create = if i % 4 == 0 {
            create
                .note("from the CRM")
                .metadata(&json!({"@source": "crm"}))
        } else {
            create
        };
        client.run(create).unwrap();
    }
    for i in (0..200).step_by(3) {
        source
            .run(&[
                "apply",
                "customers",
                &format!("c-{i}"),
                "customer.upgraded",
                r#"{"tier": "gold"}"#,
                "--note",
                "promo",
            ])
            .ok();
    }
    for i in (0..200).step_by(5) {
        source
            .run(&[
                "patch",
                "customers",
                &format!("c-{i}"),
                "customer.renamed",
                &format!(r#"[{{"op": "replace", "path": "/name", "value": "Renamed {i}"}}]"#),
            ])
            .ok();
    }
    for i in (0..200).step_by(11) {
        source
            .run(&[
                "patch",
                "customers",
                &format!("c-{i}"),
                "customer.flagged",
                r#"[{"op": "add", "path": "/vip", "value": true}]"#,
            ])
            .ok();
    }
    source
        .run(&[
            "create",
            "orders",
            "o-1",
            "order.placed",
            r#"{"total": 12.5, "lines": [{"sku": "x", "qty": 2}]}"#,
        ])
        .ok();
    source.run(&["archive", "customers", "c-199"]).ok();

    let dump = source.path("dump.ndjson");
    // An export of everything that cannot hold everything says so, and fails.
    let export = source
        .run(&[
            "export",
            "--out",
            dump.to_str().unwrap(),
            "--progress",
            "never",
        ])
        .code(7);
    assert!(
        export.stderr.contains("leaves out 1 archived aggregate(s)")
            && export.stderr.contains("customers/c-199")
            && export.stderr.contains("dbx backup"),
        "{}",
        export.stderr
    );
    let export = source
        .run(&[
            "export",
            "--out",
            dump.to_str().unwrap(),
            "--skip-archived",
            "--progress",
            "never",
        ])
        .ok();
    assert!(
        export.stderr.contains("1 archived aggregate(s) skipped"),
        "{}",
        export.stderr
    );
    assert!(!source.path("dump.ndjson.partial").exists());

    let target = Env::start();
    let imported = target
        .run(&["import", dump.to_str().unwrap(), "--progress", "never"])
        .ok()
        .json();
    assert_eq!(imported["rejected"], 0, "{imported}");

    // Aggregate by aggregate: the same versions and states, and the same events.
    let states = |env: &Env| -> BTreeMap<(String, String), (Value, Value)> {
        env.run(&["export", "--what", "aggregates", "--progress", "never"])
            .ok()
            .ndjson()
            .into_iter()
            .map(|a| {
                let key = (
                    a["aggregate_type"].as_str().unwrap().to_owned(),
                    a["aggregate_id"].as_str().unwrap().to_owned(),
                );
                (key, (a["version"].clone(), a["state"].clone()))
            })
            .collect()
    };
    let (before, after) = (states(&source), states(&target));
    assert_eq!(
        before.len(),
        200,
        "199 customers and 1 order (the archived one is left out)"
    );
    assert_eq!(before, after);
    assert_eq!(export_events(&source), export_events(&target));
    // The same versions, event by event; the time, id and writer are the target's own.
    let (source_events, target_events) = (
        histories(stored_events(&source)),
        histories(stored_events(&target)),
    );
    let field = |histories: &Histories, name: &str| -> BTreeMap<(String, String), Vec<Value>> {
        histories
            .iter()
            .map(|(key, events)| {
                (
                    key.clone(),
                    events.iter().map(|e| e[name].clone()).collect(),
                )
            })
            .collect()
    };
    assert_eq!(
        field(&source_events, "version"),
        field(&target_events, "version")
    );
    let key = ("orders".to_owned(), "o-1".to_owned());
    assert_ne!(
        field(&source_events, "event_id")[&key],
        field(&target_events, "event_id")[&key]
    );
}

#[test]
fn rejected_lines_are_logged_with_their_code_and_resume_sends_them_again() {
    let env = Env::start();
    env.run(&["create", "vault", "v-1", "opened", "{}"]).ok();
    env.run(&["archive", "vault", "v-1"]).ok();
    let huge = "x".repeat(8000);
    let lines = [
        json!({"aggregate_type": "box", "aggregate_id": "b-1", "event_type": "packed", "payload": {"n": 1}}),
        json!({"aggregate_type": "vault", "aggregate_id": "v-1", "event_type": "deposit", "payload": {"amount": 5}}),
        json!({"aggregate_type": "vault", "aggregate_id": "v-1", "event_type": "deposit", "payload": {"amount": 6}}),
        json!({"aggregate_type": "box", "aggregate_id": "b-2", "event_type": "packed", "payload": {"blob": huge}}),
        json!({"aggregate_type": "box", "aggregate_id": "b-1", "event_type": "shipped", "payload": {"n": 2}}),
    ];
    let input = env.path("mixed.ndjson");
    write_lines(&input, &lines);
    let first = env
        .run(&["import", input.to_str().unwrap(), "--progress", "never"])
        .code(7);
    let summary = first.json();
    assert_eq!(
        (
            summary["acked"].clone(),
            summary["rejected"].clone(),
            summary["skipped"].clone()
        ),
        (json!(2), json!(2), json!(1)),
        "{summary}"
    );
    let log = std::fs::read_to_string(env.path("mixed.ndjson.log")).unwrap();
    assert!(log.contains(r#""code":"aggregate_archived""#), "{log}");
    assert!(log.contains(r#""code":"invalid_input""#), "{log}");
    assert!(
        log.contains("line 2 of this aggregate was rejected"),
        "{log}"
    );
    assert_eq!(env.client().get("box", "b-1").unwrap().unwrap().version, 2);

    // Fix the cause and resume: the refused lines go again, the applied ones do not.
    env.run(&["restore", "vault", "v-1"]).ok();
    let second = env
        .run(&[
            "import",
            input.to_str().unwrap(),
            "--resume",
            "--progress",
            "never",
        ])
        .code(7);
    let summary = second.json();
    assert_eq!(
        (summary["acked"].clone(), summary["rejected"].clone()),
        (json!(4), json!(1)),
        "{summary}"
    );
    assert_eq!(
        env.client().get("vault", "v-1").unwrap().unwrap().version,
        3
    );
    assert_eq!(env.client().get("box", "b-1").unwrap().unwrap().version, 2);

    // Input that is not events: nothing is sent.
    let bad = env.path("bad.ndjson");
    std::fs::write(&bad, "{\"aggregate_type\": \"box\", \"aggregate_id\": \"b-9\", \"event_type\": \"packed\", \"payload\": {}}\nnot json\n").unwrap();
    let refused = env.run(&["import", bad.to_str().unwrap()]).code(2);
    assert!(refused.stderr.contains("line 2"), "{}", refused.stderr);
    assert!(env.client().get("box", "b-9").unwrap().is_none());

    // A line far longer than any event the server takes (here 4 MiB, with no newline in it)
    // is refused by number, without being read whole; nothing is sent.
    let huge = env.path("huge.ndjson");
    let mut text = String::from(
        "{\"aggregate_type\": \"box\", \"aggregate_id\": \"b-9\", \"event_type\": \"packed\", \"payload\": {}}\n",
    );
    text.push_str(&"x".repeat(4 << 20));
    std::fs::write(&huge, text).unwrap();
    let refused = env.run(&["import", huge.to_str().unwrap()]).code(2);
    assert!(
        refused.stderr.contains("line 2 is longer than"),
        "{}",
        refused.stderr
    );
    assert!(env.client().get("box", "b-9").unwrap().is_none());

    // A log belongs to one input.
    let other_input = env.path("other.ndjson");
    write_lines(&other_input, &lines[..1]);
    let other = env
        .run(&[
            "import",
            other_input.to_str().unwrap(),
            "--log",
            env.path("mixed.ndjson.log").to_str().unwrap(),
            "--resume",
        ])
        .code(2);
    assert!(other.stderr.contains("another input"), "{}", other.stderr);

    // From stdin, with a log.
    run_stdin_import(&env);
}

fn run_stdin_import(env: &Env) {
    let line = json!({"aggregate_type": "piped", "aggregate_id": "p-1", "event_type": "came", "payload": {"via": "stdin"}});
    env.run_stdin(&["import", "-"], &format!("{line}\n"))
        .code(2);
    let log = env.path("stdin.log");
    env.run_stdin(
        &[
            "import",
            "-",
            "--log",
            log.to_str().unwrap(),
            "--progress",
            "never",
        ],
        &format!("{line}\n"),
    )
    .ok();
    assert_eq!(
        env.client().get("piped", "p-1").unwrap().unwrap().state["via"],
        "stdin"
    );
}

#[test]
fn on_a_terminal_the_import_shows_a_bar_with_rate_and_eta() {
    let env = Env::start();
    // Appends to one aggregate: slow enough for the bar to be drawn a few times.
    let lines: Vec<Value> = (0..300)
        .map(|i| json!({"aggregate_type": "t", "aggregate_id": "one", "event_type": "e", "payload": {"i": i}}))
        .collect();
    let input = env.path("bar.ndjson");
    write_lines(&input, &lines);
    let (terminal, tty) = crate::pty::Terminal::open();
    let child = env
        .cmd()
        .args(["import", input.to_str().unwrap()])
        .env("TERM", "xterm")
        .stdout(Stdio::from(tty.try_clone().unwrap()))
        .stderr(Stdio::from(tty))
        .spawn()
        .unwrap();
    let at = terminal.expect("import [", 0);
    let at = terminal.expect("lines", at);
    let at = terminal.expect("ETA", at);
    terminal.expect("edbx: import: 300 of 300 lines (100 %)", at);
    let run = finish(child, Duration::from_secs(120), "import (terminal)");
    assert_eq!(run.code, 0);
    assert_eq!(env.client().get("t", "one").unwrap().unwrap().version, 300);
}

/// Lines of a file as JSON values.
fn read_lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The server's address as `edbx` is given it (`host:port`).
fn address(env: &Env) -> String {
    format!("{}:{}", env.server.host(), env.server.port())
}

fn version_of(env: &Env, aggregate_type: &str, id: &str) -> u64 {
    env.client()
        .get(aggregate_type, id)
        .unwrap()
        .map_or(0, |a| a.version)
}

#[test]
fn an_export_imported_into_its_own_server_changes_nothing_and_other_content_is_refused() {
    let env = Env::start();
    for i in 0..30 {
        env.run(&[
            "create",
            "accounts",
            &format!("a-{i}"),
            "account.opened",
            &format!(r#"{{"owner": "Zoë {i}"}}"#),
            "--note",
            "branch 7",
        ])
        .ok();
        for step in 0..(i % 4) {
            env.run(&[
                "apply",
                "accounts",
                &format!("a-{i}"),
                "funds.deposited",
                &format!(r#"{{"amount": {step}}}"#),
            ])
            .ok();
        }
    }
    let dump = env.path("dump.ndjson");
    env.run(&[
        "export",
        "--out",
        dump.to_str().unwrap(),
        "--progress",
        "never",
    ])
    .ok();
    // Each line carries its version and the original event's record.
    let lines = read_lines(&dump);
    assert_eq!(lines.len(), 30 + (0..30).map(|i| i % 4).sum::<usize>());
    for line in &lines {
        assert!(line["version"].as_u64().unwrap() >= 1, "{line}");
        assert!(line["created_at"].is_string(), "{line}");
        assert!(line["event_id"].is_string(), "{line}");
        assert!(line["issued_by"]["user"].is_string(), "{line}");
    }
    let before = stored_events(&env);

    // Into the same server: every line is found there, nothing is written.
    let again = env
        .run(&["import", dump.to_str().unwrap(), "--progress", "never"])
        .ok()
        .json();
    assert_eq!(
        (
            again["acked"].clone(),
            again["present"].clone(),
            again["rejected"].clone()
        ),
        (json!(0), json!(lines.len()), json!(0)),
        "{again}"
    );
    assert_eq!(
        stored_events(&env),
        before,
        "events, their ids and times unchanged"
    );

    // An aggregate that moved on since the export: its exported versions are there, the new
    // one stays.
    env.run(&[
        "apply",
        "accounts",
        "a-1",
        "funds.withdrawn",
        r#"{"amount": 1}"#,
    ])
    .ok();
    let later = env.path("later.ndjson");
    write_lines(&later, &lines);
    let again = env
        .run(&["import", later.to_str().unwrap(), "--progress", "never"])
        .ok()
        .json();
    assert_eq!(again["present"], json!(lines.len()), "{again}");
    assert_eq!(version_of(&env, "accounts", "a-1"), 3);

    // Part of a history already there: only the rest is appended, at its own versions.
    let a3: Vec<Value> = lines
        .iter()
        .filter(|l| l["aggregate_id"] == "a-3")
        .cloned()
        .collect();
    assert_eq!(a3.len(), 4);
    let mut longer = a3.clone();
    let mut next = a3[3].clone();
    next["version"] = json!(5);
    next["payload"] = json!({"amount": 99});
    longer.push(next);
    let longer_path = env.path("longer.ndjson");
    write_lines(&longer_path, &longer);
    let run = env
        .run(&[
            "import",
            longer_path.to_str().unwrap(),
            "--progress",
            "never",
        ])
        .ok()
        .json();
    assert_eq!(
        (run["acked"].clone(), run["present"].clone()),
        (json!(1), json!(4)),
        "{run}"
    );
    assert_eq!(version_of(&env, "accounts", "a-3"), 5);

    // Other content at a version the server holds: refused, nothing written, the aggregate's
    // later lines not sent. A version past the aggregate's end: refused, not written out of
    // place.
    let mut conflict = a3[1].clone();
    conflict["payload"] = json!({"amount": 1000});
    let mut after_conflict = a3[2].clone();
    after_conflict["payload"] = json!({"amount": 2000});
    let mut gap = lines
        .iter()
        .find(|l| l["aggregate_id"] == "a-2" && l["version"] == 1)
        .unwrap()
        .clone();
    gap["version"] = json!(9);
    let bad = env.path("conflicts.ndjson");
    write_lines(&bad, &[conflict, after_conflict, gap]);
    let before = stored_events(&env);
    let refused = env
        .run(&["import", bad.to_str().unwrap(), "--progress", "never"])
        .code(7);
    let summary = refused.json();
    assert_eq!(
        (
            summary["acked"].clone(),
            summary["rejected"].clone(),
            summary["skipped"].clone()
        ),
        (json!(0), json!(2), json!(1)),
        "{summary}"
    );
    let log = std::fs::read_to_string(env.path("conflicts.ndjson.log")).unwrap();
    assert!(log.contains(r#""code":"conflict""#), "{log}");
    assert!(log.contains("differs in payload"), "{log}");
    assert!(log.contains(r#""code":"gap""#), "{log}");
    assert!(log.contains("versions 4 to 8 are missing"), "{log}");
    assert_eq!(stored_events(&env), before, "nothing written");

    // An archived aggregate cannot be compared: its lines are refused, not written.
    env.run(&["archive", "accounts", "a-2"]).ok();
    let archived_log = env.path("archived.log");
    let run = env
        .run(&[
            "import",
            dump.to_str().unwrap(),
            "--log",
            archived_log.to_str().unwrap(),
            "--progress",
            "never",
        ])
        .code(7)
        .json();
    assert_eq!(
        (
            run["acked"].clone(),
            run["rejected"].clone(),
            run["skipped"].clone()
        ),
        (json!(0), json!(1), json!(2)),
        "{run}"
    );
    let log = std::fs::read_to_string(&archived_log).unwrap();
    assert!(log.contains("archived: its events cannot be read"), "{log}");
    assert_eq!(version_of(&env, "accounts", "a-2"), 3);
}

#[test]
fn every_line_is_checked_by_the_engines_rules_before_the_first_is_sent() {
    let env = Env::start();
    let good = json!({"aggregate_type": "box", "aggregate_id": "b-1", "event_type": "packed", "payload": {}});
    for (bad, reason) in [
        (
            json!({"aggregate_type": "Box", "aggregate_id": "b-2", "event_type": "packed", "payload": {}}),
            "aggregate_type \"Box\" is invalid",
        ),
        (
            json!({"aggregate_type": "box", "aggregate_id": "b 2", "event_type": "packed", "payload": {}}),
            "aggregate_id \"b 2\" is invalid",
        ),
        (
            json!({"aggregate_type": "box", "aggregate_id": "b-2", "event_type": "Packed!", "payload": {}}),
            "event_type \"Packed!\" is invalid",
        ),
        (
            json!({"aggregate_type": "box", "aggregate_id": "b-2", "event_type": "packed", "payload": {}, "metadata": {"source": "x"}}),
            "metadata key \"source\" is invalid",
        ),
        (
            json!({"aggregate_type": "box", "aggregate_id": "b-2", "event_type": "packed", "payload": {}, "note": "n".repeat(129)}),
            "note is 129 characters",
        ),
    ] {
        let input = env.path("checked.ndjson");
        write_lines(&input, &[good.clone(), bad]);
        let run = env
            .run(&["import", input.to_str().unwrap(), "--progress", "never"])
            .code(2);
        assert!(
            run.stderr.contains("line 2: ") && run.stderr.contains(reason),
            "{reason}: {}",
            run.stderr
        );
        assert!(run.stderr.contains("nothing was sent"), "{}", run.stderr);
        assert!(!env.path("checked.ndjson.log").exists());
    }
    // Versions out of order within an aggregate, or mixed with lines without one.
    let versioned = |v: u64| json!({"aggregate_type": "box", "aggregate_id": "b-3", "event_type": "packed", "payload": {"v": v}, "version": v});
    let input = env.path("order.ndjson");
    write_lines(&input, &[versioned(1), versioned(3)]);
    let run = env.run(&["import", input.to_str().unwrap()]).code(2);
    assert!(
        run.stderr
            .contains("version 3 of box/b-3 follows its version 1"),
        "{}",
        run.stderr
    );
    write_lines(
        &input,
        &[
            versioned(1),
            json!({"aggregate_type": "box", "aggregate_id": "b-3", "event_type": "packed", "payload": {}}),
        ],
    );
    let run = env.run(&["import", input.to_str().unwrap()]).code(2);
    assert!(
        run.stderr.contains("with a version and lines without"),
        "{}",
        run.stderr
    );
    assert_eq!(version_of(&env, "box", "b-1"), 0, "nothing was written");
    assert_eq!(version_of(&env, "box", "b-3"), 0, "nothing was written");
}

/// Lines 1 and 3 go in, line 2 is refused (its aggregate is archived) and line 4 (same
/// aggregate) is skipped: a log to resume.
fn refused_import(env: &Env) -> (std::path::PathBuf, std::path::PathBuf, Vec<Value>) {
    env.run(&["create", "vault", "v-1", "opened", "{}"]).ok();
    env.run(&["archive", "vault", "v-1"]).ok();
    let lines = vec![
        json!({"aggregate_type": "box", "aggregate_id": "b-1", "event_type": "packed", "payload": {"n": 1}}),
        json!({"aggregate_type": "vault", "aggregate_id": "v-1", "event_type": "deposit", "payload": {"amount": 5}}),
        json!({"aggregate_type": "box", "aggregate_id": "b-1", "event_type": "shipped", "payload": {"n": 2}}),
        json!({"aggregate_type": "vault", "aggregate_id": "v-1", "event_type": "deposit", "payload": {"amount": 6}}),
    ];
    let input = env.path("in.ndjson");
    let log = env.path("in.log");
    write_lines(&input, &lines);
    let run = env
        .run(&[
            "import",
            input.to_str().unwrap(),
            "--log",
            log.to_str().unwrap(),
            "--progress",
            "never",
        ])
        .code(7);
    assert_eq!(run.json()["acked"], 2, "{}", run.stdout);
    (input, log, lines)
}

#[test]
fn a_result_log_resumes_only_against_its_own_destination() {
    let b = Env::start();
    let (input, log, _) = refused_import(&b);
    let header: Value = serde_json::from_str(
        std::fs::read_to_string(&log)
            .unwrap()
            .lines()
            .next()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(header["server"], json!(address(&b)), "{header}");

    // Another server: refused before anything is sent.
    let a = Env::start();
    let resume = |env: &Env| {
        env.run(&[
            "import",
            input.to_str().unwrap(),
            "--log",
            log.to_str().unwrap(),
            "--resume",
            "--progress",
            "never",
        ])
    };
    let refused = resume(&a).code(2);
    assert!(
        refused
            .stderr
            .contains(&format!("records an import into {}", address(&b)))
            && refused
                .stderr
                .contains(&format!("would write to {}", address(&a))),
        "{}",
        refused.stderr
    );
    assert_eq!(version_of(&a, "box", "b-1"), 0);

    // Another tenant of the same server: refused too.
    let other_tenant = b
        .cmd()
        .env("EVENTDBX_TENANT_ID", "elsewhere")
        .args([
            "import",
            input.to_str().unwrap(),
            "--log",
            log.to_str().unwrap(),
            "--resume",
        ])
        .output();
    let other_tenant = crate::common::Run::of(other_tenant, &["import (tenant)"]).code(2);
    assert!(
        other_tenant.stderr.contains("(tenant elsewhere)"),
        "{}",
        other_tenant.stderr
    );

    // Another store behind the address the log names (a name that now points elsewhere, a
    // server rebuilt on the same port): the writes the log records are not there.
    let text = std::fs::read_to_string(&log).unwrap();
    let moved = text.replace(&address(&b), &address(&a));
    let moved_log = b.path("moved.log");
    std::fs::write(&moved_log, moved).unwrap();
    let refused = a
        .run(&[
            "import",
            input.to_str().unwrap(),
            "--log",
            moved_log.to_str().unwrap(),
            "--resume",
        ])
        .code(2);
    assert!(
        refused.stderr.contains("does not hold what") && refused.stderr.contains("box/b-1"),
        "{}",
        refused.stderr
    );
    assert_eq!(version_of(&a, "box", "b-1"), 0);

    // The right server: resumes.
    b.run(&["restore", "vault", "v-1"]).ok();
    let done = resume(&b).ok().json();
    assert_eq!(done["acked"], 4, "{done}");
    assert_eq!(version_of(&b, "vault", "v-1"), 3);
}

#[test]
fn a_refused_line_can_be_edited_and_resumed_but_an_applied_one_cannot() {
    let env = Env::start();
    let (input, log, mut lines) = refused_import(&env);
    let resume = || {
        env.run(&[
            "import",
            input.to_str().unwrap(),
            "--log",
            log.to_str().unwrap(),
            "--resume",
            "--progress",
            "never",
        ])
    };
    // An applied line edited: refused, saying which.
    let mut edited = lines.clone();
    edited[0]["payload"] = json!({"n": 100});
    write_lines(&input, &edited);
    let refused = resume().code(2);
    assert!(
        refused
            .stderr
            .contains("its line 1, which the log shows applied, is different"),
        "{}",
        refused.stderr
    );
    // The refused lines edited to go to another aggregate: resumed, saying what changed.
    lines[1]["aggregate_id"] = json!("v-2");
    lines[3]["aggregate_id"] = json!("v-2");
    write_lines(&input, &lines);
    let done = resume().ok();
    assert!(
        done.stderr
            .contains(&format!("changed since {} was started", log.display()))
            && done.stderr.contains("line(s) 2"),
        "{}",
        done.stderr
    );
    assert_eq!(done.json()["acked"], 4, "{}", done.stdout);
    assert_eq!(version_of(&env, "vault", "v-2"), 2);
    assert_eq!(version_of(&env, "box", "b-1"), 2);
    assert_eq!(version_of(&env, "vault", "v-1"), 1);
}

#[test]
fn the_server_does_not_serve_an_archived_aggregates_events() {
    // Why export of events cannot hold archived aggregates: listed, but no events.
    let env = Env::start();
    env.run(&["create", "vault", "v-1", "opened", r#"{"n": 1}"#])
        .ok();
    env.run(&["archive", "vault", "v-1"]).ok();
    let client = env.client();
    let listed: Vec<_> = client
        .list()
        .include_archived(true)
        .into_iter()
        .map(|a| a.unwrap())
        .collect();
    assert_eq!(listed.len(), 1);
    assert!(listed[0].archived);
    assert_eq!(listed[0].version, 1);
    let events: Vec<_> = client.events("vault", "v-1").into_iter().collect();
    assert!(events.is_empty(), "{events:?}");
    let run = env.run(&["export", "--progress", "never"]).code(7);
    assert!(run.stdout.is_empty(), "{}", run.stdout);
    assert!(run.stderr.contains("vault/v-1"), "{}", run.stderr);
}

#[test]
fn a_versioned_import_killed_and_resumed_through_a_restart_writes_every_version_once() {
    let mut env = Env::start();
    // 4,000 lines of the 10,000-line mix, each with its version in its aggregate.
    let mut next_version: BTreeMap<(String, String), u64> = BTreeMap::new();
    let lines: Vec<Value> = ten_thousand_lines()
        .into_iter()
        .take(4000)
        .map(|mut line| {
            let key = (
                line["aggregate_type"].as_str().unwrap().to_owned(),
                line["aggregate_id"].as_str().unwrap().to_owned(),
            );
            let version = next_version.entry(key).or_insert(0);
            *version += 1;
            line["version"] = json!(*version);
            line
        })
        .collect();
    let input = env.path("versioned.ndjson");
    let log = env.path("versioned.log");
    write_lines(&input, &lines);

    let mut child = spawn_import(&env, &input, &log, &["--progress", "never"]);
    wait_until(Duration::from_secs(120), "1,000 acked lines", || {
        acked_records(&log) >= 1000
    });
    signal(&child, libc::SIGKILL);
    child.wait().unwrap();

    let child = spawn_import(&env, &input, &log, &["--resume", "--progress", "never"]);
    wait_until(Duration::from_secs(120), "2,500 acked lines", || {
        acked_records(&log) >= 2500
    });
    env.server.restart().expect("restart the server");
    let last = finish(child, Duration::from_secs(300), "import --resume (restart)").ok();
    let summary = last.json();
    assert_eq!(
        summary["acked"].as_u64().unwrap() + summary["present"].as_u64().unwrap(),
        4000,
        "{summary}"
    );
    assert_eq!(
        (
            summary["rejected"].clone(),
            summary["unknown"].clone(),
            summary["skipped"].clone()
        ),
        (json!(0), json!(0), json!(0)),
        "{summary}"
    );
    // Every version exactly once, with its content.
    let stored = histories(stored_events(&env).into_iter().map(|mut e| {
        for record in ["created_at", "event_id", "issued_by"] {
            e.as_object_mut().unwrap().remove(record);
        }
        e
    }));
    assert_eq!(stored, histories(lines.clone()));

    // And once more, from the start: nothing to write.
    let again_log = env.path("again.log");
    let again = env
        .run(&[
            "import",
            input.to_str().unwrap(),
            "--log",
            again_log.to_str().unwrap(),
            "--progress",
            "never",
        ])
        .ok()
        .json();
    assert_eq!(
        (again["acked"].clone(), again["present"].clone()),
        (json!(0), json!(4000)),
        "{again}"
    );
}

#[test]
fn an_export_into_a_pipe_or_through_a_link_keeps_them() {
    use std::os::unix::fs::FileTypeExt;

    let env = Env::start();
    let client = env.client();
    for id in ["o-1", "o-2"] {
        client
            .create("orders", id, "created", &json!({"id": id}))
            .unwrap();
    }
    let events = |text: &str| text.lines().filter(|l| !l.is_empty()).count();

    // A named pipe: written into, and still a pipe for its reader afterwards.
    let fifo = env.path("events.fifo");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || std::fs::read_to_string(fifo).unwrap())
    };
    let fifo_arg = fifo.to_str().unwrap();
    env.run(&["export", "--out", fifo_arg, "--progress", "never"])
        .ok();
    assert_eq!(events(&reader.join().unwrap()), 2);
    assert!(
        std::fs::symlink_metadata(&fifo)
            .unwrap()
            .file_type()
            .is_fifo()
    );

    // A link to a file: the file gets the export, the link stays a link.
    let real = env.path("real.ndjson");
    std::fs::write(&real, "old\n").unwrap();
    let link = env.path("link.ndjson");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    env.run(&[
        "export",
        "--out",
        link.to_str().unwrap(),
        "--progress",
        "never",
    ])
    .ok();
    assert!(
        std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_eq!(events(&std::fs::read_to_string(&real).unwrap()), 2);

    // A link to nothing yet: the file is made where it points.
    let later = env.path("later.ndjson");
    let dangling = env.path("dangling.ndjson");
    std::os::unix::fs::symlink(&later, &dangling).unwrap();
    env.run(&[
        "export",
        "--out",
        dangling.to_str().unwrap(),
        "--progress",
        "never",
    ])
    .ok();
    assert!(
        std::fs::symlink_metadata(&dangling)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_eq!(events(&std::fs::read_to_string(&later).unwrap()), 2);

    // Parquet through a link: the same.
    let parquet_real = env.path("real.parquet");
    let parquet_link = env.path("link.parquet");
    std::os::unix::fs::symlink(&parquet_real, &parquet_link).unwrap();
    env.run(&[
        "export",
        "--format",
        "parquet",
        "--out",
        parquet_link.to_str().unwrap(),
        "--progress",
        "never",
    ])
    .ok();
    assert!(
        std::fs::symlink_metadata(&parquet_link)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert!(std::fs::read(&parquet_real).unwrap().starts_with(b"PAR1"));

    // A directory is refused before anything is read, naming it.
    let dir = env.path("a-directory");
    std::fs::create_dir(&dir).unwrap();
    let refused = env
        .run(&[
            "export",
            "--out",
            dir.to_str().unwrap(),
            "--progress",
            "never",
        ])
        .code(2);
    assert!(
        refused.stderr.contains("a-directory is a directory"),
        "{}",
        refused.stderr
    );
}
