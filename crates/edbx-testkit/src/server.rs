use std::collections::HashSet;
use std::ffi::OsStr;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::config_toml;
use crate::find::{find_dbx, parse_version};
use crate::spawn::{spawn_server, terminate};
use crate::{
    ENV_ALLOW_OTHER_SERVER, ENV_KEEP_SERVER_DIR, ENV_SERVER_RUST_LOG, SERVER_VERSION,
    ServerOptions, TestkitError, TokenSpec, env_flag,
};

type Result<T, E = TestkitError> = std::result::Result<T, E>;

/// Loopback host the control socket is bound to.
const HOST: Ipv4Addr = Ipv4Addr::LOCALHOST;
/// Tenant used by sessions whose hello carries no tenant id (`domain` in `config.toml`).
const TENANT: &str = "default";
/// How long [`TestServer::stop`] waits after SIGTERM before SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(10);
/// Attempts at finding ports nobody else grabs between our probe and the server's bind. Server
/// 3.19.4 logs the address its control listener got (at `info`), but for its HTTP listener only
/// the configured one, before binding; and `restart` must get the same ports again. So ports are
/// chosen here, and one someone else takes first costs an attempt: the server fails to bind,
/// exits, and a new pair is tried. Ten lost races in a row would take a machine where ports are
/// handed out faster than a server starts.
const PORT_ATTEMPTS: usize = 10;
/// Lines of server log quoted in errors.
const LOG_TAIL_LINES: usize = 40;

/// Environment variables that would leak settings from the developer's shell into the server.
const SCRUBBED_ENV: &[&str] = &[
    "EVENTDBX_DATA_ENCRYPTION_KEY",
    "EVENTDBX_AUTH_PRIVATE_KEY",
    "EVENTDBX_AUTH_PUBLIC_KEY",
    "EVENTDBX_AUTH_KEY_ID",
    "EVENTDB_RESTRICT",
    "EVENTFUL_RESTRICT",
    "EVENTDBX_TOKEN",
    "EVENTDBX_WATCH_INTERVAL",
    "DBX_WATCH_BACKGROUND",
    "CARGO_BIN_EXE_eventdbx",
    "CARGO_BIN_EXE_dbx",
    // A failing server would otherwise bury its error under a backtrace in the log tail.
    "RUST_BACKTRACE",
    "RUST_LIB_BACKTRACE",
];

/// A throwaway EventDBX server (the real `dbx` binary) for one test.
///
/// Each instance has its own temporary directory holding a fresh `HOME`, `config.toml`, data
/// directory, log directory and the server's stdout/stderr log; its control socket listens on
/// `127.0.0.1:<free port>`, its HTTP listener (`/health`, `/metrics`) on `0.0.0.0:<free port>`.
/// The server runs with `--restrict off` unless [`ServerOptions::restrict`] says otherwise.
///
/// Dropping it kills the process and deletes the directory (set `EDBX_KEEP_SERVER_DIR=1` to keep
/// it; its path is printed on stderr).
///
/// ```no_run
/// use edbx_testkit::TestServer;
///
/// let mut server = TestServer::start_default().expect("start EventDBX test server");
/// std::net::TcpStream::connect(server.addr()).unwrap();
/// server.restart().unwrap(); // same data, ports and token
/// std::net::TcpStream::connect(server.addr()).unwrap();
/// ```
#[derive(Debug)]
pub struct TestServer {
    dbx: PathBuf,
    /// `None` only while dropping.
    dir: Option<TempDir>,
    base: PathBuf,
    options: ServerOptions,
    control_port: u16,
    http_port: u16,
    token: String,
    child: Option<Child>,
    last_status: Option<ExitStatus>,
}

impl TestServer {
    /// Starts a server with [`ServerOptions::default`].
    pub fn start_default() -> Result<TestServer> {
        TestServer::start(ServerOptions::default())
    }

