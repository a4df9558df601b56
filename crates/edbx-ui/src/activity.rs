//! The overview's numbers: aggregate types with their counts (counted in the background, the
//! server has no count), events per minute and the most active aggregates (from the aggregates
//! changed in the window and their recent events).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Query, State};
use axum::response::Response;
use edbx::{Aggregate, Client, Event};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::AppState;
use crate::api::{engine_failure, reply};
use crate::time::{ms, now_ms};

/// Types discovered at most (one request each).
const MAX_TYPES: usize = 1_000;

/// Counts of one type.
#[derive(Default, Clone, Copy)]
struct Counts {
    active: u64,
    archived: u64,
}

/// One run of counting, as far as it got.
#[derive(Default)]
struct Scan {
    types: BTreeMap<String, Counts>,
    /// The type being counted in each scope (active, archived); `None` once that scope is done.
    position: [Option<String>; 2],
    done: [bool; 2],
    scanned: u64,
    skipped: u64,
    error: Option<String>,
    started_ms: i64,
    finished_ms: Option<i64>,
}

impl Scan {
    fn to_json(&self) -> Value {
        let counted = |scope: usize, t: &str| {
            self.done[scope] || self.position[scope].as_deref().is_some_and(|p| p > t)
        };
        let types: Vec<Value> = self
            .types
            .iter()
            .map(|(t, c)| {
                json!({
                    "type": t,
                    "active": c.active,
                    "archived": c.archived,
                    "final": counted(0, t) && counted(1, t),
                })
            })
            .collect();
        json!({
            "types": types,
            "scanned": self.scanned,
            "skipped": self.skipped,
            "done": self.done[0] && self.done[1] || self.error.is_some(),
            "error": self.error,
            "started_ms": self.started_ms,
            "finished_ms": self.finished_ms,
        })
    }
}

/// A count in progress, and whether its types are found yet.
type Counting = (Arc<Mutex<Scan>>, tokio::sync::watch::Receiver<bool>);

/// The latest count, shared with the task that makes it.
#[derive(Default)]
pub(crate) struct TypeCounts {
    scan: Mutex<Option<Counting>>,
}

/// How long a request for the types waits for them to be found (one listing per type) before
/// it answers with what there is.
const DISCOVERY_WAIT: Duration = Duration::from_millis(500);

#[derive(Deserialize)]
pub(crate) struct TypesQuery {
    /// Count again (when the last count is over).
    refresh: Option<u8>,
}

/// The types and their counts so far; starts a count when there is none (or `refresh=1` and
/// the last one is over).
pub(crate) async fn types(
    State(state): State<Arc<AppState>>,
    Query(q): Query<TypesQuery>,
) -> Response {
    let (scan, mut discovered) = {
        let mut current = state.types.scan.lock().expect("types lock");
        let over = current
            .as_ref()
            .is_none_or(|(s, _)| s.lock().expect("scan lock").finished_ms.is_some());
        if current.is_none() || (q.refresh == Some(1) && over) {
            let scan = Arc::new(Mutex::new(Scan {
                started_ms: now_ms(),
                ..Scan::default()
            }));
            let (found, discovered) = tokio::sync::watch::channel(false);
            tokio::spawn(count(state.client.clone(), scan.clone(), found));
            *current = Some((scan, discovered));
        }
        current.clone().expect("set above")
    };
    // Names first: wait (briefly) for the types to be found rather than answer "none yet".
    let _ = tokio::time::timeout(DISCOVERY_WAIT, discovered.wait_for(|found| *found)).await;
    let json = scan.lock().expect("scan lock").to_json();
    reply(json)
}

