//! [`Export`]: the options of an export, checked before anything is sent, and its run.

use std::fmt;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;

use edbx::{ArchivedLeftOut, Client, MAX_SCAN_CONCURRENCY};

use crate::error::ExportError;
use crate::layout::{Layout, Target, WrittenFile, terminal};
use crate::schema::{AggregateColumns, EventColumns, aggregates_schema, events_schema};
use crate::writer::{Settings, Sink, Writer};

/// Rows per row group unless [`Export::row_group_size`] says otherwise.
pub const DEFAULT_ROW_GROUP_SIZE: usize = 65_536;
/// Most rows per row group [`Export::row_group_size`] takes.
pub const MAX_ROW_GROUP_SIZE: usize = 10_000_000;
/// The size a file of a partitioned export is closed at, unless [`Export::max_file_size`]
/// says otherwise.
pub const DEFAULT_MAX_FILE_SIZE: u64 = 256 << 20;
/// The smallest [`Export::max_file_size`].
pub const MIN_FILE_SIZE: u64 = 64 << 10;

/// What an export writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum What {
    /// One row per event ([`events_schema`](crate::events_schema)).
    #[default]
    Events,
    /// One row per aggregate: its current state ([`aggregates_schema`](crate::aggregates_schema)).
    Aggregates,
}

impl What {
    /// `events` or `aggregates`.
    pub fn as_str(self) -> &'static str {
        match self {
            What::Events => "events",
            What::Aggregates => "aggregates",
        }
    }
}

impl fmt::Display for What {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a directory export groups its files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PartitionBy {
    /// `aggregate_type=<type>/part-0000.parquet`, … (Hive style); the files then leave the
    /// `aggregate_type` column to the directory names.
    AggregateType,
}

/// How data pages are compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Compression {
    /// zstd, level 3 (what DuckDB writes by default).
    #[default]
    Zstd,
    /// None.
    None,
}

enum Output {
    Path(PathBuf),
    Stdout,
    Stream(Box<dyn Write + Send>),
}

/// What an export wrote.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Summary {
    /// Events or aggregates.
    pub what: What,
    /// The file or directory written (`-` for a stream).
    pub destination: PathBuf,
    /// Rows written: events, or aggregates.
    pub rows: u64,
    /// Aggregates whose rows were written (for an export of events: whose events).
    pub aggregates: u64,
    /// Every file, with its rows and size.
    pub files: Vec<WrittenFile>,
    /// Bytes written, all files together.
    pub bytes: u64,
    /// Archived aggregates met and left out (an export of events only).
    pub archived: ArchivedLeftOut,
}

/// An export of a store (or of one aggregate type) to Parquet: options, then
/// [`run`](Self::run).
///
/// ```no_run
/// # async fn demo(client: edbx::Client) -> Result<(), edbx_parquet::ExportError> {
/// use edbx_parquet::{Export, PartitionBy};
///
/// let summary = Export::to_path("lake")
///     .partition_by(Some(PartitionBy::AggregateType))
///     .skip_archived(true)
///     .run(&client)
///     .await?;
/// println!("{} events in {} files", summary.rows, summary.files.len());
/// # Ok(()) }
/// ```
pub struct Export {
    output: Output,
    what: What,
    partition_by: Option<PartitionBy>,
    max_file_size: Option<u64>,
    row_group_size: usize,
    compression: Compression,
    aggregate_type: Option<String>,
    include_archived: bool,
    skip_archived: bool,
    concurrency: usize,
    progress: Option<Box<dyn FnMut(u64) + Send>>,
}

impl fmt::Debug for Export {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let output = match &self.output {
            Output::Path(p) => p.display().to_string(),
            Output::Stdout | Output::Stream(_) => "-".to_owned(),
        };
        f.debug_struct("Export")
            .field("output", &output)
            .field("what", &self.what)
            .field("partition_by", &self.partition_by)
            .field("max_file_size", &self.max_file_size)
            .field("row_group_size", &self.row_group_size)
            .field("compression", &self.compression)
            .field("aggregate_type", &self.aggregate_type)
            .finish_non_exhaustive()
    }
}

impl Export {
    fn new(output: Output) -> Self {
        Export {
            output,
            what: What::Events,
            partition_by: None,
            max_file_size: None,
            row_group_size: DEFAULT_ROW_GROUP_SIZE,
            compression: Compression::Zstd,
            aggregate_type: None,
            include_archived: false,
            skip_archived: false,
            concurrency: 8,
            progress: None,
        }
    }

    /// An export to `path`: one file, written as `PATH.partial` and renamed when complete
    /// (replacing a file of that name); or, with [`partition_by`](Self::partition_by) or
    /// [`max_file_size`](Self::max_file_size), a new directory of part files, built as
    /// `PATH.partial/` and renamed when complete. A pipe or device (`/dev/stdout`) is written
    /// straight through; a terminal is refused.
    pub fn to_path(path: impl Into<PathBuf>) -> Self {
        Self::new(Output::Path(path.into()))
    }

