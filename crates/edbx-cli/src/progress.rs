//! Progress on stderr for long commands: a bar with rate and ETA on a terminal, a plain line
//! every few seconds otherwise (logs, CI), nothing with `--progress never`.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use indicatif::{HumanCount, ProgressBar, ProgressDrawTarget, ProgressStyle};

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

/// Counts units of work and shows the count.
pub struct Progress {
    done: Arc<AtomicU64>,
    display: Display,
    started: Instant,
    label: &'static str,
    unit: &'static str,
    total: Option<u64>,
    last_message: Mutex<String>,
}

impl Progress {
    /// `label` names the command (`import`), `unit` what is counted (`lines`); `total` is how
    /// many there will be, if known.
    pub fn new(
        mode: cli::Progress,
        label: &'static str,
        unit: &'static str,
        total: Option<u64>,
    ) -> Self {
        let done = Arc::new(AtomicU64::new(0));
        let terminal = can_draw();
        let display = match mode {
            cli::Progress::Never => Display::Nothing,
            cli::Progress::Auto | cli::Progress::Always if terminal => {
                let bar = match total {
                    Some(total) => {
                        ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr())
                            .with_style(
                                ProgressStyle::with_template(&format!(
                                    "{label} [{{bar:32}}] {{human_pos}}/{{human_len}} {unit}  \
                             {{per_sec}}  ETA {{eta}}  {{msg}}"
                                ))
                                .expect("a valid template")
                                .progress_chars("=> "),
                            )
                    }
                    None => ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr())
                        .with_style(
                            ProgressStyle::with_template(&format!(
                                "{{spinner}} {label}: {{human_pos}} {unit}  {{per_sec}}  \
                                 {{elapsed}}  {{msg}}"
                            ))
                            .expect("a valid template"),
                        ),
                };
                bar.enable_steady_tick(Duration::from_millis(200));
                Display::Bar(bar)
            }
            cli::Progress::Auto | cli::Progress::Always => {
                let (stop, stopped) = mpsc::channel::<()>();
                let done = done.clone();
                let started = Instant::now();
                let thread = std::thread::spawn(move || {
                    while let Err(mpsc::RecvTimeoutError::Timeout) =
                        stopped.recv_timeout(LINE_INTERVAL)
                    {
                        eprintln!(
                            "{}",
                            line(label, unit, done.load(Ordering::Relaxed), total, started)
                        );
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
        let last = line(self.label, self.unit, self.done(), self.total, self.started);
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

/// `edbx: import: 3,200 of 10,000 lines (32 %), 650/s, ETA 13 s`.
fn line(label: &str, unit: &str, done: u64, total: Option<u64>, started: Instant) -> String {
    let elapsed = started.elapsed().as_secs_f64();
    let rate = if elapsed > 0.0 {
        done as f64 / elapsed
    } else {
        0.0
    };
    match total {
        Some(total) if total > 0 => {
            let eta = if rate > 0.0 && done < total {
                format!(", ETA {:.0} s", (total - done) as f64 / rate)
            } else {
                String::new()
            };
            format!(
                "edbx: {label}: {} of {} {unit} ({:.0} %), {:.0}/s{eta}",
                HumanCount(done),
                HumanCount(total),
                done as f64 * 100.0 / total as f64,
                rate
            )
        }
        _ => format!(
            "edbx: {label}: {} {unit}, {:.0}/s, {:.1} s",
            HumanCount(done),
            rate,
            elapsed
        ),
    }
}
