//! The workloads, the data they touch, and the two timing drivers (tokio tasks, OS threads).
//!
//! Every run has the same shape: each task warms up for `Plan::warmup`, all tasks meet at a
//! barrier, the clock and the process CPU counter are read, a second barrier releases the tasks,
//! and each task runs operations until
//! `Plan::duration` has passed (an operation in flight at the deadline is finished and counted),
//! and the window closes when the last task is done.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::cpu::{CpuTime, process_cpu_time};
use crate::stats::Run;

/// Aggregate type of every aggregate the benchmark touches.
pub const AGGREGATE_TYPE: &str = "bench";
/// Event type of every event the benchmark appends.
pub const EVENT_TYPE: &str = "bench.updated";

/// One thing to measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workload {
    /// Open a session (TCP connect, hello, Noise handshake) and close it, one after another.
    Connect,
    /// `getAggregate` of preloaded aggregates, from `tasks` concurrent tasks.
    Get { tasks: usize },
    /// `appendEvent` to aggregates of the task's own, from `tasks` concurrent tasks.
    Apply { tasks: usize },
}

impl Workload {
    pub fn label(self) -> String {
        match self {
            Workload::Connect => "connect + handshake".to_owned(),
            Workload::Get { tasks: 1 } => "get, sequential".to_owned(),
            Workload::Apply { tasks: 1 } => "apply, sequential".to_owned(),
            Workload::Get { tasks } => format!("get, {tasks} tasks"),
            Workload::Apply { tasks } => format!("apply, {tasks} tasks"),
        }
    }

    /// Concurrent tasks (1 for sequential workloads and connect).
    pub fn tasks(self) -> usize {
        match self {
            Workload::Connect => 1,
            Workload::Get { tasks } | Workload::Apply { tasks } => tasks,
        }
    }
}

/// How long to run, and the shape of the data.
#[derive(Debug, Clone)]
pub struct Plan {
    pub duration: Duration,
    pub warmup: Duration,
    /// Aggregates created before timing, read by the `get` workloads.
    pub preload: usize,
    /// Events appended to one aggregate before a task moves on to a fresh one. The server
    /// rewrites an aggregate's whole list of event hashes on every append (O(events)), so
    /// unbounded appends to one aggregate would slow down whoever runs last.
    pub events_per_aggregate: u64,
}

/// Where the server is.
#[derive(Debug, Clone)]
pub struct Target {
    pub host: String,
    pub port: u16,
    pub token: String,
    pub tenant: String,
}

/// Id of the `i`-th preloaded aggregate.
pub fn preload_id(i: usize) -> String {
    format!("g-{i:05}")
}

/// The aggregate a `get` by `task` reads on its `i`-th operation (tasks start spread out).
pub fn get_id(plan: &Plan, task: usize, i: u64) -> String {
    let start = task.wrapping_mul(7_919);
    preload_id((start.wrapping_add(i as usize)) % plan.preload.max(1))
}

/// The aggregate an `apply` by `task` writes on its `i`-th operation: `run` names the
/// (contender, repetition) so no two runs and no two tasks share an aggregate.
pub fn apply_id(plan: &Plan, run: &str, task: usize, i: u64) -> String {
    format!("a-{run}-t{task}-{}", i / plan.events_per_aggregate.max(1))
}

/// State of a preloaded aggregate: a small order, ~300 bytes of JSON state.
pub fn preload_payload(i: usize) -> Value {
    json!({
        "status": "open",
        "customer": format!("cust-{:06}", i * 37 % 1_000_000),
        "total": 42.15 + i as f64,
        "currency": "EUR",
        "items": [
            {"sku": "sku-0001", "qty": 2, "price": 10.5},
            {"sku": "sku-0042", "qty": 1, "price": 21.15}
        ],
        "shipping": {"city": "Lisbon", "zip": "1100-148", "express": false},
        "note": "benchmark aggregate, created before timing"
    })
}

/// Payload of an appended event.
pub fn apply_payload(i: u64) -> Value {
    json!({"status": "paid", "seq": i, "amount": 12.5, "method": "card"})
}

/// Per-task tallies, merged into a [`Run`].
#[derive(Default)]
struct Tally {
    ops: u64,
    errors: u64,
    first_error: Option<String>,
    latencies_ns: Vec<u64>,
}

impl Tally {
    fn record(&mut self, started: Instant, outcome: Result<(), String>) {
        match outcome {
            Ok(()) => {
                self.ops += 1;
                self.latencies_ns.push(started.elapsed().as_nanos() as u64);
            }
            Err(e) => self.error(e),
        }
    }

    fn error(&mut self, e: String) {
        self.errors += 1;
        self.first_error.get_or_insert(e);
    }

    fn merge(tallies: impl IntoIterator<Item = Tally>, elapsed: Duration, cpu: CpuTime) -> Run {
        let mut run = Run {
            elapsed,
            cpu,
            ..Run::default()
        };
        for t in tallies {
            run.ops += t.ops;
            run.errors += t.errors;
            if run.first_error.is_none() {
                run.first_error = t.first_error;
            }
            run.latencies_ns.extend(t.latencies_ns);
        }
        run
    }
}

