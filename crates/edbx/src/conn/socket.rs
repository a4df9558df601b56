//! Socket options that decide latency against this server.

use std::time::Duration;

use tokio::net::TcpStream;

/// Disables Nagle on our side: every frame goes out at once.
pub(crate) fn set_nodelay(stream: &TcpStream) {
    if let Err(e) = stream.set_nodelay(true) {
        tracing::debug!("TCP_NODELAY not set: {e}");
    }
}

/// Turns on TCP keepalive: after `idle` without traffic the kernel probes the peer (every
/// `idle / 3`, three times) and fails the connection if it is gone, so a silent partition is
/// noticed on an idle connection too.
pub(crate) fn set_keepalive(stream: &TcpStream, idle: Duration) {
    let interval = (idle / 3).max(Duration::from_secs(1));
    let keepalive = socket2::TcpKeepalive::new()
        .with_time(idle)
        .with_interval(interval);
    #[cfg(any(
        target_os = "linux",
        target_os = "android",
        target_vendor = "apple",
        windows
    ))]
    let keepalive = keepalive.with_retries(3);
    if let Err(e) = socket2::SockRef::from(stream).set_tcp_keepalive(&keepalive) {
        tracing::debug!("TCP keepalive not set: {e}");
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
