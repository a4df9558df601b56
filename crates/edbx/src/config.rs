//! Connection settings: a by-value builder, environment variables and a URL form.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use crate::error::{Error, ErrorKind, Result};

/// An access token. Its `Debug` and `Display` never show the value. Cheap to clone (shared),
/// since every client handle and request carries it.
#[derive(Clone, PartialEq, Eq)]
pub struct Token(Arc<str>);

impl Token {
    /// Wraps a token; surrounding whitespace (a trailing newline from a file) is trimmed, as the
    /// server trims it.
    pub fn new(token: impl Into<String>) -> Self {
        let token = token.into();
        Self(Arc::from(token.trim()))
    }

    /// The token text, for sending. Keep it out of logs.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The length of the token's `group` and `user` claims together — what the server records
    /// as the writer of each event — or a generous guess when this is not a JWT whose claims
    /// can be read.
    pub(crate) fn actor_len(&self) -> usize {
        const GUESS: usize = 64;
        let claims = self
            .0
            .split('.')
            .nth(1)
            .and_then(base64url_decode)
            .and_then(|bytes| serde_json::from_slice::<serde_json::Value>(&bytes).ok());
        let field = |name: &str| {
            claims
                .as_ref()
                .and_then(|c| c.get(name))
                .and_then(serde_json::Value::as_str)
                .map(str::len)
        };
        match (field("group"), field("user")) {
            (Some(group), Some(user)) => group + user,
            _ => GUESS,
        }
    }
}

/// Decodes unpadded base64url (a JWT segment).
fn base64url_decode(text: &str) -> Option<Vec<u8>> {
    let value = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'-' => 62,
            b'_' => 63,
            _ => return None,
        } as u32)
    };
    let bytes = text.trim_end_matches('=').as_bytes();
    let mut out = Vec::with_capacity(bytes.len() * 3 / 4);
    for chunk in bytes.chunks(4) {
        let mut acc = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            acc |= value(c)? << (18 - 6 * i);
        }
        let decoded = acc.to_be_bytes();
        match chunk.len() {
            4 => out.extend_from_slice(&decoded[1..4]),
            3 => out.extend_from_slice(&decoded[1..3]),
            2 => out.push(decoded[1]),
            _ => return None,
        }
    }
    Some(out)
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

impl fmt::Display for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl<T: Into<String>> From<T> for Token {
    fn from(token: T) -> Self {
        Token::new(token)
    }
}

/// When and how often a failed call is sent again.
///
/// Only calls that provably did not reach the server, or read-only calls whose connection
/// dropped, are retried; a write that may have been applied is never sent twice. `attempts`
/// counts the first try: `1` disables retries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct RetryOptions {
    /// Total tries, including the first (default 3).
    pub attempts: u32,
    /// Delay before the first retry (default 50 ms); doubled after each.
    pub initial_delay: Duration,
    /// Upper bound on the delay (default 1 s).
    pub max_delay: Duration,
}

impl Default for RetryOptions {
    fn default() -> Self {
        Self {
            attempts: 3,
            initial_delay: Duration::from_millis(50),
            max_delay: Duration::from_secs(1),
        }
    }
}

impl RetryOptions {
    /// Up to `attempts` tries (the first included), waiting `initial_delay` before the first
    /// retry and doubling up to `max_delay`.
    pub fn new(attempts: u32, initial_delay: Duration, max_delay: Duration) -> Self {
        Self {
            attempts,
            initial_delay,
            max_delay,
        }
    }

    /// No retries.
    pub fn none() -> Self {
        Self {
            attempts: 1,
            ..Self::default()
        }
    }

    /// The delay before retry number `retry` (1-based): doubling from `initial_delay` up to
    /// `max_delay`, then spread randomly over 75 %..125 % so that many clients do not retry in
    /// lockstep.
    pub(crate) fn delay(&self, retry: u32) -> Duration {
        crate::jitter::spread(self.base_delay(retry), 0.75, 1.25)
    }

    /// The delay before retry number `retry`, before jitter.
    pub(crate) fn base_delay(&self, retry: u32) -> Duration {
        self.initial_delay
            .saturating_mul(1u32 << retry.saturating_sub(1).min(16))
            .min(self.max_delay)
    }
}

