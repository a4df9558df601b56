//! The README's first command runs `examples/quickstart.rs`; run the compiled example the way a
//! user would, against servers in every mode and with the embedded server.

use std::path::PathBuf;
use std::process::Command;

use crate::common::{ALL_MODES, server};

const STEPS: [&str; 10] = [
    "create", "apply", "list", "events", "get", "select", "verify", "patch", "archive", "restore",
];

/// `cargo test` builds examples next to the test binaries: target/<profile>/examples/.
fn example_named(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().and_then(|deps| deps.parent()).unwrap();
    let path = profile_dir.join("examples").join(name);
    assert!(
        path.exists(),
        "the {name} example was not built at {}",
        path.display()
    );
    path
}

fn example() -> PathBuf {
    example_named("quickstart")
}

#[test]
fn the_order_service_example_runs_async_and_blocking() {
    let server = server(ALL_MODES[0]);
    let output = Command::new(example_named("order_service"))
        .env("EVENTDBX_HOST", server.host())
        .env("EVENTDBX_PORT", server.port().to_string())
        .env("EVENTDBX_TOKEN", server.token())
        .env("EVENTDBX_TENANT_ID", server.tenant())
        .env_remove("EVENTDBX_NO_NOISE")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "order_service failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("async: listed 100 orders"), "{stdout}");
    assert!(stdout.contains("blocking: created 100 orders"), "{stdout}");
    assert!(stdout.contains("order service: done"), "{stdout}");
}

fn run(envs: &[(&str, String)]) -> String {
    let mut command = Command::new(example());
    for var in [
        "EVENTDBX_HOST",
        "EVENTDBX_PORT",
        "EVENTDBX_TOKEN",
        "EVENTDBX_TENANT_ID",
        "EVENTDBX_NO_NOISE",
    ] {
        command.env_remove(var);
    }
    let output = command
        .envs(envs.iter().map(|(k, v)| (k, v)))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "quickstart failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    for step in STEPS {
        assert!(
            stdout
                .lines()
                .any(|l| l.trim_start().starts_with(&format!("{step}:"))),
            "step {step} missing from:\n{stdout}"
        );
    }
    stdout
}

#[test]
fn quickstart_runs_against_servers_named_by_the_environment() {
    for mode in ALL_MODES {
        let server = server(mode);
        let out = run(&[
            ("EVENTDBX_HOST", server.host().to_string()),
            ("EVENTDBX_PORT", server.port().to_string()),
            ("EVENTDBX_TOKEN", server.token().to_string()),
            ("EVENTDBX_TENANT_ID", server.tenant().to_string()),
            ("EVENTDBX_NO_NOISE", (!mode.noise).to_string()),
        ]);
        assert!(out.contains("Using the server from EVENTDBX_*"), "{out}");
        assert_eq!(out.contains("no echo"), !mode.verbose, "{mode:?}:\n{out}");
        // The session was plaintext only when asked for and allowed.
        assert_eq!(
            out.contains("Noise-encrypted session"),
            mode.noise,
            "{mode:?}:\n{out}"
        );
        let archived_line = out
            .lines()
            .find(|l| l.trim_start().starts_with("archive:"))
            .unwrap();
        if mode.verbose {
            assert!(archived_line.contains("archived=true"), "{archived_line}");
        }
    }
}

#[test]
fn quickstart_starts_its_own_server_when_none_is_configured() {
    let out = run(&[]);
    assert!(out.contains("starting a local EventDBX server"), "{out}");
    assert!(out.contains("verify:"), "{out}");
}