async fn count(client: Client, scan: Arc<Mutex<Scan>>, found: tokio::sync::watch::Sender<bool>) {
    if let Err(e) = discover(&client, &scan).await {
        tracing::debug!("types not discovered ahead of the count: {e}");
    }
    let _ = found.send(true);
    for (scope, archived) in [(0, false), (1, true)] {
        let mut stream = client
            .list()
            .take(1000)
            .archived_only(archived)
            .skip_unlistable(true)
            .stream();
        while let Some(row) = stream.next().await {
            let mut scan = scan.lock().expect("scan lock");
            match row {
                Ok(aggregate) => {
                    let counts = scan
                        .types
                        .entry(aggregate.aggregate_type.clone())
                        .or_default();
                    if archived {
                        counts.archived += 1;
                    } else {
                        counts.active += 1;
                    }
                    scan.scanned += 1;
                    scan.position[scope] = Some(aggregate.aggregate_type);
                }
                Err(e) => {
                    scan.error = Some(e.to_string());
                    scan.finished_ms = Some(now_ms());
                    return;
                }
            }
        }
        let mut scan = scan.lock().expect("scan lock");
        for (t, _) in stream.skipped() {
            let counts = scan.types.entry(t.clone()).or_default();
            if archived {
                counts.archived += 1;
            } else {
                counts.active += 1;
            }
            scan.skipped += 1;
        }
        scan.done[scope] = true;
        scan.position[scope] = None;
    }
    scan.lock().expect("scan lock").finished_ms = Some(now_ms());
}

/// Finds every type with one one-row listing each, stepping past each type's ids (a cursor
/// `a:TYPE:~` sorts after every id of TYPE: ids are letters, digits, `_` and `-`), so the
/// page can name the types before they are counted.
async fn discover(client: &Client, scan: &Mutex<Scan>) -> edbx::Result<()> {
    for (scope, archived) in [("a", false), ("r", true)] {
        let mut after: Option<String> = None;
        for _ in 0..MAX_TYPES {
            let mut list = client.list().take(1).archived_only(archived);
            if let Some(t) = &after {
                list = list.cursor(format!("{scope}:{t}:~"));
            }
            let page = list.await?;
            let Some(first) = page.items.into_iter().next() else {
                break;
            };
            let t = first.aggregate_type;
            scan.lock()
                .expect("scan lock")
                .types
                .entry(t.clone())
                .or_default();
            after = Some(t);
        }
    }
    Ok(())
}

/// A type (or the whole store) and a window in minutes.
type Scope = (Option<String>, u32);

/// Recent activity, computed at most every few seconds per scope.
#[derive(Default)]
pub(crate) struct Cache {
    entries: Mutex<HashMap<Scope, (Instant, Value)>>,
}

/// How long a computed activity is served again.
const ACTIVITY_TTL: Duration = Duration::from_secs(5);
/// Aggregates read per activity, at most (the most recently changed).
const MAX_ACTIVE_AGGREGATES: usize = 1_000;
/// Aggregates whose events are read at the same time.
const CONCURRENCY: usize = 8;

#[derive(Deserialize)]
pub(crate) struct ActivityQuery {
    #[serde(rename = "type")]
    aggregate_type: Option<String>,
    minutes: Option<u32>,
}

/// Events per minute over the last `minutes` (default 60) and the most active aggregates, for
/// the store or one type.
pub(crate) async fn activity(
    State(state): State<Arc<AppState>>,
    Query(q): Query<ActivityQuery>,
) -> Response {
    let minutes = q.minutes.unwrap_or(60).clamp(1, 24 * 60);
    let key = (q.aggregate_type.clone().filter(|t| !t.is_empty()), minutes);
    if let Some((at, value)) = state
        .activity
        .entries
        .lock()
        .expect("activity lock")
        .get(&key)
    {
        if at.elapsed() < ACTIVITY_TTL {
            return reply(value.clone());
        }
    }
    match compute(&state.client, key.0.as_deref(), minutes).await {
        Ok(value) => {
            let mut entries = state.activity.entries.lock().expect("activity lock");
            entries.retain(|_, (at, _)| at.elapsed() < ACTIVITY_TTL);
            entries.insert(key, (Instant::now(), value.clone()));
            reply(value)
        }
        Err(e) => engine_failure(&e),
    }
}

