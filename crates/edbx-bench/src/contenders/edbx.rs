//! edbx, as a user gets it: `Config` defaults plus where the server is.

use edbx::{Client, Config};

use super::Env;
use crate::stats::Run;
use crate::workload::{
    AGGREGATE_TYPE, EVENT_TYPE, Workload, apply_id, apply_payload, drive_tasks, get_id,
};

pub fn config(env: &Env<'_>) -> Config {
    let t = env.target;
    let mut config = Config::new()
        .host(t.host.clone())
        .port(t.port)
        .token(t.token.clone())
        .tenant_id(t.tenant.clone());
    if let Some(size) = env.edbx.pool_size {
        config = config.pool_size(size);
    }
    if let Some(limit) = env.edbx.max_in_flight {
        config = config.max_in_flight(limit);
    }
    config
}

pub fn run(env: &Env<'_>, workload: Workload, run_tag: &str) -> Result<Run, String> {
    let config = config(env);
    let plan = env.plan.clone();
    let run_tag = run_tag.to_owned();
    env.runtime.block_on(async move {
        if workload == Workload::Connect {
            return Ok(drive_tasks(vec![config], &plan, |config, _, _| async move {
                let client = Client::connect(config).await.map_err(|e| e.to_string())?;
                client.close();
                Ok(())
            })
            .await);
        }
        let client = Client::connect(config).await.map_err(|e| e.to_string())?;
        let handles = vec![client.clone(); workload.tasks()];
        let run = match workload {
            Workload::Get { .. } => {
                let p = plan.clone();
                drive_tasks(handles, &plan, move |client, task, i| {
                    let id = get_id(&p, task, i);
                    async move {
                        match client.get(AGGREGATE_TYPE, &id).await {
                            Ok(Some(aggregate)) if aggregate.aggregate_id == id => Ok(()),
                            Ok(Some(other)) => {
                                Err(format!("asked for {id}, got {}", other.aggregate_id))
                            }
                            Ok(None) => Err(format!("aggregate {id} not found")),
                            Err(e) => Err(e.to_string()),
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
                        client
                            .apply(AGGREGATE_TYPE, &id, EVENT_TYPE, &apply_payload(i))
                            .await
                            .map(drop)
                            .map_err(|e| e.to_string())
                    }
                })
                .await
            }
            Workload::Connect => unreachable!("handled above"),
        };
        client.close();
        Ok(run)
    })
}

/// Creates the aggregates the `get` workloads read (not timed).
pub fn preload(env: &Env<'_>) -> Result<(), String> {
    let config = config(env);
    let count = env.plan.preload;
    env.runtime.block_on(async move {
        let client = Client::connect(config).await.map_err(|e| e.to_string())?;
        let mut joins = Vec::new();
        for worker in 0..8 {
            let client = client.clone();
            joins.push(tokio::spawn(async move {
                for i in (worker..count).step_by(8) {
                    let id = crate::workload::preload_id(i);
                    client
                        .create(
                            AGGREGATE_TYPE,
                            &id,
                            "bench.created",
                            &crate::workload::preload_payload(i),
                        )
                        .await
                        .map_err(|e| format!("preloading {id}: {e}"))?;
                }
                Ok::<(), String>(())
            }));
        }
        for join in joins {
            join.await.map_err(|e| e.to_string())??;
        }
        client.close();
        Ok(())
    })
}
