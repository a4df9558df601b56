//! The hello exchange and the bare-stream-message length helper.

use capnp::message::{Builder, HeapAllocator};
use edbx_wire::generated::control_capnp::{control_hello, control_hello_response};
use edbx_wire::{
    ControlHello, HelloResponse, PROTOCOL_VERSION, WireError, build_control_hello,
    stream_message_len,
};
use proptest::prelude::*;

/// PROTOCOL.md §1: token "tok", tenant "default", noNoise = true.
const HELLO_EXAMPLE: [u8; 56] = [
    0x00, 0x00, 0x00, 0x00, 0x06, 0x00, 0x00, 0x00, // segment table: 1 segment, 6 words
    0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x02,
    0x00, // root struct pointer: 1 data word, 2 ptrs
    0x01, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, // protocolVersion = 1, noNoise bit
    0x05, 0x00, 0x00, 0x00, 0x22, 0x00, 0x00, 0x00, // token: byte list of 4
    0x05, 0x00, 0x00, 0x00, 0x42, 0x00, 0x00, 0x00, // tenantId: byte list of 8
    0x74, 0x6f, 0x6b, 0x00, 0x00, 0x00, 0x00, 0x00, // "tok\0" + padding
    0x64, 0x65, 0x66, 0x61, 0x75, 0x6c, 0x74, 0x00, // "default\0"
];

#[test]
fn hello_matches_protocol_example_byte_for_byte() {
    let hello = build_control_hello(PROTOCOL_VERSION, "tok", "default")
        .unwrap()
        .with_no_noise(true);
    assert_eq!(hello.to_bytes(), HELLO_EXAMPLE);

    let via_new = ControlHello::new(" tok\n", " default ")
        .unwrap()
        .with_no_noise(true);
    assert_eq!(via_new.to_bytes(), HELLO_EXAMPLE);
}

#[test]
fn hello_example_parses() {
    let hello = ControlHello::parse(&HELLO_EXAMPLE).unwrap();
    assert_eq!(hello.protocol_version(), 1);
    assert_eq!(hello.token(), "tok");
    assert_eq!(hello.tenant_id(), "default");
    assert!(hello.no_noise());
}

#[test]
fn build_control_hello_validates() {
    for (version, token, tenant, needle) in [
        (0, "tok", "default", "protocol version"),
        (1, "", "default", "token"),
        (1, " \t\n", "default", "token"),
        (1, "tok", "", "tenant"),
        (1, "tok", "   ", "tenant"),
    ] {
        match build_control_hello(version, token, tenant) {
            Err(WireError::InvalidInput(message)) => {
                assert!(
                    message.contains(needle),
                    "{message:?} should mention {needle}"
                )
            }
            other => panic!("({version}, {token:?}, {tenant:?}) gave {other:?}"),
        }
    }
    let hello = build_control_hello(7, "  tok  ", " t1 ").unwrap();
    assert_eq!(hello.protocol_version(), 7);
    assert_eq!(hello.token(), "tok");
    assert_eq!(hello.tenant_id(), "t1");
    assert!(!hello.no_noise());
}

#[test]
fn new_allows_empty_tenant_but_not_empty_token() {
    let hello = ControlHello::new("tok", "  ").unwrap();
    assert_eq!(hello.protocol_version(), PROTOCOL_VERSION);
    assert_eq!(hello.tenant_id(), "");
    assert!(matches!(
        ControlHello::new("  ", "t"),
        Err(WireError::InvalidInput(_))
    ));
}

#[test]
fn debug_redacts_the_token() {
    let hello = ControlHello::new("eyJhbGciOiJFZERTQSJ9.secret.sig", "t").unwrap();
    let debug = format!("{hello:?}");
    assert!(!debug.contains("secret"), "{debug}");
    assert!(debug.contains("<redacted>"), "{debug}");
}

