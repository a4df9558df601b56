//! What can go wrong in an export.

use std::path::PathBuf;

use crate::Summary;

/// Why an export failed. Except for [`ArchivedLeftOut`](Self::ArchivedLeftOut), a failed
/// export leaves no file behind (a stream output is left without its footer, which readers
/// refuse).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExportError {
    /// The options or the output path cannot work; nothing was sent or written.
    #[error("{0}")]
    InvalidInput(String),
    /// The client failed (connection, server error, …).
    #[error(transparent)]
    Client(#[from] edbx::Error),
    /// A file could not be written, synced or renamed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// A value the server sent cannot be written in its column (a time that is not RFC 3339, a
    /// number out of range).
    #[error("{0}")]
    Value(String),
    /// The export is written and complete for every aggregate but the archived ones it met,
    /// whose events the server does not serve while they are archived; and
    /// [`Export::skip_archived`](crate::Export::skip_archived) did not say that was intended.
    /// The files are in place: the summary says what they hold.
    #[error(
        "{} does not hold the events of {} archived aggregate(s), which the server does not \
         serve while they are archived: {}",
        .0.destination.display(),
        .0.archived.count,
        .0.archived
    )]
    ArchivedLeftOut(Box<Summary>),
    /// A failure of this library or of the Parquet writer.
    #[error("{0}")]
    Internal(String),
}

impl ExportError {
    /// Names the file of an I/O failure that does not name one yet.
    pub(crate) fn at(self, file: &std::path::Path) -> Self {
        match self {
            ExportError::Io { path, source } if path.as_os_str().is_empty() => ExportError::Io {
                path: file.to_owned(),
                source,
            },
            other => other,
        }
    }
}

impl From<parquet::errors::ParquetError> for ExportError {
    fn from(error: parquet::errors::ParquetError) -> Self {
        match error {
            parquet::errors::ParquetError::External(inner) => {
                match inner.downcast::<std::io::Error>() {
                    // Its path is added by the caller (`at`).
                    Ok(io) => ExportError::Io {
                        path: PathBuf::new(),
                        source: *io,
                    },
                    Err(other) => ExportError::Internal(format!("writing Parquet: {other}")),
                }
            }
            other => ExportError::Internal(format!("writing Parquet: {other}")),
        }
    }
}

impl From<arrow_schema::ArrowError> for ExportError {
    fn from(error: arrow_schema::ArrowError) -> Self {
        ExportError::Internal(format!("building Arrow data: {error}"))
    }
}
