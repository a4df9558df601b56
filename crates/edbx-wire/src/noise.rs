//! Noise sessions over `snow`: the pattern the server speaks, and any other a caller picks.

use sha2::{Digest, Sha256};
use snow::{HandshakeState, TransportState};

use crate::WireError;
use crate::codec::MessageBuffer;
use crate::frame::{MAX_FRAME_LEN, MAX_NOISE_PLAINTEXT_LEN, NOISE_TAG_LEN};

/// The pattern EventDBX server 3.19.4 speaks on its control port.
pub const SERVER_NOISE_PATTERN: &str = "Noise_NNpsk0_25519_ChaChaPoly_SHA256";

/// The pre-shared key the server derives from a token: SHA-256 of the trimmed token bytes.
///
/// Trimming matters: a token read from a file with a trailing newline must key the same PSK.
pub fn noise_psk(token: &str) -> [u8; 32] {
    Sha256::digest(token.trim().as_bytes()).into()
}

enum State {
    Handshake(Box<HandshakeState>),
    Transport(Box<TransportState>),
    /// A Noise error is fatal: the peer's nonces can no longer be matched.
    Failed,
}

/// One side of a Noise session: the handshake, then transport encryption.
///
/// The session moves to transport mode by itself once the handshake is finished. Any error
/// leaves it failed for good, as the Noise spec requires.
///
/// Any pattern `snow` supports works, with keys generated as the pattern needs them:
///
/// ```
/// use edbx_wire::NoiseSession;
///
/// let pattern = "Noise_XX_25519_AESGCM_SHA256";
/// let mut initiator = NoiseSession::with_pattern(pattern, true, None).unwrap();
/// let mut responder = NoiseSession::with_pattern(pattern, false, None).unwrap();
///
/// let step1 = initiator.write_message(&[]).unwrap();
/// responder.read_message(&step1).unwrap();
/// ```
///
/// and talking to an EventDBX server uses [`NoiseSession::client_side`].
pub struct NoiseSession {
    state: State,
    pattern: String,
    handshake_hash: Option<Vec<u8>>,
    remote_static: Option<Vec<u8>>,
}

/// Keys and prologue of a Noise session, for [`NoiseSession::with_keys`]. Every field is
/// optional; the server's pattern needs only `psk` (and an empty prologue).
#[derive(Clone, Copy, Default)]
pub struct NoiseKeys<'a> {
    /// The pre-shared key, for patterns with a `psk` modifier.
    pub psk: Option<&'a [u8; 32]>,
    /// Bytes both sides mix into the handshake; they must agree (the server uses none).
    pub prologue: &'a [u8],
    /// This side's static private key (generated when the pattern needs one and none is given).
    pub local_private_key: Option<&'a [u8]>,
    /// The peer's static public key, for patterns that know it in advance (`K`, `IK`, …).
    pub remote_public_key: Option<&'a [u8]>,
}

impl std::fmt::Debug for NoiseKeys<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Key material is never printed.
        f.debug_struct("NoiseKeys")
            .field("psk", &self.psk.map(|_| "<redacted>"))
            .field("prologue_len", &self.prologue.len())
            .field(
                "local_private_key",
                &self.local_private_key.map(|_| "<redacted>"),
            )
            .field("remote_public_key", &self.remote_public_key)
            .finish()
    }
}

impl std::fmt::Debug for NoiseSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = match self.state {
            State::Handshake(_) => "handshake",
            State::Transport(_) => "transport",
            State::Failed => "failed",
        };
        // Keys never leave snow's state; there is nothing secret to print here.
        f.debug_struct("NoiseSession")
            .field("pattern", &self.pattern)
            .field("state", &state)
            .finish()
    }
}

impl NoiseSession {
    /// A session with any pattern `snow` supports. Patterns that need a local static key get a
    /// fresh one; patterns with a `psk` modifier need `psk`.
    pub fn with_pattern(
        pattern: &str,
        initiator: bool,
        psk: Option<&[u8; 32]>,
    ) -> Result<Self, WireError> {
        Self::with_keys(
            pattern,
            initiator,
            NoiseKeys {
                psk,
                ..NoiseKeys::default()
            },
        )
    }

