//! Every event of every aggregate a listing yields, read several aggregates at a time and
//! handed on in listing order: what exports are made of ([`Client::scan_events`]).

use std::collections::VecDeque;
use std::fmt;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::client::Client;
use crate::error::{Error, Result};
use crate::model::{Aggregate, Event};
use crate::page::PageStream;
use crate::validate;

/// Most aggregates whose events a scan reads at once.
pub const MAX_SCAN_CONCURRENCY: usize = 256;
/// Pages of one aggregate read ahead of the one being handed on. With pages of at most
/// ~7.5 KiB of JSON, a scan holds at most about `concurrency × (PAGES_AHEAD + 1) × 7.5 KiB` of
/// events, whatever the size of the store or of one aggregate.
const PAGES_AHEAD: usize = 2;
/// How many archived aggregates a scan names (it counts them all).
const NAMED: usize = 5;

/// Builder of [`Client::scan_events`]; call [`stream`](Self::stream).
#[must_use = "a scan does nothing until streamed"]
#[derive(Clone)]
pub struct ScanEvents<'a> {
    client: &'a Client,
    aggregate_type: Option<String>,
    concurrency: usize,
    invalid: Option<Error>,
}

impl<'a> ScanEvents<'a> {
    /// Only aggregates of this type.
    pub fn aggregate_type(mut self, aggregate_type: &str) -> Self {
        if let Err(e) = validate::aggregate_type(aggregate_type) {
            self.invalid = Some(e);
        }
        self.aggregate_type = Some(aggregate_type.to_owned());
        self
    }

    /// How many aggregates' events are read at the same time (default 8, at most
    /// [`MAX_SCAN_CONCURRENCY`]). Events are handed on in listing order whatever this is.
    pub fn concurrency(mut self, concurrency: usize) -> Self {
        if concurrency == 0 || concurrency > MAX_SCAN_CONCURRENCY {
            self.invalid = Some(Error::invalid_input(format!(
                "concurrency must be 1..={MAX_SCAN_CONCURRENCY}, got {concurrency}"
            )));
        }
        self.concurrency = concurrency;
        self
    }

    /// Checks the options without sending anything: what [`stream`](Self::stream)'s first
    /// page would fail with.
    pub fn check(&self) -> Result<()> {
        match &self.invalid {
            Some(e) => Err(e.clone()),
            None => Ok(()),
        }
    }

    /// Starts the scan. Nothing is sent until the first [`EventScan::next_page`].
    pub fn stream(self) -> EventScan {
        let listing = |archived: bool| {
            let mut list = self.client.list().take(1000).archived_only(archived);
            if let Some(t) = &self.aggregate_type {
                list = list.aggregate_type(t);
            }
            list.stream()
        };
        EventScan {
            client: self.client.clone(),
            archived_listing: Some(listing(true)),
            listing: Some(listing(false)),
            readers: VecDeque::new(),
            concurrency: self.concurrency,
            failed: self.invalid,
            done: false,
            aggregates: 0,
            events: 0,
            archived: ArchivedLeftOut::default(),
        }
    }
}

/// The archived aggregates a scan met and left out: the server 3.19.4 serves no events of an
/// archived aggregate (`dbx backup` on the server host keeps them; restoring one makes its
/// events readable again).
///
/// Its `Display` names the first few: `orders/o-1, orders/o-2 and 3 more`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ArchivedLeftOut {
    /// How many.
    pub count: u64,
    /// The first few (type, id), in listing order.
    pub first: Vec<(String, String)>,
}

impl ArchivedLeftOut {
    /// Whether none was left out.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    fn add(&mut self, aggregate_type: &str, aggregate_id: &str) {
        self.count += 1;
        if self.first.len() < NAMED {
            self.first
                .push((aggregate_type.to_owned(), aggregate_id.to_owned()));
        }
    }
}

impl fmt::Display for ArchivedLeftOut {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (t, id)) in self.first.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{t}/{id}")?;
        }
        let more = self.count.saturating_sub(self.first.len() as u64);
        if more > 0 {
            write!(f, " and {more} more")?;
        }
        Ok(())
    }
}

