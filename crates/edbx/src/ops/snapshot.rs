//! Snapshots: take, list, fetch.

use edbx_wire::{Request, Response};

use super::awaitable;
use crate::client::{Client, unexpected};
use crate::error::{Error, Result};
use crate::model::{Snapshot, parse_list, parse_one};
use crate::validate;

/// Builder of [`Client::create_snapshot`]; await it.
#[must_use = "a request does nothing until awaited"]
pub struct CreateSnapshot<'a> {
    client: &'a Client,
    request: edbx_wire::CreateSnapshot,
}

impl<'a> CreateSnapshot<'a> {
    /// A comment stored with the snapshot.
    pub fn comment(mut self, comment: impl Into<String>) -> Self {
        self.request.comment = Some(comment.into());
        self
    }

    async fn run(self) -> Result<Snapshot> {
        validate::aggregate_type(&self.request.aggregate_type)?;
        validate::aggregate_id(&self.request.aggregate_id)?;
        match self
            .client
            .execute(Request::CreateSnapshot(self.request))
            .await?
        {
            Response::CreateSnapshot(json) => parse_one(json),
            other => Err(unexpected("createSnapshot", &other)),
        }
    }
}
awaitable!(CreateSnapshot, Snapshot);

/// Builder of [`Client::list_snapshots`]; await it.
#[must_use = "a request does nothing until awaited"]
pub struct ListSnapshots<'a> {
    client: &'a Client,
    request: edbx_wire::ListSnapshots,
}

impl<'a> ListSnapshots<'a> {
    /// Only snapshots of this aggregate type.
    pub fn aggregate_type(mut self, aggregate_type: impl Into<String>) -> Self {
        self.request.aggregate_type = Some(aggregate_type.into());
        self
    }

    /// Only snapshots of this aggregate (needs [`aggregate_type`](Self::aggregate_type)).
    pub fn aggregate(
        mut self,
        aggregate_type: impl Into<String>,
        aggregate_id: impl Into<String>,
    ) -> Self {
        self.request.aggregate_type = Some(aggregate_type.into());
        self.request.aggregate_id = Some(aggregate_id.into());
        self
    }

    /// Only snapshots taken at this version.
    pub fn version(mut self, version: u64) -> Self {
        self.request.version = Some(version);
        self
    }

    async fn run(self) -> Result<Vec<Snapshot>> {
        if let Some(t) = &self.request.aggregate_type {
            validate::aggregate_type(t)?;
        }
        if let Some(id) = &self.request.aggregate_id {
            if self.request.aggregate_type.is_none() {
                return Err(Error::invalid_input(
                    "an aggregate id needs an aggregate type",
                ));
            }
            validate::aggregate_id(id)?;
        }
        match self
            .client
            .execute(Request::ListSnapshots(self.request))
            .await?
        {
            Response::ListSnapshots(json) => parse_list(&json),
            other => Err(unexpected("listSnapshots", &other)),
        }
    }
}
awaitable!(ListSnapshots, Vec<Snapshot>);

impl Client {
    /// Snapshots an aggregate's current state.
    pub fn create_snapshot(&self, aggregate_type: &str, aggregate_id: &str) -> CreateSnapshot<'_> {
        CreateSnapshot {
            client: self,
            request: edbx_wire::CreateSnapshot::new(aggregate_type, aggregate_id),
        }
    }

    /// Lists snapshots (all of them unless narrowed).
    pub fn list_snapshots(&self) -> ListSnapshots<'_> {
        ListSnapshots {
            client: self,
            request: edbx_wire::ListSnapshots::default(),
        }
    }

    /// Fetches one snapshot by id; `None` if there is none.
    pub async fn get_snapshot(&self, snapshot_id: u64) -> Result<Option<Snapshot>> {
        match self.execute(Request::GetSnapshot(snapshot_id)).await? {
            Response::GetSnapshot(reply) if reply.found => parse_one(reply.snapshot_json).map(Some),
            Response::GetSnapshot(_) => Ok(None),
            other => Err(unexpected("getSnapshot", &other)),
        }
    }
}
