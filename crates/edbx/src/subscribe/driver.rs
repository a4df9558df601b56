//! The work behind a [`Subscription`](super::Subscription): rounds and passes (see the module
//! docs of `subscribe`), reading events ahead on tasks and delivering them in order.

use std::collections::{HashSet, VecDeque};

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::checkpoint::{Key, Pass, Position, Seen};
use super::{Checkpoint, Options, SubscribedEvent, Unreadable, millis};
use crate::client::Client;
use crate::error::{Error, ErrorKind, Result};
use crate::model::{Aggregate, Event};

/// A round that needs more listing pages than this turns into a pass (a listing newest first
/// costs the server every row above the page, so long ones grow quadratically).
const MAX_ROUND_PAGES: usize = 32;
/// Events one read-ahead task holds at most; the rest of an aggregate is read as it is
/// delivered.
const MAX_PREFETCHED_EVENTS: usize = 1_000;
/// Rows a pass goes through without delivering before it reports its progress.
const PROGRESS_EVERY: usize = 256;

pub(crate) enum Msg {
    Event(Box<SubscribedEvent>),
    /// The checkpoint moved without an event.
    Progress(Checkpoint),
    /// The first round is complete: everything written before it is delivered.
    CaughtUp(Checkpoint),
    Unreadable(Unreadable),
    Failed(Error),
}

/// A row of a listing, as the subscription needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Row {
    key: Key,
    version: u64,
    /// Its last change (ms), `i64::MIN` when the server gave none.
    ms: i64,
    archived: bool,
}

impl Row {
    fn from_aggregate(a: Aggregate) -> Result<Row> {
        let ms = match &a.updated_at {
            Some(at) => millis("updated_at", at)?,
            None => i64::MIN,
        };
        Ok(Row {
            key: (a.aggregate_type, a.aggregate_id),
            version: a.version,
            ms,
            archived: a.archived,
        })
    }

    /// Its place in the index of last changes.
    fn place(&self) -> (i64, &str, &str) {
        (self.ms, &self.key.0, &self.key.1)
    }
}

/// Where an aggregate's delivery starts.
#[derive(Debug, Clone, Copy)]
enum From {
    /// After this version.
    After(u64),
    /// At its first event written at or after this time (ms).
    Floor(i64),
}

#[derive(Debug, Clone)]
struct Job {
    key: Key,
    start: From,
    /// Deliver only events written at or before this time (ms).
    cap: Option<i64>,
    /// The aggregate's version as listed: reading stops there (`u64::MAX`: at the end).
    listed_version: u64,
    listed_ms: i64,
}

/// Events read for a job.
struct Fetched {
    events: Vec<(Event, i64)>,
    /// Every version up to this one is accounted for once `events` are delivered.
    through: u64,
    /// Stopped at [`MAX_PREFETCHED_EVENTS`]: more may follow.
    more: bool,
}

/// Reads what a job delivers: its aggregate's events from the job's start, up to the listed
/// version (events written since move the aggregate to the top of the index, where the next
/// listing finds it, so reading on would only cost a request to find the end) and the cap.
async fn fetch(client: Client, job: Job, events_page: u64) -> Result<Fetched> {
    let (after, mut skip_before, read) = match job.start {
        From::After(v) => (v, None, Vec::new()),
        From::Floor(i64::MIN) => (0, None, Vec::new()),
        From::Floor(floor) => {
            let (start, read) = boundary(&client, &job, floor, events_page).await?;
            (start, Some(floor), read)
        }
    };
    let mut fetched = Fetched {
        events: Vec::new(),
        through: after,
        more: false,
    };
    // Takes one event; false once the job is done with.
    let mut take = |event: Event| -> Result<bool> {
        let at = millis("event created_at", &event.metadata.created_at)?;
        let version = event.version;
        if let Some(floor) = skip_before {
            if at < floor {
                // Written before the floor: delivered already.
                fetched.through = version;
                return Ok(version < job.listed_version);
            }
            skip_before = None;
        }
        if job.cap.is_some_and(|cap| at > cap) {
            return Ok(false);
        }
        fetched.through = version;
        fetched.events.push((event, at));
        if fetched.events.len() >= MAX_PREFETCHED_EVENTS {
            fetched.more = true;
            return Ok(false);
        }
        Ok(version < job.listed_version)
    };
    let mut last = after;
    for event in read {
        last = event.version;
        if !take(event)? {
            return Ok(fetched);
        }
    }
    if last >= job.listed_version {
        return Ok(fetched);
    }
    let mut events = client
        .events(&job.key.0, &job.key.1)
        .after_version(last)
        .take(events_page)
        .stream();
    while let Some(event) = events.next().await {
        if !take(event?)? {
            break;
        }
    }
    Ok(fetched)
}

