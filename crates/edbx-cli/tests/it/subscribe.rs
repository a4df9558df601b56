//! `edbx subscribe`: lines, the checkpoint file, SIGKILL and restart, Ctrl-C, types, from now.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::Child;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};

use crate::common::{Env, finish, signal, wait_until};

type Lines = Arc<Mutex<Vec<Value>>>;

/// The lines a running `edbx` prints, gathered by a thread (which ends at the pipe's end).
fn gather(child: &mut Child) -> (Lines, std::thread::JoinHandle<()>) {
    let lines: Lines = Arc::default();
    let stdout = child.stdout.take().expect("piped stdout");
    let sink = lines.clone();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { return };
            let value = serde_json::from_str(&line).expect("NDJSON");
            sink.lock().unwrap().push(value);
        }
    });
    (lines, reader)
}

/// Versions per aggregate id, in the order printed.
fn versions(lines: &[Value]) -> BTreeMap<String, Vec<u64>> {
    let mut out: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for line in lines {
        out.entry(line["aggregate_id"].as_str().unwrap().to_owned())
            .or_default()
            .push(line["version"].as_u64().unwrap());
    }
    out
}

/// `edbx subscribe --checkpoint-file FILE --until-caught-up`: its lines.
fn catch_up(env: &Env, file: &str) -> Vec<Value> {
    env.run(&[
        "subscribe",
        "--checkpoint-file",
        file,
        "--until-caught-up",
        "-o",
        "ndjson",
    ])
    .ok()
    .ndjson()
}

#[test]
fn prints_every_event_and_goes_on_from_its_checkpoint_file() {
    let env = Env::start();
    let client = env.client();
    for n in 1..=3 {
        client
            .apply("orders", "o1", "order.noted", &json!({ "n": n }))
            .unwrap();
        client
            .apply("users", "u1", "user.noted", &json!({ "n": n }))
            .unwrap();
    }
    let file = env.path("all.ckpt");
    let file_arg = file.to_str().unwrap();
    let lines = catch_up(&env, file_arg);
    assert_eq!(lines.len(), 6, "{lines:?}");
    let o1 = lines
        .iter()
        .find(|l| l["aggregate_id"] == "o1" && l["version"] == 2)
        .unwrap();
    assert_eq!(o1["aggregate_type"], "orders");
    assert_eq!(o1["event_type"], "order.noted", "the type as written");
    assert_eq!(o1["payload"], json!({ "n": 2 }));
    assert!(o1["created_at"].as_str().unwrap().contains('T'));
    assert_eq!(versions(&lines)["o1"], [1, 2, 3]);
    let saved = std::fs::read_to_string(&file).unwrap();
    assert!(saved.starts_with("esub1;"), "{saved}");

    // Nothing new: nothing printed. Then only what was written since.
    assert!(catch_up(&env, file_arg).is_empty());
    client
        .apply("orders", "o1", "order.noted", &json!({ "n": 4 }))
        .unwrap();
    client
        .apply("orders", "o2", "order.noted", &json!({ "n": 1 }))
        .unwrap();
    let got = versions(&catch_up(&env, file_arg));
    assert_eq!(got["o1"], [4]);
    assert_eq!(got["o2"], [1]);
    assert_eq!(got.len(), 2);

    // A table on request: a header, then a row per event.
    let table = env
        .run(&["subscribe", "--until-caught-up", "-o", "table"])
        .ok();
    assert!(table.stdout.starts_with("TYPE"), "{}", table.stdout);
    assert_eq!(table.stdout.lines().count(), 1 + 8);
}

