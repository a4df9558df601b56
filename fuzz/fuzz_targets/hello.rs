//! The hello exchange reads unframed bytes: length detection and parsing never panic.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(Some(len)) = edbx_wire::stream_message_len(data, edbx_wire::MAX_FRAME_LEN) {
        assert!(len <= edbx_wire::MAX_FRAME_LEN);
    }
    let _ = edbx_wire::HelloResponse::parse(data);
    let _ = edbx_wire::ControlHello::parse(data);
});
