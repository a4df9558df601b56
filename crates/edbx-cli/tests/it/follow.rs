//! `events --follow` prints what another client appends, like `tail -f`.

use std::io::{BufRead, BufReader};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::{Value, json};

use crate::common::{Env, finish, signal};

#[test]
fn follow_prints_events_appended_by_another_client() {
    let env = Env::start();
    let client = env.client();
    client
        .create("sensors", "s-1", "reading", &json!({"celsius": 20}))
        .unwrap();

    let mut child = env.spawn(&[
        "events",
        "sensors",
        "s-1",
        "--follow",
        "--interval",
        "100",
        "-o",
        "ndjson",
    ]);
    let stdout = child.stdout.take().unwrap();
    let (lines, received) = mpsc::channel::<Value>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { return };
            let _ = lines.send(serde_json::from_str(&line).expect("NDJSON"));
        }
    });
    let next = || {
        received
            .recv_timeout(Duration::from_secs(30))
            .expect("an event line from --follow")
    };
    assert_eq!(next()["version"], 1);
    for celsius in [21, 22] {
        client
            .apply("sensors", "s-1", "reading", &json!({ "celsius": celsius }))
            .unwrap();
        let event = next();
        assert_eq!(event["payload"]["celsius"], celsius);
    }
    signal(&child, libc::SIGINT);
    // Ctrl-C exits 130, as it does for every command, quietly.
    let run = finish(child, Duration::from_secs(60), "events --follow (Ctrl-C)").code(130);
    assert!(run.stderr.is_empty(), "{}", run.stderr);
}
