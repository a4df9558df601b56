//! A loopback TCP proxy in front of the real server that injects what the server cannot do by
//! itself: corrupted bytes, connections cut mid-stream, new connections held back, and
//! connections turned into black holes (open, forwarding nothing).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

pub struct Proxy {
    pub addr: SocketAddr,
    state: Arc<State>,
    cut: watch::Sender<u64>,
}

#[derive(Default)]
struct State {
    /// Connections accepted so far.
    accepted: AtomicUsize,
    /// XOR the last byte of the next server chunk longer than a frame header.
    corrupt_next: AtomicBool,
    /// Hold each new connection this long before connecting it upstream.
    delay_new_ms: AtomicU64,
    /// Connections numbered below this forward nothing any more (black holes).
    black_hole_below: AtomicUsize,
    /// Refuse new connections (accept, then close at once).
    refuse_new: AtomicBool,
}

/// A real server (Noise, verbose responses), a proxy in front of it, and a client connected
/// through the proxy with the test configuration changed by `tweak`.
pub async fn proxied_client(
    tweak: impl FnOnce(edbx::Config) -> edbx::Config,
) -> (edbx_testkit::TestServer, Proxy, edbx::Client) {
    let server = crate::common::server(crate::common::ALL_MODES[0]);
    let proxy = Proxy::start(server.addr()).await;
    let config = crate::common::config(&server)
        .host("127.0.0.1")
        .port(proxy.addr.port());
    let client = edbx::Client::connect(tweak(config)).await.unwrap();
    (server, proxy, client)
}

impl Proxy {
    pub async fn start(upstream: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(State::default());
        let (cut, cut_rx) = watch::channel(0u64);
        let shared = state.clone();
        tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    return;
                };
                let number = shared.accepted.fetch_add(1, Ordering::SeqCst);
                if shared.refuse_new.load(Ordering::SeqCst) {
                    drop(client);
                    continue;
                }
                let state = shared.clone();
                let cut = cut_rx.clone();
                tokio::spawn(async move {
                    let delay = state.delay_new_ms.load(Ordering::SeqCst);
                    if delay > 0 {
                        tokio::time::sleep(Duration::from_millis(delay)).await;
                    }
                    let Ok(server) = TcpStream::connect(upstream).await else {
                        return;
                    };
                    pump(client, server, number, state, cut).await;
                });
            }
        });
        Proxy { addr, state, cut }
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> usize {
        self.state.accepted.load(Ordering::SeqCst)
    }

    /// Corrupts the next reply chunk the server sends.
    pub fn corrupt_next(&self) {
        self.state.corrupt_next.store(true, Ordering::SeqCst);
    }

    /// Holds every new connection back this long before it reaches the server.
    pub fn delay_new(&self, delay: Duration) {
        self.state
            .delay_new_ms
            .store(delay.as_millis() as u64, Ordering::SeqCst);
    }

    /// Turns every connection open now into a black hole; later ones work.
    pub fn black_hole_open_connections(&self) {
        let accepted = self.accepted();
        self.state
            .black_hole_below
            .store(accepted, Ordering::SeqCst);
    }

    /// Accepts and closes new connections at once (`false` to stop).
    pub fn refuse_new(&self, refuse: bool) {
        self.state.refuse_new.store(refuse, Ordering::SeqCst);
    }

    /// Cuts every open connection (both directions, mid-stream).
    pub fn cut_all(&self) {
        self.cut.send_modify(|generation| *generation += 1);
    }
}

async fn pump(
    client: TcpStream,
    server: TcpStream,
    number: usize,
    state: Arc<State>,
    mut cut: watch::Receiver<u64>,
) {
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    cut.mark_unchanged();
    let (mut client_rd, mut client_wr) = client.into_split();
    let (mut server_rd, mut server_wr) = server.into_split();
    let black_hole = |state: &State| number < state.black_hole_below.load(Ordering::SeqCst);
    let mut up = [0u8; 64 * 1024];
    let mut down = [0u8; 64 * 1024];
    loop {
        tokio::select! {
            read = client_rd.read(&mut up) => match read {
                Ok(0) | Err(_) => return,
                Ok(n) if black_hole(&state) => { let _ = n; }
                Ok(n) => if server_wr.write_all(&up[..n]).await.is_err() { return },
            },
            read = server_rd.read(&mut down) => match read {
                Ok(0) | Err(_) => return,
                Ok(_) if black_hole(&state) => {}
                Ok(n) => {
                    // The server writes a frame's 4-byte header and its body separately; the
                    // last byte of any longer chunk lies in a ciphertext's tag.
                    if n > 4 && state.corrupt_next.swap(false, Ordering::SeqCst) {
                        down[n - 1] ^= 0x55;
                    }
                    if client_wr.write_all(&down[..n]).await.is_err() {
                        return;
                    }
                }
            },
            _ = cut.changed() => return,
        }
    }
}
