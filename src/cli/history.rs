//! `recon history SPEC`: past runs and their counts, oldest first.

use std::path::Path;

use super::Outcome;
use crate::engine::CLASSES;
use crate::ledger::Ledger;
use crate::spec::Spec;
use crate::ui::Progress;

pub fn run(spec: &Spec, home: &Path, limit: usize, ui: &Progress) -> anyhow::Result<Outcome> {
    let ledger = Ledger::open(home)?;
    let runs = ledger.runs(&spec.name, limit)?;
    if runs.is_empty() {
        ui.say(format!(
            "no runs of `{}` yet under {}",
            spec.name,
            home.display()
        ));
        return Ok(Outcome::InSync);
    }
    let mut header = vec![
        "run".to_string(),
        "started (UTC)".into(),
        "command".into(),
        "status".into(),
    ];
    header.extend(CLASSES.iter().map(|c| c.to_string()));
    header.push("applied".into());
    let mut rows = vec![header];
    for r in &runs {
        let mut row = vec![
            r.id.to_string(),
            r.started_at.replace('T', " ").replace('Z', ""),
            r.command.clone(),
            r.status.clone(),
        ];
        for c in CLASSES {
            row.push(match r.counts.get(c) {
                Some(v) if r.command == "plan" => v.to_string(),
                _ => "-".into(),
            });
        }
        row.push(if r.applied { "yes".into() } else { "no".into() });
        rows.push(row);
    }
    let widths: Vec<usize> = (0..rows[0].len())
        .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    for r in rows {
        let line: Vec<String> = r
            .iter()
            .enumerate()
            .map(|(i, c)| {
                // Numbers right-aligned, words left-aligned.
                if i >= 4 {
                    format!("{c:>w$}", w = widths[i])
                } else {
                    format!("{c:<w$}", w = widths[i])
                }
            })
            .collect();
        ui.say(line.join("  ").trim_end());
    }
    Ok(Outcome::InSync)
}
