//! The server's input rules, checked before anything is sent so that a typo comes back as a
//! clear [`ErrorKind::InvalidInput`](crate::ErrorKind::InvalidInput) naming the field.

use serde_json::Value;

use crate::error::{Error, Result};

/// Largest payload the server's own rule allows (serialized JSON). Unreachable in practice: a
/// whole request must fit one frame (65,519 bytes under Noise, token included), and an event
/// whose stored row exceeds [`MAX_LISTED_ROW_BYTES`] cannot be listed (see [`listed_event_row`]).
pub const MAX_PAYLOAD_BYTES: usize = 256 * 1024;
/// The longest JSON of one aggregate or event that server 3.19.4 can send in a listing page:
/// a page's encoded reply is limited to 7,679 bytes (PROTOCOL.md §3), measured as 7,605
/// bytes for a single event row. A longer row closes the connection instead of being listed.
pub const MAX_LISTED_ROW_BYTES: usize = 7_605;
/// The bytes of a listed event row besides its variable parts, measured against 3.19.4 (the
/// JSON syntax, the 64-character hash and Merkle root, the event id and creation time), with
/// room for the longest event ids and version numbers.
const EVENT_ROW_FIXED_BYTES: usize = 378 + 1 + 19;
/// Deepest JSON nesting the client parses (serde_json's recursion limit).
pub const MAX_JSON_DEPTH: usize = 128;
/// Largest metadata object (serialized JSON).
pub const MAX_METADATA_BYTES: usize = 64 * 1024;
/// Longest event note, in characters.
pub const MAX_NOTE_CHARS: usize = 128;
/// Longest aggregate id and event type.
pub const MAX_ID_CHARS: usize = 128;

fn fail(field: &str, value: &str, rule: &str) -> Error {
    Error::invalid_input(format!(
        "{field} {} is invalid: {rule}",
        crate::config::quoted(value)
    ))
}

/// Parses JSON text the caller gave for `what`, telling a nesting too deep for the parser
/// from text that is not JSON.
pub(crate) fn parse_json(what: &str, text: &str) -> Result<Value> {
    serde_json::from_str(text).map_err(|e| {
        if e.to_string().contains("recursion limit") {
            Error::invalid_input(format!(
                "{what} is nested deeper than {MAX_JSON_DEPTH} levels, the most this client parses"
            ))
        } else {
            Error::invalid_input(format!("{what} is not valid JSON: {e}"))
        }
    })
}

/// An event payload must be a JSON object: the server would store anything else under the
/// state key `_value`.
pub fn payload_object(payload: &Value) -> Result<()> {
    if payload.is_object() {
        return Ok(());
    }
    let kind = match payload {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => unreachable!("checked above"),
    };
    Err(Error::invalid_input(format!(
        "payload must be a JSON object (its keys become the aggregate's state), got {kind}"
    )))
}

/// The length of the JSON row the server will list for an event with these parts (at least
/// its real length: ids and times are counted at their longest). `actor_len` is the length of
/// the writing token's `group` and `user` claims together.
pub fn listed_event_row(
    aggregate_type: &str,
    aggregate_id: &str,
    event_type: &str,
    payload: &Value,
    metadata: Option<&Value>,
    note: Option<&str>,
    actor_len: usize,
) -> usize {
    let json_len = |v: &Value| serde_json::to_string(v).map_or(0, |s| s.len());
    let mut len = EVENT_ROW_FIXED_BYTES
        + aggregate_type.len()
        + aggregate_id.len()
        // The normalized event type and the raw one.
        + 2 * event_type.len()
        + json_len(payload)
        + actor_len;
    if let Some(metadata) = metadata {
        len += r#","extensions":"#.len() + json_len(metadata);
    }
    if let Some(note) = note {
        len += r#","note":"#.len() + json_len(&Value::String(note.to_owned()));
    }
    len
}

