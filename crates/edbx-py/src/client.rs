//! `NativeClient`: one `edbx::Client` (pooled, pipelined, thread-safe) and every operation, each
//! written once and run blocking or as an awaitable. Results are plain values (JSON text, tuples)
//! that the Python half wraps in the result classes of the official package.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use arc_swap::ArcSwap;

use edbx::{Client, Config, NewEvent, PublishTarget, RetryOptions, Setting, Written};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::errors::invalid_input;
use crate::runtime::{self, Home};
use crate::stream::NativePageStream;
use crate::subscription::{NativeSubscription, SubscribeOptions};

/// JSON text the server sent for one value.
pub(crate) trait RawText {
    fn raw_text(&self) -> String;
}

macro_rules! raw_text {
    ($($ty:ty),*) => {$(
        impl RawText for $ty {
            fn raw_text(&self) -> String {
                self.raw.as_ref().map(|r| r.get().to_owned()).unwrap_or_default()
            }
        }
    )*};
}
raw_text!(edbx::Aggregate, edbx::Event, edbx::Snapshot);

/// A JSON array of the rows' own texts.
pub(crate) fn json_array<T: RawText>(rows: &[T]) -> String {
    let mut out = String::with_capacity(2 + rows.len() * 256);
    out.push('[');
    for (i, row) in rows.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&row.raw_text());
    }
    out.push(']');
    out
}

/// The server's echo of a write, or `None` when it sent none (`verbose_responses = false`).
fn echo<T: RawText>(written: Written<T>) -> Option<String> {
    written.echo().map(RawText::raw_text)
}

type Target = (String, Option<String>, Option<String>);

fn targets(list: Option<Vec<Target>>) -> Vec<PublishTarget> {
    list.unwrap_or_default()
        .into_iter()
        .map(|(plugin, mode, priority)| {
            let mut target = PublishTarget::new(plugin);
            target.mode = mode;
            target.priority = priority;
            target
        })
        .collect()
}

/// Adds the optional parts of an event write.
fn decorate<'a, T>(
    mut write: edbx::EventWrite<'a, T>,
    note: Option<String>,
    metadata_json: Option<String>,
    publish_targets: Option<Vec<Target>>,
) -> edbx::Result<edbx::EventWrite<'a, T>> {
    if let Some(note) = note {
        write = write.note(note);
    }
    if let Some(metadata) = metadata_json {
        write = write.metadata(&edbx::raw_json(metadata)?);
    }
    for target in targets(publish_targets) {
        write = write.publish_to(target);
    }
    Ok(write)
}

fn seconds(py: Python<'_>, name: &str, value: f64) -> PyResult<Duration> {
    if value.is_nan() || value <= 0.0 {
        return Err(invalid_input(
            py,
            format!("{name} must be a positive number of seconds, got {value}"),
        ));
    }
    // Past what a Duration holds is past the engine's limit too; say the limit, in seconds.
    Duration::try_from_secs_f64(value).map_err(|_| {
        invalid_input(
            py,
            format!(
                "{name} must be at most {} seconds, got {value}",
                Config::MAX_TIMEOUT.as_secs()
            ),
        )
    })
}

fn page_size(py: Python<'_>, take: Option<i64>) -> PyResult<Option<u64>> {
    match take {
        None => Ok(None),
        Some(n) if n >= 1 => Ok(Some(n as u64)),
        Some(n) => Err(invalid_input(
            py,
            format!("take is a page size and must be at least 1, got {n}"),
        )),
    }
}

/// Options of the official package's constructor, after its own checks.
#[derive(FromPyObject)]
#[pyo3(from_item_all)]
pub(crate) struct ClientOptions {
    host: String,
    port: u16,
    token: String,
    tenant_id: Option<String>,
    use_noise: bool,
    connect_timeout: f64,
    read_timeout: f64,
    retry_attempts: u32,
    retry_initial_delay_ms: u64,
    retry_max_delay_ms: u64,
    pool_size: usize,
    max_in_flight: usize,
}