/// Offset of the first pointer of a one-segment hello: segment table, root pointer, data word.
const TOKEN_POINTER: std::ops::Range<usize> = 24..32;

#[test]
fn token_pointer_is_always_set() {
    // A hello whose token pointer is null, as a careless client would send it.
    let mut message = Builder::new_default();
    let mut root = message.init_root::<control_hello::Builder<'_>>();
    root.set_protocol_version(1);
    root.set_tenant_id("t");
    let bytes = capnp::serialize::write_message_to_words(&message);
    assert_eq!(
        bytes[TOKEN_POINTER], [0; 8],
        "test setup: null token pointer"
    );

    let parsed = ControlHello::parse(&bytes).unwrap();
    assert_eq!(parsed.token(), "");
    let reencoded = parsed.to_bytes();
    assert_ne!(
        reencoded[TOKEN_POINTER], [0; 8],
        "an empty token must still be a set (non-null) pointer"
    );
    let reparsed = ControlHello::parse(&reencoded).unwrap();
    assert_eq!(reparsed.token(), "");
}

#[test]
fn to_bytes_trims_a_parsed_token() {
    let mut message = Builder::new_default();
    let mut root = message.init_root::<control_hello::Builder<'_>>();
    root.set_protocol_version(1);
    root.set_token("  tok\n");
    let bytes = capnp::serialize::write_message_to_words(&message);
    let parsed = ControlHello::parse(&bytes).unwrap();
    assert_eq!(parsed.token(), "  tok\n", "parse keeps text as received");
    let reparsed = ControlHello::parse(&parsed.to_bytes()).unwrap();
    assert_eq!(reparsed.token(), "tok");
}

#[test]
fn hello_response_round_trip_and_layout() {
    let response = HelloResponse::new(true, "ok", true);
    let bytes = response.to_bytes();
    assert_eq!(HelloResponse::parse(&bytes).unwrap(), response);

    // Written independently with the generated builder: same bytes.
    let mut message = Builder::new_default();
    let mut root = message.init_root::<control_hello_response::Builder<'_>>();
    root.set_accepted(true);
    root.set_message("ok");
    root.set_no_noise(true);
    assert_eq!(capnp::serialize::write_message_to_words(&message), bytes);

    let rejected = HelloResponse::new(false, "invalid control token", false);
    assert_eq!(
        HelloResponse::parse(&rejected.to_bytes()).unwrap(),
        rejected
    );
}

#[test]
fn parsers_reject_truncated_and_trailing_bytes() {
    let bytes = HELLO_EXAMPLE;
    for len in 0..bytes.len() {
        assert!(
            matches!(
                ControlHello::parse(&bytes[..len]),
                Err(WireError::Malformed(_))
            ),
            "prefix of {len} bytes"
        );
    }
    let mut longer = bytes.to_vec();
    longer.extend_from_slice(&[0; 8]);
    assert!(matches!(
        ControlHello::parse(&longer),
        Err(WireError::Malformed(_))
    ));
    assert!(matches!(
        HelloResponse::parse(&[]),
        Err(WireError::Malformed(_))
    ));
}

#[test]
fn parse_rejects_non_utf8_text() {
    let mut bytes = HELLO_EXAMPLE;
    bytes[40] = 0xff; // first byte of "tok"
    assert!(matches!(
        ControlHello::parse(&bytes),
        Err(WireError::Malformed(_))
    ));
}

#[test]
fn stream_message_len_on_the_example() {
    for len in 0..8 {
        assert_eq!(
            stream_message_len(&HELLO_EXAMPLE[..len], 1024).unwrap(),
            None
        );
    }
    for len in 8..=HELLO_EXAMPLE.len() {
        assert_eq!(
            stream_message_len(&HELLO_EXAMPLE[..len], 1024).unwrap(),
            Some(56)
        );
    }
    assert_eq!(stream_message_len(&HELLO_EXAMPLE, 56).unwrap(), Some(56));
    assert!(matches!(
        stream_message_len(&HELLO_EXAMPLE, 55),
        Err(WireError::TooLarge {
            len: 56,
            max: 55,
            ..
        })
    ));
}

