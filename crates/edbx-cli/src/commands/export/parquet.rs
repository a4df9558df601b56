//! `edbx export --format parquet`: the options translated for `edbx_parquet::Export`, which does
//! the work (the Python package runs the same code), and its outcome as a note and an exit.

use std::sync::Arc;
use std::time::Instant;

use edbx_parquet::{Compression, Export, ExportError, PartitionBy, Summary, What};
use serde_json::{Value, json};

use super::{Ctx, archived_outcome};
use crate::cli::{ExportArgs, ExportWhat, ParquetCompression, PartitionColumn};
use crate::exit::{Exit, Failure, Outcome};
use crate::progress::Progress;

/// The export the arguments describe, checked (options and output path) before connecting.
fn build(args: &ExportArgs) -> Outcome<Export> {
    let Some(out) = &args.out else {
        return Err(Failure::usage("--format parquet needs --out PATH")
            .hint("Parquet is binary: give a file (or a directory with --partition-by), or `--out -` for a pipe"));
    };
    let mut export = if out.as_os_str() == "-" {
        Export::to_stdout()
    } else {
        Export::to_path(out)
    };
    export = export
        .what(match args.what {
            ExportWhat::Events => What::Events,
            ExportWhat::Aggregates => What::Aggregates,
        })
        .partition_by(args.partition_by.map(|column| match column {
            PartitionColumn::AggregateType => PartitionBy::AggregateType,
        }))
        .compression(match args.compression {
            ParquetCompression::Zstd => Compression::Zstd,
            ParquetCompression::None => Compression::None,
        })
        .include_archived(args.include_archived)
        .skip_archived(args.skip_archived)
        .concurrency(args.concurrency);
    if let Some(size) = args.max_file_size {
        export = export.max_file_size(size);
    }
    if let Some(rows) = args.row_group_size {
        export = export.row_group_size(rows);
    }
    if let Some(t) = &args.aggregate_type {
        export = export.aggregate_type(t);
    }
    export.check().map_err(failure)?;
    Ok(export)
}

pub async fn export(args: &ExportArgs, ctx: &mut Ctx) -> Outcome<Exit> {
    let export = build(args)?;
    let client = ctx.client().await?;
    let unit = match args.what {
        ExportWhat::Events => "events",
        ExportWhat::Aggregates => "aggregates",
    };
    let progress = Arc::new(Progress::new(args.progress, "export", unit, None, 0));
    let counter = progress.clone();
    let started = Instant::now();
    let outcome = export
        .on_progress(move |rows| counter.inc(rows))
        .run(&client)
        .await;
    // The export (and its progress callback) is gone: the progress is ours alone again.
    if let Ok(mut progress) = Arc::try_unwrap(progress) {
        progress.finish();
    }
    let to_stdout = args.out.as_deref().is_some_and(|p| p.as_os_str() == "-");
    let summary = match outcome {
        Ok(summary) => summary,
        Err(ExportError::ArchivedLeftOut(summary)) => {
            report(ctx, &summary, started, to_stdout)?;
            let what = format!(
                "{} does not hold every event",
                summary.destination.display()
            );
            return archived_outcome(&summary.archived, false, what);
        }
        Err(e) => return Err(failure(e)),
    };
    report(ctx, &summary, started, to_stdout)?;
    archived_outcome(&summary.archived, true, String::new())
}

/// What was written: a JSON report on stdout (as `edbx import` gives one), or a line on stderr
/// when stdout holds the data.
fn report(ctx: &mut Ctx, summary: &Summary, started: Instant, to_stdout: bool) -> Outcome {
    let seconds = started.elapsed().as_secs_f64();
    if to_stdout {
        eprintln!(
            "edbx: export: {} {} of {} aggregate(s), {} bytes, in {seconds:.2} s",
            summary.rows, summary.what, summary.aggregates, summary.bytes
        );
        return Ok(());
    }
    let per_row = match summary.rows {
        0 => Value::Null,
        rows => json!((summary.bytes as f64 / rows as f64 * 10.0).round() / 10.0),
    };
    let archived: Vec<String> = summary
        .archived
        .first
        .iter()
        .map(|(t, id)| format!("{t}/{id}"))
        .collect();
    ctx.out.value(&json!({
        "format": "parquet",
        "what": summary.what.as_str(),
        "path": summary.destination.display().to_string(),
        "rows": summary.rows,
        "aggregates": summary.aggregates,
        "files": summary.files.len(),
        "bytes": summary.bytes,
        "bytes_per_row": per_row,
        "archived_left_out": summary.archived.count,
        "archived_first": archived,
        "seconds": (seconds * 1000.0).round() / 1000.0,
    }))?;
    Ok(())
}

fn failure(error: ExportError) -> Failure {
    match error {
        ExportError::InvalidInput(message) => Failure::usage(message),
        ExportError::Client(e) => e.into(),
        // The reader went away (`| head`): quiet, as for every other command.
        ExportError::Io { source, .. } if source.kind() == std::io::ErrorKind::BrokenPipe => {
            source.into()
        }
        other => Failure::new(Exit::Internal, format!("export: {other}")),
    }
}
