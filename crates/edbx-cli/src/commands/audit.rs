//! `edbx audit`: the server seen from outside, as an attacker would see it. Read-only: the only
//! command it can make the server run is a harmless `dbx --version`.

use std::net::IpAddr;
use std::time::Duration;

use edbx_wire_free::{cli_version_request, hello_response_summary};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::Ctx;
use crate::exit::{Exit, Outcome};
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

pub async fn audit(ctx: &mut Ctx) -> Outcome<Exit> {
    let address = ctx.settings.address();
    let host = ctx.settings.config.get_host().to_owned();
    let remote = !loopback(&host);
    let mut findings = Vec::new();

    // 1. Does the control port run commands for a peer that sent no token?
    match exchange(&address, &cli_version_request()).await {
        Ok(answer) => {
            let text = String::from_utf8_lossy(&answer);
            if let Some(at) = text.find("eventdbx version") {
                let version: String = text[at..].chars().take_while(|c| !c.is_control()).collect();
                findings.push(Finding {
                    severity: Severity::Serious,
                    check: "unauthenticated commands",
                    finding: format!(
                        "the control port ran `dbx --version` for a peer that sent no token \
                         (answered \"{version}\"): anyone who can reach {address} can run dbx \
                         commands, including minting an admin token"
                    ),
                    advice: "bind the control port to loopback ([socket] bind_addr = \
                             \"127.0.0.1:6363\" in the server's config.toml) or firewall it, and \
                             reach it through a tunnel; a server that fixes this would refuse \
                             messages without a token"
                        .into(),
                });
            } else {
                findings.push(Finding {
                    severity: Severity::Info,
                    check: "unauthenticated commands",
                    finding: "the control port did not run a command sent without a token".into(),
                    advice: "nothing to do".into(),
                });
            }
        }
        Err(e) => {
            findings.push(Finding {
                severity: Severity::Serious,
                check: "reachable",
                finding: format!("cannot reach {address}: {e}"),
                advice: "check the address, or that the server runs (`edbx ping`)".into(),
            });
            return report(ctx, findings);
        }
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
                                    severity: if remote {
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
                            advice: "is this an EventDBX control port?".into(),
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
        severity: if remote {
            Severity::Warning
        } else {
            Severity::Info
        },
        check: "token in the hello",
        finding: "the protocol sends the token in clear text in the hello, before Noise starts"
            .into(),
        advice: if remote {
            format!(
                "{host} is not this machine: use the control port over a private network or a \
                 tunnel (ssh -L, WireGuard)"
            )
        } else {
            "loopback: nothing crosses a network".into()
        },
    });
    report(ctx, findings)
}

fn report(ctx: &mut Ctx, mut findings: Vec<Finding>) -> Outcome<Exit> {
    findings.sort_by_key(|f| std::cmp::Reverse(f.severity));
    ctx.out.begin(Shape::Other);
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

/// The two bare messages of the audit, encoded here: they are not part of the control protocol
/// proper.
mod edbx_wire_free {
    /// A `CliRequest { args = ["--version"] }` as a bare Cap'n Proto message: what the port's
    /// command-line proxy reads as "run `dbx --version`".
    pub fn cli_version_request() -> Vec<u8> {
        let text = b"--version\0";
        let text_words = text.len().div_ceil(8);
        let segment_words = 3 + text_words;
        let mut out = Vec::with_capacity(8 + segment_words * 8);
        out.extend_from_slice(&0u32.to_le_bytes()); // one segment
        out.extend_from_slice(&(segment_words as u32).to_le_bytes());
        // Root: a struct with no data and one pointer, right after this pointer.
        out.extend_from_slice(&(1u64 << 48).to_le_bytes());
        // args: a list of one pointer, right after.
        out.extend_from_slice(&(1u64 | (6 << 32) | (1 << 35)).to_le_bytes());
        // args[0]: a byte list (text with its NUL), right after.
        out.extend_from_slice(&(1u64 | (2 << 32) | ((text.len() as u64) << 35)).to_le_bytes());
        out.extend_from_slice(text);
        out.resize(8 + segment_words * 8, 0);
        out
    }

    /// `(accepted, message, no_noise)` of a hello response.
    pub fn hello_response_summary(bytes: &[u8]) -> Option<(bool, String, bool)> {
        let len = edbx_wire::stream_message_len(bytes, edbx_wire::MAX_FRAME_LEN).ok()??;
        let response = edbx_wire::HelloResponse::parse(bytes.get(..len)?).ok()?;
        Some((response.accepted, response.message, response.no_noise))
    }

    #[cfg(test)]
    mod tests {
        #[test]
        fn the_cli_request_is_one_well_formed_capnp_message() {
            let bytes = super::cli_version_request();
            // The whole message, as the server's stream reader measures it.
            assert_eq!(
                edbx_wire::stream_message_len(&bytes, 1 << 20).unwrap(),
                Some(bytes.len())
            );
            let message = capnp::serialize::read_message(
                &mut bytes.as_slice(),
                capnp::message::ReaderOptions::new(),
            )
            .unwrap();
            let root: capnp::any_pointer::Reader<'_> = message.get_root().unwrap();
            // Root struct pointer (1 word) + a one-pointer list (1) + "--version\0" (2 words):
            // traversing it finds exactly these words, and no capabilities.
            let size = root.target_size().unwrap();
            assert_eq!((size.word_count, size.cap_count), (4, 0));
        }
    }
}
