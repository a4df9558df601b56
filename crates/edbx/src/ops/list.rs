//! Listings: aggregates and one aggregate's events, one page at a time or as streams.

use edbx_wire::{ListAggregates, ListEvents, Request, Response};

use super::awaitable;
use crate::client::{Client, unexpected};
use crate::error::{Error, ErrorKind, Result};
use crate::model::{Aggregate, Event, Resolved, parse_list};
use crate::page::{Page, PageStream, next_cursor};
use crate::validate;

/// Builder of [`Client::list`]; await it for one page, or call [`stream`](List::stream).
#[must_use = "a request does nothing until awaited"]
#[derive(Clone)]
pub struct List<'a> {
    client: &'a Client,
    request: ListAggregates,
    /// A problem found while building, reported when the listing runs.
    invalid: Option<Error>,
    /// Step past rows the server cannot send instead of failing.
    skip_unlistable: bool,
}

impl<'a> List<'a> {
    /// The page size: rows per request (server default 10, at most 1000; 0 is refused). It
    /// is not a limit on a stream — use [`PageStream::limit`] for that. The server may return
    /// fewer rows than asked (its pages hold ~7.5 KiB); the page's cursor always continues right
    /// after the last row received.
    pub fn take(mut self, take: u64) -> Self {
        self.request.take = Some(take);
        self
    }

    /// Resume after this cursor (from [`Page::next_cursor`]).
    pub fn cursor(mut self, cursor: impl Into<String>) -> Self {
        self.request.cursor = Some(cursor.into());
        self
    }

    /// Only aggregates matching a filter expression, e.g. `status = 'paid' AND total > 40`.
    /// Combined with [`aggregate_type`](Self::aggregate_type) by `AND`.
    ///
    #[doc = include_str!("filters.md")]
    pub fn filter(mut self, filter: impl Into<String>) -> Self {
        let filter = filter.into();
        self.request.filter = Some(match self.request.filter.take() {
            Some(existing) => format!("({existing}) AND ({filter})"),
            None => filter,
        });
        self
    }

    /// Only aggregates of one type: the filter `aggregate_type = '<type>'` (combined with any
    /// other filter by `AND`).
    ///
    /// ```no_run
    /// # async fn demo(client: edbx::Client) -> edbx::Result<()> {
    /// let paid_orders = client.list().aggregate_type("orders").filter("status = 'paid'").await?;
    /// # Ok(()) }
    /// ```
    pub fn aggregate_type(self, aggregate_type: &str) -> Self {
        if let Err(e) = validate::aggregate_type(aggregate_type) {
            return Self {
                invalid: Some(e),
                ..self
            };
        }
        self.filter(format!("aggregate_type = '{aggregate_type}'"))
    }

    /// Sort directives, e.g. `created_at:desc` or `aggregate_id:asc, updated_at:desc`
    /// (fields `aggregate_type`, `aggregate_id`, `archived`, `created_at`, `updated_at`).
    ///
    /// Only a single `created_at` or `updated_at` key can be paged past its first page: the
    /// server gives other sorts no cursor, and [`stream`](Self::stream) refuses them. Such a
    /// page can also come back cut short by the server's ~7.5 KiB page budget with no sign of
    /// it; the client then checks (by counting the matching rows, unsorted) whether any row is
    /// missing, and reports [`Page::complete`] accordingly — never a cut page as the end.
    pub fn sort(mut self, sort: impl Into<String>) -> Self {
        self.request.sort = Some(sort.into());
        self
    }

    /// Also list archived aggregates, after the active ones.
    pub fn include_archived(mut self, include: bool) -> Self {
        self.request.include_archived = include;
        self
    }

    /// List only archived aggregates.
    pub fn archived_only(mut self, only: bool) -> Self {
        self.request.archived_only = only;
        self
    }

    /// Resolve references of the listed aggregates (into [`Page::resolved`]), optionally to a
    /// given depth.
    pub fn resolve(mut self, depth: Option<u32>) -> Self {
        self.request.resolve = true;
        self.request.resolve_depth = depth;
        self
    }

