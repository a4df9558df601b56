//! Connection settings: a by-value builder, environment variables and a URL form.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use crate::error::{Error, ErrorKind, Result};

/// An access token. Its `Debug` and `Display` never show the value.
#[derive(Clone, PartialEq, Eq)]
pub struct Token(String);

impl Token {
    /// Wraps a token; surrounding whitespace (a trailing newline from a file) is trimmed, as the
    /// server trims it.
    pub fn new(token: impl Into<String>) -> Self {
        let token = token.into();
        let trimmed = token.trim();
        if trimmed.len() == token.len() {
            Self(token)
        } else {
            Self(trimmed.to_owned())
        }
    }

    /// The token text, for sending. Keep it out of logs.
    pub fn expose(&self) -> &str {
        &self.0
    }
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
    /// No retries.
    pub fn none() -> Self {
        Self {
            attempts: 1,
            ..Self::default()
        }
    }

    /// The delay before retry number `retry` (1-based), with ±25 % jitter so that many clients
    /// do not retry in lockstep.
    pub(crate) fn delay(&self, retry: u32, jitter_seed: u64) -> Duration {
        let base = self
            .initial_delay
            .saturating_mul(1u32 << retry.saturating_sub(1).min(16))
            .min(self.max_delay);
        // A cheap spread from the seed: 75 %..125 % of the base delay.
        let percent = 75 + (jitter_seed % 51);
        base * percent as u32 / 100
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
    /// Default number of connections: 4 (the server runs one request at a time per connection).
    pub const DEFAULT_POOL_SIZE: usize = 4;
    /// Default requests in flight per connection: 32.
    pub const DEFAULT_MAX_IN_FLIGHT: usize = 32;

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

    /// Number of connections (at least 1).
    pub fn pool_size(mut self, size: usize) -> Self {
        self.pool_size = size;
        self
    }

    /// Requests written to one connection before their replies arrive (at least 1).
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

    /// Checks the settings before any connection is made.
    pub(crate) fn validate(&self) -> Result<()> {
        let fail = |msg: &str| Err(Error::new(ErrorKind::Config, msg));
        if self.host.trim().is_empty() {
            return fail("host is empty");
        }
        if self.token.as_ref().is_none_or(|t| t.expose().is_empty()) {
            return fail("no token: set Config::token or EVENTDBX_TOKEN");
        }
        if self.pool_size == 0 {
            return fail("pool_size must be at least 1");
        }
        if self.max_in_flight == 0 {
            return fail("max_in_flight must be at least 1");
        }
        if self.retry.attempts == 0 {
            return fail("retry attempts must be at least 1 (1 = no retries)");
        }
        if self.connect_timeout.is_zero()
            || self.handshake_timeout.is_zero()
            || self.request_timeout.is_zero()
        {
            return fail("timeouts must be greater than zero");
        }
        Ok(())
    }
}

/// `eventdbx://[token@]host[:port][/tenant][?noise=…&token=…&pool_size=…&max_in_flight=…&timeout_ms=…&connect_timeout_ms=…&handshake_timeout_ms=…&retries=…]`
impl FromStr for Config {
    type Err = Error;

    fn from_str(url: &str) -> Result<Self> {
        let bad = |msg: String| Error::new(ErrorKind::Config, msg);
        let rest = url
            .strip_prefix("eventdbx://")
            .ok_or_else(|| bad("URL must start with eventdbx://".into()))?;
        let (rest, query) = rest.split_once('?').unwrap_or((rest, ""));
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        let mut config = Config::new();
        let host_port = match authority.rsplit_once('@') {
            Some((token, host_port)) => {
                if !token.is_empty() {
                    config.token = Some(Token::new(token));
                }
                host_port
            }
            None => authority,
        };
        let (host, port) = match host_port.rsplit_once(':') {
            Some((host, port)) if !host.ends_with(']') || host.starts_with('[') => {
                (host, Some(port))
            }
            _ => (host_port, None),
        };
        if !host.is_empty() {
            config.host = host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_owned();
        }
        if let Some(port) = port {
            config.port = parse_port(port)?;
        }
        let tenant = path.trim_matches('/');
        if !tenant.is_empty() {
            config.tenant_id = Some(tenant.to_owned());
        }
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let number = |v: &str| {
                v.parse::<u64>()
                    .map_err(|_| bad(format!("URL option {key} expects a number, got {v:?}")))
            };
            match key {
                "noise" => config.noise = parse_bool("noise", value)?,
                "token" => config.token = Some(Token::new(value)),
                "tenant" | "tenant_id" => config.tenant_id = Some(value.to_owned()),
                "pool_size" => config.pool_size = number(value)? as usize,
                "max_in_flight" => config.max_in_flight = number(value)? as usize,
                "timeout_ms" => config.request_timeout = Duration::from_millis(number(value)?),
                "connect_timeout_ms" => {
                    config.connect_timeout = Duration::from_millis(number(value)?)
                }
                "handshake_timeout_ms" => {
                    config.handshake_timeout = Duration::from_millis(number(value)?)
                }
                "retries" => config.retry.attempts = number(value)? as u32 + 1,
                _ => return Err(bad(format!("unknown URL option {key:?}"))),
            }
        }
        Ok(config)
    }
}

fn parse_port(port: &str) -> Result<u16> {
    port.parse()
        .map_err(|_| Error::new(ErrorKind::Config, format!("invalid port {port:?}")))
}

fn parse_bool(name: &str, value: &str) -> Result<bool> {
    match value.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" | "" => Ok(false),
        other => Err(Error::new(
            ErrorKind::Config,
            format!("{name} expects true or false, got {other:?}"),
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
        assert!("http://x".parse::<Config>().is_err());
        assert!("eventdbx://x?bogus=1".parse::<Config>().is_err());
    }

    #[test]
    fn retry_delay_grows_and_is_capped() {
        let r = RetryOptions::default();
        let d1 = r.delay(1, 25);
        let d3 = r.delay(3, 25);
        assert_eq!(d1, Duration::from_millis(50));
        assert_eq!(d3, Duration::from_millis(200));
        assert_eq!(r.delay(30, 25), Duration::from_secs(1));
        assert!(r.delay(1, 0) >= Duration::from_micros(37_500));
    }
}
