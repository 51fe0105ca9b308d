//! Reports: the plan rendered for people (Markdown) and machines (JSON
//! summary, the Parquet plan itself). Their schemas are in `docs/plan.md`.

mod apply;
mod changes;
mod html;
mod parquet;
mod summary;

use std::path::{Path, PathBuf};

use polars::prelude::DataFrame;

pub use apply::write_apply_report;
pub use html::{DEFAULT_MAX_ROWS, DRIFT_RUNS, escape, render_csv, render_html};
pub use summary::{Summary, SummaryInput, read_plan, write_atomic, write_atomic_parts, write_plan};

use crate::ledger::Run;

/// Write the plan's review files into its folder: `report.html` (at most
/// `max_rows` rows per class, `runs` for the drift chart) and `changes.csv`.
/// Returns the paths written.
pub fn render_all(
    dir: &Path,
    summary: &Summary,
    plan: &DataFrame,
    runs: &[Run],
    max_rows: usize,
) -> std::io::Result<Vec<PathBuf>> {
    let plan_path = dir.join(&summary.plan);
    let html =
        render_html(summary, plan, runs, max_rows, &plan_path).map_err(std::io::Error::other)?;
    let report = dir.join("report.html");
    write_atomic(&report, html.as_bytes())?;
    tracing::debug!("wrote report.html");
    let csv = render_csv(plan).map_err(std::io::Error::other)?;
    let changes = dir.join("changes.csv");
    let parts: Vec<&[u8]> = csv.iter().map(Vec::as_slice).collect();
    write_atomic_parts(&changes, &parts)?;
    Ok(vec![report, changes])
}

/// Make a value safe for a CSV that a spreadsheet will open: a leading `=`,
/// `+`, `-`, `@`, tab or carriage return would start a formula, so such
/// values get a leading apostrophe.
pub fn csv_safe(value: &str) -> std::borrow::Cow<'_, str> {
    match value.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{value}").into(),
        _ => value.into(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn formula_prefixes_are_neutralized() {
        assert_eq!(super::csv_safe("=HYPERLINK(\"x\")"), "'=HYPERLINK(\"x\")");
        assert_eq!(super::csv_safe("+39 02"), "'+39 02");
        assert_eq!(super::csv_safe("-5"), "'-5");
        assert_eq!(super::csv_safe("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(super::csv_safe("Rossi"), "Rossi");
    }
}
