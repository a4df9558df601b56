//! Every exit code, each from the situation that a script would branch on.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crate::common::{Env, Run, finish, signal};

#[test]
fn usage_server_connection_and_auth_failures_have_their_own_codes() {
    let env = Env::start();

    // 2: a wrong command line, or input that is not JSON: nothing is sent.
    env.run(&["get", "orders"]).code(2);
    let bad = env
        .run(&["create", "orders", "o-1", "placed", "{total: 1}"])
        .code(2);
    assert!(bad.stderr.contains("not valid JSON"), "{}", bad.stderr);
    assert!(
        bad.stderr.contains("→"),
        "a hint says what to do: {}",
        bad.stderr
    );
    assert!(env.client().get("orders", "o-1").unwrap().is_none());
    let not_object = env
        .run(&["apply", "orders", "o-1", "placed", "[1, 2]"])
        .code(2);
    assert!(!not_object.stderr.is_empty());
    assert!(env.client().get("orders", "o-1").unwrap().is_none());
    let no_token = Run::of(
        env.bare().args(["get", "orders", "o-1"]).output(),
        &["get (no token)"],
    )
    .code(2);
    assert!(no_token.stderr.contains("no token"), "{}", no_token.stderr);
    assert!(
        no_token.stderr.contains("--token-file"),
        "{}",
        no_token.stderr
    );

    // 3: the server refused, with its code; and a missing aggregate.
    env.run(&["create", "orders", "o-1", "placed", r#"{"total": 1}"#])
        .ok();
    let exists = env
        .run(&["create", "orders", "o-1", "placed", r#"{"total": 1}"#])
        .code(3);
    assert!(
        exists.stderr.contains("schema_violation"),
        "{}",
        exists.stderr
    );
    let missing = env.run(&["get", "orders", "nobody"]).code(3);
    assert!(
        missing.stderr.contains("no aggregate orders/nobody"),
        "{}",
        missing.stderr
    );

    // 4: nothing listens there.
    let closed_port = {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let unreachable = env
        .run(&[
            "get",
            "orders",
            "o-1",
            "--port",
            &closed_port.to_string(),
            "--timeout",
            "2",
        ])
        .code(4);
    assert!(
        unreachable.stderr.contains("edbx ping"),
        "{}",
        unreachable.stderr
    );
    // Local input is checked before connecting: a malformed payload is 2 (input), not 4,
    // when no server answers.
    for (args, says) in [
        (
            ["create", "orders", "o-9", "placed", "{total: 1}"],
            "not valid JSON",
        ),
        (
            ["patch", "orders", "o-9", "fixed", "{not json"],
            "not valid JSON",
        ),
    ] {
        let mut args = args.to_vec();
        let port = closed_port.to_string();
        args.extend(["--port", &port, "--timeout", "2"]);
        let bad = env.run(&args).code(2);
        assert!(bad.stderr.contains(says), "{}", bad.stderr);
        assert!(!bad.stderr.contains("connect"), "{}", bad.stderr);
    }
    // So are listing flags.
    let port = closed_port.to_string();
    for (args, says) in [
        (vec!["list", "--take", "0"], "--take"),
        (vec!["events", "orders", "o-1", "--take", "0"], "--take"),
        (vec!["list", "--take", "3", "--limit", "4"], "differ"),
    ] {
        let mut args = args;
        args.extend(["--port", &port, "--timeout", "2"]);
        let bad = env.run(&args).code(2);
        assert!(bad.stderr.contains(says), "{}", bad.stderr);
    }

    // 5: a token the server refuses; the token never appears, even with -v.
    let forged = format!("{}x", env.server.token());
    let refused = env
        .run(&["-v", "get", "orders", "o-1", "--token", &forged])
        .code(5);
    assert!(refused.stderr.contains("token"), "{}", refused.stderr);
    for output in [&refused.stdout, &refused.stderr] {
        assert!(
            !output.contains(&forged[..40]),
            "the token was printed: {output}"
        );
    }
    let verbose = env.run(&["-v", "get", "orders", "o-1"]).ok();
    assert!(
        !verbose.stderr.contains(&env.server.token()[..40]),
        "{}",
        verbose.stderr
    );
    assert!(
        verbose.stderr.contains("EVENTDBX_TOKEN"),
        "says where the token came from: {}",
        verbose.stderr
    );

    // 1: the output cannot be written.
    let full = std::fs::File::create("/dev/full").unwrap();
    let unwritable = Run::of(
        env.cmd()
            .args(["get", "orders", "o-1"])
            .stdout(full)
            .output(),
        &["get > /dev/full"],
    )
    .code(1);
    assert!(unwritable.stderr.contains("I/O"), "{}", unwritable.stderr);

    // 7 is for a serious finding: this server runs commands for anyone (server 3.19.4 does),
    // but listens on loopback only, as the README advises, so that is a warning (exit 0); a
    // port listening on every interface exits 7 (audit.rs).
    env.run(&["audit"]).ok();
}

/// A proxy that forwards a session until the client has sent its first request, then drops
/// every reply: the request reaches the server, its answer never comes back.
fn reply_swallowing_proxy(upstream: std::net::SocketAddr) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for client in listener.incoming() {
            let Ok(client) = client else { return };
            let server = TcpStream::connect(upstream).unwrap();
            // Client writes: the hello, the Noise handshake's first message, then requests.
            let client_writes = Arc::new(AtomicUsize::new(0));
            let (mut client_in, mut server_out) =
                (client.try_clone().unwrap(), server.try_clone().unwrap());
            let writes = client_writes.clone();
            std::thread::spawn(move || {
                let mut buffer = [0u8; 65536];
                while let Ok(n) = client_in.read(&mut buffer) {
                    if n == 0 {
                        return;
                    }
                    writes.fetch_add(1, Ordering::SeqCst);
                    if server_out.write_all(&buffer[..n]).is_err() {
                        return;
                    }
                }
            });
            let (mut server_in, mut client_out) = (server, client);
            std::thread::spawn(move || {
                let mut buffer = [0u8; 65536];
                while let Ok(n) = server_in.read(&mut buffer) {
                    if n == 0 {
                        return;
                    }
                    if client_writes.load(Ordering::SeqCst) < 3
                        && client_out.write_all(&buffer[..n]).is_err()
                    {
                        return;
                    }
                }
            });
        }
    });
    port
}

#[test]
fn a_write_without_an_answer_exits_6_and_says_to_read_back() {
    let env = Env::start();
    let port = reply_swallowing_proxy(env.server.addr());
    let unknown = env
        .run(&[
            "apply",
            "orders",
            "o-9",
            "placed",
            r#"{"total": 9}"#,
            "--port",
            &port.to_string(),
            "--timeout",
            "2",
            // Without the size check's read before the write: its reply would be the one lost.
            "--allow-unlistable",
        ])
        .code(6);
    assert!(
        unknown.stderr.contains("read it back"),
        "{}",
        unknown.stderr
    );
    // Why it matters: the server did apply it.
    let stored = env
        .client()
        .get("orders", "o-9")
        .unwrap()
        .expect("the write landed");
    assert_eq!(stored.version, 1);
}

#[test]
fn ctrl_c_stops_an_import_with_130_after_the_writes_in_flight() {
    let env = Env::start();
    // A slow import: every line appends to the same aggregate.
    let input = env.path("slow.ndjson");
    let lines: String = (0..2000)
        .map(|i| format!("{{\"aggregate_type\":\"t\",\"aggregate_id\":\"one\",\"event_type\":\"e\",\"payload\":{{\"i\":{i}}}}}\n"))
        .collect();
    std::fs::write(&input, lines).unwrap();
    let log = env.path("slow.log");
    let child = env.spawn(&[
        "import",
        input.to_str().unwrap(),
        "--log",
        log.to_str().unwrap(),
        "--progress",
        "never",
    ]);
    crate::common::wait_until(Duration::from_secs(60), "some acked lines", || {
        std::fs::read_to_string(&log).is_ok_and(|text| text.matches("\"acked\"").count() >= 5)
    });
    signal(&child, libc::SIGINT);
    let run = finish(child, Duration::from_secs(120), "import (Ctrl-C)").code(130);
    assert!(run.stderr.contains("--resume"), "{}", run.stderr);
    let summary = run.json();
    assert!(summary["not_attempted"].as_u64().unwrap() > 0, "{summary}");
    assert_eq!(
        summary["unknown"], 0,
        "in-flight writes finish before it stops: {summary}"
    );
}

#[test]
fn verify_says_intact_could_not_check_or_missing_never_crying_wolf() {
    let env = Env::start();
    env.run(&["create", "ledger", "l-1", "opened", r#"{"n": 0}"#])
        .ok();

    // Under appends from another client, every check is intact (0), never a mismatch (7).
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let (client, stop) = (env.client(), stop.clone());
        std::thread::spawn(move || {
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) && n < 2_000 {
                n += 1;
                client
                    .apply("ledger", "l-1", "moved", &serde_json::json!({"n": n}))
                    .unwrap();
            }
            n
        })
    };
    let mut versions = Vec::new();
    for _ in 0..15 {
        let check = env.run(&["verify", "ledger", "l-1"]).ok().json();
        assert_eq!(check["outcome"], "intact", "{check}");
        assert_eq!(check["events"], check["version"], "{check}");
        versions.push(check["version"].as_u64().unwrap());
    }
    stop.store(true, Ordering::Relaxed);
    let appended = writer.join().unwrap();
    assert!(appended > 0 && versions[0] < versions[14], "{versions:?}");

    // Archived: it cannot be checked, which is 8 and says so, not a mismatch.
    env.run(&["archive", "ledger", "l-1"]).ok();
    let archived = env.run(&["verify", "ledger", "l-1"]).code(8);
    let report = archived.json();
    assert_eq!(report["outcome"], "unverifiable");
    assert_eq!(report["unverifiable"], "archived");
    assert!(
        archived.stderr.contains("could not be checked") && archived.stderr.contains("restore"),
        "{}",
        archived.stderr
    );
    assert!(
        !archived.stderr.contains("does not match"),
        "{}",
        archived.stderr
    );

    // Missing: the server's not-found, as for get.
    let missing = env.run(&["verify", "ledger", "nobody"]).code(3);
    assert!(
        missing.stderr.contains("aggregate_not_found"),
        "{}",
        missing.stderr
    );
}

#[test]
fn a_port_that_is_not_a_control_port_is_said_plainly() {
    let env = Env::start();
    let http = env.server.http_port().to_string();
    let run = env.run(&["--port", &http, "ping"]).code(4);
    assert!(
        run.stderr.contains(&format!(
            "127.0.0.1:{http} is not an EventDBX control port (it answered like an HTTP server"
        )),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("control port: 6363"), "{}", run.stderr);
    assert!(!run.stderr.contains("segment count"), "{}", run.stderr);

    // A TLS server (its alert to a client that does not speak TLS).
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port().to_string();
    let peer = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let mut buf = [0u8; 1024];
        let _ = stream.read(&mut buf).unwrap();
        stream
            .write_all(&[0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x32])
            .unwrap();
    });
    let run = env.run(&["--port", &port, "get", "orders", "o-1"]).code(4);
    peer.join().unwrap();
    assert!(
        run.stderr
            .contains("is not an EventDBX control port (it answered like a TLS server)"),
        "{}",
        run.stderr
    );
}