/// Where the aggregate's first event written at or after `floor` is to be found: a version
/// whose next event was written before `floor` (or 0), with the events read after it (up to
/// the listed version, as one page holds them). Steps back from the listed version by 2, 16,
/// 128, … versions, one request each time; usually the first holds the aggregate's new events.
async fn boundary(
    client: &Client,
    job: &Job,
    floor: i64,
    events_page: u64,
) -> Result<(u64, Vec<Event>)> {
    let mut back = 2u64;
    loop {
        let start = job.listed_version.saturating_sub(back);
        let page = client
            .events(&job.key.0, &job.key.1)
            .after_version(start)
            .take((job.listed_version - start).clamp(1, events_page))
            .await?;
        let found = match page.items.first() {
            None => true,
            Some(e) => start == 0 || millis("event created_at", &e.metadata.created_at)? < floor,
        };
        if found {
            return Ok((start, page.items));
        }
        back = back.saturating_mul(8);
    }
}

/// An entry of the delivery line, in listing order.
enum Entry {
    /// Events being read.
    Read(Job, JoinHandle<Result<Fetched>>),
    /// A row with nothing to read, which still moves the pass along.
    Passed(char, Row),
}

/// Reads ahead, delivers in order. Aborts the reads still running when dropped.
struct Line {
    entries: VecDeque<Entry>,
    limit: usize,
}

impl Drop for Line {
    fn drop(&mut self) {
        for entry in &self.entries {
            if let Entry::Read(_, handle) = entry {
                handle.abort();
            }
        }
    }
}

/// How a step ended.
enum Step {
    Passed,
    Round { delivered: u64 },
    TooBig,
}

pub(crate) struct Driver {
    client: Client,
    options: Options,
    pos: Position,
    tx: mpsc::Sender<Msg>,
    /// The checkpoint last sent, to send progress only when it moved.
    sent: Checkpoint,
    caught_up: bool,
    /// Events delivered in the current step.
    delivered: u64,
    /// The top of the index ([`Driver::top_rows`]) when every event committed before it was
    /// known delivered (a round's last listing, a pass's start): a round that finds the same
    /// has nothing to do.
    settled: Option<Vec<Row>>,
    /// The top (ms) of the last deep round (or pass), which raised the floor.
    deep_top: Option<i64>,
}

impl Driver {
    pub(crate) fn new(
        client: Client,
        options: Options,
        pos: Position,
        tx: mpsc::Sender<Msg>,
    ) -> Self {
        let sent = pos.encode();
        Self {
            client,
            options,
            pos,
            tx,
            sent,
            caught_up: false,
            delivered: 0,
            settled: None,
            deep_top: None,
        }
    }

    /// Runs until the subscription is dropped, it has caught up (when asked to stop there), or
    /// a failure that is not retried.
    pub(crate) async fn run(mut self, silent_start: bool) {
        if let Err(e) = self.run_steps(silent_start).await {
            if !self.tx.is_closed() {
                let _ = self.tx.send(Msg::Failed(e)).await;
            }
        }
    }

