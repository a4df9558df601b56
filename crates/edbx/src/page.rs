//! Pages, cursors, and streams that follow them without skipping or repeating a row.
//!
//! Server 3.19.4 silently shortens list pages to about 7.5 KiB of JSON and still returns the
//! cursor of the *full* page, so following its cursor skips the rows it dropped (PROTOCOL.md
//! §3). Every page here carries a cursor rebuilt from the last row actually received, which
//! is exactly where the next page must start.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::client::Client;
use crate::error::{Error, Result};
use crate::model::{Aggregate, Event, Resolved};

/// One page of a listing.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Page<T> {
    /// The rows, in server order.
    pub items: Vec<T>,
    /// Where the next page starts: right after the last row received. `None` when the listing
    /// is provably over (an empty page, or an event page that reached the end of its
    /// aggregate).
    ///
    /// The server may shorten any page without saying so, so a short page does not prove the
    /// end: the cursor is set on every non-empty page, and the page after the last one is empty.
    pub next_cursor: Option<String>,
    /// Whether the server's cursor would have skipped rows it dropped from this page (it was
    /// replaced by one that does not).
    pub repaired: bool,
    /// Whether this page is known to hold the last rows of the listing. `false` means more rows
    /// may follow: through [`next_cursor`](Self::next_cursor) when there is one, or — for a
    /// listing sorted by anything but a single `created_at`/`updated_at` key, which the server
    /// cannot continue — not at all (the server may even have cut this page short; see
    /// [`List::sort`](crate::List::sort)).
    pub complete: bool,
    /// Resolved references of the listed aggregates, when `resolve` was requested. The server
    /// resolves the page before shortening it, so this can hold more entries than `items`.
    pub resolved: Option<Vec<Resolved>>,
    /// Aggregates (type, id) the server cannot send, stepped past in place of this page when
    /// [`List::skip_unlistable`](crate::List::skip_unlistable) asks for it; the page then has
    /// no items and its cursor continues right after them.
    pub skipped: Vec<(String, String)>,
}

impl<T> Page<T> {
    /// Whether more rows may follow this page (with or without a cursor to reach them).
    pub fn has_more(&self) -> bool {
        !self.complete
    }
}

/// A row whose position can be written as a cursor.
pub(crate) trait Cursored {
    fn cursor(&self) -> String;
}

impl Cursored for Aggregate {
    fn cursor(&self) -> String {
        let scope = if self.archived { 'r' } else { 'a' };
        format!("{scope}:{}:{}", self.aggregate_type, self.aggregate_id)
    }
}

impl Cursored for Event {
    fn cursor(&self) -> String {
        format!(
            "a:{}:{}:{}",
            self.aggregate_type, self.aggregate_id, self.version
        )
    }
}

/// Decides the next cursor of a page: the position of the last row received. Returns whether the
/// server's own cursor would have skipped rows.
///
/// A short page proves nothing (the server cuts pages to its size budget and then omits the
/// cursor when the uncut page was not full), so only an empty page ends a listing.
pub(crate) fn next_cursor<T: Cursored>(
    items: &[T],
    server_cursor: Option<&str>,
) -> (Option<String>, bool) {
    let Some(last) = items.last() else {
        return (None, false);
    };
    let own = last.cursor();
    let repaired = server_cursor.is_some_and(|server| server != own);
    if repaired {
        tracing::debug!(server = ?server_cursor, repaired = %own, "server cursor skips rows; repaired");
    }
    (Some(own), repaired)
}

type PageFuture<T> = Pin<Box<dyn Future<Output = Result<Page<T>>> + Send + Sync>>;
type Fetch<T> = Box<dyn FnMut(Option<String>) -> PageFuture<T> + Send + Sync>;

enum StreamState<T> {
    Idle(Option<String>),
    Fetching(PageFuture<T>),
    Done,
}

