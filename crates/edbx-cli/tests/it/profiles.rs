//! Connection settings: profiles in a 0600 file, flags over variables over the profile, and
//! tokens from files or stdin that are never printed.

use std::os::unix::fs::PermissionsExt;

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
    // Piped, the listing is NDJSON (one profile a line); `-o json` makes it one array.
    let list = Run::of(
        env.bare().args(["profile", "list"]).output(),
        &["profile list"],
    )
    .ok();
    let rows = list.ndjson();
    let named = |name: &str| {
        rows.iter()
            .find(|row| row["name"] == name)
            .unwrap_or_else(|| panic!("no profile {name}: {}", list.stdout))
            .clone()
    };
    assert_eq!(named("local")["current"], true);
    assert_eq!(named("stored")["current"], false);
    assert_eq!(named("stored")["token"], "stored");
    assert_eq!(named("stored")["port"], 1);
    assert!(!list.stdout.contains(&token[..40]), "{}", list.stdout);
    let as_json = Run::of(
        env.bare().args(["profile", "list", "-o", "json"]).output(),
        &["profile list -o json"],
    )
    .ok();
    assert_eq!(as_json.json().as_array().map(Vec::len), Some(rows.len()));

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
    let current: Vec<_> = list
        .ndjson()
        .into_iter()
        .filter(|row| row["current"] == true)
        .map(|row| row["name"].clone())
        .collect();
    assert_eq!(current, ["stored"], "{}", list.stdout);
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

/// One connection setting, a value that works and one that does not.
struct Setting {
    name: &'static str,
    flag: &'static str,
    var: &'static str,
    /// The profile's line for the bad value.
    profile_line: String,
    good: String,
    bad: String,
    /// The exit code when the bad value is used (0: it is not checked, only reported).
    bad_exit: i32,
}