    async fn run_steps(&mut self, from_now: bool) -> Result<()> {
        let retry = self.client.config().get_retry();
        let mut failures = 0u32;
        let mut failing_since: Option<Instant> = None;
        let mut interval = self.options.min_poll;
        let mut starting_now = from_now;
        loop {
            self.delivered = 0;
            let step = if starting_now {
                self.start_now().await.map(|()| {
                    starting_now = false;
                    None
                })
            } else if self.pos.pass.is_some() {
                self.pass().await.map(|()| Some(Step::Passed))
            } else {
                self.round(false).await.map(Some)
            };
            let step = match step {
                Ok(step) => {
                    failures = 0;
                    failing_since = None;
                    step
                }
                Err(e) if self.tx.is_closed() => {
                    tracing::debug!("subscription dropped: {e}");
                    return Ok(());
                }
                Err(e) if e.is_retryable() => {
                    let since = *failing_since.get_or_insert_with(Instant::now);
                    if self
                        .options
                        .retry_for
                        .is_some_and(|limit| since.elapsed() >= limit)
                    {
                        return Err(e);
                    }
                    failures = failures.saturating_add(1);
                    let delay = retry.delay(failures.min(64));
                    tracing::warn!(
                        failures,
                        "subscription: reading failed, trying again in {delay:?}: {e}"
                    );
                    tokio::time::sleep(delay).await;
                    continue;
                }
                Err(e) => return Err(e),
            };
            match step {
                None | Some(Step::Passed) => {}
                Some(Step::TooBig) => {
                    tracing::debug!("subscription: round too long, going through the store");
                    self.pos.pass = Some(Pass {
                        cap: None,
                        after: None,
                    });
                }
                Some(Step::Round { delivered }) => {
                    let checkpoint = self.pos.encode();
                    if !self.caught_up {
                        self.caught_up = true;
                        self.sent = checkpoint.clone();
                        self.send(Msg::CaughtUp(checkpoint)).await?;
                        if self.options.until_caught_up {
                            return Ok(());
                        }
                    } else if checkpoint != self.sent {
                        self.sent = checkpoint.clone();
                        self.send(Msg::Progress(checkpoint)).await?;
                    }
                    interval = if delivered > 0 {
                        self.options.min_poll
                    } else {
                        (interval * 2).min(self.options.max_poll)
                    };
                    tokio::time::sleep(interval).await;
                }
            }
        }
    }

    async fn send(&self, msg: Msg) -> Result<()> {
        self.tx
            .send(msg)
            .await
            .map_err(|_| Error::new(ErrorKind::Closed, "the subscription was dropped"))
    }

    fn follows(&self, aggregate_type: &str) -> bool {
        self.pos.types.is_empty()
            || self
                .pos
                .types
                .binary_search_by(|t| t.as_str().cmp(aggregate_type))
                .is_ok()
    }

    fn overlap(&self) -> i64 {
        self.options.overlap_ms
    }

    // ----- listings ---------------------------------------------------------------------

    /// One page of the index of last changes, newest first, below `place` (or from the top).
    async fn newest(&self, below: Option<&(i64, String, String)>) -> Result<Vec<Row>> {
        let mut list = self
            .client
            .list()
            .sort("updated_at:desc")
            .include_archived(true)
            .take(self.options.page_size);
        if let Some((ms, t, i)) = below {
            list = list.cursor(format!("ts:updated_at:desc:a:{ms}:{t}:{i}"));
        }
        let page = list.await?;
        let mut rows = Vec::with_capacity(page.items.len());
        for aggregate in page.items {
            let row = Row::from_aggregate(aggregate)?;
            // Not in the index (never written to): not listed by it either.
            if row.ms != i64::MIN {
                rows.push(row);
            }
        }
        Ok(rows)
    }

    /// The top of the index, read so that a later write cannot leave it unchanged: its first
    /// page and, while every row read carries the same time, the pages after it, down to the
    /// first row with an earlier time or the end (at most [`MAX_ROUND_PAGES`] pages); with the
    /// number of pages read.
    ///
    /// A write committed after it was read carries a time at or after the newest one in it
    /// (times are taken under the server's write lock), so it sorts above that earlier row
    /// (or lands before the end), and a top read later differs. A first page alone proves
    /// nothing when its rows all share one millisecond: a write in that millisecond whose key
    /// sorts after theirs lands past it, and an unchanged first page would hide it until some
    /// other write changed the top.
    async fn top_rows(&self) -> Result<(Vec<Row>, usize)> {
        let mut rows = self.newest(None).await?;
        let mut pages = 1;
        while pages < MAX_ROUND_PAGES {
            let Some(newest) = rows.iter().map(|row| row.ms).max() else {
                break;
            };
            if rows.iter().any(|row| row.ms < newest) {
                break;
            }
            let lowest = rows
                .iter()
                .map(Row::place)
                .min()
                .map(|(ms, t, i)| (ms, t.to_owned(), i.to_owned()));
            let more = self.newest(lowest.as_ref()).await?;
            pages += 1;
            if more.is_empty() {
                break;
            }
            rows.extend(more);
        }
        Ok((rows, pages))
    }

    /// The time of the store's latest change, if it has any.
    async fn top(&self) -> Result<Option<i64>> {
        Ok(self.newest(None).await?.first().map(|row| row.ms))
    }

    // ----- from now ---------------------------------------------------------------------

