//! Connection settings: profiles in a 0600 file, flags over variables over the profile, and
//! tokens from files or stdin that are never printed.

use crate::common::{Env, Run, mode, run_with_stdin};

#[test]
fn profiles_tokens_and_precedence() {
    let env = Env::start();
    let token = env.server.token().to_owned();
    let token_file = env.path("token");
    std::fs::write(&token_file, format!("{token}\n")).unwrap();
    let port = env.server.port().to_string();
    let config = env.path("config.toml");

    // No settings at all: a usage error that says where a token can come from.
    Run::of(env.bare().args(["ping"]).output(), &["ping"]).code(2);

    // A profile with a token file: the file holds its path, not the token.
    let added = Run::of(
        env.bare()
            .args([
                "profile",
                "add",
                "local",
                "--host",
                "127.0.0.1",
                "--port",
                &port,
            ])
            .args([
                "--tenant",
                env.server.tenant(),
                "--token-file",
                token_file.to_str().unwrap(),
            ])
            .output(),
        &["profile add local"],
    )
    .ok();
    assert!(added.stdout.contains("read from"), "{}", added.stdout);
    assert_eq!(mode(&config), 0o600);
    let text = std::fs::read_to_string(&config).unwrap();
    assert!(!text.contains(&token), "{text}");
    assert!(text.contains("token_file"), "{text}");

    // The first profile is the default: a command needs nothing else.
    let ping = Run::of(env.bare().args(["-v", "ping"]).output(), &["-v ping"]).ok();
    assert!(ping.stderr.contains("profile local"), "{}", ping.stderr);
    assert!(
        ping.stderr.contains("token from the file"),
        "{}",
        ping.stderr
    );
    assert!(!ping.stderr.contains(&token[..40]) && !ping.stdout.contains(&token[..40]));

    // A profile with the token itself, read from stdin: stored, never shown.
    run_with_stdin(
        env.bare(),
        &["profile", "add", "stored", "--port", "1", "--token-stdin"],
        &format!("{token}\n"),
    )
    .ok();
    assert_eq!(mode(&config), 0o600);
    let list = Run::of(
        env.bare().args(["profile", "list"]).output(),
        &["profile list"],
    )
    .ok();
    assert!(list.stdout.contains("* local"), "{}", list.stdout);
    assert!(list.stdout.contains("  stored"), "{}", list.stdout);
    assert!(list.stdout.contains("token stored"), "{}", list.stdout);
    assert!(!list.stdout.contains(&token[..40]), "{}", list.stdout);

    // Precedence: the profile says port 1; a flag or EVENTDBX_PORT wins over it, and a flag
    // over the variable.
    Run::of(
        env.bare()
            .args(["--profile", "stored", "ping", "--timeout", "2"])
            .output(),
        &["ping (port 1)"],
    )
    .code(4);
    Run::of(
        env.bare()
            .args(["--profile", "stored", "--port", &port, "ping"])
            .output(),
        &["ping --port"],
    )
    .ok();
    Run::of(
        env.bare()
            .env("EVENTDBX_PORT", &port)
            .args(["--profile", "stored", "ping"])
            .output(),
        &["EVENTDBX_PORT ping"],
    )
    .ok();
    Run::of(
        env.bare()
            .env("EVENTDBX_PORT", "1")
            .args(["--profile", "stored", "--port", &port, "ping"])
            .output(),
        &["EVENTDBX_PORT=1 ping --port"],
    )
    .ok();
    Run::of(
        env.bare()
            .env("EDBX_PROFILE", "stored")
            .args(["ping", "--timeout", "2"])
            .output(),
        &["EDBX_PROFILE=stored ping"],
    )
    .code(4);

    // The token from stdin for one command.
    run_with_stdin(
        env.bare(),
        &[
            "--profile",
            "stored",
            "--port",
            &port,
            "--token-stdin",
            "ping",
        ],
        &format!("{token}\n"),
    )
    .ok();
    // A flag's token beats the profile's: a bad one is refused.
    Run::of(
        env.bare().args(["--token", "not-a-token", "ping"]).output(),
        &["--token bad ping"],
    )
    .code(5);

    // `profile add` stores what its command line gives, never what the environment holds.
    Run::of(
        env.cmd()
            .args(["profile", "add", "from-env", "--tenant", "t-9"])
            .output(),
        &["profile add (EVENTDBX_* set)"],
    )
    .ok();
    let text = std::fs::read_to_string(&config).unwrap();
    let from_env = &text[text.find("[profiles.from-env]").unwrap()..];
    assert!(from_env.contains("tenant = \"t-9\""), "{from_env}");
    assert!(
        !from_env.contains("port") && !from_env.contains("token"),
        "{from_env}"
    );
    Run::of(
        env.bare().args(["profile", "remove", "from-env"]).output(),
        &["profile remove"],
    )
    .ok();

    // use, remove.
    Run::of(
        env.bare().args(["profile", "use", "stored"]).output(),
        &["profile use"],
    )
    .ok();
    let list = Run::of(
        env.bare().args(["profile", "list"]).output(),
        &["profile list"],
    )
    .ok();
    assert!(list.stdout.contains("* stored"), "{}", list.stdout);
    Run::of(
        env.bare().args(["profile", "remove", "stored"]).output(),
        &["profile remove"],
    )
    .ok();
    Run::of(
        env.bare().args(["profile", "remove", "stored"]).output(),
        &["profile remove again"],
    )
    .code(2);
    Run::of(
        env.bare().args(["profile", "use", "nope"]).output(),
        &["profile use nope"],
    )
    .code(2);
    Run::of(
        env.bare().args(["--profile", "nope", "ping"]).output(),
        &["--profile nope"],
    )
    .code(2);
    let list = Run::of(
        env.bare().args(["profile", "list"]).output(),
        &["profile list"],
    )
    .ok();
    assert!(!list.stdout.contains("stored"), "{}", list.stdout);
}