#[test]
fn stream_message_len_segment_limits() {
    // 512 segments: capnp refuses it, so do we, as soon as the first 4 bytes are in.
    let count_512 = 511u32.to_le_bytes();
    assert!(matches!(
        stream_message_len(&count_512, usize::MAX),
        Err(WireError::TooLarge {
            what: "segment count",
            len: 512,
            max: 511
        })
    ));
    // 511 segments of 0 words: table of 256 words.
    let mut table = 510u32.to_le_bytes().to_vec();
    table.resize(2048, 0);
    assert_eq!(
        stream_message_len(&table[..2047], usize::MAX).unwrap(),
        None
    );
    assert_eq!(stream_message_len(&table, usize::MAX).unwrap(), Some(2048));
    assert!(matches!(
        stream_message_len(&table[..4], 2047),
        Err(WireError::TooLarge { len: 2048, .. })
    ));
}

#[test]
fn stream_message_len_rejects_early_and_never_overflows() {
    // Two segments; the first alone is already too large: known after 8 bytes.
    let mut bytes = 1u32.to_le_bytes().to_vec();
    bytes.extend_from_slice(&u32::MAX.to_le_bytes());
    assert!(matches!(
        stream_message_len(&bytes, 65_535),
        Err(WireError::TooLarge {
            what: "message",
            ..
        })
    ));
    // Many maximal segments: the sum must not wrap around.
    let mut bytes = 510u32.to_le_bytes().to_vec();
    for _ in 0..511 {
        bytes.extend_from_slice(&u32::MAX.to_le_bytes());
    }
    bytes.resize(2048, 0xff);
    assert!(matches!(
        stream_message_len(&bytes, usize::MAX),
        Ok(Some(_)) | Err(WireError::TooLarge { .. })
    ));
}

/// A message with many segments: a tiny fixed-size first segment forces spills.
fn multi_segment_hello(token: &str, tenant: &str) -> Vec<u8> {
    let allocator = HeapAllocator::new()
        .first_segment_words(1)
        .allocation_strategy(capnp::message::AllocationStrategy::FixedSize);
    let mut message = Builder::new(allocator);
    let mut root = message.init_root::<control_hello::Builder<'_>>();
    root.set_protocol_version(1);
    root.set_token(token);
    root.set_tenant_id(tenant);
    capnp::serialize::write_message_to_words(&message)
}

/// Feeds `bytes` in chunks of `chunk` bytes; returns the length found and how many bytes had
/// been buffered when it was found.
fn incremental_len(bytes: &[u8], chunk: usize) -> (usize, usize) {
    let mut buffer = Vec::new();
    for piece in bytes.chunks(chunk) {
        buffer.extend_from_slice(piece);
        if let Some(len) = stream_message_len(&buffer, usize::MAX).unwrap() {
            return (len, buffer.len());
        }
    }
    panic!("length never determined for {} bytes", bytes.len());
}

#[test]
fn stream_message_len_incremental_multi_segment() {
    let bytes = multi_segment_hello("a-token-that-spans-words", "tenant");
    let segments = u32::from_le_bytes(bytes[..4].try_into().unwrap()) as usize + 1;
    assert!(
        segments >= 3,
        "expected a multi-segment message, got {segments}"
    );
    let table_len = (segments / 2 + 1) * 8;
    assert_eq!(
        ControlHello::parse(&bytes).unwrap().token(),
        "a-token-that-spans-words"
    );
    for chunk in 1..=bytes.len() {
        let (len, seen) = incremental_len(&bytes, chunk);
        assert_eq!(len, bytes.len(), "chunk size {chunk}");
        assert!(
            seen >= table_len,
            "chunk size {chunk}: found before the table was complete"
        );
        assert!(
            seen < table_len + chunk,
            "chunk size {chunk}: found late ({seen} bytes)"
        );
    }
}

