//! The REPL, driven through a pseudo-terminal as a person would: line editing, Tab completion,
//! history kept between sessions.

use std::process::Stdio;
use std::time::Duration;

use serde_json::json;

use crate::common::{Env, mode, wait_until};
use crate::pty::Terminal;

/// A shell that is killed if the test fails before it exits.
struct Shell(std::process::Child);

impl Drop for Shell {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn_shell(env: &Env) -> (Terminal, Shell) {
    let (terminal, slave) = Terminal::open();
    let child = env
        .cmd()
        .arg("shell")
        .env("TERM", "xterm")
        .stdin(Stdio::from(slave.try_clone().unwrap()))
        .stdout(Stdio::from(slave.try_clone().unwrap()))
        .stderr(Stdio::from(slave))
        .spawn()
        .unwrap();
    (terminal, Shell(child))
}

#[test]
fn the_shell_on_a_terminal() {
    let env = Env::start();
    let prompt = format!("edbx 127.0.0.1:{}> ", env.server.port());
    let (mut terminal, mut child) = spawn_shell(&env);
    let at = terminal.expect("Noise-encrypted", 0);
    let at = terminal.expect(&prompt, at);

    // A write, then a read of it; JSON is pretty on a terminal.
    terminal.send("create things t-1 made '{\"colour\": \"red\"}'\r");
    let at = terminal.expect("\"version\": 1", at);
    let at = terminal.expect(&prompt, at);
    assert_eq!(
        env.client().get("things", "t-1").unwrap().unwrap().state["colour"],
        "red"
    );

    // Line editing: a wrong last character rubbed out, a missing one put in with the arrow
    // keys.
    terminal.send("get things -9\x7f1\x1b[D\x1b[Dt\r");
    let at = terminal.expect("\"aggregate_id\": \"t-1\"", at);
    let at = terminal.expect(&prompt, at);

    // Tab completes a command, and then its subcommand.
    terminal.send("snap\t");
    let at = terminal.expect("snapshots", at);
    terminal.send("li\t");
    let at = terminal.expect("list", at);
    terminal.send("\r");
    let at = terminal.expect(&prompt, at);

    // An error is printed and the shell carries on.
    terminal.send("get things nobody\r");
    let at = terminal.expect("no aggregate things/nobody", at);
    let at = terminal.expect(&prompt, at);

    // A listing is a table on a terminal.
    terminal.send("list\r");
    let at = terminal.expect("TYPE", at);
    let at = terminal.expect(&prompt, at);

    terminal.send("exit\r");
    wait_until(Duration::from_secs(30), "the shell to exit", || {
        child.0.try_wait().unwrap().is_some()
    });
    // The `get` of a missing aggregate failed: the session's exit code says so.
    assert_eq!(child.0.wait().unwrap().code(), Some(3));
    let _ = at;

    // The history is kept, readable by its owner only.
    let history = env.path("history");
    let text = std::fs::read_to_string(&history).unwrap();
    assert!(text.contains("get things t-1"), "{text}");
    assert!(text.contains("snapshots list"), "{text}");
    assert_eq!(mode(&history), 0o600);

    // The next session recalls it with the up arrow: five lines back (exit, list, get
    // nobody, snapshots list) is the edited `get things t-1`.
    let (mut terminal, mut child) = spawn_shell(&env);
    let at = terminal.expect(&prompt, 0);
    terminal.send(&"\x1b[A".repeat(5));
    terminal.send("\r");
    let at = terminal.expect("\"aggregate_id\": \"t-1\"", at);
    terminal.expect(&prompt, at);
    terminal.send("\x04");
    wait_until(Duration::from_secs(30), "Ctrl-D to leave the shell", || {
        child.0.try_wait().unwrap().is_some()
    });
    assert!(child.0.wait().unwrap().success());
}

#[test]
fn the_shell_reads_commands_from_a_pipe() {
    let env = Env::start();
    let run = env
        .run_stdin(
            &["shell"],
            "create things t-2 made '{\"n\": 1}' -o ndjson\nget things t-2 -o ndjson\nexit\n",
        )
        .ok();
    let values = run.ndjson();
    assert_eq!(values.len(), 2, "{}", run.stdout);
    assert_eq!(values[1]["state"], json!({"n": "1"}));
}

#[test]
fn a_failed_command_makes_the_shell_fail_and_can_stop_it() {
    let env = Env::start();
    let script = "get things nobody -o ndjson\ncreate things t-3 made '{\"n\": 1}' -o ndjson\n";
    // Every line runs; the exit code is the failure's (3: the server has no such aggregate).
    let run = env.run_stdin(&["shell"], script).code(3);
    assert!(
        run.stderr.contains("no aggregate things/nobody"),
        "{}",
        run.stderr
    );
    assert!(env.client().get("things", "t-3").unwrap().is_some());
    // A line that is not a command is a failure too (2).
    env.run_stdin(&["shell"], "gte things t-3\n").code(2);
    // --stop-on-error: nothing after the failed line runs.
    let script = "get things nobody\ncreate things t-4 made '{\"n\": 1}'\n";
    env.run_stdin(&["shell", "--stop-on-error"], script).code(3);
    assert!(env.client().get("things", "t-4").unwrap().is_none());
    // All good: 0.
    env.run_stdin(&["shell"], "get things t-3 -o ndjson\n").ok();
}

#[test]
fn a_removal_asks_on_a_terminal() {
    let env = Env::start();
    let client = env.client();
    let schema = json!({"orders": {
        "aggregate": "orders", "snapshot_threshold": null, "locked": false,
        "field_locks": [], "hidden": false, "hidden_fields": [],
        "events": {"created": {"fields": ["total"]}},
        "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z"
    }});
    client.replace_schemas(&schema).unwrap();
    let ask = |answer: &str| {
        let (mut terminal, slave) = Terminal::open();
        let child = env
            .cmd()
            .args(["schemas", "replace", "{}"])
            .stdin(Stdio::from(slave.try_clone().unwrap()))
            .stdout(Stdio::from(slave.try_clone().unwrap()))
            .stderr(Stdio::from(slave))
            .spawn()
            .unwrap();
        let mut child = Shell(child);
        terminal.expect("remove every schema of the tenant (1 now)? [y/N] ", 0);
        terminal.send(answer);
        let status = child.0.wait().unwrap();
        status.code()
    };
    // No: nothing sent.
    assert_eq!(ask("n\r"), Some(2));
    assert_eq!(client.list_schemas().unwrap().len(), 1);
    // Yes: done.
    assert_eq!(ask("y\r"), Some(0));
    assert!(client.list_schemas().unwrap().is_empty());
}