/// How to reach and talk to an EventDBX server.
///
/// ```
/// use std::time::Duration;
/// use edbx::Config;
///
/// let config = Config::new()
///     .host("db.internal")
///     .port(6363)
///     .token("eyJ…")
///     .tenant_id("tenant-123")
///     .request_timeout(Duration::from_secs(5))
///     .pool_size(8);
/// assert_eq!(config.get_port(), 6363);
/// // The token never shows up in Debug output.
/// assert!(!format!("{config:?}").contains("eyJ"));
///
/// let from_url: Config = "eventdbx://db.internal:6363/tenant-123?noise=true".parse().unwrap();
/// assert_eq!(from_url.get_tenant_id(), Some("tenant-123"));
/// ```
#[derive(Debug, Clone)]
pub struct Config {
    host: String,
    port: u16,
    token: Option<Token>,
    tenant_id: Option<String>,
    noise: bool,
    connect_timeout: Duration,
    handshake_timeout: Duration,
    request_timeout: Duration,
    pool_size: usize,
    max_in_flight: usize,
    retry: RetryOptions,
    tcp_keepalive: Option<Duration>,
}

impl Default for Config {
    fn default() -> Self {
        Self::new()
    }
}

/// Documented defaults.
impl Config {
    /// Default host: `127.0.0.1`.
    pub const DEFAULT_HOST: &'static str = "127.0.0.1";
    /// Default control port: `6363`.
    pub const DEFAULT_PORT: u16 = 6363;
    /// Default time to open the TCP connection: 5 s.
    pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
    /// Default time for the hello and the Noise handshake once connected: 5 s.
    pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
    /// Default deadline of a whole call: 10 s.
    pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
    /// Default number of connections: 8. The server runs one request at a time per
    /// connection, so the pool bounds how many of a client's requests it works on at once:
    /// with 4, sixteen concurrent gets reached 80–95 % (most often 85–90 %) of what a
    /// connection per task does on a two-core host, and with 8, 96–98 % (BENCHMARKS.md). The
    /// pool opens connections only as concurrent calls need them, so a quiet client keeps one.
    pub const DEFAULT_POOL_SIZE: usize = 8;
    /// Default requests in flight per connection: 32.
    pub const DEFAULT_MAX_IN_FLIGHT: usize = 32;
    /// Default TCP keepalive: probe a connection after 30 s without traffic.
    pub const DEFAULT_TCP_KEEPALIVE: Duration = Duration::from_secs(30);
    /// Largest pool: 256 connections.
    pub const MAX_POOL_SIZE: usize = 256;
    /// Most requests in flight on one connection: 4096.
    pub const MAX_IN_FLIGHT: usize = 4096;
    /// Most tries of one call (the first included): 100.
    pub const MAX_RETRY_ATTEMPTS: u32 = 100;
    /// Longest timeout or retry delay: one day.
    pub const MAX_TIMEOUT: Duration = Duration::from_secs(24 * 60 * 60);

    /// A configuration with every default: `127.0.0.1:6363`, no token (set one), server's
    /// default tenant, Noise on.
    pub fn new() -> Self {
        Self {
            host: Self::DEFAULT_HOST.to_owned(),
            port: Self::DEFAULT_PORT,
            token: None,
            tenant_id: None,
            noise: true,
            connect_timeout: Self::DEFAULT_CONNECT_TIMEOUT,
            handshake_timeout: Self::DEFAULT_HANDSHAKE_TIMEOUT,
            request_timeout: Self::DEFAULT_REQUEST_TIMEOUT,
            pool_size: Self::DEFAULT_POOL_SIZE,
            max_in_flight: Self::DEFAULT_MAX_IN_FLIGHT,
            retry: RetryOptions::default(),
            tcp_keepalive: Some(Self::DEFAULT_TCP_KEEPALIVE),
        }
    }

    /// Reads `EVENTDBX_HOST`, `EVENTDBX_PORT`, `EVENTDBX_TOKEN`, `EVENTDBX_TENANT_ID` and
    /// `EVENTDBX_NO_NOISE` (`1`/`true`/`yes` asks for plaintext) over the defaults.
    pub fn from_env() -> Result<Self> {
        Self::from_vars(|name| std::env::var(name).ok())
    }

