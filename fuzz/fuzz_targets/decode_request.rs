//! Fake servers decode requests: no input may make that panic.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = edbx_wire::decode_request(data);
});
