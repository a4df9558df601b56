//! Projections: a subscription, a handler, and a place to keep the checkpoint.

use std::future::Future;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{Checkpoint, Subscribe, SubscribedEvent};
use crate::error::{Error, ErrorKind};

/// The error type of checkpoint stores.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Where a [`Projection`] keeps its checkpoint.
///
/// For effectively-once processing, store the checkpoint in the same transaction as the
/// handler's effects (the same database): implement this trait over that database and let the
/// handler write in the same transaction, or skip [`Projection`] and write
/// [`SubscribedEvent::checkpoint`] yourself with each batch of effects.
pub trait CheckpointStore {
    /// The stored checkpoint, if any.
    fn load(&mut self) -> Result<Option<String>, BoxError>;
    /// Stores `checkpoint`, replacing the previous one. When it returns, the checkpoint must
    /// survive a crash.
    fn save(&mut self, checkpoint: &Checkpoint) -> Result<(), BoxError>;
}

/// A checkpoint in a file, replaced atomically: written to a temporary file next to it,
/// flushed to disk (`fsync`), renamed over it, and the directory flushed too. A crash leaves
/// either the old or the new checkpoint, never a torn one.
///
/// ```no_run
/// let mut store = edbx::FileCheckpointStore::new("orders.checkpoint");
/// # let _ = &mut store;
/// ```
#[derive(Debug, Clone)]
pub struct FileCheckpointStore {
    path: PathBuf,
}

impl FileCheckpointStore {
    /// A store in the file at `path` (created on the first save).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl CheckpointStore for FileCheckpointStore {
    /// The checkpoint in the file, or `None` when there is no file. A file that holds no
    /// checkpoint text (empty, or not UTF-8) is an [`ErrorKind::InvalidCheckpoint`] error:
    /// saves never leave one, so it was written by something else.
    fn load(&mut self) -> Result<Option<String>, BoxError> {
        let bytes = match std::fs::read(&self.path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(format!("cannot read {}: {e}", self.path.display()).into()),
        };
        let not_one = |why: &str| -> BoxError {
            Box::new(Error::new(
                ErrorKind::InvalidCheckpoint,
                format!(
                    "{} holds no checkpoint ({why}); remove it to start over, or restore the \
                     file a save wrote",
                    self.path.display()
                ),
            ))
        };
        let text = String::from_utf8(bytes).map_err(|_| not_one("it is not UTF-8 text"))?;
        match text.trim() {
            "" => Err(not_one("it is empty")),
            checkpoint => Ok(Some(checkpoint.to_owned())),
        }
    }

    fn save(&mut self, checkpoint: &Checkpoint) -> Result<(), BoxError> {
        write_atomically(&self.path, checkpoint.as_str().as_bytes()).map_err(|e| {
            format!("cannot save the checkpoint to {}: {e}", self.path.display()).into()
        })
    }
}

/// Replaces `path` with `bytes`: temporary file, fsync, rename, fsync of the directory.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .ok_or_else(|| std::io::Error::other("the path names no file"))?;
    let mut temporary = name.to_owned();
    temporary.push(format!(".tmp-{}", std::process::id()));
    let temporary = dir.join(temporary);
    let result = (|| {
        let mut file = std::fs::File::create(&temporary)?;
        file.write_all(bytes)?;
        file.write_all(b"\n")?;
        file.sync_all()?;
        drop(file);
        std::fs::rename(&temporary, path)?;
        // The rename is durable once the directory is.
        #[cfg(unix)]
        std::fs::File::open(&dir)?.sync_all()?;
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&temporary);
    }
    result
}

/// Why a [`Projection`] stopped.
#[derive(Debug)]
#[non_exhaustive]
pub enum ProjectionError<E> {
    /// The subscription failed (or its stored checkpoint is not one).
    Subscription(crate::Error),
    /// The handler failed on an event; the checkpoint before it is stored.
    Handler(E),
    /// The checkpoint could not be loaded or stored.
    Store(BoxError),
}

impl<E: std::fmt::Display> std::fmt::Display for ProjectionError<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Subscription(e) => write!(f, "subscription failed: {e}"),
            Self::Handler(e) => write!(f, "handler failed: {e}"),
            Self::Store(e) => write!(f, "checkpoint store failed: {e}"),
        }
    }
}

impl<E: std::error::Error + 'static> std::error::Error for ProjectionError<E> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Subscription(e) => Some(e),
            Self::Handler(e) => Some(e),
            Self::Store(e) => Some(&**e),
        }
    }
}

