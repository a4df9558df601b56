//! A blocking client for code without an async runtime: the async [`Client`](crate::Client) on a
//! current-thread runtime of its own, never a second implementation.
//!
//! Calls return their results directly and listings are iterators, like `postgres::Client` or
//! `reqwest::blocking`. The runtime has no thread of its own: the thread that makes a call
//! drives the connections while it waits (so a call costs no hand-off between threads), and
//! threads sharing one client take turns.
//!
//! ```no_run
//! use edbx::blocking::Client;
//! use serde_json::json;
//!
//! let db = Client::connect(edbx::Config::from_env()?)?;
//! let created = db.create("orders", "ord_1", "created", &json!({"total": 42.15}))?;
//! db.apply("orders", "ord_1", "paid", &json!({"status": "paid"}))?;
//! for event in db.events("orders", "ord_1") {
//!     let event = event?;
//!     println!("v{} {}", event.version, event.original_type());
//! }
//! let order = db.get("orders", "ord_1")?.expect("just created");
//! # let _ = (created, order);
//! # Ok::<(), edbx::Error>(())
//! ```

use std::future::IntoFuture;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::config::Config;
use crate::error::{Error, ErrorKind, Result};
use crate::model::{Aggregate, Event, Referrer, Resolved, Snapshot, Written};
use crate::ops::NewEvent;
use crate::page::{Page, PageStream};
use crate::replies::{SchemaVersion, TenantAssignment, TenantQuota};
use crate::verify::Verification;

/// A blocking EventDBX client. Share it between threads by reference (it is `Sync`); each call
/// blocks the calling thread until its result is in.
///
/// Call it from plain threads, not from inside an async runtime (blocking there would stall
/// that runtime; use [`crate::Client`] instead).
pub struct Client {
    client: crate::Client,
    // Declared last so that the connections' tasks outlive the handle above while it closes.
    runtime: tokio::runtime::Runtime,
}