    /// Creates a fresh instance, configures it, mints the bootstrap token, starts
    /// `dbx start --foreground` and waits until its ports accept connections.
    ///
    /// Fails (never skips) when the binary is missing or not version [`SERVER_VERSION`]
    /// (unless `EDBX_ALLOW_OTHER_SERVER=1`), when a `dbx` command fails, or when the server
    /// exits or is not ready within [`ServerOptions::ready_timeout`]; the last two errors quote
    /// the end of the server log.
    pub fn start(options: ServerOptions) -> Result<TestServer> {
        let dbx = find_dbx()?;
        let dir = tempfile::Builder::new()
            .prefix("edbx-testkit-")
            .tempdir()
            .map_err(TestkitError::io(
                "creating the server's temporary directory",
            ))?;
        let base = dir.path().to_path_buf();
        // From here on `Drop` cleans up whatever fails.
        let mut server = TestServer {
            dbx,
            dir: Some(dir),
            base,
            options,
            control_port: 0,
            http_port: 0,
            token: String::new(),
            child: None,
            last_status: None,
        };
        for sub in [server.home_dir(), server.logs_dir()] {
            fs::create_dir_all(&sub)
                .map_err(TestkitError::io(format!("creating {}", sub.display())))?;
        }
        server.check_version()?;
        server.configure()?;

        let mut attempt = 1;
        loop {
            server.assign_ports()?;
            match server.launch() {
                Ok(()) => return Ok(server),
                Err(TestkitError::ServerExited { tail, .. })
                    if attempt < PORT_ATTEMPTS && lost_port_race(&tail) =>
                {
                    attempt += 1;
                }
                Err(err) => return Err(err),
            }
        }
    }

