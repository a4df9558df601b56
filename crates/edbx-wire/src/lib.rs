//! # edbx-wire
//!
//! The EventDBX control protocol (server 3.19.4) without I/O: no sockets, no async runtime.
//! Everything here turns values into bytes and bytes into values, so the same code serves the
//! async client, a blocking benchmark loop and a scripted fake server.
//!
//! A session, byte by byte:
//!
//! 1. the client writes a [`ControlHello`] as a bare Cap'n Proto stream message (no length
//!    prefix) and reads a [`HelloResponse`] the same way ([`stream_message_len`] tells when a
//!    whole one has arrived);
//! 2. unless both sides agreed on plaintext, a Noise `NNpsk0` handshake follows
//!    ([`NoiseSession::client_side`]), two frames of 48 bytes;
//! 3. then every message is a frame ([`encode_frame`], [`FrameDecoder`]): a 4-byte big-endian
//!    length and a body that is a Cap'n Proto message ([`encode_request`], [`decode_response`]),
//!    encrypted under Noise.
//!
//! Limits are enforced on both sides: [`MAX_FRAME_LEN`] for frame bodies and
//! [`MAX_NOISE_PLAINTEXT_LEN`] for messages sent under Noise. Network input is read with bounded
//! Cap'n Proto [`reader_options`].

#![warn(missing_docs)]

mod cli_probe;
mod codec;
mod error;
mod frame;
pub mod generated;
mod hello;
mod noise;
mod request;
mod response;

pub use cli_probe::cli_request;
pub use codec::{
    MessageBuffer, decode_request, decode_response, decode_response_in, encode_request,
    encode_response, reader_options,
};
pub use error::WireError;
pub use frame::{
    FrameDecoder, MAX_FRAME_LEN, MAX_NOISE_PLAINTEXT_LEN, NOISE_TAG_LEN, encode_frame,
    encode_frame_into,
};
pub use hello::{
    ControlHello, HelloResponse, PROTOCOL_VERSION, build_control_hello, stream_message_len,
};
pub use noise::{NoiseKeys, NoiseSession, SERVER_NOISE_PATTERN, noise_psk};
pub use request::*;
pub use response::*;

/// This crate's README (shown on crates.io), compiled and run as doctests so that it cannot rot.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
mod readme {}
