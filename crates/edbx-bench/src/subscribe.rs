//! `edbx-bench --subscriptions`: catch-up subscriptions against one real server.
//!
//! * **Catch-up**: a subscription from the beginning until caught up, against the fastest way to
//!   read the same events today — `edbx export`'s read path (the aggregates listed in key order,
//!   each one's events read with 8 aggregates at once) — on two datasets: many one-event
//!   aggregates (creates), and fewer aggregates of 10 events.
//! * **Live lag**: steady writes (4 writers, 10 appends/s each) to a new aggregate type while a
//!   subscription to it follows; the lag of an event is the time from its write being acknowledged to
//!   the writer until the subscriber has it (negative when the subscriber saw it first).
//! * **Polling cost**: the control requests and the aggregate-metadata reads the server counts
//!   (its Prometheus `/metrics`) while an idle subscription polls, and while it follows the
//!   steady writes (the writers' own requests taken out).

use std::collections::HashMap;
use std::io::{Read, Write};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use edbx::{Client, Config, Written};
use edbx_testkit::{ServerOptions, TestServer};
use serde_json::json;

use crate::report::machine_facts;
use crate::stats::percentile_of_sorted;

const WIDE: (usize, u64) = (4_000, 1);
const DEEP: (usize, u64) = (200, 10);
const WRITERS: u64 = 4;
const WRITES_PER_WRITER_PER_SEC: u64 = 10;

pub fn run(reps: usize, live_secs: u64) -> Result<String, String> {
    let server = TestServer::start(ServerOptions::default())
        .map_err(|e| format!("cannot start the EventDBX server: {e}"))?;
    let config = Config::new()
        .host(server.host())
        .port(server.port())
        .token(server.token())
        .tenant_id(server.tenant())
        .request_timeout(Duration::from_secs(60));
    let metrics = Metrics {
        port: server.http_port(),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("tokio runtime: {e}"))?;
    let started = Instant::now();
    let mut out = String::new();
    let line = |text: String| {
        eprintln!("[{:>5.1}s] {text}", started.elapsed().as_secs_f64());
    };
    runtime.block_on(async {
        let client = Client::connect(config).await.map_err(|e| e.to_string())?;
        let mut catch_up = Vec::new();
        for (name, (aggregates, events)) in [("wide", WIDE), ("deep", DEEP)] {
            line(format!(
                "writing {aggregates} aggregates × {events} events ({name})"
            ));
            write_dataset(&client, name, aggregates, events).await?;
            let total = aggregates as u64 * events;
            let mut export = Vec::new();
            let mut subscribe = Vec::new();
            // Reading takes well under a second here: three times the repetitions.
            for rep in 0..3 * reps.max(1) {
                let t = read_like_export(&client, name, total).await?;
                line(format!(
                    "rep {rep} {name}: export path {:.0} events/s",
                    rate(total, t)
                ));
                export.push(rate(total, t));
                let t = subscribe_to_end(&client, name, total).await?;
                line(format!(
                    "rep {rep} {name}: subscription {:.0} events/s",
                    rate(total, t)
                ));
                subscribe.push(rate(total, t));
            }
            catch_up.push((name, aggregates, events, median(export), median(subscribe)));
        }

        // The settings alternate within each repetition, so that the machine's other load
        // falls on both alike; the report shows medians.
        let settings = [
            ("defaults (poll 50 ms … 1 s)", 50, 1_000),
            ("poll 10 ms … 200 ms", 10, 200),
        ];
        let mut runs: Vec<Vec<Lag>> = settings.iter().map(|_| Vec::new()).collect();
        for rep in 0..reps.max(1) {
            for (k, (label, min, max)) in settings.iter().enumerate() {
                let kind = format!("live{min}r{rep}");
                let run = live(&client, &metrics, &kind, live_secs, *min, *max).await?;
                line(format!(
                    "rep {rep} live lag, {label}: {} events, p50 {:.1} ms, p99 {:.1} ms",
                    run.events, run.p50, run.p99
                ));
                runs[k].push(run);
            }
        }
        let lag: Vec<(&str, Lag)> = settings
            .iter()
            .zip(runs)
            .map(|((label, _, _), runs)| (*label, Lag::median(runs)))
            .collect();
        line("idle polling cost".to_owned());
        let idle = idle_cost(&client, &metrics).await?;

        out.push_str(&render(&catch_up, &lag, &idle, reps, live_secs, started));
        client.close();
        Ok::<(), String>(())
    })?;
    drop(server);
    Ok(out)
}