    /// The control socket address (`127.0.0.1:<port>`) clients connect to.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::V4(SocketAddrV4::new(HOST, self.control_port))
    }

    /// The control socket host, `"127.0.0.1"`.
    pub fn host(&self) -> &'static str {
        "127.0.0.1"
    }

    /// The control socket port.
    pub fn port(&self) -> u16 {
        self.control_port
    }

    /// The HTTP port (`GET /health`, `/metrics`); the listener binds all interfaces.
    pub fn http_port(&self) -> u16 {
        self.http_port
    }

    /// The never-expiring bootstrap token (`dbx token bootstrap --stdout --ttl 0`): user `root`,
    /// group `cli`, actions `*.*`, resources `*`, all tenants.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// The tenant a session without tenant id uses: `"default"`.
    pub fn tenant(&self) -> &'static str {
        TENANT
    }

    /// The options the server was started with.
    pub fn options(&self) -> &ServerOptions {
        &self.options
    }

    /// The `dbx` binary in use.
    pub fn dbx_path(&self) -> &Path {
        &self.dbx
    }

    /// The instance's temporary directory (holds everything below).
    pub fn base_dir(&self) -> &Path {
        &self.base
    }

    /// The server's data directory.
    pub fn data_dir(&self) -> PathBuf {
        self.base.join("data")
    }

    /// The file receiving the server's stdout and stderr (appended to across restarts).
    pub fn log_path(&self) -> PathBuf {
        self.base.join("server.log")
    }

    /// The server's `config.toml`.
    pub fn config_path(&self) -> PathBuf {
        self.base.join("config.toml")
    }

    /// The `HOME` the server and its CLI calls run with.
    pub fn home_dir(&self) -> PathBuf {
        self.base.join("home")
    }

    /// `EVENTDBX_LOG_DIR` (the server's own rotating `eventdbx.log`).
    pub fn logs_dir(&self) -> PathBuf {
        self.base.join("logs")
    }

    /// The server's process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Whether the server process is still running (reaps it if it exited).
    pub fn is_running(&mut self) -> bool {
        let Some(child) = self.child.as_mut() else {
            return false;
        };
        match child.try_wait() {
            Ok(None) => true,
            Ok(Some(status)) => {
                self.last_status = Some(status);
                self.child = None;
                false
            }
            Err(_) => false,
        }
    }

    /// The current contents of `config.toml`.
    pub fn config_toml(&self) -> Result<String> {
        let path = self.config_path();
        fs::read_to_string(&path).map_err(TestkitError::io(format!("reading {}", path.display())))
    }

    /// A value from `config.toml` by dotted key (`no_noise`, `socket.bind_addr`,
    /// `tenants.multi_tenant`, ...): a string's text, or any other value as TOML text.
    /// `None` if the key is absent.
    ///
    /// ```no_run
    /// # let server = edbx_testkit::TestServer::start_default().unwrap();
    /// assert_eq!(server.config_value("no_noise").unwrap().as_deref(), Some("false"));
    /// ```
    pub fn config_value(&self, dotted_key: &str) -> Result<Option<String>> {
        let toml = self.config_toml()?;
        Ok(config_toml::get(&toml, dotted_key))
    }

    /// The server log so far (ANSI colour codes removed).
    pub fn log_contents(&self) -> String {
        fs::read(self.log_path())
            .map(|bytes| strip_ansi(&String::from_utf8_lossy(&bytes)))
            .unwrap_or_default()
    }

    /// A `dbx --config <config.toml>` command with this instance's environment (`HOME`,
    /// `EVENTDBX_LOG_DIR`, `DBX_NO_UPGRADE_CHECK=1`, `RUST_LOG=error`, stdin from `/dev/null`);
    /// add a subcommand and run it, e.g. `token revoke <jti>`.
    pub fn dbx_command(&self) -> Command {
        let mut cmd = self.bare_command("error");
        cmd.arg("--config").arg(self.config_path());
        cmd
    }

    /// Runs `dbx --config <config.toml> <args>` and returns its stdout; a non-zero exit is an
    /// error carrying stderr.
    pub fn run_dbx<I, S>(&self, args: I) -> Result<String>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut cmd = self.dbx_command();
        cmd.args(args);
        run(cmd)
    }

    /// Mints a token with `dbx token generate ... --json` and returns the JWT.
    ///
    /// Works while the server runs; the server verifies tokens statelessly against the key pair
    /// in `config.toml`, so no restart is needed.
    ///
    /// ```no_run
    /// # let server = edbx_testkit::TestServer::start_default().unwrap();
    /// use edbx_testkit::TokenSpec;
    /// let other_tenant = server
    ///     .mint_token(&TokenSpec::new("test", "t2").tenant("t2"))
    ///     .unwrap();
    /// ```
    pub fn mint_token(&self, spec: &TokenSpec) -> Result<String> {
        let stdout = self.run_dbx(spec.to_args())?;
        let json = stdout
            .find("{\n")
            .or_else(|| stdout.find('{'))
            .map(|start| &stdout[start..])
            .ok_or_else(|| {
                TestkitError::Unexpected(format!(
                    "`dbx token generate --json` printed no JSON object:\n{stdout}"
                ))
            })?;
        let value: serde_json::Value = serde_json::Deserializer::from_str(json)
            .into_iter()
            .next()
            .and_then(|v| v.ok())
            .ok_or_else(|| {
                TestkitError::Unexpected(format!(
                    "`dbx token generate --json` printed invalid JSON:\n{stdout}"
                ))
            })?;
        match value.get("token").and_then(serde_json::Value::as_str) {
            Some(token) if looks_like_jwt(token) => Ok(token.to_owned()),
            _ => Err(TestkitError::Unexpected(format!(
                "`dbx token generate --json` output has no \"token\" JWT field:\n{stdout}"
            ))),
        }
    }

    /// Stops the server gracefully: SIGTERM, then SIGKILL if it is still running after 10 s.
    /// Returns its exit status (0 after a graceful shutdown). Data stays for [`restart`].
    ///
    /// [`restart`]: TestServer::restart
    pub fn stop(&mut self) -> Result<ExitStatus> {
        let Some(mut child) = self.child.take() else {
            return self.last_status.ok_or_else(|| {
                TestkitError::Unexpected("the EventDBX test server was never started".into())
            });
        };
        let pid = child.id();
        let status = match child.try_wait() {
            Ok(Some(status)) => status,
            _ => {
                // A paused server would hold SIGTERM until continued.
                #[cfg(unix)]
                let _ = crate::spawn::signal(pid, libc::SIGCONT);
                if terminate(pid).is_err() {
                    let _ = child.kill();
                }
                let deadline = Instant::now() + STOP_GRACE;
                loop {
                    match child.try_wait() {
                        Ok(Some(status)) => break status,
                        Ok(None) if Instant::now() < deadline => {
                            thread::sleep(Duration::from_millis(20))
                        }
                        _ => {
                            let _ = child.kill();
                            break child.wait().map_err(TestkitError::io(format!(
                                "waiting for the EventDBX server (pid {pid})"
                            )))?;
                        }
                    }
                }
            }
        };
        self.last_status = Some(status);
        Ok(status)
    }

    /// Freezes the server process (SIGSTOP): connections stay open, but nothing is read or
    /// answered until [`resume`](TestServer::resume). For tests of timeouts and late replies.
    #[cfg(unix)]
    pub fn pause(&mut self) -> Result<()> {
        self.send_signal(libc::SIGSTOP, "pause")?;
        // kill() only queues the signal: wait until every thread has actually stopped, so
        // that a request sent next cannot be answered.
        let pid = self.pid().unwrap_or_default();
        let deadline = Instant::now() + Duration::from_secs(5);
        while !all_threads_stopped(pid) {
            if Instant::now() > deadline {
                return Err(TestkitError::Unexpected(format!(
                    "the EventDBX server (pid {pid}) did not stop within 5 s of SIGSTOP"
                )));
            }
            thread::sleep(Duration::from_millis(1));
        }
        Ok(())
    }

    /// Lets a [`pause`](TestServer::pause)d server run again (SIGCONT).
    #[cfg(unix)]
    pub fn resume(&mut self) -> Result<()> {
        self.send_signal(libc::SIGCONT, "resume")
    }

    #[cfg(unix)]
    fn send_signal(&mut self, sig: libc::c_int, what: &str) -> Result<()> {
        let child = self.child.as_ref().ok_or_else(|| {
            TestkitError::Unexpected(format!("cannot {what} a server that is not running"))
        })?;
        crate::spawn::signal(child.id(), sig)
            .map_err(TestkitError::io(format!("{what} the EventDBX server")))
    }

    /// Kills the server with SIGKILL (no graceful shutdown) and reaps it. Data stays for
    /// [`restart`](TestServer::restart).
    pub fn kill(&mut self) -> Result<()> {
        if let Some(mut child) = self.child.take() {
            let pid = child.id();
            let _ = child.kill();
            let status = child.wait().map_err(TestkitError::io(format!(
                "waiting for the killed EventDBX server (pid {pid})"
            )))?;
            self.last_status = Some(status);
        }
        Ok(())
    }

    /// Starts the server again on the same data directory, ports and key pair (so
    /// [`token`](TestServer::token) and minted tokens stay valid) and waits until it is ready.
    /// A running server is [`stop`](TestServer::stop)ped first.
    pub fn restart(&mut self) -> Result<()> {
        if self.child.is_some() {
            self.stop()?;
        }
        self.launch()
    }

    // ----- internals -----

    /// `dbx` with this instance's environment, without `--config`.
    fn bare_command(&self, rust_log: &str) -> Command {
        let mut cmd = Command::new(&self.dbx);
        for var in SCRUBBED_ENV {
            cmd.env_remove(var);
        }
        cmd.env("HOME", self.home_dir())
            .env("EVENTDBX_LOG_DIR", self.logs_dir())
            .env("DBX_NO_UPGRADE_CHECK", "1")
            .env("RUST_LOG", rust_log)
            .env("NO_COLOR", "1")
            .env("EVENTDBX_CLI", &self.dbx)
            .current_dir(&self.base)
            .stdin(Stdio::null());
        cmd
    }

    fn check_version(&self) -> Result<()> {
        let mut cmd = self.bare_command("error");
        cmd.arg("--version");
        let stdout = run(cmd)?;
        match parse_version(&stdout) {
            Some(v) if v == SERVER_VERSION => Ok(()),
            _ if env_flag(ENV_ALLOW_OTHER_SERVER) => Ok(()),
            _ => Err(TestkitError::WrongVersion {
                path: self.dbx.clone(),
                found: stdout.trim().to_owned(),
            }),
        }
    }

    /// Creates `config.toml` (keys, data-encryption key, data dir) with the options applied and
    /// mints the bootstrap token.
    fn configure(&mut self) -> Result<()> {
        let o = &self.options;
        let mut args: Vec<String> = vec!["config".into(), "--data-dir".into()];
        args.push(path_arg(&self.data_dir())?);
        if o.no_noise {
            args.push("--no-noise".into());
        }
        args.push("--verbose-responses".into());
        args.push(o.verbose_responses.to_string());
        args.push("--multi-tenant".into());
        args.push(o.multi_tenant.to_string());
        if let Some(n) = o.list_page_size {
            args.push("--list-page-size".into());
            args.push(n.to_string());
        }
        if let Some(n) = o.page_limit {
            args.push("--page-limit".into());
            args.push(n.to_string());
        }
        args.extend(o.extra_config_args.iter().cloned());
        self.run_dbx(&args)?;

        let toml = self.config_toml()?;
        let expect = [
            ("no_noise", o.no_noise.to_string()),
            ("verbose_responses", o.verbose_responses.to_string()),
            ("tenants.multi_tenant", o.multi_tenant.to_string()),
            ("socket.bind_addr", String::new()),
            ("port", String::new()),
        ];
        for (key, want) in expect {
            match config_toml::get(&toml, key) {
                Some(got) if want.is_empty() || got == want => {}
                got => {
                    return Err(TestkitError::Unexpected(format!(
                        "{}: expected `{key}`{} after `dbx config`, found {got:?}; \
                         did the config layout change?\n{toml}",
                        self.config_path().display(),
                        if want.is_empty() {
                            String::new()
                        } else {
                            format!(" = {want}")
                        },
                    )));
                }
            }
        }

        let stdout = self.run_dbx(["token", "bootstrap", "--stdout", "--ttl", "0"])?;
        let token = stdout
            .lines()
            .map(str::trim)
            .rfind(|line| !line.is_empty())
            .unwrap_or_default();
        if !looks_like_jwt(token) {
            return Err(TestkitError::Unexpected(format!(
                "`dbx token bootstrap --stdout` printed no JWT:\n{stdout}"
            )));
        }
        self.token = token.to_owned();
        Ok(())
    }

    /// Picks free ports and writes them into `config.toml` (`port`, `[socket] bind_addr`).
    fn assign_ports(&mut self) -> Result<()> {
        let (control, http) =
            free_ports().map_err(TestkitError::io("finding free loopback ports"))?;
        let toml = self.config_toml()?;
        let edited = config_toml::set(&toml, "socket.bind_addr", format!("{HOST}:{control}"))
            .and_then(|t| config_toml::set(&t, "port", i64::from(http)))
            .ok_or_else(|| {
                TestkitError::Unexpected(format!(
                    "{} has no `port` or `[socket] bind_addr` key to edit:\n{toml}",
                    self.config_path().display()
                ))
            })?;
        let path = self.config_path();
        fs::write(&path, edited)
            .map_err(TestkitError::io(format!("writing {}", path.display())))?;
        self.control_port = control;
        self.http_port = http;
        Ok(())
    }

    /// Spawns `dbx start --foreground` and waits for readiness.
    fn launch(&mut self) -> Result<()> {
        let log_path = self.log_path();
        let mut log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(TestkitError::io(format!("opening {}", log_path.display())))?;
        let _ = writeln!(
            log,
            "=== edbx-testkit: starting {} (control {}, http {}) ===",
            self.dbx.display(),
            self.addr(),
            self.http_port
        );
        let stderr = log
            .try_clone()
            .map_err(TestkitError::io("duplicating the log file handle"))?;

        let rust_log = std::env::var(ENV_SERVER_RUST_LOG).unwrap_or_else(|_| "warn".to_owned());
        let mut cmd = self.bare_command(&rust_log);
        cmd.arg("--config")
            .arg(self.config_path())
            .args(["start", "--foreground", "--restrict"])
            .arg(self.options.restrict.as_arg())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(stderr));
        let child = spawn_server(cmd).map_err(TestkitError::io(format!(
            "spawning {} start --foreground",
            self.dbx.display()
        )))?;
        self.child = Some(child);
        self.wait_ready()
    }

    /// Waits until the HTTP port and then the control port accept TCP connections (the server
    /// binds control first, HTTP second) while the process is alive.
    fn wait_ready(&mut self) -> Result<()> {
        let timeout = self.options.ready_timeout;
        let deadline = Instant::now() + timeout;
        let http = SocketAddr::V4(SocketAddrV4::new(HOST, self.http_port));
        let probe = Duration::from_millis(250);
        loop {
            if !self.is_running() {
                let status = self
                    .last_status
                    .map(|s| s.to_string())
                    .unwrap_or_else(|| "unknown status".into());
                return Err(TestkitError::ServerExited {
                    status,
                    log_path: self.log_path(),
                    tail: self.log_tail(),
                });
            }
            // A port that accepts is not enough: another process may hold it while our server,
            // which lost the race for it, is still on its way out.
            if TcpStream::connect_timeout(&http, probe).is_ok()
                && TcpStream::connect_timeout(&self.addr(), probe).is_ok()
                && self.is_running()
                && self.child.as_ref().is_some_and(|child| {
                    listens_on(child.id(), self.control_port)
                        && listens_on(child.id(), self.http_port)
                })
            {
                return Ok(());
            }
            if Instant::now() >= deadline {
                let tail = self.log_tail();
                let _ = self.kill();
                return Err(TestkitError::NotReady {
                    addr: self.addr(),
                    timeout,
                    log_path: self.log_path(),
                    tail,
                });
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    fn log_tail(&self) -> String {
        let log = self.log_contents();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(LOG_TAIL_LINES)..].join("\n")
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if let Some(dir) = self.dir.take() {
            if env_flag(ENV_KEEP_SERVER_DIR) {
                let path = dir.keep();
                eprintln!(
                    "edbx-testkit: kept EventDBX test server directory {}",
                    path.display()
                );
            } else if let Err(err) = dir.close() {
                eprintln!(
                    "edbx-testkit: could not remove {}: {err}",
                    self.base.display()
                );
            }
        }
    }
}

/// Whether a startup failure looks like another process took one of our ports. The control
/// socket reports `failed to bind CLI Cap'n Proto listener on <addr>` (the OS error is not
/// shown), the HTTP listener `Address already in use (os error 98)`.
fn lost_port_race(log_tail: &str) -> bool {
    log_tail.contains("failed to bind") || log_tail.contains("in use")
}

/// Runs a short `dbx` command and returns stdout, or `CommandFailed` with stderr.
fn run(mut cmd: Command) -> Result<String> {
    let line = describe(&cmd);
    let out = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .map_err(TestkitError::io(format!("running `{line}`")))?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if out.status.success() {
        return Ok(stdout);
    }
    let stderr = strip_ansi(&String::from_utf8_lossy(&out.stderr));
    Err(TestkitError::CommandFailed {
        command: line,
        status: out.status.to_string(),
        stderr: if stderr.trim().is_empty() {
            strip_ansi(&stdout)
        } else {
            stderr
        },
    })
}

fn describe(cmd: &Command) -> String {
    std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|a| a.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

fn path_arg(path: &Path) -> Result<String> {
    path.to_str().map(str::to_owned).ok_or_else(|| {
        TestkitError::Unexpected(format!("temporary path {} is not UTF-8", path.display()))
    })
}

/// Three non-empty base64url parts separated by dots.
fn looks_like_jwt(s: &str) -> bool {
    let parts: Vec<&str> = s.split('.').collect();
    parts.len() == 3
        && parts.iter().all(|p| {
            !p.is_empty()
                && p.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

/// A free loopback port for the control socket and a free all-interfaces port for HTTP, never
/// handed out before in this process (concurrent tests would otherwise race for them).
fn free_ports() -> std::io::Result<(u16, u16)> {
    static HANDED_OUT: OnceLock<Mutex<HashSet<u16>>> = OnceLock::new();
    let mut used = HANDED_OUT
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    for _ in 0..100 {
        let control = TcpListener::bind((HOST, 0))?;
        let http = TcpListener::bind((Ipv4Addr::UNSPECIFIED, 0))?;
        let c = control.local_addr()?.port();
        let h = http.local_addr()?.port();
        if c != h && !used.contains(&c) && !used.contains(&h) {
            used.insert(c);
            used.insert(h);
            return Ok((c, h));
        }
    }
    Err(std::io::Error::other("no unused port pair found"))
}

/// Whether process `pid` holds a listening TCP socket on `port`: its socket descriptors
/// (`/proc/PID/fd`) matched by inode against the kernel's tables (`/proc/net/tcp`, `tcp6`).
#[cfg(target_os = "linux")]
fn listens_on(pid: u32, port: u16) -> bool {
    const LISTEN: &str = "0A";
    let Ok(fds) = fs::read_dir(format!("/proc/{pid}/fd")) else {
        return false;
    };
    let inodes: HashSet<String> = fds
        .flatten()
        .filter_map(|fd| fs::read_link(fd.path()).ok())
        .filter_map(|target| {
            let target = target.to_str()?;
            let inode = target.strip_prefix("socket:[")?.strip_suffix(']')?;
            Some(inode.to_owned())
        })
        .collect();
    ["/proc/net/tcp", "/proc/net/tcp6"].iter().any(|table| {
        let Ok(text) = fs::read_to_string(table) else {
            return false;
        };
        text.lines().skip(1).any(|line| {
            // sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode
            let cols: Vec<&str> = line.split_whitespace().collect();
            cols.len() > 9
                && cols[3] == LISTEN
                && inodes.contains(cols[9])
                && cols[1]
                    .rsplit(':')
                    .next()
                    .and_then(|hex| u16::from_str_radix(hex, 16).ok())
                    == Some(port)
        })
    })
}

/// Elsewhere the connect probe is all there is.
#[cfg(not(target_os = "linux"))]
fn listens_on(_pid: u32, _port: u16) -> bool {
    true
}

/// Removes ANSI escape sequences (`ESC [ ... letter`).
fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            if chars.peek() == Some(&'[') {
                chars.next();
                for c in chars.by_ref() {
                    if c.is_ascii_alphabetic() {
                        break;
                    }
                }
            }
            continue;
        }
        out.push(c);
    }
    out
}

/// Whether every thread of `pid` is in the stopped state (`T`) according to /proc. Where /proc
/// is missing this cannot be known; it then reports stopped after the signal was sent.
#[cfg(unix)]
fn all_threads_stopped(pid: u32) -> bool {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return true;
    };
    tasks.flatten().all(|task| {
        std::fs::read_to_string(task.path().join("stat"))
            // The state follows the parenthesised command name: "123 (dbx) T ...".
            .map(|stat| {
                stat.rsplit_once(')')
                    .is_some_and(|(_, rest)| rest.trim_start().starts_with(['T', 't']))
            })
            .unwrap_or(true)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_server_is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<TestServer>();
    }

    #[test]
    fn strips_ansi() {
        assert_eq!(
            strip_ansi("\u{1b}[2m2026\u{1b}[0m \u{1b}[32m INFO\u{1b}[0m x"),
            "2026  INFO x"
        );
    }

    #[test]
    fn recognises_lost_port_races() {
        assert!(lost_port_race(
            "Error: configuration error: failed to start CLI proxy: failed to bind CLI Cap'n \
             Proto listener on 127.0.0.1:1"
        ));
        assert!(lost_port_race(
            "Error: Address already in use (os error 98)"
        ));
        assert!(!lost_port_race("Error: invalid config"));
    }

    #[test]
    fn jwt_shape() {
        assert!(looks_like_jwt("eyJh.eyJz.c2ln-_"));
        assert!(!looks_like_jwt("a.b"));
        assert!(!looks_like_jwt("a..c"));
        assert!(!looks_like_jwt("a.b.c d"));
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn listens_on_tells_our_listener_from_anothers() {
        let listener = TcpListener::bind((HOST, 0)).unwrap();
        let port = listener.local_addr().unwrap().port();
        assert!(listens_on(std::process::id(), port));
        // PID 1 does not hold our socket (and we may not even read its descriptors).
        assert!(!listens_on(1, port));
        drop(listener);
        assert!(!listens_on(std::process::id(), port));
    }

    #[test]
    fn free_ports_are_distinct() {
        let mut seen = HashSet::new();
        for _ in 0..20 {
            let (c, h) = free_ports().unwrap();
            assert!(seen.insert(c));
            assert!(seen.insert(h));
        }
    }
}
