//! `recon plan SPEC`: run the engine on the latest snapshots and write the
//! plan folder `reports/<spec>/<run id>/`.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, anyhow};
use polars::prelude::*;

use super::Outcome;
use crate::engine::{self, CLASSES, Inputs};
use crate::ledger::Ledger;
use crate::report::{DRIFT_RUNS, Summary, SummaryInput, render_all, write_plan};
use crate::snapshot::{self, meta};
use crate::spec::{SideIx, Spec};
use crate::ui::Progress;

pub fn run(spec: &Spec, home: &Path, ui: &Progress) -> anyhow::Result<Outcome> {
    run_in(spec, home, ui).map(|(o, _)| o)
}

/// [`run`], also returning the plan folder.
pub fn run_in(spec: &Spec, home: &Path, ui: &Progress) -> anyhow::Result<(Outcome, PathBuf)> {
    let ledger = Ledger::open(home)?;
    let now = chrono::Utc::now();
    let run_id = ledger.start_run(&spec.name, "plan", &super::rfc3339(now))?;
    let result = plan_spec(spec, home, &ledger, now);
    match &result {
        Ok((dir, summary)) => {
            ledger.finish_run(
                run_id,
                &super::rfc3339(chrono::Utc::now()),
                "ok",
                &summary
                    .inputs
                    .iter()
                    .map(|i| i.path.clone())
                    .collect::<Vec<_>>(),
                &summary.counts,
                Some(&dir.display().to_string()),
                None,
            )?;
            let line: Vec<String> = CLASSES
                .iter()
                .map(|c| format!("{c} {}", summary.count(c)))
                .collect();
            ui.say(format!("plan {}: {}", summary.run_id, line.join(", ")));
            ui.say(format!("  wrote {}", dir.join(&summary.plan).display()));
            ui.say(format!("  wrote {}", dir.join("summary.json").display()));
            ui.say(format!("  wrote {}", dir.join("summary.md").display()));
            ui.say(format!("  wrote {}", dir.join("changes.csv").display()));
            ui.say(format!("  wrote {}", dir.join("report.html").display()));
        }
        Err(e) => {
            ledger.finish_run(
                run_id,
                &super::rfc3339(chrono::Utc::now()),
                "failed",
                &[],
                &serde_json::Map::new(),
                None,
                Some(&format!("{e:#}")),
            )?;
        }
    }
    let (dir, summary) = result?;
    let outcome = if summary.pending() > 0 {
        Outcome::Pending
    } else {
        Outcome::InSync
    };
    Ok((outcome, dir))
}

/// Plan from the latest snapshots; returns the plan folder and its summary.
pub fn plan_spec(
    spec: &Spec,
    home: &Path,
    ledger: &Ledger,
    now: chrono::DateTime<chrono::Utc>,
) -> anyhow::Result<(PathBuf, Summary)> {
    let mut inputs = Vec::new();
    let mut frames = Vec::new();
    for side in SideIx::both() {
        let name = &spec.side(side).name;
        let path = snapshot::latest(home, &spec.name, name)?.ok_or_else(|| {
            anyhow!(
                "no snapshot of side `{name}` yet under {}\n  hint: run `recon pull {}` first",
                home.join("snapshots").join(&spec.name).join(name).display(),
                spec.file.display()
            )
        })?;
        let info = snapshot::read_footer(&path).map_err(|e| anyhow!(e))?;
        if info.metadata.get(meta::SPEC_HASH) != Some(&spec.hash) {
            tracing::warn!(
                snapshot = %path.display(),
                "the snapshot was pulled with another version of the spec; pull again if fields or paths changed"
            );
        }
        let lf = LazyFrame::scan_parquet(
            PlRefPath::from(path.to_string_lossy().as_ref()),
            ScanArgsParquet::default(),
        )
        .map_err(|e| anyhow!("reading snapshot {}: {e}", path.display()))?;
        frames.push(lf);
        inputs.push(SummaryInput {
            side: name.clone(),
            path: path.display().to_string(),
            sha256: info.sha256,
            rows: info.rows,
            source: info.metadata.get(meta::SOURCE).cloned().unwrap_or_default(),
            pulled_at: info
                .metadata
                .get(meta::PULLED_AT)
                .cloned()
                .unwrap_or_default(),
        });
    }
    let links = ledger.links(&spec.name)?;
    let baseline = engine::baseline_frame(spec, &ledger.baselines(&spec.name)?)?;
    let mut refs = std::collections::BTreeMap::new();
    for f in &spec.fields {
        if let Some(parent) = &f.reference {
            refs.insert(f.name.clone(), ledger.links(parent)?);
        }
    }
    let b = frames.pop().expect("two sides");
    let a = frames.pop().expect("two sides");
    // The snapshots' hashes, for the summary, are taken while the engine
    // works.
    let (plan, hashes) = std::thread::scope(|scope| {
        let hashes = scope.spawn(|| {
            inputs
                .iter()
                .map(|i| snapshot::snapshot_sha256(Path::new(&i.path)))
                .collect::<Result<Vec<String>, String>>()
        });
        let plan = engine::plan(
            spec,
            Inputs {
                a,
                b,
                links,
                baseline,
                refs,
            },
        );
        (plan, hashes.join())
    });
    let plan = plan.map_err(|e| anyhow!("computing the plan: {e}"))?;
    let hashes = hashes
        .map_err(|_| anyhow!("hashing the snapshots failed"))?
        .map_err(|e| anyhow!(e))?;
    for (input, sha256) in inputs.iter_mut().zip(hashes) {
        input.sha256 = sha256;
    }
    tracing::debug!(rows = plan.height(), "plan computed");
    let (counts, top_fields) = Summary::tally(&plan)?;
    tracing::debug!("tallied the plan");
    let run_id = super::stamp(now);
    let dir = home.join("reports").join(&spec.name).join(&run_id);
    let summary = Summary {
        spec: spec.name.clone(),
        spec_hash: spec.hash.clone(),
        entity: spec.entity.clone(),
        run_id,
        created_at: super::rfc3339(now),
        sides: spec.sides.iter().map(|s| s.name.clone()).collect(),
        direction: spec.describe_direction(spec.direction),
        counts,
        top_fields,
        inputs,
        plan: "plan.parquet".into(),
        spec_file: spec.file.display().to_string(),
    };
    let runs = ledger.runs(&spec.name, DRIFT_RUNS)?;
    // The Parquet plan and the review files are written side by side: each
    // is mostly one core's encoding work.
    let started = std::time::Instant::now();
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let (written, rendered) = std::thread::scope(|scope| {
        let (dir, summary) = (&dir, &summary);
        let plan = &plan;
        let writer = scope.spawn(move || {
            let r = write_plan(dir, plan, summary);
            tracing::debug!(seconds = started.elapsed().as_secs_f64(), "wrote the plan");
            r
        });
        let rendered = render_all(dir, summary, plan, &runs, spec.report_max_rows);
        tracing::debug!(
            seconds = started.elapsed().as_secs_f64(),
            "wrote the report"
        );
        (writer.join(), rendered)
    });
    written
        .map_err(|_| anyhow!("writing the plan to {} failed", dir.display()))?
        .with_context(|| format!("writing the plan to {}", dir.display()))?;
    rendered.with_context(|| format!("writing the report to {}", dir.display()))?;
    Ok((dir, summary))
}
