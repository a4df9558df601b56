//! The Arrow schemas of exported events and aggregates, and batches built from the client's
//! typed rows.

use std::sync::Arc;

use arrow_array::builder::{
    BooleanBuilder, Int64Builder, StringBuilder, TimestampMicrosecondBuilder,
};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};

use crate::error::ExportError;

/// The column a Hive-partitioned export moves into its directory names.
pub(crate) const TYPE_COLUMN: &str = "aggregate_type";

fn timestamp() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

fn fields_of(fields: Vec<Field>, with_type: bool) -> SchemaRef {
    Arc::new(Schema::new(
        fields
            .into_iter()
            .filter(|f| with_type || f.name() != TYPE_COLUMN)
            .collect::<Vec<_>>(),
    ))
}

/// The schema of exported events: one row per event. `with_type: false` leaves out
/// `aggregate_type`, which a Hive-partitioned export writes into its directory names instead.
///
/// | column | type | null | what |
/// | --- | --- | --- | --- |
/// | `aggregate_type` | string | no | the aggregate's type |
/// | `aggregate_id` | string | no | the aggregate's id |
/// | `version` | int64 | no | the version this event produced (1, 2, …) |
/// | `event_type` | string | no | the type as written (`order.paid`) |
/// | `event_type_normalized` | string | no | as the server stores it (`order_paid`) |
/// | `payload` | string (JSON) | no | the payload object |
/// | `metadata` | string (JSON) | yes | the `@`-keys written with the event |
/// | `note` | string | yes | the note written with the event |
/// | `created_at` | timestamp (µs, UTC) | no | when the server stored it |
/// | `event_id` | int64 | no | the server's snowflake id |
/// | `issued_by_group` | string | yes | the writing token's group |
/// | `issued_by_user` | string | yes | the writing token's user |
/// | `hash` | string | no | the event's hash (hex) |
/// | `merkle_root` | string | no | the aggregate's Merkle root after this event (hex) |
pub fn events_schema(with_type: bool) -> SchemaRef {
    let text = |name: &str, nullable: bool| Field::new(name, DataType::Utf8, nullable);
    fields_of(
        vec![
            text(TYPE_COLUMN, false),
            text("aggregate_id", false),
            Field::new("version", DataType::Int64, false),
            text("event_type", false),
            text("event_type_normalized", false),
            text("payload", false),
            text("metadata", true),
            text("note", true),
            Field::new("created_at", timestamp(), false),
            Field::new("event_id", DataType::Int64, false),
            text("issued_by_group", true),
            text("issued_by_user", true),
            text("hash", false),
            text("merkle_root", false),
        ],
        with_type,
    )
}

/// The schema of exported aggregates: one row per aggregate, its current state.
/// `with_type: false` leaves out `aggregate_type` (see [`events_schema`]).
///
/// | column | type | null | what |
/// | --- | --- | --- | --- |
/// | `aggregate_type` | string | no | the aggregate's type |
/// | `aggregate_id` | string | no | the aggregate's id |
/// | `version` | int64 | no | events applied |
/// | `state` | string (JSON) | no | the state as stored: an object of texts (`{"total":"42.15"}`) |
/// | `extensions` | string (JSON) | yes | aggregate-level `@`-keys, when there are any |
/// | `merkle_root` | string | no | Merkle root over its events' hashes (hex) |
/// | `archived` | bool | no | whether it is archived |
/// | `created_at` | timestamp (µs, UTC) | yes | creation time, when the server knows it |
/// | `updated_at` | timestamp (µs, UTC) | yes | time of the last change, when known |
pub fn aggregates_schema(with_type: bool) -> SchemaRef {
    let text = |name: &str, nullable: bool| Field::new(name, DataType::Utf8, nullable);
    fields_of(
        vec![
            text(TYPE_COLUMN, false),
            text("aggregate_id", false),
            Field::new("version", DataType::Int64, false),
            text("state", false),
            text("extensions", true),
            text("merkle_root", false),
            Field::new("archived", DataType::Boolean, false),
            Field::new("created_at", timestamp(), true),
            Field::new("updated_at", timestamp(), true),
        ],
        with_type,
    )
}

