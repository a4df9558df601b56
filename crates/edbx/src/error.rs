//! One error type for every failure, with a kind that says what happened and how to react.

use std::fmt;
use std::sync::Arc;

use edbx_wire::WireError;

use crate::config::Setting;

/// What went wrong, in terms a caller can act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The configuration is unusable (bad URL, missing token, zero pool size, …).
    Config,
    /// The caller's input would be rejected by the server; nothing was sent.
    InvalidInput,
    /// A session could not be opened: the TCP connection failed, or it was cut or timed out
    /// during the hello or the Noise handshake. Nothing was sent; safe to retry.
    Connect,
    /// The server refused the session (token, tenant, version: [`Error::is_auth`] tells a token
    /// problem), the Noise handshake failed cryptographically, or the server offered a security
    /// level the client did not ask for. Retrying the same session will fail the same way.
    Handshake,
    /// The call's deadline passed before the request was written, or a read's reply did not
    /// come in time. [`Error::is_retryable`] says whether the request was written. (A *write*
    /// whose reply did not come in time is [`ErrorKind::OutcomeUnknown`].)
    Timeout,
    /// The request was never written to the server: safe to send again.
    NotSent,
    /// The connection ended before a read-only request was answered: safe to send again.
    Disconnected,
    /// A mutation was written and its reply never came — its connection ended, or its deadline
    /// passed ([`Error::is_timeout`] tells which): the server may or may not have applied it.
    /// Read back before retrying; the client never sends it again.
    OutcomeUnknown,
    /// The server closed the connection instead of answering this request, twice — the second
    /// time with the request alone on a fresh connection. On server 3.19.4 that is what a reply
    /// larger than its frame limit does: a listed aggregate or event over ~7.5 KiB of JSON, or
    /// an aggregate over ~32 KiB for `get` (see the crate docs, *Limits*). Retrying cannot help.
    ReplyTooLarge,
    /// The server answered with an error ([`Error::server_code`] says which).
    Server,
    /// The peer sent bytes that break the protocol (the connection is closed). A peer that is
    /// not an EventDBX control port at all (answering the hello like an HTTP or TLS server, or
    /// with other bytes) is this kind too, and its message says so: "HOST:PORT is not an
    /// EventDBX control port (it answered like an HTTP server: …)". Not retried.
    Protocol,
    /// The server's JSON did not have the expected shape.
    Decode,
    /// The client was closed.
    Closed,
    /// A subscription checkpoint that this client did not write, or wrote for a subscription to
    /// other aggregate types (see [`Checkpoint`](crate::Checkpoint)). Nothing was sent.
    InvalidCheckpoint,
}

/// The error codes of server 3.19.4 (`ControlError.code`), with the raw string kept.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ServerCode {
    /// `invalid_token`: the token is malformed, signed by another key, or revoked.
    InvalidToken,
    /// `token_expired`.
    TokenExpired,
    /// `token_limit_reached`.
    TokenLimitReached,
    /// `unauthorized`: the token does not allow this action or resource.
    Unauthorized,
    /// `aggregate_not_found`.
    AggregateNotFound,
    /// `aggregate_archived`: appends and patches are refused until restored.
    AggregateArchived,
    /// `schema_exists`.
    SchemaExists,
    /// `schema_not_found`.
    SchemaNotFound,
    /// `invalid_schema`: the request's contents were rejected (syntax, JSON, filter, …).
    InvalidSchema,
    /// `schema_violation`: e.g. creating an aggregate that exists.
    SchemaViolation,
    /// `invalid_cursor`.
    InvalidCursor,
    /// `config`.
    Config,
    /// `storage`: a storage engine error on the server.
    Storage,
    /// `io`.
    Io,
    /// `serialization`.
    Serialization,
    /// `tenant_quota`: the tenant's storage quota is used up.
    TenantQuota,
    /// A code this client does not know.
    Other(String),
}

