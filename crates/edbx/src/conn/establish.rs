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
    let hello = ControlHello::new(token.expose(), config.get_tenant_id().unwrap_or(""))?
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
    match tokio::time::timeout(
        config.get_handshake_timeout(),
        open_session(stream, &hello, config),
    )
    .await
    {
        Ok(session) => session,
        Err(_) => Err(Error::new(
            ErrorKind::Connect,
            format!(
                "the hello and handshake took longer than {:?}",
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
) -> Result<Established> {
    stream.write_all(&hello.to_bytes()).await.map_err(lost)?;

    let (response, leftover) = read_hello_response(&mut stream).await?;
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
async fn read_hello_response(stream: &mut TcpStream) -> Result<(HelloResponse, Vec<u8>)> {
    let mut buf = Vec::with_capacity(256);
    let mut chunk = [0u8; 1024];
    loop {
        if let Some(len) = stream_message_len(&buf, MAX_FRAME_LEN)?.filter(|len| buf.len() >= *len)
        {
            let response = HelloResponse::parse(&buf[..len])?;
            return Ok((response, buf[len..].to_vec()));
        }
        quickack(stream);
        let n = stream.read(&mut chunk).await.map_err(lost)?;
        if n == 0 {
            return Err(Error::new(
                ErrorKind::Connect,
                "server closed the connection before answering the hello",
            ));
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

async fn noise_handshake(
    stream: &mut TcpStream,
    decoder: &mut FrameDecoder,
    token: &str,
) -> Result<NoiseSession> {
    let mut noise = NoiseSession::client_side(token)?;
    let first = noise.write_message(&[])?;
    stream
        .write_all(&encode_frame(&first)?)
        .await
        .map_err(lost)?;
    let reply = loop {
        if let Some(frame) = decoder.next_frame()? {
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
