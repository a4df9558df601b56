//! Whatever a server sends as a frame body, decoding returns a value or an error.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok((id, response)) = edbx_wire::decode_response(data) {
        // What decodes must encode again.
        edbx_wire::encode_response(id, &response).expect("decoded responses re-encode");
    }
});
