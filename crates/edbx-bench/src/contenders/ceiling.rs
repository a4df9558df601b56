//! The ceiling: the least a client can do. Blocking std sockets, one thread and one connection
//! per task, `TCP_NODELAY`, `TCP_QUICKACK` before every read, Noise on, one request in flight,
//! no pool, no queue, no async runtime. Whatever this reaches is what the server can take here.
//! The session itself is `edbx_instr::raw::Conn`, which the instruction counts use too.

use edbx_instr::raw::Conn;
use edbx_wire::{AppendEvent, GetAggregate, Request, Response};

use super::Env;
use crate::stats::Run;
use crate::workload::{
    AGGREGATE_TYPE, EVENT_TYPE, Workload, apply_id, apply_payload, drive_threads, get_id,
};

/// A get of aggregate `id`, as both ceilings send it.
pub fn get_request(id: String) -> Request {
    Request::GetAggregate(GetAggregate::new(AGGREGATE_TYPE, id))
}

/// Whether a get's reply is the aggregate (both ceilings check only that much).
pub fn check_got(reply: Response) -> Result<(), String> {
    match reply {
        Response::GetAggregate(reply) if reply.found && !reply.aggregate_json.is_empty() => Ok(()),
        other => Err(format!("unexpected reply: {other:?}")),
    }
}

/// The `i`th append to aggregate `id`, as both ceilings send it.
pub fn apply_request(id: String, i: u64) -> Request {
    Request::AppendEvent(AppendEvent::new(
        AGGREGATE_TYPE,
        id,
        EVENT_TYPE,
        apply_payload(i).to_string(),
    ))
}

/// Whether an append's reply is its echo.
pub fn check_applied(reply: Response) -> Result<(), String> {
    match reply {
        Response::AppendEvent(json) if !json.is_empty() => Ok(()),
        other => Err(format!("unexpected reply: {other:?}")),
    }
}

fn get(conn: &mut Conn, id: String) -> Result<(), String> {
    check_got(conn.call(&get_request(id))?)
}

fn apply(conn: &mut Conn, id: String, i: u64) -> Result<(), String> {
    check_applied(conn.call(&apply_request(id, i))?)
}

pub fn run(env: &Env<'_>, workload: Workload, run_tag: &str) -> Result<Run, String> {
    let (target, plan) = (env.target, env.plan);
    if workload == Workload::Connect {
        return Ok(drive_threads(vec![()], plan, |_, _, _| {
            Conn::open(&target.host, target.port, &target.token, &target.tenant).map(drop)
        }));
    }
    let conns = (0..workload.tasks())
        .map(|_| Conn::open(&target.host, target.port, &target.token, &target.tenant))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(match workload {
        Workload::Get { .. } => drive_threads(conns, plan, |conn, task, i| {
            get(conn, get_id(plan, task, i))
        }),
        Workload::Apply { .. } => drive_threads(conns, plan, |conn, task, i| {
            apply(conn, apply_id(plan, run_tag, task, i), i)
        }),
        Workload::Connect => unreachable!("handled above"),
    })
}
