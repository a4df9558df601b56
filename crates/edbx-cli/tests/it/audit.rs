//! `edbx audit` against servers set up in different ways.

use serde_json::Value;

use crate::common::{Env, Run, ServerOptions};

fn finding<'a>(findings: &'a [Value], check: &str) -> &'a Value {
    findings
        .iter()
        .find(|f| f["check"] == check)
        .unwrap_or_else(|| panic!("no {check:?} finding in {findings:?}"))
}

#[test]
fn audit_of_a_default_server() {
    let env = Env::start();
    let run = env.run(&["audit"]).code(7);
    let findings = run.ndjson();
    let open = finding(&findings, "unauthenticated commands");
    assert_eq!(open["severity"], "serious");
    assert!(
        open["finding"]
            .as_str()
            .unwrap()
            .contains("eventdbx version 3.19.4"),
        "{open}"
    );
    assert!(
        open["advice"].as_str().unwrap().contains("loopback"),
        "{open}"
    );
    assert_eq!(finding(&findings, "token")["severity"], "info");
    let plaintext = finding(&findings, "plaintext");
    assert_eq!(plaintext["severity"], "info");
    assert!(
        plaintext["finding"]
            .as_str()
            .unwrap()
            .contains("refuses plaintext")
    );
    // Serious findings come first.
    assert_eq!(findings[0]["severity"], "serious");
    assert!(run.stderr.contains("1 serious"), "{}", run.stderr);
    // Read-only: nothing was written.
    assert!(env.client().list().page().unwrap().items.is_empty());

    // Without a token it still checks what needs none.
    let bare = Run::of(
        env.bare()
            .args(["audit", "--port", &env.server.port().to_string()])
            .output(),
        &["audit (no token)"],
    )
    .code(7);
    let findings = bare.ndjson();
    assert_eq!(
        finding(&findings, "unauthenticated commands")["severity"],
        "serious"
    );
    assert!(
        finding(&findings, "token")["finding"]
            .as_str()
            .unwrap()
            .contains("no token")
    );

    // A refused token is reported.
    let refused = env.run(&["audit", "--token", "not-a-token"]).code(7);
    let token = finding(&refused.ndjson(), "token").clone();
    assert_eq!(token["severity"], "warning");
    assert!(
        token["finding"]
            .as_str()
            .unwrap()
            .contains("refused the token"),
        "{token}"
    );
}

#[test]
fn audit_of_a_server_that_allows_plaintext() {
    let env = Env::with(ServerOptions::default().no_noise(true));
    let findings = env.run(&["audit", "-o", "json"]).code(7).json();
    let findings = findings.as_array().unwrap();
    let plaintext = finding(findings, "plaintext");
    assert_eq!(
        plaintext["severity"], "warning",
        "loopback: a warning, not serious"
    );
    assert!(
        plaintext["advice"]
            .as_str()
            .unwrap()
            .contains("no_noise = false")
    );
}
