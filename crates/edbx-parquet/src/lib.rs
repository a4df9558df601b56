//! # edbx-parquet — EventDBX stores as Apache Parquet
//!
//! Writes every event (or every aggregate's current state) of an EventDBX store as Parquet
//! files that DuckDB, Polars, pandas and Spark read natively: typed columns, zstd, row groups
//! written as the store is read, optionally Hive-partitioned by aggregate type. The `edbx`
//! command line (`edbx export --format parquet`) and the Python package
//! (`client.export_parquet(...)`) both run this code.
//!
//! ```no_run
//! # async fn demo() -> Result<(), edbx_parquet::ExportError> {
//! use edbx_parquet::{Export, PartitionBy};
//!
//! let client = edbx::Client::connect(edbx::Config::from_env()?).await?;
//! let summary = Export::to_path("events.parquet").skip_archived(true).run(&client).await?;
//! println!("{} events, {} bytes", summary.rows, summary.bytes);
//!
//! // A dataset of files of at most 256 MiB, one directory per aggregate type.
//! Export::to_path("lake")
//!     .partition_by(Some(PartitionBy::AggregateType))
//!     .skip_archived(true)
//!     .run(&client)
//!     .await?;
//! # Ok(()) }
//! ```
//!
//! ## How it behaves
//!
//! * **Reading.** Events are read with [`edbx::Client::scan_events`]: aggregates listed with
//!   the stream that never skips a row, several read at once, rows written in listing order
//!   (type, id, version). Aggregates are read with [`edbx::List::stream`].
//! * **Bounded memory.** The reader hands pages to a writer thread over a bounded queue; the
//!   writer holds one batch (1,024 rows) and one row group (encoded and compressed; at most
//!   [`DEFAULT_ROW_GROUP_SIZE`] rows or 64 MiB) of one open file. Nothing grows with the store.
//! * **Files.** One file, or with [`Export::partition_by`] a Hive-style directory
//!   (`aggregate_type=orders/part-0000.parquet`, …) whose files are closed at
//!   [`Export::max_file_size`] ([`DEFAULT_MAX_FILE_SIZE`]). Partition values are
//!   percent-encoded ([`escape_partition_value`]): no value can leave the directory or collide
//!   with another.
//! * **Whole or nothing.** Files are written under temporary names (`PATH.partial`, or a
//!   `PATH.partial/` directory whose files end in `.parquet.partial`) and renamed when the
//!   export is complete, after being synced; a failed or dropped export removes them, and one
//!   killed outright leaves only names ending in `.partial`. See the layout in
//!   [`Export::to_path`].
//! * **Honest.** The [`Summary`] counts rows, aggregates, files and bytes. Archived aggregates
//!   cannot be exported with their events (the server does not serve them): they are counted
//!   and named, and an export that met any fails with [`ExportError::ArchivedLeftOut`] (files in
//!   place) unless [`Export::skip_archived`] says that is intended.
//!
//! ## Schema
//!
//! Events: [`events_schema`]; aggregates: [`aggregates_schema`]. JSON (payloads, metadata,
//! state) is written as text, times as UTC timestamps in microseconds, versions and ids as
//! 64-bit integers. Every file carries the key-value metadata `edbx.what` (`events` or
//! `aggregates`) and `edbx.version`.

#![warn(missing_docs)]

mod error;
mod export;
mod layout;
mod schema;
mod writer;

pub use edbx::ArchivedLeftOut;
pub use error::ExportError;
pub use export::{
    Compression, DEFAULT_MAX_FILE_SIZE, DEFAULT_ROW_GROUP_SIZE, Export, MAX_ROW_GROUP_SIZE,
    MIN_FILE_SIZE, PartitionBy, Summary, What,
};
pub use layout::{OutputFile, WrittenFile, escape_partition_value};
pub use schema::{aggregates_schema, events_schema};

/// Arrow's schema type, as [`events_schema`] and [`aggregates_schema`] return it.
pub use arrow_schema::SchemaRef;

/// docs/PARQUET.md's Rust code, compiled as a doctest so that it cannot rot.
#[cfg(doctest)]
#[doc = include_str!("../../../docs/PARQUET.md")]
mod parquet_md {}

#[cfg(test)]
mod send {
    fn assert_send<T: Send>(_: &T) {}

    #[allow(dead_code, clippy::let_underscore_future)]
    fn the_export_future_is_send(client: edbx::Client) {
        assert_send(&super::Export::to_path("x").run(&client));
    }
}