    /// Steps past an aggregate the server cannot send (its JSON is over 7,597 bytes) instead
    /// of failing: the page that meets it comes back empty, naming it in [`Page::skipped`],
    /// with a cursor right after it, and a stream reports it in [`PageStream::skipped`] (and
    /// as a `tracing` warning) and goes on. Off by default.
    ///
    /// Server 3.19.4 cannot be asked which row it failed on: it closes the connection. But a
    /// cursor need not name an existing aggregate (the server resumes at the first key after
    /// it), so the client finds the row's type and id by bisecting the key space with
    /// one-row probes, one character at a time: about 6 probes per character of type and id,
    /// half of which fail (each failure closes a connection, and requests queued behind a
    /// probe on that connection fail too — writes among them as outcome unknown: avoid
    /// writing on the same client while such a listing runs). Only unsorted listings of
    /// active or of archived aggregates can be continued this way; with
    /// [`include_archived`](Self::include_archived) or a sort, the listing still fails with
    /// [`ErrorKind::ReplyTooLarge`].
    pub fn skip_unlistable(mut self, skip: bool) -> Self {
        self.skip_unlistable = skip;
        self
    }

    /// Every matching aggregate, page by page, never skipping or repeating one.
    pub fn stream(self) -> PageStream<Aggregate> {
        if let Some(e) = self.invalid {
            return PageStream::failed(e);
        }
        let start = self.request.cursor.clone();
        let request = (self.request, self.skip_unlistable);
        PageStream::follow(
            self.client.clone(),
            request,
            start,
            |(request, _), cursor| request.cursor = cursor,
            |client, (request, skip)| async move {
                if request.sort.as_deref().and_then(timestamp_sort) == Some(false) {
                    // The server returns no cursor for such a sort and accepts none: a stream
                    // would silently stop after the first page.
                    return Err(Error::invalid_input(
                        "a listing sorted by anything but a single created_at or updated_at key \
                         cannot be streamed; request one page with a large take instead",
                    ));
                }
                list_page(&client, request, skip).await
            },
        )
    }

    async fn run(self) -> Result<Page<Aggregate>> {
        if let Some(e) = self.invalid {
            return Err(e);
        }
        list_page(self.client, self.request, self.skip_unlistable).await
    }
}
awaitable!(List, Page<Aggregate>);

/// Whether a sort can be paged with cursors: a single `created_at` or `updated_at` key.
fn timestamp_sort(sort: &str) -> Option<bool> {
    let sort = sort.trim();
    if sort.is_empty() {
        return None;
    }
    let single = !sort.contains(',');
    let field = sort
        .split(':')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    Some(
        single
            && matches!(
                field.as_str(),
                "created_at" | "createdat" | "updated_at" | "updatedat"
            ),
    )
}

/// A page size of 0 would return nothing, silently.
fn check_take(take: Option<u64>) -> Result<()> {
    match take {
        Some(0) => Err(Error::invalid_input(
            "take is the page size and must be at least 1 (use PageStream::limit to stop early)",
        )),
        _ => Ok(()),
    }
}

async fn list_page(
    client: &Client,
    request: ListAggregates,
    skip_unlistable: bool,
) -> Result<Page<Aggregate>> {
    check_take(request.take)?;
    let sorted = request.sort.as_deref().and_then(timestamp_sort);
    if sorted.is_none() && skip_unlistable && !request.include_archived {
        let template = request.clone();
        return match pageable_page(client, request, false).await {
            Err(e) if e.kind() == ErrorKind::ReplyTooLarge => {
                match find_unlistable(client, &template).await? {
                    Some(page) => Ok(page),
                    None => Err(e),
                }
            }
            other => other,
        };
    }
    if sorted != Some(false) {
        return pageable_page(client, request, sorted == Some(true)).await;
    }
    // Sorted by something the server cannot continue; it may also have cut the page to its
    // size budget without saying so. The page is complete only if no further row matches.
    if request.cursor.is_some() {
        return Err(Error::invalid_input(
            "the server cannot resume a listing sorted by anything but a single created_at or \
             updated_at key",
        ));
    }
    let mut unsorted = request.clone();
    unsorted.sort = None;
    unsorted.resolve = false;
    unsorted.resolve_depth = None;
    let (items, resolved, _) = fetch(client, request).await?;
    let complete =
        items.is_empty() || count_up_to(client, unsorted, items.len() + 1).await? <= items.len();
    Ok(Page {
        items,
        next_cursor: None,
        repaired: false,
        complete,
        resolved,
        skipped: Vec::new(),
    })
}

/// A page of an unsorted or timestamp-sorted listing, with the cursor of its last row.
async fn pageable_page(
    client: &Client,
    request: ListAggregates,
    timestamp_sorted: bool,
) -> Result<Page<Aggregate>> {
    let (items, resolved, server_cursor) = fetch(client, request).await?;
    let (next, repaired) = if timestamp_sorted {
        // The server never returns a cursor for sorted listings; timestamp sorts resume from
        // the `ts:<type>:<id>` shorthand of the last row.
        let next = items
            .last()
            .map(|a| format!("ts:{}:{}", a.aggregate_type, a.aggregate_id));
        (next, false)
    } else {
        next_cursor(&items, server_cursor.as_deref())
    };
    let complete = items.is_empty();
    Ok(Page {
        items,
        next_cursor: next,
        repaired,
        complete,
        resolved,
        skipped: Vec::new(),
    })
}