impl ClientOptions {
    fn config(&self, py: Python<'_>) -> PyResult<Config> {
        let connect = seconds(py, "connect_timeout", self.connect_timeout)?;
        let mut config = Config::new()
            .host(self.host.clone())
            .port(self.port)
            .token(self.token.clone())
            .noise(self.use_noise)
            .connect_timeout(connect)
            .handshake_timeout(connect)
            .request_timeout(seconds(py, "read_timeout", self.read_timeout)?)
            .pool_size(self.pool_size)
            .max_in_flight(self.max_in_flight)
            .retry(RetryOptions::new(
                self.retry_attempts.max(1),
                Duration::from_millis(self.retry_initial_delay_ms),
                Duration::from_millis(self.retry_max_delay_ms),
            ));
        if let Some(tenant) = self.tenant_id.as_deref().filter(|t| !t.trim().is_empty()) {
            config = config.tenant_id(tenant);
        }
        // The engine owns the limits; this only says which constructor argument broke one.
        config.validate().map_err(|err| match err.setting() {
            Some(setting) => invalid_input(
                py,
                format!(
                    "{} {}",
                    python_name(setting),
                    err.requirement().unwrap_or_default()
                ),
            ),
            None => crate::errors::to_py_err(py, err),
        })?;
        Ok(config)
    }
}

/// Checks the constructor's options against the engine's rules, so that a client that connects
/// later (the asyncio one) refuses a bad setting at construction too.
#[pyfunction]
pub(crate) fn check_options(py: Python<'_>, options: ClientOptions) -> PyResult<()> {
    options.config(py).map(drop)
}

/// The engine's limits under the constructor's argument names (`_native.LIMITS`), so that
/// tests and users read them rather than restate them.
pub(crate) fn limits(py: Python<'_>) -> PyResult<Bound<'_, PyDict>> {
    let limits = PyDict::new(py);
    limits.set_item("pool_size", Config::MAX_POOL_SIZE)?;
    limits.set_item("max_in_flight", Config::MAX_IN_FLIGHT)?;
    limits.set_item("retry_attempts", Config::MAX_RETRY_ATTEMPTS)?;
    limits.set_item("timeout_seconds", Config::MAX_TIMEOUT.as_secs_f64())?;
    Ok(limits)
}

/// The engine's defaults under the constructor's argument names (`_native.DEFAULTS`), which
/// the constructors take as theirs.
pub(crate) fn defaults(py: Python<'_>) -> PyResult<Bound<'_, PyDict>> {
    let defaults = PyDict::new(py);
    defaults.set_item("pool_size", Config::DEFAULT_POOL_SIZE)?;
    defaults.set_item("max_in_flight", Config::DEFAULT_MAX_IN_FLIGHT)?;
    Ok(defaults)
}

/// The constructor argument that carries an engine setting.
fn python_name(setting: Setting) -> &'static str {
    match setting {
        Setting::PoolSize => "pool_size",
        Setting::MaxInFlight => "max_in_flight",
        Setting::RetryAttempts => "retry.attempts",
        Setting::RetryInitialDelay => "retry.initial_delay_ms",
        Setting::RetryMaxDelay => "retry.max_delay_ms",
        Setting::ConnectTimeout | Setting::HandshakeTimeout => "connect_timeout",
        Setting::RequestTimeout => "read_timeout",
        Setting::Host => "host",
        Setting::Token => "token",
        // Not a constructor argument; the engine's own name is the best there is.
        other => other.name(),
    }
}

/// The client of the `eventdbx` package: share one across threads and asyncio tasks, and
/// across `fork()` (see `runtime` on how a child starts over).
#[pyclass(frozen, module = "eventdbx._native")]
pub(crate) struct NativeClient {
    config: Config,
    /// The engine and where it runs, in the fork generation that made them.
    live: ArcSwap<Live>,
    closed: AtomicBool,
}

/// A client's engine and its home, valid in one fork generation only.
struct Live {
    generation: u64,
    client: Client,
    home: Home,
}

impl NativeClient {
    /// The engine and home of this process: in a forked child, a fresh pool (connecting on its
    /// first call) and runtime, the inherited ones left untouched.
    fn live(&self) -> PyResult<Arc<Live>> {
        let live = self.live.load_full();
        if live.generation == runtime::generation() {
            return Ok(live);
        }
        let client = Client::connect_lazy(self.config.clone())
            .map_err(|e| Python::attach(|py| crate::errors::to_py_err(py, e)))?;
        if self.closed.load(Ordering::Acquire) {
            client.close();
        }
        let fresh = Arc::new(Live {
            generation: runtime::generation(),
            client,
            home: live.home.renewed()?,
        });
        let previous = self.live.compare_and_swap(&live, fresh.clone());
        if Arc::ptr_eq(&previous, &live) {
            // Never released: its destructors would reach the parent's sockets and runtime.
            std::mem::forget(live);
            Ok(fresh)
        } else {
            // Another thread of this child renewed it first; ours never connected.
            Ok(arc_swap::Guard::into_inner(previous))
        }
    }

    /// The engine handle and home for one call.
    fn parts(&self) -> PyResult<(Client, Home)> {
        let live = self.live()?;
        Ok((live.client.clone(), live.home.clone()))
    }

    /// Runs a call that takes only a tenant id.
    fn tenant_call<'py, T, F, Fut>(
        &self,
        py: Python<'py>,
        tenant_id: String,
        asynchronous: bool,
        call: F,
    ) -> PyResult<Bound<'py, PyAny>>
    where
        F: FnOnce(Client, String) -> Fut,
        Fut: Future<Output = edbx::Result<T>> + Send + 'static,
        T: for<'a> IntoPyObject<'a> + Send + 'static,
    {
        let (client, home) = self.parts()?;
        home.run(py, asynchronous, call(client, tenant_id))
    }
}

