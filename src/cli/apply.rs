//! `recon apply PLAN_DIR`: write an approved plan to the receiving side.

use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, anyhow, bail};

use super::{Outcome, load};
use crate::apply::{self, Options};
use crate::report::{read_plan, write_apply_report};
use crate::spec::Spec;
use crate::ui::Progress;

/// Safety limits for `recon run --apply`.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Refuse to apply more writes than this without a person.
    pub max_changes: u64,
    /// Apply even when the plan has conflicts.
    pub allow_conflicts: bool,
}

pub fn run(
    plan_dir: &Path,
    spec: Option<&Path>,
    yes: bool,
    opts: Options,
    home: &Path,
    ui: &Progress,
) -> anyhow::Result<Outcome> {
    let (summary, _) = read_plan(plan_dir).map_err(|e| anyhow!(e))?;
    let spec_path = match spec {
        Some(p) => p.to_path_buf(),
        None if !summary.spec_file.is_empty() => PathBuf::from(&summary.spec_file),
        None => bail!("the plan does not name its spec file; pass --spec SPEC"),
    };
    let spec = load(&spec_path)?;
    let writes = summary.count("create")
        + summary.count("update")
        + if opts.mirror {
            summary.count("orphan")
        } else {
            0
        };
    ui.say(format!(
        "plan {} of `{}`: {} create(s) and {} update(s) to write{}; {} conflict(s) and {} invalid row(s) are left for a person",
        summary.run_id,
        spec.name,
        summary.count("create"),
        summary.count("update"),
        if opts.mirror { format!(", {} orphan(s) to delete", summary.count("orphan")) } else { String::new() },
        summary.count("conflict"),
        summary.count("invalid")
    ));
    if writes > 0 && !yes && !opts.dry_run {
        confirm(writes)?;
    }
    execute(&spec, plan_dir, home, opts, ui)
}

/// Ask on the terminal; without one, `--yes` is required.
fn confirm(writes: u64) -> anyhow::Result<()> {
    if !std::io::stdin().is_terminal() {
        bail!("not on a terminal: pass --yes to apply {writes} write(s) without a question");
    }
    print!("Apply {writes} write(s)? [y/N] ");
    std::io::stdout().flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    if !matches!(answer.trim().to_lowercase().as_str(), "y" | "yes") {
        bail!("not applied");
    }
    Ok(())
}

/// Apply and report; exit 1 when any row failed or was refused as stale.
pub fn execute(
    spec: &Spec,
    plan_dir: &Path,
    home: &Path,
    opts: Options,
    ui: &Progress,
) -> anyhow::Result<Outcome> {
    let report = apply::apply(spec, plan_dir, home, opts, ui)?;
    if report.dry_run {
        ui.say(format!(
            "dry run: {} request(s) shown, nothing sent",
            report.counts.values().sum::<u64>()
        ));
        return Ok(Outcome::InSync);
    }
    let written = write_apply_report(plan_dir, &report)
        .with_context(|| format!("writing the apply report to {}", plan_dir.display()))?;
    let line: Vec<String> = report
        .counts
        .iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect();
    ui.say(format!("applied: {}", line.join(", ")));
    for p in written {
        ui.say(format!("  wrote {}", p.display()));
    }
    if report.all_done() {
        Ok(Outcome::InSync)
    } else {
        let bad = report.rows.iter().filter(|r| r.state != "done").count();
        bail!(
            "{bad} row(s) were not applied; see {}",
            plan_dir.join("apply.html").display()
        )
    }
}

/// Refuse an unattended apply of a plan that is too large or has conflicts.
pub fn check_limits(dir: &Path, limits: Limits) -> anyhow::Result<()> {
    let (summary, _) = read_plan(dir).map_err(|e| anyhow!(e))?;
    let writes = summary.count("create") + summary.count("update");
    if writes > limits.max_changes {
        bail!(
            "the plan has {writes} write(s), more than --max-changes {}: review {} and apply it by hand",
            limits.max_changes,
            dir.join("report.html").display()
        );
    }
    if summary.count("conflict") > 0 && !limits.allow_conflicts {
        bail!(
            "the plan has {} conflict(s): resolve them or pass --allow-conflicts (review {})",
            summary.count("conflict"),
            dir.join("report.html").display()
        );
    }
    Ok(())
}