#[test]
fn every_setting_flags_beat_variables_beat_the_profile() {
    let env = Env::start();
    let token = env.server.token().to_owned();
    let port = env.server.port().to_string();
    let settings = [
        Setting {
            name: "host",
            flag: "--host",
            var: "EVENTDBX_HOST",
            profile_line: "host = \"127.0.0.2\"".into(),
            good: "127.0.0.1".into(),
            bad: "127.0.0.2".into(),
            bad_exit: 4,
        },
        Setting {
            name: "port",
            flag: "--port",
            var: "EVENTDBX_PORT",
            profile_line: "port = 1".into(),
            good: port.clone(),
            bad: "1".into(),
            bad_exit: 4,
        },
        Setting {
            name: "tenant",
            flag: "--tenant",
            var: "EVENTDBX_TENANT_ID",
            profile_line: "tenant = \"not-my-tenant\"".into(),
            good: env.server.tenant().into(),
            bad: "not-my-tenant".into(),
            bad_exit: 0,
        },
        Setting {
            name: "token",
            flag: "--token",
            var: "EVENTDBX_TOKEN",
            profile_line: "token = \"stale-token\"".into(),
            good: token.clone(),
            bad: "stale-token".into(),
            bad_exit: 5,
        },
    ];
    let good_env = [
        ("EVENTDBX_HOST", "127.0.0.1".to_owned()),
        ("EVENTDBX_PORT", port.clone()),
        ("EVENTDBX_TENANT_ID", env.server.tenant().to_owned()),
        ("EVENTDBX_TOKEN", token.clone()),
    ];
    let config = env.path("config.toml");
    for setting in &settings {
        std::fs::write(
            &config,
            format!("current = \"p\"\n[profiles.p]\n{}\n", setting.profile_line),
        )
        .unwrap();
        // Every other setting comes (good) from the environment; this one from `sources`.
        let ping = |var: Option<&str>, flag: Option<&str>, profile: bool| {
            let mut command = env.bare();
            for (name, value) in &good_env {
                if *name != setting.var {
                    command.env(name, value);
                }
            }
            if let Some(value) = var {
                command.env(setting.var, value);
            }
            if !profile {
                command.env("EDBX_CONFIG", env.path("no-config.toml"));
            }
            if let Some(value) = flag {
                command.args([setting.flag, value]);
            }
            command.args(["ping", "--count", "1", "--timeout", "5"]);
            let what = format!(
                "{}: variable {var:?}, flag {flag:?}, profile {profile}",
                setting.name
            );
            Run::of(command.output(), &[&what])
        };
        let (good, bad) = (Some(setting.good.as_str()), Some(setting.bad.as_str()));
        // Which value a run used: a bad host, port or token fails with its exit code; the
        // tenant (which a single-tenant server does not check) is in ping's report.
        let used = |run: Run| -> &str {
            if setting.bad_exit == 0 {
                let run = run.ok();
                let tenant = run.json()["tenant"].as_str().unwrap().to_owned();
                assert!(tenant == setting.good || tenant == setting.bad, "{tenant}");
                if tenant == setting.good {
                    "good"
                } else {
                    "bad"
                }
            } else if run.code == 0 {
                "good"
            } else {
                run.code(setting.bad_exit);
                "bad"
            }
        };
        let name = setting.name;
        // Each source alone is used (so the pairs below are not vacuous).
        assert_eq!(
            used(ping(bad, None, false)),
            "bad",
            "{name}: variable alone"
        );
        assert_eq!(used(ping(None, bad, false)), "bad", "{name}: flag alone");
        assert_eq!(used(ping(None, None, true)), "bad", "{name}: profile alone");
        // flag over variable, both ways.
        assert_eq!(
            used(ping(bad, good, false)),
            "good",
            "{name}: flag over variable"
        );
        assert_eq!(
            used(ping(good, bad, false)),
            "bad",
            "{name}: flag over variable"
        );
        // variable over profile.
        assert_eq!(
            used(ping(good, None, true)),
            "good",
            "{name}: variable over profile"
        );
        // flag over profile, and over both.
        assert_eq!(
            used(ping(None, good, true)),
            "good",
            "{name}: flag over profile"
        );
        assert_eq!(
            used(ping(bad, good, true)),
            "good",
            "{name}: flag over both"
        );
        // An empty variable or flag is refused, not taken over the profile's value.
        for (var, flag) in [(Some(""), None), (None, Some(""))] {
            let refused = ping(var, flag, true).code(2);
            assert!(
                refused.stderr.contains("empty") || refused.stderr.contains("a value is required"),
                "{name}: {}",
                refused.stderr
            );
        }
    }

    // The token flags: each beats EVENTDBX_TOKEN (and a stale one there is not used), and the
    // environment's beats the profile's. Only one token flag may be given.
    let token_file = env.path("token");
    std::fs::write(&token_file, format!("{token}\n")).unwrap();
    std::fs::set_permissions(&token_file, PermissionsExt::from_mode(0o600)).unwrap();
    let stale_file = env.path("stale");
    std::fs::write(&stale_file, "stale-token\n").unwrap();
    std::fs::set_permissions(&stale_file, PermissionsExt::from_mode(0o600)).unwrap();
    let base = || {
        let mut command = env.cmd();
        command.env("EDBX_CONFIG", env.path("no-config.toml"));
        command
    };
    let file_ok = Run::of(
        base()
            .env("EVENTDBX_TOKEN", "stale-token")
            .args(["--token-file", token_file.to_str().unwrap(), "ping"])
            .output(),
        &["EVENTDBX_TOKEN=stale --token-file good ping"],
    )
    .ok();
    assert!(
        !file_ok.stderr.contains("warning"),
        "a 0600 token file draws no warning: {}",
        file_ok.stderr
    );
    Run::of(
        base()
            .args(["--token-file", stale_file.to_str().unwrap(), "ping"])
            .output(),
        &["EVENTDBX_TOKEN=good --token-file stale ping"],
    )
    .code(5);
    let mut stdin = base();
    stdin.env("EVENTDBX_TOKEN", "stale-token");
    run_with_stdin(stdin, &["--token-stdin", "ping"], &format!("{token}\n")).ok();
    run_with_stdin(base(), &["--token-stdin", "ping"], "stale-token\n").code(5);
    let verbose = Run::of(base().args(["-v", "ping"]).output(), &["-v ping"]).ok();
    assert!(
        verbose.stderr.contains("token from EVENTDBX_TOKEN"),
        "{}",
        verbose.stderr
    );
    let path = token_file.to_str().unwrap();
    for pair in [
        vec!["--token", "x", "--token-file", path],
        vec!["--token", "x", "--token-stdin"],
        vec!["--token-file", path, "--token-stdin"],
    ] {
        let both = Run::of(base().args(&pair).arg("ping").output(), &pair).code(2);
        assert!(
            both.stderr.contains("cannot be used with"),
            "{}",
            both.stderr
        );
    }

    // A token file other users can read is used, with a warning that says how to fix it.
    std::fs::set_permissions(&token_file, PermissionsExt::from_mode(0o644)).unwrap();
    let shared = Run::of(
        base()
            .args(["--token-file", token_file.to_str().unwrap(), "ping"])
            .output(),
        &["--token-file (0644) ping"],
    )
    .ok();
    assert!(
        shared.stderr.contains("can be read by other users") && shared.stderr.contains("chmod 600"),
        "{}",
        shared.stderr
    );

    // Plaintext: --noise beats EVENTDBX_NO_NOISE, which beats the profile (as -v reports it).
    std::fs::write(&config, "current = \"p\"\n[profiles.p]\nno_noise = true\n").unwrap();
    let security = |var: Option<&str>, flag: Option<&str>| {
        let mut command = env.cmd();
        if let Some(value) = var {
            command.env("EVENTDBX_NO_NOISE", value);
        }
        if let Some(flag) = flag {
            command.arg(flag);
        }
        let run = Run::of(command.args(["-v", "ping"]).output(), &["-v ping"]).ok();
        run.stderr.contains("plaintext requested")
    };
    assert!(security(None, None), "the profile asks for plaintext");
    assert!(!security(Some("0"), None), "the variable beats the profile");
    assert!(!security(None, Some("--noise")), "a flag beats the profile");
    std::fs::write(&config, "current = \"p\"\n[profiles.p]\nno_noise = false\n").unwrap();
    assert!(security(Some("1"), None), "the variable beats the profile");
    assert!(
        !security(Some("1"), Some("--noise")),
        "a flag beats the variable"
    );
    assert!(
        security(Some("0"), Some("--no-noise")),
        "a flag beats the variable"
    );

    // The timeout (no variable): the flag beats the profile, as -v reports it. (Not by racing
    // a tiny timeout against a loopback handshake: the timer's granularity lets it win.)
    std::fs::write(&config, "current = \"p\"\n[profiles.p]\ntimeout = 7.5\n").unwrap();
    let timeout = |flag: Option<&str>| {
        let mut command = env.cmd();
        if let Some(seconds) = flag {
            command.args(["--timeout", seconds]);
        }
        let run = Run::of(command.args(["-v", "ping"]).output(), &["-v ping"]).ok();
        run.stderr
            .lines()
            .find(|line| line.contains("connecting to"))
            .unwrap_or_else(|| panic!("no connecting note: {}", run.stderr))
            .to_owned()
    };
    assert!(
        timeout(None).contains("timeout 7.5s"),
        "the profile's timeout"
    );
    assert!(
        timeout(Some("10")).contains("timeout 10s"),
        "the flag beats the profile"
    );

    // The profile: --profile beats EDBX_PROFILE.
    std::fs::write(
        &config,
        format!("[profiles.bad]\nport = 1\n[profiles.good]\nport = {port}\n"),
    )
    .unwrap();
    let mut command = env.cmd();
    command
        .env_remove("EVENTDBX_PORT")
        .env("EDBX_PROFILE", "bad");
    Run::of(
        command.args(["ping", "--timeout", "5"]).output(),
        &["EDBX_PROFILE=bad ping"],
    )
    .code(4);
    let mut command = env.cmd();
    command
        .env_remove("EVENTDBX_PORT")
        .env("EDBX_PROFILE", "bad");
    Run::of(
        command.args(["--profile", "good", "ping"]).output(),
        &["EDBX_PROFILE=bad --profile good ping"],
    )
    .ok();
}
