//! The Python client `eventdbx` 0.1.8 cannot open a session with server 3.19.4 (PROTOCOL.md
//! §1): it puts a 4-byte length in front of the hello, which the server reads as a Cap'n
//! Proto segment count and rejects; and it mixes a Noise prologue the server does not use.
//!
//! The connect row shows that: the harness replays its hello framing against the server under
//! test and reports what the server does with it. The `py-official` contender then runs the
//! client itself with those bugs patched at run time (`python/official_0_1_8.py`).

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use edbx_wire::ControlHello;

use crate::workload::Target;

pub const LABEL: &str = "python eventdbx 0.1.8";

/// Sends the hello the way the Python client does and describes the outcome for the table.
pub fn probe(target: &Target) -> String {
    match replay_python_hello(target) {
        Ok(Outcome::Closed) => "cannot connect: the server closes the connection on its \
             length-prefixed hello (replayed here); its Noise prologue `eventdbx-control` would \
             fail next (PROTOCOL.md §1)"
            .to_owned(),
        Ok(Outcome::Answered(n)) => format!(
            "probe inconclusive: the server answered the length-prefixed hello with {n} bytes; \
             PROTOCOL.md §1 says it cannot connect"
        ),
        Err(e) => format!("probe failed ({e}); PROTOCOL.md §1 says it cannot connect"),
    }
}

enum Outcome {
    Closed,
    Answered(usize),
}

fn replay_python_hello(target: &Target) -> std::io::Result<Outcome> {
    let mut stream = TcpStream::connect((target.host.as_str(), target.port))?;
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let hello = ControlHello::new(&target.token, &target.tenant)
        .map_err(|e| std::io::Error::new(ErrorKind::InvalidInput, e.to_string()))?
        .to_bytes();
    // `_SocketTransport.send_frame`: u32 big-endian length, then the message.
    let mut framed = (hello.len() as u32).to_be_bytes().to_vec();
    framed.extend_from_slice(&hello);
    stream.write_all(&framed)?;
    let mut buf = [0u8; 1024];
    match stream.read(&mut buf) {
        Ok(0) => Ok(Outcome::Closed),
        Ok(n) => Ok(Outcome::Answered(n)),
        Err(e) if e.kind() == ErrorKind::ConnectionReset => Ok(Outcome::Closed),
        Err(e) => Err(e),
    }
}