    /// A session with any pattern `snow` supports and explicit keys and prologue (see
    /// [`NoiseKeys`]). A pattern that needs a local static key and gets none has one generated.
    ///
    /// ```
    /// use edbx_wire::{NoiseKeys, NoiseSession, SERVER_NOISE_PATTERN, noise_psk};
    ///
    /// let psk = noise_psk("token");
    /// let keys = NoiseKeys { psk: Some(&psk), prologue: b"demo", ..NoiseKeys::default() };
    /// let mut client = NoiseSession::with_keys(SERVER_NOISE_PATTERN, true, keys).unwrap();
    /// let mut server = NoiseSession::with_keys(SERVER_NOISE_PATTERN, false, keys).unwrap();
    /// server.read_message(&client.write_message(&[]).unwrap()).unwrap();
    /// client.read_message(&server.write_message(&[]).unwrap()).unwrap();
    /// assert!(client.is_handshake_finished());
    /// ```
    pub fn with_keys(
        pattern: &str,
        initiator: bool,
        keys: NoiseKeys<'_>,
    ) -> Result<Self, WireError> {
        let params = pattern
            .parse()
            .map_err(|e| WireError::InvalidInput(format!("noise pattern {pattern:?}: {e}")))?;
        let mut builder = snow::Builder::new(params).prologue(keys.prologue)?;
        let generated;
        match keys.local_private_key {
            Some(key) => builder = builder.local_private_key(key)?,
            None if needs_local_static(pattern, initiator) => {
                generated = builder.generate_keypair()?;
                builder = builder.local_private_key(&generated.private)?;
            }
            None => {}
        }
        if let Some(remote) = keys.remote_public_key {
            builder = builder.remote_public_key(remote)?;
        }
        if let Some(psk) = keys.psk {
            let position = psk_position(pattern).ok_or_else(|| {
                WireError::InvalidInput(format!("noise pattern {pattern:?} takes no psk"))
            })?;
            builder = builder.psk(position, psk)?;
        }
        let state = if initiator {
            builder.build_initiator()?
        } else {
            builder.build_responder()?
        };
        Ok(Self {
            state: State::Handshake(Box::new(state)),
            pattern: pattern.to_owned(),
            handshake_hash: None,
            remote_static: None,
        })
    }

    /// The client's side of the handshake with an EventDBX server — the client initiates:
    /// [`SERVER_NOISE_PATTERN`], empty prologue, PSK from [`noise_psk`].
    pub fn client_side(token: &str) -> Result<Self, WireError> {
        Self::with_pattern(SERVER_NOISE_PATTERN, true, Some(&noise_psk(token)))
    }

    /// The server side of the same handshake (for fake servers in tests and tools).
    pub fn server_side(token: &str) -> Result<Self, WireError> {
        Self::with_pattern(SERVER_NOISE_PATTERN, false, Some(&noise_psk(token)))
    }

    /// The Noise protocol name this session runs.
    pub fn pattern(&self) -> &str {
        &self.pattern
    }

    /// Whether the handshake is done and [`encrypt`](Self::encrypt)/[`decrypt`](Self::decrypt)
    /// may be used.
    pub fn is_handshake_finished(&self) -> bool {
        matches!(self.state, State::Transport(_))
    }

    /// The handshake hash (channel binding), available once the handshake is finished.
    pub fn handshake_hash(&self) -> Option<&[u8]> {
        self.handshake_hash.as_deref()
    }

    /// The peer's static public key, once the handshake revealed it (patterns with a remote
    /// static key only; `None` for the server's `NNpsk0`).
    pub fn remote_static(&self) -> Option<&[u8]> {
        self.remote_static.as_deref()
    }

    /// Writes the next handshake message carrying `payload` (empty for the server's pattern).
    pub fn write_message(&mut self, payload: &[u8]) -> Result<Vec<u8>, WireError> {
        let mut out = vec![0u8; MAX_FRAME_LEN];
        let len = self.handshake_step(|hs| hs.write_message(payload, &mut out))?;
        out.truncate(len);
        Ok(out)
    }