    pub(crate) fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Self> {
        let mut config = Self::new();
        if let Some(host) = var("EVENTDBX_HOST").filter(|h| !h.trim().is_empty()) {
            config.host = host.trim().to_owned();
        }
        if let Some(port) = var("EVENTDBX_PORT").filter(|p| !p.trim().is_empty()) {
            config.port = parse_port(port.trim())?;
        }
        if let Some(token) = var("EVENTDBX_TOKEN").filter(|t| !t.trim().is_empty()) {
            config.token = Some(Token::new(token));
        }
        if let Some(tenant) = var("EVENTDBX_TENANT_ID").filter(|t| !t.trim().is_empty()) {
            config.tenant_id = Some(tenant.trim().to_owned());
        }
        if let Some(flag) = var("EVENTDBX_NO_NOISE") {
            config.noise = !parse_bool("EVENTDBX_NO_NOISE", &flag)?;
        }
        Ok(config)
    }

    /// Server host name or address.
    pub fn host(mut self, host: impl Into<String>) -> Self {
        self.host = host.into();
        self
    }

    /// Server control port.
    pub fn port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }

    /// The token that opens sessions and authorizes each request.
    pub fn token(mut self, token: impl Into<Token>) -> Self {
        self.token = Some(token.into());
        self
    }

    /// The tenant to work in; unset means the server's default tenant.
    pub fn tenant_id(mut self, tenant_id: impl Into<String>) -> Self {
        self.tenant_id = Some(tenant_id.into());
        self
    }

    /// Noise encryption (default on). Turning it off only takes effect if the server also allows
    /// plaintext; otherwise the session stays encrypted.
    pub fn noise(mut self, noise: bool) -> Self {
        self.noise = noise;
        self
    }

    /// Time allowed to open the TCP connection of one session.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Time allowed for the hello and the Noise handshake of one session, once connected.
    pub fn handshake_timeout(mut self, timeout: Duration) -> Self {
        self.handshake_timeout = timeout;
        self
    }

    /// Deadline of a whole call, from the call to its result (waiting for a connection,
    /// queueing, writing, reading, retries).
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// TCP keepalive: after this long without traffic the kernel probes the server and fails
    /// the connection if it is gone (`None` turns it off). Requests waiting for a reply are
    /// watched separately: a connection whose oldest request waits 1.5× the request timeout
    /// is closed and replaced.
    pub fn tcp_keepalive(mut self, idle: Option<Duration>) -> Self {
        self.tcp_keepalive = idle;
        self
    }

    /// Number of connections (1 to [`MAX_POOL_SIZE`](Self::MAX_POOL_SIZE)).
    pub fn pool_size(mut self, size: usize) -> Self {
        self.pool_size = size;
        self
    }

    /// Requests written to one connection before their replies arrive (1 to
    /// [`MAX_IN_FLIGHT`](Self::MAX_IN_FLIGHT)). As many again may wait on it for their turn;
    /// further calls wait for a place (backpressure), within their deadline.
    pub fn max_in_flight(mut self, limit: usize) -> Self {
        self.max_in_flight = limit;
        self
    }

    /// Retry policy for calls that are safe to repeat.
    pub fn retry(mut self, retry: RetryOptions) -> Self {
        self.retry = retry;
        self
    }

    /// The host.
    pub fn get_host(&self) -> &str {
        &self.host
    }
    /// The port.
    pub fn get_port(&self) -> u16 {
        self.port
    }
    /// The token, if set.
    pub fn get_token(&self) -> Option<&Token> {
        self.token.as_ref()
    }
    /// The tenant, if set.
    pub fn get_tenant_id(&self) -> Option<&str> {
        self.tenant_id.as_deref()
    }
    /// Whether Noise is requested.
    pub fn get_noise(&self) -> bool {
        self.noise
    }
    /// The connect timeout.
    pub fn get_connect_timeout(&self) -> Duration {
        self.connect_timeout
    }
    /// The handshake timeout.
    pub fn get_handshake_timeout(&self) -> Duration {
        self.handshake_timeout
    }
    /// The per-call deadline.
    pub fn get_request_timeout(&self) -> Duration {
        self.request_timeout
    }
    /// The pool size.
    pub fn get_pool_size(&self) -> usize {
        self.pool_size
    }
    /// The in-flight limit per connection.
    pub fn get_max_in_flight(&self) -> usize {
        self.max_in_flight
    }
    /// The retry policy.
    pub fn get_retry(&self) -> RetryOptions {
        self.retry
    }
    /// The TCP keepalive idle time, if on.
    pub fn get_tcp_keepalive(&self) -> Option<Duration> {
        self.tcp_keepalive
    }

    /// Checks every setting against the limits above; the client does this when it connects,
    /// and a front-end can do it earlier to report a bad setting in its own words
    /// ([`Error::setting`] says which setting, [`Error::requirement`] what it must be).
    ///
    /// ```
    /// use edbx::{Config, Setting};
    /// let err = Config::new().token("t").pool_size(4096).validate().unwrap_err();
    /// assert_eq!(err.setting(), Some(Setting::PoolSize));
    /// assert_eq!(err.requirement(), Some("must be between 1 and 256, got 4096"));
    /// ```
    pub fn validate(&self) -> Result<()> {
        let fail = |setting: Setting, requirement: String| {
            Err(Error::setting_refused(setting, requirement))
        };
        if self.host.trim().is_empty() {
            return fail(Setting::Host, "is empty".into());
        }
        if self.token.as_ref().is_none_or(|t| t.expose().is_empty()) {
            return fail(
                Setting::Token,
                "is missing: set Config::token or EVENTDBX_TOKEN".into(),
            );
        }
        if !(1..=Self::MAX_POOL_SIZE).contains(&self.pool_size) {
            return fail(
                Setting::PoolSize,
                format!(
                    "must be between 1 and {}, got {}",
                    Self::MAX_POOL_SIZE,
                    self.pool_size
                ),
            );
        }
        if !(1..=Self::MAX_IN_FLIGHT).contains(&self.max_in_flight) {
            return fail(
                Setting::MaxInFlight,
                format!(
                    "must be between 1 and {}, got {}",
                    Self::MAX_IN_FLIGHT,
                    self.max_in_flight
                ),
            );
        }
        if !(1..=Self::MAX_RETRY_ATTEMPTS).contains(&self.retry.attempts) {
            return fail(
                Setting::RetryAttempts,
                format!(
                    "must be between 1 (no retries) and {}, got {}",
                    Self::MAX_RETRY_ATTEMPTS,
                    self.retry.attempts
                ),
            );
        }
        for (setting, value) in [
            (Setting::ConnectTimeout, self.connect_timeout),
            (Setting::HandshakeTimeout, self.handshake_timeout),
            (Setting::RequestTimeout, self.request_timeout),
        ] {
            if value.is_zero() || value > Self::MAX_TIMEOUT {
                return fail(
                    setting,
                    format!(
                        "must be greater than zero and at most {:?}, got {value:?}",
                        Self::MAX_TIMEOUT
                    ),
                );
            }
        }
        for (setting, value) in [
            (Setting::RetryInitialDelay, self.retry.initial_delay),
            (Setting::RetryMaxDelay, self.retry.max_delay),
        ] {
            if value > Self::MAX_TIMEOUT {
                return fail(
                    setting,
                    format!("must be at most {:?}, got {value:?}", Self::MAX_TIMEOUT),
                );
            }
        }
        let keepalive_ok =
            |idle: Duration| (Duration::from_secs(1)..=Self::MAX_TIMEOUT).contains(&idle);
        if let Some(idle) = self.tcp_keepalive.filter(|idle| !keepalive_ok(*idle)) {
            return fail(
                Setting::TcpKeepalive,
                format!(
                    "must be between 1s and {:?}, got {idle:?}",
                    Self::MAX_TIMEOUT
                ),
            );
        }
        Ok(())
    }
}

