//! `edbx export`: every event (in the format `edbx import` reads) or every aggregate, as NDJSON.
//! Each event line carries its version, so that importing it again is idempotent, and its
//! original time, id and writer. Archived aggregates are listed but their events cannot be
//! read over the protocol (server 3.19.4 reads only the active stream): an export of events
//! that meets one fails, naming it, unless `--skip-archived` says that is intended.
//! Aggregates are listed with the library's stream, which follows cursors without skipping the
//! rows the server drops from short pages; events of several aggregates are read at once and
//! written in listing order.

use std::collections::VecDeque;
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::time::Instant;

use edbx::Client;
use tokio::task::JoinHandle;

use super::Ctx;
use super::ops::raw;
use crate::cli::{ExportArgs, ExportWhat};
use crate::event_line::EventLine;
use crate::exit::{Exit, Failure, Outcome};
use crate::progress::Progress;

/// Where the lines go: stdout, or a file that gets its name only once complete.
struct Sink {
    writer: BufWriter<Box<dyn Write + Send>>,
    file: Option<(PathBuf, PathBuf)>,
}

impl Sink {
    fn open(out: Option<&PathBuf>) -> Outcome<Self> {
        match out {
            None => Ok(Self {
                writer: BufWriter::new(Box::new(std::io::stdout())),
                file: None,
            }),
            Some(path) => {
                let mut partial = path.as_os_str().to_owned();
                partial.push(".partial");
                let partial = PathBuf::from(partial);
                let file = std::fs::File::create(&partial).map_err(|e| {
                    Failure::usage(format!("cannot create {}: {e}", partial.display()))
                })?;
                Ok(Self {
                    writer: BufWriter::new(Box::new(file)),
                    file: Some((partial, path.clone())),
                })
            }
        }
    }

    /// Flushes, and gives the file its name. On failure the `.partial` file is removed (by
    /// `Drop`), as it is when the export fails before getting here.
    fn finish(mut self) -> Outcome {
        self.writer.flush()?;
        if let Some((partial, path)) = &self.file {
            std::fs::rename(partial, path)?;
            self.file = None;
        }
        Ok(())
    }
}

/// An unfinished export leaves nothing behind: a sink dropped before [`Sink::finish`] renamed
/// its file removes the `.partial` file.
impl Drop for Sink {
    fn drop(&mut self) {
        if let Some((partial, _)) = self.file.take() {
            if let Err(e) = std::fs::remove_file(&partial) {
                eprintln!("edbx: export: could not remove {}: {e}", partial.display());
            }
        }
    }
}

/// An aggregate's events as import lines, and how many.
type EventLines = (Vec<u8>, u64);

/// Every event of one aggregate as import lines, and how many.
async fn event_lines(
    client: Client,
    aggregate_type: String,
    aggregate_id: String,
) -> Outcome<EventLines> {
    let mut bytes = Vec::new();
    let mut count = 0;
    let mut events = client.events(&aggregate_type, &aggregate_id).stream();
    while let Some(event) = events.next().await {
        let line = EventLine::exported(&event?);
        serde_json::to_writer(&mut bytes, &line).map_err(std::io::Error::from)?;
        bytes.push(b'\n');
        count += 1;
    }
    Ok((bytes, count))
}

