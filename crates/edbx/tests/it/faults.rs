//! Faults injected between the client and the real server by a loopback proxy that corrupts the
//! server's bytes or cuts connections.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use crate::common::{ALL_MODES, TestServer, config, server};
use edbx::{Client, ErrorKind};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Forwards loopback connections to the server; can corrupt the next chunk the server sends.
struct Proxy {
    addr: SocketAddr,
    corrupt_next: Arc<AtomicBool>,
    accepted: Arc<AtomicUsize>,
}

impl Proxy {
    async fn start(upstream: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let corrupt_next = Arc::new(AtomicBool::new(false));
        let accepted = Arc::new(AtomicUsize::new(0));
        let (corrupt, count) = (corrupt_next.clone(), accepted.clone());
        tokio::spawn(async move {
            loop {
                let (client, _) = listener.accept().await.unwrap();
                count.fetch_add(1, Ordering::SeqCst);
                let server = TcpStream::connect(upstream).await.unwrap();
                let (mut client_rd, mut client_wr) = client.into_split();
                let (mut server_rd, mut server_wr) = server.into_split();
                tokio::spawn(async move {
                    let _ = tokio::io::copy(&mut client_rd, &mut server_wr).await;
                    let _ = server_wr.shutdown().await;
                });
                let corrupt = corrupt.clone();
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 64 * 1024];
                    loop {
                        let n = match server_rd.read(&mut buf).await {
                            Ok(0) | Err(_) => break,
                            Ok(n) => n,
                        };
                        // The server writes a frame's 4-byte header and its body separately; the
                        // last byte of any longer chunk lies in a ciphertext's tag.
                        if n > 4 && corrupt.swap(false, Ordering::SeqCst) {
                            buf[n - 1] ^= 0x55;
                        }
                        if client_wr.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                });
            }
        });
        Proxy {
            addr,
            corrupt_next,
            accepted,
        }
    }
}

/// A server, a proxy in front of it, a one-connection client through the proxy, and one
/// aggregate `doc/a` at version 1.
async fn proxied() -> (TestServer, Proxy, Client) {
    let server = server(ALL_MODES[0]);
    let proxy = Proxy::start(server.addr()).await;
    let client = Client::connect(
        config(&server)
            .host("127.0.0.1")
            .port(proxy.addr.port())
            .pool_size(1),
    )
    .await
    .unwrap();
    client
        .create("doc", "a", "created", &json!({"v": 1}))
        .await
        .unwrap();
    (server, proxy, client)
}

#[tokio::test]
async fn a_corrupted_reply_to_a_read_is_retried_on_a_fresh_connection() {
    let (_server, proxy, client) = proxied().await;

    proxy.corrupt_next.store(true, Ordering::SeqCst);
    let doc = client.get("doc", "a").await.unwrap().unwrap();
    assert_eq!(doc.aggregate_id, "a");
    assert_eq!(
        proxy.accepted.load(Ordering::SeqCst),
        2,
        "one reconnect after the bad bytes"
    );
    assert_eq!(client.get("doc", "a").await.unwrap().unwrap().version, 1);
}

#[tokio::test]
async fn a_corrupted_reply_to_a_write_is_outcome_unknown_and_the_write_landed_once() {
    let (_server, proxy, client) = proxied().await;

    proxy.corrupt_next.store(true, Ordering::SeqCst);
    let err = client
        .apply("doc", "a", "edited", &json!({"v": 2}))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::OutcomeUnknown, "{err}");
    assert!(!err.is_retryable());
    // Reading back (on a new connection) shows the write was applied, exactly once.
    let events = client.events("doc", "a").await.unwrap();
    assert_eq!(
        events.items.iter().map(|e| e.version).collect::<Vec<_>>(),
        [1, 2]
    );
}
