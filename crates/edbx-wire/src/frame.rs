//! Session frames: a 4-byte big-endian length, then that many bytes of body.

use crate::WireError;

/// Largest frame body the server accepts or sends (bytes).
pub const MAX_FRAME_LEN: usize = 65_535;
/// Bytes the Noise AEAD tag adds to every encrypted message.
pub const NOISE_TAG_LEN: usize = 16;
/// Largest message that still fits a frame once encrypted under Noise.
pub const MAX_NOISE_PLAINTEXT_LEN: usize = MAX_FRAME_LEN - NOISE_TAG_LEN;

const HEADER_LEN: usize = 4;

/// Frames `body`: returns the 4-byte length header followed by the body, in one buffer so the
/// whole frame can go out in a single write.
///
/// ```
/// let frame = edbx_wire::encode_frame(b"hi").unwrap();
/// assert_eq!(frame, [0, 0, 0, 2, b'h', b'i']);
/// ```
pub fn encode_frame(body: &[u8]) -> Result<Vec<u8>, WireError> {
    let mut out = Vec::with_capacity(HEADER_LEN + body.len());
    encode_frame_into(body, &mut out)?;
    Ok(out)
}

/// Appends the frame of `body` to `out` (see [`encode_frame`]).
pub fn encode_frame_into(body: &[u8], out: &mut Vec<u8>) -> Result<(), WireError> {
    check_len(body.len(), MAX_FRAME_LEN)?;
    // check_len bounds the length by MAX_FRAME_LEN, so the cast is lossless.
    out.extend_from_slice(&(body.len() as u32).to_be_bytes());
    out.extend_from_slice(body);
    Ok(())
}

fn check_len(len: usize, max: usize) -> Result<(), WireError> {
    match len {
        0 => Err(WireError::EmptyFrame),
        len if len > max => Err(WireError::TooLarge {
            what: "frame",
            len,
            max,
        }),
        _ => Ok(()),
    }
}

/// Splits a byte stream into frame bodies, whatever the sizes of the reads that deliver it.
///
/// The decoder holds at most the bytes it was given; it never reserves memory from a length
/// header, and a header above the limit or of zero is an error before any body byte is read.
/// After an error the stream cannot be resynchronised: close the connection.
///
/// ```
/// use edbx_wire::{FrameDecoder, encode_frame};
///
/// let wire = [encode_frame(b"one").unwrap(), encode_frame(b"two").unwrap()].concat();
/// let mut decoder = FrameDecoder::new();
/// for byte in wire {
///     decoder.extend(&[byte]); // one byte at a time is fine
/// }
/// assert_eq!(decoder.next_frame().unwrap().as_deref(), Some(&b"one"[..]));
/// assert_eq!(decoder.next_frame().unwrap().as_deref(), Some(&b"two"[..]));
/// assert_eq!(decoder.next_frame().unwrap(), None);
/// ```
#[derive(Debug, Clone)]
pub struct FrameDecoder {
    buf: Vec<u8>,
    /// Start of the unread bytes in `buf`; consumed bytes are dropped lazily.
    start: usize,
    max_len: usize,
}

impl Default for FrameDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl FrameDecoder {
    /// A decoder that accepts bodies up to [`MAX_FRAME_LEN`].
    pub fn new() -> Self {
        Self::with_max_len(MAX_FRAME_LEN)
    }

    /// A decoder with a custom body limit (capped at `u32::MAX`).
    pub fn with_max_len(max_len: usize) -> Self {
        Self {
            buf: Vec::new(),
            start: 0,
            max_len,
        }
    }

    /// Adds bytes read from the peer.
    pub fn extend(&mut self, bytes: &[u8]) {
        self.compact();
        self.buf.extend_from_slice(bytes);
    }