    /// Reads the peer's next handshake message and returns its payload.
    pub fn read_message(&mut self, message: &[u8]) -> Result<Vec<u8>, WireError> {
        let mut payload = vec![0u8; MAX_FRAME_LEN];
        let len = self.handshake_step(|hs| hs.read_message(message, &mut payload))?;
        payload.truncate(len);
        Ok(payload)
    }

    fn handshake_step(
        &mut self,
        step: impl FnOnce(&mut HandshakeState) -> Result<usize, snow::Error>,
    ) -> Result<usize, WireError> {
        let State::Handshake(hs) = &mut self.state else {
            return Err(self.wrong_state("handshake"));
        };
        let len = match step(hs) {
            Ok(len) => len,
            Err(e) => {
                self.state = State::Failed;
                return Err(e.into());
            }
        };
        if hs.is_handshake_finished() {
            let State::Handshake(hs) = std::mem::replace(&mut self.state, State::Failed) else {
                unreachable!("state checked above");
            };
            self.handshake_hash = Some(hs.get_handshake_hash().to_vec());
            self.remote_static = hs.get_remote_static().map(<[u8]>::to_vec);
            self.state = State::Transport(Box::new(hs.into_transport_mode()?));
        }
        Ok(len)
    }

    /// Encrypts one transport message (at most [`MAX_NOISE_PLAINTEXT_LEN`] bytes).
    pub fn encrypt(&mut self, plaintext: &[u8]) -> Result<Vec<u8>, WireError> {
        let mut out = Vec::with_capacity(plaintext.len() + NOISE_TAG_LEN);
        self.encrypt_append(plaintext, &mut out)?;
        Ok(out)
    }

    /// Encrypts `plaintext` and returns it as a whole frame (length header + ciphertext), ready
    /// for a single write.
    pub fn encrypt_frame(&mut self, plaintext: &[u8]) -> Result<Vec<u8>, WireError> {
        let mut out = Vec::with_capacity(4 + plaintext.len() + NOISE_TAG_LEN);
        self.encrypt_frame_into(plaintext, &mut out)?;
        Ok(out)
    }

    /// Appends the frame of the encrypted `plaintext` to `out` (see
    /// [`encrypt_frame`](Self::encrypt_frame)); on error `out` is left as it was.
    pub fn encrypt_frame_into(
        &mut self,
        plaintext: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), WireError> {
        let header_at = out.len();
        out.extend_from_slice(&[0; 4]);
        match self.encrypt_append(plaintext, out) {
            Ok(len) => {
                // encrypt_append bounds len by MAX_FRAME_LEN, so it fits the u32 header.
                out[header_at..header_at + 4].copy_from_slice(&(len as u32).to_be_bytes());
                Ok(())
            }
            Err(e) => {
                out.truncate(header_at);
                Err(e)
            }
        }
    }

    fn encrypt_append(&mut self, plaintext: &[u8], out: &mut Vec<u8>) -> Result<usize, WireError> {
        if plaintext.len() > MAX_NOISE_PLAINTEXT_LEN {
            return Err(WireError::TooLarge {
                what: "message",
                len: plaintext.len(),
                max: MAX_NOISE_PLAINTEXT_LEN,
            });
        }
        let State::Transport(ts) = &mut self.state else {
            return Err(self.wrong_state("transport"));
        };
        let start = out.len();
        out.resize(start + plaintext.len() + NOISE_TAG_LEN, 0);
        match ts.write_message(plaintext, &mut out[start..]) {
            Ok(len) => {
                out.truncate(start + len);
                Ok(len)
            }
            Err(e) => {
                self.state = State::Failed;
                Err(e.into())
            }
        }
    }

    /// Decrypts one transport message, in the order the peer sent them.
    pub fn decrypt(&mut self, ciphertext: &[u8]) -> Result<Vec<u8>, WireError> {
        let State::Transport(ts) = &mut self.state else {
            return Err(self.wrong_state("transport"));
        };
        if let Err(e) = check_ciphertext(ciphertext) {
            self.state = State::Failed;
            return Err(e);
        }
        let mut out = vec![0u8; ciphertext.len() - NOISE_TAG_LEN];
        match ts.read_message(ciphertext, &mut out) {
            Ok(len) => {
                out.truncate(len);
                Ok(out)
            }
            Err(e) => {
                self.state = State::Failed;
                Err(e.into())
            }
        }
    }

