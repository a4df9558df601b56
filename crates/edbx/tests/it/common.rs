//! Shared set-up: a real server per test, and a client configured for it.
#![allow(dead_code)]

use std::time::Duration;

use edbx::{Client, Config};
pub use edbx_testkit::{ServerOptions, TestServer};

/// The four session kinds every operation is checked in.
#[derive(Debug, Clone, Copy)]
pub struct Mode {
    pub noise: bool,
    pub verbose: bool,
}

pub const ALL_MODES: [Mode; 4] = [
    Mode {
        noise: true,
        verbose: true,
    },
    Mode {
        noise: false,
        verbose: true,
    },
    Mode {
        noise: true,
        verbose: false,
    },
    Mode {
        noise: false,
        verbose: false,
    },
];

/// Starts a real server for `mode`; panics loudly (naming the install command) if it cannot.
pub fn server(mode: Mode) -> TestServer {
    let options = ServerOptions::default()
        .no_noise(!mode.noise)
        .verbose_responses(mode.verbose);
    TestServer::start(options).unwrap_or_else(|e| panic!("cannot start the EventDBX server: {e}"))
}

pub fn config(server: &TestServer) -> Config {
    Config::new()
        .host(server.host())
        .port(server.port())
        .token(server.token())
        .tenant_id(server.tenant())
        .request_timeout(Duration::from_secs(20))
}

pub async fn client(server: &TestServer, noise: bool) -> Client {
    Client::connect(config(server).noise(noise))
        .await
        .unwrap_or_else(|e| panic!("cannot connect to the test server: {e}"))
}

/// Waits until `state` holds, checking every millisecond, for at most 10 s; panics naming
/// `what` if it never does. Used instead of a sleep wherever the state a test waits for can be
/// observed (e.g. [`Client::pending_requests`]), so a slow machine makes the test slower, not
/// flaky.
pub async fn until(what: &str, mut state: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !state() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting until {what}"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}
