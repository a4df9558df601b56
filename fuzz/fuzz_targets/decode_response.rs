//! Whatever a server sends as a frame body, decoding returns a value or an error, the same
//! whether the body is read in place or copied.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let copied = edbx_wire::decode_response(data);
    let mut buffer = edbx_wire::MessageBuffer::new();
    buffer.fill(data);
    assert_eq!(edbx_wire::decode_response_in(&buffer), copied);
    if let Ok((id, response)) = copied {
        // What decodes must encode again.
        edbx_wire::encode_response(id, &response).expect("decoded responses re-encode");
    }
});