    /// Decrypts one transport message into `out` (see [`decrypt`](Self::decrypt)), reusing
    /// its memory: a connection's receive path allocates nothing per message.
    pub fn decrypt_into(
        &mut self,
        ciphertext: &[u8],
        out: &mut MessageBuffer,
    ) -> Result<(), WireError> {
        let State::Transport(ts) = &mut self.state else {
            return Err(self.wrong_state("transport"));
        };
        if let Err(e) = check_ciphertext(ciphertext) {
            self.state = State::Failed;
            return Err(e);
        }
        match ts.read_message(ciphertext, out.space(ciphertext.len() - NOISE_TAG_LEN)) {
            Ok(len) => {
                out.truncate(len);
                Ok(())
            }
            Err(e) => {
                self.state = State::Failed;
                out.truncate(0);
                Err(e.into())
            }
        }
    }

    fn wrong_state(&self, wanted: &str) -> WireError {
        let now = match self.state {
            State::Handshake(_) => "still in its handshake",
            State::Transport(_) => "past its handshake",
            State::Failed => "failed",
        };
        WireError::Noise(format!("{wanted} step on a session that is {now}"))
    }
}

/// Whether this side of `pattern` sends a static key of its own: the first letter of the
/// handshake name is the initiator's static, the second the responder's (`N` = none).
fn needs_local_static(pattern: &str, initiator: bool) -> bool {
    let handshake = pattern.split('_').nth(1).unwrap_or("");
    let letters: Vec<char> = handshake
        .chars()
        .take_while(|c| c.is_ascii_uppercase())
        .collect();
    // One-way patterns (N, K, X) only name the responder's static key.
    let own = match (letters.len(), initiator) {
        (1, true) => Some('N'),
        (1, false) => letters.first().copied(),
        (_, true) => letters.first().copied(),
        (_, false) => letters.get(1).copied(),
    };
    matches!(own, Some('K' | 'X' | 'I'))
}

/// The position of the first `pskN` modifier in `pattern`.
fn psk_position(pattern: &str) -> Option<u8> {
    let handshake = pattern.split('_').nth(1)?;
    let at = handshake.find("psk")?;
    handshake[at + 3..]
        .chars()
        .take_while(|c| c.is_ascii_digit())
        .collect::<String>()
        .parse()
        .ok()
}

