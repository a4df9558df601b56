//! The markdown report: machine, results table, targets.

use std::fmt::Write as _;
use std::time::Duration;

use crate::contenders::Contender;
use crate::stats::{Paired, Summary, spread};
use crate::workload::Workload;

/// One row of the table: the medians of one contender on one workload.
pub struct Cell {
    pub workload: Workload,
    pub contender: Contender,
    pub label: String,
    pub summary: Summary,
}

/// One contender against another on one workload, repetition by repetition.
pub struct PairedCell {
    pub workload: Workload,
    pub a: Contender,
    pub b: Contender,
    pub paired: Paired,
}

/// The pairs the report compares: edbx and the async ceiling against the blocking ceiling, and
/// edbx against the async ceiling (what the engine costs beyond the runtime).
pub const PAIRS: [(Contender, Contender); 4] = [
    (Contender::Edbx, Contender::Ceiling),
    (Contender::EdbxBlocking, Contender::Ceiling),
    (Contender::CeilingAsync, Contender::Ceiling),
    (Contender::Edbx, Contender::CeilingAsync),
];

pub struct Report<'a> {
    pub machine: Vec<(String, String)>,
    pub cells: &'a [Cell],
    pub paired: &'a [PairedCell],
    /// The official Python client's connect row (unpatched, it cannot connect).
    pub python: (&'a str, String),
    /// The Python package's cost of one call without I/O, when its contenders ran.
    pub python_overhead: Option<Result<Duration, String>>,
    /// A forked child's first call on an inherited client, and a fresh client's first call.
    pub python_fork: Option<Result<(Duration, Duration), String>>,
    pub workloads: &'a [Workload],
}