/// Microseconds since the epoch of an RFC 3339 time from the server. Finer digits are cut
/// (toward the past), as Spark and DuckDB timestamps hold microseconds.
pub(crate) fn micros(what: &str, text: &str) -> Result<i64, ExportError> {
    chrono::DateTime::parse_from_rfc3339(text)
        .map(|t| t.timestamp_micros())
        .map_err(|e| ExportError::Value(format!("{what} {text:?} is not an RFC 3339 time: {e}")))
}

fn int64(what: &str, value: u64) -> Result<i64, ExportError> {
    i64::try_from(value).map_err(|_| {
        ExportError::Value(format!(
            "{what} {value} does not fit a signed 64-bit integer"
        ))
    })
}

/// The Arrow columns of one kind of row.
pub(crate) trait Columns: Default + Send {
    type Row;
    /// Appends one row and returns about how many bytes of text it holds, or says which of its
    /// values cannot be written.
    fn push(&mut self, row: &Self::Row) -> Result<usize, ExportError>;
    /// The rows appended so far as a batch of `schema` (with or without `aggregate_type`),
    /// leaving the builders empty.
    fn finish(&mut self, schema: &SchemaRef) -> Result<RecordBatch, ExportError>;
}

/// Rows accumulated into columns until they are handed to the writer as one record batch.
#[derive(Default)]
pub(crate) struct Batch<C> {
    columns: C,
    rows: usize,
    bytes: usize,
}

impl<C: Columns> Batch<C> {
    /// Appends one row.
    pub(crate) fn push(&mut self, row: &C::Row) -> Result<(), ExportError> {
        self.bytes += self.columns.push(row)?;
        self.rows += 1;
        Ok(())
    }

    /// Rows appended since the last [`take`](Self::take).
    pub(crate) fn rows(&self) -> usize {
        self.rows
    }

    /// About how many bytes of text the rows hold.
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    /// The rows as a batch of `schema`, and a fresh start.
    pub(crate) fn take(&mut self, schema: &SchemaRef) -> Result<RecordBatch, ExportError> {
        self.rows = 0;
        self.bytes = 0;
        self.columns.finish(schema)
    }
}

/// The columns every row starts with: type, id and version.
#[derive(Default)]
struct KeyColumns {
    aggregate_type: StringBuilder,
    aggregate_id: StringBuilder,
    version: Int64Builder,
}

impl KeyColumns {
    fn push(
        &mut self,
        aggregate_type: &str,
        aggregate_id: &str,
        version: u64,
    ) -> Result<(), ExportError> {
        let version = int64("version", version)?;
        self.aggregate_type.append_value(aggregate_type);
        self.aggregate_id.append_value(aggregate_id);
        self.version.append_value(version);
        Ok(())
    }

    fn finish(&mut self) -> Vec<(&'static str, ArrayRef)> {
        vec![
            (TYPE_COLUMN, Arc::new(self.aggregate_type.finish())),
            ("aggregate_id", Arc::new(self.aggregate_id.finish())),
            ("version", Arc::new(self.version.finish())),
        ]
    }
}