/// One aggregate whose events are being read ahead by a task of its own.
struct Reader {
    aggregate_type: String,
    aggregate_id: String,
    /// Its version when listed: a scan that reads fewer events than this looks again.
    listed_version: u64,
    read: u64,
    pages: mpsc::Receiver<Result<Vec<Event>>>,
    task: JoinHandle<()>,
}

/// The events of every aggregate of a listing ([`Client::scan_events`]), a page at a time, in
/// listing order (type, then id) and version order within an aggregate.
///
/// Aggregates are listed with the stream that never skips a row ([`List::stream`](crate::List::stream)),
/// and several are read at once (each by a task that reads a few pages ahead, so memory stays
/// bounded). The events of archived aggregates cannot be read: the archived ones are listed
/// first, counted and left out ([`archived`](Self::archived)), and so is one archived while the
/// scan runs, before any of its events were read. One archived while its events were being read
/// fails the scan (part of its history was handed on already): scan again.
///
/// Each aggregate's events are read up to the version it was listed at (one request for an
/// aggregate whose events fit a page, not two), so each aggregate is handed on as it was when
/// listed; events appended meanwhile come along only when they share a page with those. A scan
/// is not a snapshot of a store written meanwhile, though: aggregates are listed as the scan
/// goes, and one restored after the archived ones were counted is both counted and read.
///
/// Dropping the scan stops its readers.
///
/// ```no_run
/// # async fn demo(client: edbx::Client) -> edbx::Result<()> {
/// let mut scan = client.scan_events().aggregate_type("orders").concurrency(8).stream();
/// let mut events = 0;
/// while let Some(page) = scan.next_page().await {
///     events += page?.len();
/// }
/// println!("{events} events of {} aggregates", scan.aggregates());
/// if !scan.archived().is_empty() {
///     println!("left out (archived): {}", scan.archived());
/// }
/// # Ok(()) }
/// ```
pub struct EventScan {
    client: Client,
    /// The archived aggregates, counted first; `None` once counted.
    archived_listing: Option<PageStream<Aggregate>>,
    /// The active ones; `None` once every one has been listed.
    listing: Option<PageStream<Aggregate>>,
    readers: VecDeque<Reader>,
    concurrency: usize,
    failed: Option<Error>,
    done: bool,
    aggregates: u64,
    events: u64,
    archived: ArchivedLeftOut,
}

impl fmt::Debug for EventScan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventScan")
            .field("reading", &self.readers.len())
            .field("aggregates", &self.aggregates)
            .field("events", &self.events)
            .field("archived", &self.archived.count)
            .finish_non_exhaustive()
    }
}

impl EventScan {
    /// The next page of events (all of one aggregate), or `None` at the end. After an error
    /// the scan stops reading, and every later call returns the error again: a scan that
    /// failed never looks finished. Start a new scan to try again.
    pub async fn next_page(&mut self) -> Option<Result<Vec<Event>>> {
        if let Some(e) = &self.failed {
            return Some(Err(e.clone()));
        }
        match self.advance().await {
            Ok(Some(page)) => Some(Ok(page)),
            Ok(None) => None,
            Err(e) => {
                self.stop();
                self.failed = Some(e.clone());
                Some(Err(e))
            }
        }
    }

    /// Aggregates whose events were handed on completely so far.
    pub fn aggregates(&self) -> u64 {
        self.aggregates
    }

    /// Events handed on so far.
    pub fn events(&self) -> u64 {
        self.events
    }

    /// The archived aggregates left out so far.
    pub fn archived(&self) -> &ArchivedLeftOut {
        &self.archived
    }

    async fn advance(&mut self) -> Result<Option<Vec<Event>>> {
        loop {
            if self.done {
                return Ok(None);
            }
            self.fill().await?;
            let Some(head) = self.readers.front_mut() else {
                self.done = true;
                return Ok(None);
            };
            match head.pages.recv().await {
                Some(Ok(page)) => {
                    if page.is_empty() {
                        continue;
                    }
                    head.read += page.len() as u64;
                    self.events += page.len() as u64;
                    return Ok(Some(page));
                }
                Some(Err(e)) => return Err(e),
                None => {
                    let reader = self.readers.pop_front().expect("the head exists");
                    self.finished(reader).await?;
                }
            }
        }
    }

