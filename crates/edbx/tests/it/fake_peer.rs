//! What the real server never does, played by a scripted peer: downgrades, garbage, dropped
//! connections, mismatched replies.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use edbx::{Client, Config, ErrorKind, RetryOptions};
use edbx_wire::{
    ControlHello, FrameDecoder, GetAggregateReply, HelloResponse, MAX_FRAME_LEN, NoiseSession,
    Request, Response, decode_request, encode_frame, encode_response, stream_message_len,
};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const TOKEN: &str = "fake-token";

/// One accepted session of the fake server, after its hello.
pub(crate) struct Session {
    stream: TcpStream,
    decoder: FrameDecoder,
    noise: Option<NoiseSession>,
}

impl Session {
    /// Reads the hello and answers it; runs the Noise responder unless plaintext was granted.
    pub(crate) async fn accept(
        listener: &TcpListener,
        answer: HelloResponse,
    ) -> (Session, ControlHello) {
        let (mut stream, _) = listener.accept().await.unwrap();
        let mut buf = Vec::new();
        let hello_len = loop {
            let whole = stream_message_len(&buf, MAX_FRAME_LEN).unwrap();
            if let Some(len) = whole.filter(|len| buf.len() >= *len) {
                break len;
            }
            let mut chunk = [0u8; 512];
            let n = stream.read(&mut chunk).await.unwrap();
            assert!(n > 0, "client closed before its hello");
            buf.extend_from_slice(&chunk[..n]);
        };
        let hello = ControlHello::parse(&buf[..hello_len]).unwrap();
        stream.write_all(&answer.to_bytes()).await.unwrap();
        let mut session = Session {
            stream,
            decoder: FrameDecoder::new(),
            noise: None,
        };
        if answer.accepted && !answer.no_noise {
            let mut noise = NoiseSession::server_side(hello.token()).unwrap();
            let first = session.read_frame().await.expect("noise message 1");
            noise.read_message(&first).unwrap();
            let second = noise.write_message(&[]).unwrap();
            session
                .stream
                .write_all(&encode_frame(&second).unwrap())
                .await
                .unwrap();
            session.noise = Some(noise);
        }
        (session, hello)
    }

    async fn read_frame(&mut self) -> Option<Vec<u8>> {
        loop {
            if let Some(frame) = self.decoder.next_frame().unwrap() {
                return Some(frame);
            }
            let mut chunk = [0u8; 4096];
            let n = self.stream.read(&mut chunk).await.ok()?;
            if n == 0 {
                return None;
            }
            self.decoder.extend(&chunk[..n]);
        }
    }

    pub(crate) async fn read_request(&mut self) -> Option<(u64, Request)> {
        let frame = self.read_frame().await?;
        let message = match &mut self.noise {
            Some(noise) => noise.decrypt(&frame).unwrap(),
            None => frame,
        };
        let (id, _token, request) = decode_request(&message).unwrap();
        Some((id, request))
    }

    pub(crate) async fn reply(&mut self, id: u64, response: &Response) {
        let message = encode_response(id, response).unwrap();
        let frame = match &mut self.noise {
            Some(noise) => noise.encrypt_frame(&message).unwrap(),
            None => encode_frame(&message).unwrap(),
        };
        self.stream.write_all(&frame).await.unwrap();
    }
}

pub(crate) fn granted(no_noise: bool) -> HelloResponse {
    HelloResponse::new(true, "ok", no_noise)
}

fn found(id: &str) -> Response {
    Response::GetAggregate(GetAggregateReply::new(
        true,
        json!({"aggregate_type": "doc", "aggregate_id": id, "version": 1}).to_string(),
    ))
}

pub(crate) async fn listener() -> (TcpListener, SocketAddr) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    (listener, addr)
}

pub(crate) fn config(addr: SocketAddr) -> Config {
    Config::new()
        .host(addr.ip().to_string())
        .port(addr.port())
        .token(TOKEN)
}

