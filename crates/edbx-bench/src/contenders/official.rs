//! The official Rust client, `eventdbx-client` 1.2.1, used the best ways its API allows: one
//! client shared by every task (it serialises calls behind a mutex, one request in flight), or
//! one client per task (one connection each).

use std::sync::Arc;

use eventdbx_client::{AppendEventRequest, ClientConfig, EventDbxClient};

use super::Env;
use crate::stats::Run;
use crate::workload::{
    AGGREGATE_TYPE, EVENT_TYPE, Workload, apply_id, apply_payload, drive_tasks, get_id,
};

fn config(env: &Env<'_>) -> ClientConfig {
    let t = env.target;
    ClientConfig::new(t.host.clone(), t.token.clone())
        .with_port(t.port)
        .with_tenant(t.tenant.clone())
}

pub fn run(
    env: &Env<'_>,
    workload: Workload,
    run_tag: &str,
    client_per_task: bool,
) -> Result<Run, String> {
    let config = config(env);
    let plan = env.plan.clone();
    let run_tag = run_tag.to_owned();
    env.runtime.block_on(async move {
        if workload == Workload::Connect {
            return Ok(drive_tasks(vec![config], &plan, |config, _, _| async move {
                EventDbxClient::connect(config)
                    .await
                    .map(drop)
                    .map_err(|e| e.to_string())
            })
            .await);
        }
        let tasks = workload.tasks();
        let handles = if client_per_task {
            // Connect concurrently: 64 handshakes at ~45 ms each would otherwise take seconds.
            let connects: Vec<_> = (0..tasks)
                .map(|_| tokio::spawn(EventDbxClient::connect(config.clone())))
                .collect();
            let mut clients = Vec::with_capacity(tasks);
            for connect in connects {
                let client = connect.await.map_err(|e| e.to_string())?;
                clients.push(Arc::new(client.map_err(|e| e.to_string())?));
            }
            clients
        } else {
            let client = EventDbxClient::connect(config)
                .await
                .map_err(|e| e.to_string())?;
            let shared = Arc::new(client);
            (0..tasks).map(|_| Arc::clone(&shared)).collect()
        };
        let run = match workload {
            Workload::Get { .. } => {
                let p = plan.clone();
                drive_tasks(handles, &plan, move |client, task, i| {
                    let id = get_id(&p, task, i);
                    async move {
                        let result = client
                            .get_aggregate(AGGREGATE_TYPE, &id)
                            .await
                            .map_err(|e| e.to_string())?;
                        let got = result
                            .aggregate
                            .as_ref()
                            .and_then(|a| a.get("aggregate_id"))
                            .and_then(|v| v.as_str());
                        match (result.found, got) {
                            (true, Some(got)) if got == id => Ok(()),
                            (true, got) => Err(format!("asked for {id}, got {got:?}")),
                            (false, _) => Err(format!("aggregate {id} not found")),
                        }
                    }
                })
                .await
            }
            Workload::Apply { .. } => {
                let p = plan.clone();
                drive_tasks(handles, &plan, move |client, task, i| {
                    let id = apply_id(&p, &run_tag, task, i);
                    async move {
                        let request = AppendEventRequest::new(
                            AGGREGATE_TYPE,
                            id,
                            EVENT_TYPE,
                            apply_payload(i),
                        );
                        client
                            .append_event(request)
                            .await
                            .map(drop)
                            .map_err(|e| e.to_string())
                    }
                })
                .await
            }
            Workload::Connect => unreachable!("handled above"),
        };
        Ok(run)
    })
}
