//! `export_parquet`: the Python arguments as an `edbx_parquet::Export` (checked before anything
//! is sent), and its outcome as plain values for the Python half.

use std::path::PathBuf;

use edbx_parquet::{Compression, Export, ExportError, PartitionBy, Summary, What};
use pyo3::prelude::*;

use crate::errors::invalid_input;

/// Files as `(path, partition, rows, bytes)`.
type Files = Vec<(PathBuf, Option<String>, u64, u64)>;
/// What is not a client error: `(kind, message, errno, path)`.
type Failure = Option<(&'static str, String, Option<i32>, Option<PathBuf>)>;
/// `(rows, aggregates, bytes, files, archived, archived_first, failure)`.
pub(crate) type Outcome = (u64, u64, u64, Files, u64, Vec<String>, Failure);

/// The options of `export_parquet`, as the Python half checked and named them.
#[derive(FromPyObject)]
#[pyo3(from_item_all)]
pub(crate) struct ExportOptions {
    what: String,
    partition_by: Option<String>,
    aggregate_type: Option<String>,
    include_archived: bool,
    skip_archived: bool,
    max_file_size: Option<u64>,
    row_group_size: Option<usize>,
    compression: String,
    concurrency: usize,
}

impl ExportOptions {
    /// The export these options describe, to `path`, with the options and the path checked.
    pub(crate) fn export(self, py: Python<'_>, path: PathBuf) -> PyResult<Export> {
        let refuse = |name: &str, allowed: &str, got: &str| {
            invalid_input(py, format!("{name} must be {allowed}, got {got:?}"))
        };
        let what = match self.what.as_str() {
            "events" => What::Events,
            "aggregates" => What::Aggregates,
            other => return Err(refuse("what", "'events' or 'aggregates'", other)),
        };
        let partition_by = match self.partition_by.as_deref() {
            None => None,
            Some("aggregate_type") => Some(PartitionBy::AggregateType),
            Some(other) => return Err(refuse("partition_by", "None or 'aggregate_type'", other)),
        };
        let compression = match self.compression.as_str() {
            "zstd" => Compression::Zstd,
            "none" => Compression::None,
            other => return Err(refuse("compression", "'zstd' or 'none'", other)),
        };
        let mut export = Export::to_path(path)
            .what(what)
            .partition_by(partition_by)
            .compression(compression)
            .include_archived(self.include_archived)
            .skip_archived(self.skip_archived)
            .concurrency(self.concurrency);
        if let Some(size) = self.max_file_size {
            export = export.max_file_size(size);
        }
        if let Some(rows) = self.row_group_size {
            export = export.row_group_size(rows);
        }
        if let Some(t) = self.aggregate_type {
            export = export.aggregate_type(t);
        }
        match export.check() {
            Ok(()) => Ok(export),
            Err(ExportError::Io { path, source }) => Err(pyo3::exceptions::PyOSError::new_err((
                source.raw_os_error().unwrap_or(0),
                source.to_string(),
                path,
            ))),
            Err(other) => Err(invalid_input(py, other.to_string())),
        }
    }
}

/// Runs the export; a client failure is the call's error, anything else is described in the
/// outcome for the Python half to raise.
pub(crate) async fn run(export: Export, client: &edbx::Client) -> edbx::Result<Outcome> {
    match export.run(client).await {
        Ok(summary) => Ok(outcome(&summary, None)),
        Err(ExportError::Client(e)) => Err(e),
        Err(ExportError::ArchivedLeftOut(summary)) => {
            let message = ExportError::ArchivedLeftOut(summary.clone()).to_string();
            Ok(outcome(
                &summary,
                Some(("archived_left_out", message, None, None)),
            ))
        }
        Err(ExportError::Io { path, source }) => Ok(failed((
            "io",
            source.to_string(),
            source.raw_os_error(),
            Some(path),
        ))),
        Err(ExportError::InvalidInput(message)) => Err(edbx::Error::invalid_input(message)),
        Err(other) => Ok(failed(("other", other.to_string(), None, None))),
    }
}

fn outcome(summary: &Summary, failure: Failure) -> Outcome {
    let files = summary
        .files
        .iter()
        .map(|f| (f.path.clone(), f.partition.clone(), f.rows, f.bytes))
        .collect();
    let first = summary
        .archived
        .first
        .iter()
        .map(|(t, id)| format!("{t}/{id}"))
        .collect();
    (
        summary.rows,
        summary.aggregates,
        summary.bytes,
        files,
        summary.archived.count,
        first,
        failure,
    )
}

fn failed(failure: (&'static str, String, Option<i32>, Option<PathBuf>)) -> Outcome {
    (0, 0, 0, Vec::new(), 0, Vec::new(), Some(failure))
}