#[test]
fn a_subscriber_killed_mid_run_loses_nothing_when_restarted_with_its_file() {
    let env = Env::start();
    let file = env.path("feed.ckpt");
    let file_arg = file.to_str().unwrap().to_owned();
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let client = env.client();
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) || n < 150 {
                n += 1;
                let id = format!("a{:02}", n % 20);
                client
                    .apply("feed", &id, "noted", &json!({ "n": n }))
                    .unwrap();
            }
            n
        })
    };
    let mut runs = Vec::new();
    for run in 0..2 {
        let mut child = env.spawn(&["subscribe", "--checkpoint-file", &file_arg, "-o", "ndjson"]);
        let (lines, reader) = gather(&mut child);
        // Killed once it has printed lines and saved a checkpoint, and printed more since.
        let saved = || std::fs::read_to_string(&file).unwrap_or_default();
        let before = saved();
        wait_until(
            Duration::from_secs(60),
            "a checkpoint saved by this run",
            || {
                let now = saved();
                !now.is_empty() && now != before && lines.lock().unwrap().len() >= 20
            },
        );
        let seen = lines.lock().unwrap().len();
        wait_until(Duration::from_secs(60), "more lines", || {
            lines.lock().unwrap().len() > seen
        });
        signal(&child, libc::SIGKILL);
        let _ = child.wait();
        // Every line that reached the pipe before the kill is read.
        reader.join().unwrap();
        let lines = std::mem::take(&mut *lines.lock().unwrap());
        eprintln!("run {run}: {} lines before SIGKILL", lines.len());
        runs.push(lines);
    }
    stop.store(true, Ordering::Relaxed);
    let written = writer.join().unwrap();
    runs.push(catch_up(&env, &file_arg));
    let printed: Vec<Value> = runs.concat();
    // Within a run, each aggregate's events come in version order, one after the other.
    for run in &runs {
        for (id, v) in versions(run) {
            assert!(v.windows(2).all(|w| w[1] == w[0] + 1), "{id}: {v:?}");
        }
    }

    // Every stored event was printed.
    let client = env.client();
    let mut total = 0;
    let got = versions(&printed);
    for aggregate in client.list().aggregate_type("feed") {
        let aggregate = aggregate.unwrap();
        total += aggregate.version;
        let mut seen: Vec<u64> = got[&aggregate.aggregate_id].clone();
        seen.sort_unstable();
        seen.dedup();
        assert_eq!(
            seen,
            (1..=aggregate.version).collect::<Vec<_>>(),
            "{}",
            aggregate.aggregate_id
        );
    }
    assert_eq!(total, written, "every write is stored");
    let distinct: std::collections::BTreeSet<_> = printed
        .iter()
        .map(|l| (l["aggregate_id"].to_string(), l["version"].as_u64()))
        .collect();
    assert_eq!(distinct.len() as u64, written);
}

#[test]
fn ctrl_c_saves_the_checkpoint_and_exits_130() {
    let env = Env::start();
    let client = env.client();
    for n in 1..=5 {
        client
            .apply("orders", "c1", "noted", &json!({ "n": n }))
            .unwrap();
    }
    let file = env.path("c.ckpt");
    let file_arg = file.to_str().unwrap().to_owned();
    let mut child = env.spawn(&["subscribe", "--checkpoint-file", &file_arg, "-o", "ndjson"]);
    let (lines, _reader) = gather(&mut child);
    wait_until(Duration::from_secs(60), "five lines", || {
        lines.lock().unwrap().len() == 5
    });
    signal(&child, libc::SIGINT);
    let run = finish(child, Duration::from_secs(60), "subscribe (Ctrl-C)").code(130);
    assert!(run.stderr.is_empty(), "{}", run.stderr);
    // The saved checkpoint covers the five lines: a new run prints nothing of them.
    client
        .apply("orders", "c1", "noted", &json!({ "n": 6 }))
        .unwrap();
    let again = catch_up(&env, &file_arg);
    assert_eq!(versions(&again)["c1"], [6]);
}

#[test]
fn types_from_now_and_checkpoints_of_other_types() {
    let env = Env::start();
    let client = env.client();
    for t in ["alpha", "beta"] {
        client.apply(t, "x", "noted", &json!({})).unwrap();
    }
    let file = env.path("alpha.ckpt");
    let file_arg = file.to_str().unwrap();
    let lines = env
        .run(&[
            "subscribe",
            "--type",
            "alpha",
            "--checkpoint-file",
            file_arg,
            "--until-caught-up",
            "-o",
            "ndjson",
        ])
        .ok()
        .ndjson();
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["aggregate_type"], "alpha");
    // That file says nothing about beta.
    let refused = env
        .run(&[
            "subscribe",
            "--type",
            "beta",
            "--checkpoint-file",
            file_arg,
            "--until-caught-up",
        ])
        .code(2);
    assert!(refused.stderr.contains("alpha.ckpt"), "{}", refused.stderr);
    assert!(
        refused.stderr.contains("another --checkpoint-file"),
        "{}",
        refused.stderr
    );
    // A file that is not a checkpoint.
    std::fs::write(env.path("junk.ckpt"), "hello").unwrap();
    let junk = env.path("junk.ckpt");
    env.run(&[
        "subscribe",
        "--checkpoint-file",
        junk.to_str().unwrap(),
        "--until-caught-up",
    ])
    .code(2);
    // From now: the history is not printed.
    let now = env
        .run(&[
            "subscribe",
            "--from",
            "now",
            "--until-caught-up",
            "-o",
            "ndjson",
        ])
        .ok();
    assert!(now.stdout.is_empty(), "{}", now.stdout);
}
