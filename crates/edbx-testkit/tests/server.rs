//! Tests against the real `dbx` binary (install it with `scripts/install-server.sh`).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use edbx_testkit::{SERVER_VERSION, ServerOptions, TestServer, TestkitError, TokenSpec};

fn start(options: ServerOptions) -> TestServer {
    let t = Instant::now();
    let server = TestServer::start(options).expect("start EventDBX test server");
    eprintln!(
        "server on {} (http {}) ready in {:?}",
        server.addr(),
        server.http_port(),
        t.elapsed()
    );
    server
}

fn accepts(addr: SocketAddr) -> bool {
    TcpStream::connect_timeout(&addr, Duration::from_secs(2)).is_ok()
}

fn http_get(port: u16, path: &str) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect HTTP");
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

/// Decodes the JSON claims of a JWT (base64url without padding).
fn jwt_claims(token: &str) -> serde_json::Value {
    let payload = token.split('.').nth(1).expect("JWT payload");
    let mut bits = 0u32;
    let mut nbits = 0;
    let mut bytes = Vec::new();
    for c in payload.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'-' => 62,
            b'_' => 63,
            _ => panic!("not base64url: {c}"),
        };
        bits = (bits << 6) | u32::from(v);
        nbits += 6;
        if nbits >= 8 {
            nbits -= 8;
            bytes.push((bits >> nbits) as u8);
        }
    }
    serde_json::from_slice(&bytes).expect("JWT claims are JSON")
}