/// A plaintext peer that plays a server whose stored history was altered (which a real server
/// cannot be made to show): `get` reports version 2, and both listed events' contents no longer
/// give their stored hashes.
fn tampered_history_peer() -> u16 {
    use edbx_wire::{
        FrameDecoder, GetAggregateReply, HelloResponse, ListEventsReply, MAX_FRAME_LEN, Request,
        Response, decode_request, encode_frame, encode_response, stream_message_len,
    };
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            loop {
                let whole = stream_message_len(&buf, MAX_FRAME_LEN).unwrap();
                if whole.is_some_and(|len| buf.len() >= len) {
                    break;
                }
                let n = stream.read(&mut chunk).unwrap();
                assert!(n > 0, "the client hung up before its hello");
                buf.extend_from_slice(&chunk[..n]);
            }
            let granted = HelloResponse::new(true, "ok", true);
            stream.write_all(&granted.to_bytes()).unwrap();
            let mut decoder = FrameDecoder::new();
            'session: loop {
                while let Some(frame) = decoder.next_frame().unwrap() {
                    let (id, _, request) = decode_request(&frame).unwrap();
                    let event = |version: u64| {
                        serde_json::json!({
                            "aggregate_type": "ledger", "aggregate_id": "l-1",
                            "event_type": "moved", "payload": {"n": version},
                            "metadata": {"event_id": version, "created_at": "2026-01-01T00:00:00Z"},
                            "version": version, "hash": "0".repeat(64),
                            "merkle_root": "0".repeat(64),
                        })
                    };
                    let response = match request {
                        Request::GetAggregate(_) => Response::GetAggregate(GetAggregateReply::new(
                            true,
                            serde_json::json!({
                                "aggregate_type": "ledger", "aggregate_id": "l-1", "version": 2,
                                "state": {"n": "2"}, "merkle_root": "0".repeat(64),
                                "archived": false,
                            })
                            .to_string(),
                        )),
                        Request::ListEvents(list) => {
                            Response::ListEvents(ListEventsReply::new(if list.cursor.is_none() {
                                serde_json::json!([event(1), event(2)]).to_string()
                            } else {
                                "[]".into()
                            }))
                        }
                        other => panic!("the fake server does not answer {other:?}"),
                    };
                    let reply = encode_frame(&encode_response(id, &response).unwrap()).unwrap();
                    if stream.write_all(&reply).is_err() {
                        break 'session;
                    }
                }
                match stream.read(&mut chunk) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => decoder.extend(&chunk[..n]),
                }
            }
        }
    });
    port
}

