//! Writes, offered only with `--allow-writes`: each request has passed the CSRF, `Origin` and
//! content-type checks of [`crate::security`], and was confirmed in the page. The engine
//! validates the input before sending and never sends a write twice; a write whose answer was
//! lost is reported as such, not as failed.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::AppState;
use crate::api::{aggregate_json, engine_failure, event_json, failure, reply};

/// The body of a write.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WriteBody {
    #[serde(rename = "type")]
    aggregate_type: String,
    id: String,
    event_type: Option<String>,
    /// Apply: the payload object.
    payload: Option<Value>,
    /// Patch: the RFC 6902 operations.
    patch: Option<Value>,
    note: Option<String>,
    metadata: Option<Value>,
    /// Archive: why.
    comment: Option<String>,
}

pub(crate) async fn write(
    State(state): State<Arc<AppState>>,
    Path(action): Path<String>,
    body: Bytes,
) -> Response {
    let body: WriteBody = match serde_json::from_slice(&body) {
        Ok(body) => body,
        Err(e) => {
            return failure(
                StatusCode::BAD_REQUEST,
                "invalid_input",
                format!("the request is not a write this UI makes: {e}"),
            );
        }
    };
    let client = &state.client;
    let (t, id) = (body.aggregate_type.as_str(), body.id.as_str());
    let event_type = body.event_type.as_deref().unwrap_or_default();
    let result = match action.as_str() {
        "apply" | "patch" => {
            let (content, what) = if action == "apply" {
                (body.payload.as_ref(), "payload")
            } else {
                (body.patch.as_ref(), "patch")
            };
            let Some(content) = content else {
                return failure(
                    StatusCode::BAD_REQUEST,
                    "invalid_input",
                    format!("{action} needs a {what}"),
                );
            };
            let mut call = if action == "apply" {
                client.apply(t, id, event_type, content)
            } else {
                client.patch(t, id, event_type, content)
            };
            if let Some(note) = body.note.as_deref().filter(|n| !n.is_empty()) {
                call = call.note(note);
            }
            if let Some(metadata) = body.metadata.as_ref().filter(|m| !m.is_null()) {
                call = call.metadata(metadata);
            }
            call.await
                .map(|written| written.echo().map(event_json).unwrap_or(Value::Null))
        }
        "archive" | "restore" => {
            let call = if action == "archive" {
                let call = client.archive(t, id);
                match body.comment.as_deref().filter(|c| !c.is_empty()) {
                    Some(comment) => call.comment(comment),
                    None => call,
                }
            } else {
                client.restore(t, id)
            };
            call.await
                .map(|written| written.echo().map(aggregate_json).unwrap_or(Value::Null))
        }
        _ => return failure(StatusCode::NOT_FOUND, "not_found", "no such write"),
    };
    match result {
        Ok(echo) => reply(json!({"done": true, "echo": echo})),
        Err(e) => engine_failure(&e),
    }
}
