//! Progress on stderr for long commands: a bar with rate and ETA on a terminal, a plain line
//! every few seconds otherwise (logs, CI), nothing with `--progress never`.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use indicatif::{
    HumanCount, HumanDuration, ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle,
};

use crate::cli;

/// How often the plain lines come.
const LINE_INTERVAL: Duration = Duration::from_secs(5);

enum Display {
    Bar(ProgressBar),
    Lines {
        stop: mpsc::Sender<()>,
        thread: Option<JoinHandle<()>>,
    },
    Nothing,
}

/// Counts units of work and shows the count, the rate and the time left. Units that cost
/// nothing (an import's lines a log shows applied) are [skipped](Progress::skip): they count as
/// done but not in the rate, and the time left is for the units that cost.
pub struct Progress {
    done: Arc<AtomicU64>,
    skipped: Arc<AtomicU64>,
    display: Display,
    started: Instant,
    label: &'static str,
    unit: &'static str,
    total: Option<u64>,
    free: u64,
    last_message: Mutex<String>,
}

impl Progress {
    /// `label` names the command (`import`), `unit` what is counted (`lines`); `total` is how
    /// many there will be, if known, and `free` how many of them will be skipped.
    pub fn new(
        mode: cli::Progress,
        label: &'static str,
        unit: &'static str,
        total: Option<u64>,
        free: u64,
    ) -> Self {
        let done = Arc::new(AtomicU64::new(0));
        let skipped = Arc::new(AtomicU64::new(0));
        let terminal = can_draw();
        // The bar's rate and time left, from the units that cost.
        let counted = skipped.clone();
        let rate_key = move |state: &ProgressState, w: &mut dyn std::fmt::Write| {
            let pace = Pace::of(
                state.pos(),
                counted.load(Ordering::Relaxed),
                free,
                state.len(),
                state.elapsed(),
            );
            let _ = write!(w, "{}", pace.rate_text());
        };
        let counted = skipped.clone();
        let eta_key = move |state: &ProgressState, w: &mut dyn std::fmt::Write| {
            let pace = Pace::of(
                state.pos(),
                counted.load(Ordering::Relaxed),
                free,
                state.len(),
                state.elapsed(),
            );
            let _ = write!(w, "{}", pace.eta_text().unwrap_or_else(|| "-".to_owned()));
        };
        let display = match mode {
            cli::Progress::Never => Display::Nothing,
            cli::Progress::Auto | cli::Progress::Always if terminal => {
                let bar = match total {
                    Some(total) => {
                        ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr())
                            .with_style(
                                ProgressStyle::with_template(&format!(
                                    "{label} [{{bar:32}}] {{human_pos}}/{{human_len}} {unit}  \
                             {{rate}}  ETA {{time_left}}  {{msg}}"
                                ))
                                .expect("a valid template")
                                .with_key("rate", rate_key)
                                .with_key("time_left", eta_key)
                                .progress_chars("=> "),
                            )
                    }
                    None => ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr())
                        .with_style(
                            ProgressStyle::with_template(&format!(
                                "{{spinner}} {label}: {{human_pos}} {unit}  {{rate}}  \
                                 {{elapsed}}  {{msg}}"
                            ))
                            .expect("a valid template")
                            .with_key("rate", rate_key),
                        ),
                };
                bar.enable_steady_tick(Duration::from_millis(200));
                Display::Bar(bar)
            }
            cli::Progress::Auto | cli::Progress::Always => {
                let (stop, stopped) = mpsc::channel::<()>();
                let (done, skipped) = (done.clone(), skipped.clone());
                let started = Instant::now();
                let thread = std::thread::spawn(move || {
                    while let Err(mpsc::RecvTimeoutError::Timeout) =
                        stopped.recv_timeout(LINE_INTERVAL)
                    {
                        let pace = Pace::of(
                            done.load(Ordering::Relaxed),
                            skipped.load(Ordering::Relaxed),
                            free,
                            total,
                            started.elapsed(),
                        );
                        eprintln!("{}", line(label, unit, &pace));
                    }
                });
                Display::Lines {
                    stop,
                    thread: Some(thread),
                }
            }
        };
        Self {
            done,
            skipped,
            free,
            display,
            started: Instant::now(),
            label,
            unit,
            total,
            last_message: Mutex::new(String::new()),
        }
    }

    /// `n` more units done.
    pub fn inc(&self, n: u64) {
        self.done.fetch_add(n, Ordering::Relaxed);
        if let Display::Bar(bar) = &self.display {
            bar.inc(n);
        }
    }

    /// `n` more units done that cost nothing (not counted in the rate).
    pub fn skip(&self, n: u64) {
        self.skipped.fetch_add(n, Ordering::Relaxed);
        self.inc(n);
    }

    /// A short note beside the bar (e.g. "waiting for the server"); "" clears it. As plain
    /// lines, each new note is printed once.
    pub fn message(&self, message: &str) {
        match &self.display {
            Display::Bar(bar) => bar.set_message(message.to_owned()),
            Display::Lines { .. } => {
                let mut last = self.last_message.lock().unwrap_or_else(|p| p.into_inner());
                if *last != message {
                    message.clone_into(&mut last);
                    if !message.is_empty() {
                        eprintln!("edbx: {}: {message}", self.label);
                    }
                }
            }
            Display::Nothing => {}
        }
    }

    /// Units done so far.
    pub fn done(&self) -> u64 {
        self.done.load(Ordering::Relaxed)
    }

    /// Stops the display, leaving a last line.
    pub fn finish(&mut self) {
        let pace = Pace::of(
            self.done(),
            self.skipped.load(Ordering::Relaxed),
            self.free,
            self.total,
            self.started.elapsed(),
        );
        let last = line(self.label, self.unit, &pace);
        match &mut self.display {
            Display::Bar(bar) => {
                bar.finish_and_clear();
                eprintln!("{last}");
            }
            Display::Lines { stop, thread } => {
                let _ = stop.send(());
                if let Some(thread) = thread.take() {
                    let _ = thread.join();
                }
                eprintln!("{last}");
            }
            Display::Nothing => {}
        }
        self.display = Display::Nothing;
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if let Display::Lines { stop, thread } = &mut self.display {
            let _ = stop.send(());
            if let Some(thread) = thread.take() {
                let _ = thread.join();
            }
        }
    }
}