/// The key columns and the others as one batch of `schema` (which may leave the type out).
fn batch(
    schema: &SchemaRef,
    key: Vec<(&'static str, ArrayRef)>,
    others: Vec<(&'static str, ArrayRef)>,
) -> Result<RecordBatch, ExportError> {
    let mut columns = key;
    columns.extend(others);
    columns.retain(|(name, _)| schema.field_with_name(name).is_ok());
    RecordBatch::try_new(
        schema.clone(),
        columns.into_iter().map(|(_, c)| c).collect(),
    )
    .map_err(|e| ExportError::Internal(format!("building a batch: {e}")))
}

/// Events as columns of [`events_schema`].
#[derive(Default)]
pub(crate) struct EventColumns {
    key: KeyColumns,
    event_type: StringBuilder,
    event_type_normalized: StringBuilder,
    payload: StringBuilder,
    metadata: StringBuilder,
    note: StringBuilder,
    created_at: TimestampMicrosecondBuilder,
    event_id: Int64Builder,
    issued_by_group: StringBuilder,
    issued_by_user: StringBuilder,
    hash: StringBuilder,
    merkle_root: StringBuilder,
}

impl Columns for EventColumns {
    type Row = edbx::Event;

    fn push(&mut self, event: &edbx::Event) -> Result<usize, ExportError> {
        let created_at = micros("created_at", &event.metadata.created_at)?;
        let event_id = int64("event_id", event.metadata.event_id)?;
        let payload = event.payload.to_string();
        let metadata = event
            .extensions
            .as_ref()
            .filter(|m| !m.is_empty())
            .map(|m| serde_json::Value::Object(m.clone()).to_string());
        let bytes = payload.len() + metadata.as_ref().map_or(0, String::len) + 256;
        self.key
            .push(&event.aggregate_type, &event.aggregate_id, event.version)?;
        self.event_type.append_value(event.original_type());
        self.event_type_normalized.append_value(&event.event_type);
        self.payload.append_value(payload);
        self.metadata.append_option(metadata);
        self.note
            .append_option(event.metadata.note.as_deref().filter(|n| !n.is_empty()));
        self.created_at.append_value(created_at);
        self.event_id.append_value(event_id);
        let actor = event.metadata.issued_by.as_ref();
        self.issued_by_group
            .append_option(actor.map(|a| a.group.as_str()));
        self.issued_by_user
            .append_option(actor.map(|a| a.user.as_str()));
        self.hash.append_value(&event.hash);
        self.merkle_root.append_value(&event.merkle_root);
        Ok(bytes)
    }

    fn finish(&mut self, schema: &SchemaRef) -> Result<RecordBatch, ExportError> {
        batch(
            schema,
            self.key.finish(),
            vec![
                ("event_type", Arc::new(self.event_type.finish())),
                (
                    "event_type_normalized",
                    Arc::new(self.event_type_normalized.finish()),
                ),
                ("payload", Arc::new(self.payload.finish())),
                ("metadata", Arc::new(self.metadata.finish())),
                ("note", Arc::new(self.note.finish())),
                (
                    "created_at",
                    Arc::new(self.created_at.finish().with_timezone("UTC")),
                ),
                ("event_id", Arc::new(self.event_id.finish())),
                ("issued_by_group", Arc::new(self.issued_by_group.finish())),
                ("issued_by_user", Arc::new(self.issued_by_user.finish())),
                ("hash", Arc::new(self.hash.finish())),
                ("merkle_root", Arc::new(self.merkle_root.finish())),
            ],
        )
    }
}

/// Aggregates as columns of [`aggregates_schema`].
#[derive(Default)]
pub(crate) struct AggregateColumns {
    key: KeyColumns,
    state: StringBuilder,
    extensions: StringBuilder,
    merkle_root: StringBuilder,
    archived: BooleanBuilder,
    created_at: TimestampMicrosecondBuilder,
    updated_at: TimestampMicrosecondBuilder,
}

impl Columns for AggregateColumns {
    type Row = edbx::Aggregate;

    fn push(&mut self, aggregate: &edbx::Aggregate) -> Result<usize, ExportError> {
        let time = |what: &str, value: &Option<String>| {
            value.as_deref().map(|text| micros(what, text)).transpose()
        };
        let created_at = time("created_at", &aggregate.created_at)?;
        let updated_at = time("updated_at", &aggregate.updated_at)?;
        let state = serde_json::to_string(&aggregate.state)
            .map_err(|e| ExportError::Internal(format!("state as JSON: {e}")))?;
        let extensions = (!aggregate.extensions.is_empty())
            .then(|| serde_json::Value::Object(aggregate.extensions.clone()).to_string());
        let bytes = state.len() + extensions.as_ref().map_or(0, String::len) + 192;
        self.key.push(
            &aggregate.aggregate_type,
            &aggregate.aggregate_id,
            aggregate.version,
        )?;
        self.state.append_value(state);
        self.extensions.append_option(extensions);
        self.merkle_root.append_value(&aggregate.merkle_root);
        self.archived.append_value(aggregate.archived);
        self.created_at.append_option(created_at);
        self.updated_at.append_option(updated_at);
        Ok(bytes)
    }

    fn finish(&mut self, schema: &SchemaRef) -> Result<RecordBatch, ExportError> {
        batch(
            schema,
            self.key.finish(),
            vec![
                ("state", Arc::new(self.state.finish())),
                ("extensions", Arc::new(self.extensions.finish())),
                ("merkle_root", Arc::new(self.merkle_root.finish())),
                ("archived", Arc::new(self.archived.finish())),
                (
                    "created_at",
                    Arc::new(self.created_at.finish().with_timezone("UTC")),
                ),
                (
                    "updated_at",
                    Arc::new(self.updated_at.finish().with_timezone("UTC")),
                ),
            ],
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_keep_microseconds_and_bad_ones_are_named() {
        assert_eq!(
            micros("t", "1970-01-01T00:00:01.000002999Z").unwrap(),
            1_000_002
        );
        assert_eq!(
            micros("t", "2026-01-01T01:00:00+01:00").unwrap(),
            1_767_225_600_000_000
        );
        let e = micros("created_at", "yesterday").unwrap_err().to_string();
        assert!(e.contains("created_at \"yesterday\""), "{e}");
    }

    #[test]
    fn a_partitioned_schema_leaves_the_type_to_the_directory() {
        assert_eq!(events_schema(true).fields().len(), 14);
        assert!(events_schema(false).field_with_name(TYPE_COLUMN).is_err());
        assert_eq!(aggregates_schema(false).fields().len(), 8);
    }

    #[test]
    fn events_become_typed_columns() {
        let event: edbx::Event = serde_json::from_str(
            r#"{"aggregate_type":"orders","aggregate_id":"o-1","event_type":"order_paid",
            "event_type_raw":"order.paid","payload":{"total":4.5,"city":"Zürich"},
            "extensions":{"@trace":"t-1"},"version":2,"hash":"h","merkle_root":"m",
            "metadata":{"event_id":"7","created_at":"2026-03-01T10:00:00.123456Z",
            "issued_by":{"group":"pos","user":"till"},"note":"n"}}"#,
        )
        .unwrap();
        let mut rows = Batch::<EventColumns>::default();
        rows.push(&event).unwrap();
        assert_eq!(rows.rows(), 1);
        let batch = rows.take(&events_schema(true)).unwrap();
        assert_eq!(batch.num_rows(), 1);
        assert_eq!(rows.rows(), 0);
        let text = |name: &str| {
            batch
                .column_by_name(name)
                .unwrap()
                .as_any()
                .downcast_ref::<arrow_array::StringArray>()
                .unwrap()
                .value(0)
                .to_owned()
        };
        assert_eq!(text("event_type"), "order.paid");
        assert_eq!(text("event_type_normalized"), "order_paid");
        let payload: serde_json::Value = serde_json::from_str(&text("payload")).unwrap();
        assert_eq!(payload, serde_json::json!({"total": 4.5, "city": "Zürich"}));
        assert_eq!(text("metadata"), r#"{"@trace":"t-1"}"#);
        assert_eq!(text("issued_by_user"), "till");
        let without_type = {
            rows.push(&event).unwrap();
            rows.take(&events_schema(false)).unwrap()
        };
        assert_eq!(without_type.num_columns(), 13);
    }
}