#[tokio::test]
async fn a_plaintext_answer_to_a_noise_request_is_refused() {
    let (listener, addr) = listener().await;
    let server = tokio::spawn(async move {
        let (mut session, hello) = Session::accept(&listener, granted(true)).await;
        assert!(!hello.no_noise(), "the client asked for Noise");
        // The client must hang up without sending a single request in the clear.
        assert!(session.read_frame().await.is_none());
    });
    let err = Client::connect(config(addr)).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Handshake, "{err}");
    assert!(err.message().contains("plaintext"), "{err}");
    server.await.unwrap();
}

#[tokio::test]
async fn garbage_instead_of_a_hello_response_fails_cleanly() {
    let (listener, addr) = listener().await;
    let server = tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        let mut buf = [0u8; 1024];
        let _ = stream.read(&mut buf).await.unwrap();
        stream.write_all(&[0xff; 24]).await.unwrap();
    });
    let err = Client::connect(config(addr)).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Protocol, "{err:?}");
    assert!(
        err.message()
            .contains("is not an EventDBX control port (it answered with bytes that are not"),
        "{err}"
    );
    server.await.unwrap();
}

/// A peer that reads the hello, answers `answer` and hangs up.
async fn foreign_peer(answer: &'static [u8]) -> (tokio::task::JoinHandle<()>, SocketAddr) {
    let (listener, addr) = listener().await;
    let server = tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        let mut buf = [0u8; 1024];
        let _ = stream.read(&mut buf).await.unwrap();
        stream.write_all(answer).await.unwrap();
    });
    (server, addr)
}

#[tokio::test]
async fn an_http_server_is_named_as_such_not_a_bad_input() {
    let (server, addr) =
        foreign_peer(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
            .await;
    let err = Client::connect(config(addr)).await.unwrap_err();
    server.await.unwrap();
    // Not retried (the same peer would answer the same), not bad input, not a token problem.
    assert_eq!(err.kind(), ErrorKind::Protocol, "{err:?}");
    assert!(!err.is_retryable() && !err.is_invalid_input() && !err.is_auth());
    assert_eq!(
        err.message(),
        format!(
            "{addr} is not an EventDBX control port (it answered like an HTTP server: \
             \"HTTP/1.1 400 Bad Request\")"
        )
    );
}

#[tokio::test]
async fn a_tls_server_is_named_as_such() {
    // What a TLS server sends to a client that does not speak TLS: a fatal alert record
    // (decode_error), or, to a ClientHello-looking start, a ServerHello handshake record.
    for answer in [
        &[0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x32][..],
        &[
            0x16, 0x03, 0x03, 0x00, 0x31, 0x02, 0x00, 0x00, 0x2d, 0x03, 0x03,
        ][..],
    ] {
        let (server, addr) = foreign_peer(answer).await;
        let err = Client::connect(config(addr)).await.unwrap_err();
        server.await.unwrap();
        assert_eq!(err.kind(), ErrorKind::Protocol, "{err:?}");
        assert_eq!(
            err.message(),
            format!("{addr} is not an EventDBX control port (it answered like a TLS server)")
        );
    }
}

#[tokio::test]
async fn a_write_whose_connection_drops_is_outcome_unknown_and_never_resent() {
    let (listener, addr) = listener().await;
    let seen = Arc::new(AtomicUsize::new(0));
    let counter = seen.clone();
    let server = tokio::spawn(async move {
        // Read the write, then drop the connection without answering.
        let (mut session, _) = Session::accept(&listener, granted(false)).await;
        let (_, request) = session.read_request().await.unwrap();
        counter.fetch_add(1, Ordering::SeqCst);
        assert!(matches!(request, Request::AppendEvent(_)));
        drop(session);
        // Any further connection would be a resend: count what arrives for a while.
        loop {
            let (mut session, _) = Session::accept(&listener, granted(false)).await;
            while session.read_request().await.is_some() {
                counter.fetch_add(1, Ordering::SeqCst);
            }
        }
    });
    let client = Client::connect(config(addr)).await.unwrap();
    let err = client
        .apply("doc", "a", "edited", &json!({"v": 2}))
        // Without the pre-write read of the size check: this is about the write's own frame.
        .allow_unlistable(true)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::OutcomeUnknown, "{err}");
    assert!(err.outcome_unknown() && !err.is_retryable());
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert_eq!(
        seen.load(Ordering::SeqCst),
        1,
        "the write reached the server exactly once"
    );
    server.abort();
}