type Fetched = (Vec<Aggregate>, Option<Vec<Resolved>>, Option<String>);

/// One `listAggregates` call: its rows, resolved references and the server's cursor.
async fn fetch(client: &Client, request: ListAggregates) -> Result<Fetched> {
    let start = request.cursor.clone();
    let filter = request.filter.clone();
    let reply = match client.execute(Request::ListAggregates(request)).await {
        Ok(Response::ListAggregates(reply)) => reply,
        Ok(other) => return Err(unexpected("listAggregates", &other)),
        Err(e) if e.message().contains("invalid filter expression") => {
            return Err(e.with_kind(ErrorKind::InvalidInput).context(format!(
                "filter {} refused (see List::filter for the grammar)",
                crate::config::quoted(filter.as_deref().unwrap_or_default())
            )));
        }
        Err(e) => return Err(listing_context(e, "aggregates", start.as_deref())),
    };
    let items: Vec<Aggregate> = parse_list(&reply.aggregates_json)?;
    let resolved = reply
        .resolved_json
        .as_deref()
        .filter(|json| !json.trim().is_empty())
        .map(serde_json::from_str::<Vec<Resolved>>)
        .transpose()
        .map_err(|e| Error::decode("resolved aggregates", e))?;
    Ok((items, resolved, reply.next_cursor))
}

/// Characters of aggregate types and ids, in byte order.
const TYPE_CHARS: &[u8] = b"0123456789_abcdefghijklmnopqrstuvwxyz";
const ID_CHARS: &[u8] = b"-0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz";

/// Finds the aggregates an unsorted listing from `template`'s cursor failed on and returns an
/// empty page that steps past them. `None` if they cannot be found (then the listing's own
/// error stands).
///
/// A probe (a one-row listing) from cursor `P` fails exactly when the first matching row after
/// `P` cannot be sent. Over `P` at or after the listing's start that holds on one interval,
/// up to the last row `B` of the run of unlistable rows right after the start (the server seeks
/// to `P`'s key and skips it only if it exists), so `B`'s type and id are found by bisection,
/// character by character. `B` is then left out with a filter and the search repeated until a
/// probe from the start succeeds: every row of the run is named, and the listing resumes after
/// the first `B`.
async fn find_unlistable(
    client: &Client,
    template: &ListAggregates,
) -> Result<Option<Page<Aggregate>>> {
    let scope = if template.archived_only { "r" } else { "a" };
    let start = match template.cursor.as_deref() {
        None => None,
        Some(cursor) => match cursor.split(':').collect::<Vec<_>>()[..] {
            [s, t, i] if s == scope => Some(key(t, i)),
            _ => return Ok(None),
        },
    };
    let mut skipped: Vec<(String, String)> = Vec::new();
    let mut template = template.clone();
    loop {
        let Some(found) = bisect(client, &template, scope, start.as_deref()).await? else {
            return Ok(None);
        };
        let exclude = format!(
            "NOT (aggregate_type = '{}' AND aggregate_id = '{}')",
            found.0, found.1
        );
        template.filter = Some(match template.filter.take() {
            Some(filter) => format!("({filter}) AND {exclude}"),
            None => exclude,
        });
        tracing::warn!(
            aggregate_type = %found.0, aggregate_id = %found.1,
            "the server cannot list this aggregate (its JSON is over 7,597 bytes): skipped"
        );
        skipped.push(found);
        if !probe(client, &template, None, None).await? {
            break;
        }
        if skipped.len() >= 100 {
            return Ok(None);
        }
    }
    let next_cursor = skipped.first().map(|(t, i)| format!("{scope}:{t}:{i}"));
    skipped.reverse();
    Ok(Some(Page {
        items: Vec::new(),
        next_cursor,
        repaired: false,
        complete: false,
        resolved: None,
        skipped,
    }))
}

/// Whether a one-row listing like `template`, from `at` (or from its own cursor), fails because
/// its row cannot be sent. Positions below `start` are known to come before the failing row.
async fn probe(
    client: &Client,
    template: &ListAggregates,
    at: Option<(&str, &str, &str)>,
    start: Option<&[u8]>,
) -> Result<bool> {
    let mut request = template.clone();
    request.take = Some(1);
    request.resolve = false;
    request.resolve_depth = None;
    if let Some((scope, aggregate_type, aggregate_id)) = at {
        if start.is_some_and(|start| key(aggregate_type, aggregate_id).as_slice() < start) {
            return Ok(true);
        }
        request.cursor = Some(format!("{scope}:{aggregate_type}:{aggregate_id}"));
    }
    match client.execute(Request::ListAggregates(request)).await {
        Ok(Response::ListAggregates(_)) => Ok(false),
        Ok(other) => Err(unexpected("listAggregates", &other)),
        Err(e) if e.kind() == ErrorKind::ReplyTooLarge => Ok(true),
        Err(e) => Err(e),
    }
}

