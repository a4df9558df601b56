//! The thread that encodes rows into Parquet files: batches of rows become record batches,
//! row groups are cut by rows and bytes, files by size, and partitions by aggregate type. It
//! runs beside the async reader, which hands it pages over a bounded channel, so encoding and
//! compressing never hold up the runtime, and a slow disk slows the reading down instead of
//! filling memory.

use std::thread::JoinHandle;

use arrow_schema::SchemaRef;
use parquet::arrow::ArrowWriter;
use parquet::basic::ZstdLevel;
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;
use parquet::schema::types::ColumnPath;
use tokio::sync::{mpsc, oneshot};

use crate::Compression;
use crate::error::ExportError;
use crate::layout::{Layout, Out, WrittenFile};
use crate::schema::{Batch, Columns};

/// Rows per record batch handed to the Parquet writer, and so the most a file can exceed its
/// size limit by (with [`BATCH_BYTES`]).
pub(crate) const BATCH_ROWS: usize = 1024;
/// Bytes of text per record batch, at most (about).
const BATCH_BYTES: usize = 1 << 20;
/// A row group is cut at this many bytes (encoded, estimated) even before its row count.
pub(crate) const ROW_GROUP_BYTES: usize = 64 << 20;
/// Messages the reader may be ahead of the writer.
const QUEUE: usize = 4;
/// The zstd level: DuckDB's default.
const ZSTD_LEVEL: i32 = 3;
/// Columns of JSON text and hashes: rarely repeated, so a dictionary only costs time.
const PLAIN_COLUMNS: [&str; 6] = [
    "payload",
    "metadata",
    "state",
    "extensions",
    "hash",
    "merkle_root",
];

/// How files are cut and compressed.
pub(crate) struct Settings {
    pub(crate) row_group_rows: usize,
    pub(crate) max_file_bytes: Option<u64>,
    pub(crate) compression: Compression,
    pub(crate) what: &'static str,
}

impl Settings {
    fn properties(&self) -> Result<WriterProperties, ExportError> {
        let compression = match self.compression {
            Compression::Zstd => parquet::basic::Compression::ZSTD(
                ZstdLevel::try_new(ZSTD_LEVEL).map_err(|e| ExportError::Internal(e.to_string()))?,
            ),
            Compression::None => parquet::basic::Compression::UNCOMPRESSED,
        };
        let mut builder = WriterProperties::builder()
            .set_compression(compression)
            .set_max_row_group_row_count(Some(self.row_group_rows.max(1)))
            .set_max_row_group_bytes(Some(ROW_GROUP_BYTES))
            .set_key_value_metadata(Some(vec![
                KeyValue::new("edbx.what".to_owned(), self.what.to_owned()),
                KeyValue::new(
                    "edbx.version".to_owned(),
                    env!("CARGO_PKG_VERSION").to_owned(),
                ),
            ]));
        for column in PLAIN_COLUMNS {
            builder = builder.set_column_dictionary_enabled(ColumnPath::from(column), false);
        }
        Ok(builder.build())
    }
}

/// One open file.
struct Open {
    writer: ArrowWriter<Out>,
    partition: Option<String>,
    index: usize,
    rows: u64,
}

/// Rows to files: batching, partitions, row groups and file sizes.
pub(crate) struct Sink<C: Columns> {
    layout: Layout,
    properties: WriterProperties,
    schema: SchemaRef,
    partitioned: bool,
    max_file_bytes: Option<u64>,
    batch: Batch<C>,
    /// The partition of the rows in `batch`.
    batch_partition: Option<String>,
    open: Option<Open>,
    /// The type of a row, for partitioning.
    type_of: fn(&C::Row) -> &str,
}

impl<C: Columns> Sink<C> {
    pub(crate) fn new(
        layout: Layout,
        settings: &Settings,
        schema: SchemaRef,
        partitioned: bool,
        type_of: fn(&C::Row) -> &str,
    ) -> Result<Self, ExportError> {
        Ok(Self {
            max_file_bytes: if layout.splits() {
                settings.max_file_bytes
            } else {
                None
            },
            layout,
            properties: settings.properties()?,
            schema,
            partitioned,
            batch: Batch::default(),
            batch_partition: None,
            open: None,
            type_of,
        })
    }

    fn push(&mut self, rows: Vec<C::Row>) -> Result<(), ExportError> {
        for row in &rows {
            if self.partitioned {
                let partition = (self.type_of)(row);
                if self.batch_partition.as_deref() != Some(partition) {
                    self.write_batch()?;
                    self.batch_partition = Some(partition.to_owned());
                }
            }
            self.batch.push(row)?;
            if self.batch.rows() >= BATCH_ROWS || self.batch.bytes() >= BATCH_BYTES {
                self.write_batch()?;
            }
        }
        Ok(())
    }

    /// Writes the batch to the file of its partition, opening one (and closing another) when
    /// needed, and closes the file once it reached its size.
    fn write_batch(&mut self) -> Result<(), ExportError> {
        if self.batch.rows() == 0 {
            return Ok(());
        }
        if self
            .open
            .as_ref()
            .is_some_and(|open| open.partition != self.batch_partition)
        {
            self.close()?;
        }
        let batch = self.batch.take(&self.schema)?;
        let open = match &mut self.open {
            Some(open) => open,
            None => self.open.insert(open_file(
                &mut self.layout,
                &self.schema,
                &self.properties,
                self.batch_partition.clone(),
            )?),
        };
        let index = open.index;
        if let Err(e) = open.writer.write(&batch) {
            return Err(ExportError::from(e).at(self.layout.path_of(index)));
        }
        open.rows += batch.num_rows() as u64;
        let size = (open.writer.bytes_written() + open.writer.in_progress_size()) as u64;
        if self.max_file_bytes.is_some_and(|max| size >= max) {
            self.close()?;
        }
        Ok(())
    }