    /// Starts from the store's latest change: a silent round down to `latest − overlap` marks
    /// what is there as delivered.
    async fn start_now(&mut self) -> Result<()> {
        if let Some(top) = self.top().await? {
            self.pos.floor = top.saturating_sub(self.overlap());
        }
        self.round(true).await?;
        let checkpoint = self.pos.encode();
        self.sent = checkpoint.clone();
        self.send(Msg::Progress(checkpoint)).await
    }

    // ----- rounds -----------------------------------------------------------------------

    /// Lists newest first down to the floor, then again down to the previous listing's top,
    /// until a listing is provably complete; then raises the floor.
    async fn round(&mut self, silent: bool) -> Result<Step> {
        let floor = self.pos.floor;
        let mut round_top: Option<Option<i64>> = None;
        let (mut first, mut pages) = self.top_rows().await?;
        if self.settled.as_ref() == Some(&first) {
            // The top is as it was when everything before it was delivered: no write since
            // (one made with a clock stepped back lands lower, and is found by the next deep
            // round: until then the floor stays where it is).
            return Ok(Step::Round { delivered: 0 });
        }
        let mut one_page = pages == 1;
        // Everything committed before the settled page is delivered, and every later commit
        // carries a time at or after its top, unless the clock stepped back: a shallow round
        // lists down to that top only. A deep round lists down to the floor, finding what a
        // stepped-back clock put lower, before the floor rises; one runs whenever the top has
        // moved half an overlap since the last.
        let top = first.first().map(|row| row.ms);
        let settled_top = self
            .settled
            .as_ref()
            .and_then(|page| page.first())
            .map(|row| row.ms);
        let shallow = match (settled_top, self.deep_top, top) {
            (Some(settled), Some(deep), Some(top)) if top - deep < self.overlap() / 2 => {
                Some(settled)
            }
            _ => None,
        };
        let mut stop = shallow.unwrap_or(floor);
        loop {
            let Some(listing) = self
                .listing(floor, stop, silent, &mut pages, first, one_page)
                .await?
            else {
                return Ok(Step::TooBig);
            };
            let top = listing.first.first().map(|row| row.ms);
            round_top.get_or_insert(top);
            let again = if listing.atomic {
                None
            } else {
                // No write during the listing leaves the top unchanged: then nothing moved.
                let (again, read) = self.top_rows().await?;
                pages += read;
                one_page = read == 1;
                Some(again)
            };
            let Some(again) = again.filter(|again| *again != listing.first) else {
                if let (None, Some(Some(top))) = (shallow, round_top) {
                    self.raise_floor(top.saturating_sub(self.overlap()));
                    self.deep_top = Some(top);
                }
                self.settled = Some(listing.first);
                return Ok(Step::Round {
                    delivered: self.delivered,
                });
            };
            // Something was written meanwhile: list again, from the new top down to this
            // listing's top.
            if let Some(top) = top {
                stop = top;
            }
            first = again;
        }
    }

    /// Moves the floor up and forgets the window below it.
    fn raise_floor(&mut self, floor: i64) {
        if floor > self.pos.floor {
            self.pos.floor = floor;
            self.pos.window.retain(|_, seen| seen.at >= floor);
        }
    }

    /// One listing newest first down to `stop`, visiting each row at or above it; `top` is its
    /// first rows, already read (one page when `one_page`). `None` when the round has grown
    /// too long (what was read so far is delivered).
    ///
    /// The rows are visited once the listing is read, oldest change first, so that a
    /// subscription following live hands on events in about the order they were written
    /// (the aggregates of one listing in the order of their last change; a later listing
    /// holds later changes). A silent listing, which delivers nothing, visits as it reads.
    async fn listing(
        &mut self,
        floor: i64,
        stop: i64,
        silent: bool,
        pages: &mut usize,
        top: Vec<Row>,
        one_page: bool,
    ) -> Result<Option<Listing>> {
        let mut below: Option<(i64, String, String)> = None;
        let mut first: Option<Vec<Row>> = None;
        let mut atomic = one_page;
        let mut visited: HashSet<Key> = HashSet::new();
        // Rows to visit, newest first; at most MAX_ROUND_PAGES pages of them.
        let mut rows_to_visit: Vec<Row> = Vec::new();
        let mut next = Some(top);
        loop {
            let rows = match next.take() {
                Some(rows) => rows,
                None => {
                    *pages += 1;
                    self.newest(below.as_ref()).await?
                }
            };
            let empty = rows.is_empty();
            let mut reached = false;
            let mut lowest: Option<(i64, String, String)> = None;
            for row in &rows {
                let place = row.place();
                if lowest
                    .as_ref()
                    .is_none_or(|l| place < (l.0, l.1.as_str(), l.2.as_str()))
                {
                    lowest = Some((place.0, place.1.to_owned(), place.2.to_owned()));
                }
                if row.ms < stop {
                    reached = true;
                    continue;
                }
                if visited.insert(row.key.clone()) {
                    if silent {
                        self.mark(row.clone());
                    } else {
                        rows_to_visit.push(row.clone());
                    }
                }
            }
            if first.is_none() {
                first = Some(rows);
            }
            if empty || reached {
                break;
            }
            atomic = false;
            below = lowest;
            if !silent && *pages >= MAX_ROUND_PAGES {
                self.visit_oldest_first(floor, rows_to_visit).await?;
                return Ok(None);
            }
        }
        self.visit_oldest_first(floor, rows_to_visit).await?;
        Ok(Some(Listing {
            first: first.unwrap_or_default(),
            atomic,
        }))
    }

