//! The subcommands that talk to a server, each in its own file.

mod audit;
mod export;
mod import;
mod listing;
mod ops;
mod ping;
pub mod shell;
mod subscribe;
mod ui;

use std::time::Instant;

use edbx::Client;

use crate::cli::Command;
use crate::connect::Settings;
use crate::exit::{Exit, Failure, Outcome};
use crate::output::Output;

/// What a command runs with: the output, and a client connected on first use (the shell keeps
/// one for all its commands).
pub struct Ctx {
    pub out: Output,
    pub settings: Settings,
    pub verbose: u8,
    client: Option<Client>,
}

impl Ctx {
    pub fn new(out: Output, settings: Settings, verbose: u8) -> Self {
        Self {
            out,
            settings,
            verbose,
            client: None,
        }
    }

    /// A note on stderr with `-v`.
    pub fn note(&self, text: impl AsRef<str>) {
        if self.verbose > 0 {
            eprintln!("edbx: {}", text.as_ref());
        }
    }

    /// The client, connecting on first use.
    pub async fn client(&mut self) -> Outcome<Client> {
        if let Some(client) = &self.client {
            return Ok(client.clone());
        }
        let started = Instant::now();
        self.note(format!(
            "connecting to {} (tenant {}, {}, token from {}, timeout {:?})",
            self.settings.address(),
            self.settings
                .config
                .get_tenant_id()
                .unwrap_or("(server default)"),
            if self.settings.config.get_noise() {
                "Noise"
            } else {
                "plaintext requested"
            },
            self.settings.token_source,
            self.settings.config.get_request_timeout()
        ));
        let client = Client::connect(self.settings.config.clone())
            .await
            .map_err(|e| {
                let failure = Failure::from(e);
                let address = self.settings.address();
                if failure.message.contains(&address) {
                    failure
                } else {
                    Failure {
                        message: format!("{} (server {address})", failure.message),
                        ..failure
                    }
                }
            })?;
        self.note(format!(
            "connected in {:.1} ms ({})",
            started.elapsed().as_secs_f64() * 1e3,
            if client.is_encrypted() {
                "Noise-encrypted"
            } else {
                "plaintext"
            }
        ));
        self.client = Some(client.clone());
        Ok(client)
    }
}

/// Adds a line's note and metadata to an event write.
pub fn annotate<'a, T>(
    mut call: edbx::EventWrite<'a, T>,
    note: Option<&str>,
    metadata: Option<&impl serde::Serialize>,
) -> edbx::EventWrite<'a, T> {
    if let Some(note) = note {
        call = call.note(note);
    }
    if let Some(metadata) = metadata {
        call = call.metadata(metadata);
    }
    call
}

/// Runs one command against the server; returns the exit code of a run that completed.
pub async fn run(command: &Command, ctx: &mut Ctx) -> Outcome<Exit> {
    match command {
        Command::Op(op) => ops::run(op, ctx).await,
        Command::List(args) => listing::list(args, ctx).await,
        Command::Events(args) => listing::events(args, ctx).await,
        Command::Ping { count } => ping::ping(*count, ctx).await,
        Command::Audit => audit::audit(ctx).await,
        Command::Import(args) => import::import(args, ctx).await,
        Command::Export(args) => export::export(args, ctx).await,
        Command::Subscribe(args) => subscribe::subscribe(args, ctx).await,
        Command::Ui(args) => ui::ui(args, ctx).await,
        Command::Shell(_) => Err(Failure::usage(
            "the shell cannot be started from inside itself",
        )),
        Command::Profile(_) | Command::Completions { .. } | Command::Man => Err(Failure::usage(
            "this command does not talk to a server; run it outside the shell",
        )),
    }
}
