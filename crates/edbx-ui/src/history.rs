//! The state of an aggregate at any version, and what each event changed: its events folded
//! with [`edbx::Event::apply_to`] (the server's own rule), from a small cache of recently viewed
//! histories (events never change once written, so a cached prefix stays true).

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use edbx::Event;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::AppState;
use crate::api::{engine_failure, event_json, failure, reply};

/// Histories kept (the most recently viewed aggregates).
const CACHED_HISTORIES: usize = 8;
/// Events asked for per request while catching up (the server sends fewer: ~7.5 KiB).
const PAGE: u64 = 1000;
/// Slices of a history read at the same time.
const PARALLEL: u64 = 8;
/// The smallest slice worth a stream of its own.
const MIN_SLICE: u64 = 64;
/// Events read from the end, at most, to find what the latest event changed.
const TAIL_BUDGET: u64 = 256;

/// The events of one aggregate read so far: versions 1..=len, in order.
#[derive(Default)]
struct History {
    events: Vec<Event>,
}

type Key = (String, String);

/// Recently viewed histories, least recently used first.
#[derive(Default)]
pub(crate) struct Cache {
    entries: Mutex<VecDeque<(Key, Arc<tokio::sync::Mutex<History>>)>>,
}

impl Cache {
    fn entry(&self, key: Key) -> Arc<tokio::sync::Mutex<History>> {
        let mut entries = self.entries.lock().expect("history cache lock");
        let found = entries.iter().position(|(k, _)| *k == key);
        let entry = match found {
            Some(i) => entries.remove(i).expect("present").1,
            None => Arc::default(),
        };
        entries.push_back((key, entry.clone()));
        while entries.len() > CACHED_HISTORIES {
            entries.pop_front();
        }
        entry
    }
}

#[derive(Deserialize)]
pub(crate) struct StateQuery {
    #[serde(rename = "type")]
    aggregate_type: String,
    id: String,
    /// The version to show; the latest when left out.
    version: Option<u64>,
}

/// The state at a version, the state before it, the event that made it, and the keys it
/// changed.
pub(crate) async fn state_at(
    State(state): State<Arc<AppState>>,
    Query(q): Query<StateQuery>,
) -> Response {
    let entry = state
        .history
        .entry((q.aggregate_type.clone(), q.id.clone()));
    let mut history = entry.lock().await;
    let mut latest = None;
    if q.version.is_none_or(|v| v > history.events.len() as u64) {
        // Not read yet: the latest version is found from the end, without the whole history.
        match latest_from_the_end(&state.client, &q).await {
            Ok(FromTheEnd::Shown(shown)) => return reply(shown),
            Ok(FromTheEnd::Fold(version)) => latest = version,
            Err(refusal) => return refusal,
        }
    }
    let wanted = q.version.or(latest).unwrap_or(u64::MAX);
    if let Err(refusal) = catch_up(&state.client, &q, &mut history, wanted).await {
        return refusal;
    }
    let events = &history.events;
    if events.is_empty() {
        return failure(
            StatusCode::NOT_FOUND,
            "no_events",
            "the server lists no events for this aggregate (it does not exist, or it is archived: \
             restore it to read its history)",
        );
    }
    // Events are read only as far as asked: this is the latest version when none was asked.
    let latest = events.len() as u64;
    let version = q.version.unwrap_or(latest);
    if version == 0 || version > latest {
        return failure(
            StatusCode::NOT_FOUND,
            "no_such_version",
            format!("the aggregate has versions 1 to {latest}, not {version}"),
        );
    }
    let mut before = BTreeMap::new();
    for event in &events[..version as usize - 1] {
        event.apply_to(&mut before);
    }
    let event = &events[version as usize - 1];
    let mut after = before.clone();
    event.apply_to(&mut after);
    reply(json!({
        "version": version,
        "state": after,
        "event": event_json(event),
        "changes": changes(&before, &after, event),
    }))
}

/// What [`latest_from_the_end`] found.
enum FromTheEnd {
    /// The answer.
    Shown(Value),
    /// Fold from the start instead; the latest version, when known.
    Fold(Option<u64>),
}

/// The state at the aggregate's latest version without reading its whole history: the state
/// `get` returns (which the fold equals, see `crates/edbx/tests/it/fold.rs`), and before it,
/// each key the last event wrote set back to the value an earlier event wrote last — read from
/// the end backwards in growing steps, until every such key is found or the first event is
/// reached, or [`TAIL_BUDGET`] events are read. [`FromTheEnd::Fold`] when the version asked
/// for is not the latest, the budget is spent, or the aggregate has no events to list (the
/// caller then folds from the start, and says why).
async fn latest_from_the_end(
    client: &edbx::Client,
    q: &StateQuery,
) -> Result<FromTheEnd, Response> {
    let current = match client.get(&q.aggregate_type, &q.id).await {
        Ok(Some(current)) => current,
        Ok(None) => return Ok(FromTheEnd::Fold(None)),
        Err(e) => return Err(engine_failure(&e)),
    };
    let latest = current.version;
    let fold = Ok(FromTheEnd::Fold(Some(latest)));
    if current.archived || latest == 0 || q.version.is_some_and(|v| v != latest) {
        return fold;
    }
    // Events `from + 1 ..= latest`, in order.
    let mut tail: Vec<Event> = Vec::new();
    let mut from = latest;
    let mut step = 16u64;
    loop {
        let start = latest.saturating_sub(step);
        let mut older = client
            .events(&q.aggregate_type, &q.id)
            .after_version(start)
            .take(PAGE)
            .stream()
            .limit(from - start)
            .collect_all()
            .await
            .map_err(|e| engine_failure(&e))?;
        let versions_ok = older
            .iter()
            .zip(start + 1..)
            .all(|(e, expected)| e.version == expected)
            && older.len() as u64 == from - start;
        if !versions_ok {
            // Not the listing expected (events missing, or not served): fold from the start,
            // which reports what is wrong.
            return fold;
        }
        older.append(&mut tail);
        tail = older;
        from = start;
        let (last, earlier) = tail.split_last().expect("at least the latest event");
        let mut written = BTreeMap::new();
        last.apply_to(&mut written);
        let mut before = current.state.clone();
        let mut missing = 0;
        for key in written.keys() {
            let previous = earlier.iter().rev().find_map(|e| {
                let mut wrote = BTreeMap::new();
                e.apply_to(&mut wrote);
                wrote.remove(key)
            });
            match previous {
                Some(text) => {
                    before.insert(key.clone(), text);
                }
                None => {
                    before.remove(key);
                    missing += 1;
                }
            }
        }
        if missing > 0 && from > 0 && step >= TAIL_BUDGET {
            // A key the last event wrote for the first time, perhaps: only the whole history
            // can tell. The caller folds it (in parallel slices).
            return fold;
        }
        if missing == 0 || from == 0 {
            return Ok(FromTheEnd::Shown(json!({
                "version": latest,
                "state": current.state,
                "event": event_json(last),
                "changes": changes(&before, &current.state, last),
            })));
        }
        step = step.saturating_mul(4);
    }
}

