//! What commands tell the person running them: lines on stdout, and progress
//! bars on stderr when it is a terminal (plain lines otherwise, so cron mail
//! and CI logs stay readable).

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

/// How chatty a command is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verbosity {
    Quiet,
    Normal,
    Verbose,
}

/// Hands out progress bars that suit the output.
#[derive(Debug, Clone)]
pub struct Progress {
    verbosity: Verbosity,
    terminal: bool,
}

impl Progress {
    pub fn new(verbosity: Verbosity) -> Self {
        Self {
            verbosity,
            terminal: std::io::stderr().is_terminal(),
        }
    }

    /// No output at all (tests, library use).
    pub fn hidden() -> Self {
        Self {
            verbosity: Verbosity::Quiet,
            terminal: false,
        }
    }

    /// Print one line of what the command did (not in `--quiet`).
    pub fn say(&self, line: impl AsRef<str>) {
        if self.verbosity != Verbosity::Quiet {
            println!("{}", line.as_ref());
        }
    }

    /// A counter of records with a rate.
    pub fn records(&self, label: &str) -> Counter {
        let bar = if self.terminal && self.verbosity != Verbosity::Quiet {
            let bar = ProgressBar::new_spinner();
            bar.set_style(
                ProgressStyle::with_template(
                    "{spinner} {msg}: {human_pos} records ({per_sec}, {elapsed})",
                )
                .expect("valid template"),
            );
            bar.set_message(label.to_string());
            bar.enable_steady_tick(Duration::from_millis(120));
            Some(bar)
        } else {
            None
        };
        Counter {
            bar,
            label: label.to_string(),
            count: 0,
            started: Instant::now(),
            last_line: Instant::now(),
            plain: !self.terminal && self.verbosity == Verbosity::Verbose,
        }
    }
}

/// A running count; on a terminal a spinner, otherwise a line every few seconds
/// in `--verbose`.
pub struct Counter {
    bar: Option<ProgressBar>,
    label: String,
    count: u64,
    started: Instant,
    last_line: Instant,
    plain: bool,
}

impl Counter {
    pub fn inc(&mut self, n: u64) {
        self.count += n;
        if let Some(b) = &self.bar {
            b.inc(n);
        } else if self.plain && self.last_line.elapsed() > Duration::from_secs(5) {
            self.last_line = Instant::now();
            eprintln!(
                "{}: {} records ({:.0}/s)",
                self.label,
                self.count,
                self.rate()
            );
        }
    }

    fn rate(&self) -> f64 {
        self.count as f64 / self.started.elapsed().as_secs_f64().max(1e-9)
    }

    pub fn finish(self) {
        if let Some(b) = self.bar {
            b.finish_and_clear();
        }
    }
}