impl Client {
    /// Connects like [`crate::Client::connect`].
    pub fn connect(config: Config) -> Result<Self> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| {
                Error::new(ErrorKind::Config, format!("cannot start a runtime: {e}")).with_source(e)
            })?;
        let client = runtime.block_on(crate::Client::connect(config))?;
        Ok(Self { client, runtime })
    }

    /// Runs any call of the async client (a builder with options, say) to completion:
    /// `db.run(db.as_async().apply(..).note("…"))`.
    pub fn run<F: IntoFuture>(&self, call: F) -> F::Output {
        self.runtime.block_on(call.into_future())
    }

    /// The async client inside, for [`run`](Self::run) or to hand to async code.
    pub fn as_async(&self) -> &crate::Client {
        &self.client
    }

    /// Stops new calls; see [`crate::Client::close`].
    pub fn close(&self) {
        self.client.close();
    }

    // ----- writes -----------------------------------------------------------------------

    /// Creates an aggregate with its first event; see [`crate::Client::create`].
    pub fn create(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
        event_type: &str,
        payload: &impl Serialize,
    ) -> Result<Written<Aggregate>> {
        self.run(
            self.client
                .create(aggregate_type, aggregate_id, event_type, payload),
        )
    }

    /// Appends an event, creating the aggregate if needed; see [`crate::Client::apply`].
    pub fn apply(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
        event_type: &str,
        payload: &impl Serialize,
    ) -> Result<Written<Event>> {
        self.run(
            self.client
                .apply(aggregate_type, aggregate_id, event_type, payload),
        )
    }

    /// Appends an event given as data, with its note, metadata and publish targets.
    pub fn send_event(&self, event: NewEvent) -> Result<Written<Event>> {
        self.run(self.client.send_event(event))
    }

    /// Appends an event computed from RFC 6902 operations; see [`crate::Client::patch`].
    pub fn patch(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
        event_type: &str,
        operations: &impl Serialize,
    ) -> Result<Written<Event>> {
        self.run(
            self.client
                .patch(aggregate_type, aggregate_id, event_type, operations),
        )
    }

    /// Archives an aggregate, with an optional comment.
    pub fn archive(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
        comment: Option<&str>,
    ) -> Result<Written<Aggregate>> {
        let call = self.client.archive(aggregate_type, aggregate_id);
        self.run(match comment {
            Some(comment) => call.comment(comment),
            None => call,
        })
    }

    /// Restores an archived aggregate.
    pub fn restore(&self, aggregate_type: &str, aggregate_id: &str) -> Result<Written<Aggregate>> {
        self.run(self.client.restore(aggregate_type, aggregate_id))
    }

    // ----- reads ------------------------------------------------------------------------

    /// The aggregate, or `None`; see [`crate::Client::get`].
    pub fn get(&self, aggregate_type: &str, aggregate_id: &str) -> Result<Option<Aggregate>> {
        // Not through `run`: the builder's `IntoFuture` boxes, and this is the hottest call.
        self.runtime
            .block_on(self.client.get(aggregate_type, aggregate_id).run())
    }

    /// The aggregate with its references resolved, or `None`.
    pub fn get_resolved(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
    ) -> Result<Option<Resolved>> {
        self.run(self.client.get(aggregate_type, aggregate_id).resolved())
    }

    /// Fields of the aggregate's state by dot path; see [`crate::Client::select`].
    pub fn select<S: AsRef<str>>(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
        fields: &[S],
    ) -> Result<Option<Map<String, Value>>> {
        self.run(self.client.select(aggregate_type, aggregate_id, fields))
    }

    /// The Merkle root the server stored; see [`crate::Client::merkle_root`].
    pub fn merkle_root(&self, aggregate_type: &str, aggregate_id: &str) -> Result<String> {
        self.run(self.client.merkle_root(aggregate_type, aggregate_id))
    }

    /// Checks the aggregate's history against its root; see [`crate::Client::verify`].
    pub fn verify(&self, aggregate_type: &str, aggregate_id: &str) -> Result<Verification> {
        self.run(self.client.verify(aggregate_type, aggregate_id))
    }

    /// Aggregates referencing this one.
    pub fn referrers(&self, aggregate_type: &str, aggregate_id: &str) -> Result<Vec<Referrer>> {
        self.run(self.client.referrers(aggregate_type, aggregate_id))
    }

    /// Aggregates: set options on the returned listing, then iterate over it (every row,
    /// page after page) or ask for one [`page`](List::page).
    ///
    /// ```no_run
    /// # let db: edbx::blocking::Client = unimplemented!();
    /// for order in db.list().aggregate_type("orders").filter("status = 'paid'") {
    ///     println!("{}", order?.aggregate_id);
    /// }
    /// # Ok::<(), edbx::Error>(())
    /// ```
    pub fn list(&self) -> List<'_> {
        List {
            inner: self.client.list(),
            runtime: &self.runtime,
            limit: None,
        }
    }

    /// One aggregate's events, in version order: iterate, or ask for one
    /// [`page`](EventList::page).
    pub fn events(&self, aggregate_type: &str, aggregate_id: &str) -> EventList<'_> {
        EventList {
            inner: self.client.events(aggregate_type, aggregate_id),
            runtime: &self.runtime,
            limit: None,
        }
    }

    /// A catch-up subscription (see [`crate::Client::subscribe`]): set its options, then
    /// [`stream`](Subscribe::stream) it into an iterator of events.
    ///
    /// ```no_run
    /// # let db: edbx::blocking::Client = unimplemented!();
    /// let mut orders = db.subscribe().aggregate_type("orders").until_caught_up(true).stream()?;
    /// for delivered in &mut orders {
    ///     let delivered = delivered?;
    ///     println!("{} v{}", delivered.event.aggregate_id, delivered.event.version);
    /// }
    /// let resume_from = orders.checkpoint().clone(); // store it
    /// # Ok::<(), edbx::Error>(())
    /// ```
    pub fn subscribe(&self) -> Subscribe<'_> {
        Subscribe {
            inner: self.client.subscribe(),
            runtime: &self.runtime,
        }
    }

    // ----- snapshots --------------------------------------------------------------------

    /// Snapshots the aggregate's state, with an optional comment.
    pub fn create_snapshot(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
        comment: Option<&str>,
    ) -> Result<Snapshot> {
        let call = self.client.create_snapshot(aggregate_type, aggregate_id);
        self.run(match comment {
            Some(comment) => call.comment(comment),
            None => call,
        })
    }

    /// Every snapshot of one aggregate.
    pub fn snapshots_of(&self, aggregate_type: &str, aggregate_id: &str) -> Result<Vec<Snapshot>> {
        self.run(
            self.client
                .list_snapshots()
                .aggregate(aggregate_type, aggregate_id),
        )
    }

    /// Every snapshot of the tenant.
    pub fn list_snapshots(&self) -> Result<Vec<Snapshot>> {
        self.run(self.client.list_snapshots())
    }

    /// One snapshot by id, or `None`.
    pub fn get_snapshot(&self, snapshot_id: u64) -> Result<Option<Snapshot>> {
        self.run(self.client.get_snapshot(snapshot_id))
    }

    // ----- schemas and tenants ----------------------------------------------------------

    /// The tenant's schemas: aggregate type → schema.
    pub fn list_schemas(&self) -> Result<Map<String, Value>> {
        self.run(self.client.list_schemas())
    }

    /// Replaces the tenant's schemas; returns how many are stored.
    pub fn replace_schemas(&self, schemas: &impl Serialize) -> Result<u32> {
        self.run(self.client.replace_schemas(schemas))
    }

    /// Assigns a tenant to a shard.
    pub fn tenant_assign(&self, tenant_id: &str, shard_id: &str) -> Result<TenantAssignment> {
        self.run(self.client.tenant_assign(tenant_id, shard_id))
    }

    /// Clears a tenant's shard assignment.
    pub fn tenant_unassign(&self, tenant_id: &str) -> Result<bool> {
        self.run(self.client.tenant_unassign(tenant_id))
    }

    /// Sets a tenant's storage quota in MiB.
    pub fn tenant_quota_set(&self, tenant_id: &str, max_storage_mb: u64) -> Result<TenantQuota> {
        self.run(self.client.tenant_quota_set(tenant_id, max_storage_mb))
    }

    /// Removes a tenant's quota.
    pub fn tenant_quota_clear(&self, tenant_id: &str) -> Result<bool> {
        self.run(self.client.tenant_quota_clear(tenant_id))
    }

    /// Recomputes a tenant's storage use, in bytes.
    pub fn tenant_quota_recalc(&self, tenant_id: &str) -> Result<u64> {
        self.run(self.client.tenant_quota_recalc(tenant_id))
    }

    /// Reopens a tenant's store.
    pub fn tenant_reload(&self, tenant_id: &str) -> Result<bool> {
        self.run(self.client.tenant_reload(tenant_id))
    }

    /// Publishes the tenant's schemas as a new version (for options, use
    /// [`run`](Self::run) with [`crate::Client::tenant_schema_publish`]).
    pub fn tenant_schema_publish(&self, tenant_id: &str) -> Result<SchemaVersion> {
        self.run(self.client.tenant_schema_publish(tenant_id))
    }
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("blocking::Client")
            .field(&self.client)
            .finish()
    }
}

