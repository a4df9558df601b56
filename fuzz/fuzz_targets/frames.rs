//! Any byte stream, cut anywhere: frames come out within the limit, or an error does.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((&cut, rest)) = data.split_first() else {
        return;
    };
    let mut decoder = edbx_wire::FrameDecoder::new();
    for piece in rest.chunks(usize::from(cut).max(1)) {
        decoder.extend(piece);
        loop {
            match decoder.next_frame() {
                Ok(Some(frame)) => {
                    assert!(!frame.is_empty() && frame.len() <= edbx_wire::MAX_FRAME_LEN)
                }
                Ok(None) => break,
                Err(_) => return,
            }
        }
    }
});