impl Report<'_> {
    fn cell(&self, workload: Workload, contender: Contender) -> Option<&Cell> {
        self.cells
            .iter()
            .find(|c| c.workload == workload && c.contender == contender)
    }

    /// The contender's label as its row shows it (with any tuning).
    fn label_of(&self, workload: Workload, contender: Contender) -> String {
        self.cell(workload, contender)
            .map(|c| c.label.clone())
            .unwrap_or_else(|| contender.label(Default::default()))
    }

    fn paired_of(&self, workload: Workload, a: Contender, b: Contender) -> Option<&Paired> {
        self.paired
            .iter()
            .find(|p| p.workload == workload && p.a == a && p.b == b)
            .map(|p| &p.paired)
    }

    fn valid(&self, workload: Workload, contender: Contender) -> Option<&Summary> {
        self.cell(workload, contender)
            .map(|c| &c.summary)
            .filter(|s| s.is_valid())
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        out.push_str("### Machine\n\n");
        for (key, value) in &self.machine {
            let _ = writeln!(out, "- {key}: {value}");
        }
        out.push_str("\n### Results (medians over repetitions)\n\n");
        out.push_str(
            "| Workload | Client | ops/s | vs ceiling | p50 | p99 | client CPU/op | ops (all reps) | errors |\n\
             |---|---|--:|--:|--:|--:|--:|--:|---|\n",
        );
        for &workload in self.workloads {
            for cell in self.cells.iter().filter(|c| c.workload == workload) {
                out.push_str(&self.row(cell));
            }
            if workload == Workload::Connect {
                let (label, note) = &self.python;
                let _ = writeln!(
                    out,
                    "| {} | {label} | — | — | — | — | — | — | {note} |",
                    workload.label()
                );
            }
        }
        if !self.paired.is_empty() {
            out.push_str(
                "\n### Paired ratios (each repetition's two runs side by side: median, and smallest–largest)\n\n\
                 | Workload | Client | against | throughput | p50 latency | repetitions |\n\
                 |---|---|---|--:|--:|--:|\n",
            );
            for cell in self.paired {
                let _ = writeln!(
                    out,
                    "| {} | {} | {} | {} | {} | {} |",
                    cell.workload.label(),
                    self.label_of(cell.workload, cell.a),
                    self.label_of(cell.workload, cell.b),
                    percent_spread(&cell.paired.throughput),
                    percent_spread(&cell.paired.p50),
                    cell.paired.throughput.len()
                );
            }
        }
        out.push_str("\n### Targets\n\n");
        for line in self.targets() {
            let _ = writeln!(out, "- {line}");
        }
        out
    }

    fn row(&self, cell: &Cell) -> String {
        let s = &cell.summary;
        let name = cell.workload.label();
        if !s.is_valid() {
            let why = s.first_error.as_deref().unwrap_or("no operation completed");
            return format!(
                "| {name} | {} | INVALID | | | | | {} | {} error(s): {} |\n",
                cell.label,
                s.total_ops,
                s.errors,
                why.replace('|', "\\|")
            );
        }
        let vs_ceiling = match self.valid(cell.workload, Contender::Ceiling) {
            Some(ceiling) if ceiling.ops_per_sec > 0.0 => {
                format!("{:.0} %", 100.0 * s.ops_per_sec / ceiling.ops_per_sec)
            }
            _ => "—".to_owned(),
        };
        format!(
            "| {name} | {} | {} | {vs_ceiling} | {} | {} | {} ({} user, {}) | {} | 0 |\n",
            cell.label,
            thousands(s.ops_per_sec),
            dur(s.p50),
            dur(s.p99),
            dur(s.cpu_per_op),
            dur(s.user_cpu_per_op),
            match s.switches_per_op {
                Some(switches) => format!("{switches:.2} switches"),
                None => "— switches".to_owned(),
            },
            s.total_ops,
        )
    }

    fn targets(&self) -> Vec<String> {
        let mut lines = Vec::new();
        let seq_get = Workload::Get { tasks: 1 };
        let edbx = self.valid(seq_get, Contender::Edbx);
        let official = self.valid(seq_get, Contender::Official);
        lines.push(match self.paired_of(seq_get, Contender::Edbx, Contender::Ceiling).and_then(|p| spread(&p.p50)) {
            Some((mid, low, high)) => format!(
                "Sequential get, edbx p50 within 5 % of the ceiling's (median of paired repetitions): {} — {:+.1} % (repetitions {:+.1} % to {:+.1} %)",
                verdict(mid <= 1.05),
                (mid - 1.0) * 100.0,
                (low - 1.0) * 100.0,
                (high - 1.0) * 100.0
            ),
            None => "Sequential get, edbx p50 within 5 % of the ceiling's: n/a (missing or invalid)".to_owned(),
        });
        lines.push(match (edbx, official) {
            (Some(e), Some(o)) if o.ops_per_sec > 0.0 => {
                let ratio = e.ops_per_sec / o.ops_per_sec;
                format!(
                    "Sequential get, edbx ≥ 50× the official client's ops/s: {} — {} vs {} ops/s ({ratio:.0}×)",
                    verdict(ratio >= 50.0),
                    thousands(e.ops_per_sec),
                    thousands(o.ops_per_sec)
                )
            }
            _ => "Sequential get, edbx ≥ 50× the official client: n/a (missing or invalid)".to_owned(),
        });
        let widest = self.workloads.iter().map(|w| w.tasks()).max().unwrap_or(1);
        for workload in [
            Workload::Get { tasks: widest },
            Workload::Apply { tasks: widest },
        ] {
            if widest <= 1 {
                break;
            }
            let name = workload.label();
            let edbx = self.valid(workload, Contender::Edbx);
            let best_official = [Contender::Official, Contender::OfficialPerTask]
                .into_iter()
                .filter_map(|c| self.valid(workload, c).map(|s| (c, s.ops_per_sec)))
                .max_by(|a, b| a.1.total_cmp(&b.1));
            lines.push(match (edbx, best_official) {
                (Some(e), Some((c, o))) if o > 0.0 => {
                    let ratio = e.ops_per_sec / o;
                    format!(
                        "{name}, edbx ≥ 10× the best official configuration: {} — {} vs {} ops/s ({}; {ratio:.1}×)",
                        verdict(ratio >= 10.0),
                        thousands(e.ops_per_sec),
                        thousands(o),
                        c.label(Default::default())
                    )
                }
                _ => format!("{name}, edbx ≥ 10× the best official configuration: n/a (missing or invalid)"),
            });
        }
        for &workload in self.workloads.iter().filter(|w| **w != Workload::Connect) {
            let name = workload.label();
            lines.push(
                match self
                    .paired_of(workload, Contender::Edbx, Contender::Ceiling)
                    .and_then(|p| spread(&p.throughput))
                {
                    Some((mid, low, high)) => format!(
                        "{name}, edbx ≥ 97 % of the ceiling's throughput (median of paired repetitions): {} — {:.0} % (repetitions {:.0}–{:.0} %)",
                        verdict(mid >= 0.97),
                        mid * 100.0,
                        low * 100.0,
                        high * 100.0
                    ),
                    None => format!("{name}, edbx ≥ 97 % of the ceiling's throughput: n/a (missing or invalid)"),
                },
            );
        }
        lines.extend(self.python_targets());
        let cpu: Vec<(String, Duration, Option<Duration>)> = self
            .workloads
            .iter()
            .filter(|w| **w != Workload::Connect)
            .filter_map(|&w| {
                let s = self.valid(w, Contender::Edbx)?;
                Some((w.label(), s.cpu_per_op?, s.user_cpu_per_op))
            })
            .collect();
        if cpu.is_empty() {
            lines.push("Client CPU per operation < 20 µs: n/a (no valid edbx run)".to_owned());
        } else {
            let worst = cpu.iter().map(|c| c.1).max().unwrap_or_default();
            let each: Vec<String> = cpu
                .iter()
                .map(|(w, total, user)| format!("{w} {} ({} user)", dur(Some(*total)), dur(*user)))
                .collect();
            lines.push(format!(
                "Client CPU per operation < 20 µs (edbx, every workload, user + system): {} — {}",
                verdict(worst < Duration::from_micros(20)),
                each.join(", ")
            ));
        }
        lines
    }
}

