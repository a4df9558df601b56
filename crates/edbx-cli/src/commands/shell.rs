//! `edbx shell`: a REPL over one connection. Each line is an `edbx` command without the
//! connection flags (the shell's connection is set when it starts); history is kept between
//! sessions; Tab completes commands, their subcommands and their flags.

use std::path::PathBuf;

use clap::{CommandFactory, FromArgMatches, Parser};
use rustyline::completion::{Completer, Pair};
use rustyline::error::ReadlineError;
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::history::FileHistory;
use rustyline::validate::Validator;
use rustyline::{Editor, Helper};
use tokio::runtime::Runtime;

use super::Ctx;
use crate::cli::{Command, OutArgs, ShellArgs};
use crate::exit::{Exit, Failure, Outcome, command_path};
use crate::output::Output;

const BUILTINS: &[&str] = &["exit", "quit"];

/// One line of the shell: a command and its output format.
#[derive(Debug, Parser)]
#[command(name = "edbx", no_binary_name = true, disable_version_flag = true)]
struct ShellLine {
    #[command(flatten)]
    out: OutArgs,
    #[command(subcommand)]
    command: Command,
}

/// Tab completion from the CLI definition.
struct ShellHelper {
    definition: clap::Command,
}

impl ShellHelper {
    /// Candidates for the word at the end of `words` (the words before it select the command).
    fn candidates(&self, before: &[&str], word: &str) -> Vec<String> {
        let mut command = &self.definition;
        for w in before.iter().filter(|w| !w.starts_with('-')) {
            match command.find_subcommand(w) {
                Some(sub) => command = sub,
                None => break,
            }
        }
        let mut found: Vec<String> = if word.starts_with('-') {
            command
                .get_arguments()
                .filter_map(|a| a.get_long())
                .map(|long| format!("--{long}"))
                .collect()
        } else {
            let mut names: Vec<String> = command
                .get_subcommands()
                .flat_map(|s| std::iter::once(s.get_name()).chain(s.get_visible_aliases()))
                .map(str::to_owned)
                .collect();
            if before.is_empty() {
                names.extend(BUILTINS.iter().map(|b| (*b).to_owned()));
            }
            names
        };
        found.retain(|c| c.starts_with(word));
        found.sort();
        found.dedup();
        found
    }
}

impl Completer for ShellHelper {
    type Candidate = Pair;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _ctx: &rustyline::Context<'_>,
    ) -> rustyline::Result<(usize, Vec<Pair>)> {
        let head = &line[..pos];
        let start = head.rfind(char::is_whitespace).map_or(0, |i| i + 1);
        let before: Vec<&str> = head[..start].split_whitespace().collect();
        let candidates = self
            .candidates(&before, &head[start..])
            .into_iter()
            .map(|word| Pair {
                // A completed word is followed by a space, ready for the next one.
                replacement: format!("{word} "),
                display: word,
            })
            .collect();
        Ok((start, candidates))
    }
}

impl Hinter for ShellHelper {
    type Hint = String;
}
impl Highlighter for ShellHelper {}
impl Validator for ShellHelper {}
impl Helper for ShellHelper {}

/// `$EDBX_HISTORY` (empty: no history), else `$XDG_STATE_HOME/edbx/history`, else
/// `~/.local/state/edbx/history`.
fn history_path() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("EDBX_HISTORY") {
        return (!path.is_empty()).then(|| PathBuf::from(path));
    }
    let base = match std::env::var_os("XDG_STATE_HOME").filter(|p| !p.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(std::env::var_os("HOME").filter(|p| !p.is_empty())?)
            .join(".local")
            .join("state"),
    };
    Some(base.join("edbx").join("history"))
}

/// Creates the history file readable by its owner only (it holds payloads).
fn prepare_history(path: &std::path::Path) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.append(true).create(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path).map(drop)
}

