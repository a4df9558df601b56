//! Listings that follow cursors, for `iter_aggregates` and `iter_events`: the Rust client's
//! `PageStream` (never skips or repeats a row), handed to Python a page at a time.

use std::sync::Arc;

use edbx::{Aggregate, Event, PageStream};
use pyo3::prelude::*;
use tokio::sync::Mutex;

use crate::client::RawText;
use crate::runtime::{self, Home};

enum Rows {
    Aggregates(PageStream<Aggregate>),
    Events(PageStream<Event>),
}

impl Rows {
    /// The JSON texts of the next page's rows, or `None` at the end.
    async fn next_page(&mut self) -> edbx::Result<Option<Vec<String>>> {
        fn texts<T: RawText>(
            page: Option<edbx::Result<Vec<T>>>,
        ) -> edbx::Result<Option<Vec<String>>> {
            page.map(|rows| Ok(rows?.iter().map(RawText::raw_text).collect()))
                .transpose()
        }
        match self {
            Rows::Aggregates(stream) => texts(stream.next_page().await),
            Rows::Events(stream) => texts(stream.next_page().await),
        }
    }
}

/// A listing in progress. Safe to share, though one consumer is what makes sense.
#[pyclass(frozen, module = "eventdbx._native")]
pub(crate) struct NativePageStream {
    rows: Arc<Mutex<Rows>>,
    home: Home,
    /// The fork generation it was started in: it runs on that process's engine only.
    generation: u64,
}

impl NativePageStream {
    pub(crate) fn aggregates(home: Home, stream: PageStream<Aggregate>) -> Self {
        Self::new(home, Rows::Aggregates(stream))
    }

    pub(crate) fn events(home: Home, stream: PageStream<Event>) -> Self {
        Self::new(home, Rows::Events(stream))
    }

    fn new(home: Home, rows: Rows) -> Self {
        Self {
            rows: Arc::new(Mutex::new(rows)),
            home,
            generation: runtime::generation(),
        }
    }
}

impl Drop for NativePageStream {
    fn drop(&mut self) {
        if self.generation != runtime::generation() {
            // Inherited across fork(): never released in the child (see `runtime`).
            std::mem::forget(self.rows.clone());
            std::mem::forget(self.home.clone());
        }
    }
}

#[pymethods]
impl NativePageStream {
    /// The next page's rows as JSON texts (a list of `str`), or `None` when the listing is over.
    #[pyo3(signature = (asynchronous=false))]
    fn next_page<'py>(&self, py: Python<'py>, asynchronous: bool) -> PyResult<Bound<'py, PyAny>> {
        if self.generation != runtime::generation() {
            return Err(crate::errors::invalid_input(
                py,
                "this listing was started before the process forked; start it again in this \
                 process (iter_aggregates / iter_events with the last cursor you saw)",
            ));
        }
        let rows = self.rows.clone();
        self.home.run(py, asynchronous, async move {
            rows.lock().await.next_page().await
        })
    }
}
