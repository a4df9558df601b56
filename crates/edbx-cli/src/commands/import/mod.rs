//! `edbx import`: events from NDJSON, many aggregates at a time, each aggregate's lines in
//! order, with a result log written ahead of every write and `--resume` that never sends a line
//! twice.
//!
//! How a line is sent: the first line of an aggregate is a `create` (several times faster on
//! the server than an append), falling back to an append when the aggregate exists; the
//! others are appends. An aggregate's next line is sent only once the one before it is
//! applied: after a refusal or an unknown outcome, the aggregate's later lines are skipped, so
//! no history is written with a hole in it.
//!
//! A line with a `version` (as export writes them) is written only where it belongs: the
//! import reads the aggregate on the target once, skips a version the target already holds
//! with the same content (`present`), refuses one it holds with other content (`conflict`) or
//! that would leave a gap (`gap`), and appends the rest. Importing an export into the server it
//! came from therefore changes nothing. A line without a version is created or appended, as
//! written.

mod log;
mod resolve;

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::fs::File;
use std::future::Future;
use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use edbx::{Client, ErrorKind, Repeat, ServerCode};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;

use self::log::{Account, Header, ResultLog, Status, line_sha};
use self::resolve::{Applied, Decision, decide};
use super::{Ctx, annotate};
use crate::cli::ImportArgs;
use crate::event_line::EventLine;
use crate::exit::{Exit, Failure, Outcome};
use crate::progress::Progress;

/// How long a line waits for an unreachable server (a restart) before the import stops.
const SERVER_WAIT: Duration = Duration::from_secs(60);
/// Most aggregates written at once.
const MAX_CONCURRENCY: usize = 1024;

type Key = (String, String);

/// Where the lines come from: a file is read twice (checked, then sent), stdin is kept.
enum Input {
    File(PathBuf),
    Stdin(Arc<Vec<u8>>),
}

impl Input {
    fn reader(&self) -> Outcome<Box<dyn BufRead + Send>> {
        match self {
            Input::File(path) => {
                let file = File::open(path)
                    .map_err(|e| Failure::usage(format!("cannot read {}: {e}", path.display())))?;
                Ok(Box::new(BufReader::with_capacity(1 << 16, file)))
            }
            Input::Stdin(bytes) => Ok(Box::new(std::io::Cursor::new(ArcBytes(bytes.clone())))),
        }
    }

    fn name(&self) -> String {
        match self {
            Input::File(path) => path.display().to_string(),
            Input::Stdin(_) => "-".to_owned(),
        }
    }
}

struct ArcBytes(Arc<Vec<u8>>);

