//! Socket options that decide latency against this server.

use tokio::net::TcpStream;

/// Disables Nagle on our side: every frame goes out at once.
pub(crate) fn set_nodelay(stream: &TcpStream) {
    if let Err(e) = stream.set_nodelay(true) {
        tracing::debug!("TCP_NODELAY not set: {e}");
    }
}

/// Asks Linux to acknowledge incoming data at once. The server writes each frame as a 4-byte
/// header and a body in two writes with Nagle on, so the body waits for our ACK of the header;
/// a delayed ACK costs ~40 ms per reply. The flag is not sticky: set it before every read.
#[cfg(any(target_os = "linux", target_os = "android"))]
pub(crate) fn quickack(stream: &TcpStream) {
    // Failure only costs latency, never correctness.
    let _ = socket2::SockRef::from(stream).set_tcp_quickack(true);
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
pub(crate) fn quickack(_stream: &TcpStream) {}
