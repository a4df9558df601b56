//! # edbx-ui — an EventDBX store in a browser
//!
//! The web app behind `edbx ui`: aggregate types with their counts, aggregates with the filter
//! grammar, sort and paging, an aggregate's state, event timeline, state at any version and
//! what each event changed, its Merkle check, referrers and snapshots, new events as they
//! arrive (server-sent events), and charts of recent activity. Everything is served from this
//! binary (the front end is plain HTML, CSS and JavaScript, with the vendored uPlot for charts);
//! no Node.js is needed to build or run it.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let client = edbx::Client::connect(edbx::Config::from_env()?).await?;
//! let ui = edbx_ui::Ui::bind(client, edbx_ui::Options::default()).await?;
//! println!("open {}", ui.login_url());
//! ui.serve(async { tokio::signal::ctrl_c().await.ok(); }).await?;
//! # Ok(()) }
//! ```
//!
//! ## Safe by default
//!
//! * It listens on loopback only ([`Options::listen`] refuses anything else; port 0 picks one).
//! * The printed [`login_url`](Ui::login_url) carries a random one-time token. Its first use
//!   sets a session cookie (`HttpOnly; SameSite=Strict; Path=/`, named after the port) and
//!   redirects to the same page without the token; the token then stops working. Every other
//!   request without the cookie is refused (401).
//! * The `Host` header must name this server's loopback address and port, so a page on another
//!   site cannot reach it through DNS rebinding (403).
//! * Every response carries a strict Content-Security-Policy ([`CSP`]: no inline script, no
//!   `eval`, same-origin only, no framing), `X-Content-Type-Options: nosniff`,
//!   `Referrer-Policy: no-referrer`, `X-Frame-Options: DENY` and `Cache-Control: no-store`.
//! * The front end inserts every value from the store as text, never as HTML.
//! * The EventDBX token stays in this process: the browser only talks to the UI.
//! * It is read-only unless [`Options::allow_writes`]; then apply, patch, archive and restore
//!   are offered, each confirmed in the page before it is sent, and each request must carry the
//!   session's CSRF token ([`CSRF_HEADER`]), a same-origin `Origin` and a JSON body.
//!
//! ## Live events
//!
//! New events reach the browser over server-sent events, from one [`LiveSource`] shared by all
//! pages. The default, [`Subscribed`], is the engine's catch-up subscription
//! ([`edbx::Client::subscribe`]) from the moment the first page listens: every event written
//! after the pages are told they are live (`ready`, once it has caught up) reaches them once,
//! each aggregate's in version order, and events of different aggregates in about the order
//! they were written.
//! [`Options::live_source`] puts another source in its place.

#![warn(missing_docs)]

mod activity;
mod api;
mod assets;
mod history;
mod live;
mod security;
mod time;
mod writes;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::{get, post};

pub use live::{LiveBatch, LiveSource, Subscribed};
pub use security::{CSP, CSRF_HEADER};

/// Makes a fresh [`LiveSource`] each time live events are wanted again (after every browser
/// had gone).
pub type LiveSourceFactory = Arc<dyn Fn(edbx::Client) -> Box<dyn LiveSource> + Send + Sync>;

/// How [`Ui::bind`] serves.
#[derive(Clone)]
pub struct Options {
    listen: SocketAddr,
    allow_writes: bool,
    poll_interval: Duration,
    live_source: Option<LiveSourceFactory>,
}

impl Default for Options {
    /// `127.0.0.1:0` (a free port), read-only, new events looked for at least every 500 ms.
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            allow_writes: false,
            poll_interval: Duration::from_millis(500),
            live_source: None,
        }
    }
}

impl std::fmt::Debug for Options {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Options")
            .field("listen", &self.listen)
            .field("allow_writes", &self.allow_writes)
            .field("poll_interval", &self.poll_interval)
            .field("live_source", &self.live_source.as_ref().map(|_| "custom"))
            .finish()
    }
}

impl Options {
    /// Where to listen: a loopback address (`127.0.0.1`, `::1`, …); port 0 picks a free port.
    /// [`Ui::bind`] refuses any other address.
    pub fn listen(mut self, addr: SocketAddr) -> Self {
        self.listen = addr;
        self
    }

    /// Offers apply, patch, archive and restore in the pages (off by default).
    pub fn allow_writes(mut self, allow: bool) -> Self {
        self.allow_writes = allow;
        self
    }