proptest! {
    #[test]
    fn hello_round_trip(
        version in 1u16..,
        token in "\\PC*",
        tenant in "\\PC*",
        no_noise in any::<bool>(),
    ) {
        prop_assume!(!token.trim().is_empty());
        let hello = ControlHello::new(&token, &tenant).unwrap().with_no_noise(no_noise);
        let parsed = ControlHello::parse(&hello.to_bytes()).unwrap();
        prop_assert_eq!(&parsed, &hello);
        prop_assert_eq!(parsed.token(), token.trim());
        prop_assert_eq!(parsed.tenant_id(), tenant.trim());

        if !tenant.trim().is_empty() {
            let built = build_control_hello(version, &token, &tenant).unwrap();
            let parsed = ControlHello::parse(&built.to_bytes()).unwrap();
            prop_assert_eq!(parsed.protocol_version(), version);
            prop_assert_eq!(parsed, built);
        }
    }

    #[test]
    fn hello_response_round_trip_any(
        accepted in any::<bool>(),
        message in any::<String>(),
        no_noise in any::<bool>(),
    ) {
        let response = HelloResponse::new(accepted, message, no_noise);
        let bytes = response.to_bytes();
        prop_assert_eq!(stream_message_len(&bytes, usize::MAX).unwrap(), Some(bytes.len()));
        prop_assert_eq!(HelloResponse::parse(&bytes).unwrap(), response);
    }

    #[test]
    fn parsers_never_panic_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = ControlHello::parse(&bytes);
        let _ = HelloResponse::parse(&bytes);
        let _ = stream_message_len(&bytes, usize::MAX);
        let _ = stream_message_len(&bytes, 65_535);
        let _ = stream_message_len(&bytes, 0);
    }

    /// Random words behind a consistent one-segment table reach deep into the pointer decoding.
    #[test]
    fn parsers_never_panic_on_well_framed_garbage(words in proptest::collection::vec(any::<u64>(), 0..64)) {
        let mut bytes = 0u32.to_le_bytes().to_vec();
        bytes.extend_from_slice(&(words.len() as u32).to_le_bytes());
        for word in &words {
            bytes.extend_from_slice(&word.to_le_bytes());
        }
        prop_assert_eq!(stream_message_len(&bytes, usize::MAX).unwrap(), Some(bytes.len()));
        let _ = ControlHello::parse(&bytes);
        let _ = HelloResponse::parse(&bytes);
    }

    #[test]
    fn parsers_never_panic_on_mutated_hellos(
        flips in proptest::collection::vec((0usize..56, any::<u8>()), 1..8),
    ) {
        let mut bytes = HELLO_EXAMPLE;
        for (index, value) in flips {
            bytes[index] = value;
        }
        let _ = ControlHello::parse(&bytes);
        let _ = HelloResponse::parse(&bytes);
        let _ = stream_message_len(&bytes, 65_535);
    }

    #[test]
    fn stream_message_len_finds_exact_length_in_any_chunking(
        token in "[a-z0-9.]{1,200}",
        tenant in "[a-z0-9]{0,40}",
        chunk in 1usize..64,
        multi in any::<bool>(),
    ) {
        let bytes = if multi {
            multi_segment_hello(&token, &tenant)
        } else {
            ControlHello::new(&token, &tenant).unwrap().to_bytes()
        };
        let (len, _) = incremental_len(&bytes, chunk);
        prop_assert_eq!(len, bytes.len());
        // Bytes of a following message do not change the answer.
        let mut followed = bytes.clone();
        followed.extend_from_slice(&HELLO_EXAMPLE);
        prop_assert_eq!(stream_message_len(&followed, usize::MAX).unwrap(), Some(bytes.len()));
    }
}