/// `aggregate_type`: lower snake case, `^[a-z][a-z0-9_]*$`.
pub fn aggregate_type(value: &str) -> Result<()> {
    let mut chars = value.chars();
    let ok = chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    ok.then_some(()).ok_or_else(|| {
        fail(
            "aggregate_type",
            value,
            "must be lowercase snake_case (a letter, then a-z, 0-9 or _)",
        )
    })
}

/// `aggregate_id`: 1–128 characters, `^[A-Za-z0-9][A-Za-z0-9_-]*$`.
pub fn aggregate_id(value: &str) -> Result<()> {
    let mut chars = value.chars();
    let ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        && value.len() <= MAX_ID_CHARS;
    ok.then_some(()).ok_or_else(|| {
        fail(
            "aggregate_id",
            value,
            "must be 1-128 characters: a letter or digit, then letters, digits, _ or -",
        )
    })
}

/// `event_type`: up to 128 characters of dot-separated lower snake case segments.
pub fn event_type(value: &str) -> Result<()> {
    let segment_ok = |s: &str| {
        let mut chars = s.chars();
        chars.next().is_some_and(|c| c.is_ascii_lowercase())
            && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    };
    let ok = !value.is_empty() && value.len() <= MAX_ID_CHARS && value.split('.').all(segment_ok);
    ok.then_some(()).ok_or_else(|| {
        fail(
            "event_type",
            value,
            "must be up to 128 characters of lowercase snake_case segments joined by dots",
        )
    })
}

/// Payload JSON text: present and at most 256 KiB.
pub fn payload(json: &str) -> Result<()> {
    if json.trim().is_empty() {
        return Err(Error::invalid_input("payload is empty"));
    }
    if json.len() > MAX_PAYLOAD_BYTES {
        return Err(Error::invalid_input(format!(
            "payload is {} bytes; the server stores at most {MAX_PAYLOAD_BYTES}",
            json.len()
        )));
    }
    Ok(())
}

/// Metadata: a JSON object whose keys all match `^@[A-Za-z0-9][A-Za-z0-9_-]*$`, at most 64 KiB.
pub fn metadata(value: &Value, serialized_len: usize) -> Result<()> {
    let Value::Object(map) = value else {
        return Err(Error::invalid_input("metadata must be a JSON object"));
    };
    for key in map.keys() {
        let mut chars = key.chars();
        let ok = chars.next() == Some('@')
            && chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if !ok {
            return Err(fail(
                "metadata key",
                key,
                "must start with @ followed by a letter or digit, then letters, digits, _ or -",
            ));
        }
    }
    if serialized_len > MAX_METADATA_BYTES {
        return Err(Error::invalid_input(format!(
            "metadata is {serialized_len} bytes; the server accepts at most {MAX_METADATA_BYTES}"
        )));
    }
    Ok(())
}

/// Event note: at most 128 characters.
pub fn note(value: &str) -> Result<()> {
    let chars = value.chars().count();
    if chars > MAX_NOTE_CHARS {
        return Err(Error::invalid_input(format!(
            "note is {chars} characters; the server accepts at most {MAX_NOTE_CHARS}"
        )));
    }
    Ok(())
}

/// Tenant id: `[a-z0-9][a-z0-9_-]*` once lower-cased (the server lower-cases it).
pub fn tenant_id(value: &str) -> Result<()> {
    let lower = value.trim().to_ascii_lowercase();
    let mut chars = lower.chars();
    let ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
    ok.then_some(()).ok_or_else(|| {
        fail(
            "tenant_id",
            value,
            "must be a letter or digit, then letters, digits, _ or -",
        )
    })
}