/// The keys an event wrote: added, changed, or written with the value they had.
fn changes(
    before: &BTreeMap<String, String>,
    after: &BTreeMap<String, String>,
    event: &Event,
) -> Value {
    let written: Vec<&String> = match &event.payload {
        Value::Object(map) => map.keys().collect(),
        Value::Null => Vec::new(),
        _ => after.keys().filter(|k| k.as_str() == "_value").collect(),
    };
    written
        .into_iter()
        .map(|key| {
            let old = before.get(key);
            let new = after.get(key);
            let kind = match (old, new) {
                (None, _) => "added",
                (Some(o), Some(n)) if o == n => "unchanged",
                _ => "changed",
            };
            json!({"key": key, "kind": kind, "before": old, "after": new})
        })
        .collect()
}

/// Reads events after those cached until `wanted` is cached or the aggregate's end is reached
/// (for the latest version, `wanted` is `u64::MAX`: one request finds out whether more came).
/// A known range of versions is read in [`PARALLEL`] slices at once: the server cuts each
/// page to ~7.5 KiB (a few dozen events), so one stream would take a round trip per page.
async fn catch_up(
    client: &edbx::Client,
    q: &StateQuery,
    history: &mut History,
    wanted: u64,
) -> Result<(), Response> {
    let have = history.events.len() as u64;
    if have >= wanted {
        return Ok(());
    }
    if wanted != u64::MAX && wanted - have > 2 * MIN_SLICE {
        let slice = (wanted - have).div_ceil(PARALLEL).max(MIN_SLICE);
        let mut tasks = tokio::task::JoinSet::new();
        let mut start = have;
        while start < wanted {
            let len = slice.min(wanted - start);
            let events = client
                .events(&q.aggregate_type, &q.id)
                .after_version(start)
                .take(PAGE)
                .stream()
                .limit(len);
            tasks.spawn(async move { (start, events.collect_all().await) });
            start += len;
        }
        let mut slices = Vec::new();
        while let Some(done) = tasks.join_next().await {
            match done {
                Ok((start, Ok(events))) => slices.push((start, events)),
                Ok((_, Err(e))) => return Err(engine_failure(&e)),
                Err(e) => std::panic::resume_unwind(e.into_panic()),
            }
        }
        slices.sort_by_key(|(start, _)| *start);
        for (_, events) in slices {
            for event in events {
                append(history, event)?;
            }
        }
        return Ok(());
    }
    let mut stream = client
        .events(&q.aggregate_type, &q.id)
        .after_version(have)
        .take(PAGE)
        .stream();
    while let Some(event) = stream.next().await {
        append(history, event.map_err(|e| engine_failure(&e))?)?;
        if history.events.len() as u64 >= wanted {
            break;
        }
    }
    Ok(())
}

/// Adds the next event to a history, which must be the next version.
fn append(history: &mut History, event: Event) -> Result<(), Response> {
    let expected = history.events.len() as u64 + 1;
    if event.version != expected {
        return Err(failure(
            StatusCode::BAD_GATEWAY,
            "gap",
            format!(
                "the server listed version {} where version {expected} was due: the history \
                 cannot be folded",
                event.version
            ),
        ));
    }
    history.events.push(event);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(version: u64, payload: Value) -> Event {
        serde_json::from_value(json!({
            "aggregate_type": "t", "aggregate_id": "a", "event_type": "e", "payload": payload,
            "metadata": {"event_id": "1", "created_at": "2026-01-01T00:00:00Z"},
            "version": version,
        }))
        .unwrap()
    }

    #[test]
    fn changes_name_each_written_key() {
        let mut before = BTreeMap::new();
        event(1, json!({"a": 1, "b": "x"})).apply_to(&mut before);
        let second = event(2, json!({"a": 2, "b": "x", "c": null}));
        let mut after = before.clone();
        second.apply_to(&mut after);
        let changed = changes(&before, &after, &second);
        assert_eq!(
            changed,
            json!([
                {"key": "a", "kind": "changed", "before": "1", "after": "2"},
                {"key": "b", "kind": "unchanged", "before": "x", "after": "x"},
                {"key": "c", "kind": "added", "before": null, "after": ""},
            ])
        );
    }
}
