//! `edbx subscribe`: every event of the store (or of some types) as it comes, one line each,
//! resumable from a checkpoint file. The engine's subscription does the work
//! (`edbx::Client::subscribe`); this file turns its events into lines and keeps the file.
//!
//! The file is saved only after the lines it covers are flushed to stdout: after each batch
//! (the events that arrived together, at most 1,000 lines), when idle, on Ctrl-C and at the
//! end. A process killed at any point, restarted with the same file, prints every event again
//! that it had not saved the checkpoint of — some lines twice, none lost.

use std::time::Duration;

use edbx::{CheckpointStore, FileCheckpointStore, Subscription};

use super::Ctx;
use crate::cli::{StartFrom, SubscribeArgs};
use crate::event_line::EventLine;
use crate::exit::{Exit, Failure, Outcome};
use crate::output::Shape;

/// Lines written before the checkpoint is saved, at most.
const BATCH: usize = 1_000;
/// How long to wait for another event before flushing what was written and saving.
const SETTLE: Duration = Duration::from_millis(50);

pub async fn subscribe(args: &SubscribeArgs, ctx: &mut Ctx) -> Outcome<Exit> {
    let mut store = args.checkpoint_file.as_ref().map(FileCheckpointStore::new);
    let stored = match store.as_mut() {
        Some(store) => store.load().map_err(|e| {
            Failure::usage(e.to_string()).hint("check the path and its permissions")
        })?,
        None => None,
    };
    let client = ctx.client().await?;
    let mut subscribe = client
        .subscribe()
        .aggregate_types(&args.aggregate_types)
        .until_caught_up(args.until_caught_up);
    subscribe = match (&stored, args.from) {
        (Some(checkpoint), _) => subscribe.from_checkpoint(checkpoint.as_str()),
        (None, StartFrom::Beginning) => subscribe.from_beginning(),
        (None, StartFrom::Now) => subscribe.from_now(),
    };
    let mut subscription = subscribe.stream().map_err(|e| {
        let checkpoint = e.kind() == edbx::ErrorKind::InvalidCheckpoint;
        let failure = Failure::from(e);
        match (&args.checkpoint_file, checkpoint) {
            (Some(path), true) => {
                Failure::usage(format!("{}: {}", path.display(), failure.message)).hint(
                    "the file holds a checkpoint of another subscription (other --type) or no \
                     checkpoint at all: give another --checkpoint-file, or remove this one to \
                     start over",
                )
            }
            _ => failure,
        }
    })?;
    if let Some(checkpoint) = &stored {
        ctx.note(format!(
            "subscribe: from the checkpoint in the file ({} bytes)",
            checkpoint.len()
        ));
    }

    ctx.out.begin(Shape::Subscribed);
    let mut feed = Feed {
        store,
        saved: stored,
        written: None,
        unsaved: 0,
        delivered: 0,
    };
    let followed = {
        let out = &mut ctx.out;
        let follow = feed.follow(&mut subscription, out);
        tokio::select! {
            result = follow => result.map(|()| Exit::Ok),
            _ = tokio::signal::ctrl_c() => Ok(Exit::Interrupted),
        }
    };
    // Whatever ended it, what was written goes out, then the checkpoint that covers it.
    ctx.out.end()?;
    ctx.out.flush()?;
    feed.save()?;
    report_unreadable(&mut subscription);
    ctx.note(format!("subscribe: {} event(s)", feed.delivered));
    match followed? {
        Exit::Interrupted => Err(Failure::new(Exit::Interrupted, String::new())),
        exit => Ok(exit),
    }
}

/// The lines written and the checkpoint saved.
struct Feed {
    store: Option<FileCheckpointStore>,
    /// The checkpoint text last saved.
    saved: Option<String>,
    /// The checkpoint after the last line written (or after the subscription's progress,
    /// when every line is written).
    written: Option<edbx::Checkpoint>,
    unsaved: usize,
    delivered: u64,
}

impl Feed {
    async fn follow(
        &mut self,
        subscription: &mut Subscription,
        out: &mut crate::output::Output,
    ) -> Outcome {
        loop {
            match tokio::time::timeout(SETTLE, subscription.next()).await {
                Ok(Some(delivered)) => {
                    let delivered = delivered?;
                    let line = EventLine::exported(&delivered.event);
                    out.row(&serde_json::to_value(&line).map_err(std::io::Error::from)?)?;
                    self.written = Some(delivered.checkpoint);
                    self.unsaved += 1;
                    self.delivered += 1;
                    if self.unsaved >= BATCH && out.streams_rows() {
                        out.flush()?;
                        self.save()?;
                    }
                }
                Ok(None) => {
                    // Caught up (--until-caught-up): everything is written.
                    self.written = Some(subscription.checkpoint().clone());
                    return Ok(());
                }
                Err(_) => {
                    // Nothing more came for a moment: pass the lines on, then save. Every
                    // line yielded is written, so the subscription's own checkpoint (which
                    // moves while idle too) covers no more than what was written. (A JSON
                    // array is written only at the end, and saved then.)
                    report_unreadable(subscription);
                    if !out.streams_rows() {
                        continue;
                    }
                    out.flush()?;
                    self.written = Some(subscription.checkpoint().clone());
                    self.save()?;
                }
            }
        }
    }

    /// Saves the checkpoint of what was written (call after flushing it).
    fn save(&mut self) -> Outcome {
        self.unsaved = 0;
        let (Some(store), Some(checkpoint)) = (self.store.as_mut(), &self.written) else {
            return Ok(());
        };
        if self.saved.as_deref() == Some(checkpoint.as_str()) {
            return Ok(());
        }
        store.save(checkpoint).map_err(|e| {
            Failure::new(Exit::Internal, e.to_string())
                .hint("the lines printed so far will be printed again by the next run")
        })?;
        self.saved = Some(checkpoint.to_string());
        Ok(())
    }
}

/// Archived aggregates whose events the subscription could not read, on stderr.
fn report_unreadable(subscription: &mut Subscription) {
    for report in subscription.take_unreadable() {
        let name = format!("{}/{}", report.aggregate_type, report.aggregate_id);
        match report.delivered_through {
            Some(through) => eprintln!(
                "edbx: subscribe: {name} is archived: its events {}..={} cannot be read (the \
                 server serves only active aggregates' events; `edbx restore` it to read them)",
                through + 1,
                report.version
            ),
            None => eprintln!(
                "edbx: subscribe: {name} was archived (at version {}) while this subscription \
                 was behind: events written to it meanwhile, if any, cannot be read",
                report.version
            ),
        }
    }
}
