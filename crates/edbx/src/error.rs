//! One error type for every failure, with a kind that says what happened and how to react.

use std::fmt;

use edbx_wire::WireError;

/// What went wrong, in terms a caller can act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The configuration is unusable (bad URL, missing token, zero pool size, …).
    Config,
    /// The caller's input would be rejected by the server; nothing was sent.
    InvalidInput,
    /// The TCP connection could not be opened.
    Connect,
    /// The server refused the hello (bad token, tenant, version) or the Noise handshake failed,
    /// or it offered a security level the client did not ask for.
    Handshake,
    /// The call's deadline passed. For a mutation that was already written, the outcome is
    /// unknown; see [`Error::outcome_unknown`].
    Timeout,
    /// The request was never written to the server: safe to send again.
    NotSent,
    /// The connection ended before a read-only request was answered: safe to send again.
    Disconnected,
    /// The connection ended after a mutation was written and before its reply: the server may or
    /// may not have applied it. Read back before retrying.
    OutcomeUnknown,
    /// The server answered with an error ([`Error::server_code`] says which).
    Server,
    /// The peer sent bytes that break the protocol (the connection is closed).
    Protocol,
    /// The server's JSON did not have the expected shape.
    Decode,
    /// The client was closed.
    Closed,
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

/// An error from the client. Cheap to move (one box); ask it questions rather than matching
/// strings.
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
pub struct Error {
    inner: Box<Inner>,
}

struct Inner {
    kind: ErrorKind,
    message: String,
    server_code: Option<ServerCode>,
    /// Set on a timeout after a mutation was written.
    outcome_unknown: bool,
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl Error {
    pub(crate) fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            inner: Box::new(Inner {
                kind,
                message: message.into(),
                server_code: None,
                outcome_unknown: kind == ErrorKind::OutcomeUnknown,
                source: None,
            }),
        }
    }

    pub(crate) fn with_source(
        mut self,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        self.inner.source = Some(Box::new(source));
        self
    }

    pub(crate) fn server(code: &str, message: &str) -> Self {
        let mut err = Self::new(ErrorKind::Server, message);
        err.inner.server_code = Some(ServerCode::parse(code));
        err
    }

    pub(crate) fn invalid_input(message: impl Into<String>) -> Self {
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

    /// The server's error code, for [`ErrorKind::Server`] errors.
    pub fn server_code(&self) -> Option<&ServerCode> {
        self.inner.server_code.as_ref()
    }

    /// Whether the call's deadline passed.
    pub fn is_timeout(&self) -> bool {
        self.inner.kind == ErrorKind::Timeout
    }

    /// Whether the connection was lost or could not be opened.
    pub fn is_disconnected(&self) -> bool {
        matches!(
            self.inner.kind,
            ErrorKind::Disconnected | ErrorKind::OutcomeUnknown | ErrorKind::Connect
        )
    }

    /// Whether a mutation may or may not have been applied: its connection died or its deadline
    /// passed after it was written. Never retry such a write blindly; read back first.
    pub fn outcome_unknown(&self) -> bool {
        self.inner.outcome_unknown
    }

    pub(crate) fn mark_outcome_unknown(mut self) -> Self {
        self.inner.outcome_unknown = true;
        self
    }

    /// Whether sending the same request again is safe and may succeed: it was never sent, the
    /// connection could not be opened, or it was a read whose connection dropped.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self.inner.kind,
            ErrorKind::NotSent | ErrorKind::Connect | ErrorKind::Disconnected
        )
    }

    /// Whether the server answered "not found" for this aggregate.
    pub fn is_not_found(&self) -> bool {
        self.inner.server_code == Some(ServerCode::AggregateNotFound)
    }

    /// A copy with another kind (used when the same failure means different things for reads
    /// and writes).
    pub(crate) fn with_kind(mut self, kind: ErrorKind) -> Self {
        self.inner.kind = kind;
        self.inner.outcome_unknown = kind == ErrorKind::OutcomeUnknown;
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
            ErrorKind::OutcomeUnknown => {
                "connection lost after the write was sent; outcome unknown"
            }
            ErrorKind::Server => "server error",
            ErrorKind::Protocol => "protocol error",
            ErrorKind::Decode => "decode error",
            ErrorKind::Closed => "client closed",
        };
        match &self.inner.server_code {
            Some(code) => write!(f, "{what} ({code}): {}", self.inner.message),
            None => write!(f, "{what}: {}", self.inner.message),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.inner
            .source
            .as_deref()
            .map(|s| s as &(dyn std::error::Error + 'static))
    }
}

impl From<WireError> for Error {
    fn from(err: WireError) -> Self {
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
        assert!(unknown.outcome_unknown() && !unknown.is_retryable());
    }
}
