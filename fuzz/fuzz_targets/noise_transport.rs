//! Tampered ciphertext after a real handshake is rejected, never accepted or panicked on.
#![no_main]
use edbx_wire::NoiseSession;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let mut client = NoiseSession::client_side("fuzz-token").unwrap();
    let mut server = NoiseSession::server_side("fuzz-token").unwrap();
    let first = client.write_message(&[]).unwrap();
    server.read_message(&first).unwrap();
    let second = server.write_message(&[]).unwrap();
    client.read_message(&second).unwrap();
    let genuine = server.encrypt(b"the real reply").unwrap();
    match client.decrypt(data) {
        Ok(plain) => assert_eq!(
            data,
            &genuine[..],
            "only the genuine ciphertext decrypts: {plain:?}"
        ),
        Err(_) => {}
    }
});
