//! The apply report: the outcome of every row, with the vendor's message
//! where a write failed, as `apply.json`, `apply.md` and `apply.html` in the
//! plan folder.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::{escape, write_atomic};
use crate::apply::Report;

/// Write the three apply reports into `dir`; returns their paths.
pub fn write_apply_report(dir: &Path, report: &Report) -> std::io::Result<Vec<PathBuf>> {
    let json = dir.join("apply.json");
    write_atomic(&json, serde_json::to_string_pretty(report)?.as_bytes())?;
    let md = dir.join("apply.md");
    write_atomic(&md, markdown(report).as_bytes())?;
    let html = dir.join("apply.html");
    write_atomic(&html, render(report).as_bytes())?;
    Ok(vec![json, md, html])
}

fn counts_line(report: &Report) -> String {
    report
        .counts
        .iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn markdown(report: &Report) -> String {
    let mut out = format!(
        "## recon apply `{}`\n\n{}\n",
        report.spec,
        counts_line(report)
    );
    let problems: Vec<_> = report.rows.iter().filter(|r| r.state != "done").collect();
    if !problems.is_empty() {
        out.push_str("\n| row | record | state | message |\n|--:|---|---|---|\n");
        for r in problems.iter().take(50) {
            let record = r.left_id.clone().or(r.right_id.clone()).unwrap_or_default();
            let msg = r
                .message
                .clone()
                .unwrap_or_default()
                .replace('|', "\\|")
                .replace('\n', " ");
            let _ = writeln!(out, "| {} | {} | {} | {} |", r.row, record, r.state, msg);
        }
        if problems.len() > 50 {
            let _ = writeln!(out, "\n{} more in apply.json", problems.len() - 50);
        }
    }
    out
}

const STYLE: &str = "body{font:15px/1.45 system-ui,sans-serif;margin:2rem auto;max-width:72rem;color:#1d2733;padding:0 1rem}\
h1{font-size:1.5rem}.cards{display:flex;gap:.75rem;flex-wrap:wrap;margin:1rem 0}\
.card{border:1px solid #d6dde5;border-radius:8px;padding:.6rem 1rem;min-width:7rem}\
.card b{display:block;font-size:1.6rem;font-variant-numeric:tabular-nums}\
.done b{color:#1b7f4b}.failed b,.stale b{color:#b3261e}\
table{border-collapse:collapse;width:100%}th,td{border-bottom:1px solid #e4e9ef;padding:.35rem .5rem;text-align:left;vertical-align:top}\
th{background:#f4f6f9}td.num{text-align:right;font-variant-numeric:tabular-nums}\
.state-failed,.state-stale{color:#b3261e;font-weight:600}.state-done{color:#1b7f4b}";

fn render(report: &Report) -> String {
    let mut out = String::with_capacity(4096 + report.rows.len() * 160);
    let _ = write!(
        out,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>recon apply: {spec}</title><style>{STYLE}</style></head><body>\
         <h1>What was written for <code>{spec}</code></h1><p>Plan: <code>{plan}</code></p><div class=\"cards\">",
        spec = escape(&report.spec),
        plan = escape(&report.plan),
    );
    for (state, n) in &report.counts {
        let _ = write!(
            out,
            "<div class=\"card {s}\"><b>{n}</b>{s}</div>",
            s = escape(state)
        );
    }
    out.push_str("</div><table><thead><tr><th>Row</th><th>Action</th><th>Record</th><th>Written to</th><th>Outcome</th><th>New id</th><th>Message</th></tr></thead><tbody>");
    // Problems first: they are what a reader came for.
    let mut rows: Vec<_> = report.rows.iter().collect();
    rows.sort_by_key(|r| (r.state == "done", r.row));
    for r in rows {
        let record = r.left_id.clone().or(r.right_id.clone()).unwrap_or_default();
        let _ = write!(
            out,
            "<tr><td class=\"num\">{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"state-{st}\">{st}</td><td>{}</td><td>{}</td></tr>",
            r.row,
            escape(&r.class),
            escape(&record),
            escape(r.receiver.as_deref().unwrap_or("")),
            escape(r.target_id.as_deref().unwrap_or("")),
            escape(r.message.as_deref().unwrap_or("")),
            st = escape(&r.state),
        );
    }
    out.push_str("</tbody></table></body></html>\n");
    out
}