#[pymethods]
impl NativeClient {
    /// Opens the first connection (hello and handshake included) and returns the client.
    #[staticmethod]
    #[pyo3(signature = (options, asynchronous=false))]
    fn connect<'py>(
        py: Python<'py>,
        options: ClientOptions,
        asynchronous: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        let config = options.config(py)?;
        let home = if asynchronous {
            Home::Shared
        } else {
            Home::blocking()?
        };
        let client_home = home.clone();
        home.run(py, asynchronous, async move {
            let client = Client::connect(config.clone()).await?;
            Ok(NativeClient {
                config,
                live: ArcSwap::from_pointee(Live {
                    generation: runtime::generation(),
                    client,
                    home: client_home,
                }),
                closed: AtomicBool::new(false),
            })
        })
    }

    /// Stops new calls; calls already made complete, then connections close.
    fn close(&self) {
        self.closed.store(true, Ordering::Release);
        // In a forked child, the inherited engine is not this process's to close.
        let live = self.live.load();
        if live.generation == runtime::generation() {
            live.client.close();
        }
    }

    /// Connections open right now.
    #[getter]
    fn open_connections(&self) -> usize {
        let live = self.live.load();
        if live.generation == runtime::generation() {
            live.client.open_connections()
        } else {
            0
        }
    }

    /// Whether every open connection is Noise-encrypted.
    #[getter]
    fn encrypted(&self) -> PyResult<bool> {
        Ok(self.live()?.client.is_encrypted())
    }

    // ----- writes: each returns the server's JSON echo, or None when it sent none -----

    #[pyo3(signature = (aggregate_type, aggregate_id, event_type, payload_json, note=None, metadata_json=None, publish_targets=None, allow_unlistable=false, asynchronous=false))]
    #[allow(clippy::too_many_arguments)]
    fn create_aggregate<'py>(
        &self,
        py: Python<'py>,
        aggregate_type: String,
        aggregate_id: String,
        event_type: String,
        payload_json: String,
        note: Option<String>,
        metadata_json: Option<String>,
        publish_targets: Option<Vec<Target>>,
        allow_unlistable: bool,
        asynchronous: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        let (client, home) = self.parts()?;
        home.run(py, asynchronous, async move {
            let payload = edbx::raw_json(payload_json)?;
            let write = client.create(&aggregate_type, &aggregate_id, &event_type, &payload);
            decorate(write, note, metadata_json, publish_targets)?
                .allow_unlistable(allow_unlistable)
                .await
                .map(echo)
        })
    }

    #[pyo3(signature = (aggregate_type, aggregate_id, event_type, payload_json, note=None, metadata_json=None, publish_targets=None, allow_unlistable=false, asynchronous=false))]
    #[allow(clippy::too_many_arguments)]
    fn append_event<'py>(
        &self,
        py: Python<'py>,
        aggregate_type: String,
        aggregate_id: String,
        event_type: String,
        payload_json: String,
        note: Option<String>,
        metadata_json: Option<String>,
        publish_targets: Option<Vec<Target>>,
        allow_unlistable: bool,
        asynchronous: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        let (client, home) = self.parts()?;
        let mut event = NewEvent::new(aggregate_type, aggregate_id, event_type, payload_json);
        event.note = note;
        event.metadata_json = metadata_json;
        event.publish_targets = targets(publish_targets);
        home.run(py, asynchronous, async move {
            client
                .send_event(event)
                .allow_unlistable(allow_unlistable)
                .await
                .map(echo)
        })
    }

    #[pyo3(signature = (aggregate_type, aggregate_id, event_type, patch_json, note=None, metadata_json=None, publish_targets=None, allow_unlistable=false, asynchronous=false))]
    #[allow(clippy::too_many_arguments)]
    fn patch_event<'py>(
        &self,
        py: Python<'py>,
        aggregate_type: String,
        aggregate_id: String,
        event_type: String,
        patch_json: String,
        note: Option<String>,
        metadata_json: Option<String>,
        publish_targets: Option<Vec<Target>>,
        allow_unlistable: bool,
        asynchronous: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        let (client, home) = self.parts()?;
        home.run(py, asynchronous, async move {
            let operations = edbx::raw_json(patch_json)?;
            let write = client.patch(&aggregate_type, &aggregate_id, &event_type, &operations);
            decorate(write, note, metadata_json, publish_targets)?
                .allow_unlistable(allow_unlistable)
                .await
                .map(echo)
        })
    }

    #[pyo3(signature = (aggregate_type, aggregate_id, archived, note=None, asynchronous=false))]
    fn set_archive<'py>(
        &self,
        py: Python<'py>,
        aggregate_type: String,
        aggregate_id: String,
        archived: bool,
        note: Option<String>,
        asynchronous: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        let (client, home) = self.parts()?;
        home.run(py, asynchronous, async move {
            let mut call = if archived {
                client.archive(&aggregate_type, &aggregate_id)
            } else {
                client.restore(&aggregate_type, &aggregate_id)
            };
            if let Some(note) = note {
                call = call.comment(note);
            }
            call.await.map(echo)
        })
    }

    // ----- reads -----

    /// One page of aggregates: `(aggregates_json, next_cursor, complete)`.
    #[pyo3(signature = (cursor=None, take=None, filter=None, sort=None, include_archived=false, archived_only=false, asynchronous=false))]
    #[allow(clippy::too_many_arguments)]
    fn list_aggregates<'py>(
        &self,
        py: Python<'py>,
        cursor: Option<String>,
        take: Option<i64>,
        filter: Option<String>,
        sort: Option<String>,
        include_archived: bool,
        archived_only: bool,
        asynchronous: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        let options = ListOptions {
            cursor,
            take: page_size(py, take)?,
            filter,
            sort,
            include_archived,
            archived_only,
        };
        let (client, home) = self.parts()?;
        home.run(py, asynchronous, async move {
            let page = options.apply(client.list()).await?;
            Ok((json_array(&page.items), page.next_cursor, page.complete))
        })
    }

    /// One page of an aggregate's events: `(events_json, next_cursor, complete)`.
    #[pyo3(signature = (aggregate_type, aggregate_id, cursor=None, take=None, asynchronous=false))]
    fn list_events<'py>(
        &self,
        py: Python<'py>,
        aggregate_type: String,
        aggregate_id: String,
        cursor: Option<String>,
        take: Option<i64>,
        asynchronous: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        let take = page_size(py, take)?;
        let (client, home) = self.parts()?;
        home.run(py, asynchronous, async move {
            let mut events = client.events(&aggregate_type, &aggregate_id);
            if let Some(cursor) = cursor {
                events = events.cursor(cursor);
            }
            if let Some(take) = take {
                events = events.take(take);
            }
            let page = events.await?;
            Ok((json_array(&page.items), page.next_cursor, page.complete))
        })
    }

    /// Every matching aggregate, page by page (see `NativePageStream`).
    #[pyo3(signature = (cursor=None, take=None, filter=None, sort=None, include_archived=false, archived_only=false))]
    #[allow(clippy::too_many_arguments)]
    fn stream_aggregates(
        &self,
        py: Python<'_>,
        cursor: Option<String>,
        take: Option<i64>,
        filter: Option<String>,
        sort: Option<String>,
        include_archived: bool,
        archived_only: bool,
    ) -> PyResult<NativePageStream> {
        let options = ListOptions {
            cursor,
            take: page_size(py, take)?,
            filter,
            sort,
            include_archived,
            archived_only,
        };
        let (client, home) = self.parts()?;
        Ok(NativePageStream::aggregates(
            home,
            options.apply(client.list()).stream(),
        ))
    }

    /// Every event of an aggregate from the cursor on, page by page.
    #[pyo3(signature = (aggregate_type, aggregate_id, cursor=None, take=None))]
    fn stream_events(
        &self,
        py: Python<'_>,
        aggregate_type: String,
        aggregate_id: String,
        cursor: Option<String>,
        take: Option<i64>,
    ) -> PyResult<NativePageStream> {
        let take = page_size(py, take)?;
        let (client, home) = self.parts()?;
        let mut events = client.events(&aggregate_type, &aggregate_id);
        if let Some(cursor) = cursor {
            events = events.cursor(cursor);
        }
        if let Some(take) = take {
            events = events.take(take);
        }
        Ok(NativePageStream::events(home, events.stream()))
    }

    /// A catch-up subscription (see `NativeSubscription`); nothing is sent until its first
    /// batch is asked for.
    #[pyo3(signature = (types=None, start="beginning", checkpoint=None, until_caught_up=false, overlap=None, poll_interval=None, page_size=None, events_page_size=None, prefetch=None, retry_for=None))]
    #[allow(clippy::too_many_arguments)]
    fn subscribe(
        &self,
        py: Python<'_>,
        types: Option<Vec<String>>,
        start: &str,
        checkpoint: Option<String>,
        until_caught_up: bool,
        overlap: Option<f64>,
        poll_interval: Option<(f64, f64)>,
        page_size: Option<i64>,
        events_page_size: Option<i64>,
        prefetch: Option<i64>,
        retry_for: Option<f64>,
    ) -> PyResult<NativeSubscription> {
        let count = |name: &str, value: Option<i64>| -> PyResult<Option<u64>> {
            value
                .map(|v| {
                    u64::try_from(v).map_err(|_| {
                        crate::errors::invalid_input(
                            py,
                            format!("{name} must be at least 1, got {v}"),
                        )
                    })
                })
                .transpose()
        };
        let options = SubscribeOptions {
            types: types.unwrap_or_default(),
            start: start.to_owned(),
            checkpoint,
            until_caught_up,
            overlap: overlap.map(|s| seconds(py, "overlap", s)).transpose()?,
            poll_interval: poll_interval
                .map(|(min, max)| -> PyResult<_> {
                    Ok((
                        seconds(py, "poll_interval minimum", min)?,
                        seconds(py, "poll_interval maximum", max)?,
                    ))
                })
                .transpose()?,
            page_size: count("page_size", page_size)?,
            events_page_size: count("events_page_size", events_page_size)?,
            prefetch: count("prefetch", prefetch)?.map(|n| n as usize),
            retry_for: retry_for.map(|s| seconds(py, "retry_for", s)).transpose()?,
        };
        let (client, home) = self.parts()?;
        NativeSubscription::start(&client, home, options)
            .map_err(|e| crate::errors::to_py_err(py, e))
    }

    /// The aggregate's JSON, or `None` if there is none.
    #[pyo3(signature = (aggregate_type, aggregate_id, asynchronous=false))]
    fn get_aggregate<'py>(
        &self,
        py: Python<'py>,
        aggregate_type: String,
        aggregate_id: String,
        asynchronous: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        let (client, home) = self.parts()?;
        home.run(py, asynchronous, async move {
            // Python parses the text itself: no typed parse here.
            client.get(&aggregate_type, &aggregate_id).json().await
        })
    }

    /// The selection's JSON, or `None` if the aggregate does not exist.
    #[pyo3(signature = (aggregate_type, aggregate_id, fields, asynchronous=false))]
    fn select_aggregate<'py>(
        &self,
        py: Python<'py>,
        aggregate_type: String,
        aggregate_id: String,
        fields: Vec<String>,
        asynchronous: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        let (client, home) = self.parts()?;
        home.run(py, asynchronous, async move {
            let selection = client
                .select(&aggregate_type, &aggregate_id, &fields)
                .await?;
            Ok(selection.map(|map| serde_json::Value::Object(map).to_string()))
        })
    }

    /// The aggregate's Merkle root.
    #[pyo3(signature = (aggregate_type, aggregate_id, asynchronous=false))]
    fn verify_aggregate<'py>(
        &self,
        py: Python<'py>,
        aggregate_type: String,
        aggregate_id: String,
        asynchronous: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        let (client, home) = self.parts()?;
        home.run(py, asynchronous, async move {
            client.merkle_root(&aggregate_type, &aggregate_id).await
        })
    }

    /// The recomputing check of the history: `(outcome, reason, merkle_root, version,
    /// recomputed_root, events, first_bad_version, detail)`, with `outcome` one of `intact`,
    /// `mismatch`, `unverifiable` and `reason` why not (`archived`, `too_large`,
    /// `kept_changing`) for the last.
    #[pyo3(signature = (aggregate_type, aggregate_id, asynchronous=false))]
    fn verify_history<'py>(
        &self,
        py: Python<'py>,
        aggregate_type: String,
        aggregate_id: String,
        asynchronous: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        let (client, home) = self.parts()?;
        home.run(py, asynchronous, async move {
            let check = client.verify(&aggregate_type, &aggregate_id).await?;
            let (outcome, reason) = match check.outcome {
                edbx::VerifyOutcome::Intact => ("intact", None),
                edbx::VerifyOutcome::Mismatch => ("mismatch", None),
                edbx::VerifyOutcome::Unverifiable(why) => ("unverifiable", Some(why.as_str())),
                _ => ("unverifiable", None),
            };
            Ok((
                outcome,
                reason,
                check.merkle_root,
                check.version,
                check.recomputed_root,
                check.events,
                check.first_bad_version,
                check.detail,
            ))
        })
    }

    // ----- exports -----

    /// Writes the store (or one type) as Parquet with `edbx_parquet::Export`, the code the
    /// command line runs; see `crate::export` for the options and the outcome. Options and
    /// the path are checked before anything is sent (an `EventDBXInputError`).
    #[pyo3(signature = (path, options, asynchronous=false))]
    fn export_parquet<'py>(
        &self,
        py: Python<'py>,
        path: std::path::PathBuf,
        options: crate::export::ExportOptions,
        asynchronous: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        let export = options.export(py, path)?;
        let (client, home) = self.parts()?;
        home.run(py, asynchronous, async move {
            crate::export::run(export, &client).await
        })
    }

    // ----- snapshots -----

    #[pyo3(signature = (aggregate_type, aggregate_id, comment=None, asynchronous=false))]
    fn create_snapshot<'py>(
        &self,
        py: Python<'py>,
        aggregate_type: String,
        aggregate_id: String,
        comment: Option<String>,
        asynchronous: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        let (client, home) = self.parts()?;
        home.run(py, asynchronous, async move {
            let mut call = client.create_snapshot(&aggregate_type, &aggregate_id);
            if let Some(comment) = comment {
                call = call.comment(comment);
            }
            Ok(call.await?.raw_text())
        })
    }

    #[pyo3(signature = (aggregate_type=None, aggregate_id=None, version=None, asynchronous=false))]
    fn list_snapshots<'py>(
        &self,
        py: Python<'py>,
        aggregate_type: Option<String>,
        aggregate_id: Option<String>,
        version: Option<u64>,
        asynchronous: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        if aggregate_id.is_some() && aggregate_type.is_none() {
            return Err(invalid_input(py, "an aggregate id needs an aggregate type"));
        }
        let (client, home) = self.parts()?;
        home.run(py, asynchronous, async move {
            let mut call = client.list_snapshots();
            match (aggregate_type, aggregate_id) {
                (Some(t), Some(id)) => call = call.aggregate(t, id),
                (Some(t), None) => call = call.aggregate_type(t),
                _ => {}
            }
            if let Some(version) = version {
                call = call.version(version);
            }
            Ok(json_array(&call.await?))
        })
    }

    #[pyo3(signature = (snapshot_id, asynchronous=false))]
    fn get_snapshot<'py>(
        &self,
        py: Python<'py>,
        snapshot_id: u64,
        asynchronous: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        let (client, home) = self.parts()?;
        home.run(py, asynchronous, async move {
            Ok(client
                .get_snapshot(snapshot_id)
                .await?
                .map(|s| s.raw_text()))
        })
    }

    // ----- schemas and tenants -----

    #[pyo3(signature = (asynchronous=false))]
    fn list_schemas<'py>(
        &self,
        py: Python<'py>,
        asynchronous: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        let (client, home) = self.parts()?;
        home.run(py, asynchronous, async move {
            Ok(serde_json::Value::Object(client.list_schemas().await?).to_string())
        })
    }

    #[pyo3(signature = (schemas_json, asynchronous=false))]
    fn replace_schemas<'py>(
        &self,
        py: Python<'py>,
        schemas_json: String,
        asynchronous: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        let (client, home) = self.parts()?;
        home.run(py, asynchronous, async move {
            let schemas = edbx::raw_json(schemas_json)?;
            client.replace_schemas(&schemas).await
        })
    }

    /// `(changed, shard_id)`.
    #[pyo3(signature = (tenant_id, shard_id, asynchronous=false))]
    fn tenant_assign<'py>(
        &self,
        py: Python<'py>,
        tenant_id: String,
        shard_id: String,
        asynchronous: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        let (client, home) = self.parts()?;
        home.run(py, asynchronous, async move {
            let reply = client.tenant_assign(&tenant_id, &shard_id).await?;
            Ok((reply.changed, reply.shard_id))
        })
    }

    #[pyo3(signature = (tenant_id, asynchronous=false))]
    fn tenant_unassign<'py>(
        &self,
        py: Python<'py>,
        tenant_id: String,
        asynchronous: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.tenant_call(py, tenant_id, asynchronous, |client, tenant| async move {
            client.tenant_unassign(&tenant).await
        })
    }

    /// `(changed, quota_mb)`.
    #[pyo3(signature = (tenant_id, max_storage_mb, asynchronous=false))]
    fn tenant_quota_set<'py>(
        &self,
        py: Python<'py>,
        tenant_id: String,
        max_storage_mb: u64,
        asynchronous: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        let (client, home) = self.parts()?;
        home.run(py, asynchronous, async move {
            let reply = client.tenant_quota_set(&tenant_id, max_storage_mb).await?;
            Ok((reply.changed, reply.quota_mb))
        })
    }

    #[pyo3(signature = (tenant_id, asynchronous=false))]
    fn tenant_quota_clear<'py>(
        &self,
        py: Python<'py>,
        tenant_id: String,
        asynchronous: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.tenant_call(py, tenant_id, asynchronous, |client, tenant| async move {
            client.tenant_quota_clear(&tenant).await
        })
    }

    #[pyo3(signature = (tenant_id, asynchronous=false))]
    fn tenant_quota_recalc<'py>(
        &self,
        py: Python<'py>,
        tenant_id: String,
        asynchronous: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.tenant_call(py, tenant_id, asynchronous, |client, tenant| async move {
            client.tenant_quota_recalc(&tenant).await
        })
    }

    #[pyo3(signature = (tenant_id, asynchronous=false))]
    fn tenant_reload<'py>(
        &self,
        py: Python<'py>,
        tenant_id: String,
        asynchronous: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.tenant_call(py, tenant_id, asynchronous, |client, tenant| async move {
            client.tenant_reload(&tenant).await
        })
    }

    /// `(version_id, activated, skipped)`.
    #[pyo3(signature = (tenant_id, reason=None, actor=None, labels=None, activate=false, force=false, reload=false, asynchronous=false))]
    #[allow(clippy::too_many_arguments)]
    fn tenant_schema_publish<'py>(
        &self,
        py: Python<'py>,
        tenant_id: String,
        reason: Option<String>,
        actor: Option<String>,
        labels: Option<Vec<String>>,
        activate: bool,
        force: bool,
        reload: bool,
        asynchronous: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        let (client, home) = self.parts()?;
        home.run(py, asynchronous, async move {
            let mut call = client
                .tenant_schema_publish(&tenant_id)
                .activate(activate)
                .force(force)
                .reload(reload);
            if let Some(reason) = reason {
                call = call.reason(reason);
            }
            if let Some(actor) = actor {
                call = call.actor(actor);
            }
            for label in labels.unwrap_or_default() {
                call = call.label(label);
            }
            let reply = call.await?;
            Ok((reply.version_id, reply.activated, reply.skipped))
        })
    }
}

