//! Starts one throwaway EventDBX server with [`edbx_testkit::TestServer`] for test suites written
//! in other languages (the Python package's pytest suite), so that they start servers exactly
//! the way the Rust tests do instead of keeping a second launcher.
//!
//! ```text
//! edbx-test-server [--no-noise] [--quiet-responses] [--multi-tenant] [--list-page-size N]
//! ```
//!
//! Once the server accepts connections, one JSON line goes to stdout:
//! `{"host": "127.0.0.1", "port": 40123, "token": "…", "tenant": "default", "pid": 4242}`.
//! Then each line read from stdin is a command, answered by one JSON line
//! (`{"ok": true, …}` or `{"ok": false, "error": "…"}`):
//!
//! | command | effect |
//! | --- | --- |
//! | `stop` / `kill` | graceful stop / SIGKILL (data is kept) |
//! | `restart` | start again on the same data, ports and keys |
//! | `pause` / `resume` | SIGSTOP / SIGCONT |
//! | `mint <group> <user> [action …]` | mints a token (`"token"` in the answer) |
//!
//! End of stdin (the test process exited or closed the pipe) stops the server and removes its
//! directory, so a crashed test run leaves nothing behind.

use std::io::{BufRead, Write};
use std::process::ExitCode;

use edbx_testkit::{ServerOptions, TestServer, TokenSpec};
use serde_json::json;

const USAGE: &str = "usage: edbx-test-server [--no-noise] [--quiet-responses] [--multi-tenant] \
                     [--list-page-size N]";

fn main() -> ExitCode {
    let options = match parse_args(std::env::args().skip(1)) {
        Ok(options) => options,
        Err(message) => {
            eprintln!("edbx-test-server: {message}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let mut server = match TestServer::start(options) {
        Ok(server) => server,
        Err(e) => {
            eprintln!("edbx-test-server: cannot start the EventDBX server: {e}");
            return ExitCode::FAILURE;
        }
    };
    let hello = json!({
        "host": server.host(),
        "port": server.port(),
        "token": server.token(),
        "tenant": server.tenant(),
        "pid": server.pid(),
    });
    if !answer(&hello) {
        return ExitCode::FAILURE;
    }
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        let reply = match run(&mut server, line.trim()) {
            Ok(mut extra) => {
                extra["ok"] = json!(true);
                extra
            }
            Err(error) => json!({"ok": false, "error": error}),
        };
        if !answer(&reply) {
            break;
        }
    }
    ExitCode::SUCCESS
}

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<ServerOptions, String> {
    let mut options = ServerOptions::default();
    while let Some(arg) = args.next() {
        options = match arg.as_str() {
            "--no-noise" => options.no_noise(true),
            "--quiet-responses" => options.verbose_responses(false),
            "--multi-tenant" => options.multi_tenant(true),
            "--list-page-size" => {
                let n = args
                    .next()
                    .and_then(|n| n.parse().ok())
                    .ok_or("--list-page-size needs a number")?;
                options.list_page_size(n)
            }
            "-h" | "--help" => return Err("help requested".into()),
            other => return Err(format!("unknown argument {other:?}")),
        };
    }
    Ok(options)
}

fn run(server: &mut TestServer, command: &str) -> Result<serde_json::Value, String> {
    let mut words = command.split_whitespace();
    let verb = words.next().unwrap_or_default();
    let done = |r: Result<(), edbx_testkit::TestkitError>| {
        r.map(|()| json!({})).map_err(|e| e.to_string())
    };
    match verb {
        "stop" => done(server.stop().map(drop)),
        "kill" => done(server.kill()),
        "restart" => done(server.restart()),
        "pause" => done(server.pause()),
        "resume" => done(server.resume()),
        "mint" => {
            let (Some(group), Some(user)) = (words.next(), words.next()) else {
                return Err("mint needs a group and a user".into());
            };
            let spec = words.fold(TokenSpec::new(group, user), TokenSpec::action);
            server
                .mint_token(&spec)
                .map(|token| json!({"token": token}))
                .map_err(|e| e.to_string())
        }
        other => Err(format!("unknown command {other:?}")),
    }
}

/// Writes one JSON line; false when stdout is gone.
fn answer(value: &serde_json::Value) -> bool {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{value}").and_then(|()| out.flush()).is_ok()
}