/// A setting of [`Config`] that [`Config::validate`] checks: [`Error::setting`] names the one
/// refused, so that a front-end (a binding, a command line) can report it under its own name
/// for it, with [`Error::requirement`] saying what it must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Setting {
    /// [`Config::host`].
    Host,
    /// [`Config::token`].
    Token,
    /// [`Config::pool_size`] (limit [`Config::MAX_POOL_SIZE`]).
    PoolSize,
    /// [`Config::max_in_flight`] (limit [`Config::MAX_IN_FLIGHT`]).
    MaxInFlight,
    /// [`RetryOptions::attempts`] (limit [`Config::MAX_RETRY_ATTEMPTS`]).
    RetryAttempts,
    /// [`RetryOptions::initial_delay`] (limit [`Config::MAX_TIMEOUT`]).
    RetryInitialDelay,
    /// [`RetryOptions::max_delay`] (limit [`Config::MAX_TIMEOUT`]).
    RetryMaxDelay,
    /// [`Config::connect_timeout`] (limit [`Config::MAX_TIMEOUT`]).
    ConnectTimeout,
    /// [`Config::handshake_timeout`] (limit [`Config::MAX_TIMEOUT`]).
    HandshakeTimeout,
    /// [`Config::request_timeout`] (limit [`Config::MAX_TIMEOUT`]).
    RequestTimeout,
    /// [`Config::tcp_keepalive`] (1 s to [`Config::MAX_TIMEOUT`]).
    TcpKeepalive,
}

