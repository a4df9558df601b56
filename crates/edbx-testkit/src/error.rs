use std::fmt;
use std::io;
use std::path::PathBuf;
use std::time::Duration;

use crate::{INSTALL_HINT, SERVER_VERSION};

/// Everything that can go wrong while finding, starting or driving a test server.
///
/// `Debug` prints the same text as `Display`, so `.expect("...")` and `.unwrap()` in tests show
/// the full explanation (install instructions, command stderr, server log tail).
#[derive(thiserror::Error)]
#[non_exhaustive]
pub enum TestkitError {
    /// No `dbx` binary was found.
    #[error("EventDBX server binary `dbx` not found (looked at: {searched}).\n{hint}", hint = INSTALL_HINT)]
    ServerNotFound {
        /// The places that were checked, in order.
        searched: String,
    },

    /// The `dbx` binary is not the pinned version.
    #[error(
        "{path} reports {found:?}, but the tests are pinned to eventdbx {pinned}.\n{hint}\n\
         Set EDBX_ALLOW_OTHER_SERVER=1 to use this binary anyway.",
        pinned = SERVER_VERSION,
        hint = INSTALL_HINT
    )]
    WrongVersion {
        /// The binary that was checked.
        path: PathBuf,
        /// What `dbx --version` printed.
        found: String,
    },

    /// A `dbx` command exited unsuccessfully.
    #[error("`{command}` failed ({status}):\n{stderr}")]
    CommandFailed {
        /// The command line.
        command: String,
        /// The exit status.
        status: String,
        /// Its standard error (and standard output, if stderr was empty).
        stderr: String,
    },

    /// The server process exited while starting.
    #[error("EventDBX server exited during startup ({status}); last lines of {log}:\n{tail}", log = log_path.display())]
    ServerExited {
        /// The exit status.
        status: String,
        /// The server log file.
        log_path: PathBuf,
        /// The last lines of the server log.
        tail: String,
    },

    /// The server did not accept connections in time.
    #[error(
        "EventDBX server did not accept connections on {addr} within {timeout:?}; last lines of {log}:\n{tail}",
        log = log_path.display()
    )]
    NotReady {
        /// The control address that was probed.
        addr: std::net::SocketAddr,
        /// How long we waited.
        timeout: Duration,
        /// The server log file.
        log_path: PathBuf,
        /// The last lines of the server log.
        tail: String,
    },

    /// An I/O operation of the testkit itself failed.
    #[error("{context}: {source}")]
    Io {
        /// What we were doing.
        context: String,
        /// The underlying error.
        #[source]
        source: io::Error,
    },

    /// The server produced output or files the testkit does not understand.
    #[error("{0}")]
    Unexpected(String),
}

impl fmt::Debug for TestkitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl TestkitError {
    pub(crate) fn io(context: impl Into<String>) -> impl FnOnce(io::Error) -> TestkitError {
        let context = context.into();
        move |source| TestkitError::Io { context, source }
    }
}
