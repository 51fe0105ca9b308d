//! `recon pull SPEC`: snapshot both sides.

use std::path::Path;

use anyhow::Context;

use crate::connect::Cursor;
use crate::ledger::Ledger;
use crate::snapshot::{PullOptions, PullOutcome, pull_side};
use crate::spec::{SideIx, Spec};
use crate::ui::Progress;

pub fn run(
    spec: &Spec,
    home: &Path,
    full: bool,
    ui: &Progress,
) -> anyhow::Result<Vec<PullOutcome>> {
    let ledger = Ledger::open(home)?;
    let now = chrono::Utc::now();
    let run_id = ledger.start_run(&spec.name, "pull", &super::rfc3339(now))?;
    let result = pull_spec(spec, home, now, full, &ledger, ui);
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

/// Pull both sides of `spec` with the timestamp `now`; `full` ignores the
/// stored cursors.
pub fn pull_spec(
    spec: &Spec,
    home: &Path,
    now: chrono::DateTime<chrono::Utc>,
    full: bool,
    ledger: &Ledger,
    ui: &Progress,
) -> anyhow::Result<Vec<PullOutcome>> {
    let mut outs = Vec::new();
    for side in SideIx::both() {
        let name = &spec.side(side).name;
        let since = if full {
            None
        } else {
            ledger
                .cursor(&spec.name, name)?
                .as_deref()
                .and_then(Cursor::parse)
        };
        let opts = PullOptions {
            stamp: super::stamp(now),
            pulled_at: super::rfc3339(now),
            since,
            token_store: crate::spec::token_store(spec.side(side), home),
        };
        let out = pull_side(spec, side, home, &opts, ui)
            .with_context(|| format!("pulling side `{name}` of spec `{}`", spec.name))?;
        if let Some(c) = out.cursor {
            ledger.set_cursor(
                &spec.name,
                name,
                &c.to_text(),
                &super::rfc3339(chrono::Utc::now()),
            )?;
        }
        match out.mode {
            "incremental" => ui.say(format!(
                "pulled {name} (incremental): {} changed, {} records in all -> {}",
                out.read,
                out.rows,
                out.path.display()
            )),
            _ => ui.say(format!(
                "pulled {name}: {} records -> {}",
                out.rows,
                out.path.display()
            )),
        }
        if out.deleted_upstream > 0 {
            ui.say(format!(
                "  {} record(s) of the last snapshot are gone upstream",
                out.deleted_upstream
            ));
        }
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