/// A listing of aggregates; see [`Client::list`]. The options are those of [`crate::List`].
#[must_use = "a listing does nothing until iterated or paged"]
pub struct List<'a> {
    inner: crate::List<'a>,
    runtime: &'a tokio::runtime::Runtime,
    limit: Option<u64>,
}

/// A listing of one aggregate's events; see [`Client::events`].
#[must_use = "a listing does nothing until iterated or paged"]
pub struct EventList<'a> {
    inner: crate::Events<'a>,
    runtime: &'a tokio::runtime::Runtime,
    limit: Option<u64>,
}

/// Options forwarded to the async builder.
macro_rules! forward {
    ($($(#[$doc:meta])* $name:ident($($arg:ident: $ty:ty),*);)*) => {$(
        $(#[$doc])*
        pub fn $name(self, $($arg: $ty),*) -> Self {
            Self { inner: self.inner.$name($($arg),*), ..self }
        }
    )*};
}

impl<'a> List<'a> {
    forward! {
        /// The page size (see [`crate::List::take`]).
        take(take: u64);
        /// Resume after this cursor.
        cursor(cursor: String);
        /// Only aggregates matching a filter (see [`crate::List::filter`]).
        filter(filter: &str);
        /// Only aggregates of one type.
        aggregate_type(aggregate_type: &str);
        /// Sort directives (see [`crate::List::sort`]).
        sort(sort: &str);
        /// Also list archived aggregates.
        include_archived(include: bool);
        /// List only archived aggregates.
        archived_only(only: bool);
    }

    /// Stops the iteration after `rows` rows.
    pub fn limit(self, rows: u64) -> Self {
        Self {
            limit: Some(rows),
            ..self
        }
    }

    /// One page (the first, or the one after [`cursor`](Self::cursor)).
    pub fn page(self) -> Result<Page<Aggregate>> {
        self.runtime.block_on(self.inner.into_future())
    }
}

impl<'a> EventList<'a> {
    forward! {
        /// The page size (see [`crate::Events::take`]).
        take(take: u64);
        /// Resume after this cursor.
        cursor(cursor: String);
        /// Start after this version.
        after_version(version: u64);
    }

    /// Stops the iteration after `rows` events.
    pub fn limit(self, rows: u64) -> Self {
        Self {
            limit: Some(rows),
            ..self
        }
    }

    /// One page (the first, or the one after [`cursor`](Self::cursor)).
    pub fn page(self) -> Result<Page<Event>> {
        self.runtime.block_on(self.inner.into_future())
    }
}

/// The rows of a listing, fetched a page at a time as the iteration goes.
pub struct Rows<'a, T> {
    stream: PageStream<T>,
    runtime: &'a tokio::runtime::Runtime,
}

impl<T: Send + 'static> Iterator for Rows<'_, T> {
    type Item = Result<T>;

    fn next(&mut self) -> Option<Result<T>> {
        self.runtime.block_on(self.stream.next())
    }
}

fn limited<T: Send + 'static>(stream: PageStream<T>, limit: Option<u64>) -> PageStream<T> {
    match limit {
        Some(rows) => stream.limit(rows),
        None => stream,
    }
}