/// Publish target: non-empty plugin, known mode and priority.
pub fn publish_target(target: &crate::PublishTarget) -> Result<()> {
    if target.plugin.trim().is_empty() {
        return Err(Error::invalid_input("publish target plugin is empty"));
    }
    const MODES: [&str; 6] = [
        "all",
        "event-only",
        "state-only",
        "schema-only",
        "event-and-schema",
        "extensions-only",
    ];
    let known_mode = |mode: &String| MODES.contains(&mode.trim().to_ascii_lowercase().as_str());
    if let Some(mode) = target.mode.as_ref().filter(|m| !known_mode(m)) {
        return Err(fail(
            "publish mode",
            mode,
            &format!("must be one of {MODES:?}"),
        ));
    }
    let known_priority =
        |p: &String| ["low", "normal", "high"].contains(&p.trim().to_ascii_lowercase().as_str());
    if let Some(priority) = target.priority.as_ref().filter(|p| !known_priority(p)) {
        return Err(fail(
            "publish priority",
            priority,
            "must be low, normal or high",
        ));
    }
    Ok(())
}

/// RFC 6902 operations the server applies: `add`, `replace`, `remove`, each with a non-root
/// `path` starting with `/`; a top-level `remove` is refused by the server.
pub fn patch(ops: &Value) -> Result<()> {
    let Value::Array(ops) = ops else {
        return Err(Error::invalid_input(
            "patch must be a JSON array of operations",
        ));
    };
    if ops.is_empty() {
        return Err(Error::invalid_input("patch has no operations"));
    }
    for (i, op) in ops.iter().enumerate() {
        let kind = op.get("op").and_then(Value::as_str).unwrap_or("");
        let path = op.get("path").and_then(Value::as_str).unwrap_or("");
        if !matches!(kind, "add" | "replace" | "remove") {
            return Err(Error::invalid_input(format!(
                "patch operation {i}: op {kind:?} is not supported (add, replace or remove)"
            )));
        }
        if !path.starts_with('/') || path == "/" {
            return Err(Error::invalid_input(format!(
                "patch operation {i}: path {path:?} must start with / and not be the root"
            )));
        }
        if kind == "remove" && !path[1..].contains('/') {
            return Err(Error::invalid_input(format!(
                "patch operation {i}: removing the top-level key {path:?} is not supported by the server"
            )));
        }
        if kind != "remove" && op.get("value").is_none() {
            return Err(Error::invalid_input(format!(
                "patch operation {i}: {kind} needs a value"
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn identifiers_follow_the_server_rules() {
        assert!(aggregate_type("orders").is_ok());
        assert!(aggregate_type("order_items2").is_ok());
        for bad in ["", "Orders", "1orders", "or-ders", "orders "] {
            assert!(aggregate_type(bad).is_err(), "{bad:?}");
        }
        assert!(aggregate_id("ord_123").is_ok());
        assert!(aggregate_id("A-1").is_ok());
        assert!(aggregate_id(&"a".repeat(128)).is_ok());
        for bad in ["", "-a", " a", "a b", "a:b", &"a".repeat(129)] {
            assert!(aggregate_id(bad).is_err(), "{bad:?}");
        }
        assert!(event_type("order.created").is_ok());
        for bad in ["", "Created", "a..b", ".a", "a.", "a-b"] {
            assert!(event_type(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn metadata_keys_need_an_at_sign() {
        let ok = json!({"@trace": {"id": 1}, "@a-b_c": 2});
        assert!(metadata(&ok, 10).is_ok());
        assert!(metadata(&json!({"trace": 1}), 10).is_err());
        assert!(metadata(&json!({"@": 1}), 10).is_err());
        assert!(metadata(&json!([1]), 3).is_err());
        assert!(metadata(&ok, MAX_METADATA_BYTES + 1).is_err());
    }

    #[test]
    fn patches_are_checked_like_the_server() {
        assert!(patch(&json!([{"op": "replace", "path": "/total", "value": 1}])).is_ok());
        assert!(patch(&json!([{"op": "remove", "path": "/addr/city"}])).is_ok());
        assert!(patch(&json!([{"op": "remove", "path": "/total"}])).is_err());
        assert!(patch(&json!([{"op": "move", "path": "/a", "from": "/b"}])).is_err());
        assert!(patch(&json!([{"op": "add", "path": "/"}])).is_err());
        assert!(patch(&json!({"op": "add"})).is_err());
        assert!(patch(&json!([])).is_err());
    }

    #[test]
    fn notes_tenants_and_targets() {
        assert!(note(&"é".repeat(128)).is_ok());
        assert!(note(&"a".repeat(129)).is_err());
        assert!(tenant_id("Tenant-123").is_ok());
        assert!(tenant_id("bad id!").is_err());
        let mut target = crate::PublishTarget::new("search")
            .mode("event-only")
            .priority("HIGH");
        assert!(publish_target(&target).is_ok());
        target.mode = Some("sometimes".into());
        assert!(publish_target(&target).is_err());
    }

    #[test]
    fn messages_stay_short_whatever_the_input() {
        let long_id = "x".repeat(100_000);
        let e = aggregate_id(&long_id).unwrap_err();
        assert!(e.to_string().len() < 300, "{} bytes", e.to_string().len());
        assert!(e.to_string().contains("100000 bytes"), "{e}");
    }

    #[test]
    fn json_too_deep_is_told_from_json_that_is_not_json() {
        let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
        let e = parse_json("payload", &deep).unwrap_err();
        assert!(e.message().contains("nested deeper than 128"), "{e}");
        let e = parse_json("payload", "{not json").unwrap_err();
        assert!(e.message().contains("not valid JSON"), "{e}");
    }

    #[test]
    fn payloads_must_be_objects() {
        assert!(payload_object(&json!({"a": 1})).is_ok());
        for bad in [
            json!(null),
            json!([1, 2]),
            json!(42),
            json!("x"),
            json!(true),
        ] {
            let e = payload_object(&bad).unwrap_err();
            assert!(e.message().contains("JSON object"), "{e}");
        }
    }
}

/// The row estimate against the real server: it is a heuristic, so it is checked where it is
/// defined rather than exported for the integration tests.
#[cfg(test)]
mod against_the_server {
    use serde_json::json;

    #[tokio::test]
    async fn the_row_estimate_is_an_upper_bound_close_to_the_real_row() {
        let server = edbx_testkit::TestServer::start(edbx_testkit::ServerOptions::default())
            .unwrap_or_else(|e| panic!("cannot start the EventDBX server: {e}"));
        let config = crate::Config::new()
            .host(server.host())
            .port(server.port())
            .token(server.token())
            .tenant_id(server.tenant())
            .request_timeout(std::time::Duration::from_secs(20));
        let client = crate::Client::connect(config).await.unwrap();
        let cases = [
            (json!({}), None, None),
            (
                json!({"a": 1, "b": [1, 2, 3], "c": {"d": "é\"\\"}}),
                None,
                Some("a note"),
            ),
            (
                json!({"s": "x".repeat(3000)}),
                Some(json!({"@trace": {"id": "t-1"}})),
                Some("ünïcode \"quoted\""),
            ),
        ];
        for (i, (payload, metadata, note)) in cases.into_iter().enumerate() {
            let id = format!("e{i}");
            let mut write = client.apply("estimate", &id, "order.paid", &payload);
            if let Some(metadata) = &metadata {
                write = write.metadata(metadata);
            }
            if let Some(note) = note {
                write = write.note(note);
            }
            write.await.unwrap();
            let page = client.events("estimate", &id).await.unwrap();
            let real = page.items[0].raw.as_ref().unwrap().get().len();
            // The test kit's bootstrap token is issued to group `cli`, user `root`.
            let estimate = super::listed_event_row(
                "estimate",
                &id,
                "order.paid",
                &payload,
                metadata.as_ref(),
                note,
                "cli".len() + "root".len(),
            );
            assert!(
                estimate >= real,
                "case {i}: estimate {estimate} < real {real}"
            );
            assert!(
                estimate - real <= 40,
                "case {i}: estimate {estimate}, real {real}"
            );
        }
    }
}