/// Runs the shell; its exit code is that of the last command that failed (0 if none did), so a
/// script piped into it learns that something went wrong.
pub fn shell(args: &ShellArgs, runtime: &Runtime, ctx: &mut Ctx) -> Outcome<Exit> {
    let client = runtime.block_on(ctx.client())?;
    eprintln!(
        "connected to {} ({}); `help` lists the commands, `help COMMAND` explains one, Ctrl-D \
         leaves",
        ctx.settings.address(),
        if client.is_encrypted() {
            "Noise-encrypted"
        } else {
            "plaintext"
        }
    );
    let config = rustyline::Config::builder()
        .auto_add_history(true)
        .max_history_size(10_000)
        .map_err(|e| Failure::new(Exit::Internal, e.to_string()))?
        .history_ignore_space(true)
        .build();
    let mut editor: Editor<ShellHelper, FileHistory> = Editor::with_config(config)
        .map_err(|e| Failure::new(Exit::Internal, format!("cannot start the line editor: {e}")))?;
    editor.set_helper(Some(ShellHelper {
        definition: ShellLine::command(),
    }));
    let history = history_path().filter(|path| prepare_history(path).is_ok());
    if let Some(path) = &history {
        // An empty or unreadable history is no reason not to start.
        let _ = editor.load_history(path);
    }
    let prompt = format!("edbx {}> ", ctx.settings.address());
    let mut failed = Exit::Ok;
    loop {
        let line = match editor.readline(&prompt) {
            Ok(line) => line,
            Err(ReadlineError::Interrupted) => continue,
            Err(ReadlineError::Eof) => break,
            Err(e) => return Err(Failure::new(Exit::Internal, format!("reading a line: {e}"))),
        };
        let Some(words) = shlex::split(&line) else {
            eprintln!("edbx: unbalanced quotes");
            continue;
        };
        match words.first().map(String::as_str) {
            None => continue,
            Some("exit" | "quit" | "\\q") => break,
            Some(_) => {}
        }
        let parsed = match ShellLine::command()
            .try_get_matches_from(&words)
            .and_then(|matches| Ok((ShellLine::from_arg_matches(&matches)?, matches)))
        {
            Ok(parsed) => parsed,
            Err(e) => {
                // Help and usage errors alike: print them and carry on; a usage error counts
                // as a failed command (help, printed to stdout, does not).
                let _ = e.print();
                if e.use_stderr() {
                    failed = Exit::Usage;
                    if args.stop_on_error {
                        break;
                    }
                }
                continue;
            }
        };
        let (parsed, matches) = parsed;
        ctx.out = Output::new(parsed.out.output);
        let result = runtime.block_on(async {
            tokio::select! {
                result = super::run(&parsed.command, ctx) => Some(result),
                _ = tokio::signal::ctrl_c() => None,
            }
        });
        let flushed = ctx.out.flush();
        let result = result.map(|r| r.and_then(|exit| flushed.map(|()| exit).map_err(Into::into)));
        let exit = match result {
            None => {
                eprintln!("edbx: interrupted");
                Exit::Interrupted
            }
            Some(Ok(Exit::Ok)) => Exit::Ok,
            Some(Ok(exit)) => {
                eprintln!("edbx: exit {}", exit as u8);
                exit
            }
            Some(Err(failure)) => {
                let exit = failure.exit;
                if !failure.message.is_empty() {
                    eprintln!("{}", failure.for_command(&command_path(&matches)));
                }
                exit
            }
        };
        if exit != Exit::Ok {
            failed = exit;
            if args.stop_on_error {
                break;
            }
        }
    }
    if let Some(path) = &history {
        let _ = editor.save_history(path);
    }
    Ok(failed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn completion_follows_the_cli_definition() {
        let helper = ShellHelper {
            definition: ShellLine::command(),
        };
        assert_eq!(helper.candidates(&[], "ap"), ["apply"]);
        assert!(helper.candidates(&[], "ex").contains(&"exit".to_owned()));
        assert!(helper.candidates(&[], "ex").contains(&"export".to_owned()));
        assert_eq!(helper.candidates(&["snapshots"], "c"), ["create"]);
        assert_eq!(helper.candidates(&["tenant"], "quota-s"), ["quota-set"]);
        assert!(
            helper
                .candidates(&["events", "orders", "o1"], "--fo")
                .contains(&"--follow".to_owned())
        );
    }

    #[test]
    fn a_shell_line_cannot_change_the_connection() {
        assert!(ShellLine::try_parse_from(["get", "t", "1", "--host", "elsewhere"]).is_err());
        let line = ShellLine::try_parse_from(["get", "t", "1", "-o", "ndjson"]).unwrap();
        assert!(matches!(
            line.command,
            Command::Op(crate::cli::Op::Get { .. })
        ));
    }
}