async fn compute(
    client: &Client,
    aggregate_type: Option<&str>,
    minutes: u32,
) -> edbx::Result<Value> {
    const MINUTE: i64 = 60_000;
    let to = (now_ms() / MINUTE + 1) * MINUTE;
    let from = to - i64::from(minutes) * MINUTE;
    let mut list = client.list().sort("updated_at:desc").take(100);
    if let Some(t) = aggregate_type {
        list = list.aggregate_type(t);
    }
    let mut stream = list.stream();
    let mut changed = Vec::new();
    let mut capped = false;
    while let Some(aggregate) = stream.next().await {
        let aggregate = aggregate?;
        if aggregate
            .updated_at
            .as_deref()
            .and_then(ms)
            .is_some_and(|t| t < from)
        {
            break;
        }
        if changed.len() == MAX_ACTIVE_AGGREGATES {
            capped = true;
            break;
        }
        changed.push(aggregate);
    }
    let mut buckets = vec![0u64; minutes as usize];
    let mut per_aggregate: Vec<(String, String, u64)> = Vec::new();
    let mut total = 0u64;
    for chunk in changed.chunks(CONCURRENCY) {
        let mut tasks = tokio::task::JoinSet::new();
        for aggregate in chunk {
            let client = client.clone();
            let aggregate = aggregate.clone();
            tasks.spawn(async move {
                let events = since(&client, &aggregate, from).await;
                (aggregate.aggregate_type, aggregate.aggregate_id, events)
            });
        }
        while let Some(done) = tasks.join_next().await {
            let (t, id, events) = match done {
                Ok(done) => done,
                Err(e) => std::panic::resume_unwind(e.into_panic()),
            };
            let events = events?;
            for event in &events {
                if let Some(at) = ms(&event.metadata.created_at) {
                    let index = ((at - from) / MINUTE).clamp(0, i64::from(minutes) - 1);
                    buckets[index as usize] += 1;
                }
            }
            total += events.len() as u64;
            if !events.is_empty() {
                per_aggregate.push((t, id, events.len() as u64));
            }
        }
    }
    per_aggregate.sort_by(|a, b| b.2.cmp(&a.2).then_with(|| (&a.0, &a.1).cmp(&(&b.0, &b.1))));
    per_aggregate.truncate(10);
    Ok(json!({
        "type": aggregate_type,
        "from_ms": from,
        "to_ms": to,
        "minutes": minutes,
        "buckets": buckets,
        "total": total,
        "aggregates": changed.len(),
        "capped": capped,
        "top": per_aggregate.iter().map(|(t, id, n)| json!({
            "aggregate_type": t, "aggregate_id": id, "events": n
        })).collect::<Vec<_>>(),
    }))
}

/// An aggregate's events after `version`.
async fn after_version(
    client: &Client,
    aggregate: &Aggregate,
    version: u64,
) -> edbx::Result<Vec<Event>> {
    client
        .events(&aggregate.aggregate_type, &aggregate.aggregate_id)
        .after_version(version)
        .take(1000)
        .stream()
        .collect_all()
        .await
}

/// An aggregate's events created at or after `floor` (ms), read from its end backwards in
/// growing steps, so an aggregate with a long history costs only its recent events.
async fn since(client: &Client, aggregate: &Aggregate, floor: i64) -> edbx::Result<Vec<Event>> {
    let mut step = 8u64;
    loop {
        let after = aggregate.version.saturating_sub(step);
        let events = after_version(client, aggregate, after).await?;
        let reaches_back = events
            .first()
            .and_then(|e| ms(&e.metadata.created_at))
            .is_none_or(|t| t < floor);
        if after == 0 || reaches_back {
            return Ok(events
                .into_iter()
                .filter(|e| ms(&e.metadata.created_at).is_some_and(|t| t >= floor))
                .collect());
        }
        step = step.saturating_mul(4);
    }
}