#[tokio::test]
async fn a_read_whose_connection_drops_is_retried_on_a_new_connection() {
    let (listener, addr) = listener().await;
    let server = tokio::spawn(async move {
        let (mut first, _) = Session::accept(&listener, granted(false)).await;
        let (_, request) = first.read_request().await.unwrap();
        assert!(matches!(request, Request::GetAggregate(_)));
        drop(first);
        let (mut second, _) = Session::accept(&listener, granted(false)).await;
        let (id, _) = second.read_request().await.unwrap();
        second.reply(id, &found("a")).await;
        // Keep the session open until the client is done.
        let _ = second.read_request().await;
    });
    let client = Client::connect(config(addr)).await.unwrap();
    let doc = client.get("doc", "a").await.unwrap().unwrap();
    assert_eq!(doc.aggregate_id, "a");
    drop(client);
    server.await.unwrap();
}

#[tokio::test]
async fn a_reply_with_the_wrong_id_closes_the_connection_instead_of_misdelivering() {
    let (listener, addr) = listener().await;
    let server = tokio::spawn(async move {
        let (mut session, _) = Session::accept(&listener, granted(false)).await;
        let (id, _) = session.read_request().await.unwrap();
        session.reply(id + 1000, &found("wrong")).await;
        let _ = session.read_request().await;
    });
    let client = Client::connect(config(addr).retry(RetryOptions::none()))
        .await
        .unwrap();
    let err = client.get("doc", "a").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Disconnected, "{err}");
    assert!(err.message().contains("reply"), "{err}");
    server.await.unwrap();
}

#[tokio::test]
async fn an_oversized_frame_header_is_refused_without_allocating_it() {
    let (listener, addr) = listener().await;
    let server = tokio::spawn(async move {
        let (mut session, _) = Session::accept(&listener, granted(false)).await;
        let _ = session.read_request().await.unwrap();
        session
            .stream
            .write_all(&0x0100_0000u32.to_be_bytes())
            .await
            .unwrap();
        let _ = session.read_request().await;
    });
    let client = Client::connect(config(addr).retry(RetryOptions::none()))
        .await
        .unwrap();
    let err = client.get("doc", "a").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Disconnected, "{err}");
    assert!(err.message().contains("exceeds"), "{err}");
    server.await.unwrap();
}

#[tokio::test]
async fn noise_sessions_work_end_to_end_with_the_fake_peer() {
    let (listener, addr) = listener().await;
    let server = tokio::spawn(async move {
        let (mut session, hello) = Session::accept(&listener, granted(false)).await;
        assert_eq!(hello.token(), TOKEN);
        assert!(session.noise.is_some());
        // Answer three pipelined requests in order.
        for _ in 0..3 {
            let (id, request) = session.read_request().await.unwrap();
            let Request::GetAggregate(get) = request else {
                panic!("unexpected {request:?}")
            };
            session.reply(id, &found(&get.aggregate_id)).await;
        }
    });
    let client = Client::connect(config(addr).pool_size(1)).await.unwrap();
    assert!(client.is_encrypted());
    let (a, b, c) = tokio::join!(
        client.get("doc", "a"),
        client.get("doc", "b"),
        client.get("doc", "c")
    );
    assert_eq!(a.unwrap().unwrap().aggregate_id, "a");
    assert_eq!(b.unwrap().unwrap().aggregate_id, "b");
    assert_eq!(c.unwrap().unwrap().aggregate_id, "c");
    server.await.unwrap();
}