/// Runs a subscription into a handler, storing the checkpoint as it goes: from the stored
/// checkpoint when there is one (else from where the [`Subscribe`] says), the handler is
/// called once per event, in order; the checkpoint of the last handled event is stored every
/// `events` events or `interval` (default 100 events or 1 s, also while idle), and when the
/// projection stops. After a crash the projection restarts from the stored checkpoint: events
/// handled since are handled again (at-least-once), so handlers should be idempotent — or
/// store the checkpoint with their effects (see [`CheckpointStore`]).
///
/// ```no_run
/// # async fn demo(client: edbx::Client) -> Result<(), Box<dyn std::error::Error>> {
/// use edbx::{FileCheckpointStore, Projection};
///
/// let mut totals = std::collections::HashMap::<String, f64>::new();
/// let subscribe = client.subscribe().aggregate_type("orders").until_caught_up(true);
/// Projection::new(subscribe, FileCheckpointStore::new("orders.checkpoint"))
///     .run(|delivered| {
///         let event = delivered.event;
///         if let Some(total) = event.payload.get("total").and_then(|t| t.as_f64()) {
///             totals.insert(event.aggregate_id, total);
///         }
///         std::future::ready(Ok::<(), std::convert::Infallible>(()))
///     })
///     .await?;
/// # Ok(()) }
/// ```
#[must_use = "a projection does nothing until run"]
pub struct Projection<'a, S> {
    subscribe: Subscribe<'a>,
    store: S,
    every_events: u64,
    every: Duration,
}

impl<'a, S: CheckpointStore> Projection<'a, S> {
    /// A projection of `subscribe` keeping its checkpoint in `store`.
    pub fn new(subscribe: Subscribe<'a>, store: S) -> Self {
        Self {
            subscribe,
            store,
            every_events: 100,
            every: Duration::from_secs(1),
        }
    }

    /// Stores the checkpoint after at most `events` handled events (at least 1) and at most
    /// `interval` after the last store.
    pub fn save_every(mut self, events: u64, interval: Duration) -> Self {
        self.every_events = events.max(1);
        self.every = interval;
        self
    }

    /// Runs until the subscription ends ([`Subscribe::until_caught_up`]) or something fails;
    /// returns the store.
    pub async fn run<F, Fut, E>(mut self, mut handler: F) -> Result<S, ProjectionError<E>>
    where
        F: FnMut(SubscribedEvent) -> Fut,
        Fut: Future<Output = Result<(), E>>,
    {
        let subscribe = match self.store.load().map_err(ProjectionError::Store)? {
            Some(text) => self.subscribe.from_checkpoint(text),
            None => self.subscribe,
        };
        let mut subscription = subscribe.stream().map_err(ProjectionError::Subscription)?;
        let mut saved = subscription.checkpoint().clone();
        let mut handled = subscription.checkpoint().clone();
        let mut unsaved = 0u64;
        let mut last_save = tokio::time::Instant::now();
        let outcome = loop {
            let wait = self.every.saturating_sub(last_save.elapsed());
            let next = match tokio::time::timeout(wait, subscription.next()).await {
                Ok(next) => next,
                Err(_) => {
                    // Every event yielded is handled, so the subscription's checkpoint (which
                    // also moves while idle, as rounds complete) is safe to store.
                    handled = subscription.checkpoint().clone();
                    if handled != saved {
                        self.store.save(&handled).map_err(ProjectionError::Store)?;
                        saved = handled.clone();
                    }
                    unsaved = 0;
                    last_save = tokio::time::Instant::now();
                    continue;
                }
            };
            match next {
                None => {
                    handled = subscription.checkpoint().clone();
                    break Ok(());
                }
                Some(Err(e)) => break Err(ProjectionError::Subscription(e)),
                Some(Ok(delivered)) => {
                    let checkpoint = delivered.checkpoint.clone();
                    if let Err(e) = handler(delivered).await {
                        break Err(ProjectionError::Handler(e));
                    }
                    handled = checkpoint;
                    unsaved += 1;
                    if unsaved >= self.every_events || last_save.elapsed() >= self.every {
                        self.store.save(&handled).map_err(ProjectionError::Store)?;
                        saved = handled.clone();
                        unsaved = 0;
                        last_save = tokio::time::Instant::now();
                    }
                }
            }
        };
        if handled != saved {
            self.store.save(&handled).map_err(ProjectionError::Store)?;
        }
        outcome.map(|()| self.store)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_file_store_replaces_its_file_whole() {
        let dir = std::env::temp_dir().join(format!("edbx-ckpt-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let mut store = FileCheckpointStore::new(dir.join("c"));
        assert!(store.load().unwrap().is_none());
        let first = Checkpoint::parse("esub1;t=*;f=5;p=-;w=-").unwrap();
        store.save(&first).unwrap();
        assert_eq!(store.load().unwrap().as_deref(), Some(first.as_str()));
        let second = Checkpoint::parse("esub1;t=*;f=9;p=-;w=-").unwrap();
        store.save(&second).unwrap();
        assert_eq!(store.load().unwrap().as_deref(), Some(second.as_str()));
        let names: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(
            names,
            vec![std::ffi::OsString::from("c")],
            "no temporary file left"
        );
        // A file that holds no checkpoint is refused as such, not read as one.
        for (content, why) in [(&b""[..], "empty"), (&b"\xff\xfe"[..], "not UTF-8")] {
            std::fs::write(dir.join("c"), content).unwrap();
            let err = store.load().unwrap_err();
            let err = err.downcast_ref::<Error>().expect("an edbx::Error");
            assert_eq!(err.kind(), ErrorKind::InvalidCheckpoint, "{err}");
            assert!(err.message().contains(why), "{err}");
        }
        // A path in a directory that does not exist fails, naming the file.
        let mut bad = FileCheckpointStore::new(dir.join("missing/c"));
        assert!(
            bad.save(&first)
                .unwrap_err()
                .to_string()
                .contains("missing/c")
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