/// Whether a bar can be drawn on stderr: a terminal that is not `dumb` (on Unix, `TERM` must be
/// set; the bar library draws nothing otherwise, and plain lines are better than silence).
fn can_draw() -> bool {
    let term = std::env::var("TERM").ok();
    let dumb = match term.as_deref() {
        Some("dumb") => true,
        None => cfg!(unix),
        Some(_) => false,
    };
    std::io::stderr().is_terminal() && !dumb
}

/// Where a count stands: done of total, the rate of the units that cost, and the time left.
#[derive(Debug, Clone, Copy)]
struct Pace {
    done: u64,
    total: Option<u64>,
    elapsed: f64,
    /// Units per second, of those that cost (skipped ones are left out).
    rate: f64,
    /// Seconds left at that rate, for the units that cost and are not done.
    eta: Option<f64>,
}

impl Pace {
    fn of(done: u64, skipped: u64, free: u64, total: Option<u64>, elapsed: Duration) -> Self {
        let elapsed = elapsed.as_secs_f64();
        let worked = done.saturating_sub(skipped);
        let rate = if elapsed > 0.0 {
            worked as f64 / elapsed
        } else {
            0.0
        };
        // The units that cost, all told, less those done: skipped ones were never ahead.
        let eta = total.and_then(|total| {
            let left = total
                .saturating_sub(free.max(skipped))
                .saturating_sub(worked);
            (rate > 0.0 && done < total).then(|| left as f64 / rate)
        });
        Self {
            done,
            total,
            elapsed,
            rate,
            eta,
        }
    }

    /// `650/s`, `2.5/s`: whole numbers unless under 10.
    fn rate_text(&self) -> String {
        if self.rate >= 10.0 || self.rate == 0.0 {
            format!("{:.0}/s", self.rate)
        } else {
            format!("{:.1}/s", self.rate)
        }
    }

    /// `13 seconds`, `2 minutes`.
    fn eta_text(&self) -> Option<String> {
        self.eta
            .map(|eta| HumanDuration(Duration::from_secs_f64(eta.ceil())).to_string())
    }
}

/// `edbx: import: 3,200 of 10,000 lines (32 %), 650/s, ETA 13 seconds`.
fn line(label: &str, unit: &str, pace: &Pace) -> String {
    match pace.total {
        Some(total) if total > 0 => {
            let eta = pace
                .eta_text()
                .map_or_else(String::new, |eta| format!(", ETA {eta}"));
            format!(
                "edbx: {label}: {} of {} {unit} ({:.0} %), {}{eta}",
                HumanCount(pace.done),
                HumanCount(total),
                pace.done as f64 * 100.0 / total as f64,
                pace.rate_text()
            )
        }
        _ => format!(
            "edbx: {label}: {} {unit}, {}, {:.1} s",
            HumanCount(pace.done),
            pace.rate_text(),
            pace.elapsed
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_time_left_is_for_the_units_that_cost() {
        // A resume: 6,000 of 9,000 lines were applied before and are skipped at once; 300 of
        // the other 3,000 are sent in 10 s. 2,700 are left at 30/s: 90 s (counting the skips
        // as work would say 6,300 lines at 630/s, 4 s).
        let pace = Pace::of(6_300, 6_000, 6_000, Some(9_000), Duration::from_secs(10));
        assert_eq!(pace.rate_text(), "30/s");
        assert_eq!(pace.eta, Some(90.0));
        // No skips: the plain rate.
        let pace = Pace::of(500, 0, 0, Some(1_000), Duration::from_secs(5));
        assert_eq!(pace.eta, Some(5.0));
        assert_eq!(pace.rate_text(), "100/s");
        // Slow: one decimal, never four.
        let pace = Pace::of(7, 0, 0, None, Duration::from_secs(2));
        assert_eq!(pace.rate_text(), "3.5/s");
        assert_eq!(pace.eta, None);
        assert_eq!(
            line("export", "aggregates", &pace),
            "edbx: export: 7 aggregates, 3.5/s, 2.0 s"
        );
    }
}
