//! Turning [`Request`](crate::Request)s and [`Response`](crate::Response)s into Cap'n Proto
//! stream messages and back.
//!
//! Every message is the standard unpacked stream serialization (segment table, then segments),
//! exactly the bytes of `capnp::serialize::write_message_to_words`: the body of one session frame.

mod request;
mod response;

pub use request::{decode_request, encode_request};
pub use response::{decode_response, decode_response_in, encode_response};

use capnp::Word;
use capnp::message::{self, ReaderOptions};
use capnp::serialize::{NoAllocSliceSegments, OwnedSegments};

use crate::WireError;
use crate::hello::stream_message_len;

/// Cap'n Proto traversal limit used for network input, in 8-byte words.
///
/// The largest frame body is 65,535 bytes, i.e. 8,192 words. The decoders here visit every
/// object once, so a legitimate message needs at most that many words of traversal; 64 Ki words
/// (512 KiB, eight times the frame limit) leaves room for multi-segment overhead while still
/// bounding the work a hostile message can cause by pointing many fields at the same data.
/// A message whose segment table alone announces more words is rejected before anything is
/// read.
const TRAVERSAL_LIMIT_WORDS: usize = 64 * 1024;

/// Cap'n Proto nesting limit used for network input.
///
/// The deepest legitimate path is `ControlRequest` → payload struct → `publishTargets` list →
/// `PublishTarget` → text, five levels; 16 leaves slack without allowing deep recursion.
const NESTING_LIMIT: i32 = 16;

/// Cap'n Proto reader options for bytes that came from the network.
///
/// Both limits are far below capnp's defaults (8 Mi words, nesting 64): the traversal limit is
/// sized from the 65,535-byte frame limit (64 Ki words, 8× the largest frame) and the nesting
/// limit (16) from the deepest structure this protocol uses.
pub fn reader_options() -> ReaderOptions {
    let mut options = ReaderOptions::new();
    options
        .traversal_limit_in_words(Some(TRAVERSAL_LIMIT_WORDS))
        .nesting_limit(NESTING_LIMIT);
    options
}

/// Reads exactly one stream message that must fill `bytes` completely.
///
/// The segment table is checked against the input length before capnp allocates anything, so
/// the allocation is bounded by `bytes.len()`. The bytes are copied into aligned segments, so
/// `bytes` may start at any address (e.g. right after a 4-byte frame header).
pub(crate) fn read_message(bytes: &[u8]) -> Result<message::Reader<OwnedSegments>, WireError> {
    match stream_message_len(bytes, usize::MAX)? {
        None => Err(WireError::Malformed(format!(
            "truncated segment table ({} bytes)",
            bytes.len()
        ))),
        Some(len) if len > bytes.len() => Err(WireError::Malformed(format!(
            "message of {len} bytes truncated to {} bytes",
            bytes.len()
        ))),
        Some(len) if len < bytes.len() => Err(WireError::Malformed(format!(
            "{} trailing bytes after a message of {len} bytes",
            bytes.len() - len
        ))),
        Some(_) => {
            let mut input = bytes;
            Ok(capnp::serialize::read_message(
                &mut input,
                reader_options(),
            )?)
        }
    }
}

/// Reads the one-segment stream message that fills `buffer` in place: `Ok(None)` when it has
/// more segments (read those with [`read_message`], whose segment lookups do not rescan the
/// segment table). The checks are [`read_message`]'s.
pub(crate) fn read_message_in_place(
    buffer: &MessageBuffer,
) -> Result<Option<message::Reader<NoAllocSliceSegments<'_>>>, WireError> {
    let mut bytes = buffer.as_bytes();
    // The first word holds the segment count minus one.
    if bytes.get(..4) != Some(&[0; 4]) {
        return Ok(None);
    }
    match stream_message_len(bytes, usize::MAX)? {
        Some(len) if len == bytes.len() => {}
        // Truncated or with trailing bytes: read_message says which.
        _ => return read_message(bytes).map(|_| None),
    }
    let segments = NoAllocSliceSegments::from_slice(&mut bytes, reader_options())?;
    Ok(Some(message::Reader::new(segments, reader_options())))
}

/// A reusable buffer for one received message, aligned so that Cap'n Proto can read it in
/// place ([`decode_response_in`](crate::decode_response_in)): a connection keeps one and
/// decrypts ([`NoiseSession::decrypt_into`](crate::NoiseSession::decrypt_into)) or copies
/// ([`fill`](Self::fill)) each message into it, instead of allocating a buffer per message.
/// It keeps the capacity of the largest message it held (at most one frame, 64 KiB).
#[derive(Debug, Clone, Default)]
pub struct MessageBuffer {
    words: Vec<Word>,
    len: usize,
}