impl ServerCode {
    /// Maps the server's code string.
    pub fn parse(code: &str) -> Self {
        match code {
            "invalid_token" => Self::InvalidToken,
            "token_expired" => Self::TokenExpired,
            "token_limit_reached" => Self::TokenLimitReached,
            "unauthorized" => Self::Unauthorized,
            "aggregate_not_found" => Self::AggregateNotFound,
            "aggregate_archived" => Self::AggregateArchived,
            "schema_exists" => Self::SchemaExists,
            "schema_not_found" => Self::SchemaNotFound,
            "invalid_schema" => Self::InvalidSchema,
            "schema_violation" => Self::SchemaViolation,
            "invalid_cursor" => Self::InvalidCursor,
            "config" => Self::Config,
            "storage" => Self::Storage,
            "io" => Self::Io,
            "serialization" => Self::Serialization,
            "tenant_quota" => Self::TenantQuota,
            other => Self::Other(other.to_owned()),
        }
    }

    /// The code as the server spells it.
    pub fn as_str(&self) -> &str {
        match self {
            Self::InvalidToken => "invalid_token",
            Self::TokenExpired => "token_expired",
            Self::TokenLimitReached => "token_limit_reached",
            Self::Unauthorized => "unauthorized",
            Self::AggregateNotFound => "aggregate_not_found",
            Self::AggregateArchived => "aggregate_archived",
            Self::SchemaExists => "schema_exists",
            Self::SchemaNotFound => "schema_not_found",
            Self::InvalidSchema => "invalid_schema",
            Self::SchemaViolation => "schema_violation",
            Self::InvalidCursor => "invalid_cursor",
            Self::Config => "config",
            Self::Storage => "storage",
            Self::Io => "io",
            Self::Serialization => "serialization",
            Self::TenantQuota => "tenant_quota",
            Self::Other(code) => code,
        }
    }
}

impl fmt::Display for ServerCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error from the client. Cheap to move (one box) and to clone (its cause is shared); ask it
/// questions rather than matching strings.
///
/// ```
/// # async fn demo(client: edbx::Client) {
/// match client.get("orders", "ord_1").await {
///     Ok(found) => println!("{found:?}"),
///     Err(e) if e.is_timeout() => eprintln!("slow server: {e}"),
///     Err(e) if e.is_retryable() => eprintln!("try again: {e}"),
///     Err(e) => eprintln!("failed: {e}"),
/// }
/// # }
/// ```
#[derive(Clone)]
pub struct Error {
    inner: Box<Inner>,
}

#[derive(Clone)]
struct Inner {
    kind: ErrorKind,
    message: String,
    server_code: Option<ServerCode>,
    /// The deadline passed (for [`ErrorKind::Timeout`] and timed-out writes).
    timed_out: bool,
    /// The request was written to the server (so a timeout cannot be retried blindly).
    written: bool,
    /// The server closed the connection while this request's reply was the next one due.
    closed_while_due: bool,
    /// The refused setting, for [`ErrorKind::Config`] errors of [`Config::validate`](crate::Config::validate).
    setting: Option<Setting>,
    source: Option<Arc<dyn std::error::Error + Send + Sync>>,
}

