//! Exit codes, and failures that say what to do next.

use std::fmt;

use edbx::{ErrorKind, ServerCode};

/// The exit codes of `edbx`, one per kind of outcome a script may branch on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// 0: done.
    Ok = 0,
    /// 1: an unexpected failure (a bug, or writing the output failed).
    Internal = 1,
    /// 2: the command line or its input is wrong (nothing was sent).
    Usage = 2,
    /// 3: the server refused the request (its error code is printed).
    Server = 3,
    /// 4: the server could not be reached, or the connection was lost (safe to retry).
    Connection = 4,
    /// 5: the server refused the session or the token.
    Auth = 5,
    /// 6: a write was sent and its outcome is unknown: read back before retrying.
    OutcomeUnknown = 6,
    /// 7: a check found a problem (`verify`: history does not match its root; `audit`: a
    /// serious finding; `import`: lines were rejected; `export`: archived aggregates left out).
    CheckFailed = 7,
    /// 8: a check could not be made, so nothing is known (`verify`: the aggregate is archived,
    /// or too large for the server to send).
    Unchecked = 8,
    /// 130: interrupted by Ctrl-C (`import --resume` finishes an interrupted import).
    Interrupted = 130,
}

/// The table printed by `edbx --help` and the README.
pub const EXIT_CODES: &str = "\
Exit codes:
    0  done
    1  unexpected failure (a bug, or the output could not be written)
    2  wrong command line or input; nothing was sent
    3  the server refused the request (its error code is printed)
    4  the server could not be reached or the connection was lost; safe to retry
    5  the server refused the session or the token
    6  a write was sent but its outcome is unknown; read it back before retrying
    7  a check found a problem (verify mismatch, serious audit finding, rejected import lines,
       an export of events that had to leave archived aggregates out)
    8  a check could not be made (verify of an archived or too large aggregate)
  130  interrupted by Ctrl-C (`edbx import … --resume` finishes an import)";

/// A failure: what happened, and what to do next.
#[derive(Debug)]
pub struct Failure {
    pub exit: Exit,
    pub message: String,
    pub hint: Option<String>,
}

impl Failure {
    pub fn new(exit: Exit, message: impl Into<String>) -> Self {
        Self {
            exit,
            message: message.into(),
            hint: None,
        }
    }

    pub fn usage(message: impl Into<String>) -> Self {
        Self::new(Exit::Usage, message)
    }

    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// Names the command that failed where the hint says `edbx COMMAND` (`path`: `get`,
    /// `snapshots list`).
    pub fn for_command(mut self, path: &str) -> Self {
        if !path.is_empty() {
            self.hint = self
                .hint
                .map(|h| h.replace("edbx COMMAND", &format!("edbx {path}")));
        }
        self
    }
}

/// The library's words for what a command line calls otherwise: its messages name Rust API
/// items where an `edbx` user has flags.
fn in_cli_words(message: &str) -> String {
    message
        .replace(
            "(see List::filter for the grammar)",
            "(`edbx list --help` shows the grammar)",
        )
        .replace(
            "(use PageStream::limit to stop early)",
            "(with --all, --limit N stops after N rows)",
        )
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "edbx: {}", self.message)?;
        if let Some(hint) = &self.hint {
            write!(f, "\n  → {hint}")?;
        }
        Ok(())
    }
}

impl From<edbx::Error> for Failure {
    fn from(e: edbx::Error) -> Self {
        let (exit, hint) = match e.kind() {
            ErrorKind::InvalidInput | ErrorKind::Config => (
                Exit::Usage,
                "fix the argument named above (see `edbx COMMAND --help`)".to_owned(),
            ),
            ErrorKind::InvalidCheckpoint => (
                Exit::Usage,
                "give a checkpoint a subscription to the same types wrote, or none to start                  over"
                    .to_owned(),
            ),
            _ if e.is_auth() => (
                Exit::Auth,
                "check the token (--token, --token-file, --token-stdin, EVENTDBX_TOKEN or the \
                 profile) and the tenant; `dbx token generate` makes one"
                    .to_owned(),
            ),
            ErrorKind::Handshake => (
                Exit::Auth,
                "the server refused the session: check --tenant, and --no-noise only if the \
                 server allows plaintext"
                    .to_owned(),
            ),
            ErrorKind::Server => (
                Exit::Server,
                match e.server_code() {
                    Some(ServerCode::AggregateNotFound) => {
                        "check the aggregate type and id (`edbx list --type TYPE`)".to_owned()
                    }
                    Some(ServerCode::AggregateArchived) => {
                        "restore it first (`edbx restore TYPE ID`)".to_owned()
                    }
                    Some(ServerCode::SchemaViolation) => {
                        "the aggregate exists already (use `edbx apply`), or the schema refuses \
                         the event"
                            .to_owned()
                    }
                    _ => "the server's code and message are above".to_owned(),
                },
            ),
            ErrorKind::OutcomeUnknown => (
                Exit::OutcomeUnknown,
                "the write may or may not have been applied: read it back (`edbx events TYPE \
                 ID`) before sending it again"
                    .to_owned(),
            ),
            ErrorKind::ReplyTooLarge => (
                Exit::Server,
                "the server cannot send this reply (a row over ~7.5 KiB in a listing, or an \
                 aggregate over ~32 KiB for get); read what fits with get or select"
                    .to_owned(),
            ),
            _ if e.message().contains("is not an EventDBX control port") => (
                Exit::Connection,
                "point --port (or EVENTDBX_PORT, or the profile) at the server's control port: \
                 6363 unless its config.toml says otherwise; its HTTP port serves /health and \
                 /metrics only"
                    .to_owned(),
            ),
            ErrorKind::Connect
            | ErrorKind::Disconnected
            | ErrorKind::NotSent
            | ErrorKind::Timeout => (
                Exit::Connection,
                "is the server running there? (`edbx ping`); a longer --timeout may help"
                    .to_owned(),
            ),
            _ => (
                Exit::Internal,
                "please report this with the command that caused it".to_owned(),
            ),
        };
        let message = match e.server_code() {
            Some(code) if e.kind() == ErrorKind::Server => {
                format!("server refused ({code}): {}", e.message())
            }
            _ => e.to_string(),
        };
        Failure::new(exit, in_cli_words(&message)).hint(hint)
    }
}

impl From<std::io::Error> for Failure {
    fn from(e: std::io::Error) -> Self {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            // The reader went away (`edbx list | head`): not a failure worth a message.
            return Failure::new(Exit::Ok, String::new());
        }
        Failure::new(Exit::Internal, format!("I/O: {e}"))
    }
}

pub type Outcome<T = ()> = Result<T, Failure>;

/// The command a command line runs, as typed: `get`, `snapshots list`.
pub fn command_path(matches: &clap::ArgMatches) -> String {
    let mut path = Vec::new();
    let mut level = matches;
    while let Some((name, sub)) = level.subcommand() {
        path.push(name);
        level = sub;
    }
    path.join(" ")
}
