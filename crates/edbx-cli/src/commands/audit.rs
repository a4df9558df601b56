//! `edbx audit`: the server seen from outside, as an attacker would see it. Read-only: the only
//! command it can make the server run is a harmless `dbx --version`.

use std::net::IpAddr;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::Ctx;
use crate::exit::{Exit, Failure, Outcome};
use crate::output::Shape;

const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Severity {
    Info,
    Warning,
    Serious,
}

struct Finding {
    severity: Severity,
    check: &'static str,
    finding: String,
    advice: String,
}

impl Finding {
    fn json(&self) -> Value {
        json!({
            "severity": match self.severity {
                Severity::Info => "info",
                Severity::Warning => "warning",
                Severity::Serious => "serious",
            },
            "check": self.check,
            "finding": self.finding,
            "advice": self.advice,
        })
    }
}

/// Whether `host` names this machine only.
fn loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Sends `message` on a fresh connection and returns what the server answers before it stops
/// talking (or closes), at most 64 KiB.
async fn exchange(address: &str, message: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut stream = tokio::time::timeout(PROBE_TIMEOUT, TcpStream::connect(address))
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "connect timed out"))??;
    stream.set_nodelay(true)?;
    stream.write_all(message).await?;
    let mut answer = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        match tokio::time::timeout(Duration::from_millis(1500), stream.read(&mut chunk)).await {
            Ok(Ok(0)) | Err(_) => break,
            Ok(Ok(n)) => {
                answer.extend_from_slice(&chunk[..n]);
                if answer.len() > 64 * 1024 {
                    break;
                }
            }
            Ok(Err(e)) if answer.is_empty() => return Err(e),
            Ok(Err(_)) => break,
        }
    }
    Ok(answer)
}

/// Where the control port listens, as far as this machine can tell.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Bind {
    /// Only on loopback addresses.
    Loopback,
    /// On an address other machines can reach (named).
    Beyond(String),
    /// Could not tell.
    Unknown,
}

/// The addresses sockets listen on at `port`, from `/proc/net/tcp{,6}` (Linux); `None` where
/// that cannot be read.
fn listening_addresses(port: u16) -> Option<Vec<IpAddr>> {
    let mut found = Vec::new();
    let mut read_any = false;
    for (file, v6) in [("/proc/net/tcp", false), ("/proc/net/tcp6", true)] {
        let Ok(table) = std::fs::read_to_string(file) else {
            continue;
        };
        read_any = true;
        for line in table.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            // sl local_address rem_address st …; st 0A is LISTEN.
            let (Some(local), Some(&"0A")) = (fields.get(1), fields.get(3)) else {
                continue;
            };
            let Some((ip, p)) = local.split_once(':') else {
                continue;
            };
            if u16::from_str_radix(p, 16).ok() != Some(port) {
                continue;
            }
            if let Some(ip) = proc_ip(ip, v6) {
                found.push(ip);
            }
        }
    }
    read_any.then_some(found)
}

/// An address as /proc/net/tcp writes it: 32-bit words in host (little-endian) order.
fn proc_ip(hex: &str, v6: bool) -> Option<IpAddr> {
    let words: Option<Vec<u32>> = (0..hex.len() / 8)
        .map(|i| u32::from_str_radix(hex.get(i * 8..i * 8 + 8)?, 16).ok())
        .collect();
    let words = words?;
    let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
    if v6 {
        let bytes: [u8; 16] = bytes.try_into().ok()?;
        let ip = std::net::Ipv6Addr::from(bytes);
        Some(match ip.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(ip),
        })
    } else {
        let bytes: [u8; 4] = bytes.try_into().ok()?;
        Some(IpAddr::V4(std::net::Ipv4Addr::from(bytes)))
    }
}

/// Where the control port at loopback `port` is bound: the listening sockets if the system
/// shows them, else whether it answers at this machine's network address.
async fn bind_of_local_port(port: u16) -> Bind {
    if let Some(addresses) = listening_addresses(port).filter(|a| !a.is_empty()) {
        return match addresses.iter().find(|ip| !ip.is_loopback()) {
            Some(ip) if ip.is_unspecified() => Bind::Beyond(format!(
                "{} (every interface)",
                std::net::SocketAddr::new(*ip, port)
            )),
            Some(ip) => Bind::Beyond(std::net::SocketAddr::new(*ip, port).to_string()),
            None => Bind::Loopback,
        };
    }
    // This machine's address on its default route (no packet is sent), then a connection.
    let Some(own) = std::net::UdpSocket::bind("0.0.0.0:0")
        .and_then(|s| s.connect("192.0.2.1:9").and(s.local_addr()))
        .ok()
        .map(|a| a.ip())
        .filter(|ip| !ip.is_loopback() && !ip.is_unspecified())
    else {
        return Bind::Unknown;
    };
    let target = std::net::SocketAddr::new(own, port);
    match tokio::time::timeout(Duration::from_secs(2), TcpStream::connect(target)).await {
        Ok(Ok(_)) => Bind::Beyond(target.to_string()),
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => Bind::Loopback,
        _ => Bind::Unknown,
    }
}

