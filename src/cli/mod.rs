//! The command line: one file per command. Every command prints what it did
//! and where it wrote; the outcome decides the exit code.

mod apply;
mod bench;
mod check;
mod emulate;
mod history;
mod plan;
mod pull;
mod report;

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

use crate::spec::{Spec, SpecErrors};
use crate::ui::{Progress, Verbosity};

pub use plan::plan_spec;
pub use pull::pull_spec;

/// recon: reconcile records between two business systems, reviewably.
#[derive(Debug, Parser)]
#[command(name = "recon", version, about, long_about = None)]
pub struct Cli {
    /// Folder holding `snapshots/` and `reports/` (default: the current one).
    #[arg(long, global = true, env = "RECON_HOME", default_value = ".")]
    pub home: PathBuf,
    /// Print only errors.
    #[arg(long, short, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// Print more about each step.
    #[arg(long, short, global = true)]
    pub verbose: bool,
    /// Format of log lines on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Validate a spec and say in one paragraph what it will do.
    Check {
        spec: PathBuf,
        /// Also reach each side and check its credentials.
        #[arg(long)]
        connect: bool,
    },
    /// Read both sides and write a Parquet snapshot of each.
    Pull {
        spec: PathBuf,
        /// Read everything, ignoring the stored incremental cursors.
        #[arg(long)]
        full: bool,
    },
    /// Compare the latest snapshots and write the plan and its summary.
    Plan { spec: PathBuf },
    /// Pull, then plan (and apply, with --apply): the nightly job.
    Run {
        spec: PathBuf,
        /// Read everything, ignoring the stored incremental cursors.
        #[arg(long)]
        full: bool,
        /// Apply the plan without asking, within the limits below.
        #[arg(long)]
        apply: bool,
        /// With --apply: refuse a plan with more writes than this.
        #[arg(long, default_value_t = 1000)]
        max_changes: u64,
        /// With --apply: apply even when the plan has conflicts.
        #[arg(long)]
        allow_conflicts: bool,
    },
    /// Tell recon a record's id changed on one side (Reviso's renumber webhook
    /// posts {oldNumber, newNumber}): its links follow.
    Relink {
        spec: PathBuf,
        /// The side whose id changed.
        #[arg(long)]
        side: String,
        old: String,
        new: String,
    },
    /// Write an approved plan to the receiving side, through the journal.
    Apply {
        /// The plan folder (reports/<spec>/<run>).
        plan: PathBuf,
        /// The spec, when the plan does not name it.
        #[arg(long)]
        spec: Option<PathBuf>,
        /// Do not ask for confirmation (for cron).
        #[arg(long)]
        yes: bool,
        /// Print each request that would be sent and send nothing.
        #[arg(long)]
        dry_run: bool,
        /// Write rows whose target changed since the plan.
        #[arg(long)]
        force: bool,
        /// Also delete the receiving side's orphans.
        #[arg(long)]
        mirror: bool,
    },
    /// Measure plan, pull or apply speed and peak memory on generated data.
    Bench {
        /// What to measure.
        #[arg(value_enum, default_value = "plan")]
        kind: bench::Kind,
        /// Customers per side (plan), records (pull) or changes (apply).
        #[arg(long, default_value_t = 100_000)]
        rows: u64,
        /// Seed of the generated data.
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Where to write (default bench/out/KIND-ROWS).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Show past runs of a spec and how far the sides drifted.
    History {
        spec: PathBuf,
        /// How many runs to show.
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
    /// Serve emulated vendor APIs on a local port until Ctrl-C.
    Emulate(emulate::Args),
    /// Re-render the reports of an existing plan folder.
    Report {
        plan_dir: PathBuf,
        /// Rows listed per class in report.html; the Parquet plan holds them all.
        #[arg(long, default_value_t = crate::report::DEFAULT_MAX_ROWS)]
        max_rows: usize,
    },
}

/// How a command ended, as the exit code tells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Nothing to do: the sides agree (exit 0).
    InSync,
    /// Changes are pending review (exit 2).
    Pending,
}

impl Outcome {
    pub fn code(self) -> u8 {
        match self {
            Outcome::InSync => 0,
            Outcome::Pending => 2,
        }
    }
}

impl Cli {
    pub fn verbosity(&self) -> Verbosity {
        if self.quiet {
            Verbosity::Quiet
        } else if self.verbose {
            Verbosity::Verbose
        } else {
            Verbosity::Normal
        }
    }

