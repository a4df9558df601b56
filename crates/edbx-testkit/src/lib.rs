//! Throwaway EventDBX servers for `edbx` integration tests.
//!
//! The tests of the `edbx` client talk to the *real* server: the `dbx` binary of crate
//! `eventdbx`, pinned to version [`SERVER_VERSION`]. This crate finds that binary
//! ([`find_dbx`]), starts isolated instances of it ([`TestServer`]) on free loopback ports, with a
//! fresh temporary `HOME`, data directory, log directory and `config.toml` each, mints tokens for
//! them and cleans everything up again when the [`TestServer`] is dropped — also when the test
//! panics.
//!
//! Install the pinned server once per machine with `scripts/install-server.sh` (it builds it into
//! `~/.cache/edbx/server-3.19.4`). A missing or wrong binary is an error, never a silent skip.
//!
//! ```no_run
//! use edbx_testkit::{ServerOptions, TestServer, TokenSpec};
//!
//! let server = TestServer::start(ServerOptions::default().no_noise(true))
//!     .expect("start EventDBX test server");
//! let addr = server.addr(); // 127.0.0.1:<free port>, the control socket
//! let root_token = server.token(); // never-expiring bootstrap token (all actions, all tenants)
//! let tenant = server.tenant(); // "default"
//! let reader = server
//!     .mint_token(&TokenSpec::new("test", "reader").action("aggregate.read"))
//!     .expect("mint a scoped token");
//! # let _ = (addr, root_token, tenant, reader);
//! // ... connect the client to `addr` ...
//! drop(server); // kills the server and removes its temporary directory
//! ```
//!
//! Environment variables:
//!
//! | Variable | Effect |
//! |----------|--------|
//! | `EDBX_DBX` | path of the `dbx` binary to use (checked first) |
//! | `EDBX_CACHE_DIR` | cache folder of `scripts/install-server.sh` (default `$HOME/.cache/edbx`) |
//! | `EDBX_ALLOW_OTHER_SERVER=1` | accept a `dbx` whose version is not [`SERVER_VERSION`] |
//! | `EDBX_KEEP_SERVER_DIR=1` | keep each server's temporary directory after drop (path printed on stderr) |
//! | `EDBX_SERVER_RUST_LOG` | `RUST_LOG` filter for the server (default `warn`) |

#![warn(missing_docs)]

mod config_toml;
mod error;
mod find;
mod options;
mod server;
mod spawn;

pub use error::TestkitError;
pub use find::{find_dbx, server_cache_dir};
pub use options::{Restrict, ServerOptions, TokenSpec};
pub use server::TestServer;

/// The `eventdbx` server version the tests are pinned to.
pub const SERVER_VERSION: &str = "3.19.4";

/// Environment variable naming the `dbx` binary to use.
pub const ENV_DBX: &str = "EDBX_DBX";
/// Environment variable overriding the cache folder (default `$HOME/.cache/edbx`).
pub const ENV_CACHE_DIR: &str = "EDBX_CACHE_DIR";
/// Set to `1` to accept a `dbx` binary whose version is not [`SERVER_VERSION`].
pub const ENV_ALLOW_OTHER_SERVER: &str = "EDBX_ALLOW_OTHER_SERVER";
/// Set to `1` to keep each server's temporary directory after drop.
pub const ENV_KEEP_SERVER_DIR: &str = "EDBX_KEEP_SERVER_DIR";
/// `RUST_LOG` filter passed to the server process (default `warn`).
pub const ENV_SERVER_RUST_LOG: &str = "EDBX_SERVER_RUST_LOG";

/// How to install the pinned server; part of the "binary not found" error.
pub const INSTALL_HINT: &str = "Install the pinned EventDBX server once per machine with\n    \
     scripts/install-server.sh            (from the edbx repository root)\n\
     or by hand with\n    \
     cargo install --locked eventdbx --version 3.19.4 --root ~/.cache/edbx/server-3.19.4\n\
     or point EDBX_DBX at an existing dbx 3.19.4 binary.";

/// True when the environment variable is set to a "yes" value (`1`, `true`, `yes`, `on`).
pub(crate) fn env_flag(name: &str) -> bool {
    std::env::var(name)
        .map(|v| {
            matches!(
                v.trim().to_ascii_lowercase().as_str(),
                "1" | "true" | "yes" | "on"
            )
        })
        .unwrap_or(false)
}