pub async fn export(args: &ExportArgs, ctx: &mut Ctx) -> Outcome<Exit> {
    if args.concurrency == 0 || args.concurrency > 256 {
        return Err(Failure::usage(format!(
            "--concurrency must be 1..=256, got {}",
            args.concurrency
        )));
    }
    if args.include_archived && args.what == ExportWhat::Events {
        return Err(
            Failure::usage("--include-archived goes with --what aggregates")
                .hint("the events of archived aggregates cannot be read: restore them first"),
        );
    }
    let client = ctx.client().await?;
    let mut sink = Sink::open(args.out.as_ref())?;
    let started = Instant::now();
    let unit = match args.what {
        ExportWhat::Events => "events",
        ExportWhat::Aggregates => "aggregates",
    };
    let mut progress = Progress::new(args.progress, "export", unit, None, 0);
    let mut list = client
        .list()
        .include_archived(args.include_archived || args.what == ExportWhat::Events);
    if let Some(t) = &args.aggregate_type {
        list = list.aggregate_type(t);
    }
    let mut rows = list.stream();
    let mut aggregates = 0u64;
    // How many archived aggregates were met, and the first few by name.
    let mut archived = 0usize;
    let mut archived_names: Vec<String> = Vec::new();
    match args.what {
        ExportWhat::Aggregates => {
            while let Some(row) = rows.next().await {
                let row = row?;
                serde_json::to_writer(&mut sink.writer, &raw(row.raw.as_deref()))
                    .map_err(std::io::Error::from)?;
                sink.writer.write_all(b"\n")?;
                aggregates += 1;
                progress.inc(1);
            }
        }
        ExportWhat::Events => {
            let mut pending: VecDeque<JoinHandle<Outcome<EventLines>>> = VecDeque::new();
            let mut listed_all = false;
            loop {
                while !listed_all && pending.len() < args.concurrency {
                    match rows.next().await {
                        None => listed_all = true,
                        Some(row) => {
                            let row = row?;
                            if row.archived {
                                archived += 1;
                                if archived_names.len() < 5 {
                                    archived_names.push(format!(
                                        "{}/{}",
                                        row.aggregate_type, row.aggregate_id
                                    ));
                                }
                                continue;
                            }
                            aggregates += 1;
                            pending.push_back(tokio::spawn(event_lines(
                                client.clone(),
                                row.aggregate_type,
                                row.aggregate_id,
                            )));
                        }
                    }
                }
                let Some(next) = pending.pop_front() else {
                    break;
                };
                let (bytes, count) = next
                    .await
                    .map_err(|e| Failure::new(Exit::Internal, format!("a reader failed: {e}")))??;
                sink.writer.write_all(&bytes)?;
                progress.inc(count);
            }
        }
    }
    let written = progress.done();
    progress.finish();
    let destination = args
        .out
        .as_ref()
        .map_or_else(|| "stdout".to_owned(), |p| p.display().to_string());
    sink.finish()?;
    ctx.note(format!(
        "export: {written} {unit} of {aggregates} aggregate(s) to {destination} in {:.2} s",
        started.elapsed().as_secs_f64()
    ));
    if archived == 0 {
        return Ok(Exit::Ok);
    }
    let mut named = archived_names.join(", ");
    if archived > archived_names.len() {
        named.push_str(&format!(" and {} more", archived - archived_names.len()));
    }
    if args.skip_archived {
        eprintln!(
            "edbx: export: {archived} archived aggregate(s) skipped, as --skip-archived asks: \
             {named} (`--what aggregates --include-archived` exports their state)"
        );
        return Ok(Exit::Ok);
    }
    Err(Failure::new(
        Exit::CheckFailed,
        format!(
            "export: {destination} is not a whole backup: it leaves out {archived} archived \
             aggregate(s), whose events the server does not serve while they are archived: \
             {named}"
        ),
    )
    .hint(
        "back the whole store up with `dbx backup --output FILE` on the server host (with the \
         server stopped), or `edbx restore TYPE ID` them before exporting (and archive them \
         again after); `--skip-archived` exports the rest and exits 0",
    ))
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::Sink;

    fn scratch(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("edbx-export-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn a_failed_rename_leaves_no_partial_file() {
        let dir = scratch("rename");
        // `--out` names an existing directory: the final rename fails.
        let out = dir.join("taken");
        std::fs::create_dir(&out).unwrap();
        let mut sink = Sink::open(Some(&out)).unwrap();
        sink.writer.write_all(b"{}\n").unwrap();
        assert!(dir.join("taken.partial").exists());
        assert!(sink.finish().is_err());
        assert!(!dir.join("taken.partial").exists());
        assert!(out.is_dir(), "the directory is left as it was");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn an_export_that_fails_midway_leaves_nothing() {
        let dir = scratch("midway");
        let out = dir.join("dump.ndjson");
        let mut sink = Sink::open(Some(&out)).unwrap();
        sink.writer.write_all(b"{}\n").unwrap();
        drop(sink);
        assert!(!dir.join("dump.ndjson.partial").exists());
        assert!(!out.exists());
        // And a finished one is renamed.
        let mut sink = Sink::open(Some(&out)).unwrap();
        sink.writer.write_all(b"{}\n").unwrap();
        sink.finish().unwrap();
        assert_eq!(std::fs::read(&out).unwrap(), b"{}\n");
        assert!(!dir.join("dump.ndjson.partial").exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