    pub fn init_logging(&self) {
        let level = match self.verbosity() {
            Verbosity::Quiet => "error",
            Verbosity::Normal => "warn",
            Verbosity::Verbose => "debug",
        };
        let filter = tracing_subscriber::EnvFilter::try_from_env("RECON_LOG")
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(format!("recon={level}")));
        let builder = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr);
        let _ = match self.log_format {
            LogFormat::Json => builder.json().try_init(),
            LogFormat::Text => builder.try_init(),
        };
    }

    pub fn run(&self) -> anyhow::Result<Outcome> {
        let outcome = self.dispatch();
        if std::env::var_os(bench::PEAK_RSS_ENV).is_some()
            && let Some(kb) = bench::peak_rss_kb()
        {
            eprintln!("peak_rss_kb: {kb}");
        }
        outcome
    }

    fn dispatch(&self) -> anyhow::Result<Outcome> {
        let ui = Progress::new(self.verbosity());
        match &self.command {
            Command::Bench {
                kind,
                rows,
                seed,
                out,
            } => bench::run(*kind, *rows, *seed, out.clone(), &ui),
            Command::Check { spec, connect } => check::run(spec, *connect, &ui),
            Command::Emulate(args) => emulate::run(args, &ui),
            Command::Pull { spec, full } => {
                pull::run(&load(spec)?, &self.home, *full, &ui)?;
                Ok(Outcome::InSync)
            }
            Command::Plan { spec } => plan::run(&load(spec)?, &self.home, &ui),
            Command::Run {
                spec,
                full,
                apply: and_apply,
                max_changes,
                allow_conflicts,
            } => {
                let spec = load(spec)?;
                pull::run(&spec, &self.home, *full, &ui)?;
                let (outcome, dir) = plan::run_in(&spec, &self.home, &ui)?;
                if !*and_apply || outcome == Outcome::InSync {
                    return Ok(outcome);
                }
                apply::check_limits(
                    &dir,
                    apply::Limits {
                        max_changes: *max_changes,
                        allow_conflicts: *allow_conflicts,
                    },
                )?;
                apply::execute(
                    &spec,
                    &dir,
                    &self.home,
                    crate::apply::Options::default(),
                    &ui,
                )
            }
            Command::Relink {
                spec,
                side,
                old,
                new,
            } => {
                let spec = load(spec)?;
                let Some(ix) = spec.side_by_name(side) else {
                    anyhow::bail!("spec `{}` has no side `{side}`", spec.name);
                };
                let n = crate::ledger::Ledger::open(&self.home)?.relink(
                    &spec.name,
                    ix == crate::spec::SideIx::A,
                    old,
                    new,
                )?;
                ui.say(format!("moved {n} link(s) of {side} `{old}` to `{new}`"));
                Ok(Outcome::InSync)
            }
            Command::Apply {
                plan,
                spec,
                yes,
                dry_run,
                force,
                mirror,
            } => apply::run(
                plan,
                spec.as_deref(),
                *yes,
                crate::apply::Options {
                    dry_run: *dry_run,
                    force: *force,
                    mirror: *mirror,
                },
                &self.home,
                &ui,
            ),
            Command::History { spec, limit } => history::run(&load(spec)?, &self.home, *limit, &ui),
            Command::Report { plan_dir, max_rows } => {
                report::run(plan_dir, &self.home, *max_rows, &ui)
            }
        }
    }
}

/// Load a spec, turning its diagnostics into one error.
pub fn load(path: &std::path::Path) -> anyhow::Result<Spec> {
    Ok(Spec::load(path)?)
}

/// The message printed for an error that ends a command.
pub fn render_error(e: &anyhow::Error) -> String {
    if let Some(spec) = e.downcast_ref::<SpecErrors>() {
        return spec.to_string();
    }
    format!("error: {e:#}")
}

/// Now, for file names: `20261123T034512.345Z` (sortable, unique per millisecond).
pub(crate) fn stamp(now: chrono::DateTime<chrono::Utc>) -> String {
    now.format("%Y%m%dT%H%M%S%.3fZ").to_string()
}

/// [`stamp`] of the current time.
pub(crate) fn stamp_now() -> String {
    stamp(chrono::Utc::now())
}

/// Now, for people and metadata: RFC 3339 in UTC.
pub(crate) fn rfc3339(now: chrono::DateTime<chrono::Utc>) -> String {
    now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}