    /// Visits a listing's rows (given newest first) oldest first, and delivers their events.
    async fn visit_oldest_first(&mut self, floor: i64, rows: Vec<Row>) -> Result<()> {
        let mut line = Line::new(self.options.prefetch);
        for row in rows.into_iter().rev() {
            self.visit(&mut line, row, floor, None, 'a').await?;
        }
        self.drain(&mut line).await
    }

    // ----- passes -----------------------------------------------------------------------

    /// Goes through the aggregates changed since the floor in key order, delivering their
    /// events up to the pass's cap; then raises the floor to `cap − overlap`.
    async fn pass(&mut self) -> Result<()> {
        let floor = self.pos.floor;
        let mut pass = self.pos.pass.clone().expect("a pass is running");
        // The top when the pass began: once the pass is done, everything before it is.
        let mut began: Option<Vec<Row>> = None;
        let cap = match pass.cap {
            Some(cap) => cap,
            None => {
                let (top, _) = self.top_rows().await?;
                let cap = top.first().map_or(i64::MIN, |row| row.ms);
                began = Some(top);
                pass.cap = Some(cap);
                self.pos.pass = Some(pass.clone());
                cap
            }
        };
        let keep = if cap == i64::MIN {
            floor
        } else {
            floor.max(cap.saturating_sub(self.overlap()))
        };
        let mut line = Line::new(self.options.prefetch);
        if let Some(('a', key, through)) = &pass.after {
            // Finish the aggregate the pass was in.
            let job = Job {
                key: key.clone(),
                start: From::After(*through),
                cap: Some(cap),
                listed_version: u64::MAX,
                listed_ms: i64::MIN,
            };
            self.push(&mut line, job, Some(keep)).await?;
        }
        let mut list = self
            .client
            .list()
            .include_archived(true)
            .take(self.options.page_size);
        if let Some(filter) = self.pass_filter(floor) {
            list = list.filter(filter);
        }
        if let Some((scope, (t, i), _)) = &pass.after {
            list = list.cursor(format!("{scope}:{t}:{i}"));
        }
        let mut rows = list.stream();
        let mut quiet = 0usize;
        while let Some(aggregate) = rows.next().await {
            let row = Row::from_aggregate(aggregate?)?;
            let scope = if row.archived { 'r' } else { 'a' };
            let before = self.delivered;
            self.visit(&mut line, row, floor, Some((cap, keep)), scope)
                .await?;
            if self.delivered == before {
                quiet += 1;
                if quiet >= PROGRESS_EVERY {
                    quiet = 0;
                    self.progress().await?;
                }
            } else {
                quiet = 0;
            }
        }
        self.drain(&mut line).await?;
        self.pos.pass = None;
        self.raise_floor(keep);
        // As a deep round at the cap would, when the pass began here.
        self.deep_top = began.as_ref().map(|_| cap);
        self.settled = began;
        self.progress().await
    }