#[tokio::test]
async fn a_peer_that_never_answers_the_hello_hits_the_handshake_timeout() {
    let (listener, addr) = listener().await;
    let server = tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        let mut buf = [0u8; 1024];
        // Read the hello, then say nothing until the client gives up.
        while stream.read(&mut buf).await.unwrap_or(0) > 0 {}
    });
    let started = std::time::Instant::now();
    let err = Client::connect(
        config(addr)
            .handshake_timeout(std::time::Duration::from_millis(200))
            .retry(RetryOptions::none()),
    )
    .await
    .unwrap_err();
    // A stalled handshake is not a refusal: retryable, and not a token problem.
    assert_eq!(err.kind(), ErrorKind::Connect, "{err}");
    assert!(err.is_retryable() && !err.is_auth(), "{err}");
    assert!(err.message().contains("took longer"), "{err}");
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    server.await.unwrap();
}

#[tokio::test]
async fn a_peer_that_resets_during_the_handshake_is_a_retryable_connect_error() {
    let (listener, addr) = listener().await;
    let server = tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        let mut buf = [0u8; 1024];
        let _ = stream.read(&mut buf).await;
        // Abort: an RST instead of an answer.
        socket2::SockRef::from(&stream)
            .set_linger(Some(std::time::Duration::ZERO))
            .unwrap();
    });
    let err = Client::connect(config(addr).retry(RetryOptions::none()))
        .await
        .unwrap_err();
    server.await.unwrap();
    assert_eq!(err.kind(), ErrorKind::Connect, "{err}");
    assert!(err.is_retryable() && !err.is_auth(), "{err}");
}

#[tokio::test]
async fn nothing_listening_is_a_retryable_connect_error() {
    let (listener, addr) = listener().await;
    drop(listener);
    let err = Client::connect(config(addr).retry(RetryOptions::none()))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Connect, "{err}");
    assert!(err.is_retryable() && err.is_disconnected());
    assert!(err.to_string().contains(&addr.port().to_string()), "{err}");
}

#[tokio::test]
async fn the_token_never_appears_in_debug_output() {
    let config = config("127.0.0.1:1".parse().unwrap());
    assert!(!format!("{config:?}").contains(TOKEN));
    let (listener, addr) = listener().await;
    let server = tokio::spawn(async move {
        let _session = Session::accept(&listener, granted(false)).await;
    });
    let client = Client::connect(self::config(addr)).await.unwrap();
    assert!(!format!("{client:?}").contains(TOKEN));
    let hello = ControlHello::new(TOKEN, "t").unwrap();
    assert!(!format!("{hello:?}").contains(TOKEN));
    server.await.unwrap();
}

/// The first connect follows the retry policy for a server that cannot be reached, and only
/// for that: each attempt here is reset by the peer, so all three are made; a peer that answers
/// with garbage is not asked again.
#[tokio::test]
async fn connect_retries_an_unreachable_server_per_the_policy_and_nothing_else() {
    let (resetting, addr) = listener().await;
    let accepted = Arc::new(AtomicUsize::new(0));
    let counter = accepted.clone();
    let server = tokio::spawn(async move {
        loop {
            let (stream, _) = resetting.accept().await.unwrap();
            socket2::SockRef::from(&stream)
                .set_linger(Some(std::time::Duration::ZERO))
                .unwrap();
            drop(stream);
            if counter.fetch_add(1, Ordering::SeqCst) + 1 == 3 {
                return;
            }
        }
    });
    let retry = RetryOptions::new(
        3,
        std::time::Duration::from_millis(20),
        std::time::Duration::from_millis(40),
    );
    let err = Client::connect(config(addr).retry(retry))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Connect, "{err}");
    server.await.unwrap();
    assert_eq!(accepted.load(Ordering::SeqCst), 3);

    let (listener, addr) = listener().await;
    let garbage = tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        let mut buf = [0u8; 1024];
        let _ = stream.read(&mut buf).await.unwrap();
        stream.write_all(&[0xff; 24]).await.unwrap();
        // A second attempt would be accepted here; the client must not make one.
        let again = tokio::time::timeout(std::time::Duration::from_millis(300), listener.accept());
        assert!(
            again.await.is_err(),
            "the client connected again after a protocol error"
        );
    });
    let err = Client::connect(config(addr).retry(retry))
        .await
        .unwrap_err();
    assert_ne!(err.kind(), ErrorKind::Connect, "{err}");
    garbage.await.unwrap();
}
