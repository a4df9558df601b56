//! `edbx audit` against servers set up in different ways.

use serde_json::Value;

use crate::common::{Env, Run, ServerOptions};

fn finding<'a>(findings: &'a [Value], check: &str) -> &'a Value {
    findings
        .iter()
        .find(|f| f["check"] == check)
        .unwrap_or_else(|| panic!("no {check:?} finding in {findings:?}"))
}

fn text<'a>(finding: &'a Value, key: &str) -> &'a str {
    finding[key].as_str().unwrap_or_default()
}

#[test]
fn audit_of_a_server_bound_to_loopback_as_the_readme_says() {
    // The test kit binds the control port to 127.0.0.1, as the README advises.
    let env = Env::start();
    let run = env.run(&["audit"]).ok();
    let findings = run.ndjson();
    let open = finding(&findings, "unauthenticated commands");
    // Only this machine can reach it: a warning, not "serious", and no advice to do what is
    // already done.
    assert_eq!(open["severity"], "warning", "{open}");
    assert!(
        text(open, "finding").contains("eventdbx version 3.19.4"),
        "{open}"
    );
    assert!(text(open, "finding").contains("loopback only"), "{open}");
    assert!(!text(open, "advice").contains("bind_addr"), "{open}");
    assert_eq!(finding(&findings, "token")["severity"], "info");
    let plaintext = finding(&findings, "plaintext");
    assert_eq!(plaintext["severity"], "info");
    assert!(text(plaintext, "finding").contains("refuses plaintext"));
    assert!(!run.stderr.contains("serious"), "{}", run.stderr);
    // Read-only: nothing was written.
    assert!(env.client().list().page().unwrap().items.is_empty());

    // Every output format: a JSON array, and a table that shows every finding in full.
    let array = env.run(&["audit", "-o", "json"]).ok().json();
    assert_eq!(array.as_array().unwrap().len(), findings.len());
    let table = env.run(&["audit", "-o", "table"]).ok().stdout;
    let mut lines = table.lines();
    let header = lines.next().unwrap();
    assert!(
        header.starts_with("SEVERITY") && header.contains("CHECK") && header.contains("FINDING"),
        "{table}"
    );
    assert!(serde_json::from_str::<Value>(&table).is_err(), "{table}");
    for f in &findings {
        assert!(table.contains(text(f, "finding")), "{table}");
        assert!(
            table.contains(&format!("→ {}", text(f, "advice"))),
            "{table}"
        );
    }

    // Without a token it still checks what needs none.
    let bare = Run::of(
        env.bare()
            .args(["audit", "--port", &env.server.port().to_string()])
            .output(),
        &["audit (no token)"],
    )
    .ok();
    let findings = bare.ndjson();
    assert_eq!(
        finding(&findings, "unauthenticated commands")["severity"],
        "warning"
    );
    assert!(text(finding(&findings, "token"), "finding").contains("no token"));

    // A refused token is reported.
    let refused = env.run(&["audit", "--token", "not-a-token"]).ok();
    let token = finding(&refused.ndjson(), "token").clone();
    assert_eq!(token["severity"], "warning");
    assert!(
        text(&token, "finding").contains("refused the token"),
        "{token}"
    );
}

#[test]
fn audit_of_a_control_port_bound_to_every_interface_is_serious_with_its_real_address() {
    let mut env = Env::start();
    let port = env.server.port();
    env.server.stop().unwrap();
    let config = env.server.config_path();
    let toml = std::fs::read_to_string(&config).unwrap();
    let local = format!("\"127.0.0.1:{port}\"");
    assert!(toml.contains(&local), "{toml}");
    std::fs::write(
        &config,
        toml.replace(&local, &format!("\"0.0.0.0:{port}\"")),
    )
    .unwrap();
    env.server.restart().unwrap();

    let run = env.run(&["audit"]).code(7);
    let findings = run.ndjson();
    let open = finding(&findings, "unauthenticated commands");
    assert_eq!(open["severity"], "serious", "{open}");
    assert!(
        text(open, "finding").contains(&format!("0.0.0.0:{port} (every interface)")),
        "{open}"
    );
    assert!(
        text(open, "advice").contains(&format!("bind_addr = \"127.0.0.1:{port}\"")),
        "the advice names this server's port: {open}"
    );
    assert_eq!(
        findings[0]["severity"], "serious",
        "serious findings come first"
    );
    assert_eq!(
        finding(&findings, "token in the hello")["severity"],
        "warning"
    );
    assert!(run.stderr.contains("1 serious"), "{}", run.stderr);
}

#[test]
fn audit_of_what_is_not_a_reachable_control_port_is_a_connection_failure() {
    let env = Env::start();
    // Nothing listening: exit 4, like every command that cannot reach the server.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let free = listener.local_addr().unwrap().port().to_string();
    drop(listener);
    let unreachable = env.run(&["audit", "--port", &free]).code(4);
    assert!(
        unreachable
            .stderr
            .contains(&format!("cannot reach 127.0.0.1:{free}")),
        "{}",
        unreachable.stderr
    );
    assert!(unreachable.stdout.is_empty(), "{}", unreachable.stdout);
    // The server's HTTP port: said plainly.
    let http = env.server.http_port().to_string();
    let wrong = env.run(&["audit", "--port", &http]).code(4);
    assert!(
        wrong.stderr.contains(&format!(
            "127.0.0.1:{http} is not an EventDBX control port (it answered like an HTTP server)"
        )),
        "{}",
        wrong.stderr
    );
}

#[test]
fn audit_of_a_server_that_allows_plaintext() {
    let env = Env::with(ServerOptions::default().no_noise(true));
    let findings = env.run(&["audit", "-o", "json"]).ok().json();
    let findings = findings.as_array().unwrap();
    let plaintext = finding(findings, "plaintext");
    assert_eq!(
        plaintext["severity"], "warning",
        "loopback: a warning, not serious"
    );
    assert!(text(plaintext, "advice").contains("no_noise = false"));
}