    /// How often the subscription looks for new events while none come (default 500 ms; at
    /// least 50 ms; it looks again sooner after a round that found some).
    pub fn poll_interval(mut self, interval: Duration) -> Self {
        self.poll_interval = interval.max(Duration::from_millis(50));
        self
    }

    /// Feeds live events from another source than [`Subscribed`].
    pub fn live_source(mut self, factory: LiveSourceFactory) -> Self {
        self.live_source = Some(factory);
        self
    }
}

/// Why [`Ui::bind`] failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum BindError {
    /// The address is not a loopback address.
    NotLoopback(SocketAddr),
    /// The socket could not be bound, or no random token could be made.
    Io(std::io::Error),
}

impl std::fmt::Display for BindError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NotLoopback(addr) => write!(
                f,
                "{addr} is not a loopback address: the UI listens on loopback only (reach it \
                 from another machine through a tunnel, e.g. ssh -L)"
            ),
            Self::Io(e) => write!(f, "cannot listen: {e}"),
        }
    }
}

impl std::error::Error for BindError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Io(e) => Some(e),
            Self::NotLoopback(_) => None,
        }
    }
}

impl From<std::io::Error> for BindError {
    fn from(e: std::io::Error) -> Self {
        Self::Io(e)
    }
}

/// What every handler shares.
pub(crate) struct AppState {
    pub(crate) client: edbx::Client,
    pub(crate) security: security::Security,
    pub(crate) allow_writes: bool,
    pub(crate) hub: live::Hub,
    pub(crate) history: history::Cache,
    pub(crate) types: activity::TypeCounts,
    pub(crate) activity: activity::Cache,
}

/// A bound UI server; [`serve`](Self::serve) runs it.
pub struct Ui {
    listener: tokio::net::TcpListener,
    addr: SocketAddr,
    login_url: String,
    app: Router,
}

impl std::fmt::Debug for Ui {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The login URL holds the token: not shown.
        f.debug_struct("Ui").field("addr", &self.addr).finish()
    }
}

impl Ui {
    /// Listens on `options`' loopback address with a fresh one-time login token.
    pub async fn bind(client: edbx::Client, options: Options) -> Result<Ui, BindError> {
        if !options.listen.ip().is_loopback() {
            return Err(BindError::NotLoopback(options.listen));
        }
        let listener = tokio::net::TcpListener::bind(options.listen).await?;
        let addr = listener.local_addr()?;
        let token = security::secret()?;
        let host = match addr {
            SocketAddr::V4(v4) => v4.ip().to_string(),
            SocketAddr::V6(v6) => format!("[{}]", v6.ip()),
        };
        let login_url = format!("http://{host}:{}/?token={token}", addr.port());
        let factory = options.live_source.clone().unwrap_or_else(|| {
            let interval = options.poll_interval;
            Arc::new(move |client| {
                Box::new(Subscribed::new(client, interval)) as Box<dyn LiveSource>
            })
        });
        let state = Arc::new(AppState {
            hub: live::Hub::new(client.clone(), factory),
            history: history::Cache::default(),
            types: activity::TypeCounts::default(),
            activity: activity::Cache::default(),
            security: security::Security::new(addr, token),
            allow_writes: options.allow_writes,
            client,
        });
        Ok(Ui {
            listener,
            addr,
            login_url,
            app: router(state),
        })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The link to open: it logs one browser in, once. Print it only to the user who started
    /// the UI.
    pub fn login_url(&self) -> &str {
        &self.login_url
    }

    /// Serves until `shutdown` completes, then lets requests in progress finish (live-event
    /// streams are cut).
    pub async fn serve(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        axum::serve(self.listener, self.app)
            .with_graceful_shutdown(shutdown)
            .await
    }
}

fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/", get(assets::index))
        .route("/assets/{name}", get(assets::asset))
        .route("/api/session", get(api::session))
        .route("/api/types", get(activity::types))
        .route("/api/aggregates", get(api::aggregates))
        .route("/api/aggregate", get(api::aggregate))
        .route("/api/events", get(api::events))
        .route("/api/state", get(history::state_at))
        .route("/api/verify", get(api::verify))
        .route("/api/referrers", get(api::referrers))
        .route("/api/snapshots", get(api::snapshots))
        .route("/api/activity", get(activity::activity))
        .route("/api/live", get(live::sse))
        .route("/api/write/{action}", post(writes::write))
        .fallback(api::not_found)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            security::guard,
        ))
        .with_state(state)
}