/// A [`Stream`](futures_core::Stream) of every row of a listing, fetching pages as it goes.
///
/// An error does not end it: the next call asks for the same page again, from right after the
/// last row handed out, so a call that failed on a timeout or a dropped connection can simply be
/// repeated, and no row is skipped or repeated. An error that stays (an invalid listing) comes
/// back on every call; stop at the first error (`?`, [`collect_all`](Self::collect_all)) unless
/// you mean to retry.
///
/// Use it with any stream combinator library, or with its own [`next`](Self::next):
///
/// ```no_run
/// # async fn demo(client: edbx::Client) -> edbx::Result<()> {
/// let mut orders = client.list().filter("status = 'paid'").take(100).stream();
/// while let Some(order) = orders.next().await {
///     println!("{}", order?.aggregate_id);
/// }
/// # Ok(()) }
/// ```
pub struct PageStream<T> {
    fetch: Fetch<T>,
    state: StreamState<T>,
    buffered: VecDeque<T>,
    last_cursor: Option<String>,
    /// The cursor of the page being fetched, to ask for it again after an error.
    fetching_from: Option<String>,
    /// Rows still to yield, when limited.
    remaining: Option<u64>,
    /// An error to yield before anything else (a builder that was invalid).
    failed: Option<Error>,
    /// Rows the server could not send, stepped past.
    skipped: Vec<(String, String)>,
}

impl<T> std::fmt::Debug for PageStream<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PageStream")
            .field("buffered", &self.buffered.len())
            .field("last_cursor", &self.last_cursor)
            .finish_non_exhaustive()
    }
}

impl<T: Send + 'static> PageStream<T> {
    /// Follows cursors from `start`: each page's request is `template` with the cursor set by
    /// `set_cursor`, sent by `fetch`.
    pub(crate) fn follow<R, Fut>(
        client: Client,
        template: R,
        start: Option<String>,
        set_cursor: fn(&mut R, Option<String>),
        fetch: fn(Client, R) -> Fut,
    ) -> Self
    where
        R: Clone + Send + Sync + 'static,
        Fut: Future<Output = Result<Page<T>>> + Send + Sync + 'static,
    {
        let fetch: Fetch<T> = Box::new(move |cursor| {
            let mut request = template.clone();
            set_cursor(&mut request, cursor);
            Box::pin(fetch(client.clone(), request))
        });
        Self {
            fetch,
            state: StreamState::Idle(start),
            buffered: VecDeque::new(),
            last_cursor: None,
            fetching_from: None,
            remaining: None,
            failed: None,
            skipped: Vec::new(),
        }
    }

    /// A stream that yields `error` on every call.
    pub(crate) fn failed(error: Error) -> Self {
        Self {
            fetch: Box::new(|_| Box::pin(std::future::pending())),
            state: StreamState::Done,
            buffered: VecDeque::new(),
            last_cursor: None,
            fetching_from: None,
            remaining: None,
            failed: Some(error),
            skipped: Vec::new(),
        }
    }

    /// Ends the stream after `rows` rows (pages are still fetched at the page size, so the
    /// last page may be read only in part).
    ///
    /// ```no_run
    /// # async fn demo(client: edbx::Client) -> edbx::Result<()> {
    /// let first_ten = client.list().take(100).stream().limit(10).collect_all().await?;
    /// # Ok(()) }
    /// ```
    pub fn limit(mut self, rows: u64) -> Self {
        self.remaining = Some(rows);
        self
    }

    /// The aggregates (type, id) stepped past so far because the server cannot send them (see
    /// [`List::skip_unlistable`](crate::List::skip_unlistable)); each is also logged as a
    /// `tracing` warning when met.
    pub fn skipped(&self) -> &[(String, String)] {
        &self.skipped
    }

    /// The next row, or `None` at the end. After an error, the next call fetches the same page
    /// again (see [`PageStream`]).
    pub async fn next(&mut self) -> Option<Result<T>> {
        std::future::poll_fn(|cx| self.poll_next_row(cx)).await
    }

    /// The rows of the next page (what is left of the current one first), or `None` at the end.
    /// For callers that hand rows on in batches, e.g. language bindings.
    ///
    /// ```no_run
    /// # async fn demo(client: edbx::Client) -> edbx::Result<()> {
    /// let mut pages = client.list().take(100).stream();
    /// while let Some(rows) = pages.next_page().await {
    ///     println!("{} aggregates", rows?.len());
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn next_page(&mut self) -> Option<Result<Vec<T>>> {
        let first = match self.next().await? {
            Ok(row) => row,
            Err(e) => return Some(Err(e)),
        };
        let more = match self.remaining {
            Some(remaining) => self.buffered.len().min(remaining as usize),
            None => self.buffered.len(),
        };
        let mut rows = Vec::with_capacity(1 + more);
        rows.push(first);
        rows.extend(self.buffered.drain(..more));
        if let Some(remaining) = &mut self.remaining {
            *remaining -= more as u64;
        }
        Some(Ok(rows))
    }

    /// Reads every remaining row.
    pub async fn collect_all(mut self) -> Result<Vec<T>> {
        let mut rows = Vec::new();
        while let Some(row) = self.next().await {
            rows.push(row?);
        }
        Ok(rows)
    }

    fn poll_next_row(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<T>>> {
        if let Some(error) = &self.failed {
            return Poll::Ready(Some(Err(error.clone())));
        }
        if self.remaining == Some(0) {
            return Poll::Ready(None);
        }
        loop {
            if let Some(row) = self.buffered.pop_front() {
                if let Some(remaining) = &mut self.remaining {
                    *remaining -= 1;
                }
                return Poll::Ready(Some(Ok(row)));
            }
            match &mut self.state {
                StreamState::Done => return Poll::Ready(None),
                StreamState::Idle(cursor) => {
                    let cursor = cursor.take();
                    self.fetching_from.clone_from(&cursor);
                    self.state = StreamState::Fetching((self.fetch)(cursor));
                }
                StreamState::Fetching(future) => {
                    let page = match future.as_mut().poll(cx) {
                        Poll::Pending => return Poll::Pending,
                        Poll::Ready(Err(e)) => {
                            // Nothing of the page was handed out: the next call asks again.
                            self.state = StreamState::Idle(self.fetching_from.take());
                            return Poll::Ready(Some(Err(e)));
                        }
                        Poll::Ready(Ok(page)) => page,
                    };
                    // A page that stepped past unlistable rows has no items but moves on.
                    let advanced = !page.items.is_empty() || !page.skipped.is_empty();
                    self.skipped.extend(page.skipped);
                    self.state = match page.next_cursor {
                        Some(next) if advanced => {
                            if self.last_cursor.as_deref() == Some(next.as_str()) {
                                // The server sent the same rows again: asking again would too.
                                let error = Error::protocol(format!(
                                    "listing did not advance past cursor {next}"
                                ));
                                self.failed = Some(error.clone());
                                self.state = StreamState::Done;
                                return Poll::Ready(Some(Err(error)));
                            }
                            self.last_cursor = Some(next.clone());
                            StreamState::Idle(Some(next))
                        }
                        _ => StreamState::Done,
                    };
                    self.buffered.extend(page.items);
                }
            }
        }
    }
}