fn rate(events: u64, took: Duration) -> f64 {
    events as f64 / took.as_secs_f64()
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

async fn write_dataset(
    client: &Client,
    name: &str,
    aggregates: usize,
    events: u64,
) -> Result<(), String> {
    let mut joins = Vec::new();
    for worker in 0..16 {
        let client = client.clone();
        let name = name.to_owned();
        joins.push(tokio::spawn(async move {
            for i in (worker..aggregates).step_by(16) {
                let id = format!("a{i:05}");
                let payload = json!({"n": 0, "note": "a payload of ordinary size for an event"});
                client
                    .create(&name, &id, "bench.created", &payload)
                    .await
                    .map_err(|e| format!("create {name}/{id}: {e}"))?;
                for n in 1..events {
                    client
                        .apply(&name, &id, "bench.noted", &json!({"n": n}))
                        .await
                        .map_err(|e| format!("append {name}/{id}: {e}"))?;
                }
            }
            Ok::<(), String>(())
        }));
    }
    for join in joins {
        join.await.map_err(|e| e.to_string())??;
    }
    Ok(())
}

/// What `edbx export` does to read every event: list the type's aggregates, read each one's
/// events, 8 aggregates at once, handing them on in listing order.
async fn read_like_export(client: &Client, name: &str, total: u64) -> Result<Duration, String> {
    let started = Instant::now();
    let mut rows = client.list().aggregate_type(name).stream();
    let mut pending = std::collections::VecDeque::new();
    let mut read = 0u64;
    let mut listed_all = false;
    loop {
        while !listed_all && pending.len() < 8 {
            match rows.next().await {
                None => listed_all = true,
                Some(row) => {
                    let row = row.map_err(|e| e.to_string())?;
                    let client = client.clone();
                    pending.push_back(tokio::spawn(async move {
                        client
                            .events(&row.aggregate_type, &row.aggregate_id)
                            .stream()
                            .collect_all()
                            .await
                    }));
                }
            }
        }
        let Some(next) = pending.pop_front() else {
            break;
        };
        read += next
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?
            .len() as u64;
    }
    if read != total {
        return Err(format!("the export path read {read} events of {total}"));
    }
    Ok(started.elapsed())
}

/// A subscription from the beginning, until caught up.
async fn subscribe_to_end(client: &Client, name: &str, total: u64) -> Result<Duration, String> {
    let started = Instant::now();
    let mut feed = client
        .subscribe()
        .aggregate_type(name)
        .until_caught_up(true)
        .stream()
        .map_err(|e| e.to_string())?;
    let mut read = 0u64;
    while let Some(batch) = feed.next_batch(1_000).await {
        read += batch.map_err(|e| e.to_string())?.len() as u64;
    }
    if read != total {
        return Err(format!(
            "the subscription delivered {read} events of {total}"
        ));
    }
    Ok(started.elapsed())
}

/// Lag of steady writes, and what following them costs the server.
struct Lag {
    events: usize,
    p50: f64,
    p99: f64,
    max: f64,
    /// Delivered before the writer had its acknowledgement.
    early: usize,
    /// Control requests per second of the subscription (the writers' taken out).
    requests_per_sec: f64,
    meta_reads_per_sec: f64,
}

async fn live(
    client: &Client,
    metrics: &Metrics,
    kind: &str,
    secs: u64,
    min_ms: u64,
    max_ms: u64,
) -> Result<Lag, String> {
    let kind = kind.to_owned();
    let delivered: Arc<Mutex<HashMap<(String, u64), Instant>>> = Arc::default();
    // A type of its own, followed from the beginning: "from now" would start when the
    // follower first runs, after the first writes perhaps.
    let mut feed = client
        .subscribe()
        .aggregate_type(&kind)
        .poll_interval(Duration::from_millis(min_ms), Duration::from_millis(max_ms))
        .stream()
        .map_err(|e| e.to_string())?;
    let follower = {
        let delivered = delivered.clone();
        tokio::spawn(async move {
            while let Some(event) = feed.next().await {
                let Ok(event) = event else { return };
                let now = Instant::now();
                delivered
                    .lock()
                    .unwrap()
                    .insert((event.event.aggregate_id, event.event.version), now);
            }
        })
    };
    let before = metrics.read().await?;
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut writers = Vec::new();
    for w in 0..WRITERS {
        let client = client.clone();
        let kind = kind.clone();
        writers.push(tokio::spawn(async move {
            let mut acked = Vec::new();
            let mut tick =
                tokio::time::interval(Duration::from_millis(1_000 / WRITES_PER_WRITER_PER_SEC));
            let mut n = 0u64;
            while Instant::now() < deadline {
                tick.tick().await;
                n += 1;
                let id = format!("w{w}-{}", n % 25);
                match client
                    .apply(&kind, &id, "bench.tick", &json!({"n": n}))
                    .await
                {
                    Ok(Written::Echo(event)) => acked.push(((id, event.version), Instant::now())),
                    Ok(Written::NoEcho) => return Err("the server sent no echo".to_owned()),
                    Err(e) => return Err(format!("append: {e}")),
                }
            }
            Ok::<_, String>(acked)
        }));
    }
    let mut acked = Vec::new();
    for writer in writers {
        acked.extend(writer.await.map_err(|e| e.to_string())??);
    }
    let writes = acked.len() as f64;
    let wait_until = Instant::now() + Duration::from_secs(30);
    while delivered.lock().unwrap().len() < acked.len() {
        if Instant::now() > wait_until {
            return Err(format!(
                "{} of {} events delivered",
                delivered.lock().unwrap().len(),
                acked.len()
            ));
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let elapsed = secs as f64;
    let after = metrics.read().await?;
    follower.abort();
    let delivered = delivered.lock().unwrap();
    let mut lags_us: Vec<i64> = acked
        .iter()
        .map(|(key, at)| {
            let got = delivered[key];
            if got >= *at {
                got.duration_since(*at).as_micros() as i64
            } else {
                -(at.duration_since(got).as_micros() as i64)
            }
        })
        .collect();
    lags_us.sort_unstable();
    let early = lags_us.iter().filter(|&&l| l < 0).count();
    let shifted: Vec<u64> = lags_us.iter().map(|&l| (l - lags_us[0]) as u64).collect();
    let at = |q: f64| percentile_of_sorted(&shifted, q).unwrap_or(0) as i64 + lags_us[0];
    Ok(Lag {
        events: acked.len(),
        p50: at(0.5) as f64 / 1e3,
        p99: at(0.99) as f64 / 1e3,
        max: *lags_us.last().unwrap_or(&0) as f64 / 1e3,
        early,
        requests_per_sec: ((after.requests - before.requests) - writes) / elapsed,
        meta_reads_per_sec: (after.meta_reads - before.meta_reads) / elapsed,
    })
}

impl Lag {
    /// The median of each figure over repetitions.
    fn median(runs: Vec<Lag>) -> Lag {
        let of = |f: fn(&Lag) -> f64| median(runs.iter().map(f).collect());
        Lag {
            events: of(|l| l.events as f64) as usize,
            p50: of(|l| l.p50),
            p99: of(|l| l.p99),
            max: of(|l| l.max),
            early: of(|l| l.early as f64) as usize,
            requests_per_sec: of(|l| l.requests_per_sec),
            meta_reads_per_sec: of(|l| l.meta_reads_per_sec),
        }
    }
}

struct Idle {
    requests_per_sec: f64,
    meta_reads_per_sec: f64,
}

/// An idle subscription (nothing written), measured once its poll interval has grown to its
/// maximum.
async fn idle_cost(client: &Client, metrics: &Metrics) -> Result<Idle, String> {
    let mut feed = client
        .subscribe()
        .from_now()
        .stream()
        .map_err(|e| e.to_string())?;
    let follower = tokio::spawn(async move { while feed.next().await.is_some() {} });
    // The interval doubles from 50 ms to 1 s: past 2 s it is at its maximum.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let before = metrics.read().await?;
    let window = Duration::from_secs(20);
    tokio::time::sleep(window).await;
    let after = metrics.read().await?;
    follower.abort();
    Ok(Idle {
        requests_per_sec: (after.requests - before.requests) / window.as_secs_f64(),
        meta_reads_per_sec: (after.meta_reads - before.meta_reads) / window.as_secs_f64(),
    })
}

/// The server's own counters, from its Prometheus endpoint.
struct Metrics {
    port: u16,
}

struct Counters {
    /// Control requests (the hello of each new connection left out).
    requests: f64,
    /// Aggregate metadata reads of the store.
    meta_reads: f64,
}

impl Metrics {
    async fn read(&self) -> Result<Counters, String> {
        let port = self.port;
        let text = tokio::task::spawn_blocking(move || -> std::io::Result<String> {
            let mut stream = std::net::TcpStream::connect(("127.0.0.1", port))?;
            stream.write_all(b"GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")?;
            let mut text = String::new();
            stream.read_to_string(&mut text)?;
            Ok(text)
        })
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| format!("reading the server's /metrics: {e}"))?;
        let sum = |name: &str, keep: &dyn Fn(&str) -> bool| -> f64 {
            text.lines()
                .filter(|l| l.starts_with(name) && keep(l))
                .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
                .sum()
        };
        Ok(Counters {
            requests: sum("eventdbx_capnp_control_requests_total{", &|l| {
                !l.contains("operation=\"hello\"")
            }),
            meta_reads: sum("eventdbx_store_operations_total{", &|l| {
                l.contains("get_meta")
            }),
        })
    }
}

fn render(
    catch_up: &[(&str, usize, u64, f64, f64)],
    lag: &[(&str, Lag)],
    idle: &Idle,
    reps: usize,
    live_secs: u64,
    started: Instant,
) -> String {
    let mut s = String::new();
    s.push_str("### Machine\n\n");
    for (k, v) in machine_facts() {
        s.push_str(&format!("- {k}: {v}\n"));
    }
    s.push_str(&format!(
        "- plan: {} reads of each dataset by each path, alternating, and {reps} runs of each live \
         setting, alternating, {live_secs} s of steady writes each (medians); total {:.0} s\n\n",
        3 * reps.max(1),
        started.elapsed().as_secs_f64()
    ));
    s.push_str("### Catch-up (from the beginning until caught up)\n\n");
    s.push_str(
        "| dataset | export read path (8 at once) | subscription (prefetch 8) | subscription / export |\n\
         |---|--:|--:|--:|\n",
    );
    for (name, aggregates, events, export, subscribe) in catch_up {
        s.push_str(&format!(
            "| {name}: {aggregates} aggregates × {events} event(s) | {export:.0} events/s | \
             {subscribe:.0} events/s | {:.0} % |\n",
            subscribe / export * 100.0
        ));
    }
    s.push_str(&format!(
        "\n### Live lag ({WRITERS} writers × {WRITES_PER_WRITER_PER_SEC} appends/s; write \
         acknowledged → event delivered)\n\n"
    ));
    s.push_str(
        "| subscription | events per run | p50 | p99 | max | delivered before the ack | requests/s (server) | metadata reads/s (server) |\n\
         |---|--:|--:|--:|--:|--:|--:|--:|\n",
    );
    for (label, l) in lag {
        s.push_str(&format!(
            "| {label} | {} | {:.1} ms | {:.1} ms | {:.1} ms | {} | {:.1} | {:.0} |\n",
            l.events, l.p50, l.p99, l.max, l.early, l.requests_per_sec, l.meta_reads_per_sec
        ));
    }
    s.push_str(&format!(
        "\n### Idle polling cost (defaults, nothing written)\n\n\
         | control requests/s | aggregate metadata reads/s |\n|--:|--:|\n| {:.2} | {:.1} |\n",
        idle.requests_per_sec, idle.meta_reads_per_sec
    ));
    s
}