impl AsRef<[u8]> for ArcBytes {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

/// The longest line read: sixteen times what one frame holds, for JSON escapes and spacing.
/// A longer line cannot be an event the server takes, and is refused without being held in
/// memory whole.
const MAX_LINE_BYTES: usize = 16 * edbx_wire::MAX_FRAME_LEN;

/// Calls `each(line number, text)` for every non-blank line; returns the input's SHA-256.
fn for_each_line(
    input: &Input,
    mut each: impl FnMut(u64, &str) -> Outcome<bool>,
) -> Outcome<String> {
    let mut reader = input.reader()?;
    let mut hasher = Sha256::new();
    let mut buffer = Vec::new();
    let mut number = 0u64;
    loop {
        buffer.clear();
        let limit = MAX_LINE_BYTES as u64 + 1;
        if (&mut reader).take(limit).read_until(b'\n', &mut buffer)? == 0 {
            break;
        }
        number += 1;
        if buffer.len() > MAX_LINE_BYTES && !buffer.ends_with(b"\n") {
            return Err(Failure::usage(format!(
                "{}: line {number} is longer than {MAX_LINE_BYTES} bytes, and no event that \
                 long can be sent (one request holds at most {} bytes); nothing was sent",
                input.name(),
                edbx_wire::MAX_FRAME_LEN
            )));
        }
        hasher.update(&buffer);
        let text = std::str::from_utf8(&buffer)
            .map_err(|_| Failure::usage(format!("{}: line {number} is not UTF-8", input.name())))?;
        if text.trim().is_empty() {
            continue;
        }
        if !each(number, text)? {
            break;
        }
    }
    Ok(hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

/// What the first reading of the input found.
struct Scan {
    sha256: String,
    lines: u64,
    /// Aggregates with a line of unknown outcome (their last applied line is kept in memory).
    uncertain: HashSet<Key>,
    /// The digest of each line the log has a status for.
    shas: HashMap<u64, String>,
    /// The lines asked for by number.
    wanted: HashMap<u64, EventLine>,
}

/// Checks one line against the lines of its aggregate before it (`versions`: each aggregate's
/// last version so far, `None` for lines without one).
fn check_order(line: &EventLine, versions: &mut HashMap<Key, Option<u64>>) -> Result<(), String> {
    let key = (line.aggregate_type.clone(), line.aggregate_id.clone());
    let name = format!("{}/{}", line.aggregate_type, line.aggregate_id);
    match (versions.get(&key), line.version) {
        (Some(Some(_)), None) | (Some(None), Some(_)) => {
            return Err(format!(
                "{name} has lines with a version and lines without: give all of an \
                 aggregate's lines a version, or none"
            ));
        }
        (Some(Some(before)), Some(version)) if version != before + 1 => {
            return Err(format!(
                "version {version} of {name} follows its version {before}: an aggregate's \
                 versions must follow each other, in order"
            ));
        }
        _ => {}
    }
    versions.insert(key, line.version);
    Ok(())
}

/// Checks every line before anything is sent: each by the engine's rules for a write, and
/// each aggregate's versions in order.
fn scan(input: &Input, statuses: &HashMap<u64, Status>, wanted: &HashSet<u64>) -> Outcome<Scan> {
    let mut lines = 0;
    let mut errors = Vec::new();
    let mut error_count = 0;
    let mut uncertain = HashSet::new();
    let mut versions = HashMap::new();
    let mut shas = HashMap::new();
    let mut wanted_lines = HashMap::new();
    let sha256 = for_each_line(input, |number, text| {
        lines += 1;
        let line = EventLine::parse(text).and_then(|line| {
            check_order(&line, &mut versions)?;
            Ok(line)
        });
        match line {
            Ok(line) => {
                if statuses.contains_key(&number) {
                    shas.insert(number, line_sha(text));
                }
                if wanted.contains(&number) {
                    wanted_lines.insert(number, line.clone());
                }
                if statuses.get(&number) == Some(&Status::Uncertain) {
                    uncertain.insert((line.aggregate_type, line.aggregate_id));
                }
            }
            Err(e) => {
                error_count += 1;
                if errors.len() < 10 {
                    errors.push(format!("  line {number}: {e}"));
                }
            }
        }
        Ok(true)
    })?;
    if error_count > 0 {
        return Err(Failure::usage(format!(
            "{}: {error_count} line(s) are not events that can be written; nothing was sent:\n{}",
            input.name(),
            errors.join("\n")
        ))
        .hint(
            "each line is {\"aggregate_type\": …, \"aggregate_id\": …, \"event_type\": …, \
             \"payload\": {…}} with optional \"note\", \"metadata\" and \"version\"",
        ));
    }
    Ok(Scan {
        sha256,
        lines,
        uncertain,
        shas,
        wanted: wanted_lines,
    })
}

/// Whether an input may continue the import its log recorded: the lines the log shows
/// applied or in flight must be unchanged; others (refused, skipped, not sent) may have been
/// edited. Returns what changed, for a message, or why the input is another one.
fn compare_input(
    account: &Account,
    scan: &Scan,
    name: &str,
    log: &Path,
) -> Result<Option<String>, String> {
    let header = &account.header;
    if header.sha256 == scan.sha256 && header.lines == scan.lines {
        return Ok(None);
    }
    let another = |why: String| {
        format!(
            "the log of another input ({}, {} lines), not of {name} ({} lines): {why}",
            header.input, header.lines, scan.lines
        )
    };
    let mut numbers: Vec<u64> = account.statuses.keys().copied().collect();
    numbers.sort_unstable();
    let mut edited = Vec::new();
    for number in numbers {
        let status = account.statuses[&number];
        let (then, now) = (account.shas.get(&number), scan.shas.get(&number));
        let settled = status.is_acked() || status == Status::Uncertain;
        match (then, now) {
            (Some(then), Some(now)) if then == now => {}
            (_, None) if settled => {
                return Err(another(format!(
                    "its line {number}, which the log shows {}, is not there",
                    describe(status)
                )));
            }
            (None, _) if settled => {
                return Err(another(format!(
                    "this log records no digest of its line {number} to tell whether it changed"
                )));
            }
            _ if settled => {
                return Err(another(format!(
                    "its line {number}, which the log shows {}, is different",
                    describe(status)
                )));
            }
            (Some(_), Some(_)) => edited.push(number),
            _ => {}
        }
    }
    let mut changed = format!("{name} changed since {} was started", log.display());
    if header.lines != scan.lines {
        let _ = write!(changed, " ({} lines, now {})", header.lines, scan.lines);
    }
    if !edited.is_empty() {
        let shown: Vec<String> = edited.iter().take(10).map(u64::to_string).collect();
        let _ = write!(
            changed,
            "; edited since they were refused: line(s) {}{}",
            shown.join(", "),
            if edited.len() > 10 { ", …" } else { "" }
        );
    }
    changed.push_str(
        "; the lines the log shows applied are unchanged, and the others are sent as they \
         are now",
    );
    Ok(Some(changed))
}

fn describe(status: Status) -> &'static str {
    match status {
        Status::Acked(_) | Status::Present(_) => "applied",
        Status::Uncertain => "in flight",
        Status::Rejected => "rejected",
        Status::Skipped => "skipped",
    }
}

/// Per aggregate, in the worker that owns it.
#[derive(Default)]
struct AggregateState {
    /// The last line known applied.
    applied: Option<Applied>,
    /// Why the aggregate's next lines are not sent.
    blocked: Option<String>,
    /// For lines with a version: the aggregate on the target, read once.
    target: Option<Target>,
}

/// An aggregate as the target holds it.
struct Target {
    /// Its version (0: it does not exist, or is archived).
    version: u64,
    /// Its events, oldest first.
    events: Vec<edbx::Event>,
}

/// What to do with a line that has a version.
enum Placement {
    /// The target holds it already, with the same content.
    Present,
    /// It is the target's next version: send it (a create when the target has none).
    Next { create: bool },
    /// Not written, and why (`conflict` or `gap`).
    Refused(&'static str, String),
}

/// Where a line of version `version` goes on `target`.
fn place(line: &EventLine, version: u64, target: &Target) -> Placement {
    let name = format!("{}/{}", line.aggregate_type, line.aggregate_id);
    if version <= target.version {
        return match target.events.iter().find(|e| e.version == version) {
            Some(held) if line.same_content(held) => Placement::Present,
            Some(held) => Placement::Refused(
                "conflict",
                format!(
                    "{name} holds another event at version {version} on this server (it \
                     differs in {}): not written",
                    line.differences(held)
                ),
            ),
            None => Placement::Refused(
                "conflict",
                format!(
                    "{name} is at version {} but its version {version} could not be read",
                    target.version
                ),
            ),
        };
    }
    if version == target.version + 1 {
        return Placement::Next {
            create: target.version == 0,
        };
    }
    Placement::Refused(
        "gap",
        format!(
            "{name} is at version {} on this server and this line is its version {version}: \
             versions {} to {} are missing, so it would be stored out of place; not written",
            target.version,
            target.version + 1,
            version - 1
        ),
    )
}

/// How a line is sent.
#[derive(Debug, Clone, Copy)]
enum Sending {
    /// A line without a version: a create when it is its aggregate's first in this import
    /// (an append if the aggregate exists), an append otherwise.
    CreateOrAppend(bool),
    /// A line with a version: exactly a create, or exactly an append.
    Exactly { create: bool },
    /// A version 1 whose aggregate was not read: a create, which succeeds when the aggregate
    /// is new (sparing a read on the way into an empty server) and fails when it exists.
    Probe,
}

/// One pass over the input, shared by its workers.
struct Pass {
    client: Client,
    log: Arc<ResultLog>,
    statuses: HashMap<u64, Status>,
    uncertain: HashSet<Key>,
    allow_unlistable: bool,
    /// Whether lines the server refused before are sent again (`--resume`, not the second
    /// pass).
    retry_rejected: bool,
    stop: AtomicBool,
    abort: Mutex<Option<Failure>>,
    progress: Progress,
}

impl Pass {
    fn record(&self, record: Value) {
        if let Err(e) = self.log.write(&record) {
            self.fail(Failure::new(
                Exit::Internal,
                format!(
                    "cannot write the result log {}: {e}",
                    self.log.path().display()
                ),
            ));
        }
    }

    /// Stops the pass for `failure` (the first one is reported).
    fn fail(&self, failure: Failure) {
        self.stop.store(true, Ordering::SeqCst);
        let mut abort = self.abort.lock().unwrap_or_else(|p| p.into_inner());
        abort.get_or_insert(failure);
    }

    fn stopped(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    async fn line(
        &self,
        number: u64,
        line: EventLine,
        sha: String,
        aggregates: &mut HashMap<Key, AggregateState>,
    ) {
        let key = (line.aggregate_type.clone(), line.aggregate_id.clone());
        let keep_line = self.uncertain.contains(&key);
        let state = aggregates.entry(key).or_default();
        let applied = |version: Option<u64>, line: &EventLine| Applied {
            version,
            line: (keep_line && version.is_none()).then(|| line.clone()),
        };
        match self.statuses.get(&number) {
            Some(status) if status.is_acked() => {
                state.applied = Some(applied(status.version(), &line));
                return;
            }
            // The pass that settles unknown outcomes leaves refusals to the user's --resume.
            Some(Status::Rejected) if !self.retry_rejected => {
                state.blocked = Some(format!("line {number} of this aggregate was rejected"));
                return;
            }
            // Behind an earlier line that is itself not settled, it stays unknown: it is never
            // marked skipped, which would let a later --resume send it a second time.
            Some(Status::Uncertain) if state.blocked.is_some() => return,
            // A line with a version is placed by reading the target, below.
            Some(Status::Uncertain) if line.version.is_some() => {}
            Some(Status::Uncertain) => match self.resolve(&line, state.applied.as_ref()).await {
                Ok(Decision::Landed(version)) => {
                    self.record(
                        json!({"line": number, "status": "acked", "version": version,
                                           "resolved": "found on the server"}),
                    );
                    state.applied = Some(applied(Some(version), &line));
                    return;
                }
                Ok(Decision::NotLanded) => {}
                Ok(Decision::Undecided(why)) => {
                    self.record(json!({"line": number, "status": "unknown",
                                           "message": format!("cannot tell whether it was applied: {why}")}));
                    state.blocked = Some(format!(
                        "line {number} of this aggregate has an unknown outcome"
                    ));
                    return;
                }
                Err(failure) => {
                    self.fail(failure);
                    return;
                }
            },
            _ => {}
        }
        if let Some(reason) = &state.blocked {
            self.record(json!({"line": number, "status": "skipped", "reason": reason}));
            return;
        }
        let how = match line.version {
            None => Sending::CreateOrAppend(state.applied.is_none()),
            // Nothing of the aggregate read yet, and no write of this line in doubt.
            Some(1)
                if state.target.is_none()
                    && self.statuses.get(&number) != Some(&Status::Uncertain) =>
            {
                Sending::Probe
            }
            Some(version) => {
                if state.target.is_none() {
                    match self.read_target(&line).await {
                        Ok(target) => state.target = Some(target),
                        Err(failure) => {
                            self.fail(failure);
                            return;
                        }
                    }
                }
                match self.place(number, &line, version, &sha, state) {
                    Some(how) => how,
                    None => return,
                }
            }
        };
        self.record(json!({"line": number, "status": "sending", "sha": sha}));
        match self.send(&line, how).await {
            // The aggregate exists: its events decide.
            Err(e)
                if matches!(how, Sending::Probe)
                    && e.server_code() == Some(ServerCode::SchemaViolation) =>
            {
                match self.read_target(&line).await {
                    Ok(target) if target.version > 0 => {
                        state.target = Some(target);
                        // Version 1 of an aggregate that has one: present, or a conflict.
                        self.place(number, &line, 1, &sha, state);
                    }
                    // Refused by a schema, or it exists with no events to read: archived.
                    Ok(_) => {
                        let mut message = e.message().to_owned();
                        if message.contains("already exists") {
                            message.push_str(
                                " (archived: its events cannot be read to compare; restore it \
                                 first)",
                            );
                        }
                        self.record(json!({"line": number, "status": "rejected",
                            "code": e.server_code().map(|c| c.as_str().to_owned()),
                            "message": message}));
                        state.blocked =
                            Some(format!("line {number} of this aggregate was rejected"));
                    }
                    Err(failure) => {
                        self.record(json!({"line": number, "status": "not_sent",
                                           "message": failure.message}));
                        self.fail(failure);
                    }
                }
            }
            Ok(version) => {
                let mut record = json!({"line": number, "status": "acked"});
                if let Some(version) = version {
                    record["version"] = json!(version);
                }
                // Another writer got in between the read and this write: the line is stored,
                // at another version; the aggregate's next lines would not fit.
                if let Some((wanted, got)) = line.version.zip(version).filter(|(w, g)| w != g) {
                    record["message"] = json!(format!(
                        "written as version {got}, not {wanted}: another writer changed the aggregate"
                    ));
                    state.blocked = Some(format!(
                        "line {number} of this aggregate was written as version {got}, not {wanted}"
                    ));
                }
                self.record(record);
                match (state.target.as_mut(), line.version) {
                    (Some(target), _) => {
                        target.version = version.or(line.version).unwrap_or(target.version + 1);
                    }
                    // A probe that created the aggregate.
                    (None, Some(wanted)) => {
                        state.target = Some(Target {
                            version: version.unwrap_or(wanted),
                            events: Vec::new(),
                        });
                    }
                    (None, None) => {}
                }
                state.applied = Some(applied(version, &line));
            }
            // A server that fails while writing (`storage`, `io`; server 3.19.4 also answers
            // `storage: … task was cancelled` to writes that arrive while it shuts down) has
            // not refused the line: whether it was applied is read back, like a lost answer.
            Err(e) if matches!(e.server_code(), Some(ServerCode::Storage | ServerCode::Io)) => {
                self.record(json!({"line": number, "status": "unknown",
                                   "message": format!("the server failed while writing: {e}")}));
                state.blocked = Some(format!(
                    "line {number} of this aggregate has an unknown outcome"
                ));
            }
            // A refused token refuses every line: stop, rather than reject them all.
            Err(e) if e.is_auth() => {
                self.record(
                    json!({"line": number, "status": "not_sent", "message": e.to_string()}),
                );
                self.fail(Failure::from(e));
            }
            Err(e) if e.kind() == ErrorKind::Server || e.is_invalid_input() => {
                let code = e
                    .server_code()
                    .map_or_else(|| "invalid_input".to_owned(), |c| c.as_str().to_owned());
                self.record(json!({"line": number, "status": "rejected", "code": code,
                                   "message": e.message()}));
                state.blocked = Some(format!("line {number} of this aggregate was rejected"));
            }
            Err(e) if e.outcome_unknown() || e.was_sent() => {
                self.record(json!({"line": number, "status": "unknown", "message": e.to_string()}));
                state.blocked = Some(format!(
                    "line {number} of this aggregate has an unknown outcome"
                ));
            }
            Err(e) => {
                // Never sent: the line stays to be done.
                self.record(
                    json!({"line": number, "status": "not_sent", "message": e.to_string()}),
                );
                self.fail(Failure::from(e));
            }
        }
    }

    /// Places a line with a version on its aggregate as the target holds it: records it
    /// present or refused (and returns `None`), or returns how to send it.
    fn place(
        &self,
        number: u64,
        line: &EventLine,
        version: u64,
        sha: &str,
        state: &mut AggregateState,
    ) -> Option<Sending> {
        let target = state.target.as_ref().expect("the target is read first");
        match place(line, version, target) {
            Placement::Present => {
                self.record(
                    json!({"line": number, "status": "acked", "version": version,
                                   "present": true, "sha": sha}),
                );
                state.applied = Some(Applied {
                    version: Some(version),
                    line: None,
                });
                None
            }
            Placement::Refused(code, message) => {
                self.record(json!({"line": number, "status": "rejected", "code": code,
                                   "message": message, "sha": sha}));
                state.blocked = Some(format!(
                    "line {number} of this aggregate was not written ({code})"
                ));
                None
            }
            Placement::Next { create } => Some(Sending::Exactly { create }),
        }
    }

    /// Sends one line. Returns the version the server echoed.
    async fn send(&self, line: &EventLine, how: Sending) -> Result<Option<u64>, edbx::Error> {
        self.patiently(false, || self.send_once(line, how)).await
    }

    /// Every event of `line`'s aggregate on the target (none when it does not exist), read
    /// patiently through a restarting server.
    async fn read_events(&self, line: &EventLine) -> edbx::Result<Vec<edbx::Event>> {
        self.patiently(true, || async {
            let mut events = Vec::new();
            let mut stream = self
                .client
                .events(&line.aggregate_type, &line.aggregate_id)
                .stream();
            while let Some(event) = stream.next().await {
                match event {
                    Ok(event) => events.push(event),
                    Err(e) if e.is_not_found() => break,
                    Err(e) => return Err(e),
                }
            }
            Ok(events)
        })
        .await
    }

    /// Reads the aggregate of `line` on the target (none, or archived: version 0).
    async fn read_target(&self, line: &EventLine) -> Outcome<Target> {
        let events = self.read_events(line).await.map_err(Failure::from)?;
        Ok(Target {
            version: events.last().map_or(0, |e| e.version),
            events,
        })
    }

    /// Runs `call` through the engine's outage policy for up to [`SERVER_WAIT`] (a write only
    /// while it was never sent, a read whenever it may be repeated), saying so while it waits.
    async fn patiently<T, F: Future<Output = Result<T, edbx::Error>>>(
        &self,
        idempotent: bool,
        call: impl FnMut() -> F,
    ) -> Result<T, edbx::Error> {
        let repeat = if idempotent {
            Repeat::Idempotent
        } else {
            Repeat::OnlyUnsent
        };
        let mut waited = false;
        let outcome = self
            .client
            .ride_out(SERVER_WAIT, repeat, call, |_| {
                if !waited {
                    self.progress
                        .message("the server is unreachable; waiting for it");
                    waited = true;
                }
                !self.stopped()
            })
            .await;
        if waited {
            self.progress.message("");
        }
        outcome
    }

    async fn send_once(&self, line: &EventLine, how: Sending) -> Result<Option<u64>, edbx::Error> {
        let (t, id, event_type) = (&line.aggregate_type, &line.aggregate_id, &line.event_type);
        let (note, metadata) = (line.note.as_deref(), line.metadata.as_ref());
        if let Sending::Exactly { create: true } | Sending::Probe = how {
            let create = self
                .client
                .create(t, id, event_type, &line.payload)
                .allow_unlistable(self.allow_unlistable);
            return Ok(annotate(create, note, metadata)
                .await?
                .echo()
                .map(|a| a.version));
        }
        if let Sending::CreateOrAppend(true) = how {
            let create = self
                .client
                .create(t, id, event_type, &line.payload)
                .allow_unlistable(self.allow_unlistable);
            match annotate(create, note, metadata).await {
                Ok(written) => return Ok(written.echo().map(|a| a.version)),
                // It exists (or the schema refuses it, which the append then reports).
                Err(e) if e.server_code() == Some(ServerCode::SchemaViolation) => {}
                Err(e) => return Err(e),
            }
        }
        let apply = self
            .client
            .apply(t, id, event_type, &line.payload)
            .allow_unlistable(self.allow_unlistable);
        Ok(annotate(apply, note, metadata)
            .await?
            .echo()
            .map(|e| e.version))
    }

    /// Reads the aggregate back to decide a line of unknown outcome.
    async fn resolve(&self, line: &EventLine, previous: Option<&Applied>) -> Outcome<Decision> {
        let read = self.read_events(line).await;
        match read {
            Ok(events) => Ok(decide(line, previous, &events)),
            Err(e) if e.server_code() == Some(ServerCode::AggregateArchived) => {
                Ok(Decision::Undecided(
                    "the aggregate is archived, so its events cannot be read".to_owned(),
                ))
            }
            Err(e) => Err(Failure::from(e)),
        }
    }
}

async fn worker(mut lines: mpsc::Receiver<(u64, EventLine, String)>, pass: Arc<Pass>) {
    let mut aggregates = HashMap::new();
    while let Some((number, line, sha)) = lines.recv().await {
        if pass.stopped() {
            break;
        }
        // A line the log shows applied costs nothing: not counted in the rate.
        let applied = pass.statuses.get(&number).is_some_and(|s| s.is_acked());
        pass.line(number, line, sha, &mut aggregates).await;
        if applied {
            pass.progress.skip(1);
        } else {
            pass.progress.inc(1);
        }
    }
}

/// How a pass ended.
enum End {
    Done,
    Interrupted,
}

/// Sends the lines the log does not show applied.
async fn run_pass(pass: Arc<Pass>, input: &Arc<Input>, concurrency: usize) -> Outcome<End> {
    let (senders, receivers): (Vec<_>, Vec<_>) =
        (0..concurrency).map(|_| mpsc::channel(64)).unzip();
    let workers: Vec<_> = receivers
        .into_iter()
        .map(|lines| tokio::spawn(worker(lines, pass.clone())))
        .collect();
    let reader = {
        let (pass, input) = (pass.clone(), input.clone());
        tokio::task::spawn_blocking(move || {
            // Each aggregate goes to one worker, which keeps its lines in order.
            let hasher = BuildHasherDefault::<DefaultHasher>::default();
            for_each_line(&input, |number, text| {
                if pass.stopped() {
                    return Ok(false);
                }
                let line = EventLine::parse(text).map_err(|e| {
                    Failure::usage(format!("line {number} changed while importing: {e}"))
                })?;
                let worker = hasher.hash_one((&line.aggregate_type, &line.aggregate_id)) as usize
                    % senders.len();
                Ok(senders[worker]
                    .blocking_send((number, line, line_sha(text)))
                    .is_ok())
            })
        })
    };
    let all = async {
        let read = reader.await;
        for worker in workers {
            if let Err(e) = worker.await {
                pass.fail(Failure::new(
                    Exit::Internal,
                    format!("a worker failed: {e}"),
                ));
            }
        }
        read
    };
    tokio::pin!(all);
    let mut interrupted = false;
    loop {
        tokio::select! {
            read = &mut all => {
                match read {
                    Ok(Ok(_)) => {}
                    Ok(Err(failure)) => pass.fail(failure),
                    Err(e) => pass.fail(Failure::new(Exit::Internal, format!("the reader failed: {e}"))),
                }
                break;
            }
            _ = tokio::signal::ctrl_c() => {
                if interrupted {
                    eprintln!("\nedbx: import: stopped at once; `--resume` checks the writes that were in flight");
                    std::process::exit(Exit::Interrupted as i32);
                }
                interrupted = true;
                pass.stop.store(true, Ordering::SeqCst);
                pass.progress.message("stopping after the writes in flight (Ctrl-C again quits at once)");
            }
        }
    }
    Ok(if interrupted {
        End::Interrupted
    } else {
        End::Done
    })
}

/// The log's account of every line.
#[derive(Debug, Default, serde::Serialize)]
struct Summary {
    lines: u64,
    acked: u64,
    /// Lines with a version the target already held, with the same content: not sent.
    present: u64,
    rejected: u64,
    skipped: u64,
    unknown: u64,
    not_attempted: u64,
}

/// What the log's statuses say about every line.
fn summarize(statuses: &HashMap<u64, Status>, lines: u64) -> Summary {
    let mut summary = Summary {
        lines,
        ..Summary::default()
    };
    for status in statuses.values() {
        match status {
            Status::Acked(_) => summary.acked += 1,
            Status::Present(_) => summary.present += 1,
            Status::Rejected => summary.rejected += 1,
            Status::Skipped => summary.skipped += 1,
            Status::Uncertain => summary.unknown += 1,
        }
    }
    summary.not_attempted = lines.saturating_sub(statuses.len() as u64);
    summary
}

/// Refuses to resume into another destination than the log's.
fn check_destination(
    header: &Header,
    server: &str,
    tenant: Option<&str>,
    log_path: &std::path::Path,
) -> Outcome {
    let Some(logged) = &header.server else {
        // A log of an older edbx, which did not record it.
        return Ok(());
    };
    let name = |tenant: Option<&str>| tenant.unwrap_or("the server's default").to_owned();
    if logged != server || header.tenant.as_deref() != tenant {
        return Err(Failure::usage(format!(
            "{} records an import into {logged} (tenant {}); this run would write to {server} \
             (tenant {}): resuming there would split the input between two stores",
            log_path.display(),
            name(header.tenant.as_deref()),
            name(tenant),
        ))
        .hint(
            "resume with the connection settings the import started with; to import the input \
             into this server instead, give another --log",
        ));
    }
    Ok(())
}

/// The lines whose events are read back on resume to check that the server is the store the
/// log's writes went to (the protocol has no identity of a store): the last three applied
/// lines with a known version.
fn samples(statuses: &HashMap<u64, Status>) -> HashSet<u64> {
    let mut applied: Vec<u64> = statuses
        .iter()
        .filter(|(_, s)| s.version().is_some())
        .map(|(n, _)| *n)
        .collect();
    applied.sort_unstable();
    applied.into_iter().rev().take(3).collect()
}

/// Refuses to resume against a store that does not hold what the log says was written to it.
async fn check_store(
    client: &Client,
    statuses: &HashMap<u64, Status>,
    lines: &HashMap<u64, EventLine>,
    server: &str,
    log_path: &std::path::Path,
) -> Outcome {
    let mut numbers: Vec<&u64> = lines.keys().collect();
    numbers.sort_unstable();
    for number in numbers {
        let (line, version) = (&lines[number], statuses[number].version());
        let Some(version) = version else { continue };
        let mut events = client
            .events(&line.aggregate_type, &line.aggregate_id)
            .stream();
        let mut found = None;
        while let Some(event) = events.next().await {
            match event {
                Ok(event) if event.version == version => {
                    found = Some(event);
                    break;
                }
                Ok(_) => {}
                Err(e) if e.is_not_found() => break,
                Err(e) => return Err(Failure::from(e)),
            }
        }
        if found.is_some_and(|event| line.matches(&event)) {
            continue;
        }
        return Err(Failure::usage(format!(
            "the server at {server} does not hold what {} says was written to it: its line \
             {number} ({}/{} version {version}) is not there",
            log_path.display(),
            line.aggregate_type,
            line.aggregate_id
        ))
        .hint(
            "this is another store (or it was changed since): resume against the server the \
             import started on, or give another --log to import into this one",
        ));
    }
    Ok(())
}

pub async fn import(args: &ImportArgs, ctx: &mut Ctx) -> Outcome<Exit> {
    if args.concurrency == 0 || args.concurrency > MAX_CONCURRENCY {
        return Err(Failure::usage(format!(
            "--concurrency must be 1..={MAX_CONCURRENCY}, got {}",
            args.concurrency
        )));
    }
    let input = if args.file == "-" {
        let mut bytes = Vec::new();
        std::io::stdin().read_to_end(&mut bytes)?;
        Input::Stdin(Arc::new(bytes))
    } else {
        Input::File(PathBuf::from(&args.file))
    };
    let log_path = match (&args.log, &input) {
        (Some(path), _) => path.clone(),
        (None, Input::File(path)) => {
            let mut name = path.as_os_str().to_owned();
            name.push(".log");
            PathBuf::from(name)
        }
        (None, Input::Stdin(_)) => {
            return Err(
                Failure::usage("give --log PATH when the lines come from stdin")
                    .hint("the log is what lets --resume finish an interrupted import"),
            );
        }
    };
    let resuming = args.resume && log_path.exists();
    if args.resume && !resuming {
        ctx.note(format!("no log at {}: starting afresh", log_path.display()));
    }
    let server = ctx.settings.address();
    let tenant = ctx
        .settings
        .config
        .get_tenant_id()
        .map(|t| t.trim().to_ascii_lowercase());
    let (log, account) = if resuming {
        let (log, account) = ResultLog::resume(&log_path)?;
        check_destination(&account.header, &server, tenant.as_deref(), &log_path)?;
        (Some(log), Some(account))
    } else {
        (None, None)
    };
    let statuses = account
        .as_ref()
        .map(|a| a.statuses.clone())
        .unwrap_or_default();
    let samples = samples(&statuses);
    let scan = scan(&input, &statuses, &samples)?;
    if let Some(account) = &account {
        match compare_input(account, &scan, &input.name(), &log_path) {
            Ok(None) => {}
            Ok(Some(changed)) => eprintln!("edbx: import: {changed}"),
            Err(why) => {
                return Err(
                    Failure::usage(format!("{} is {why}", log_path.display())).hint(
                        "resume with the input the import started with (lines it shows refused or \
                     not sent may be edited), or give another --log",
                    ),
                );
            }
        }
    }
    let client = ctx.client().await?;
    if account.is_some() {
        check_store(&client, &statuses, &scan.wanted, &server, &log_path).await?;
    }
    let log = Arc::new(match log {
        Some(log) => log,
        None => ResultLog::create(
            &log_path,
            &Header {
                input: input.name(),
                sha256: scan.sha256.clone(),
                lines: scan.lines,
                server: Some(server.clone()),
                tenant: tenant.clone(),
            },
        )?,
    });
    let input = Arc::new(input);
    let started = Instant::now();
    let mut statuses = statuses;
    let mut uncertain = scan.uncertain;
    let mut end = End::Done;
    let mut failure = None;
    // A second pass settles the writes whose outcome the first one did not learn.
    for pass_number in 0..2 {
        let already = statuses.values().filter(|s| s.is_acked()).count() as u64;
        if already > 0 && pass_number == 0 {
            ctx.note(format!("{already} line(s) already applied: skipped"));
        }
        let pass = Arc::new(Pass {
            client: client.clone(),
            log: log.clone(),
            statuses,
            uncertain,
            allow_unlistable: args.allow_unlistable,
            retry_rejected: pass_number == 0,
            stop: AtomicBool::new(false),
            abort: Mutex::new(None),
            progress: Progress::new(args.progress, "import", "lines", Some(scan.lines), already),
        });
        end = run_pass(pass.clone(), &input, args.concurrency).await?;
        let mut pass = Arc::into_inner(pass).expect("the workers are done");
        pass.progress.finish();
        failure = pass.abort.into_inner().unwrap_or_else(|p| p.into_inner());
        statuses = log::read(&log_path)?;
        let unknown = statuses
            .values()
            .filter(|s| **s == Status::Uncertain)
            .count();
        if failure.is_some() || matches!(end, End::Interrupted) || unknown == 0 || pass_number == 1
        {
            break;
        }
        eprintln!("edbx: import: {unknown} write(s) of unknown outcome: reading them back");
        // The lines of the aggregates concerned are read again to find their last applied one.
        uncertain = HashSet::new();
        for_each_line(&input, |number, text| {
            if statuses.get(&number) == Some(&Status::Uncertain) {
                let line = EventLine::parse(text).map_err(Failure::usage)?;
                uncertain.insert((line.aggregate_type, line.aggregate_id));
            }
            Ok(true)
        })?;
    }
    log.sync()?;
    let elapsed = started.elapsed().as_secs_f64();
    let summary = summarize(&statuses, scan.lines);
    let mut report =
        serde_json::to_value(&summary).map_err(|e| Failure::new(Exit::Internal, e.to_string()))?;
    report["seconds"] = json!((elapsed * 1000.0).round() / 1000.0);
    report["log"] = json!(log_path.display().to_string());
    ctx.out.value(&report)?;
    let resume = format!(
        "`edbx import {} --log {} --resume`",
        input.name(),
        log_path.display()
    );
    if let Some(failure) = failure {
        let hint = match &failure.hint {
            Some(hint) => format!("{hint}; then {resume} continues where this stopped"),
            None => format!("{resume} continues where this stopped"),
        };
        return Err(failure.hint(hint));
    }
    if matches!(end, End::Interrupted) {
        return Err(Failure::new(Exit::Interrupted, "import interrupted")
            .hint(format!("{resume} finishes it, sending no line twice")));
    }
    if summary.unknown > 0 {
        return Err(Failure::new(
            Exit::OutcomeUnknown,
            format!(
                "{} line(s) have an unknown outcome (see the log)",
                summary.unknown
            ),
        )
        .hint(format!(
            "check those aggregates by hand (`edbx events TYPE ID`), then {resume}"
        )));
    }
    if summary.not_attempted > 0 {
        return Err(Failure::new(
            Exit::Internal,
            format!("{} line(s) were not attempted", summary.not_attempted),
        )
        .hint(format!("{resume} sends them")));
    }
    if summary.rejected + summary.skipped > 0 {
        return Err(Failure::new(
            Exit::CheckFailed,
            format!(
                "{} line(s) were rejected and {} skipped after them (their codes are in {})",
                summary.rejected,
                summary.skipped,
                log_path.display()
            ),
        )
        .hint(format!("fix the cause, then {resume} sends them again")));
    }
    Ok(Exit::Ok)
}
