//! Opening a session: TCP connect, hello, then the Noise handshake unless plaintext was both
//! asked for and granted.

use edbx_wire::{
    ControlHello, FrameDecoder, HelloResponse, MAX_FRAME_LEN, NoiseSession, encode_frame,
    stream_message_len,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::socket::{quickack, set_keepalive, set_nodelay};
use crate::config::Config;
use crate::error::{Error, ErrorKind, Result, ServerCode};

/// A session ready for request frames.
pub(crate) struct Established {
    pub stream: TcpStream,
    /// `None` for a plaintext session.
    pub noise: Option<NoiseSession>,
    /// Holds any bytes read past the handshake.
    pub decoder: FrameDecoder,
}

/// Opens one session within the configured connect and handshake timeouts.
pub(crate) async fn establish(config: &Config) -> Result<Established> {
    let token = config
        .get_token()
        .ok_or_else(|| Error::new(ErrorKind::Config, "no token configured"))?;
    let hello = ControlHello::new(token.expose(), config.get_tenant_id().unwrap_or(""))
        .map_err(Error::from_wire)?
        .with_no_noise(!config.get_noise());

    let addr = (config.get_host(), config.get_port());
    let connecting = tokio::time::timeout(config.get_connect_timeout(), TcpStream::connect(addr));
    let stream = match connecting.await {
        Ok(Ok(stream)) => stream,
        Ok(Err(e)) => {
            return Err(Error::new(
                ErrorKind::Connect,
                format!("cannot connect to {}:{}: {e}", addr.0, addr.1),
            )
            .with_source(e));
        }
        Err(_) => {
            return Err(Error::new(
                ErrorKind::Connect,
                format!(
                    "connecting to {}:{} took longer than {:?}",
                    addr.0,
                    addr.1,
                    config.get_connect_timeout()
                ),
            ));
        }
    };
    set_nodelay(&stream);
    if let Some(idle) = config.get_tcp_keepalive() {
        set_keepalive(&stream, idle);
    }
    let peer = peer_name(addr.0, addr.1);
    match tokio::time::timeout(
        config.get_handshake_timeout(),
        open_session(stream, &hello, config, &peer),
    )
    .await
    {
        Ok(session) => session,
        Err(_) => Err(Error::new(
            ErrorKind::Connect,
            format!(
                "the hello and handshake took longer than {:?} (is {peer} an EventDBX control \
                 port? a peer that waits for more, like a TLS server, says nothing)",
                config.get_handshake_timeout()
            ),
        )),
    }
}

/// Hello, then Noise unless plaintext was asked for and granted.
async fn open_session(
    mut stream: TcpStream,
    hello: &ControlHello,
    config: &Config,
    peer: &str,
) -> Result<Established> {
    stream.write_all(&hello.to_bytes()).await.map_err(lost)?;

    let (response, leftover) = read_hello_response(&mut stream, peer).await?;
    if !response.accepted {
        let mut refused = Error::new(
            ErrorKind::Handshake,
            format!("server refused the session: {}", response.message),
        );
        if let Some(code) = refusal_code(&response.message) {
            refused = refused.with_server_code(code);
        }
        return Err(refused);
    }
    let mut decoder = FrameDecoder::new();
    decoder.extend(&leftover);
    match (config.get_noise(), response.no_noise) {
        (true, true) => Err(Error::new(
            ErrorKind::Handshake,
            "server answered with a plaintext session although Noise was requested; refusing",
        )),
        (false, true) => Ok(Established {
            stream,
            noise: None,
            decoder,
        }),
        (asked_noise, false) => {
            if !asked_noise {
                tracing::debug!("server does not allow plaintext; using Noise");
            }
            let noise = noise_handshake(&mut stream, &mut decoder, hello.token()).await?;
            Ok(Established {
                stream,
                noise: Some(noise),
                decoder,
            })
        }
    }
}

/// Reads the bare Cap'n Proto hello response; returns it and any bytes that followed it.
/// Bytes that cannot be one are reported as a peer that is not an EventDBX control port
/// ([`ErrorKind::Protocol`], which is not retried).
async fn read_hello_response(
    stream: &mut TcpStream,
    peer: &str,
) -> Result<(HelloResponse, Vec<u8>)> {
    let mut buf = Vec::with_capacity(256);
    let mut chunk = [0u8; 1024];
    loop {
        match stream_message_len(&buf, MAX_FRAME_LEN) {
            Err(_) => return Err(not_a_control_port(peer, &buf)),
            Ok(Some(len)) if buf.len() >= len => {
                return match HelloResponse::parse(&buf[..len]) {
                    Ok(response) => Ok((response, buf[len..].to_vec())),
                    Err(_) => Err(not_a_control_port(peer, &buf)),
                };
            }
            Ok(_) => {}
        }
        quickack(stream);
        let n = match stream.read(&mut chunk).await {
            Ok(n) => n,
            // A reset after foreign bytes (a TLS server's alert, say) still says who it was.
            Err(_) if foreign_protocol(&buf).is_some() => 0,
            Err(e) => return Err(lost(e)),
        };
        if n == 0 {
            if foreign_protocol(&buf).is_some() {
                return Err(not_a_control_port(peer, &buf));
            }
            return Err(Error::new(
                ErrorKind::Connect,
                if buf.is_empty() {
                    format!("{peer} closed the connection before answering the hello")
                } else {
                    format!("{peer} closed the connection in the middle of its hello answer")
                },
            ));
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// `host:port`, with brackets around an IPv6 host.
fn peer_name(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// What the first bytes a peer sent look like, when they are a well-known other protocol.
fn foreign_protocol(bytes: &[u8]) -> Option<&'static str> {
    match bytes {
        [b'H', b'T', b'T', b'P', b'/', ..] => Some("an HTTP server"),
        // A TLS record: alert, handshake (ServerHello) or change-cipher-spec, version 3.x.
        [0x14..=0x17, 0x03, 0x00..=0x04, ..] => Some("a TLS server"),
        [b'S', b'S', b'H', b'-', ..] => Some("an SSH server"),
        _ => None,
    }
}

/// The error for a peer whose answer to the hello is not a hello response: a connection error
/// (the session could not be opened), saying plainly what answered.
fn not_a_control_port(peer: &str, bytes: &[u8]) -> Error {
    let like = match foreign_protocol(bytes) {
        Some(kind) => {
            let first_line: String = bytes
                .iter()
                .take_while(|&&b| b != b'\r' && b != b'\n')
                .take(60)
                .map(|&b| b as char)
                .collect();
            if kind == "a TLS server" {
                kind.to_owned()
            } else {
                format!("{kind}: {first_line:?}")
            }
        }
        None => {
            let shown: Vec<String> = bytes.iter().take(16).map(|b| format!("{b:02x}")).collect();
            format!(
                "with bytes that are not a hello answer: {}",
                shown.join(" ")
            )
        }
    };
    let like = if like.starts_with("with") {
        format!("it answered {like}")
    } else {
        format!("it answered like {like}")
    };
    // Protocol, not Connect: asking the same peer again would get the same answer, so
    // `Client::connect` does not retry it.
    Error::new(
        ErrorKind::Protocol,
        format!("{peer} is not an EventDBX control port ({like})"),
    )
}

async fn noise_handshake(
    stream: &mut TcpStream,
    decoder: &mut FrameDecoder,
    token: &str,
) -> Result<NoiseSession> {
    let mut noise = NoiseSession::client_side(token).map_err(Error::from_wire)?;
    let first = noise.write_message(&[]).map_err(Error::from_wire)?;
    stream
        .write_all(&encode_frame(&first).map_err(Error::from_wire)?)
        .await
        .map_err(lost)?;
    let reply = loop {
        if let Some(frame) = decoder.next_frame().map_err(Error::from_wire)? {
            break frame;
        }
        let mut chunk = [0u8; 256];
        quickack(stream);
        let n = stream.read(&mut chunk).await.map_err(lost)?;
        if n == 0 {
            return Err(Error::new(
                ErrorKind::Connect,
                "server closed the connection during the Noise handshake",
            ));
        }
        decoder.extend(&chunk[..n]);
    };
    noise
        .read_message(&reply)
        .map_err(|e| Error::new(ErrorKind::Handshake, format!("Noise handshake: {e}")))?;
    if !noise.is_handshake_finished() {
        return Err(Error::protocol(
            "Noise handshake did not finish after two messages",
        ));
    }
    Ok(noise)
}

/// A connection cut while the session opens: nothing was sent yet, so it is retryable.
fn lost(e: std::io::Error) -> Error {
    Error::new(
        ErrorKind::Connect,
        format!("connection lost while opening the session: {e}"),
    )
    .with_source(e)
}

/// The code of a hello refusal, from its message (the hello carries no code): token problems
/// answer [`Error::is_auth`](crate::Error::is_auth).
fn refusal_code(message: &str) -> Option<ServerCode> {
    if message.contains("control token") {
        Some(ServerCode::InvalidToken)
    } else if message.contains("does not grant access to tenant") {
        Some(ServerCode::Unauthorized)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn foreign_answers_are_named() {
        let http = not_a_control_port("h:80", b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0");
        assert_eq!(http.kind(), ErrorKind::Protocol);
        assert_eq!(
            http.message(),
            "h:80 is not an EventDBX control port (it answered like an HTTP server: \
             \"HTTP/1.1 400 Bad Request\")"
        );
        let tls = not_a_control_port("h:443", &[0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x32]);
        assert!(tls.message().contains("like a TLS server"), "{tls}");
        let other = not_a_control_port("h:1", b"\xff\xfe garbage");
        assert!(
            other.message().contains("not a hello answer: ff fe"),
            "{other}"
        );
        // A real hello answer does not look foreign.
        let real = HelloResponse::new(true, "ok", false);
        assert_eq!(foreign_protocol(&real.to_bytes()), None);
    }
}