impl Setting {
    /// The setting's name in this crate (`pool_size`, `request_timeout`, `retry.attempts`, …),
    /// with which [`Error::message`] of a refused setting starts.
    pub fn name(self) -> &'static str {
        match self {
            Self::Host => "host",
            Self::Token => "token",
            Self::PoolSize => "pool_size",
            Self::MaxInFlight => "max_in_flight",
            Self::RetryAttempts => "retry.attempts",
            Self::RetryInitialDelay => "retry.initial_delay",
            Self::RetryMaxDelay => "retry.max_delay",
            Self::ConnectTimeout => "connect_timeout",
            Self::HandshakeTimeout => "handshake_timeout",
            Self::RequestTimeout => "request_timeout",
            Self::TcpKeepalive => "tcp_keepalive",
        }
    }
}

/// `eventdbx://[token@]host[:port][/tenant][?noise=…&token=…&tenant=…&pool_size=…&max_in_flight=…&timeout_ms=…&connect_timeout_ms=…&handshake_timeout_ms=…&keepalive_ms=…&retries=…]`
///
/// Parsed as an RFC 3986 URI: the token, tenant and option values are percent-decoded, IPv6
/// hosts are written in brackets (`eventdbx://[::1]:6363`), and every number is checked
/// against the limits of [`Config::validate`](Config) when the client connects.
impl FromStr for Config {
    type Err = Error;

    fn from_str(url: &str) -> Result<Self> {
        let bad = |msg: String| Error::new(ErrorKind::Config, msg);
        let uri = fluent_uri::Uri::parse(url)
            .map_err(|e| bad(format!("not a valid URL ({e}): {}", quoted(url))))?;
        if !uri.scheme().as_str().eq_ignore_ascii_case("eventdbx") {
            return Err(bad(format!(
                "URL must start with eventdbx://, got {}",
                quoted(url)
            )));
        }
        let authority = uri
            .authority()
            .ok_or_else(|| bad("URL has no host: eventdbx://host[:port]".into()))?;
        let mut config = Config::new();
        if let Some(userinfo) = authority.userinfo() {
            let token = decode("token", userinfo)?;
            if !token.is_empty() {
                config.token = Some(Token::new(token));
            }
        }
        let host = authority.host();
        let host = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        if !host.is_empty() {
            config.host = host.to_owned();
        }
        match authority.port_to_u16() {
            Ok(Some(port)) => config.port = port,
            Ok(None) => {}
            Err(_) => {
                let port = authority.port().map(|p| p.as_str()).unwrap_or_default();
                return Err(bad(format!("invalid port {}", quoted(port))));
            }
        }
        let tenant = decode("tenant", uri.path())?;
        let tenant = tenant.trim_matches('/');
        if !tenant.is_empty() {
            config.tenant_id = Some(tenant.to_owned());
        }
        let Some(query) = uri.query() else {
            return Ok(config);
        };
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair
                .split_once('=')
                .unwrap_or((pair, fluent_uri::pct_enc::EStr::EMPTY));
            let key = decode("option name", key)?;
            let value = decode("option value", value)?;
            let number = |v: &str| {
                v.parse::<u64>().map_err(|_| {
                    bad(format!(
                        "URL option {} expects a whole number, got {}",
                        quoted(&key),
                        quoted(v)
                    ))
                })
            };
            let millis = |v: &str| number(v).map(Duration::from_millis);
            match key.as_str() {
                "noise" => config.noise = parse_bool("noise", &value)?,
                "token" => config.token = Some(Token::new(value)),
                "tenant" | "tenant_id" => config.tenant_id = Some(value),
                "pool_size" => {
                    config.pool_size = usize::try_from(number(&value)?).unwrap_or(usize::MAX)
                }
                "max_in_flight" => {
                    config.max_in_flight = usize::try_from(number(&value)?).unwrap_or(usize::MAX)
                }
                "timeout_ms" => config.request_timeout = millis(&value)?,
                "connect_timeout_ms" => config.connect_timeout = millis(&value)?,
                "handshake_timeout_ms" => config.handshake_timeout = millis(&value)?,
                "keepalive_ms" => {
                    config.tcp_keepalive = Some(millis(&value)?).filter(|d| !d.is_zero())
                }
                "retries" => {
                    let retries = number(&value)?;
                    config.retry.attempts = u32::try_from(retries)
                        .ok()
                        .and_then(|r| r.checked_add(1))
                        .unwrap_or(u32::MAX);
                }
                _ => return Err(bad(format!("unknown URL option {}", quoted(&key)))),
            }
        }
        Ok(config)
    }
}