/// The options of a listing of aggregates.
struct ListOptions {
    cursor: Option<String>,
    take: Option<u64>,
    filter: Option<String>,
    sort: Option<String>,
    include_archived: bool,
    archived_only: bool,
}

impl ListOptions {
    fn apply(self, mut list: edbx::List<'_>) -> edbx::List<'_> {
        list = list
            .include_archived(self.include_archived)
            .archived_only(self.archived_only);
        if let Some(cursor) = self.cursor {
            list = list.cursor(cursor);
        }
        if let Some(take) = self.take {
            list = list.take(take);
        }
        if let Some(filter) = self.filter {
            list = list.filter(filter);
        }
        if let Some(sort) = self.sort {
            list = list.sort(sort);
        }
        list
    }
}

/// `EVENTDBX_HOST`, `_PORT`, `_TOKEN`, `_TENANT_ID` and `_NO_NOISE`, read the way the Rust client
/// reads them, as constructor keywords (absent variables are left out).
#[pyfunction]
pub(crate) fn config_from_env(py: Python<'_>) -> PyResult<Bound<'_, PyDict>> {
    let config = Config::from_env().map_err(|e| crate::errors::to_py_err(py, e))?;
    let out = PyDict::new(py);
    out.set_item("host", config.get_host())?;
    out.set_item("port", config.get_port())?;
    if let Some(token) = config.get_token() {
        out.set_item("token", token.expose())?;
    }
    if let Some(tenant) = config.get_tenant_id() {
        out.set_item("tenant_id", tenant)?;
    }
    out.set_item("use_noise", config.get_noise())?;
    Ok(out)
}

impl Drop for NativeClient {
    fn drop(&mut self) {
        // Freed in a forked child without having been used there: the inherited engine must
        // not be released (see `runtime`).
        let live = self.live.load_full();
        if live.generation != runtime::generation() {
            std::mem::forget(live);
        }
    }
}
