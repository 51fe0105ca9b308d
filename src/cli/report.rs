//! `recon report PLAN_DIR`: render the review files of an existing plan
//! folder again, e.g. after an upgrade of recon or with another row cap.

use std::path::{Path, PathBuf};

use anyhow::anyhow;

use super::Outcome;
use crate::ledger::{Ledger, Run};
use crate::report::{DRIFT_RUNS, read_plan, render_all};
use crate::ui::Progress;

pub fn run(dir: &Path, home: &Path, max_rows: usize, ui: &Progress) -> anyhow::Result<Outcome> {
    let (summary, plan) = read_plan(dir).map_err(|e| anyhow!(e))?;
    let runs = past_runs(dir, home, &summary.spec)?;
    let written = render_all(dir, &summary, &plan, &runs, max_rows)
        .map_err(|e| anyhow!("writing the report into {}: {e}", dir.display()))?;
    for path in written {
        ui.say(format!("wrote {}", path.display()));
    }
    Ok(Outcome::InSync)
}

/// The spec's runs for the drift chart, from the ledger of the home the plan
/// folder sits in (`<home>/reports/<spec>/<run>`), or else from the one under
/// `--home`: a plan copied elsewhere still finds its history. Without a
/// ledger the chart shows this plan alone; none is created here.
fn past_runs(dir: &Path, home: &Path, spec: &str) -> anyhow::Result<Vec<Run>> {
    let inferred: Option<PathBuf> = dir.canonicalize().ok().and_then(|d| {
        let reports = d.parent()?.parent()?;
        (reports.file_name()? == "reports").then(|| reports.parent().map(Path::to_path_buf))?
    });
    for h in inferred
        .into_iter()
        .chain(std::iter::once(home.to_path_buf()))
    {
        if h.join("snapshots").join("ledger.sqlite").is_file() {
            return Ok(Ledger::open(&h)?.runs(spec, DRIFT_RUNS)?);
        }
    }
    Ok(Vec::new())
}