/// A transport message holds at least its tag and fits a frame.
#[inline]
fn check_ciphertext(ciphertext: &[u8]) -> Result<(), WireError> {
    if ciphertext.len() < NOISE_TAG_LEN || ciphertext.len() > MAX_FRAME_LEN {
        return Err(WireError::Noise(format!(
            "ciphertext of {} bytes is outside {NOISE_TAG_LEN}..={MAX_FRAME_LEN}",
            ciphertext.len()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn handshake(a: &mut NoiseSession, b: &mut NoiseSession) {
        while !(a.is_handshake_finished() && b.is_handshake_finished()) {
            let msg = a.write_message(&[]).unwrap();
            b.read_message(&msg).unwrap();
            if b.is_handshake_finished() && a.is_handshake_finished() {
                break;
            }
            let msg = b.write_message(&[]).unwrap();
            a.read_message(&msg).unwrap();
        }
    }

    #[test]
    fn server_pattern_handshake_uses_two_48_byte_messages() {
        let mut client = NoiseSession::client_side("token").unwrap();
        let mut server = NoiseSession::server_side(" token\n").unwrap();
        let m1 = client.write_message(&[]).unwrap();
        assert_eq!(m1.len(), 48);
        server.read_message(&m1).unwrap();
        let m2 = server.write_message(&[]).unwrap();
        assert_eq!(m2.len(), 48);
        client.read_message(&m2).unwrap();
        assert!(client.is_handshake_finished() && server.is_handshake_finished());
        assert_eq!(client.handshake_hash(), server.handshake_hash());

        let ct = client.encrypt(b"hello").unwrap();
        assert_eq!(ct.len(), 5 + NOISE_TAG_LEN);
        assert_eq!(server.decrypt(&ct).unwrap(), b"hello");
        let frame = server.encrypt_frame(b"back").unwrap();
        assert_eq!(&frame[..4], &(4 + NOISE_TAG_LEN as u32).to_be_bytes());
        assert_eq!(client.decrypt(&frame[4..]).unwrap(), b"back");
    }

    #[test]
    fn decrypting_into_a_reused_buffer_reads_each_message_whole() {
        let mut client = NoiseSession::client_side("t").unwrap();
        let mut server = NoiseSession::server_side("t").unwrap();
        handshake(&mut client, &mut server);
        let mut buffer = MessageBuffer::new();
        // Longer, then shorter, then empty: nothing of an earlier message shows through.
        for message in [&b"a longer first message"[..], b"short", b""] {
            let ct = server.encrypt(message).unwrap();
            client.decrypt_into(&ct, &mut buffer).unwrap();
            assert_eq!(buffer.as_bytes(), message);
        }
        let mut tampered = server.encrypt(b"x").unwrap();
        tampered[0] ^= 1;
        assert!(client.decrypt_into(&tampered, &mut buffer).is_err());
        assert_eq!(
            buffer.as_bytes(),
            b"",
            "a failed decryption leaves nothing to read"
        );
        let next = server.encrypt(b"y").unwrap();
        assert!(
            client.decrypt_into(&next, &mut buffer).is_err(),
            "the session is poisoned after a failure"
        );
        assert!(matches!(
            NoiseSession::client_side("t")
                .unwrap()
                .decrypt_into(&[0; 4], &mut buffer),
            Err(WireError::Noise(_))
        ));
    }

    #[test]
    fn wrong_psk_fails_the_handshake_and_poisons_the_session() {
        let mut client = NoiseSession::client_side("token-a").unwrap();
        let mut server = NoiseSession::server_side("token-b").unwrap();
        let m1 = client.write_message(&[]).unwrap();
        assert!(matches!(server.read_message(&m1), Err(WireError::Noise(_))));
        assert!(server.write_message(&[]).is_err());
    }

    #[test]
    fn an_xx_session_with_generated_keys_completes() {
        let pattern = "Noise_XX_25519_AESGCM_SHA256";
        let mut initiator = NoiseSession::with_pattern(pattern, true, None).unwrap();
        let mut responder = NoiseSession::with_pattern(pattern, false, None).unwrap();
        assert_eq!(initiator.pattern(), pattern);
        handshake(&mut initiator, &mut responder);
        let ct = responder.encrypt(b"x").unwrap();
        assert_eq!(initiator.decrypt(&ct).unwrap(), b"x");
    }

    #[test]
    fn tampered_or_reordered_ciphertext_is_rejected() {
        let mut client = NoiseSession::client_side("t").unwrap();
        let mut server = NoiseSession::server_side("t").unwrap();
        handshake(&mut client, &mut server);
        let first = client.encrypt(b"one").unwrap();
        let second = client.encrypt(b"two").unwrap();
        assert!(server.decrypt(&second).is_err());
        // The session is now failed; even the right message is refused.
        assert!(server.decrypt(&first).is_err());
    }

    #[test]
    fn oversized_plaintext_is_refused_before_encryption() {
        let mut client = NoiseSession::client_side("t").unwrap();
        let mut server = NoiseSession::server_side("t").unwrap();
        handshake(&mut client, &mut server);
        let big = vec![0u8; MAX_NOISE_PLAINTEXT_LEN + 1];
        assert!(matches!(
            client.encrypt(&big),
            Err(WireError::TooLarge { .. })
        ));
        let max = vec![7u8; MAX_NOISE_PLAINTEXT_LEN];
        let ct = client.encrypt(&max).unwrap();
        assert_eq!(ct.len(), MAX_FRAME_LEN);
        assert_eq!(server.decrypt(&ct).unwrap(), max);
    }

    #[test]
    fn psk_is_sha256_of_the_trimmed_token() {
        assert_eq!(noise_psk("abc"), noise_psk("  abc\n"));
        let hex: String = noise_psk("abc")
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(
            hex,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