impl Error {
    pub(crate) fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            inner: Box::new(Inner {
                kind,
                message: message.into(),
                server_code: None,
                timed_out: kind == ErrorKind::Timeout,
                written: false,
                closed_while_due: false,
                setting: None,
                source: None,
            }),
        }
    }

    /// A setting of [`Config`](crate::Config) refused by [`Config::validate`](crate::Config::validate): the message is the setting's
    /// name followed by `requirement`.
    pub(crate) fn setting_refused(setting: Setting, requirement: String) -> Self {
        let mut err = Self::new(
            ErrorKind::Config,
            format!("{} {requirement}", setting.name()),
        );
        err.inner.setting = Some(setting);
        err
    }

    pub(crate) fn with_source(
        mut self,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        self.inner.source = Some(Arc::new(source));
        self
    }

    /// Sets a cause shared with other errors (one connection failure fails many calls).
    pub(crate) fn with_shared_source(mut self, source: Arc<Error>) -> Self {
        self.inner.source = Some(source);
        self
    }

    /// A write whose reply did not come in time: [`ErrorKind::OutcomeUnknown`], a timeout.
    pub(crate) fn written_write_timed_out(message: impl Into<String>) -> Self {
        let mut err = Self::new(ErrorKind::OutcomeUnknown, message);
        err.inner.timed_out = true;
        err.inner.written = true;
        err
    }

    /// The same failure (kind, server code, flags) with another message and no source, to report
    /// it again to a later caller.
    pub(crate) fn repeat(&self, message: impl Into<String>) -> Self {
        Self {
            inner: Box::new(Inner {
                kind: self.inner.kind,
                message: message.into(),
                server_code: self.inner.server_code.clone(),
                timed_out: self.inner.timed_out,
                written: self.inner.written,
                closed_while_due: self.inner.closed_while_due,
                setting: self.inner.setting,
                source: None,
            }),
        }
    }

    /// Marks the request as written (a read that timed out after being sent).
    pub(crate) fn mark_written(mut self) -> Self {
        self.inner.written = true;
        self
    }

    /// Marks a read that was next in line when the server closed its connection.
    pub(crate) fn mark_closed_while_due(mut self) -> Self {
        self.inner.closed_while_due = true;
        self
    }

    pub(crate) fn closed_while_due(&self) -> bool {
        self.inner.closed_while_due
    }

    /// Prefixes the message with where it happened (e.g. the cursor of a listing).
    pub(crate) fn context(mut self, context: impl std::fmt::Display) -> Self {
        self.inner.message = format!("{context}: {}", self.inner.message);
        self
    }

    pub(crate) fn server(code: &str, message: &str) -> Self {
        let mut err = Self::new(ErrorKind::Server, message);
        err.inner.server_code = Some(ServerCode::parse(code));
        err
    }

    /// An [`ErrorKind::InvalidInput`] error, for callers that check their own input the way
    /// the client does (bindings, tools).
    pub fn invalid_input(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidInput, message)
    }

    pub(crate) fn protocol(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Protocol, message)
    }

    pub(crate) fn decode(what: &str, err: serde_json::Error) -> Self {
        Self::new(
            ErrorKind::Decode,
            format!("unexpected {what} JSON from server: {err}"),
        )
        .with_source(err)
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        self.inner.kind
    }

    /// The server's message, or the client's description of the failure.
    pub fn message(&self) -> &str {
        &self.inner.message
    }

    /// The setting [`Config::validate`](crate::Config::validate) refused, for [`ErrorKind::Config`] errors; the message
    /// then starts with [`Setting::name`], followed by [`Error::requirement`].
    pub fn setting(&self) -> Option<Setting> {
        self.inner.setting
    }

    /// What the refused [`setting`](Error::setting) must be, without its name (`must be
    /// between 1 and 256, got 4096`), for a front-end that calls the setting otherwise.
    pub fn requirement(&self) -> Option<&str> {
        let setting = self.inner.setting?;
        self.inner
            .message
            .strip_prefix(setting.name())
            .map(str::trim_start)
    }

    /// The server's error code, for [`ErrorKind::Server`] errors (and refusals of the hello
    /// and of filters, which the server codes too).
    ///
    /// ```
    /// # fn check(err: edbx::Error) {
    /// use edbx::ServerCode;
    /// if err.server_code() == Some(ServerCode::AggregateArchived) {
    ///     // restore it first
    /// }
    /// # }
    /// ```
    pub fn server_code(&self) -> Option<ServerCode> {
        self.inner.server_code.clone()
    }

    /// Whether the call's deadline passed (kind [`ErrorKind::Timeout`], or an
    /// [`ErrorKind::OutcomeUnknown`] write that timed out).
    pub fn is_timeout(&self) -> bool {
        self.inner.timed_out
    }

    /// Whether the token was refused: at the hello (invalid, expired, or not granted the
    /// tenant) or on a call (invalid, expired, or lacking the permission).
    pub fn is_auth(&self) -> bool {
        matches!(
            self.inner.server_code,
            Some(
                ServerCode::InvalidToken
                    | ServerCode::TokenExpired
                    | ServerCode::TokenLimitReached
                    | ServerCode::Unauthorized
            )
        )
    }

    /// Whether the input was refused before anything was sent.
    pub fn is_invalid_input(&self) -> bool {
        self.inner.kind == ErrorKind::InvalidInput
    }

    /// Whether the connection was lost or could not be opened.
    pub fn is_disconnected(&self) -> bool {
        matches!(
            self.inner.kind,
            ErrorKind::Disconnected | ErrorKind::OutcomeUnknown | ErrorKind::Connect
        )
    }

    /// Whether a mutation may or may not have been applied (kind
    /// [`ErrorKind::OutcomeUnknown`]). Never retry such a write blindly; read back first.
    pub fn outcome_unknown(&self) -> bool {
        self.inner.kind == ErrorKind::OutcomeUnknown
    }

    /// Whether sending the same request again is safe and may succeed: it was never sent (also
    /// when its deadline passed before it was written), the session could not be opened, or it
    /// was a read whose connection dropped or whose reply came too late.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self.inner.kind,
            ErrorKind::NotSent | ErrorKind::Connect | ErrorKind::Disconnected | ErrorKind::Timeout
        )
    }

    /// Whether the request was written to the server before the failure.
    pub fn was_sent(&self) -> bool {
        self.inner.written
    }

    /// Whether the server answered "not found" for this aggregate.
    pub fn is_not_found(&self) -> bool {
        self.inner.server_code == Some(ServerCode::AggregateNotFound)
    }

    /// A copy with another kind (used when the same failure means different things for reads
    /// and writes).
    pub(crate) fn with_kind(mut self, kind: ErrorKind) -> Self {
        self.inner.kind = kind;
        self
    }

    /// Sets the server code of a refusal that carries none (the hello's).
    pub(crate) fn with_server_code(mut self, code: ServerCode) -> Self {
        self.inner.server_code = Some(code);
        self
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Error");
        d.field("kind", &self.inner.kind);
        if let Some(code) = &self.inner.server_code {
            d.field("server_code", code);
        }
        d.field("message", &self.inner.message);
        if let Some(source) = &self.inner.source {
            d.field("source", source);
        }
        d.finish()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.inner.kind {
            ErrorKind::Config => "configuration error",
            ErrorKind::InvalidInput => "invalid input",
            ErrorKind::Connect => "connection failed",
            ErrorKind::Handshake => "handshake failed",
            ErrorKind::Timeout => "timed out",
            ErrorKind::NotSent => "request not sent",
            ErrorKind::Disconnected => "connection lost",
            ErrorKind::OutcomeUnknown if self.inner.timed_out => {
                "timed out after the write was sent; outcome unknown"
            }
            ErrorKind::OutcomeUnknown => {
                "connection lost after the write was sent; outcome unknown"
            }
            ErrorKind::ReplyTooLarge => "the server could not send the reply",
            ErrorKind::Server => "server error",
            ErrorKind::Protocol => "protocol error",
            ErrorKind::Decode => "decode error",
            ErrorKind::Closed => "client closed",
            ErrorKind::InvalidCheckpoint => "invalid checkpoint",
        };
        match &self.inner.server_code {
            Some(code) => write!(f, "{what} ({code}): {}", self.inner.message),
            None => write!(f, "{what}: {}", self.inner.message),
        }
    }
}

