//! `recon pull SPEC`: snapshot both sides.

use std::path::Path;

use anyhow::Context;

use crate::ledger::Ledger;
use crate::snapshot::{PullOutcome, pull_side};
use crate::spec::{SideIx, Spec};
use crate::ui::Progress;

pub fn run(spec: &Spec, home: &Path, ui: &Progress) -> anyhow::Result<Vec<PullOutcome>> {
    let ledger = Ledger::open(home)?;
    let now = chrono::Utc::now();
    let run_id = ledger.start_run(&spec.name, "pull", &super::rfc3339(now))?;
    let result = pull_spec(spec, home, now, ui);
    let (status, snaps, msg, counts) = match &result {
        Ok(outs) => {
            let mut counts = serde_json::Map::new();
            for o in outs {
                counts.insert(format!("{}_rows", o.side), o.rows.into());
                counts.insert(format!("{}_rejects", o.side), o.rejects.into());
            }
            (
                "ok",
                outs.iter().map(|o| o.path.display().to_string()).collect(),
                None,
                counts,
            )
        }
        Err(e) => (
            "failed",
            vec![],
            Some(format!("{e:#}")),
            serde_json::Map::new(),
        ),
    };
    ledger.finish_run(
        run_id,
        &super::rfc3339(chrono::Utc::now()),
        status,
        &snaps,
        &counts,
        None,
        msg.as_deref(),
    )?;
    result
}

/// Pull both sides of `spec` with the timestamp `now`.
pub fn pull_spec(
    spec: &Spec,
    home: &Path,
    now: chrono::DateTime<chrono::Utc>,
    ui: &Progress,
) -> anyhow::Result<Vec<PullOutcome>> {
    let stamp = super::stamp(now);
    let pulled_at = super::rfc3339(now);
    let mut outs = Vec::new();
    for side in SideIx::both() {
        let name = &spec.side(side).name;
        let out = pull_side(spec, side, home, &stamp, &pulled_at, ui)
            .with_context(|| format!("pulling side `{name}` of spec `{}`", spec.name))?;
        ui.say(format!(
            "pulled {name}: {} records -> {}",
            out.rows,
            out.path.display()
        ));
        if let Some(r) = &out.rejects_path {
            ui.say(format!(
                "  {} record{} rejected -> {}",
                out.rejects,
                if out.rejects == 1 { "" } else { "s" },
                r.display()
            ));
        }
        outs.push(out);
    }
    Ok(outs)
}
