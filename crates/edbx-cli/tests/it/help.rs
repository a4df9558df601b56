//! `--help`, the man page and the completions come from the CLI definition.

use std::io::Read;
use std::process::{Command, Stdio};

use crate::common::{EDBX, Run};

#[test]
fn help_shows_examples_and_exit_codes() {
    let help = Run::of(Command::new(EDBX).arg("--help").output(), &["--help"]).ok();
    assert!(help.stdout.contains("Examples:"), "{}", help.stdout);
    assert!(
        help.stdout.contains("edbx import backup.ndjson"),
        "{}",
        help.stdout
    );
    assert!(help.stdout.contains("Exit codes:"), "{}", help.stdout);
    for code in ["  0  done", "  6  a write was sent", "130  interrupted"] {
        assert!(help.stdout.contains(code), "{code}: {}", help.stdout);
    }
    let import = Run::of(
        Command::new(EDBX).args(["import", "--help"]).output(),
        &["import --help"],
    )
    .ok();
    assert!(import.stdout.contains("--resume"), "{}", import.stdout);
}

#[test]
fn man_page_and_completions() {
    let man = Run::of(Command::new(EDBX).arg("man").output(), &["man"]).ok();
    assert!(
        man.stdout.contains(".TH edbx 1"),
        "{}",
        &man.stdout[..200.min(man.stdout.len())]
    );
    assert!(man.stdout.contains("import"));
    // Commands as they are typed, nested ones too; no pointers to pages that do not exist.
    for command in [
        "edbx snapshots create",
        "edbx tenant quota\\-set",
        "edbx ping",
    ] {
        assert!(man.stdout.contains(command), "{command}: {}", man.stdout);
    }
    assert!(!man.stdout.contains("(1)"), "{}", man.stdout);
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let script = Run::of(
            Command::new(EDBX).args(["completions", shell]).output(),
            &["completions", shell],
        )
        .ok();
        for word in ["snapshots", "--follow", "--resume"] {
            assert!(
                script.stdout.contains(word),
                "{shell} completion lacks {word}"
            );
        }
    }
}

#[test]
fn a_reader_that_stops_early_is_not_an_error() {
    // `edbx completions bash | head -1`: the pipe closes while edbx writes.
    let mut child = Command::new(EDBX)
        .args(["completions", "bash"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = [0u8; 16];
    child
        .stdout
        .as_mut()
        .unwrap()
        .read_exact(&mut first)
        .unwrap();
    drop(child.stdout.take());
    let run = Run::of(child.wait_with_output(), &["completions bash | head"]);
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
    assert_eq!(run.code, 0, "{}", run.stderr);
}

#[test]
fn a_commands_help_shows_its_flags_first_and_names_what_exists() {
    let get = Run::of(
        Command::new(EDBX).args(["events", "--help"]).output(),
        &["events --help"],
    )
    .ok();
    // The command's own flags, then the connection flags under their heading.
    let own = get
        .stdout
        .find("--follow")
        .expect("--follow in events --help");
    let heading = get
        .stdout
        .find("Connection (every command):")
        .unwrap_or_else(|| panic!("{}", get.stdout));
    let host = get.stdout.find("--host").unwrap();
    let output = get.stdout.find("--output").unwrap();
    assert!(
        own < heading && output < heading && heading < host,
        "{}",
        get.stdout
    );

    let top = Run::of(Command::new(EDBX).arg("--help").output(), &["--help"]).ok();
    assert!(
        top.stdout.contains("Snapshots: create, list, get"),
        "{}",
        top.stdout
    );
    assert!(top.stdout.contains("[alias: status]"), "{}", top.stdout);
    for sub in ["create", "list", "get"] {
        Run::of(
            Command::new(EDBX)
                .args(["snapshots", sub, "--help"])
                .output(),
            &["snapshots", sub, "--help"],
        )
        .ok();
    }
}

#[test]
fn help_that_cannot_be_written_is_a_failure() {
    // `edbx --help > /dev/full`: exit 1 and a message, as for any output that cannot be written.
    let full = std::fs::File::options()
        .write(true)
        .open("/dev/full")
        .expect("/dev/full");
    let run = Run::of(
        Command::new(EDBX)
            .arg("--help")
            .stdout(full)
            .stderr(Stdio::piped())
            .output(),
        &["--help > /dev/full"],
    );
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("cannot write"), "{}", run.stderr);
}
