//! The connection-opening exchange: `ControlHello` from the client, `ControlHelloResponse` from
//! the server.
//!
//! Both are bare Cap'n Proto stream messages: segment table, then segments, with no length
//! prefix in front (unlike every later message, which travels in a frame).
//! [`stream_message_len`] tells a reader when one has fully arrived.

use std::fmt;

use capnp::message::Builder;

use crate::WireError;
use crate::codec::{check_text, read_message, text};
use crate::generated::control_capnp::{control_hello, control_hello_response};

/// The only control protocol version server 3.19.4 accepts.
pub const PROTOCOL_VERSION: u16 = 1;

/// Cap'n Proto's limit on the number of segments in one message (capnp rejects 512 and more).
const MAX_SEGMENTS: usize = 511;

/// The first message of a connection, client to server.
///
/// The token is kept trimmed of surrounding whitespace, because the server trims it too and keys
/// the Noise handshake from the trimmed bytes. `Debug` output never shows the token.
#[derive(Clone, PartialEq, Eq)]
pub struct ControlHello {
    protocol_version: u16,
    token: String,
    tenant_id: String,
    no_noise: bool,
}

/// Builds a [`ControlHello`] for an explicit protocol version and a named tenant.
///
/// The token and tenant are trimmed. Use [`ControlHello::new`] to leave the tenant empty (the
/// server's default domain).
///
/// # Errors
///
/// [`WireError::InvalidInput`] when `protocol_version` is 0, or the token or tenant is empty
/// after trimming.
pub fn build_control_hello(
    protocol_version: u16,
    token: &str,
    tenant_id: &str,
) -> Result<ControlHello, WireError> {
    if protocol_version == 0 {
        return Err(WireError::InvalidInput(
            "protocol version must be greater than 0".to_owned(),
        ));
    }
    if tenant_id.trim().is_empty() {
        return Err(WireError::InvalidInput(
            "tenant id must not be empty or whitespace".to_owned(),
        ));
    }
    ControlHello::with_version(protocol_version, token, tenant_id)
}

impl ControlHello {
    /// A hello for [`PROTOCOL_VERSION`], asking for a Noise session.
    ///
    /// `tenant_id` is trimmed and may be empty: the server then uses its configured default
    /// domain (and rejects the hello if it runs in multi-tenant mode).
    ///
    /// # Errors
    ///
    /// [`WireError::InvalidInput`] when the token is empty after trimming.
    pub fn new(token: &str, tenant_id: &str) -> Result<Self, WireError> {
        Self::with_version(PROTOCOL_VERSION, token, tenant_id)
    }

    fn with_version(
        protocol_version: u16,
        token: &str,
        tenant_id: &str,
    ) -> Result<Self, WireError> {
        let token = check_text("token", token.trim())?;
        if token.is_empty() {
            return Err(WireError::InvalidInput(
                "token must not be empty or whitespace".to_owned(),
            ));
        }
        let tenant_id = check_text("tenantId", tenant_id.trim())?;
        Ok(Self {
            protocol_version,
            token: token.to_owned(),
            tenant_id: tenant_id.to_owned(),
            no_noise: false,
        })
    }

    /// Asks for a plaintext session (`true`) or a Noise session (`false`, the default).
    ///
    /// Plaintext is only used if the server also allows it; the client must follow
    /// [`HelloResponse::no_noise`], not this request.
    #[must_use]
    pub fn with_no_noise(mut self, no_noise: bool) -> Self {
        self.no_noise = no_noise;
        self
    }

    /// The protocol version sent.
    pub fn protocol_version(&self) -> u16 {
        self.protocol_version
    }

    /// The session token (trimmed when built here; as received when [parsed](Self::parse)).
    pub fn token(&self) -> &str {
        &self.token
    }

    /// The requested tenant; empty selects the server's default.
    pub fn tenant_id(&self) -> &str {
        &self.tenant_id
    }

    /// Whether a plaintext session is requested.
    pub fn no_noise(&self) -> bool {
        self.no_noise
    }

    /// Serializes the hello as a bare (unframed) Cap'n Proto stream message.
    ///
    /// The token pointer is always set, even for an empty token: a hello with a null token
    /// pointer would be taken by the server for a CLI-proxy request. The token is written
    /// trimmed.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut message = Builder::new_default();
        let mut root = message.init_root::<control_hello::Builder<'_>>();
        root.set_protocol_version(self.protocol_version);
        root.set_token(capnp_text(self.token.trim()));
        root.set_tenant_id(capnp_text(&self.tenant_id));
        root.set_no_noise(self.no_noise);
        crate::codec::write_message(&message)
    }

    /// Parses a hello as a server receives it (for fake servers and tests).
    ///
    /// Nothing is validated beyond the encoding, and text is kept as received (not trimmed), so
    /// a test can see exactly what a client sent. A null token pointer reads as `""`.
    ///
    /// # Errors
    ///
    /// [`WireError::Malformed`] unless `bytes` is exactly one valid message with UTF-8 text.
    pub fn parse(bytes: &[u8]) -> Result<Self, WireError> {
        let message = read_message(bytes)?;
        let root = message.get_root::<control_hello::Reader<'_>>()?;
        Ok(Self {
            protocol_version: root.get_protocol_version(),
            token: text("token", root.get_token())?,
            tenant_id: text("tenantId", root.get_tenant_id())?,
            no_noise: root.get_no_noise(),
        })
    }
}

impl fmt::Debug for ControlHello {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ControlHello")
            .field("protocol_version", &self.protocol_version)
            .field("token", &"<redacted>")
            .field("tenant_id", &self.tenant_id)
            .field("no_noise", &self.no_noise)
            .finish()
    }
}