/// The last unlistable row of the run after `template`'s start, by bisection.
async fn bisect(
    client: &Client,
    template: &ListAggregates,
    scope: &str,
    start: Option<&[u8]>,
) -> Result<Option<(String, String)>> {
    // The type: `(T, "\u{1}")` sorts before every id of type `T`, so the probe fails exactly
    // when `T <= B.type`.
    let mut aggregate_type = String::new();
    while let Some(c) = last_true(TYPE_CHARS, |c| {
        let t = format!("{aggregate_type}{c}");
        async move { probe(client, template, Some((scope, &t, "\u{1}")), start).await }
    })
    .await?
    {
        aggregate_type.push(c);
        if aggregate_type.len() > validate::MAX_ID_CHARS {
            return Ok(None);
        }
    }
    if aggregate_type.is_empty() {
        return Ok(None);
    }
    // The id: the probe at `before(Q)` fails exactly when `Q <= B.id` (see `before`).
    let mut aggregate_id = String::new();
    while let Some(c) = last_true(ID_CHARS, |c| {
        let q = before(&format!("{aggregate_id}{c}"));
        let t = &aggregate_type;
        async move { probe(client, template, Some((scope, t, &q)), start).await }
    })
    .await?
    {
        aggregate_id.push(c);
        if aggregate_id.len() > validate::MAX_ID_CHARS {
            return Ok(None);
        }
    }
    // The search ends on a row that exists: the listing goes on right after it.
    let at = Some((scope, aggregate_type.as_str(), aggregate_id.as_str()));
    if aggregate_id.is_empty() || probe(client, template, at, start).await? {
        return Ok(None);
    }
    Ok(Some((aggregate_type, aggregate_id)))
}

/// An aggregate's key in the server's store, for ordering (the common prefix left out).
fn key(aggregate_type: &str, aggregate_id: &str) -> Vec<u8> {
    [aggregate_type.as_bytes(), &[0x1f], aggregate_id.as_bytes()].concat()
}

/// A string just below `q` for ids: its last character one lower, then `~`, which sorts after
/// every id character. For any id `s`: `before(q) < s` exactly when `q <= s`.
fn before(q: &str) -> String {
    let mut bytes = q.as_bytes().to_vec();
    if let Some(last) = bytes.last_mut() {
        *last -= 1;
    }
    bytes.push(b'~');
    String::from_utf8(bytes).unwrap_or_default()
}

