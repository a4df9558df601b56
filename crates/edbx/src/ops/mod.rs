//! The operations, grouped by what they touch. Calls with options return a builder that is
//! awaited directly (`IntoFuture`); the rest are plain `async fn`s on [`Client`](crate::Client).

mod admin;
mod list;
mod read;
mod scan;
mod snapshot;
mod write;

pub use admin::SchemaPublish;
pub use list::{Events, List};
pub use read::Get;
pub use scan::{ArchivedLeftOut, EventScan, MAX_SCAN_CONCURRENCY, ScanEvents};
pub use snapshot::{CreateSnapshot, ListSnapshots};
pub use write::{Archive, EventWrite, NewEvent, PatchOp};

use std::future::Future;
use std::pin::Pin;

/// The boxed future a builder turns into when awaited.
///
/// `Send`, so it can be spawned on a multi-threaded runtime, but not `Sync`: a future is polled
/// through `&mut`, and promising `Sync` would forbid every future implementation detail that is
/// not (a `Cell`, a `Sync`-less stream), so it could never be relaxed.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Implements `IntoFuture` for a builder by delegating to its `async fn run(self)`.
macro_rules! awaitable {
    ($builder:ident, $output:ty) => {
        impl<'a> std::future::IntoFuture for $builder<'a> {
            type Output = $crate::error::Result<$output>;
            type IntoFuture = $crate::ops::BoxFuture<'a, Self::Output>;

            fn into_future(self) -> Self::IntoFuture {
                Box::pin(self.run())
            }
        }
    };
}
pub(crate) use awaitable;
