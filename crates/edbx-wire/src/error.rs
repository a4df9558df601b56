//! The protocol crate's error type.

/// Why bytes could not be encoded, decoded, framed or encrypted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WireError {
    /// The caller's input cannot be put on the wire (the message says which field and why).
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// A frame or message is larger than the protocol allows.
    #[error("{what} of {len} bytes exceeds the limit of {max} bytes")]
    TooLarge {
        /// What was too large (`"frame"`, `"request"`, `"hello"`, …).
        what: &'static str,
        /// Its size.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A zero-length frame, which the protocol never sends.
    #[error("zero-length frame")]
    EmptyFrame,
    /// The bytes are not a valid Cap'n Proto message of the expected type.
    #[error("malformed message: {0}")]
    Malformed(String),
    /// A union discriminant this crate does not know (a newer peer).
    #[error("unknown {what} variant {discriminant}")]
    UnknownVariant {
        /// `"request"` or `"response"`.
        what: &'static str,
        /// The raw discriminant.
        discriminant: u16,
    },
    /// The Noise handshake or transport failed (wrong key, tampered or reordered bytes).
    #[error("noise: {0}")]
    Noise(String),
}

impl From<capnp::Error> for WireError {
    fn from(err: capnp::Error) -> Self {
        WireError::Malformed(err.to_string())
    }
}

impl From<capnp::NotInSchema> for WireError {
    fn from(err: capnp::NotInSchema) -> Self {
        WireError::Malformed(format!("value not in schema: {}", err.0))
    }
}

impl From<snow::Error> for WireError {
    fn from(err: snow::Error) -> Self {
        WireError::Noise(err.to_string())
    }
}