/// The last of `chars` (ascending) for which `test` holds, when it holds for a prefix of them.
async fn last_true<F, Fut>(chars: &[u8], mut test: F) -> Result<Option<char>>
where
    F: FnMut(char) -> Fut,
    Fut: std::future::Future<Output = Result<bool>>,
{
    let (mut lo, mut hi) = (0, chars.len());
    while lo < hi {
        let mid = (lo + hi) / 2;
        if test(chars[mid] as char).await? {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    Ok(lo.checked_sub(1).map(|i| chars[i] as char))
}

/// How many aggregates an unsorted listing yields, counting at most `limit`.
async fn count_up_to(client: &Client, template: ListAggregates, limit: usize) -> Result<usize> {
    let mut cursor = None;
    let mut counted = 0;
    while counted < limit {
        let mut request = template.clone();
        request.cursor = cursor.take();
        request.take = Some(1000);
        let page = pageable_page(client, request, false).await?;
        counted += page.items.len();
        match page.next_cursor {
            Some(next) if !page.complete => cursor = Some(next),
            _ => break,
        }
    }
    Ok(counted)
}

/// Says which listing could not be read, and after which cursor.
fn listing_context(error: Error, what: &str, cursor: Option<&str>) -> Error {
    if error.kind() != ErrorKind::ReplyTooLarge {
        return error;
    }
    match cursor {
        Some(cursor) => error.context(format!(
            "listing {what} after cursor {cursor}: the next row cannot be listed"
        )),
        None => error.context(format!(
            "listing {what} from the start: the first row cannot be listed"
        )),
    }
}

/// Builder of [`Client::events`]; await it for one page, or call [`stream`](Events::stream).
#[must_use = "a request does nothing until awaited"]
#[derive(Clone)]
pub struct Events<'a> {
    client: &'a Client,
    request: ListEvents,
}

impl<'a> Events<'a> {
    /// The page size: events per request (server default and maximum 1000; 0 is refused;
    /// pages are also cut to ~7.5 KiB). Not a limit on a stream: see [`PageStream::limit`].
    pub fn take(mut self, take: u64) -> Self {
        self.request.take = Some(take);
        self
    }

    /// Resume after this cursor (`a:<type>:<id>:<version>`, from [`Page::next_cursor`]).
    pub fn cursor(mut self, cursor: impl Into<String>) -> Self {
        self.request.cursor = Some(cursor.into());
        self
    }

    /// Resume after this version.
    pub fn after_version(self, version: u64) -> Self {
        let cursor = format!(
            "a:{}:{}:{version}",
            self.request.aggregate_type, self.request.aggregate_id
        );
        self.cursor(cursor)
    }

    /// Every event of the aggregate from the cursor on, in version order.
    pub fn stream(self) -> PageStream<Event> {
        let start = self.request.cursor.clone();
        PageStream::follow(
            self.client.clone(),
            self.request,
            start,
            |request, cursor| request.cursor = cursor,
            |client, request| async move { events_page(&client, request).await },
        )
    }

    async fn run(self) -> Result<Page<Event>> {
        events_page(self.client, self.request).await
    }
}
awaitable!(Events, Page<Event>);

async fn events_page(client: &Client, request: ListEvents) -> Result<Page<Event>> {
    check_take(request.take)?;
    validate::aggregate_type(&request.aggregate_type)?;
    validate::aggregate_id(&request.aggregate_id)?;
    let (aggregate_type, aggregate_id) =
        (request.aggregate_type.clone(), request.aggregate_id.clone());
    let start = request
        .cursor
        .clone()
        .unwrap_or_else(|| format!("a:{aggregate_type}:{aggregate_id}:0"));
    let reply = match client.execute(Request::ListEvents(request)).await {
        Ok(Response::ListEvents(reply)) => reply,
        Ok(other) => return Err(unexpected("listEvents", &other)),
        Err(e) => return Err(listing_context(e, "events", Some(&start))),
    };
    let mut items: Vec<Event> = parse_list(&reply.events_json)?;
    // Server 3.19.4 resumes a cursor by key prefix, so past the end of `l-1` it returns the
    // events of `l-10`, `l-11`, …: the first foreign row marks the end of this aggregate.
    let own = items
        .iter()
        .position(|e| e.aggregate_type != aggregate_type || e.aggregate_id != aggregate_id);
    let (next, repaired, complete) = match own {
        Some(end) => {
            tracing::debug!(
                dropped = items.len() - end,
                "listEvents returned another aggregate's events"
            );
            items.truncate(end);
            (None, false, true)
        }
        None => {
            let (next, repaired) = next_cursor(&items, reply.next_cursor.as_deref());
            (next, repaired, items.is_empty())
        }
    };
    Ok(Page {
        items,
        next_cursor: next,
        repaired,
        complete,
        resolved: None,
        skipped: Vec::new(),
    })
}

impl Client {
    /// Lists aggregates, one page per await; see [`List`] for options and
    /// [`List::stream`] to read every page.
    ///
    /// ```no_run
    /// # async fn demo(client: edbx::Client) -> edbx::Result<()> {
    /// let page = client.list().take(50).await?;
    /// for aggregate in &page.items {
    ///     println!("{}/{}", aggregate.aggregate_type, aggregate.aggregate_id);
    /// }
    /// if let Some(cursor) = page.next_cursor {
    ///     let _next = client.list().take(50).cursor(cursor).await?;
    /// }
    /// # Ok(()) }
    /// ```
    pub fn list(&self) -> List<'_> {
        List {
            client: self,
            request: ListAggregates::default(),
            invalid: None,
            skip_unlistable: false,
        }
    }

    /// Lists one aggregate's events in version order; see [`Events`].
    pub fn events(&self, aggregate_type: &str, aggregate_id: &str) -> Events<'_> {
        Events {
            client: self,
            request: ListEvents::new(aggregate_type, aggregate_id),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::timestamp_sort;

    #[test]
    fn only_single_timestamp_sorts_page() {
        assert_eq!(timestamp_sort("created_at:desc"), Some(true));
        assert_eq!(timestamp_sort(" updatedAt "), Some(true));
        assert_eq!(timestamp_sort("aggregate_id"), Some(false));
        assert_eq!(timestamp_sort("created_at, aggregate_id"), Some(false));
        assert_eq!(timestamp_sort(""), None);
    }
}