    /// The server-side filter of a pass: its types, and changes since the floor.
    fn pass_filter(&self, floor: i64) -> Option<String> {
        let types = match self.pos.types.as_slice() {
            [] => None,
            [one] => Some(format!("aggregate_type = '{one}'")),
            many => Some(format!(
                "aggregate_type IN [{}]",
                many.iter()
                    .map(|t| format!("'{t}'"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        };
        let since = (floor != i64::MIN).then(|| format!("updated_at > {}", floor - 1));
        match (types, since) {
            (None, None) => None,
            (Some(f), None) | (None, Some(f)) => Some(f),
            (Some(t), Some(s)) => Some(format!("{t} AND {s}")),
        }
    }

    async fn progress(&mut self) -> Result<()> {
        let checkpoint = self.pos.encode();
        if checkpoint != self.sent {
            self.sent = checkpoint.clone();
            self.send(Msg::Progress(checkpoint)).await?;
        }
        Ok(())
    }

    // ----- visiting rows ----------------------------------------------------------------

    /// Decides what a listed row needs and puts it in line. `pass` is the pass's cap and the
    /// floor after it, when in a pass.
    async fn visit(
        &mut self,
        line: &mut Line,
        row: Row,
        floor: i64,
        pass: Option<(i64, i64)>,
        scope: char,
    ) -> Result<()> {
        let keep = pass.map(|(_, keep)| keep);
        if !self.follows(&row.key.0) || row.version == 0 {
            return self.pass_by(line, scope, row, keep).await;
        }
        if row.archived {
            self.archived(&row, floor).await?;
            return self.pass_by(line, scope, row, keep).await;
        }
        let seen = self.pos.window.get(&row.key).copied();
        let start = match seen {
            Some(seen) if seen.through >= row.version => {
                return self.pass_by(line, scope, row, keep).await;
            }
            Some(seen) => From::After(seen.through),
            None => From::Floor(floor),
        };
        let job = Job {
            key: row.key,
            start,
            cap: pass.map(|(cap, _)| cap),
            listed_version: row.version,
            listed_ms: row.ms,
        };
        self.push(line, job, keep).await
    }

    /// Starting from now: what a row shows counts as delivered.
    fn mark(&mut self, row: Row) {
        if !self.follows(&row.key.0) || row.version == 0 {
            if let Some(seen) = self.pos.window.get_mut(&row.key) {
                seen.at = seen.at.max(row.ms);
            }
            return;
        }
        let seen = self.pos.window.entry(row.key).or_insert(Seen {
            through: 0,
            at: row.ms,
        });
        seen.through = seen.through.max(row.version);
        seen.at = seen.at.max(row.ms);
    }

    /// A row with nothing to read: in line, so that a pass moves past it in order.
    async fn pass_by(
        &mut self,
        line: &mut Line,
        scope: char,
        row: Row,
        keep: Option<i64>,
    ) -> Result<()> {
        match keep {
            None => {
                if let Some(seen) = self.pos.window.get_mut(&row.key) {
                    seen.at = seen.at.max(row.ms);
                }
                Ok(())
            }
            Some(keep) => {
                line.entries.push_back(Entry::Passed(scope, row));
                self.make_room(line, Some(keep)).await
            }
        }
    }

    /// Reports an archived aggregate whose events may not all have been delivered, and
    /// remembers it in the window so that it is reported once.
    async fn archived(&mut self, row: &Row, floor: i64) -> Result<()> {
        let seen = self.pos.window.get(&row.key).copied();
        let report = match seen {
            Some(seen) if seen.through >= row.version => None,
            Some(seen) => Some(Some(seen.through)),
            None if floor == i64::MIN => Some(Some(0)),
            // Archived long after the floor: it may have had events after it.
            None if row.ms
                > floor.saturating_add(
                    2 * (self.overlap() + self.options.max_poll.as_millis() as i64),
                ) =>
            {
                Some(None)
            }
            None => None,
        };
        let entry = self.pos.window.entry(row.key.clone()).or_insert(Seen {
            through: 0,
            at: row.ms,
        });
        entry.through = entry.through.max(row.version);
        entry.at = entry.at.max(row.ms);
        if let Some(delivered_through) = report {
            let (t, i) = &row.key;
            match delivered_through {
                Some(v) => tracing::warn!(
                    "subscription: {t}/{i} is archived; its events {}..={} cannot be read",
                    v + 1,
                    row.version
                ),
                None => tracing::warn!(
                    "subscription: {t}/{i} is archived; events written to it after the \
                     subscription's floor, if any, cannot be read"
                ),
            }
            self.send(Msg::Unreadable(Unreadable {
                aggregate_type: t.clone(),
                aggregate_id: i.clone(),
                version: row.version,
                delivered_through,
            }))
            .await?;
        }
        Ok(())
    }

    async fn push(&mut self, line: &mut Line, job: Job, keep: Option<i64>) -> Result<()> {
        let handle = tokio::spawn(fetch(
            self.client.clone(),
            job.clone(),
            self.options.events_page_size,
        ));
        line.entries.push_back(Entry::Read(job, handle));
        self.make_room(line, keep).await
    }

    async fn make_room(&mut self, line: &mut Line, keep: Option<i64>) -> Result<()> {
        while line.entries.len() > line.limit {
            self.deliver_next(line, keep).await?;
        }
        Ok(())
    }

    async fn drain(&mut self, line: &mut Line) -> Result<()> {
        let keep = self.pos.pass.as_ref().and(self.pass_keep());
        while !line.entries.is_empty() {
            self.deliver_next(line, keep).await?;
        }
        Ok(())
    }

    /// The floor after the running pass.
    fn pass_keep(&self) -> Option<i64> {
        let cap = self.pos.pass.as_ref()?.cap?;
        Some(if cap == i64::MIN {
            self.pos.floor
        } else {
            self.pos.floor.max(cap.saturating_sub(self.overlap()))
        })
    }

    /// Delivers the first entry of the line. `keep` is the floor after the running pass (then
    /// the window keeps only what that floor needs), `None` in a round.
    async fn deliver_next(&mut self, line: &mut Line, keep: Option<i64>) -> Result<()> {
        let Some(entry) = line.entries.pop_front() else {
            return Ok(());
        };
        let (job, handle) = match entry {
            Entry::Passed(scope, row) => {
                // Done with through the listed version (or the window's, if further), taken
                // before `settle` may forget it: a pass that resumes here goes on after it.
                let mut through = row.version;
                if let Some(seen) = self.pos.window.get_mut(&row.key) {
                    seen.at = seen.at.max(row.ms);
                    through = through.max(seen.through);
                }
                self.settle(&row.key, keep);
                if let Some(pass) = self.pos.pass.as_mut() {
                    pass.after = Some((scope, row.key, through));
                }
                return Ok(());
            }
            Entry::Read(job, handle) => (job, handle),
        };
        let mut fetched = handle.await.map_err(|e| {
            Error::new(ErrorKind::Closed, format!("a read-ahead task failed: {e}"))
        })??;
        loop {
            let more = fetched.more;
            let through = fetched.through;
            let mut last_at = job.listed_ms;
            for (event, at) in fetched.events {
                last_at = last_at.max(at);
                let version = event.version;
                self.note(&job.key, version, last_at, keep.is_some());
                let checkpoint = self.pos.encode();
                self.delivered += 1;
                self.send(Msg::Event(Box::new(SubscribedEvent { event, checkpoint })))
                    .await?;
            }
            // Versions read past without delivering (written before the floor) count too.
            self.note(&job.key, through, last_at, keep.is_some());
            if !more {
                break;
            }
            let next = Job {
                start: From::After(through),
                ..job.clone()
            };
            fetched = fetch(self.client.clone(), next, self.options.events_page_size).await?;
        }
        self.settle(&job.key, keep);
        Ok(())
    }

    /// Records that `key` is delivered through `version`, seen at `at`.
    fn note(&mut self, key: &Key, version: u64, at: i64, in_pass: bool) {
        let seen = self
            .pos
            .window
            .entry(key.clone())
            .or_insert(Seen { through: 0, at });
        seen.through = seen.through.max(version);
        seen.at = seen.at.max(at);
        let through = seen.through;
        if in_pass {
            if let Some(pass) = self.pos.pass.as_mut() {
                pass.after = Some(('a', key.clone(), through));
            }
        }
    }

    /// In a pass, an aggregate it is done with stays in the window only if the floor after
    /// the pass needs it.
    fn settle(&mut self, key: &Key, keep: Option<i64>) {
        if let Some(keep) = keep {
            if self.pos.window.get(key).is_some_and(|seen| seen.at < keep) {
                self.pos.window.remove(key);
            }
        }
    }
}

/// A listing newest first that went down to its bound.
struct Listing {
    /// Its first rows ([`Driver::top_rows`]), to tell whether anything moved since.
    first: Vec<Row>,
    /// Whether one page covered the whole listing (one snapshot of the server).
    atomic: bool,
}

impl Line {
    fn new(limit: usize) -> Self {
        Self {
            entries: VecDeque::new(),
            limit,
        }
    }
}
