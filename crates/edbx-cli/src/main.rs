//! `edbx`: every EventDBX operation from a shell, bulk import and export with progress, a REPL,
//! and a security audit. See `edbx --help`, `edbx man`, and the README's CLI tour.

// The binary needs no unsafe code (its tests do, for ptys and signals, so this is not the
// workspace lint, which would cover them too).
#![forbid(unsafe_code)]

mod cli;
mod commands;
mod connect;
mod event_line;
mod exit;
mod input;
mod man;
mod output;
mod profile;
mod progress;

use std::io::Write;
use std::process::ExitCode;

use clap::parser::ValueSource;
use clap::{ArgMatches, CommandFactory, FromArgMatches};

use crate::cli::{Cli, Command, ProfileCommand};
use crate::commands::Ctx;
use crate::exit::{Exit, Failure, Outcome};
use crate::output::{Output, Shape};

fn main() -> ExitCode {
    let matches = match Cli::command().try_get_matches() {
        Ok(matches) => matches,
        Err(e) => return clap_exit(&e),
    };
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => return clap_exit(&e),
    };
    if cli.verbose > 0 {
        log_events(cli.verbose);
    }
    let exit = match run(cli, &matches) {
        Ok(exit) => exit,
        Err(mut failure) => {
            let code = failure.exit;
            if !failure.message.is_empty() {
                if failure.hint.is_none() {
                    failure.hint = default_hint(failure.exit).map(str::to_owned);
                }
                eprintln!("{}", failure.for_command(&exit::command_path(&matches)));
            }
            code
        }
    };
    ExitCode::from(exit as u8)
}

/// Prints what clap has to say (`--help`, `--version`, a usage error) and gives its exit code;
/// help or a version that cannot be written (a full disk) is exit 1, as for any output, and a
/// reader that went away (`edbx --help | head -1`) is not an error.
fn clap_exit(e: &clap::Error) -> ExitCode {
    let printed = e.print().and_then(|()| std::io::stdout().flush());
    match printed {
        Err(err) if e.exit_code() == 0 && err.kind() != std::io::ErrorKind::BrokenPipe => {
            eprintln!("edbx: cannot write the output: {err}");
            ExitCode::from(Exit::Internal as u8)
        }
        _ => ExitCode::from(e.exit_code() as u8),
    }
}

/// With `-v`, the client's `tracing` events (reconnects, resends, cursor repairs) go to stderr;
/// `-vv` adds traces.
fn log_events(verbose: u8) {
    use tracing_subscriber::filter::LevelFilter;
    let level = if verbose > 1 {
        LevelFilter::TRACE
    } else {
        LevelFilter::DEBUG
    };
    tracing_subscriber::fmt()
        .with_max_level(level)
        .with_writer(std::io::stderr)
        .without_time()
        .init();
}

/// Whether Ctrl-C is watched for here, so that a streaming command writes what it has buffered
/// and exits 130. Import (which stops after its writes in flight), `events --follow` (which
/// ends its listing), `subscribe` (which saves its checkpoint) and `ui` (which stops serving)
/// watch for it themselves; a single call is ended by the signal itself (130 in the shell); the
/// shell watches per line.
fn watches_ctrl_c(command: &Command) -> bool {
    match command {
        Command::List(_) | Command::Export(_) | Command::Ping { .. } | Command::Audit => true,
        Command::Events(args) => !args.follow,
        Command::Op(_)
        | Command::Ui(_)
        | Command::Import(_)
        | Command::Subscribe(_)
        | Command::Shell(_)
        | Command::Profile(_)
        | Command::Completions { .. }
        | Command::Man => false,
    }
}

/// What to do next, for failures that did not say.
fn default_hint(exit: Exit) -> Option<&'static str> {
    match exit {
        Exit::Usage => Some("see `edbx COMMAND --help`"),
        Exit::Internal => Some(
            "if the output was going to a file or a pipe, check that it can be written; \
             otherwise please report this with the command that caused it",
        ),
        _ => None,
    }
}

