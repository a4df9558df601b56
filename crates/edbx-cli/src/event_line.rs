//! One event as a line of NDJSON: what `edbx export` writes and `edbx import` reads.
//!
//! ```json
//! {"aggregate_type":"orders","aggregate_id":"ord-1","event_type":"order.placed","payload":{"total":42.15},"note":"till 3","metadata":{"@source":"pos"}}
//! ```

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
}

impl EventLine {
    /// Parses and checks one line (before anything is sent).
    pub fn parse(text: &str) -> Result<Self, String> {
        let line: EventLine = serde_json::from_str(text).map_err(|e| e.to_string())?;
        for (field, value) in [
            ("aggregate_type", &line.aggregate_type),
            ("aggregate_id", &line.aggregate_id),
            ("event_type", &line.event_type),
        ] {
            if value.trim().is_empty() {
                return Err(format!("{field} is empty"));
            }
        }
        if !line.payload.is_object() {
            return Err("payload must be a JSON object".to_owned());
        }
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
        }
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
                "aggregate_type is empty",
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
        ] {
            let e = EventLine::parse(text).unwrap_err();
            assert!(e.contains(error), "{text}: {e}");
        }
    }
}