impl Report<'_> {
    /// The Python package against the Rust client it wraps.
    fn python_targets(&self) -> Vec<String> {
        let Some(overhead) = &self.python_overhead else {
            return Vec::new();
        };
        let mut lines = Vec::new();
        let seq_get = Workload::Get { tasks: 1 };
        let rust = self.valid(seq_get, Contender::Edbx);
        let python = self.valid(seq_get, Contender::PyThreads);
        lines.push(match (python, rust) {
            (Some(p), Some(r)) if r.ops_per_sec > 0.0 => {
                let ratio = p.ops_per_sec / r.ops_per_sec;
                format!(
                    "Sequential get from Python ≥ 85 % of the Rust client's ops/s: {} — {} vs {} ops/s ({:.0} %)",
                    verdict(ratio >= 0.85),
                    thousands(p.ops_per_sec),
                    thousands(r.ops_per_sec),
                    ratio * 100.0
                )
            }
            _ => "Sequential get from Python ≥ 85 % of the Rust client: n/a (missing or invalid)".to_owned(),
        });
        let official = self.valid(seq_get, Contender::PyOfficial);
        lines.push(match (python, official) {
            (Some(p), Some(o)) if o.ops_per_sec > 0.0 => {
                let ratio = p.ops_per_sec / o.ops_per_sec;
                format!(
                    "Sequential get from Python ≥ 100× the official Python client 0.1.8 with its \
                     three connection bugs patched at run time (same run; unpatched it cannot \
                     connect): {} — {} vs {} ops/s ({ratio:.0}×)",
                    verdict(ratio >= 100.0),
                    thousands(p.ops_per_sec),
                    thousands(o.ops_per_sec)
                )
            }
            _ => "Sequential get from Python ≥ 100× the patched official Python client 0.1.8: \
                  n/a (missing or invalid; it runs with --python-official)"
                .to_owned(),
        });
        let seq_apply = Workload::Apply { tasks: 1 };
        if let (Some(p), Some(o)) = (
            self.valid(seq_apply, Contender::PyThreads),
            self.valid(seq_apply, Contender::PyOfficial)
                .filter(|o| o.ops_per_sec > 0.0),
        ) {
            lines.push(format!(
                "Sequential apply from Python against the patched official Python client 0.1.8 \
                 (same run): {} vs {} ops/s ({:.1}×; appends are server-bound)",
                thousands(p.ops_per_sec),
                thousands(o.ops_per_sec),
                p.ops_per_sec / o.ops_per_sec
            ));
        }
        let get16 = Workload::Get { tasks: 16 };
        lines.push(
            match (self.valid(get16, Contender::PyThreads), self.valid(get16, Contender::Edbx)) {
                (Some(p), Some(r)) if r.ops_per_sec > 0.0 => {
                    let ratio = p.ops_per_sec / r.ops_per_sec;
                    format!(
                        "get from 16 Python threads sharing one client ≥ 70 % of 16 Rust tasks: {} — {} vs {} ops/s ({:.0} %)",
                        verdict(ratio >= 0.70),
                        thousands(p.ops_per_sec),
                        thousands(r.ops_per_sec),
                        ratio * 100.0
                    )
                }
                _ => "get from 16 Python threads ≥ 70 % of 16 Rust tasks: n/a (missing or invalid)".to_owned(),
            },
        );
        let p50_gap = match (python.and_then(|p| p.p50), rust.and_then(|r| r.p50)) {
            (Some(p), Some(r)) => format!(
                "; sequential get p50 {} from Python vs {} from Rust ({} more per call)",
                dur(Some(p)),
                dur(Some(r)),
                dur(Some(p.saturating_sub(r)))
            ),
            _ => String::new(),
        };
        lines.push(match overhead {
            Ok(per_call) => format!(
                "Python binding overhead per call: {} for a call that crosses into Rust and back \
                 without I/O (arguments, GIL release, runtime round trip, raising the refusal){p50_gap}",
                dur(Some(*per_call))
            ),
            Err(e) => format!("Python binding overhead per call: not measured ({e})"),
        });
        lines.extend(self.asyncio_cpu());
        lines.extend(self.python_fork.as_ref().map(|fork| match fork {
            Ok((forked, fresh)) => format!(
                "A forked child's first call on a client it inherited (opening the child's own \
                 connection) no slower than the first call of a client the child makes itself \
                 (constructor and connect included): **{}** — {} vs {} (medians of 20 children \
                 each)",
                if forked <= fresh { "met" } else { "missed" },
                dur(Some(*forked)),
                dur(Some(*fresh))
            ),
            Err(e) => format!("A forked child's first call: not measured ({e})"),
        }));
        lines
    }

    /// The asyncio client's cost per call: the Python process's CPU (user + system) per
    /// operation in each asyncio row, on the default event loop and on uvloop.
    fn asyncio_cpu(&self) -> Option<String> {
        let each: Vec<String> = self
            .workloads
            .iter()
            .filter(|w| **w != Workload::Connect)
            .filter_map(|&w| {
                let on = |c| {
                    self.valid(w, c)
                        .and_then(|s| Some((s.cpu_per_op?, s.user_cpu_per_op)))
                        .map(|(total, user)| format!("{} ({} user)", dur(Some(total)), dur(user)))
                };
                let (default, uvloop) = (on(Contender::PyAsyncio), on(Contender::PyAsyncioUvloop));
                if default.is_none() && uvloop.is_none() {
                    return None;
                }
                let na = || "n/a".to_owned();
                Some(format!(
                    "{} {} default loop, {} uvloop",
                    w.label(),
                    default.unwrap_or_else(na),
                    uvloop.unwrap_or_else(na)
                ))
            })
            .collect();
        (!each.is_empty()).then(|| {
            format!(
                "Python asyncio overhead per call (the Python process's CPU per call, user + \
                 system): {}",
                each.join("; ")
            )
        })
    }
}