fn process_alive(pid: u32) -> bool {
    // A zombie still has a /proc entry; only count processes that are not zombies.
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit(')')
            .next()
            .is_some_and(|rest| rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

#[test]
fn starts_on_loopback_with_bootstrap_token() {
    let server = start(ServerOptions::default());
    let addr = server.addr();
    assert_eq!(addr.ip().to_string(), "127.0.0.1");
    assert_eq!(server.host(), "127.0.0.1");
    assert_eq!(addr.port(), server.port());
    assert_ne!(server.port(), server.http_port());
    assert!(accepts(addr), "control port accepts TCP");

    let token = server.token();
    assert!(!token.is_empty());
    assert_eq!(token.split('.').count(), 3, "JWT has three parts: {token}");
    let claims = jwt_claims(token);
    assert_eq!(claims["user"], "root");
    assert!(claims.get("exp").is_none_or(|v| v.is_null()), "{claims}");
    assert_eq!(server.tenant(), "default");

    assert_eq!(
        server.config_value("socket.bind_addr").unwrap().as_deref(),
        Some(format!("127.0.0.1:{}", server.port()).as_str())
    );
    assert_eq!(
        server.config_value("port").unwrap(),
        Some(server.http_port().to_string())
    );
    assert_eq!(
        server.config_value("data_dir").unwrap().as_deref(),
        server.data_dir().to_str()
    );
    assert_eq!(
        server.config_value("restrict").unwrap().as_deref(),
        Some("off")
    );
    assert!(server.data_dir().is_dir());
    assert!(server.log_path().is_file());
    assert!(server.config_path().is_file());

    let health = http_get(server.http_port(), "/health");
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    assert!(health.contains(r#""status":"ok""#), "{health}");
}

#[test]
fn options_end_up_in_config_toml() {
    let defaults = start(ServerOptions::default());
    assert_eq!(
        defaults.config_value("no_noise").unwrap().as_deref(),
        Some("false")
    );
    assert_eq!(
        defaults
            .config_value("verbose_responses")
            .unwrap()
            .as_deref(),
        Some("true")
    );
    assert_eq!(
        defaults
            .config_value("tenants.multi_tenant")
            .unwrap()
            .as_deref(),
        Some("false")
    );
    drop(defaults);

    let server = start(
        ServerOptions::default()
            .no_noise(true)
            .verbose_responses(false)
            .multi_tenant(true)
            .list_page_size(5)
            .page_limit(50)
            .config_arg("--snapshot-threshold")
            .config_arg("7"),
    );
    let value = |key: &str| server.config_value(key).unwrap();
    assert_eq!(value("no_noise").as_deref(), Some("true"));
    assert_eq!(value("verbose_responses").as_deref(), Some("false"));
    assert_eq!(value("tenants.multi_tenant").as_deref(), Some("true"));
    assert_eq!(value("list_page_size").as_deref(), Some("5"));
    assert_eq!(value("page_limit").as_deref(), Some("50"));
    assert_eq!(value("snapshot_threshold").as_deref(), Some("7"));
    assert!(server.options().no_noise);
    assert!(accepts(server.addr()));
}

#[test]
fn stop_and_restart_keep_ports_data_and_token() {
    let mut server = start(ServerOptions::default());
    let (addr, http, token) = (server.addr(), server.http_port(), server.token().to_owned());
    let scoped = server
        .mint_token(&TokenSpec::new("test", "keeper"))
        .unwrap();
    let first_pid = server.pid().unwrap();

    let t = Instant::now();
    let status = server.stop().expect("stop");
    eprintln!("graceful stop took {:?}, status {status}", t.elapsed());
    assert!(status.success(), "graceful shutdown exits 0: {status}");
    assert!(!server.is_running());
    assert!(server.pid().is_none());
    assert!(!accepts(addr), "control port closed after stop");
    assert!(
        !server.data_dir().join("eventdbx.pid").exists(),
        "pid file removed on graceful stop"
    );

    server.restart().expect("restart");
    assert!(server.is_running());
    assert_ne!(server.pid().unwrap(), first_pid);
    assert_eq!(server.addr(), addr);
    assert_eq!(server.http_port(), http);
    assert_eq!(server.token(), token);
    assert!(accepts(addr));
    // The key pair is unchanged, so tokens minted before the restart still verify: minting
    // again yields a token signed by the same key id.
    let after = server
        .mint_token(&TokenSpec::new("test", "keeper"))
        .unwrap();
    assert_eq!(
        scoped.split('.').next(),
        after.split('.').next(),
        "same JWT header (same kid) across restarts"
    );

    // restart() on a running server stops it first.
    server.restart().expect("restart while running");
    assert!(accepts(addr));
}

#[test]
fn kill_then_restart_on_same_data() {
    let mut server = start(ServerOptions::default());
    let pid = server.pid().unwrap();
    server.kill().expect("kill");
    assert!(!server.is_running());
    assert!(!process_alive(pid), "SIGKILLed server is gone");
    assert!(!accepts(server.addr()));
    // The stale pid file left behind by SIGKILL does not block the next start.
    assert!(server.data_dir().join("eventdbx.pid").exists());
    server.restart().expect("restart after kill");
    assert!(accepts(server.addr()));
    // kill/stop on a stopped server are harmless
    server.kill().unwrap();
    server.kill().unwrap();
    assert!(server.stop().is_ok());
}

#[test]
fn two_servers_run_side_by_side() {
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(|| start(ServerOptions::default()));
        let b = s.spawn(|| start(ServerOptions::default().no_noise(true)));
        (a.join().unwrap(), b.join().unwrap())
    });
    let ports = [a.port(), a.http_port(), b.port(), b.http_port()];
    for (i, p) in ports.iter().enumerate() {
        assert!(!ports[i + 1..].contains(p), "ports collide: {ports:?}");
    }
    assert_ne!(a.base_dir(), b.base_dir());
    assert_ne!(a.token(), b.token());
    assert!(accepts(a.addr()));
    assert!(accepts(b.addr()));
}

#[test]
fn drop_kills_server_and_removes_dir() {
    let server = start(ServerOptions::default());
    let base = server.base_dir().to_path_buf();
    let pid = server.pid().unwrap();
    let addr = server.addr();
    assert!(base.is_dir());
    drop(server);
    assert!(!base.exists(), "{} removed", base.display());
    assert!(!process_alive(pid));
    assert!(!accepts(addr));
}

#[test]
fn drop_cleans_up_after_a_panicking_test() {
    let (tx, rx) = std::sync::mpsc::channel();
    let result = std::thread::spawn(move || {
        let server = start(ServerOptions::default());
        tx.send((server.base_dir().to_path_buf(), server.pid().unwrap()))
            .unwrap();
        panic!("test failure while the server runs");
    })
    .join();
    assert!(result.is_err());
    let (base, pid) = rx.recv().unwrap();
    assert!(!base.exists());
    assert!(!process_alive(pid));
}

#[test]
fn mint_token_scopes_claims() {
    let server = start(ServerOptions::default());
    let token = server
        .mint_token(
            &TokenSpec::new("qa", "alice")
                .action("aggregate.read")
                .tenant("t2")
                .resource("order")
                .ttl_secs(600),
        )
        .expect("mint scoped token");
    let claims = jwt_claims(&token);
    assert_eq!(claims["group"], "qa");
    assert_eq!(claims["user"], "alice");
    assert_eq!(claims["actions"], serde_json::json!(["aggregate.read"]));
    assert_eq!(claims["tenants"], serde_json::json!(["t2"]));
    assert_eq!(claims["resources"], serde_json::json!(["order"]));
    let (iat, exp) = (
        claims["iat"].as_i64().unwrap(),
        claims["exp"].as_i64().unwrap(),
    );
    assert_eq!(exp - iat, 600);

    let default = jwt_claims(&server.mint_token(&TokenSpec::new("qa", "bob")).unwrap());
    assert_eq!(default["actions"], serde_json::json!(["*.*"]));
    assert_eq!(default["tenants"], serde_json::json!(["default"]));
    assert_eq!(default["resources"], serde_json::json!(["*"]));
    assert!(default.get("exp").is_none_or(|v| v.is_null()), "{default}");
}

#[test]
fn failing_dbx_command_reports_stderr() {
    let err = TestServer::start(ServerOptions::default().config_arg("--no-such-flag"))
        .expect_err("unknown config flag must fail");
    let msg = err.to_string();
    assert!(matches!(err, TestkitError::CommandFailed { .. }), "{msg}");
    assert!(msg.contains("--no-such-flag"), "{msg}");
}

#[test]
fn dbx_is_the_pinned_version() {
    let dbx = edbx_testkit::find_dbx().expect("dbx binary");
    let scratch = tempfile::tempdir().unwrap();
    let out = Command::new(&dbx)
        .arg("--version")
        .env("HOME", scratch.path())
        .env("EVENTDBX_LOG_DIR", scratch.path().join("logs"))
        .env("DBX_NO_UPGRADE_CHECK", "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(stdout.trim(), format!("eventdbx version {SERVER_VERSION}"));
}

#[test]
fn not_found_error_says_how_to_install() {
    let msg = TestkitError::ServerNotFound {
        searched: "nowhere".into(),
    }
    .to_string();
    assert!(msg.contains("scripts/install-server.sh"), "{msg}");
    assert!(
        msg.contains(
            "cargo install --locked eventdbx --version 3.19.4 --root ~/.cache/edbx/server-3.19.4"
        ),
        "{msg}"
    );
    assert!(msg.contains("EDBX_DBX"), "{msg}");
}

/// The server dies with the test process even when no destructor runs (Linux: PDEATHSIG).
#[cfg(target_os = "linux")]
#[test]
fn server_dies_with_the_test_process() {
    const CHILD_ENV: &str = "EDBX_TESTKIT_ORPHAN_CHILD";
    if std::env::var_os(CHILD_ENV).is_some() {
        // Child mode: start a server, report it, and exit without running destructors.
        let server = start(ServerOptions::default());
        println!(
            "ORPHAN {} {}",
            server.pid().unwrap(),
            server.base_dir().display()
        );
        std::io::stdout().flush().unwrap();
        std::process::exit(0);
    }
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "server_dies_with_the_test_process",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .find_map(|l| l.split_once("ORPHAN ").map(|(_, rest)| rest.trim()))
        .unwrap_or_else(|| {
            panic!(
                "child printed no ORPHAN line:\n{stdout}\n{}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
    let (pid, base) = line.split_once(' ').unwrap();
    let pid: u32 = pid.parse().unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    while process_alive(pid) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let alive = process_alive(pid);
    if alive {
        let _ = Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .status();
    }
    let _ = std::fs::remove_dir_all(Path::new(base));
    assert!(!alive, "orphaned server {pid} still running");
}

#[test]
fn restart_reports_server_exit_with_log_tail() {
    let mut server = start(ServerOptions::default());
    server.stop().unwrap();
    // Occupy the control port so the restarted server cannot bind it.
    let blocker = std::net::TcpListener::bind(server.addr()).expect("grab the control port");
    let t = Instant::now();
    let err = server
        .restart()
        .expect_err("restart must fail while the port is taken");
    let msg = err.to_string();
    eprintln!("failed restart reported after {:?}:\n{msg}", t.elapsed());
    assert!(matches!(err, TestkitError::ServerExited { .. }), "{msg}");
    assert!(
        msg.contains("failed to bind CLI Cap'n Proto listener"),
        "log tail quoted: {msg}"
    );
    assert!(!server.is_running());
    drop(blocker);
    server
        .restart()
        .expect("restart once the port is free again");
    assert!(accepts(server.addr()));
}