/// The chain says each thing once: [`Display`](fmt::Display) gives the whole story of this
/// failure (its message names the cause, e.g. "cannot connect to host:6363: Connection refused"),
/// so [`source`](std::error::Error::source) returns the first cause whose text the message does
/// not already contain, or `None`. A chain printer (`anyhow`'s `{:#}`, `Report`) then prints
/// every cause once.
impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        let mut next = self
            .inner
            .source
            .as_deref()
            .map(|s| s as &(dyn std::error::Error + 'static));
        while let Some(cause) = next {
            // An edbx cause is told by its message (its Display adds its kind).
            let told = match cause.downcast_ref::<Error>() {
                Some(e) => self.inner.message.contains(e.message()),
                None => self.inner.message.contains(&cause.to_string()),
            };
            if !told {
                return Some(cause);
            }
            next = cause.source();
        }
        None
    }
}

impl Error {
    /// The error for a failure of the protocol crate. Not a `From` impl, so that `edbx-wire`'s
    /// types stay out of this crate's public API (and its version out of ours).
    pub(crate) fn from_wire(err: WireError) -> Self {
        let kind = match err {
            WireError::InvalidInput(_) | WireError::TooLarge { .. } | WireError::EmptyFrame => {
                ErrorKind::InvalidInput
            }
            _ => ErrorKind::Protocol,
        };
        Error::new(kind, err.to_string()).with_source(err)
    }
}