    /// Bytes received but not yet returned as frames.
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.start
    }

    /// The next complete frame body, `Ok(None)` when more bytes are needed.
    pub fn next_frame(&mut self) -> Result<Option<Vec<u8>>, WireError> {
        let Some(len) = self.complete_frame_len()? else {
            return Ok(None);
        };
        let body_at = self.start + HEADER_LEN;
        let body = self.buf[body_at..body_at + len].to_vec();
        self.start = body_at + len;
        self.compact();
        Ok(Some(body))
    }

    /// The next complete frame body, borrowed from the decoder's buffer (see
    /// [`next_frame`](Self::next_frame)): no copy, no allocation. The bytes before it are
    /// dropped on the next call.
    ///
    /// ```
    /// use edbx_wire::{FrameDecoder, encode_frame};
    ///
    /// let mut decoder = FrameDecoder::new();
    /// decoder.extend(&encode_frame(b"one").unwrap());
    /// assert_eq!(decoder.next_frame_ref().unwrap(), Some(&b"one"[..]));
    /// assert_eq!(decoder.next_frame_ref().unwrap(), None);
    /// ```
    pub fn next_frame_ref(&mut self) -> Result<Option<&[u8]>, WireError> {
        self.compact();
        let Some(len) = self.complete_frame_len()? else {
            return Ok(None);
        };
        let body_at = self.start + HEADER_LEN;
        self.start = body_at + len;
        Ok(Some(&self.buf[body_at..self.start]))
    }

    /// The body length of the frame at the front, if all of it is here.
    fn complete_frame_len(&self) -> Result<Option<usize>, WireError> {
        let pending = &self.buf[self.start..];
        let Some(header) = pending.first_chunk::<HEADER_LEN>() else {
            return Ok(None);
        };
        let len = u32::from_be_bytes(*header) as usize;
        check_len(len, self.max_len)?;
        Ok((pending.len() >= HEADER_LEN + len).then_some(len))
    }

    /// Drops consumed bytes once they dominate, so the buffer stays near one frame.
    fn compact(&mut self) {
        if self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        } else if self.start > self.buf.len() / 2 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn rejects_empty_and_oversized_bodies() {
        assert_eq!(encode_frame(b""), Err(WireError::EmptyFrame));
        let big = vec![0u8; MAX_FRAME_LEN + 1];
        assert!(matches!(
            encode_frame(&big),
            Err(WireError::TooLarge { len, .. }) if len == MAX_FRAME_LEN + 1
        ));
        assert_eq!(
            encode_frame(&big[..MAX_FRAME_LEN]).unwrap().len(),
            MAX_FRAME_LEN + 4
        );
    }

    #[test]
    fn oversized_header_fails_before_the_body_arrives() {
        let mut decoder = FrameDecoder::new();
        decoder.extend(&70_000u32.to_be_bytes());
        assert!(matches!(
            decoder.next_frame(),
            Err(WireError::TooLarge { len: 70_000, .. })
        ));
        let mut decoder = FrameDecoder::new();
        decoder.extend(&[0, 0, 0, 0]);
        assert_eq!(decoder.next_frame(), Err(WireError::EmptyFrame));
    }

    #[test]
    fn partial_frames_wait_for_more_bytes() {
        let mut decoder = FrameDecoder::new();
        decoder.extend(&[0, 0]);
        assert_eq!(decoder.next_frame(), Ok(None));
        decoder.extend(&[0, 3, b'a']);
        assert_eq!(decoder.next_frame(), Ok(None));
        assert_eq!(decoder.buffered(), 5);
        decoder.extend(b"bc");
        assert_eq!(decoder.next_frame(), Ok(Some(b"abc".to_vec())));
        assert_eq!(decoder.buffered(), 0);
    }

    proptest! {
        /// Frames come out whole however the bytes arrive, copied or borrowed (`borrow_every`:
        /// 0 copies every frame, n borrows every n-th), and the decoder keeps little more than
        /// the frame it is reading.
        #[test]
        fn frames_round_trip_through_any_read_sizes(
            bodies in prop::collection::vec(prop::collection::vec(any::<u8>(), 1..2048), 1..8),
            chunk in 1usize..700,
            borrow_every in 0usize..4,
        ) {
            let mut wire = Vec::new();
            for body in &bodies {
                encode_frame_into(body, &mut wire).unwrap();
            }
            let mut decoder = FrameDecoder::new();
            let mut decoded = Vec::new();
            for piece in wire.chunks(chunk) {
                decoder.extend(piece);
                loop {
                    let frame = if borrow_every > 0 && decoded.len() % borrow_every == 0 {
                        decoder.next_frame_ref().unwrap().map(<[u8]>::to_vec)
                    } else {
                        decoder.next_frame().unwrap()
                    };
                    let Some(frame) = frame else { break };
                    decoded.push(frame);
                }
                prop_assert!(decoder.buf.len() <= 2 * (chunk + 2052));
            }
            prop_assert_eq!(decoded, bodies);
            prop_assert_eq!(decoder.buffered(), 0);
        }

        #[test]
        fn decoder_never_panics_and_never_yields_oversized_frames(
            bytes in prop::collection::vec(any::<u8>(), 0..512),
            max in 1usize..300,
        ) {
            let mut decoder = FrameDecoder::with_max_len(max);
            decoder.extend(&bytes);
            while let Ok(Some(frame)) = decoder.next_frame() {
                prop_assert!(!frame.is_empty() && frame.len() <= max);
            }
            let mut decoder = FrameDecoder::with_max_len(max);
            decoder.extend(&bytes);
            while let Ok(Some(frame)) = decoder.next_frame_ref() {
                prop_assert!(!frame.is_empty() && frame.len() <= max);
            }
        }
    }
}
