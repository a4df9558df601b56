//! edbx's blocking client, as a script or a worker without an async runtime uses it: the same
//! engine as the `edbx` contender, on a current-thread runtime that the calling thread drives
//! during each call. Sequential workloads only: it is the like-for-like match of the blocking
//! ceiling's one thread and one request at a time.

use edbx::blocking::Client;

use super::Env;
use crate::stats::Run;
use crate::workload::{
    AGGREGATE_TYPE, EVENT_TYPE, Workload, apply_id, apply_payload, drive_threads, get_id,
};

pub fn run(env: &Env<'_>, workload: Workload, run_tag: &str) -> Result<Run, String> {
    let plan = env.plan;
    if workload.tasks() != 1 || workload == Workload::Connect {
        return Err(format!(
            "{workload:?}: the blocking contender runs sequential workloads only"
        ));
    }
    let client = Client::connect(super::edbx::config(env)).map_err(|e| e.to_string())?;
    let run = match workload {
        Workload::Get { .. } => drive_threads(vec![&client], plan, |client, task, i| {
            let id = get_id(plan, task, i);
            match client.get(AGGREGATE_TYPE, &id) {
                Ok(Some(aggregate)) if aggregate.aggregate_id == id => Ok(()),
                Ok(Some(other)) => Err(format!("asked for {id}, got {}", other.aggregate_id)),
                Ok(None) => Err(format!("aggregate {id} not found")),
                Err(e) => Err(e.to_string()),
            }
        }),
        Workload::Apply { .. } => drive_threads(vec![&client], plan, |client, task, i| {
            client
                .apply(
                    AGGREGATE_TYPE,
                    &apply_id(plan, run_tag, task, i),
                    EVENT_TYPE,
                    &apply_payload(i),
                )
                .map(drop)
                .map_err(|e| e.to_string())
        }),
        Workload::Connect => unreachable!("checked above"),
    };
    client.close();
    Ok(run)
}