// Rows are only moved, never pinned; the page future is boxed.
impl<T> Unpin for PageStream<T> {}

impl<T: Send + 'static> futures_core::Stream for PageStream<T> {
    type Item = Result<T>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().poll_next_row(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agg(id: &str) -> Aggregate {
        serde_json::from_value(serde_json::json!({
            "aggregate_type": "bulk", "aggregate_id": id, "version": 1
        }))
        .unwrap()
    }

    #[test]
    fn a_cursor_past_the_last_row_is_repaired() {
        let items = vec![agg("b-000"), agg("b-001")];
        let (cursor, repaired) = next_cursor(&items, Some("a:bulk:b-039"));
        assert_eq!(cursor.as_deref(), Some("a:bulk:b-001"));
        assert!(repaired);
        let (cursor, repaired) = next_cursor(&items, Some("a:bulk:b-001"));
        assert_eq!(cursor.as_deref(), Some("a:bulk:b-001"));
        assert!(!repaired);
    }

    #[test]
    fn only_an_empty_page_ends_a_listing() {
        // A short page without a cursor may still have been cut by the server.
        assert_eq!(
            next_cursor(&[agg("x")], None).0.as_deref(),
            Some("a:bulk:x")
        );
        assert_eq!(next_cursor::<Aggregate>(&[], Some("a:x:y")), (None, false));
    }
}
