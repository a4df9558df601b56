//! What one timed run measured, and how repetitions are summarised (medians).

use std::time::Duration;

use crate::cpu::CpuTime;

/// The outcome of one contender running one workload once.
#[derive(Debug, Clone, Default)]
pub struct Run {
    /// Operations that completed successfully inside the measured window.
    pub ops: u64,
    /// Operations that failed (any error, including an unexpected reply).
    pub errors: u64,
    /// The first error seen, for the report.
    pub first_error: Option<String>,
    /// Wall time of the measured window (until the last in-flight operation finished).
    pub elapsed: Duration,
    /// CPU time the harness process spent in the measured window.
    pub cpu: CpuTime,
    /// Latency of every successful operation, in nanoseconds.
    pub latencies_ns: Vec<u64>,
}

impl Run {
    /// Successful operations per second.
    pub fn ops_per_sec(&self) -> f64 {
        if self.elapsed.is_zero() {
            return 0.0;
        }
        self.ops as f64 / self.elapsed.as_secs_f64()
    }

    /// Harness CPU time (user + system) per successful operation.
    pub fn cpu_per_op(&self) -> Option<Duration> {
        self.per_op(self.cpu.total())
    }

    /// Harness user-mode CPU time per successful operation (the client code itself, without
    /// the kernel's socket work).
    pub fn user_cpu_per_op(&self) -> Option<Duration> {
        self.per_op(self.cpu.user)
    }

    /// Context switches of the harness's threads per successful operation: how often a call
    /// put a thread to sleep and woke it, which costs more than the CPU time shows.
    pub fn switches_per_op(&self) -> Option<f64> {
        (self.ops > 0).then(|| self.cpu.switches as f64 / self.ops as f64)
    }

    fn per_op(&self, spent: Duration) -> Option<Duration> {
        (self.ops > 0).then(|| spent.div_f64(self.ops as f64))
    }

    /// The `q`-quantile latency (0.0 ..= 1.0), nearest rank.
    pub fn percentile(&self, q: f64) -> Option<Duration> {
        let mut sorted = self.latencies_ns.clone();
        sorted.sort_unstable();
        percentile_of_sorted(&sorted, q).map(Duration::from_nanos)
    }
}

