//! The JSON reads behind the pages. Every listing goes through the engine's streams, whose
//! cursors never skip the rows the server drops from short pages.

use std::sync::Arc;

use axum::Extension;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use edbx::{Aggregate, ErrorKind, Event, VerifyOutcome};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::AppState;
use crate::security::Session;
use crate::time::ms;

/// Most rows one page of the UI asks for.
pub(crate) const MAX_TAKE: u64 = 500;

/// A JSON reply.
pub(crate) fn reply(value: Value) -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        value.to_string(),
    )
        .into_response()
}

/// A failure the page shows as it is: `{"error": message, "kind": …}` with a status that fits.
pub(crate) fn failure(status: StatusCode, kind: &str, message: impl Into<String>) -> Response {
    let body = json!({"error": message.into(), "kind": kind});
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

/// An engine error as a reply: the message (which never holds the token) and its kind.
pub(crate) fn engine_failure(e: &edbx::Error) -> Response {
    let (status, kind) = match e.kind() {
        ErrorKind::InvalidInput => (StatusCode::BAD_REQUEST, "invalid_input"),
        ErrorKind::Timeout => (StatusCode::GATEWAY_TIMEOUT, "timeout"),
        ErrorKind::OutcomeUnknown => (StatusCode::BAD_GATEWAY, "outcome_unknown"),
        ErrorKind::ReplyTooLarge => (StatusCode::BAD_GATEWAY, "reply_too_large"),
        ErrorKind::Connect | ErrorKind::NotSent | ErrorKind::Disconnected => {
            (StatusCode::BAD_GATEWAY, "unreachable")
        }
        ErrorKind::Handshake => (StatusCode::BAD_GATEWAY, "refused"),
        ErrorKind::Server if e.is_not_found() => (StatusCode::NOT_FOUND, "not_found"),
        ErrorKind::Server => (StatusCode::BAD_GATEWAY, "server"),
        _ => (StatusCode::BAD_GATEWAY, "error"),
    };
    let kind = match e.server_code() {
        Some(code) if kind == "server" => format!("server:{}", code.as_str()),
        _ => kind.to_owned(),
    };
    failure(status, &kind, e.to_string())
}

pub(crate) async fn not_found() -> Response {
    failure(StatusCode::NOT_FOUND, "not_found", "no such page")
}

/// What the page needs to know about this UI: the server it shows, whether writes are on,
/// and (then) the session's CSRF token.
pub(crate) async fn session(
    State(state): State<Arc<AppState>>,
    Extension(session): Extension<Session>,
) -> Response {
    let config = state.client.config();
    let csrf = if state.allow_writes {
        state.security.csrf(&session.0)
    } else {
        None
    };
    reply(json!({
        "server": format!("{}:{}", config.get_host(), config.get_port()),
        "tenant": config.get_tenant_id(),
        "allow_writes": state.allow_writes,
        "csrf": csrf,
        "edbx_version": env!("CARGO_PKG_VERSION"),
        "live_source": state.hub.source_name(),
    }))
}

/// An aggregate as the pages show it: the server's JSON, plus its times in milliseconds.
pub(crate) fn aggregate_json(aggregate: &Aggregate) -> Value {
    let mut value = aggregate
        .raw
        .as_ref()
        .and_then(|raw| serde_json::from_str::<Value>(raw.get()).ok())
        .unwrap_or_else(|| json!({"aggregate_type": aggregate.aggregate_type, "aggregate_id": aggregate.aggregate_id, "version": aggregate.version}));
    if let Value::Object(map) = &mut value {
        if let Some(t) = aggregate.updated_at.as_deref().and_then(ms) {
            map.insert("_updated_ms".into(), t.into());
        }
        if let Some(t) = aggregate.created_at.as_deref().and_then(ms) {
            map.insert("_created_ms".into(), t.into());
        }
    }
    value
}

/// An event as the pages show it: the server's JSON, plus its time in milliseconds.
pub(crate) fn event_json(event: &Event) -> Value {
    let mut value = event
        .raw
        .as_ref()
        .and_then(|raw| serde_json::from_str::<Value>(raw.get()).ok())
        .unwrap_or(Value::Null);
    if let Value::Object(map) = &mut value {
        if let Some(t) = ms(&event.metadata.created_at) {
            map.insert("_ms".into(), t.into());
        }
    }
    value
}

#[derive(Deserialize)]
pub(crate) struct ListQuery {
    #[serde(rename = "type")]
    aggregate_type: Option<String>,
    filter: Option<String>,
    sort: Option<String>,
    cursor: Option<String>,
    take: Option<u64>,
    /// `active` (default), `archived` or `all`.
    scope: Option<String>,
}

/// Whether a sort can be paged past its first page (a single `created_at`/`updated_at` key):
/// the engine streams only those.
fn pageable_sort(sort: &str) -> bool {
    let sort = sort.trim();
    !sort.contains(',')
        && matches!(
            sort.split(':').next().unwrap_or("").trim(),
            "created_at" | "updated_at"
        )
}

/// The cursor that resumes a listing right after `last` (PROTOCOL.md §3): `ts:type:id` in a
/// timestamp sort, else the row's own key in its scope.
fn resume_cursor(last: &Aggregate, sorted: bool) -> String {
    let scope = if sorted {
        "ts"
    } else if last.archived {
        "r"
    } else {
        "a"
    };
    format!("{scope}:{}:{}", last.aggregate_type, last.aggregate_id)
}

/// One page of aggregates: `take` rows when that many follow (read across the server's short
/// pages), and the cursor after the last.
pub(crate) async fn aggregates(
    State(state): State<Arc<AppState>>,
    Query(q): Query<ListQuery>,
) -> Response {
    let take = q.take.unwrap_or(50).clamp(1, MAX_TAKE);
    let mut list = state.client.list().take(take);
    let filter = q.filter.as_deref().map(str::trim).filter(|f| !f.is_empty());
    let sort = q.sort.as_deref().map(str::trim).filter(|s| !s.is_empty());
    if let Some(t) = q.aggregate_type.as_deref().filter(|t| !t.is_empty()) {
        list = list.aggregate_type(t);
        // Without a cursor, start at the type's first key rather than scan every type before
        // it (ids start with a letter or digit, after U+0001).
        if q.cursor.is_none() && sort.is_none() && edbx_valid_type(t) {
            let scope = if q.scope.as_deref() == Some("archived") {
                "r"
            } else {
                "a"
            };
            list = list.cursor(format!("{scope}:{t}:\u{1}"));
        }
    }
    if let Some(f) = filter {
        list = list.filter(f);
    }
    match q.scope.as_deref() {
        Some("archived") => list = list.archived_only(true),
        Some("all") => list = list.include_archived(true),
        _ => {}
    }
    if let Some(c) = q.cursor.as_deref().filter(|c| !c.is_empty()) {
        list = list.cursor(c);
    }
    let sorted = sort.is_some_and(pageable_sort);
    if let Some(s) = sort {
        list = list.sort(s);
        if !sorted {
            // The server cannot page this sort: one page, said to be incomplete when it is.
            return match list.await {
                Ok(page) => reply(json!({
                    "items": page.items.iter().map(aggregate_json).collect::<Vec<_>>(),
                    "next_cursor": null,
                    "complete": page.complete,
                    "pageable": false,
                })),
                Err(e) => engine_failure(&e),
            };
        }
    }
    let mut stream = list.stream().limit(take);
    let mut items = Vec::new();
    while let Some(row) = stream.next().await {
        match row {
            Ok(aggregate) => items.push(aggregate),
            Err(e) => return engine_failure(&e),
        }
    }
    let next_cursor = (items.len() as u64 == take)
        .then(|| items.last().map(|last| resume_cursor(last, sorted)))
        .flatten();
    reply(json!({
        "items": items.iter().map(aggregate_json).collect::<Vec<_>>(),
        "next_cursor": next_cursor,
        "complete": next_cursor.is_none(),
        "pageable": true,
    }))
}

/// Whether a type is well formed (a cursor is built from it only then).
fn edbx_valid_type(t: &str) -> bool {
    let mut chars = t.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

#[derive(Deserialize)]
pub(crate) struct AggregateQuery {
    #[serde(rename = "type")]
    pub(crate) aggregate_type: String,
    pub(crate) id: String,
}

/// One aggregate, or `{"found": false}`.
pub(crate) async fn aggregate(
    State(state): State<Arc<AppState>>,
    Query(q): Query<AggregateQuery>,
) -> Response {
    match state.client.get(&q.aggregate_type, &q.id).await {
        Ok(Some(aggregate)) => {
            reply(json!({"found": true, "aggregate": aggregate_json(&aggregate)}))
        }
        Ok(None) => reply(json!({"found": false})),
        Err(e) => engine_failure(&e),
    }
}

#[derive(Deserialize)]
pub(crate) struct EventsQuery {
    #[serde(rename = "type")]
    aggregate_type: String,
    id: String,
    /// Events after this version (default 0: from the first).
    after: Option<u64>,
    take: Option<u64>,
}

/// A run of an aggregate's events in version order: `take` of them after version `after`.
pub(crate) async fn events(
    State(state): State<Arc<AppState>>,
    Query(q): Query<EventsQuery>,
) -> Response {
    let take = q.take.unwrap_or(50).clamp(1, MAX_TAKE);
    let mut stream = state
        .client
        .events(&q.aggregate_type, &q.id)
        .after_version(q.after.unwrap_or(0))
        .take(take)
        .stream()
        .limit(take);
    let mut items = Vec::new();
    while let Some(row) = stream.next().await {
        match row {
            Ok(event) => items.push(event_json(&event)),
            Err(e) => return engine_failure(&e),
        }
    }
    reply(json!({"items": items}))
}

/// The Merkle check, with its true outcome: intact, mismatch, or could not check (and why).
pub(crate) async fn verify(
    State(state): State<Arc<AppState>>,
    Query(q): Query<AggregateQuery>,
) -> Response {
    match state.client.verify(&q.aggregate_type, &q.id).await {
        Ok(check) => {
            let (outcome, reason) = match check.outcome {
                VerifyOutcome::Intact => ("intact", None),
                VerifyOutcome::Mismatch => ("mismatch", None),
                VerifyOutcome::Unverifiable(why) => ("unverifiable", Some(why.as_str())),
                _ => ("unverifiable", Some("unknown")),
            };
            reply(json!({
                "outcome": outcome,
                "reason": reason,
                "detail": check.detail,
                "version": check.version,
                "merkle_root": check.merkle_root,
                "recomputed_root": check.recomputed_root,
                "events": check.events,
                "first_bad_version": check.first_bad_version,
            }))
        }
        // A check that could not run is "could not check", never a mismatch.
        Err(e) => {
            let mut response = engine_failure(&e);
            response.headers_mut().insert(
                "x-edbx-verify",
                axum::http::HeaderValue::from_static("not-checked"),
            );
            response
        }
    }
}

/// Aggregates whose reference fields point at this one.
pub(crate) async fn referrers(
    State(state): State<Arc<AppState>>,
    Query(q): Query<AggregateQuery>,
) -> Response {
    match state.client.referrers(&q.aggregate_type, &q.id).await {
        Ok(items) => reply(json!({
            "items": items.iter().map(|r| json!({
                "aggregate_type": r.aggregate_type,
                "aggregate_id": r.aggregate_id,
                "path": r.path,
            })).collect::<Vec<_>>()
        })),
        Err(e) => engine_failure(&e),
    }
}

/// The aggregate's snapshots.
pub(crate) async fn snapshots(
    State(state): State<Arc<AppState>>,
    Query(q): Query<AggregateQuery>,
) -> Response {
    match state
        .client
        .list_snapshots()
        .aggregate(q.aggregate_type.as_str(), q.id.as_str())
        .await
    {
        Ok(items) => reply(json!({
            "items": items.iter().map(|s| s.raw.as_ref()
                .and_then(|raw| serde_json::from_str::<Value>(raw.get()).ok())
                .unwrap_or(Value::Null)).collect::<Vec<_>>()
        })),
        Err(e) => engine_failure(&e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_single_timestamp_sorts_page() {
        assert!(pageable_sort("updated_at:desc"));
        assert!(pageable_sort("created_at"));
        assert!(!pageable_sort("aggregate_id:asc"));
        assert!(!pageable_sort("created_at:desc, aggregate_id"));
    }
}
