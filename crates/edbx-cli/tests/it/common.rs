//! A real server, a private HOME, and the `edbx` binary pointed at them.
#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub use edbx_testkit::{ServerOptions, TestServer};
use serde_json::Value;

pub const EDBX: &str = env!("CARGO_BIN_EXE_edbx");

/// A server and a home directory of its own for `edbx` (config file, history).
pub struct Env {
    pub server: TestServer,
    pub home: tempfile::TempDir,
}

impl Env {
    pub fn start() -> Self {
        Self::with(ServerOptions::default())
    }

    pub fn with(options: ServerOptions) -> Self {
        let server = TestServer::start(options)
            .unwrap_or_else(|e| panic!("cannot start the EventDBX server: {e}"));
        Self {
            server,
            home: tempfile::tempdir().expect("a temporary home"),
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.home.path().join(name)
    }

    /// `edbx` with no connection settings at all: a clean environment and a private HOME.
    pub fn bare(&self) -> Command {
        let mut command = Command::new(EDBX);
        command
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.home.path())
            .env("EDBX_CONFIG", self.path("config.toml"))
            .env("EDBX_HISTORY", self.path("history"))
            .stdin(Stdio::null());
        command
    }

    /// `edbx` set up for the server through the `EVENTDBX_*` variables.
    pub fn cmd(&self) -> Command {
        let mut command = self.bare();
        command
            .env("EVENTDBX_HOST", self.server.host())
            .env("EVENTDBX_PORT", self.server.port().to_string())
            .env("EVENTDBX_TOKEN", self.server.token())
            .env("EVENTDBX_TENANT_ID", self.server.tenant());
        command
    }

    pub fn run(&self, args: &[&str]) -> Run {
        Run::of(self.cmd().args(args).output(), args)
    }

    /// Starts `edbx` in the background, its output piped.
    pub fn spawn(&self, args: &[&str]) -> Child {
        self.cmd()
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn edbx")
    }

    pub fn run_stdin(&self, args: &[&str], stdin: &str) -> Run {
        run_with_stdin(self.cmd(), args, stdin)
    }

    /// A library client for reading back what the binary wrote.
    pub fn client(&self) -> edbx::blocking::Client {
        edbx::blocking::Client::connect(
            edbx::Config::new()
                .host(self.server.host())
                .port(self.server.port())
                .token(self.server.token())
                .tenant_id(self.server.tenant())
                .request_timeout(Duration::from_secs(30)),
        )
        .unwrap_or_else(|e| panic!("cannot connect to the test server: {e}"))
    }
}

pub fn run_with_stdin(mut command: Command, args: &[&str], stdin: &str) -> Run {
    let mut child = command
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn edbx");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes())
        .expect("write stdin");
    Run::of(child.wait_with_output(), args)
}

/// A finished run of `edbx`.
#[derive(Debug)]
pub struct Run {
    pub args: String,
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn of(output: std::io::Result<Output>, args: &[&str]) -> Self {
        let output = output.expect("run edbx");
        Self {
            args: args.join(" "),
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// Asserts the exit code, showing the run when it differs.
    pub fn code(self, expected: i32) -> Self {
        assert_eq!(
            self.code, expected,
            "`edbx {}` exited {} (expected {expected})\nstdout: {}\nstderr: {}",
            self.args, self.code, self.stdout, self.stderr
        );
        self
    }

    pub fn ok(self) -> Self {
        self.code(0)
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "`edbx {}` printed no JSON ({e}): {}",
                self.args, self.stdout
            )
        })
    }

    pub fn ndjson(&self) -> Vec<Value> {
        self.stdout
            .lines()
            .map(|line| {
                serde_json::from_str(line)
                    .unwrap_or_else(|e| panic!("`edbx {}`: not NDJSON ({e}): {line}", self.args))
            })
            .collect()
    }
}

/// Waits (at most `limit`) for `done`, checking every 50 ms; panics with `what` otherwise.
pub fn wait_until(limit: Duration, what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !done() {
        assert!(Instant::now() < deadline, "gave up waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits for a child to exit (at most `limit`; then it is killed and the test fails) and
/// collects its output.
pub fn finish(mut child: Child, limit: Duration, what: &str) -> Run {
    let deadline = Instant::now() + limit;
    while child.try_wait().expect("try_wait").is_none() {
        if Instant::now() >= deadline {
            let _ = child.kill();
            let run = Run::of(child.wait_with_output(), &[what]);
            panic!(
                "`edbx {what}` did not exit within {limit:?}\nstdout: {}\nstderr: {}",
                run.stdout, run.stderr
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Run::of(child.wait_with_output(), &[what])
}

/// Sends `signal` to a child process.
pub fn signal(child: &Child, signal: i32) {
    // SAFETY: kill(2) with the pid of a child this test spawned and has not reaped.
    let rc = unsafe { libc::kill(child.id() as libc::pid_t, signal) };
    assert_eq!(rc, 0, "kill({}, {signal})", child.id());
}

/// The file's permission bits.
pub fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).expect("stat").permissions().mode() & 0o777
}