#[test]
fn verify_of_an_altered_history_exits_7() {
    let env = Env::start();
    let port = tampered_history_peer().to_string();
    let run = env
        .run(&["--port", &port, "--no-noise", "verify", "ledger", "l-1"])
        .code(7);
    let report = run.json();
    assert_eq!(report["outcome"], "mismatch", "{report}");
    assert_eq!(report["first_bad_version"], 1);
    assert!(
        run.stderr
            .contains("ledger/l-1 does not match its Merkle root: event 1's contents"),
        "{}",
        run.stderr
    );
}

#[test]
fn messages_in_the_command_lines_words_each_thing_once() {
    let env = Env::start();
    // A filter the server cannot parse: exit 2, pointing to where the grammar is, not to a Rust
    // API item.
    let filter = env
        .run(&["list", "--filter", "total >= 40", "--all"])
        .code(2);
    assert!(
        filter
            .stderr
            .contains("`edbx list --help` shows the grammar"),
        "{}",
        filter.stderr
    );
    assert!(!filter.stderr.contains("::"), "{}", filter.stderr);
    let grammar = env.run(&["list", "--help"]).ok().stdout;
    assert!(grammar.contains("Filters (--filter)"), "{grammar}");
    assert!(grammar.contains("IN takes square brackets"), "{grammar}");
    assert!(grammar.contains("Sorting (--sort)"), "{grammar}");
    let format = env.run(&["schemas", "replace", "--help"]).ok().stdout;
    assert!(format.contains("Schema set: a JSON object"), "{format}");

    // Input the library refuses: the hint names the command that was typed.
    let bad = env.run(&["snapshots", "list", "--type", "Orders!"]).code(2);
    assert!(
        bad.stderr.contains("`edbx snapshots list --help`"),
        "{}",
        bad.stderr
    );
    assert!(!bad.stderr.contains("<command>"), "{}", bad.stderr);

    // Nothing listens there: the reason is said once.
    let closed_port = {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let port = closed_port.to_string();
    let unreachable = env
        .run(&["get", "orders", "o-1", "--port", &port, "--timeout", "2"])
        .code(4);
    // Without -v the client's retries are not shown; with -v they are.
    assert!(
        !unreachable.stderr.contains("connecting again"),
        "{}",
        unreachable.stderr
    );
    let verbose = env
        .run(&[
            "-v",
            "get",
            "orders",
            "o-1",
            "--port",
            &port,
            "--timeout",
            "2",
        ])
        .code(4);
    assert!(
        verbose.stderr.contains("connecting again"),
        "{}",
        verbose.stderr
    );
    let first_line = unreachable.stderr.lines().next().unwrap();
    assert_eq!(
        first_line.matches("refused").count(),
        1,
        "{}",
        unreachable.stderr
    );
}

#[test]
fn ctrl_c_during_a_listing_exits_130() {
    let env = Env::start();
    // A port that accepts connections and never answers: the listing waits for its session.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port().to_string();
    let mut child = env.spawn(&["-v", "list", "--all", "--port", &port, "--timeout", "60"]);
    // Running: it says where it connects (after it started watching for Ctrl-C).
    let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    while !line.contains("connecting to") {
        line.clear();
        assert!(
            std::io::BufRead::read_line(&mut stderr, &mut line).unwrap() > 0,
            "edbx ended before connecting"
        );
    }
    signal(&child, libc::SIGINT);
    let run = finish(child, Duration::from_secs(30), "list --all (Ctrl-C)").code(130);
    assert!(run.stdout.is_empty(), "{}", run.stdout);
    drop(silent);
}

/// The engine's timeout limit is the command line's: the limit itself works, one second past
/// it is a usage error (2) naming `--timeout`, before anything connects.
#[test]
fn timeout_limit_is_the_engines() {
    let env = Env::start();
    let limit = edbx::Config::MAX_TIMEOUT.as_secs();
    env.run(&["ping", "--count", "1", "--timeout", &limit.to_string()])
        .ok();
    let closed_port = {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port().to_string()
    };
    for port in [env.server.port().to_string(), closed_port] {
        let past = (limit + 1).to_string();
        let refused = env
            .run(&["ping", "--count", "1", "--timeout", &past, "--port", &port])
            .code(2);
        assert!(
            refused.stderr.contains("--timeout must") && refused.stderr.contains(&past),
            "{}",
            refused.stderr
        );
        assert!(!refused.stderr.contains("connect"), "{}", refused.stderr);
    }
}