    /// An export of one file to a stream (stdout, a socket), written as it goes: if it fails,
    /// the stream is left without the footer, which readers refuse.
    pub fn to_writer(writer: impl Write + Send + 'static) -> Self {
        Self::new(Output::Stream(Box::new(writer)))
    }

    /// An export of one file to standard output, written as it goes (see
    /// [`to_writer`](Self::to_writer)); refused when standard output is a terminal.
    pub fn to_stdout() -> Self {
        Self::new(Output::Stdout)
    }

    /// Events (the default) or aggregates.
    pub fn what(mut self, what: What) -> Self {
        self.what = what;
        self
    }

    /// Groups the files in Hive-style partition directories (each file at most
    /// [`max_file_size`](Self::max_file_size), [`DEFAULT_MAX_FILE_SIZE`] unless set).
    pub fn partition_by(mut self, partition_by: Option<PartitionBy>) -> Self {
        self.partition_by = partition_by;
        self
    }

    /// Closes a file once it holds about this many bytes and goes on in the next
    /// (`part-0001.parquet`, …); a file exceeds it by at most one batch of 1,024 rows. Makes
    /// the output a directory. At least [`MIN_FILE_SIZE`].
    pub fn max_file_size(mut self, bytes: u64) -> Self {
        self.max_file_size = Some(bytes);
        self
    }

    /// Rows per row group (default [`DEFAULT_ROW_GROUP_SIZE`]); a row group is also cut at
    /// 64 MiB. Memory use grows with it: one row group is held, encoded and compressed,
    /// until it is written.
    pub fn row_group_size(mut self, rows: usize) -> Self {
        self.row_group_size = rows;
        self
    }

    /// zstd (the default) or none.
    pub fn compression(mut self, compression: Compression) -> Self {
        self.compression = compression;
        self
    }

    /// Only aggregates of this type.
    pub fn aggregate_type(mut self, aggregate_type: impl Into<String>) -> Self {
        self.aggregate_type = Some(aggregate_type.into());
        self
    }

    /// With [`What::Aggregates`]: archived aggregates too (the events of archived aggregates
    /// cannot be read, so an export of events refuses this).
    pub fn include_archived(mut self, include: bool) -> Self {
        self.include_archived = include;
        self
    }

    /// With [`What::Events`]: leaving out archived aggregates is intended, so
    /// [`run`](Self::run) returns its summary (which names them) instead of
    /// [`ExportError::ArchivedLeftOut`].
    pub fn skip_archived(mut self, skip: bool) -> Self {
        self.skip_archived = skip;
        self
    }

    /// Aggregates whose events are read at the same time (default 8; 1 to
    /// [`MAX_SCAN_CONCURRENCY`]). Rows are written in listing order whatever this is.
    pub fn concurrency(mut self, concurrency: usize) -> Self {
        self.concurrency = concurrency;
        self
    }

    /// Called with the number of rows each time some are handed to the writer.
    pub fn on_progress(mut self, progress: impl FnMut(u64) + Send + 'static) -> Self {
        self.progress = Some(Box::new(progress));
        self
    }

    /// Checks the options and the output path, without sending or writing anything: what
    /// [`run`](Self::run) would fail with first.
    pub fn check(&self) -> Result<(), ExportError> {
        self.target().map(|_| ())
    }

    fn directory(&self) -> bool {
        self.partition_by.is_some() || self.max_file_size.is_some()
    }

    fn target(&self) -> Result<Option<Target>, ExportError> {
        let invalid = |message: String| Err(ExportError::InvalidInput(message));
        if self.row_group_size == 0 || self.row_group_size > MAX_ROW_GROUP_SIZE {
            return invalid(format!(
                "the row group size must be 1..={MAX_ROW_GROUP_SIZE} rows, got {}",
                self.row_group_size
            ));
        }
        if let Some(size) = self.max_file_size {
            if size < MIN_FILE_SIZE {
                return invalid(format!(
                    "the largest file size must be at least {MIN_FILE_SIZE} bytes, got {size}"
                ));
            }
        }
        if self.concurrency == 0 || self.concurrency > MAX_SCAN_CONCURRENCY {
            return invalid(format!(
                "concurrency must be 1..={MAX_SCAN_CONCURRENCY}, got {}",
                self.concurrency
            ));
        }
        if self.include_archived && self.what == What::Events {
            return invalid(
                "including archived aggregates goes with an export of aggregates: the events of \
                 archived aggregates cannot be read (restore them first)"
                    .into(),
            );
        }
        match &self.output {
            Output::Path(path) => Target::check(path, self.directory()).map(Some),
            Output::Stdout | Output::Stream(_) if self.directory() => invalid(
                "a partitioned or split export writes a directory, not a stream: give a path"
                    .into(),
            ),
            Output::Stdout if std::io::stdout().is_terminal() => Err(terminal()),
            Output::Stdout | Output::Stream(_) => Ok(None),
        }
    }

