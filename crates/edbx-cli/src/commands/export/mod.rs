//! `edbx export`: every event (in the format `edbx import` reads) or every aggregate, as NDJSON,
//! or as Parquet (`parquet.rs`, on the `edbx-parquet` crate). Each event line carries its
//! version, so that importing it again is idempotent, and its original time, id and writer.
//! Archived aggregates are listed but their events cannot be read over the protocol (server
//! 3.19.4 reads only the active stream): an export of events that meets one fails, naming it,
//! unless `--skip-archived` says that is intended. Events are read with the library's scan
//! (`Client::scan_events`): aggregates listed with the stream that never skips a row, several
//! read at once, written in listing order.

mod parquet;

use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::time::Instant;

use super::Ctx;
use super::ops::raw;
use crate::cli::{ExportArgs, ExportFormat, ExportWhat, ParquetCompression};
use crate::event_line::EventLine;
use crate::exit::{Exit, Failure, Outcome};
use crate::progress::Progress;
use edbx_parquet::OutputFile;

/// Where the lines go: stdout, a file that gets its name only once complete, or a pipe or
/// device written into as it goes (`edbx_parquet::OutputFile`: the policy of both formats).
struct Sink {
    writer: BufWriter<Box<dyn Write + Send>>,
    file: Option<(PathBuf, PathBuf)>,
}

impl Sink {
    fn open(out: Option<&PathBuf>) -> Outcome<Self> {
        let Some(path) = out else {
            return Ok(Self {
                writer: BufWriter::new(Box::new(std::io::stdout())),
                file: None,
            });
        };
        match OutputFile::check(path).map_err(|e| Failure::usage(e.to_string()))? {
            OutputFile::Replace(path) => {
                let mut partial = path.as_os_str().to_owned();
                partial.push(".partial");
                let partial = PathBuf::from(partial);
                let file = std::fs::File::create(&partial).map_err(|e| {
                    Failure::usage(format!("cannot create {}: {e}", partial.display()))
                })?;
                Ok(Self {
                    writer: BufWriter::new(Box::new(file)),
                    file: Some((partial, path)),
                })
            }
            OutputFile::Stream(path) => {
                let stream = std::fs::File::options()
                    .write(true)
                    .open(&path)
                    .map_err(|e| Failure::usage(format!("cannot open {}: {e}", path.display())))?;
                Ok(Self {
                    writer: BufWriter::new(Box::new(stream)),
                    file: None,
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

/// Writes a page of events as import lines.
fn write_lines(writer: &mut impl Write, events: &[edbx::Event]) -> Outcome {
    for event in events {
        serde_json::to_writer(&mut *writer, &EventLine::exported(event))
            .map_err(std::io::Error::from)?;
        writer.write_all(b"\n")?;
    }
    Ok(())
}

pub async fn export(args: &ExportArgs, ctx: &mut Ctx) -> Outcome<Exit> {
    if args.concurrency == 0 || args.concurrency > edbx::MAX_SCAN_CONCURRENCY {
        return Err(Failure::usage(format!(
            "--concurrency must be 1..={}, got {}",
            edbx::MAX_SCAN_CONCURRENCY,
            args.concurrency
        )));
    }
    if args.include_archived && args.what == ExportWhat::Events {
        return Err(
            Failure::usage("--include-archived goes with --what aggregates")
                .hint("the events of archived aggregates cannot be read: restore them first"),
        );
    }
    if args.format == ExportFormat::Parquet {
        return parquet::export(args, ctx).await;
    }
    for (given, flag) in [
        (args.partition_by.is_some(), "--partition-by"),
        (args.max_file_size.is_some(), "--max-file-size"),
        (args.row_group_size.is_some(), "--row-group-size"),
        (
            args.compression != ParquetCompression::Zstd,
            "--compression",
        ),
    ] {
        if given {
            return Err(Failure::usage(format!("{flag} goes with --format parquet")));
        }
    }
    let client = ctx.client().await?;
    let mut sink = Sink::open(args.out.as_ref())?;
    let started = Instant::now();
    let unit = match args.what {
        ExportWhat::Events => "events",
        ExportWhat::Aggregates => "aggregates",
    };
    let mut progress = Progress::new(args.progress, "export", unit, None, 0);
    let mut aggregates = 0u64;
    let mut archived = edbx::ArchivedLeftOut::default();
    match args.what {
        ExportWhat::Aggregates => {
            let mut list = client.list().include_archived(args.include_archived);
            if let Some(t) = &args.aggregate_type {
                list = list.aggregate_type(t);
            }
            let mut rows = list.stream();
            while let Some(row) = rows.next().await {
                let row = row?;
                serde_json::to_writer(&mut sink.writer, &raw(row.raw.as_ref()))
                    .map_err(std::io::Error::from)?;
                sink.writer.write_all(b"\n")?;
                aggregates += 1;
                progress.inc(1);
            }
        }
        ExportWhat::Events => {
            let mut scan = client.scan_events().concurrency(args.concurrency);
            if let Some(t) = &args.aggregate_type {
                scan = scan.aggregate_type(t);
            }
            let mut scan = scan.stream();
            while let Some(page) = scan.next_page().await {
                let page = page?;
                write_lines(&mut sink.writer, &page)?;
                progress.inc(page.len() as u64);
            }
            aggregates = scan.aggregates();
            archived = scan.archived().clone();
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
    archived_outcome(
        &archived,
        args.skip_archived,
        format!("{destination} is not a whole backup"),
    )
}

/// The exit of an export of events that left `archived` out: 0 when none was, or when
/// `--skip-archived` says that is intended (with a note naming them); 7 otherwise.
pub(crate) fn archived_outcome(
    archived: &edbx::ArchivedLeftOut,
    skip_archived: bool,
    what_it_is: String,
) -> Outcome<Exit> {
    if archived.is_empty() {
        return Ok(Exit::Ok);
    }
    let count = archived.count;
    if skip_archived {
        eprintln!(
            "edbx: export: {count} archived aggregate(s) skipped, as --skip-archived asks: \
             {archived} (`--what aggregates --include-archived` exports their state)"
        );
        return Ok(Exit::Ok);
    }
    Err(Failure::new(
        Exit::CheckFailed,
        format!(
            "export: {what_it_is}: it leaves out {count} archived aggregate(s), whose events \
             the server does not serve while they are archived: {archived}"
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
        // A directory takes the name while the export runs (one there before is refused up
        // front): the final rename fails.
        let out = dir.join("taken");
        let mut sink = Sink::open(Some(&out)).unwrap();
        std::fs::create_dir(&out).unwrap();
        assert!(Sink::open(Some(&out)).is_err());
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