/// `97 % (91–104 %)`: the median ratio and its range, or a dash.
fn percent_spread(ratios: &[f64]) -> String {
    match spread(ratios) {
        Some((mid, low, high)) => format!(
            "{:.0} % ({:.0}–{:.0} %)",
            mid * 100.0,
            low * 100.0,
            high * 100.0
        ),
        None => "—".to_owned(),
    }
}

fn verdict(met: bool) -> &'static str {
    if met { "**met**" } else { "**missed**" }
}

/// `12,345` (no decimals above 100, one decimal below).
pub fn thousands(value: f64) -> String {
    if value < 100.0 {
        return format!("{value:.1}");
    }
    let digits = format!("{:.0}", value);
    let mut out = String::new();
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

/// `312 µs`, `1.25 ms`, `44.1 ms`, `1.20 s`.
pub fn dur(d: Option<Duration>) -> String {
    let Some(d) = d else { return "—".to_owned() };
    let us = d.as_secs_f64() * 1e6;
    if us < 10.0 {
        format!("{us:.1} µs")
    } else if us < 1_000.0 {
        format!("{us:.0} µs")
    } else if us < 10_000.0 {
        format!("{:.2} ms", us / 1e3)
    } else if us < 1_000_000.0 {
        format!("{:.1} ms", us / 1e3)
    } else {
        format!("{:.2} s", us / 1e6)
    }
}

/// CPU, cores, kernel and memory of this machine.
pub fn machine_facts() -> Vec<(String, String)> {
    let read = |path: &str| std::fs::read_to_string(path).unwrap_or_default();
    let cpuinfo = read("/proc/cpuinfo");
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name").and_then(|r| r.split_once(':')))
        .map(|(_, m)| m.trim().to_owned())
        .unwrap_or_else(|| "unknown".to_owned());
    let processors = cpuinfo
        .lines()
        .filter(|l| l.starts_with("processor"))
        .count();
    let usable = std::thread::available_parallelism().map_or(0, |n| n.get());
    let kernel = read("/proc/sys/kernel/osrelease").trim().to_owned();
    let mem = read("/proc/meminfo")
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|kb| format!("{:.1} GiB", kb as f64 / 1_048_576.0))
        .unwrap_or_else(|| "unknown".to_owned());
    vec![
        ("CPU".to_owned(), model),
        (
            "cores".to_owned(),
            format!("{processors} logical (usable by this process: {usable})"),
        ),
        ("kernel".to_owned(), format!("Linux {kernel}")),
        ("memory".to_owned(), mem),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn number_and_duration_formats() {
        assert_eq!(thousands(2706.4), "2,706");
        assert_eq!(thousands(1_234_567.0), "1,234,567");
        assert_eq!(thousands(22.71), "22.7");
        assert_eq!(dur(Some(Duration::from_micros(360))), "360 µs");
        assert_eq!(dur(Some(Duration::from_micros(44_080))), "44.1 ms");
        assert_eq!(dur(Some(Duration::from_nanos(7_240))), "7.2 µs");
        assert_eq!(dur(None), "—");
    }
}
