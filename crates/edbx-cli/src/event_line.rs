//! One event as a line of NDJSON: what `edbx export` writes and `edbx import` reads.
//!
//! ```json
//! {"aggregate_type":"orders","aggregate_id":"ord-1","event_type":"order.placed","payload":{"total":42.15},"note":"till 3","metadata":{"@source":"pos"},"version":1,"created_at":"2026-11-30T10:00:00Z","event_id":"7401…","issued_by":{"group":"pos","user":"till-3"}}
//! ```
//!
//! `version` (written by export) makes a line idempotent: the import skips a version the
//! target already holds with the same content, and refuses one it holds with other content or
//! that would leave a gap. `created_at`, `event_id` and `issued_by` are the original event's
//! record: kept in the file, not restored (the server gives each write its own).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// An event to write (or as read back from the server).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventLine {
    pub aggregate_type: String,
    pub aggregate_id: String,
    /// As written (`order.placed`); the server also reports it normalized (`order_placed`).
    pub event_type: String,
    /// A JSON object.
    pub payload: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// A JSON object of `@`-keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Map<String, Value>>,
    /// The version this event has in its aggregate (export writes it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u64>,
    /// When the original event was stored (informational).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
    /// The original event's id (informational).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
    /// Who wrote the original event, `{"group", "user"}` (informational).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issued_by: Option<Value>,
}

impl EventLine {
    /// Parses and checks one line (before anything is sent), by the rules the engine applies
    /// to a write.
    pub fn parse(text: &str) -> Result<Self, String> {
        let line: EventLine = serde_json::from_str(text).map_err(|e| e.to_string())?;
        if line.version == Some(0) {
            return Err("version must be 1 or more".to_owned());
        }
        let mut event = edbx::NewEvent::new(
            line.aggregate_type.as_str(),
            line.aggregate_id.as_str(),
            line.event_type.as_str(),
            json(&line.payload),
        );
        if let Some(note) = &line.note {
            event = event.note(note.as_str());
        }
        if let Some(metadata) = &line.metadata {
            event = event.metadata_json(json(metadata));
        }
        event.check().map_err(|e| e.message().to_owned())?;
        Ok(line)
    }

    /// The line of a stored event (its type as written, its note and metadata).
    pub fn of_event(event: &edbx::Event) -> Self {
        Self {
            aggregate_type: event.aggregate_type.clone(),
            aggregate_id: event.aggregate_id.clone(),
            event_type: event.original_type().to_owned(),
            payload: event.payload.clone(),
            note: event.metadata.note.clone().filter(|n| !n.is_empty()),
            metadata: event.extensions.clone().filter(|m| !m.is_empty()),
            version: None,
            created_at: None,
            event_id: None,
            issued_by: None,
        }
    }

    /// The export line of a stored event: its content, its version and its original record.
    pub fn exported(event: &edbx::Event) -> Self {
        Self {
            version: Some(event.version),
            created_at: Some(event.metadata.created_at.clone()),
            event_id: Some(event.metadata.event_id.to_string()),
            issued_by: event
                .metadata
                .issued_by
                .as_ref()
                .map(|a| serde_json::json!({"group": a.group, "user": a.user})),
            ..Self::of_event(event)
        }
    }

    /// Whether the stored `event` holds this line's content: the event type exactly as
    /// written, the payload, the note and the metadata (not its time, id or writer).
    pub fn same_content(&self, event: &edbx::Event) -> bool {
        event.original_type() == self.event_type && self.matches(event)
    }

    /// What differs between this line and the stored `event`, for a message.
    pub fn differences(&self, event: &edbx::Event) -> String {
        let stored = Self::of_event(event);
        let mut fields = Vec::new();
        if event.original_type() != self.event_type {
            fields.push(format!(
                "event_type {:?} there, {:?} here",
                event.original_type(),
                self.event_type
            ));
        }
        if stored.payload != self.payload {
            fields.push("payload".to_owned());
        }
        if stored.note != self.note.clone().filter(|n| !n.is_empty()) {
            fields.push("note".to_owned());
        }
        if stored.metadata != self.metadata.clone().filter(|m| !m.is_empty()) {
            fields.push("metadata".to_owned());
        }
        fields.join(", ")
    }

    /// Whether the stored `event` is this line, written.
    pub fn matches(&self, event: &edbx::Event) -> bool {
        let stored = Self::of_event(event);
        event.is_type(&self.event_type)
            && stored.payload == self.payload
            && stored.note == self.note.clone().filter(|n| !n.is_empty())
            && stored.metadata == self.metadata.clone().filter(|m| !m.is_empty())
    }
}

/// JSON text of a value read from JSON (it serializes).
fn json(value: &impl Serialize) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_checked_before_sending() {
        let ok = EventLine::parse(
            r#"{"aggregate_type":"t","aggregate_id":"1","event_type":"e.x","payload":{"a":1}}"#,
        )
        .unwrap();
        assert_eq!(ok.event_type, "e.x");
        for (text, error) in [
            (
                r#"{"aggregate_type":"t","aggregate_id":"1","event_type":"e","payload":[1]}"#,
                "object",
            ),
            (
                r#"{"aggregate_type":"","aggregate_id":"1","event_type":"e","payload":{}}"#,
                "aggregate_type \"\" is invalid",
            ),
            (
                r#"{"aggregate_type":"t","aggregate_id":"1","event_type":"e"}"#,
                "payload",
            ),
            (
                r#"{"aggregate_type":"t","aggregate_id":"1","event_type":"e","payload":{},"paylod":{}}"#,
                "unknown field",
            ),
            (r#"{"aggregate_type":"t","#, "EOF"),
            // The engine's own rules, as a write would apply them.
            (
                r#"{"aggregate_type":"Bad Type","aggregate_id":"1","event_type":"e","payload":{}}"#,
                "aggregate_type",
            ),
            (
                r#"{"aggregate_type":"t","aggregate_id":"a b","event_type":"e","payload":{}}"#,
                "aggregate_id",
            ),
            (
                r#"{"aggregate_type":"t","aggregate_id":"1","event_type":"E-1","payload":{}}"#,
                "event_type",
            ),
            (
                r#"{"aggregate_type":"t","aggregate_id":"1","event_type":"e","payload":{},"metadata":{"source":1}}"#,
                "metadata key",
            ),
            (
                r#"{"aggregate_type":"t","aggregate_id":"1","event_type":"e","payload":{},"version":0}"#,
                "version",
            ),
        ] {
            let e = EventLine::parse(text).unwrap_err();
            assert!(e.contains(error), "{text}: {e}");
        }
    }
}