impl MessageBuffer {
    /// An empty buffer.
    pub fn new() -> Self {
        Self::default()
    }

    /// Replaces the contents with `bytes`.
    pub fn fill(&mut self, bytes: &[u8]) {
        self.space(bytes.len()).copy_from_slice(bytes);
    }

    /// The message's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &Word::words_to_bytes(&self.words)[..self.len]
    }

    /// Room for `len` bytes (left from earlier contents, or zero), which become the contents.
    pub(crate) fn space(&mut self, len: usize) -> &mut [u8] {
        let words = len.div_ceil(8);
        if self.words.len() < words {
            self.words
                .resize(words, capnp::word(0, 0, 0, 0, 0, 0, 0, 0));
        }
        self.len = len;
        &mut Word::words_to_bytes_mut(&mut self.words)[..len]
    }

    /// Keeps only the first `len` bytes of the contents.
    pub(crate) fn truncate(&mut self, len: usize) {
        self.len = self.len.min(len);
    }
}

/// Serializes a built message (unpacked stream format).
pub(crate) fn write_message<A: message::Allocator>(builder: &message::Builder<A>) -> Vec<u8> {
    capnp::serialize::write_message_to_words(builder)
}

/// Reads a Text field as an owned UTF-8 string; invalid UTF-8 is `Malformed`.
pub(crate) fn text(
    field: &'static str,
    value: capnp::Result<capnp::text::Reader<'_>>,
) -> Result<String, WireError> {
    let reader = value?;
    match reader.to_str() {
        Ok(s) => Ok(s.to_owned()),
        Err(err) => Err(WireError::Malformed(format!(
            "field `{field}` is not UTF-8: {err}"
        ))),
    }
}

/// Reads an optional Text field: `Some` only when its `has*` flag is set.
pub(crate) fn opt_text(
    field: &'static str,
    has: bool,
    value: capnp::Result<capnp::text::Reader<'_>>,
) -> Result<Option<String>, WireError> {
    if has {
        text(field, value).map(Some)
    } else {
        Ok(None)
    }
}

/// Reads a `List(Text)` field.
pub(crate) fn text_list(
    field: &'static str,
    value: capnp::Result<capnp::text_list::Reader<'_>>,
) -> Result<Vec<String>, WireError> {
    let list = value?;
    let mut out = Vec::with_capacity(list.len() as usize);
    for item in list.iter() {
        out.push(text(field, item)?);
    }
    Ok(out)
}

/// The largest list length capnp can encode (element counts are 29-bit).
const MAX_LIST_LEN: usize = (1 << 29) - 1;

/// The largest text capnp can encode: a byte list of 29-bit length that includes the NUL.
pub(crate) const MAX_TEXT_LEN: usize = MAX_LIST_LEN - 1;

/// Checks a list length before handing it to capnp (which panics on impossible lengths).
pub(crate) fn list_len(field: &'static str, len: usize) -> Result<u32, WireError> {
    if len > MAX_LIST_LEN {
        return Err(WireError::InvalidInput(format!(
            "`{field}` has {len} entries; Cap'n Proto lists hold at most {MAX_LIST_LEN}"
        )));
    }
    // MAX_LIST_LEN < u32::MAX, so this cannot fail.
    u32::try_from(len).map_err(|_| WireError::InvalidInput(format!("`{field}` is too long")))
}

/// Checks a text length before handing it to capnp (which panics on impossible lengths).
pub(crate) fn check_text<'s>(field: &'static str, value: &'s str) -> Result<&'s str, WireError> {
    if value.len() > MAX_TEXT_LEN {
        return Err(WireError::InvalidInput(format!(
            "`{field}` is {} bytes; Cap'n Proto text holds at most {MAX_TEXT_LEN}",
            value.len()
        )));
    }
    Ok(value)
}

/// Writes a `List(Text)` field's entries into an initialised list builder.
pub(crate) fn fill_text_list(
    field: &'static str,
    mut list: capnp::text_list::Builder<'_>,
    items: &[String],
) -> Result<(), WireError> {
    for (i, item) in items.iter().enumerate() {
        // `i` < list length, which `list_len` has already bounded to u32.
        let index = list_len(field, i)?;
        list.set(index, check_text(field, item)?);
    }
    Ok(())
}