/// A percent-decoded part of a URL.
fn decode<E: fluent_uri::pct_enc::Encoder>(
    what: &str,
    text: &fluent_uri::pct_enc::EStr<E>,
) -> Result<String> {
    text.decode()
        .to_string()
        .map(|s| s.into_owned())
        .map_err(|_| {
            Error::new(
                ErrorKind::Config,
                format!("the URL's {what} is not valid UTF-8 once decoded"),
            )
        })
}

/// At most 64 characters of a caller's input, quoted, for error messages: a message must not
/// grow with the input.
pub(crate) fn quoted(value: &str) -> String {
    const SHOWN: usize = 64;
    match value.char_indices().nth(SHOWN) {
        None => format!("{value:?}"),
        Some((cut, _)) => format!("{:?}… ({} bytes)", &value[..cut], value.len()),
    }
}

fn parse_port(port: &str) -> Result<u16> {
    port.parse()
        .map_err(|_| Error::new(ErrorKind::Config, format!("invalid port {}", quoted(port))))
}

fn parse_bool(name: &str, value: &str) -> Result<bool> {
    match value.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" | "" => Ok(false),
        other => Err(Error::new(
            ErrorKind::Config,
            format!("{name} expects true or false, got {}", quoted(other)),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn env_overrides_defaults() {
        let vars: HashMap<&str, &str> = [
            ("EVENTDBX_HOST", "db"),
            ("EVENTDBX_PORT", "7000"),
            ("EVENTDBX_TOKEN", "secret-token\n"),
            ("EVENTDBX_TENANT_ID", "acme"),
            ("EVENTDBX_NO_NOISE", "1"),
        ]
        .into();
        let c = Config::from_vars(|k| vars.get(k).map(|v| v.to_string())).unwrap();
        assert_eq!((c.get_host(), c.get_port()), ("db", 7000));
        assert_eq!(c.get_token().unwrap().expose(), "secret-token");
        assert_eq!(c.get_tenant_id(), Some("acme"));
        assert!(!c.get_noise());
        assert!(!format!("{c:?}").contains("secret-token"));

        let none = Config::from_vars(|_| None).unwrap();
        assert_eq!((none.get_host(), none.get_port()), ("127.0.0.1", 6363));
        assert!(none.get_noise());
        assert!(none.validate().is_err(), "no token is a config error");
        let bad_port = Config::from_vars(|k| (k == "EVENTDBX_PORT").then(|| "x".into()));
        assert_eq!(bad_port.unwrap_err().kind(), ErrorKind::Config);
    }

    #[test]
    fn url_form_parses_every_part() {
        let c: Config =
            "eventdbx://tok@example.org:7001/acme?noise=false&pool_size=2&timeout_ms=250&handshake_timeout_ms=90"
                .parse()
                .unwrap();
        assert_eq!(c.get_host(), "example.org");
        assert_eq!(c.get_port(), 7001);
        assert_eq!(c.get_token().unwrap().expose(), "tok");
        assert_eq!(c.get_tenant_id(), Some("acme"));
        assert!(!c.get_noise());
        assert_eq!(c.get_pool_size(), 2);
        assert_eq!(c.get_request_timeout(), Duration::from_millis(250));
        assert_eq!(c.get_handshake_timeout(), Duration::from_millis(90));

        let v6: Config = "eventdbx://[::1]:6400".parse().unwrap();
        assert_eq!((v6.get_host(), v6.get_port()), ("::1", 6400));
        let v6_default: Config = "eventdbx://[::1]".parse().unwrap();
        assert_eq!(
            (v6_default.get_host(), v6_default.get_port()),
            ("::1", 6363)
        );
        assert!("http://x".parse::<Config>().is_err());
        assert!("eventdbx://x?bogus=1".parse::<Config>().is_err());

        // Percent-encoded parts are decoded.
        let encoded: Config = "eventdbx://a%2Fb%3Dc@host/ten%61nt?token=t%20k"
            .parse()
            .unwrap();
        assert_eq!(encoded.get_token().unwrap().expose(), "t k");
        assert_eq!(encoded.get_tenant_id(), Some("tenant"));
        let userinfo: Config = "eventdbx://a%2Fb%3Dc@host".parse().unwrap();
        assert_eq!(userinfo.get_token().unwrap().expose(), "a/b=c");
    }

    #[test]
    fn actor_length_comes_from_the_jwt_claims() {
        // {"group":"ops","user":"alice"} as a JWT's middle segment.
        let token =
            Token::new("eyJhbGciOiJFZERTQSJ9.eyJncm91cCI6Im9wcyIsInVzZXIiOiJhbGljZSJ9.c2ln");
        assert_eq!(token.actor_len(), 8);
        assert_eq!(Token::new("not-a-jwt").actor_len(), 64);
        assert_eq!(base64url_decode("aGk"), Some(b"hi".to_vec()));
        assert_eq!(base64url_decode("a!"), None);
    }

    #[test]
    fn numbers_are_capped_with_clear_errors() {
        let huge: Config = "eventdbx://t@h?retries=4294967295".parse().unwrap();
        assert_eq!(huge.get_retry().attempts, u32::MAX);
        let e = huge.validate().unwrap_err();
        assert!(e.message().contains("retry.attempts"), "{e}");
        assert_eq!(e.setting(), Some(Setting::RetryAttempts));
        for url in [
            "eventdbx://t@h?max_in_flight=1000000000",
            "eventdbx://t@h?pool_size=100000",
            "eventdbx://t@h?timeout_ms=0",
            "eventdbx://t@h?timeout_ms=18446744073709551615",
            "eventdbx://t@h?keepalive_ms=10",
        ] {
            let config: Config = url.parse().unwrap();
            assert_eq!(
                config.validate().unwrap_err().kind(),
                ErrorKind::Config,
                "{url}"
            );
        }
        assert!("eventdbx://t@h?retries=-1".parse::<Config>().is_err());
        assert!("eventdbx://t@h:99999".parse::<Config>().is_err());
        let ok: Config = "eventdbx://t@h?keepalive_ms=0&pool_size=256&max_in_flight=4096"
            .parse()
            .unwrap();
        assert!(ok.validate().is_ok());
        assert_eq!(ok.get_tcp_keepalive(), None);
    }

    #[test]
    fn messages_quote_a_bounded_prefix_of_the_input() {
        let long = "x".repeat(100_000);
        let e = format!("eventdbx://h?{long}=1")
            .parse::<Config>()
            .unwrap_err();
        assert!(e.to_string().len() < 200, "{} bytes", e.to_string().len());
        assert!(e.to_string().contains("100000 bytes"));
        assert_eq!(quoted("short"), "\"short\"");
    }

    #[test]
    fn retry_delay_grows_and_is_capped() {
        let r = RetryOptions::default();
        assert_eq!(r.base_delay(1), Duration::from_millis(50));
        assert_eq!(r.base_delay(3), Duration::from_millis(200));
        assert_eq!(r.base_delay(30), Duration::from_secs(1));
        for _ in 0..32 {
            let d = r.delay(3);
            assert!(d >= Duration::from_millis(150) && d <= Duration::from_millis(250));
        }
    }
}