fn run(cli: Cli, matches: &ArgMatches) -> Outcome<Exit> {
    match &cli.command {
        Command::Profile(command) => return profile_command(command, &cli, matches),
        // Generated in memory first: the generators panic on a closed pipe (`… | head`).
        Command::Completions { shell } => {
            let mut script = Vec::new();
            clap_complete::generate(*shell, &mut Cli::command(), "edbx", &mut script);
            return print_all(&script);
        }
        Command::Man => return print_all(&man::page()?),
        _ => {}
    }
    // The audit works without a token (it then skips the checks that need a session).
    let token_required = !matches!(cli.command, Command::Audit);
    let settings = connect::settings(&cli.conn, token_required)?;
    let mut ctx = Ctx::new(Output::new(cli.out.output), settings, cli.verbose);
    if let Some(profile) = &ctx.settings.profile {
        ctx.note(format!("profile {profile}"));
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::new(Exit::Internal, format!("cannot start the runtime: {e}")))?;
    let outcome = match cli.command {
        Command::Shell(args) => commands::shell::shell(&args, &runtime, &mut ctx),
        _ if watches_ctrl_c(&cli.command) => runtime.block_on(async {
            tokio::select! {
                biased;
                _ = tokio::signal::ctrl_c() => Err(Failure::new(Exit::Interrupted, String::new())),
                result = commands::run(&cli.command, &mut ctx) => result,
            }
        }),
        _ => runtime.block_on(commands::run(&cli.command, &mut ctx)),
    };
    // Output is block-buffered when not a terminal: what is left goes out before a failure is
    // reported, and a failure to write it (a full disk) is one.
    let flushed = ctx.out.flush();
    let exit = outcome?;
    flushed?;
    Ok(exit)
}

fn print_all(bytes: &[u8]) -> Outcome<Exit> {
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(bytes)?;
    stdout.flush()?;
    Ok(Exit::Ok)
}

/// Whether argument `id` was given on the command line (not taken from the environment).
fn given(matches: &ArgMatches, id: &str) -> bool {
    let mut level = Some(matches);
    while let Some(m) = level {
        if let Ok(Some(source)) = m.try_get_raw(id).map(|raw| raw.and(m.value_source(id))) {
            return source == ValueSource::CommandLine;
        }
        level = m.subcommand().map(|(_, sub)| sub);
    }
    false
}

fn profile_command(command: &ProfileCommand, cli: &Cli, matches: &ArgMatches) -> Outcome<Exit> {
    let mut out = Output::new(cli.out.output);
    match command {
        ProfileCommand::Add { name } => {
            // Only what is given here is stored: values from EVENTDBX_* are this shell's, and
            // a token from the environment must not end up in a file unasked.
            let mut conn = cli.conn.clone();
            if !given(matches, "host") {
                conn.host = None;
            }
            if !given(matches, "port") {
                conn.port = None;
            }
            if !given(matches, "tenant") {
                conn.tenant = None;
            }
            if !given(matches, "token") {
                conn.token = None;
            }
            let (token, token_file) = connect::token_from_flags(&conn)?;
            if conn.token.is_some() {
                eprintln!(
                    "edbx: note: a token given with --token stays in your shell history; \
                     --token-file or --token-stdin avoid that"
                );
            }
            let stored_token = token.is_some();
            let profile = profile::Profile {
                host: conn.host.clone(),
                port: conn.port,
                tenant: conn.tenant.clone(),
                token,
                token_file: token_file.clone(),
                no_noise: if conn.no_noise {
                    Some(true)
                } else if conn.noise {
                    Some(false)
                } else {
                    None
                },
                timeout: conn.timeout,
            };
            let path = profile::add(name, &profile)?;
            let token_note = match (&token_file, stored_token) {
                (Some(file), _) => format!("the token is read from {} at each run", file.display()),
                (None, true) => "the token is stored in the file (readable by you only)".to_owned(),
                (None, false) => "no token stored".to_owned(),
            };
            out.line(&format!(
                "profile {name} saved in {}; {token_note}",
                path.display()
            ))?;
        }
        ProfileCommand::List => {
            let profiles = profile::list()?;
            if profiles.is_empty() {
                eprintln!(
                    "edbx: no profiles in {}; `edbx profile add NAME` makes one",
                    profile::config_path()?.display()
                );
            }
            out.begin(Shape::Profiles);
            for row in &profiles {
                out.row(row)?;
            }
            out.end()?;
        }
        ProfileCommand::Use { name } => {
            profile::use_profile(name)?;
            out.line(&format!("profile {name} is now the default"))?;
        }
        ProfileCommand::Remove { name } => {
            profile::remove(name)?;
            out.line(&format!("profile {name} removed"))?;
        }
    }
    out.flush()?;
    Ok(Exit::Ok)
}
