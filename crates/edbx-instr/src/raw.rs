//! The ceiling: the least a client can do. Blocking std sockets, one connection, `TCP_NODELAY`,
//! `TCP_QUICKACK` before every read, Noise on, one request in flight, no pool, no queue, no
//! async runtime, no JSON parsing of replies. Whatever a loop over this reaches is what the
//! server can take here; whatever it executes is the least a client must.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use edbx_wire::{
    ControlHello, FrameDecoder, HelloResponse, MAX_FRAME_LEN, NoiseSession, Request, Response,
    decode_response, encode_frame, encode_request, stream_message_len,
};

/// A bound on every blocking read, so a stuck server fails the run instead of hanging it.
const READ_TIMEOUT: Duration = Duration::from_secs(10);

fn err(what: &'static str) -> impl Fn(std::io::Error) -> String {
    move |e| format!("{what}: {e}")
}

/// One open session.
pub struct Conn {
    stream: TcpStream,
    noise: NoiseSession,
    decoder: FrameDecoder,
    buf: Box<[u8]>,
    token: String,
    next_id: u64,
}

impl Conn {
    /// TCP connect, hello, Noise handshake.
    pub fn open(host: &str, port: u16, token: &str, tenant: &str) -> Result<Conn, String> {
        let stream = TcpStream::connect((host, port)).map_err(err("connect"))?;
        stream.set_nodelay(true).map_err(err("TCP_NODELAY"))?;
        stream
            .set_read_timeout(Some(READ_TIMEOUT))
            .map_err(err("read timeout"))?;
        let hello = ControlHello::new(token, tenant).map_err(|e| e.to_string())?;
        let mut conn = Conn {
            stream,
            noise: NoiseSession::client_side(token).map_err(|e| e.to_string())?,
            decoder: FrameDecoder::new(),
            buf: vec![0u8; 64 * 1024].into_boxed_slice(),
            token: token.trim().to_owned(),
            next_id: 1,
        };
        conn.stream
            .write_all(&hello.to_bytes())
            .map_err(err("write hello"))?;

        let mut bytes = Vec::new();
        let len = loop {
            let whole = stream_message_len(&bytes, MAX_FRAME_LEN).map_err(|e| e.to_string())?;
            if let Some(len) = whole.filter(|len| bytes.len() >= *len) {
                break len;
            }
            let n = conn.read_some()?;
            bytes.extend_from_slice(&conn.buf[..n]);
        };
        let response = HelloResponse::parse(&bytes[..len]).map_err(|e| e.to_string())?;
        if !response.accepted || response.no_noise {
            return Err(format!("hello refused or plaintext: {response:?}"));
        }
        conn.decoder.extend(&bytes[len..]);

        let first = conn.noise.write_message(&[]).map_err(|e| e.to_string())?;
        let frame = encode_frame(&first).map_err(|e| e.to_string())?;
        conn.stream
            .write_all(&frame)
            .map_err(err("write handshake"))?;
        let reply = conn.next_frame()?;
        conn.noise.read_message(&reply).map_err(|e| e.to_string())?;
        if !conn.noise.is_handshake_finished() {
            return Err("Noise handshake unfinished after two messages".to_owned());
        }
        Ok(conn)
    }

    /// One read, after asking the kernel to ACK at once (the server's header/body split plus
    /// Nagle otherwise costs a delayed ACK, ~40 ms, per reply).
    fn read_some(&mut self) -> Result<usize, String> {
        let _ = socket2::SockRef::from(&self.stream).set_tcp_quickack(true);
        match self.stream.read(&mut self.buf) {
            Ok(0) => Err("server closed the connection".to_owned()),
            Ok(n) => Ok(n),
            Err(e) => Err(format!("read: {e}")),
        }
    }

    fn next_frame(&mut self) -> Result<Vec<u8>, String> {
        loop {
            if let Some(frame) = self.decoder.next_frame().map_err(|e| e.to_string())? {
                return Ok(frame);
            }
            let n = self.read_some()?;
            self.decoder.extend(&self.buf[..n]);
        }
    }

    /// Sends one request (one write: header and ciphertext together) and reads its reply.
    pub fn call(&mut self, request: &Request) -> Result<Response, String> {
        let id = self.next_id;
        self.next_id += 1;
        let frame = seal_request(&mut self.noise, &self.token, id, request)?;
        self.stream
            .write_all(&frame)
            .map_err(|e| format!("write: {e}"))?;
        let frame = self.next_frame()?;
        open_reply(&mut self.noise, &frame, id)
    }
}

/// Request `id`, encoded and encrypted into one frame (header and ciphertext).
pub fn seal_request(
    noise: &mut NoiseSession,
    token: &str,
    id: u64,
    request: &Request,
) -> Result<Vec<u8>, String> {
    let message = encode_request(id, token, request).map_err(|e| e.to_string())?;
    noise.encrypt_frame(&message).map_err(|e| e.to_string())
}

/// The reply in `frame`, decrypted and decoded, checked to answer request `id`.
pub fn open_reply(noise: &mut NoiseSession, frame: &[u8], id: u64) -> Result<Response, String> {
    let plain = noise.decrypt(frame).map_err(|e| e.to_string())?;
    let (reply_id, response) = decode_response(&plain).map_err(|e| e.to_string())?;
    if reply_id != id {
        return Err(format!("reply {reply_id} to request {id}"));
    }
    Ok(response)
}

/// An open session's state apart from its socket, for a contender that drives the socket some
/// other way (the benchmark's async ceiling).
pub struct Session {
    pub noise: NoiseSession,
    /// Bytes already read past the handshake.
    pub decoder: FrameDecoder,
    pub token: String,
    pub next_id: u64,
}

impl Conn {
    /// The session's socket, and its Noise state and read buffer, to go on with elsewhere.
    pub fn into_parts(self) -> (TcpStream, Session) {
        let session = Session {
            noise: self.noise,
            decoder: self.decoder,
            token: self.token,
            next_id: self.next_id,
        };
        (self.stream, session)
    }
}