    /// Runs the export: checks everything ([`check`](Self::check)), then reads and writes,
    /// streaming, with memory bounded by the row group size whatever the size of the store.
    ///
    /// On success every file has its final name. On failure — or if this future is dropped —
    /// what was written is removed first (a stream is left without its footer). With
    /// [`What::Events`], archived aggregates are left out (the server does not serve their
    /// events); unless [`skip_archived`](Self::skip_archived) says that is intended, an export
    /// that met any returns [`ExportError::ArchivedLeftOut`], with the files in place.
    pub async fn run(mut self, client: &Client) -> Result<Summary, ExportError> {
        let target = self.target()?;
        if let Some(t) = &self.aggregate_type {
            client.scan_events().aggregate_type(t).check()?;
        }
        let stream = match std::mem::replace(&mut self.output, Output::Path(PathBuf::new())) {
            Output::Stream(stream) => Some(stream),
            Output::Stdout => Some(Box::new(std::io::stdout()) as Box<dyn Write + Send>),
            Output::Path(_) => None,
        };
        let layout = Layout::start(target, stream)?;
        let destination = layout.destination();
        let partitioned = self.partition_by.is_some();
        let settings = Settings {
            row_group_rows: self.row_group_size,
            max_file_bytes: match (self.max_file_size, partitioned) {
                (Some(size), _) => Some(size),
                (None, true) => Some(DEFAULT_MAX_FILE_SIZE),
                (None, false) => None,
            },
            compression: self.compression,
            what: self.what.as_str(),
        };
        let (rows, aggregates, archived, files) = match self.what {
            What::Events => {
                let sink = Sink::<EventColumns>::new(
                    layout,
                    &settings,
                    events_schema(!partitioned),
                    partitioned,
                    |e: &edbx::Event| e.aggregate_type.as_str(),
                )?;
                self.events(client, Writer::spawn(sink)?).await?
            }
            What::Aggregates => {
                let sink = Sink::<AggregateColumns>::new(
                    layout,
                    &settings,
                    aggregates_schema(!partitioned),
                    partitioned,
                    |a: &edbx::Aggregate| a.aggregate_type.as_str(),
                )?;
                let (rows, files) = self.aggregates(client, Writer::spawn(sink)?).await?;
                (rows, rows, ArchivedLeftOut::default(), files)
            }
        };
        let summary = Summary {
            what: self.what,
            destination,
            rows,
            aggregates,
            bytes: files.iter().map(|f| f.bytes).sum(),
            files,
            archived,
        };
        if !summary.archived.is_empty() && !self.skip_archived {
            return Err(ExportError::ArchivedLeftOut(Box::new(summary)));
        }
        Ok(summary)
    }

    async fn events(
        &mut self,
        client: &Client,
        writer: Writer<edbx::Event>,
    ) -> Result<(u64, u64, ArchivedLeftOut, Vec<WrittenFile>), ExportError> {
        let mut scan = client.scan_events().concurrency(self.concurrency);
        if let Some(t) = &self.aggregate_type {
            scan = scan.aggregate_type(t);
        }
        let mut scan = scan.stream();
        let files = self.pump(&mut scan, writer).await?;
        Ok((
            scan.events(),
            scan.aggregates(),
            scan.archived().clone(),
            files,
        ))
    }

    async fn aggregates(
        &mut self,
        client: &Client,
        writer: Writer<edbx::Aggregate>,
    ) -> Result<(u64, Vec<WrittenFile>), ExportError> {
        let mut list = client
            .list()
            .take(1000)
            .include_archived(self.include_archived);
        if let Some(t) = &self.aggregate_type {
            list = list.aggregate_type(t);
        }
        let files = self.pump(&mut list.stream(), writer).await?;
        let rows = files.iter().map(|f| f.rows).sum();
        Ok((rows, files))
    }

    /// Hands every page to the writer, then lets it finish the files. A failed read stops the
    /// writer, which removes what it wrote, before the error is returned.
    async fn pump<R: Send + 'static>(
        &mut self,
        pages: &mut impl Pages<R>,
        mut writer: Writer<R>,
    ) -> Result<Vec<WrittenFile>, ExportError> {
        while let Some(page) = pages.next_rows().await {
            let page = match page {
                Ok(page) => page,
                Err(e) => {
                    writer.abandon().await;
                    return Err(e.into());
                }
            };
            let n = page.len() as u64;
            writer.send(page).await?;
            if let Some(progress) = &mut self.progress {
                progress(n);
            }
        }
        writer.finish().await
    }
}

/// Where rows come from, a page at a time: a scan of events or a listing of aggregates.
trait Pages<R> {
    fn next_rows(&mut self) -> impl Future<Output = Option<edbx::Result<Vec<R>>>> + Send;
}

impl Pages<edbx::Event> for edbx::EventScan {
    fn next_rows(&mut self) -> impl Future<Output = Option<edbx::Result<Vec<edbx::Event>>>> + Send {
        self.next_page()
    }
}

impl Pages<edbx::Aggregate> for edbx::PageStream<edbx::Aggregate> {
    fn next_rows(
        &mut self,
    ) -> impl Future<Output = Option<edbx::Result<Vec<edbx::Aggregate>>>> + Send {
        self.next_page()
    }
}