impl<'a> IntoIterator for List<'a> {
    type Item = Result<Aggregate>;
    type IntoIter = Rows<'a, Aggregate>;

    fn into_iter(self) -> Self::IntoIter {
        Rows {
            stream: limited(self.inner.stream(), self.limit),
            runtime: self.runtime,
        }
    }
}

impl<'a> IntoIterator for EventList<'a> {
    type Item = Result<Event>;
    type IntoIter = Rows<'a, Event>;

    fn into_iter(self) -> Self::IntoIter {
        Rows {
            stream: limited(self.inner.stream(), self.limit),
            runtime: self.runtime,
        }
    }
}

/// A catch-up subscription being set up; see [`Client::subscribe`]. The options are those of
/// [`crate::Subscribe`].
#[must_use = "a subscription does nothing until streamed"]
pub struct Subscribe<'a> {
    inner: crate::Subscribe<'a>,
    runtime: &'a tokio::runtime::Runtime,
}

impl<'a> Subscribe<'a> {
    forward! {
        /// Follows aggregates of this type too.
        aggregate_type(aggregate_type: &str);
        /// Starts with the first event of every aggregate (the default).
        from_beginning();
        /// Starts with the events written from now on.
        from_now();
        /// Goes on after a stored checkpoint.
        from_checkpoint(checkpoint: String);
        /// How far back each round looks again (see [`crate::Subscribe::overlap`]).
        overlap(overlap: std::time::Duration);
        /// The wait between rounds.
        poll_interval(min: std::time::Duration, max: std::time::Duration);
        /// Aggregates per listing request.
        page_size(rows: u64);
        /// Events per request.
        events_page_size(events: u64);
        /// Aggregates whose events are read at once.
        prefetch(aggregates: usize);
        /// Ends the iteration once caught up.
        until_caught_up(yes: bool);
        /// How long to keep trying again after retryable failures.
        retry_for(limit: Option<std::time::Duration>);
    }

    /// Checks the options and returns the iterator (see [`crate::Subscribe::stream`]).
    pub fn stream(self) -> Result<Subscription<'a>> {
        let _entered = self.runtime.enter();
        Ok(Subscription {
            inner: self.inner.stream()?,
            runtime: self.runtime,
        })
    }
}

/// A running subscription, as an iterator of events; see [`crate::Subscription`]. Each call to
/// `next` blocks until the next event (or the end).
pub struct Subscription<'a> {
    inner: crate::Subscription,
    runtime: &'a tokio::runtime::Runtime,
}

impl Subscription<'_> {
    /// The checkpoint after everything yielded so far.
    pub fn checkpoint(&self) -> &crate::Checkpoint {
        self.inner.checkpoint()
    }

    /// Whether the subscription has caught up at least once.
    pub fn is_caught_up(&self) -> bool {
        self.inner.is_caught_up()
    }

    /// The archived aggregates met since the last call whose events could not be read.
    pub fn take_unreadable(&mut self) -> Vec<crate::Unreadable> {
        self.inner.take_unreadable()
    }
}

impl Iterator for Subscription<'_> {
    type Item = Result<crate::SubscribedEvent>;

    fn next(&mut self) -> Option<Self::Item> {
        self.runtime.block_on(self.inner.next())
    }
}