    fn close(&mut self) -> Result<(), ExportError> {
        let Some(mut open) = self.open.take() else {
            return Ok(());
        };
        let path = self.layout.path_of(open.index).to_owned();
        let at = |e: parquet::errors::ParquetError| ExportError::from(e).at(&path);
        open.writer.finish().map_err(at)?;
        let bytes = open.writer.bytes_written() as u64;
        self.layout
            .closed(open.index, open.writer.inner_mut(), open.rows, bytes)
    }

    /// Writes what is left, closes the last file and gives every file its final name. An
    /// export of nothing still writes one file (with the schema and no rows), unless it is
    /// partitioned: there is no partition to put it in.
    fn finish(mut self) -> Result<Vec<WrittenFile>, ExportError> {
        self.write_batch()?;
        self.close()?;
        if self.layout.is_empty() && !self.partitioned {
            self.open = Some(open_file(
                &mut self.layout,
                &self.schema,
                &self.properties,
                None,
            )?);
            self.close()?;
        }
        self.layout.finish()
    }
}

fn open_file(
    layout: &mut Layout,
    schema: &SchemaRef,
    properties: &WriterProperties,
    partition: Option<String>,
) -> Result<Open, ExportError> {
    let (out, index) = layout.open(partition.as_deref())?;
    let writer = ArrowWriter::try_new(out, schema.clone(), Some(properties.clone()))?;
    Ok(Open {
        writer,
        partition,
        index,
        rows: 0,
    })
}

/// What the reader sends the writer.
pub(crate) enum Msg<R> {
    Rows(Vec<R>),
    /// Every row was sent: finish the files.
    Finish,
}

/// The writer thread, seen from the reader. Dropping it unfinished stops the thread, which
/// removes what it wrote, and waits for that.
pub(crate) struct Writer<R> {
    sender: Option<mpsc::Sender<Msg<R>>>,
    outcome: Option<oneshot::Receiver<Result<Vec<WrittenFile>, ExportError>>>,
    thread: Option<JoinHandle<()>>,
}

impl<R: Send + 'static> Writer<R> {
    pub(crate) fn spawn<C>(sink: Sink<C>) -> Result<Self, ExportError>
    where
        C: Columns<Row = R> + 'static,
    {
        let (sender, mut receiver) = mpsc::channel::<Msg<R>>(QUEUE);
        let (report, outcome) = oneshot::channel();
        let thread = std::thread::Builder::new()
            .name("edbx-parquet".into())
            .spawn(move || {
                let result = (move || {
                    let mut sink = sink;
                    while let Some(message) = receiver.blocking_recv() {
                        match message {
                            Msg::Rows(rows) => sink.push(rows)?,
                            Msg::Finish => return sink.finish(),
                        }
                    }
                    // The reader stopped without finishing: the sink (dropped here) removes
                    // the files.
                    Err(ExportError::Internal("the export was abandoned".into()))
                })();
                let _ = report.send(result);
            })
            .map_err(|e| ExportError::Internal(format!("cannot start the writer thread: {e}")))?;
        Ok(Self {
            sender: Some(sender),
            outcome: Some(outcome),
            thread: Some(thread),
        })
    }

    /// Hands rows to the writer (waiting while it is behind). Fails with the writer's own
    /// error if it failed.
    pub(crate) async fn send(&mut self, rows: Vec<R>) -> Result<(), ExportError> {
        let sender = self.sender.as_ref().expect("present until finished");
        if sender.send(Msg::Rows(rows)).await.is_ok() {
            return Ok(());
        }
        Err(self
            .outcome()
            .await
            .err()
            .unwrap_or_else(|| ExportError::Internal("the writer stopped early".into())))
    }

    /// Lets the writer finish the files; returns them.
    pub(crate) async fn finish(mut self) -> Result<Vec<WrittenFile>, ExportError> {
        let sender = self.sender.as_ref().expect("present until finished");
        // If the writer failed, its receiver is gone and its error is the outcome.
        let _ = sender.send(Msg::Finish).await;
        self.outcome().await
    }

    /// Stops the writer, which removes what it wrote, and waits until it has.
    pub(crate) async fn abandon(mut self) {
        let _ = self.outcome().await;
    }

    async fn outcome(&mut self) -> Result<Vec<WrittenFile>, ExportError> {
        self.sender = None;
        let outcome = match self.outcome.take() {
            Some(outcome) => outcome.await,
            None => return Err(ExportError::Internal("the writer already reported".into())),
        };
        if let Some(thread) = self.thread.take() {
            // It has reported, so it is ending.
            let _ = thread.join();
        }
        outcome.unwrap_or_else(|_| Err(ExportError::Internal("the writer thread panicked".into())))
    }
}

impl<R> Drop for Writer<R> {
    fn drop(&mut self) {
        // Dropped mid-export (a cancelled future): stop the thread and wait for its clean-up,
        // so that nothing of the export is left when the caller goes on.
        self.sender = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