/// Shorthand for results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_codes_round_trip_and_keep_unknown_strings() {
        for code in [
            "invalid_token",
            "token_expired",
            "unauthorized",
            "aggregate_not_found",
            "aggregate_archived",
            "invalid_schema",
            "schema_violation",
            "invalid_cursor",
            "tenant_quota",
            "brand_new_code",
        ] {
            assert_eq!(ServerCode::parse(code).as_str(), code);
        }
        assert_eq!(
            ServerCode::parse("brand_new_code"),
            ServerCode::Other("brand_new_code".into())
        );
    }

    /// Display, then each source, as a chain printer (`anyhow`'s `{:#}`) shows them.
    fn chain(e: &Error) -> String {
        let mut text = e.to_string();
        let mut next = std::error::Error::source(e);
        while let Some(cause) = next {
            text.push_str(": ");
            text.push_str(&cause.to_string());
            next = cause.source();
        }
        text
    }

    #[test]
    fn a_chain_says_each_cause_once() {
        let refused = || std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        // The cause is in the message: not repeated by source().
        let connect =
            Error::new(ErrorKind::Connect, "cannot connect to h:1: refused").with_source(refused());
        assert_eq!(
            chain(&connect),
            "connection failed: cannot connect to h:1: refused"
        );
        assert_eq!(chain(&connect).matches("refused").count(), 1);
        // A shared cause whose message is repeated, and whose own source is in it too.
        let cause = Arc::new(
            Error::new(ErrorKind::Disconnected, "read failed: refused").with_source(refused()),
        );
        let pending = Error::new(
            ErrorKind::NotSent,
            "read failed: refused; the request was never written",
        )
        .with_shared_source(cause.clone());
        assert_eq!(
            chain(&pending),
            "request not sent: read failed: refused; the request was never written"
        );
        // A cause the message does not tell is the source, once.
        let too_large = Error::new(ErrorKind::ReplyTooLarge, "closed instead of answering")
            .with_shared_source(cause);
        assert_eq!(
            chain(&too_large),
            "the server could not send the reply: closed instead of answering: connection \
             lost: read failed: refused"
        );
        // From the wire crate: its text is the message.
        let wire = Error::from_wire(WireError::EmptyFrame);
        assert!(
            std::error::Error::source(&wire).is_none(),
            "{}",
            chain(&wire)
        );
    }

    #[test]
    fn helpers_follow_the_kind() {
        let e = Error::server("aggregate_not_found", "aggregate not found");
        assert!(e.is_not_found() && !e.is_retryable() && !e.is_timeout());
        assert_eq!(
            e.to_string(),
            "server error (aggregate_not_found): aggregate not found"
        );
        assert!(Error::new(ErrorKind::NotSent, "x").is_retryable());
        let unknown = Error::new(ErrorKind::OutcomeUnknown, "x");
        assert!(unknown.outcome_unknown() && !unknown.is_retryable() && !unknown.is_timeout());
        let late_write = Error::written_write_timed_out("late");
        assert_eq!(late_write.kind(), ErrorKind::OutcomeUnknown);
        assert!(late_write.is_timeout() && late_write.outcome_unknown() && late_write.was_sent());
        assert!(!late_write.is_retryable());
        let unsent = Error::new(ErrorKind::Timeout, "late");
        assert!(unsent.is_timeout() && unsent.is_retryable() && !unsent.was_sent());
        assert!(Error::server("invalid_token", "bad").is_auth());
        assert!(Error::server("unauthorized", "no").is_auth());
        assert!(!Error::server("aggregate_not_found", "no").is_auth());
        assert!(Error::invalid_input("x").is_invalid_input());
    }
}