/// What a well-known other protocol's first bytes look like (the engine says the same when a
/// session is opened).
fn foreign_protocol(bytes: &[u8]) -> Option<&'static str> {
    match bytes {
        [b'H', b'T', b'T', b'P', b'/', ..] => Some("an HTTP server"),
        [0x14..=0x17, 0x03, 0x00..=0x04, ..] => Some("a TLS server"),
        [b'S', b'S', b'H', b'-', ..] => Some("an SSH server"),
        _ => None,
    }
}

pub async fn audit(ctx: &mut Ctx) -> Outcome<Exit> {
    let address = ctx.settings.address();
    let host = ctx.settings.config.get_host().to_owned();
    let port = ctx.settings.config.get_port();
    let remote = !loopback(&host);
    let mut findings = Vec::new();
    let loopback_bind = format!("[socket] bind_addr = \"127.0.0.1:{port}\"");

    // 1. Does the control port run commands for a peer that sent no token?
    let answer = exchange(&address, &edbx_wire::cli_request(&["--version"]))
        .await
        .map_err(|e| {
            Failure::new(Exit::Connection, format!("cannot reach {address}: {e}"))
                .hint("check the address, or that the server runs (`edbx ping`)")
        })?;
    // Where it listens: reached from elsewhere, or (from this machine) as the system shows.
    let bind = if remote {
        Bind::Beyond(address.clone())
    } else {
        bind_of_local_port(port).await
    };
    // Whether sessions may cross a network.
    let exposed = matches!(bind, Bind::Beyond(_));
    if let Some(kind) = foreign_protocol(&answer) {
        return Err(Failure::new(
            Exit::Connection,
            format!("{address} is not an EventDBX control port (it answered like {kind})"),
        )
        .hint("point --port at the server's control port (6363 unless its config.toml says otherwise)"));
    }
    let text = String::from_utf8_lossy(&answer);
    if let Some(at) = text.find("eventdbx version") {
        let version: String = text[at..].chars().take_while(|c| !c.is_control()).collect();
        let ran = format!(
            "the control port ran `dbx --version` for a peer that sent no token (answered \
             \"{version}\")"
        );
        findings.push(match bind.clone() {
            Bind::Beyond(bound) if remote => Finding {
                severity: Severity::Serious,
                check: "unauthenticated commands",
                finding: format!(
                    "{ran}, reached over the network at {bound}: anyone who can reach it can run \
                     dbx commands, including minting an admin token"
                ),
                advice: format!(
                    "on the server, bind the control port to loopback ({loopback_bind} in its \
                     config.toml) or firewall it, and reach it through a tunnel (ssh -L \
                     {port}:127.0.0.1:{port} {host})"
                ),
            },
            Bind::Beyond(bound) => Finding {
                severity: Severity::Serious,
                check: "unauthenticated commands",
                finding: format!(
                    "{ran}, and it listens on {bound}: anyone who can reach this machine on port \
                     {port} can run dbx commands, including minting an admin token"
                ),
                advice: format!(
                    "bind the control port to loopback ({loopback_bind} in the server's \
                     config.toml) or firewall port {port}, and restart the server"
                ),
            },
            Bind::Loopback => Finding {
                severity: Severity::Warning,
                check: "unauthenticated commands",
                finding: format!(
                    "{ran}; it listens on loopback only, so only users and programs on this \
                     machine can do that — but any of them can run dbx commands, including \
                     minting an admin token"
                ),
                advice: "keep it bound to loopback, and run the server where only trusted users \
                         have accounts (its own machine, VM or container)"
                    .into(),
            },
            Bind::Unknown => Finding {
                severity: Severity::Warning,
                check: "unauthenticated commands",
                finding: format!(
                    "{ran}; from here it cannot be told whether it also listens beyond loopback"
                ),
                advice: format!(
                    "check that the server's config.toml has {loopback_bind}: then only this \
                     machine can reach it"
                ),
            },
        });
    } else {
        findings.push(Finding {
            severity: Severity::Info,
            check: "unauthenticated commands",
            finding: "the control port did not run a command sent without a token".into(),
            advice: "nothing to do".into(),
        });
    }

    // 2. Plaintext: does the server agree to a session without Noise?
    let token = ctx
        .settings
        .config
        .get_token()
        .map(|t| t.expose().to_owned());
    let tenant = ctx.settings.config.get_tenant_id().unwrap_or("").to_owned();
    match token.as_deref() {
        None => findings.push(Finding {
            severity: Severity::Info,
            check: "token",
            finding: "no token given: the checks that need a session were skipped".into(),
            advice: "run the audit with a token to check plaintext and token acceptance".into(),
        }),
        Some(token) => {
            let hello = edbx_wire::ControlHello::new(token, &tenant)
                .map(|h| h.with_no_noise(true).to_bytes());
            match hello {
                Err(e) => findings.push(Finding {
                    severity: Severity::Warning,
                    check: "token",
                    finding: format!("the token cannot be sent: {e}"),
                    advice: "check the token".into(),
                }),
                Ok(hello) => match exchange(&address, &hello).await {
                    Ok(answer) => match hello_response_summary(&answer) {
                        Some((true, _, no_noise)) => {
                            findings.push(Finding {
                                severity: Severity::Info,
                                check: "token",
                                finding: if tenant.is_empty() {
                                    "the token is accepted from this address (default tenant)"
                                        .to_owned()
                                } else {
                                    format!(
                                        "the token is accepted from this address for tenant \
                                         {tenant}"
                                    )
                                },
                                advice: "nothing to do".into(),
                            });
                            if no_noise {
                                findings.push(Finding {
                                    severity: if exposed {
                                        Severity::Serious
                                    } else {
                                        Severity::Warning
                                    },
                                    check: "plaintext",
                                    finding: "the server agrees to plaintext sessions (no_noise = \
                                              true): requests, replies and tokens then cross the \
                                              network unencrypted"
                                        .into(),
                                    advice: "set no_noise = false in the server's config.toml \
                                             (`dbx config --noise`) and restart it"
                                        .into(),
                                });
                            } else {
                                findings.push(Finding {
                                    severity: Severity::Info,
                                    check: "plaintext",
                                    finding: "the server refuses plaintext sessions: every \
                                              session is Noise-encrypted"
                                        .into(),
                                    advice: "nothing to do".into(),
                                });
                            }
                        }
                        Some((false, message, _)) => findings.push(Finding {
                            severity: Severity::Warning,
                            check: "token",
                            finding: format!("the server refused the token: {message}"),
                            advice: "check the token and tenant (`dbx token generate`)".into(),
                        }),
                        None => findings.push(Finding {
                            severity: Severity::Warning,
                            check: "token",
                            finding: "the server did not answer the hello".into(),
                            advice: format!("is {address} an EventDBX control port?"),
                        }),
                    },
                    Err(e) => findings.push(Finding {
                        severity: Severity::Warning,
                        check: "token",
                        finding: format!("the hello failed: {e}"),
                        advice: "check the address".into(),
                    }),
                },
            }
        }
    }

    // 3. What the protocol itself exposes.
    findings.push(Finding {
        severity: if exposed {
            Severity::Warning
        } else {
            Severity::Info
        },
        check: "token in the hello",
        finding: "the protocol sends the token in clear text in the hello, before Noise starts"
            .into(),
        advice: match &bind {
            _ if remote => format!(
                "{host} is not this machine: use the control port over a private network or a \
                 tunnel (ssh -L {port}:127.0.0.1:{port} {host}, WireGuard)"
            ),
            Bind::Beyond(bound) => format!(
                "it listens on {bound}: clients on other machines send their token across the \
                 network; have them use a tunnel or a private network"
            ),
            _ => "loopback: nothing crosses a network".into(),
        },
    });
    report(ctx, findings)
}

fn report(ctx: &mut Ctx, mut findings: Vec<Finding>) -> Outcome<Exit> {
    findings.sort_by_key(|f| std::cmp::Reverse(f.severity));
    ctx.out.begin(Shape::Findings);
    for finding in &findings {
        ctx.out.row(&finding.json())?;
    }
    ctx.out.end()?;
    let serious = findings
        .iter()
        .filter(|f| f.severity == Severity::Serious)
        .count();
    if serious > 0 {
        eprintln!("edbx: audit: {serious} serious finding(s)");
        return Ok(Exit::CheckFailed);
    }
    Ok(Exit::Ok)
}

/// `(accepted, message, no_noise)` of a hello response.
fn hello_response_summary(bytes: &[u8]) -> Option<(bool, String, bool)> {
    let len = edbx_wire::stream_message_len(bytes, edbx_wire::MAX_FRAME_LEN).ok()??;
    let response = edbx_wire::HelloResponse::parse(bytes.get(..len)?).ok()?;
    Some((response.accepted, response.message, response.no_noise))
}