/// Nearest-rank percentile of sorted samples.
pub fn percentile_of_sorted(sorted: &[u64], q: f64) -> Option<u64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (q.clamp(0.0, 1.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

/// The median of some values (mean of the two middle ones for an even count).
pub fn median(values: &mut [f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    Some(if values.len() % 2 == 0 {
        (values[mid - 1] + values[mid]) / 2.0
    } else {
        values[mid]
    })
}

/// Medians over the repetitions of one (workload, contender) cell.
#[derive(Debug, Clone)]
pub struct Summary {
    /// Errors summed over every repetition; any error makes the cell invalid.
    pub errors: u64,
    pub first_error: Option<String>,
    /// Successful operations summed over every repetition.
    pub total_ops: u64,
    pub ops_per_sec: f64,
    pub p50: Option<Duration>,
    pub p99: Option<Duration>,
    pub cpu_per_op: Option<Duration>,
    pub user_cpu_per_op: Option<Duration>,
    pub switches_per_op: Option<f64>,
}

impl Summary {
    /// Whether the numbers may be reported: no error in any repetition, and work was done.
    pub fn is_valid(&self) -> bool {
        self.errors == 0 && self.total_ops > 0
    }

    pub fn of(runs: &[Run]) -> Summary {
        let secs = |d: Option<Duration>| d.map(|d| d.as_secs_f64());
        let med = |mut v: Vec<f64>| median(&mut v);
        let med_dur = |v: Vec<Option<f64>>| {
            med(v.into_iter().flatten().collect()).map(Duration::from_secs_f64)
        };
        Summary {
            errors: runs.iter().map(|r| r.errors).sum(),
            first_error: runs.iter().find_map(|r| r.first_error.clone()),
            total_ops: runs.iter().map(|r| r.ops).sum(),
            ops_per_sec: med(runs.iter().map(Run::ops_per_sec).collect()).unwrap_or(0.0),
            p50: med_dur(runs.iter().map(|r| secs(r.percentile(0.50))).collect()),
            p99: med_dur(runs.iter().map(|r| secs(r.percentile(0.99))).collect()),
            cpu_per_op: med_dur(runs.iter().map(|r| secs(r.cpu_per_op())).collect()),
            user_cpu_per_op: med_dur(runs.iter().map(|r| secs(r.user_cpu_per_op())).collect()),
            switches_per_op: med(runs.iter().filter_map(Run::switches_per_op).collect()),
        }
    }
}

/// One contender against another, repetition by repetition: in each repetition the two ran
/// seconds apart, so their ratio is not moved by how the machine's speed drifts between
/// repetitions (which moves the medians of each alone by far more than the gaps measured here).
#[derive(Debug, Clone, Default)]
pub struct Paired {
    /// `a`'s throughput over `b`'s, one per repetition in which both runs were valid.
    pub throughput: Vec<f64>,
    /// `a`'s p50 latency over `b`'s, likewise.
    pub p50: Vec<f64>,
}

impl Paired {
    /// The ratios of `a`'s runs to `b`'s, matched by repetition (the two slices are in
    /// repetition order). A repetition with an error in either run is left out.
    pub fn of(a: &[Run], b: &[Run]) -> Paired {
        let valid = |r: &Run| r.errors == 0 && r.ops > 0;
        let mut paired = Paired::default();
        for (a, b) in a.iter().zip(b).filter(|(a, b)| valid(a) && valid(b)) {
            if b.ops_per_sec() > 0.0 {
                paired.throughput.push(a.ops_per_sec() / b.ops_per_sec());
            }
            if let (Some(pa), Some(pb)) = (a.percentile(0.5), b.percentile(0.5)) {
                if !pb.is_zero() {
                    paired.p50.push(pa.as_secs_f64() / pb.as_secs_f64());
                }
            }
        }
        paired
    }
}

/// The median, smallest and largest of some ratios.
pub fn spread(values: &[f64]) -> Option<(f64, f64, f64)> {
    let mut sorted = values.to_vec();
    let mid = median(&mut sorted)?;
    Some((mid, sorted[0], sorted[sorted.len() - 1]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let samples: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile_of_sorted(&samples, 0.50), Some(50));
        assert_eq!(percentile_of_sorted(&samples, 0.99), Some(99));
        assert_eq!(percentile_of_sorted(&samples, 1.0), Some(100));
        assert_eq!(percentile_of_sorted(&[7], 0.99), Some(7));
        assert_eq!(percentile_of_sorted(&[], 0.5), None);
    }

    #[test]
    fn medians_of_odd_and_even_counts() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&mut [4.0, 1.0, 3.0, 2.0]), Some(2.5));
        assert_eq!(median(&mut []), None);
    }

    #[test]
    fn pairs_match_repetitions_and_skip_failed_ones() {
        let run = |ops: u64, latency: u64| Run {
            ops,
            elapsed: Duration::from_secs(1),
            latencies_ns: vec![latency; ops as usize],
            ..Run::default()
        };
        let failed = Run {
            errors: 1,
            ..run(5, 1)
        };
        let a = [run(90, 200), run(50, 400), failed];
        let b = [run(100, 100), run(100, 100), run(100, 100)];
        let paired = Paired::of(&a, &b);
        assert_eq!(paired.throughput, vec![0.9, 0.5]);
        assert_eq!(paired.p50, vec![2.0, 4.0]);
        assert_eq!(spread(&paired.throughput), Some((0.7, 0.5, 0.9)));
        assert_eq!(spread(&[]), None);
    }

    #[test]
    fn context_switches_per_operation() {
        let run = Run {
            ops: 10,
            cpu: CpuTime {
                switches: 25,
                ..CpuTime::default()
            },
            ..Run::default()
        };
        assert_eq!(run.switches_per_op(), Some(2.5));
        assert_eq!(
            Run::default().switches_per_op(),
            None,
            "no operation, no rate"
        );
        let summary = Summary::of(&[run.clone(), run]);
        assert_eq!(summary.switches_per_op, Some(2.5));
    }

    #[test]
    fn any_error_invalidates_a_cell() {
        let good = Run {
            ops: 10,
            elapsed: Duration::from_secs(1),
            latencies_ns: vec![1_000; 10],
            ..Run::default()
        };
        let bad = Run {
            errors: 1,
            first_error: Some("boom".into()),
            ..good.clone()
        };
        assert!(Summary::of(&[good.clone(), good.clone()]).is_valid());
        let summary = Summary::of(&[good.clone(), bad, good]);
        assert!(!summary.is_valid());
        assert_eq!(summary.first_error.as_deref(), Some("boom"));
        assert!(
            !Summary::of(&[Run::default()]).is_valid(),
            "no work is not a result"
        );
    }
}