/// The server's answer to a [`ControlHello`] (`ControlHelloResponse` in the schema).
///
/// When `accepted` is false the server closes the connection after sending it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct HelloResponse {
    /// Whether the session was opened.
    pub accepted: bool,
    /// `"ok"`, or why the hello was rejected (e.g. `invalid control token`).
    pub message: String,
    /// The session is plaintext; otherwise a Noise handshake follows. Clients must follow this
    /// value, whatever they asked for.
    pub no_noise: bool,
}

impl HelloResponse {
    /// A reply as a server (or a test's fake one) sends it.
    pub fn new(accepted: bool, message: impl Into<String>, no_noise: bool) -> Self {
        Self {
            accepted,
            message: message.into(),
            no_noise,
        }
    }

    /// Parses the server's reply from the bare stream message bytes.
    ///
    /// # Errors
    ///
    /// [`WireError::Malformed`] unless `bytes` is exactly one valid message with UTF-8 text.
    pub fn parse(bytes: &[u8]) -> Result<Self, WireError> {
        let message = read_message(bytes)?;
        let root = message.get_root::<control_hello_response::Reader<'_>>()?;
        Ok(Self {
            accepted: root.get_accepted(),
            message: text("message", root.get_message())?,
            no_noise: root.get_no_noise(),
        })
    }

    /// Serializes the reply as a bare (unframed) stream message, as a server sends it.
    ///
    /// A message beyond Cap'n Proto's text limit (512 MiB) is cut short rather than panicking.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut message = Builder::new_default();
        let mut root = message.init_root::<control_hello_response::Builder<'_>>();
        root.set_accepted(self.accepted);
        root.set_message(capnp_text(&self.message));
        root.set_no_noise(self.no_noise);
        crate::codec::write_message(&message)
    }
}

/// `value`, shortened at a character boundary if Cap'n Proto could not encode it whole.
fn capnp_text(value: &str) -> &str {
    let mut end = crate::codec::MAX_TEXT_LEN;
    if value.len() <= end {
        return value;
    }
    while !value.is_char_boundary(end) {
        end -= 1;
    }
    &value[..end]
}

/// Sans-IO helper for reading a bare Cap'n Proto stream message (the hello and its reply):
/// how long is the message that starts at `buf[0]`?
///
/// * `Ok(None)`: more bytes are needed before the length is known (the segment table is
///   incomplete);
/// * `Ok(Some(len))`: the whole message is `len` bytes, segment table included; `buf` may hold
///   fewer (keep reading) or more (the rest belongs to what follows);
/// * `Err(TooLarge)`: the message would exceed `max_len` bytes, or announces 512 or more
///   segments (capnp's own limit). This is reported as early as possible, from the first
///   segment sizes already received.
///
/// Only reads `buf`; never allocates, panics or overflows, whatever the bytes.
///
/// # Errors
///
/// [`WireError::TooLarge`] as described above.
pub fn stream_message_len(buf: &[u8], max_len: usize) -> Result<Option<usize>, WireError> {
    let Some(first) = read_u32_le(buf, 0) else {
        return Ok(None);
    };
    // The first word holds the segment count minus one; u32::MAX would wrap to 0 segments.
    let segments = usize::try_from(first)
        .ok()
        .and_then(|n| n.checked_add(1))
        .filter(|&n| n <= MAX_SEGMENTS)
        .ok_or(WireError::TooLarge {
            what: "segment count",
            len: usize::try_from(first).map_or(usize::MAX, |n| n.saturating_add(1)),
            max: MAX_SEGMENTS,
        })?;
    // Table: one u32 count plus one u32 per segment, padded to a whole word.
    // With segments <= 511 this is at most 2,048 bytes: no overflow.
    let table_len = (segments / 2 + 1) * 8;
    let too_large = |len: usize| WireError::TooLarge {
        what: "message",
        len,
        max: max_len,
    };
    if table_len > max_len {
        return Err(too_large(table_len));
    }
    let mut total = table_len;
    for index in 0..segments {
        let Some(words) = read_u32_le(buf, 4 + 4 * index) else {
            return Ok(None);
        };
        let bytes = usize::try_from(words)
            .ok()
            .and_then(|w| w.checked_mul(8))
            .ok_or_else(|| too_large(usize::MAX))?;
        total = total
            .checked_add(bytes)
            .ok_or_else(|| too_large(usize::MAX))?;
        if total > max_len {
            return Err(too_large(total));
        }
    }
    if buf.len() < table_len {
        // The padding word of the table has not arrived yet.
        return Ok(None);
    }
    Ok(Some(total))
}

/// The little-endian u32 at `offset`, if `buf` holds it.
fn read_u32_le(buf: &[u8], offset: usize) -> Option<u32> {
    let end = offset.checked_add(4)?;
    let bytes: [u8; 4] = buf.get(offset..end)?.try_into().ok()?;
    Some(u32::from_le_bytes(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_redacts_token() {
        let hello = ControlHello::new("secret-token", "t1").unwrap();
        let debug = format!("{hello:?}");
        assert!(!debug.contains("secret-token"), "{debug}");
        assert!(debug.contains("<redacted>"), "{debug}");
        assert!(debug.contains("t1"), "{debug}");
    }

    #[test]
    fn capnp_text_keeps_normal_text() {
        assert_eq!(capnp_text("héllo"), "héllo");
    }

    #[test]
    fn stream_len_rejects_wrapping_segment_count() {
        let err = stream_message_len(&[0xff; 8], usize::MAX).unwrap_err();
        assert!(
            matches!(
                err,
                WireError::TooLarge {
                    what: "segment count",
                    ..
                }
            ),
            "{err:?}"
        );
    }
}