/// Runs `op` from one tokio task per element of `handles` (each task owns its handle and passes
/// a clone to every call, with its task index and operation counter).
///
/// Errors during warm-up count too: a run with any error is invalid.
pub async fn drive_tasks<T, F, Fut>(handles: Vec<T>, plan: &Plan, op: F) -> Run
where
    T: Clone + Send + 'static,
    F: Fn(T, usize, u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), String>> + Send + 'static,
{
    let op = Arc::new(op);
    let barrier = Arc::new(tokio::sync::Barrier::new(handles.len() + 1));
    let (warmup, duration) = (plan.warmup, plan.duration);
    let mut joins = Vec::with_capacity(handles.len());
    for (task, handle) in handles.into_iter().enumerate() {
        let (op, barrier) = (op.clone(), barrier.clone());
        joins.push(tokio::spawn(async move {
            let mut tally = Tally::default();
            let mut i = 0u64;
            let warm_end = Instant::now() + warmup;
            while Instant::now() < warm_end {
                if let Err(e) = op(handle.clone(), task, i).await {
                    tally.error(format!("during warm-up: {e}"));
                }
                i += 1;
            }
            barrier.wait().await; // everyone warmed up
            barrier.wait().await; // the clock is running
            let deadline = Instant::now() + duration;
            loop {
                let started = Instant::now();
                if started >= deadline {
                    break;
                }
                tally.record(started, op(handle.clone(), task, i).await);
                i += 1;
            }
            tally
        }));
    }
    barrier.wait().await;
    // Read the clocks before releasing the tasks, so the window holds every measured operation.
    let (cpu0, t0) = (process_cpu_time(), Instant::now());
    barrier.wait().await;
    let mut tallies = Vec::with_capacity(joins.len());
    for join in joins {
        match join.await {
            Ok(tally) => tallies.push(tally),
            Err(e) => {
                let mut tally = Tally::default();
                tally.error(format!("task panicked: {e}"));
                tallies.push(tally);
            }
        }
    }
    let (elapsed, cpu) = (t0.elapsed(), process_cpu_time().since(cpu0));
    Tally::merge(tallies, elapsed, cpu)
}

/// Runs `op` from one OS thread per worker (each thread owns its worker, e.g. a connection).
pub fn drive_threads<W, F>(workers: Vec<W>, plan: &Plan, op: F) -> Run
where
    W: Send,
    F: Fn(&mut W, usize, u64) -> Result<(), String> + Sync,
{
    let barrier = std::sync::Barrier::new(workers.len() + 1);
    let (barrier, op) = (&barrier, &op);
    std::thread::scope(|scope| {
        let threads: Vec<_> = workers
            .into_iter()
            .enumerate()
            .map(|(task, mut worker)| {
                scope.spawn(move || {
                    let mut tally = Tally::default();
                    let mut i = 0u64;
                    let warm_end = Instant::now() + plan.warmup;
                    while Instant::now() < warm_end {
                        if let Err(e) = op(&mut worker, task, i) {
                            tally.error(format!("during warm-up: {e}"));
                        }
                        i += 1;
                    }
                    barrier.wait(); // everyone warmed up
                    barrier.wait(); // the clock is running
                    let deadline = Instant::now() + plan.duration;
                    loop {
                        let started = Instant::now();
                        if started >= deadline {
                            break;
                        }
                        tally.record(started, op(&mut worker, task, i));
                        i += 1;
                    }
                    tally
                })
            })
            .collect();
        barrier.wait();
        let (cpu0, t0) = (process_cpu_time(), Instant::now());
        barrier.wait();
        let tallies: Vec<Tally> = threads
            .into_iter()
            .map(|t| {
                t.join().unwrap_or_else(|_| {
                    let mut tally = Tally::default();
                    tally.error("thread panicked".to_owned());
                    tally
                })
            })
            .collect();
        let (elapsed, cpu) = (t0.elapsed(), process_cpu_time().since(cpu0));
        Tally::merge(tallies, elapsed, cpu)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan() -> Plan {
        Plan {
            duration: Duration::from_millis(30),
            warmup: Duration::from_millis(5),
            preload: 10,
            events_per_aggregate: 4,
        }
    }

    #[test]
    fn ids_are_valid_and_distinct_per_task() {
        let plan = plan();
        assert_eq!(get_id(&plan, 0, 13), "g-00003");
        assert_eq!(
            apply_id(&plan, "edbx-r0", 2, 0),
            apply_id(&plan, "edbx-r0", 2, 3)
        );
        assert_ne!(
            apply_id(&plan, "edbx-r0", 2, 3),
            apply_id(&plan, "edbx-r0", 2, 4)
        );
        assert_ne!(
            apply_id(&plan, "edbx-r0", 1, 0),
            apply_id(&plan, "edbx-r0", 2, 0)
        );
    }

    #[test]
    fn thread_driver_counts_ops_and_errors() {
        let run = drive_threads(vec![0u64; 3], &plan(), |count, _, i| {
            *count += 1;
            if i == 1_000_000 {
                Err("never".into())
            } else {
                Ok(())
            }
        });
        assert!(run.ops > 0 && run.errors == 0);
        assert_eq!(run.latencies_ns.len() as u64, run.ops);
        assert!(run.elapsed >= Duration::from_millis(30));

        let failing = drive_threads(vec![()], &plan(), |_, _, _| Err("refused".into()));
        assert_eq!(failing.ops, 0);
        assert!(failing.errors > 0);
        assert!(failing.first_error.unwrap().contains("refused"));
    }

    #[test]
    fn task_driver_counts_ops_and_errors() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let run = rt.block_on(drive_tasks(vec![(); 4], &plan(), |_, task, i| async move {
            tokio::task::yield_now().await;
            if task == 3 && i == 2 {
                Err("bad reply".to_owned())
            } else {
                Ok(())
            }
        }));
        assert!(run.ops > 0);
        assert_eq!(run.errors, 1);
        assert!(run.first_error.unwrap().contains("bad reply"));
    }
}