    /// Lists aggregates until `concurrency` of them are being read, or none is left.
    async fn fill(&mut self) -> Result<()> {
        if let Some(archived) = &mut self.archived_listing {
            while let Some(row) = archived.next().await {
                let row = row?;
                self.archived.add(&row.aggregate_type, &row.aggregate_id);
            }
            self.archived_listing = None;
        }
        while self.readers.len() < self.concurrency {
            let Some(listing) = &mut self.listing else {
                return Ok(());
            };
            let row = match listing.next().await {
                None => {
                    self.listing = None;
                    return Ok(());
                }
                Some(row) => row?,
            };
            let (sender, pages) = mpsc::channel(PAGES_AHEAD);
            let task = tokio::spawn(read_ahead(
                self.client.clone(),
                row.aggregate_type.clone(),
                row.aggregate_id.clone(),
                row.version,
                sender,
            ));
            self.readers.push_back(Reader {
                aggregate_type: row.aggregate_type,
                aggregate_id: row.aggregate_id,
                listed_version: row.version,
                read: 0,
                pages,
                task,
            });
        }
        Ok(())
    }

    /// An aggregate whose reader ended: complete, archived meanwhile, or a failure.
    async fn finished(&mut self, reader: Reader) -> Result<()> {
        if reader.read >= reader.listed_version {
            self.aggregates += 1;
            return Ok(());
        }
        // Events are never removed, only hidden by archiving: look at it again.
        let (t, id) = (&reader.aggregate_type, &reader.aggregate_id);
        let now = self.client.get(t, id).await?;
        match now {
            Some(aggregate) if aggregate.archived && reader.read == 0 => {
                self.archived.add(t, id);
                Ok(())
            }
            Some(aggregate) if aggregate.archived => Err(Error::server(
                "aggregate_archived",
                &format!(
                    "{t}/{id} was archived while its events were read ({} of its {} were \
                     read): scan again",
                    reader.read, reader.listed_version
                ),
            )),
            _ => Err(Error::protocol(format!(
                "the server listed {t}/{id} at version {} but served {} of its events",
                reader.listed_version, reader.read
            ))),
        }
    }

    fn stop(&mut self) {
        self.done = true;
        self.archived_listing = None;
        self.listing = None;
        for reader in self.readers.drain(..) {
            reader.task.abort();
        }
    }
}

impl Drop for EventScan {
    fn drop(&mut self) {
        for reader in &self.readers {
            reader.task.abort();
        }
    }
}

/// Reads one aggregate's events into `pages`, ending once it has read the version the aggregate
/// was listed at (no request for a page that could only be empty then), at its last event, or at
/// the first error.
async fn read_ahead(
    client: Client,
    aggregate_type: String,
    aggregate_id: String,
    listed_version: u64,
    pages: mpsc::Sender<Result<Vec<Event>>>,
) {
    let mut stream = client.events(&aggregate_type, &aggregate_id).stream();
    while let Some(page) = stream.next_page().await {
        let done = match &page {
            Ok(events) => events.last().is_some_and(|e| e.version >= listed_version),
            Err(_) => true,
        };
        if pages.send(page).await.is_err() || done {
            return;
        }
    }
}

impl Client {
    /// Every event of every aggregate (or of one type), read several aggregates at a time and
    /// handed on in listing order; see [`EventScan`].
    pub fn scan_events(&self) -> ScanEvents<'_> {
        ScanEvents {
            client: self,
            aggregate_type: None,
            concurrency: 8,
            invalid: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::ArchivedLeftOut;

    #[test]
    fn left_out_aggregates_are_named_then_counted() {
        let mut left = ArchivedLeftOut::default();
        assert!(left.is_empty());
        assert_eq!(left.to_string(), "");
        for i in 0..7 {
            left.add("orders", &format!("o-{i}"));
        }
        assert_eq!(left.count, 7);
        assert_eq!(
            left.to_string(),
            "orders/o-0, orders/o-1, orders/o-2, orders/o-3, orders/o-4 and 2 more"
        );
    }
}
