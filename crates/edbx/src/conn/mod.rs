//! One connection: its opening handshake and the task that owns its socket.

mod driver;
mod establish;
mod socket;

pub(crate) use driver::{ConnHandle, Job, JobState, spawn};
pub(crate) use establish::{Established, establish};
