//! `report.html`, the review report: one self-contained file (inline CSS and
//! script, nothing fetched) that a person opens from disk to decide whether a
//! plan may be applied; and `changes.csv`, the same changes one field a line
//! for a spreadsheet.
//!
//! Every value that came from a system passes through [`escape`] before it
//! reaches the page. The page lists at most `max_rows` rows per class so that
//! a plan of any size opens quickly; the Parquet plan holds them all.

use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use polars::prelude::*;
use similar::{ChangeTag, TextDiff};

use super::changes::{ChangeLists, Entry};
use super::{Summary, csv_safe};
use crate::engine::CLASSES;
use crate::ledger::Run;

/// Rows listed per class when neither the spec nor the command says.
pub const DEFAULT_MAX_ROWS: usize = 500;

/// A change whose value is longer than this (in characters) is shown as a
/// word-level diff instead of two full values side by side.
const LONG_TEXT: usize = 80;

/// Characters of one value shown on the page; a 1 MB description would
/// otherwise make the page itself 1 MB per row.
const SHOW_CHARS: usize = 1_000;

/// Characters of each side fed to the word diff; the diff's cost grows with
/// the product of the lengths.
const DIFF_CHARS: usize = 6_000;

/// Equal stretches longer than this inside a diff are shortened to their
/// ends, so the eye lands on what changed.
const DIFF_CONTEXT: usize = 160;

/// Classes drawn in the drift chart: the ones that mean work or a problem.
const DRIFT_CLASSES: [&str; 6] = [
    "create",
    "update",
    "conflict",
    "invalid",
    "duplicate",
    "orphan",
];

/// Plan runs shown in the drift chart.
pub const DRIFT_RUNS: usize = 30;

/// Escape text for HTML content and attribute values. Control characters
/// other than line breaks and tabs become U+FFFD: they cannot be shown and
/// some are not allowed in HTML at all.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 16);
    escape_into(&mut out, s);
    out
}

fn escape_into(out: &mut String, s: &str) {
    let mut start = 0;
    for (i, c) in s.char_indices() {
        let rep = match c {
            '&' => "&amp;",
            '<' => "&lt;",
            '>' => "&gt;",
            '"' => "&quot;",
            '\'' => "&#39;",
            '\n' | '\r' | '\t' => continue,
            c if c.is_control() => "\u{fffd}",
            _ => continue,
        };
        out.push_str(&s[start..i]);
        out.push_str(rep);
        start = i + c.len_utf8();
    }
    out.push_str(&s[start..]);
}

/// Explicit direction controls: inside a value they can make text read
/// differently from what is stored (`txt.exe` shown as `exe.txt`).
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// Like [`escape_into`], for a value shown to a reviewer: direction controls
/// are shown as a visible mark instead of silently reordering the text.
fn escape_value(out: &mut String, s: &str) {
    if !s.chars().any(is_bidi_control) {
        escape_into(out, s);
        return;
    }
    let mut start = 0;
    for (i, c) in s.char_indices().filter(|(_, c)| is_bidi_control(*c)) {
        escape_into(out, &s[start..i]);
        let _ = write!(
            out,
            "<span class=\"ctl\" title=\"invisible text direction control\">U+{:04X}</span>",
            c as u32
        );
        start = i + c.len_utf8();
    }
    escape_into(out, &s[start..]);
}

/// The first `n` characters of `s`, and whether anything was cut.
fn clip(s: &str, n: usize) -> (&str, bool) {
    match s.char_indices().nth(n) {
        Some((i, _)) => (&s[..i], true),
        None => (s, false),
    }
}

/// `1234567` as `1,234,567`.
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A chart axis label: `950`, `5,000`, `50k`, `1.5M`.
fn compact(n: u64) -> String {
    let short = |v: f64, unit: &str| {
        let t = format!("{v:.1}");
        format!("{}{unit}", t.strip_suffix(".0").unwrap_or(&t))
    };
    match n {
        0..10_000 => thousands(n),
        10_000..1_000_000 => short(n as f64 / 1e3, "k"),
        _ => short(n as f64 / 1e6, "M"),
    }
}

/// Whether a value reads as a plain number (right-aligned on the page).
fn is_number(s: &str) -> bool {
    let t = s.trim();
    let t = t.strip_prefix(['-', '+']).unwrap_or(t);
    !t.is_empty()
        && t.len() < 40
        && t.bytes().any(|b| b.is_ascii_digit())
        && t.bytes()
            .all(|b| b.is_ascii_digit() || b == b'.' || b == b',')
        && t.bytes().filter(|&b| b == b'.').count() <= 1
}

/// `2026-11-23T03:45:12Z` as `2026-11-23 03:45:12 UTC`.
fn human_time(t: &str) -> String {
    match t.strip_suffix('Z') {
        Some(rest) => format!("{} UTC", rest.replacen('T', " ", 1)),
        None => t.replacen('T', " ", 1),
    }
}

/// One field of one plan row.
struct Change {
    field: String,
    before: Option<String>,
    after: Option<String>,
}

/// One plan row as the page shows it.
struct Row {
    key: Option<String>,
    key_value: Option<String>,
    left_id: Option<String>,
    right_id: Option<String>,
    receiver: Option<String>,
    reason: Option<String>,
    payload: Option<String>,
    changes: Vec<Change>,
}

fn strings(df: &DataFrame, name: &str) -> PolarsResult<Vec<Option<String>>> {
    let c = df.column(name)?.cast(&DataType::String)?;
    Ok(c.str()?.iter().map(|v| v.map(str::to_string)).collect())
}

/// The first `max` rows of a class, with their changes.
fn class_rows(plan: &DataFrame, class: &str, max: usize) -> PolarsResult<Vec<Row>> {
    // The rows are found by their class alone, then only they are taken:
    // filtering the whole plan would copy every change list of the class.
    let at: Vec<IdxSize> = plan
        .column("class")?
        .str()?
        .iter()
        .enumerate()
        .filter(|(_, c)| *c == Some(class))
        .take(max)
        .map(|(i, _)| i as IdxSize)
        .collect();
    // Column by column on this thread: the plan file is being encoded on
    // Polars' pool meanwhile, and a parallel take would wait for it.
    let at = IdxCa::from_vec("at".into(), at);
    let head = DataFrame::new_infer_height(
        plan.columns()
            .iter()
            .map(|c| c.take(&at))
            .collect::<PolarsResult<Vec<_>>>()?,
    )?;
    let mut rows: Vec<Row> = {
        let cols: Vec<Vec<Option<String>>> = [
            "key",
            "key_value",
            "left_id",
            "right_id",
            "receiver",
            "reason",
            "payload",
        ]
        .iter()
        .map(|n| strings(&head, n))
        .collect::<PolarsResult<_>>()?;
        let mut its: Vec<_> = cols.into_iter().map(Vec::into_iter).collect();
        (0..head.height())
            .map(|_| {
                let mut next = |i: usize| its[i].next().flatten();
                Row {
                    key: next(0),
                    key_value: next(1),
                    left_id: next(2),
                    right_id: next(3),
                    receiver: next(4),
                    reason: next(5),
                    payload: next(6),
                    changes: Vec::new(),
                }
            })
            .collect()
    };
    let changes = head.column("changes")?.list()?.rechunk();
    let changes = ChangeLists::new(&changes)?;
    for (i, row) in rows.iter_mut().enumerate() {
        row.changes = changes
            .row(i)
            .map(|(field, before, after)| Change {
                field: field.unwrap_or_default().to_string(),
                before: before.map(str::to_string),
                after: after.map(str::to_string),
            })
            .collect();
    }
    Ok(rows)
}

/// Plain words for one class.
struct Words {
    title: String,
    hint: String,
    explain: String,
}

fn words(class: &str, receiver: &str, sender: &str) -> Words {
    let (title, hint, explain) = match class {
        "create" => (
            "To create".to_string(),
            format!("Will be created in {receiver}"),
            format!(
                "Records in {sender} that {receiver} does not have yet. Each one is listed with the values that will be written."
            ),
        ),
        "update" => (
            "To update".into(),
            format!("Changed fields in {receiver}"),
            format!(
                "Records found on both sides where {receiver} holds a different value. For each changed field: the value {receiver} has now, and the value it will get."
            ),
        ),
        "conflict" => (
            "Conflicts".into(),
            "A person decides".into(),
            "Records found on both sides that differ, with no rule saying which side is right. Nothing is written for them until someone decides.".into(),
        ),
        "invalid" => (
            "Invalid".into(),
            format!("{receiver} would reject them"),
            "Rows that cannot be written as they are. The problem is named on each row; fix it at the source and run again.".into(),
        ),
        "duplicate" => (
            "Duplicates".into(),
            "Same key on several records".into(),
            "A key value found on more than one record of a side, so recon cannot tell which record is meant. These records are not matched or written until the duplicates are resolved.".into(),
        ),
        "orphan" => (
            format!("Only in {receiver}"),
            "Not written anywhere".into(),
            format!(
                "Records in {receiver} with no partner in {sender}. Nothing is deleted; they are listed so that someone can check them."
            ),
        ),
        "skipped" => (
            "Skipped".into(),
            "Left out by a filter".into(),
            "Records that a filter in the spec leaves out; the rule is named on each row.".into(),
        ),
        _ => (
            "In sync".into(),
            "Nothing to write".into(),
            "Records found on both sides that already agree.".into(),
        ),
    };
    Words {
        title,
        hint,
        explain,
    }
}

/// Every side name that receives a create or an update in this plan, or the
/// receiving side named by the direction when the plan writes nothing.
fn receivers(plan: &DataFrame, summary: &Summary) -> PolarsResult<Vec<String>> {
    // Read in place: a lazy query would wait for Polars' pool, busy
    // encoding the plan file meanwhile.
    let mut out: Vec<String> = plan
        .column("receiver")?
        .str()?
        .iter()
        .flatten()
        .collect::<std::collections::BTreeSet<&str>>()
        .into_iter()
        .map(str::to_string)
        .collect();
    if out.is_empty()
        && let Some((_, to)) = summary.direction.split_once(" -> ")
    {
        out.push(to.trim().to_string());
    }
    Ok(out)
}

fn join_names(names: &[String]) -> String {
    match names {
        [] => "the other side".into(),
        [one] => one.clone(),
        more => format!(
            "{} and {}",
            more[..more.len() - 1].join(", "),
            more[more.len() - 1]
        ),
    }
}

/// One plan run in the drift chart.
struct Point {
    label: String,
    counts: [u64; DRIFT_CLASSES.len()],
    current: bool,
}

fn drift_points(summary: &Summary, runs: &[Run]) -> Vec<Point> {
    let mut points: Vec<Point> = runs
        .iter()
        .filter(|r| r.command == "plan" && r.status == "ok" && !r.counts.is_empty())
        .map(|r| Point {
            label: human_time(&r.started_at),
            counts: DRIFT_CLASSES.map(|c| r.counts.get(c).and_then(|v| v.as_u64()).unwrap_or(0)),
            current: r
                .plan_dir
                .as_deref()
                .and_then(|d| Path::new(d).file_name())
                .is_some_and(|n| n == summary.run_id.as_str()),
        })
        .collect();
    // While a plan is being written its own run is not finished yet: it is
    // drawn from the summary instead.
    if !points.iter().any(|p| p.current) {
        points.push(Point {
            label: human_time(&summary.created_at),
            counts: DRIFT_CLASSES.map(|c| summary.count(c)),
            current: true,
        });
    }
    let skip = points.len().saturating_sub(DRIFT_RUNS);
    points.drain(..skip);
    points
}

/// A round upper bound for the chart's scale whose half, where the middle
/// grid line is labelled, is a whole number: 2, 4, 6, 8 or 10 times a power
/// of ten.
fn nice_ceiling(n: u64) -> u64 {
    let mut step = 1u64;
    loop {
        for m in [2, 4, 6, 8, 10] {
            if step.saturating_mul(m) >= n {
                return step.saturating_mul(m);
            }
        }
        step = step.saturating_mul(10);
    }
}

/// Stacked bars of the work each recent plan found, as inline SVG.
fn drift_chart(out: &mut String, summary: &Summary, runs: &[Run]) {
    let points = drift_points(summary, runs);
    let (w, h) = (560.0_f64, 170.0_f64);
    let (left, right, top, bottom) = (40.0, 8.0, 10.0, 26.0);
    let plot_w = w - left - right;
    let plot_h = h - top - bottom;
    let max = points
        .iter()
        .map(|p| p.counts.iter().sum::<u64>())
        .max()
        .unwrap_or(0)
        .max(1);
    let scale = nice_ceiling(max) as f64;
    let slot = plot_w / points.len().max(8) as f64;
    let bar = (slot * 0.62).min(28.0);
    let _ = write!(
        out,
        "<svg class=\"drift\" viewBox=\"0 0 {w} {h}\" role=\"img\" aria-label=\"Rows needing work in each of the last {n} plans\">",
        n = points.len()
    );
    for frac in [0.0, 0.5, 1.0] {
        let y = top + plot_h * (1.0 - frac);
        let _ = write!(
            out,
            "<line class=\"grid\" x1=\"{left}\" y1=\"{y:.1}\" x2=\"{x2}\" y2=\"{y:.1}\"/><text class=\"axis\" x=\"{tx}\" y=\"{ty:.1}\" text-anchor=\"end\">{v}</text>",
            x2 = w - right,
            tx = left - 6.0,
            ty = y + 4.0,
            v = compact((scale * frac).round() as u64)
        );
    }
    let label_every = points.len().div_ceil(5).max(1);
    // Labels are `2026-11-23 03:45:12 UTC`: the time of day when every plan
    // is from the same day, else the day.
    let same_day = points
        .iter()
        .all(|p| p.label.get(..10) == points[0].label.get(..10));
    for (i, p) in points.iter().enumerate() {
        let x = left + slot * i as f64 + (slot - bar) / 2.0;
        let total: u64 = p.counts.iter().sum();
        out.push_str("<g");
        if p.current {
            out.push_str(" class=\"current\"");
        }
        out.push_str("><title>");
        escape_into(out, &p.label);
        if p.current {
            out.push_str(" (this plan)");
        }
        for (c, n) in DRIFT_CLASSES.iter().zip(p.counts) {
            let _ = write!(out, "\n{c}: {}", thousands(n));
        }
        out.push_str("</title>");
        let mut y = top + plot_h;
        for (c, n) in DRIFT_CLASSES.iter().zip(p.counts) {
            if n == 0 {
                continue;
            }
            let bh = plot_h * n as f64 / scale;
            y -= bh;
            let _ = write!(
                out,
                "<rect class=\"k-{c}\" x=\"{x:.1}\" y=\"{y:.1}\" width=\"{bar:.1}\" height=\"{bh:.1}\"/>"
            );
        }
        if total == 0 {
            let _ = write!(
                out,
                "<rect class=\"zero\" x=\"{x:.1}\" y=\"{y:.1}\" width=\"{bar:.1}\" height=\"1\"/>",
                y = top + plot_h - 1.0
            );
        }
        if p.current {
            let _ = write!(
                out,
                "<rect class=\"mark\" x=\"{mx:.1}\" y=\"{my:.1}\" width=\"{mw:.1}\" height=\"3\"/>",
                mx = x,
                my = top + plot_h + 3.0,
                mw = bar
            );
        }
        out.push_str("</g>");
        if i % label_every == 0 || i + 1 == points.len() {
            let short = if same_day {
                p.label.get(11..16)
            } else {
                p.label.get(5..10)
            }
            .unwrap_or(&p.label);
            let _ = write!(
                out,
                "<text class=\"axis\" x=\"{cx:.1}\" y=\"{cy:.1}\" text-anchor=\"middle\">",
                cx = x + bar / 2.0,
                cy = h - 8.0
            );
            escape_into(out, short);
            out.push_str("</text>");
        }
    }
    out.push_str("</svg>");
}

/// A value from a system: escaped, isolated for right-to-left text, and cut
/// for display when very long.
fn value(out: &mut String, v: Option<&str>) {
    match v {
        None => out.push_str("<span class=\"none\">empty</span>"),
        Some("") => out.push_str("<span class=\"none\">blank</span>"),
        Some(s) => {
            let (shown, cut) = clip(s, SHOW_CHARS);
            out.push_str(if is_number(s) {
                "<bdi class=\"v n\">"
            } else {
                "<bdi class=\"v\">"
            });
            escape_value(out, shown);
            out.push_str("</bdi>");
            if cut {
                cut_note(out, s);
            }
        }
    }
}

fn cut_note(out: &mut String, full: &str) {
    let _ = write!(
        out,
        "<span class=\"cutnote\">… shortened for display: {} characters in full, the first {} shown; the whole value is in the Parquet plan.</span>",
        thousands(full.chars().count() as u64),
        thousands(SHOW_CHARS as u64)
    );
}

/// Where two texts stop agreeing: the byte length of their common prefix and
/// suffix, moved back to whitespace so that no word is split.
fn common_ends(before: &str, after: &str) -> (usize, usize) {
    let mut prefix = before
        .char_indices()
        .zip(after.chars())
        .find(|((_, x), y)| x != y)
        .map(|((i, _), _)| i)
        .unwrap_or(before.len().min(after.len()));
    if !(prefix == before.len() && prefix == after.len()) {
        prefix = before[..prefix]
            .rfind(char::is_whitespace)
            .map(|i| i + before[i..].chars().next().map_or(1, char::len_utf8))
            .unwrap_or(0);
    }
    let (b, a) = (&before[prefix..], &after[prefix..]);
    let mut suffix = b
        .char_indices()
        .rev()
        .zip(a.chars().rev())
        .find(|((_, x), y)| x != y)
        .map(|((i, x), _)| b.len() - i - x.len_utf8())
        .unwrap_or(b.len().min(a.len()));
    let tail = &b[b.len() - suffix..];
    suffix = tail
        .find(char::is_whitespace)
        .map(|i| tail.len() - i)
        .unwrap_or(0);
    (prefix, suffix)
}

/// Text both sides share, shortened to the words next to a change when long.
fn equal_run(out: &mut String, text: &str, keep_head: bool, keep_tail: bool) {
    let n = text.chars().count();
    if n <= DIFF_CONTEXT * 2 {
        escape_value(out, text);
        return;
    }
    if keep_head {
        let end = text
            .char_indices()
            .nth(DIFF_CONTEXT)
            .map_or(text.len(), |(i, _)| i);
        escape_value(out, &text[..end]);
    }
    out.push_str("<span class=\"gap\"> … </span>");
    if keep_tail {
        let start = text
            .char_indices()
            .rev()
            .nth(DIFF_CONTEXT - 1)
            .map_or(0, |(i, _)| i);
        escape_value(out, &text[start..]);
    }
}

/// A word-level diff of two long texts with `<del>` and `<ins>`. The shared
/// beginning and end are set aside first, so that a change at the end of a
/// 1 MB description is found without diffing the whole of it.
fn word_diff(out: &mut String, before: &str, after: &str) {
    let (p, s) = common_ends(before, after);
    let prefix = &before[..p];
    let suffix = &before[before.len() - s..];
    let (b, b_cut) = clip(&before[p..before.len() - s], DIFF_CHARS);
    let (a, a_cut) = clip(&after[p..after.len() - s], DIFF_CHARS);
    let diff = TextDiff::configure()
        .timeout(Duration::from_millis(200))
        .diff_words(b, a);
    // Merge the word tokens into runs of one tag.
    let mut runs: Vec<(ChangeTag, String)> = Vec::new();
    for ch in diff.iter_all_changes() {
        match runs.last_mut() {
            Some((tag, text)) if *tag == ch.tag() => text.push_str(ch.value()),
            _ => runs.push((ch.tag(), ch.value().to_string())),
        }
    }
    let last = runs.len().saturating_sub(1);
    out.push_str("<div class=\"diff\"><bdi>");
    if !prefix.is_empty() {
        equal_run(out, prefix, false, true);
    }
    for (i, (tag, text)) in runs.iter().enumerate() {
        match tag {
            ChangeTag::Equal => equal_run(
                out,
                text,
                i > 0 || !prefix.is_empty(),
                i < last || !suffix.is_empty(),
            ),
            ChangeTag::Delete => {
                out.push_str("<del>");
                escape_value(out, text);
                out.push_str("</del>");
            }
            ChangeTag::Insert => {
                out.push_str("<ins>");
                escape_value(out, text);
                out.push_str("</ins>");
            }
        }
    }
    if !suffix.is_empty() {
        equal_run(out, suffix, true, false);
    }
    out.push_str("</bdi></div>");
    if b_cut || a_cut {
        let _ = write!(
            out,
            "<span class=\"cutnote\">… the changed part is long: its first {} characters are compared here; the whole value is in the Parquet plan.</span>",
            thousands(DIFF_CHARS as u64)
        );
    }
}

fn is_long(v: Option<&str>) -> bool {
    v.is_some_and(|s| s.chars().nth(LONG_TEXT).is_some())
}

/// The changes of one row as a grid of field, before and after.
fn changes(out: &mut String, row: &Row, arrow: &str, only_after: bool) {
    if row.changes.is_empty() {
        return;
    }
    if only_after {
        out.push_str("<dl class=\"kv\">");
        for c in &row.changes {
            let bad = names_field(row.reason.as_deref(), &c.field);
            let wide = is_long(c.after.as_deref());
            out.push_str(match (bad, wide) {
                (true, true) => "<div class=\"bad wide\"><dt>",
                (true, false) => "<div class=\"bad\"><dt>",
                (false, true) => "<div class=\"wide\"><dt>",
                (false, false) => "<div><dt>",
            });
            escape_into(out, &c.field);
            out.push_str("</dt><dd>");
            value(out, c.after.as_deref());
            out.push_str("</dd></div>");
        }
        out.push_str("</dl>");
        return;
    }
    out.push_str("<div class=\"chg\">");
    for c in &row.changes {
        out.push_str("<span class=\"f\">");
        escape_into(out, &c.field);
        out.push_str("</span>");
        if (is_long(c.before.as_deref()) || is_long(c.after.as_deref()))
            && c.before.is_some()
            && c.after.is_some()
        {
            out.push_str("<span class=\"wide\">");
            word_diff(
                out,
                c.before.as_deref().unwrap_or_default(),
                c.after.as_deref().unwrap_or_default(),
            );
            out.push_str("</span>");
        } else {
            out.push_str("<span class=\"b\">");
            value(out, c.before.as_deref());
            let _ = write!(
                out,
                "</span><span class=\"arrow\">{arrow}</span><span class=\"a\">"
            );
            value(out, c.after.as_deref());
            out.push_str("</span>");
        }
    }
    out.push_str("</div>");
}

/// Whether an invalid row's reason is about this field (the engine names
/// fields as `` `field` `` or `field value ...`).
fn names_field(reason: Option<&str>, field: &str) -> bool {
    reason.is_some_and(|r| {
        r.split("; ").any(|part| {
            part.contains(&format!("`{field}`"))
                || part
                    .strip_prefix(field)
                    .is_some_and(|rest| rest.starts_with(" value "))
        })
    })
}

fn payload(out: &mut String, row: &Row) {
    if let Some(p) = &row.payload {
        out.push_str("<details class=\"raw\"><summary>Data to be written (JSON)</summary><pre>");
        let (shown, cut) = clip(p, SHOW_CHARS);
        escape_value(out, shown);
        out.push_str("</pre>");
        if cut {
            cut_note(out, p);
        }
        out.push_str("</details>");
    }
}

/// A key value as people read it: the parts of a composite key joined by
/// `+` instead of the unit separator the engine joins them with.
fn key_text(v: &str) -> String {
    v.replace('\u{1f}', " + ")
}

fn matched_on(out: &mut String, row: &Row) {
    match (&row.key, &row.key_value) {
        (Some(k), _) if k == "link" => out.push_str("<span class=\"key\">known pair</span>"),
        (Some(k), Some(v)) => {
            out.push_str("<span class=\"key\">");
            escape_into(out, k);
            out.push_str("</span> ");
            value(out, Some(&key_text(v)));
        }
        (Some(k), None) => {
            out.push_str("<span class=\"key\">");
            escape_into(out, k);
            out.push_str("</span>");
        }
        _ => out.push_str("<span class=\"none\">—</span>"),
    }
}

fn id_cell(out: &mut String, id: Option<&str>) {
    out.push_str("<td class=\"id\">");
    match id {
        Some(id) => value(out, Some(id)),
        None => out.push_str("<span class=\"none\">—</span>"),
    }
    out.push_str("</td>");
}

fn th(out: &mut String, label: &str, class: &str) {
    if class.is_empty() {
        out.push_str("<th>");
    } else {
        let _ = write!(out, "<th class=\"{class}\">");
    }
    out.push_str("<button type=\"button\" class=\"sort\">");
    escape_into(out, label);
    out.push_str("</button></th>");
}

/// Everything one class section needs to know about the plan.
struct Ctx<'a> {
    sides: [&'a str; 2],
    receiver: &'a str,
    plan_path: &'a str,
}

fn section(out: &mut String, cx: &Ctx, class: &str, total: u64, rows: &[Row], w: &Words) {
    let open = class != "unchanged";
    if open {
        let _ = write!(
            out,
            "<section class=\"cls\" id=\"sec-{class}\" data-class=\"{class}\">"
        );
    } else {
        let _ = write!(
            out,
            "<details class=\"cls\" id=\"sec-{class}\" data-class=\"{class}\"><summary>"
        );
    }
    let _ = write!(
        out,
        "<h2><span class=\"dot k-{class}\"></span>{} <span class=\"count\">{}</span></h2>",
        escape(&w.title),
        thousands(total)
    );
    if !open {
        out.push_str("</summary>");
    }
    let _ = write!(
        out,
        "<p class=\"explain\">{}</p><p class=\"shown\" aria-live=\"polite\"></p>",
        escape(&w.explain)
    );
    if (rows.len() as u64) < total {
        let _ = write!(
            out,
            "<p class=\"cut\"><strong>Showing the first {} of {} rows.</strong> All {} are in the Parquet plan <code>{}</code> and in <code>changes.csv</code> beside it.</p>",
            thousands(rows.len() as u64),
            thousands(total),
            thousands(total),
            escape(cx.plan_path)
        );
    }
    let has_left = rows.iter().any(|r| r.left_id.is_some());
    let has_right = rows.iter().any(|r| r.right_id.is_some());
    let show_key = matches!(class, "update" | "conflict" | "unchanged");
    let detail = match class {
        "create" => Some("Values to write".to_string()),
        "update" => Some(format!(
            "Changed fields: now in {} → will become",
            cx.receiver
        )),
        "conflict" => Some(format!(
            "Differing fields: {} ≠ {}",
            cx.sides[0], cx.sides[1]
        )),
        "invalid" => Some("Values it would write".into()),
        _ => None,
    };
    let reason = match class {
        "invalid" => Some("Problem"),
        "duplicate" => Some("Where the value is found"),
        "orphan" => Some("Where"),
        "skipped" => Some("Rule"),
        _ => None,
    };
    out.push_str("<div class=\"scroll\"><table class=\"rows\"><thead><tr>");
    if has_left {
        th(out, &format!("{} id", cx.sides[0]), "");
    }
    if has_right {
        th(out, &format!("{} id", cx.sides[1]), "");
    }
    if show_key {
        th(out, "Matched on", "");
    }
    if let Some(r) = reason {
        th(out, r, "");
    }
    if let Some(d) = &detail {
        th(out, d, "detail");
    }
    out.push_str("</tr></thead>");
    let ncols = has_left as usize
        + has_right as usize
        + show_key as usize
        + reason.is_some() as usize
        + detail.is_some() as usize;
    let mut group: Option<(&Option<String>, &Option<String>)> = None;
    if class != "duplicate" {
        out.push_str("<tbody>");
    }
    for (i, row) in rows.iter().enumerate() {
        if class == "duplicate" && group != Some((&row.key, &row.key_value)) {
            if group.is_some() {
                out.push_str("</tbody>");
            }
            group = Some((&row.key, &row.key_value));
            let n = rows[i..]
                .iter()
                .take_while(|r| r.key == row.key && r.key_value == row.key_value)
                .count();
            // The row cap may split the last group.
            let partial = i + n == rows.len() && (rows.len() as u64) < total;
            let _ = write!(
                out,
                "<tbody class=\"group\"><tr class=\"ghead\"><th colspan=\"{ncols}\" scope=\"rowgroup\"><span class=\"key\">{}</span> ",
                escape(row.key.as_deref().unwrap_or("key"))
            );
            value(out, Some(&key_text(row.key_value.as_deref().unwrap_or(""))));
            let _ = write!(
                out,
                " <span class=\"muted\">{} {n} records{}</span></th></tr>",
                if partial { "listed on" } else { "on" },
                if partial {
                    " here, more in the plan"
                } else {
                    ""
                }
            );
        }
        out.push_str("<tr data-row>");
        if has_left {
            id_cell(out, row.left_id.as_deref());
        }
        if has_right {
            id_cell(out, row.right_id.as_deref());
        }
        if show_key {
            out.push_str("<td>");
            matched_on(out, row);
            out.push_str("</td>");
        }
        if reason.is_some() {
            out.push_str("<td class=\"reason\">");
            value(out, row.reason.as_deref());
            out.push_str("</td>");
        }
        if detail.is_some() {
            out.push_str("<td class=\"detail\">");
            // A row that writes into an empty record (a create, or an
            // invalid one) has no "before": its values are listed alone.
            let fresh = row.changes.iter().all(|c| c.before.is_none());
            match class {
                "conflict" => changes(out, row, "≠", false),
                _ => changes(out, row, "→", fresh),
            }
            if class == "update"
                && let Some(r) = &row.receiver
                && r != cx.receiver
            {
                out.push_str("<span class=\"muted\">written to ");
                escape_into(out, r);
                out.push_str("</span>");
            }
            payload(out, row);
            out.push_str("</td>");
        }
        out.push_str("</tr>");
    }
    out.push_str("</tbody></table></div>");
    if (rows.len() as u64) < total {
        let _ = write!(
            out,
            "<p class=\"cut-end\">{} more rows are not listed here; see <code>{}</code>.</p>",
            thousands(total - rows.len() as u64),
            escape(cx.plan_path)
        );
    }
    out.push_str(if open { "</section>" } else { "</details>" });
}

/// Render `report.html` for a plan. `plan_path` is shown wherever rows are
/// cut, so the reader knows where the rest are.
pub fn render_html(
    summary: &Summary,
    plan: &DataFrame,
    runs: &[Run],
    max_rows: usize,
    plan_path: &Path,
) -> PolarsResult<String> {
    let receivers = receivers(plan, summary)?;
    let receiver = join_names(&receivers);
    let senders: Vec<String> = summary
        .sides
        .iter()
        .filter(|s| !receivers.contains(s) || receivers.len() > 1)
        .cloned()
        .collect();
    let sender = join_names(&senders);
    let a = summary.sides.first().map(String::as_str).unwrap_or("left");
    let b = summary.sides.get(1).map(String::as_str).unwrap_or("right");
    let plan_path = plan_path.display().to_string();
    let cx = Ctx {
        sides: [a, b],
        receiver: &receiver,
        plan_path: &plan_path,
    };

    let mut out = String::with_capacity(256 * 1024);
    let title = format!("{} · {}", summary.spec, human_time(&summary.created_at));
    let _ = write!(
        out,
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><meta name=\"generator\" content=\"recon {}\"><title>Review: {}</title><style>{STYLE}</style></head><body>",
        env!("CARGO_PKG_VERSION"),
        escape(&title)
    );

    // Header: what was compared, from which snapshots.
    let entity = {
        let mut c = summary.entity.chars();
        match c.next() {
            Some(f) => f.to_uppercase().chain(c).collect::<String>(),
            None => "Records".into(),
        }
    };
    let _ = write!(
        out,
        "<div class=\"intro\"><header class=\"top\"><p class=\"eyebrow\">recon · review before anything is written</p><h1>{}: {}</h1><p class=\"meta\">Spec <strong>{}</strong> · plan made {} · run <code>{}</code></p>",
        escape(&entity),
        escape(&summary.direction).replace("-&gt;", "→"),
        escape(&summary.spec),
        escape(&human_time(&summary.created_at)),
        escape(&summary.run_id)
    );
    let pending = summary.pending();
    let _ = write!(
        out,
        "<p class=\"lead\">{}</p>",
        if pending == 0 {
            "The two sides agree: nothing would be written.".to_string()
        } else {
            format!(
                "{} rows need a decision before this plan is applied. Nothing has been written yet.",
                thousands(pending)
            )
        }
    );
    out.push_str("<table class=\"inputs\"><thead><tr><th>Side</th><th>Snapshot taken</th><th class=\"n\">Records</th><th>Source</th></tr></thead><tbody>");
    for i in &summary.inputs {
        out.push_str("<tr><td>");
        escape_into(&mut out, &i.side);
        out.push_str("</td><td>");
        escape_into(&mut out, &human_time(&i.pulled_at));
        let _ = write!(out, "</td><td class=\"n\">{}</td><td>", thousands(i.rows));
        value(&mut out, Some(&i.source));
        out.push_str("</td></tr>");
    }
    out.push_str("</tbody></table></header>");
    out.push_str("<section class=\"history\"><h2>Drift over recent plans</h2><p class=\"explain\">Rows needing work in each plan of this spec; the marked bar is this plan. Hover over a bar for its numbers.</p>");
    drift_chart(&mut out, summary, runs);
    out.push_str("<ul class=\"legend\">");
    for c in DRIFT_CLASSES {
        let _ = write!(
            out,
            "<li><span class=\"dot k-{c}\"></span>{}</li>",
            escape(&words(c, &receiver, &sender).title)
        );
    }
    out.push_str("</ul></section></div>");

    // Cards: one per class.
    out.push_str("<nav class=\"cards\" aria-label=\"Rows per class\">");
    for c in CLASSES {
        let n = summary.count(c);
        let w = words(c, &receiver, &sender);
        let _ = write!(
            out,
            "<a class=\"card k-{c}{}\" data-class=\"{c}\" href=\"#sec-{c}\"><span class=\"num{}\">{}</span><span class=\"label\">{}</span><span class=\"hint\">{}</span></a>",
            if n == 0 { " zero" } else { "" },
            // Seven digits and more do not fit a card at full size.
            if n >= 100_000 { " long" } else { "" },
            thousands(n),
            escape(&w.title),
            escape(&w.hint)
        );
    }
    out.push_str("</nav>");

    if !summary.top_fields.is_empty() {
        out.push_str("<p class=\"top-fields\">Most changed fields: ");
        for (i, (f, n)) in summary.top_fields.iter().take(8).enumerate() {
            if i > 0 {
                out.push_str(" · ");
            }
            out.push_str("<strong>");
            escape_into(&mut out, f);
            let _ = write!(out, "</strong> {}", thousands(*n));
        }
        out.push_str("</p>");
    }

    let _ = write!(
        out,
        "<div class=\"toolbar\" role=\"search\"><label for=\"q\">Find rows</label><input id=\"q\" type=\"search\" placeholder=\"id, name, value, field…\" autocomplete=\"off\" spellcheck=\"false\"><span id=\"qstatus\" aria-live=\"polite\"></span><span class=\"muted\">Searches the rows listed on this page (at most {} per class). Click a column heading to sort.</span></div>",
        thousands(max_rows as u64)
    );

    for c in CLASSES {
        let total = summary.count(c);
        if total == 0 {
            continue;
        }
        let rows = class_rows(plan, c, max_rows)?;
        section(
            &mut out,
            &cx,
            c,
            total,
            &rows,
            &words(c, &receiver, &sender),
        );
    }

    out.push_str("<footer>Every row, uncut: <code>");
    escape_into(&mut out, &plan_path);
    out.push_str("</code>. One line per changed field for a spreadsheet: <code>changes.csv</code>. Summary for machines: <code>summary.json</code>.</footer>");
    out.push_str("<script>");
    out.push_str(SCRIPT);
    out.push_str("</script></body></html>\n");
    Ok(out)
}

/// Render `changes.csv`: one line per changed field of every row that is not
/// `unchanged` (rows without field changes, such as duplicates, get one line
/// with their reason). Every cell passes through [`csv_safe`]. The file's
/// bytes come in parts, to be written one after the other.
pub fn render_csv(plan: &DataFrame) -> PolarsResult<Vec<Vec<u8>>> {
    let text = |n: &str| -> PolarsResult<StringChunked> {
        Ok(plan
            .column(n)?
            .cast(&DataType::String)?
            .str()?
            .rechunk()
            .into_owned())
    };
    // One line per changed field; a row without changes (a duplicate, an
    // orphan) gets one line with the field left empty.
    let [class, left, right, receiver, reason] =
        ["class", "left_id", "right_id", "receiver", "reason"].map(text);
    let (class, left, right, receiver, reason) = (class?, left?, right?, receiver?, reason?);
    let changes = plan.column("changes")?.list()?.rechunk();
    let changes = ChangeLists::new(&changes)?;
    let names = [
        "class", "left_id", "right_id", "receiver", "field", "before", "after", "reason",
    ];
    let err = |e: &dyn std::fmt::Display| polars_err!(ComputeError: "writing changes.csv: {e}");
    let lines = |from: usize, to: usize| -> PolarsResult<Vec<u8>> {
        let mut w = csv::Writer::from_writer(Vec::with_capacity((to - from) * 96));
        let line = |w: &mut csv::Writer<Vec<u8>>, row: usize, change: Entry<'_>| {
            let (field, before, after) = change;
            let cells = [
                class.get(row),
                left.get(row),
                right.get(row),
                receiver.get(row),
                field,
                before,
                after,
                reason.get(row),
            ];
            for c in cells {
                w.write_field(csv_safe(c.unwrap_or("")).as_bytes())
                    .map_err(|e| err(&e))?;
            }
            w.write_record(None::<&[u8]>).map_err(|e| err(&e))
        };
        for row in from..to {
            if class.get(row) == Some("unchanged") {
                continue;
            }
            let mut any = false;
            for change in changes.row(row) {
                any = true;
                line(&mut w, row, change)?;
            }
            if !any {
                line(&mut w, row, (None, None, None))?;
            }
        }
        w.into_inner().map_err(|e| err(&e))
    };
    let mut header = csv::Writer::from_writer(Vec::new());
    header.write_record(names).map_err(|e| err(&e))?;
    let header = header.into_inner().map_err(|e| err(&e))?;
    // In two halves, one on a thread of its own: Polars' pool is busy
    // encoding the plan file meanwhile.
    let n = plan.height();
    let (first, second) = std::thread::scope(|s| {
        let first = s.spawn(|| lines(0, n / 2));
        let second = lines(n / 2, n);
        (first.join(), second)
    });
    let first = first.map_err(|_| err(&"a formatting thread failed"))??;
    Ok(vec![header, first, second?])
}

const STYLE: &str = r##"
:root{--bg:#f5f6f8;--card:#fff;--ink:#1d2733;--muted:#5f6b7a;--line:#e2e6eb;--soft:#eef1f4;
--create:#3f8f6b;--update:#3d6fa8;--conflict:#c07a2c;--invalid:#b44b4b;--duplicate:#7d64ad;--orphan:#7b8794;--skipped:#a69255;--unchanged:#aab4be;
--del:#fbe3e1;--delink:#8e2a22;--ins:#dff3e6;--insink:#1d5e37}
*{box-sizing:border-box}
[hidden]{display:none!important}
html{-webkit-text-size-adjust:100%}
body{margin:0;background:var(--bg);color:var(--ink);font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"Noto Sans","Helvetica Neue",Arial,sans-serif;padding:28px 32px 64px;max-width:1320px;margin:0 auto}
code{font:13px/1.4 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;background:var(--soft);padding:1px 5px;border-radius:4px;overflow-wrap:anywhere}
.meta code{white-space:nowrap}
h1{font-size:26px;line-height:1.25;margin:2px 0 6px;font-weight:650}
h2{font-size:19px;margin:0 0 4px;font-weight:620;display:flex;align-items:center;gap:10px}
.eyebrow{margin:0;color:var(--muted);font-size:12px;letter-spacing:.06em;text-transform:uppercase}
.meta{margin:0 0 10px;color:var(--muted)}
.lead{margin:0 0 14px;font-size:16px}
.muted{color:var(--muted);font-size:13px}
.n,.num,td.n{text-align:right;font-variant-numeric:tabular-nums}
.intro{display:grid;grid-template-columns:minmax(0,1.25fr) minmax(0,1fr);gap:18px;margin-bottom:18px;align-items:stretch}
@media (max-width:980px){.intro{grid-template-columns:1fr}}
header.top{background:var(--card);border:1px solid var(--line);border-radius:10px;padding:18px 22px 14px}
table.inputs{border-collapse:collapse;font-size:14px}
table.inputs th{font-weight:600;color:var(--muted);text-align:left;padding:4px 18px 4px 0;border-bottom:1px solid var(--line)}
table.inputs td{padding:5px 18px 5px 0;vertical-align:top}
table.inputs th.n,table.inputs td.n{text-align:right}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(124px,1fr));gap:10px;margin:0 0 14px}
.card{display:flex;flex-direction:column;gap:1px;background:var(--card);border:1px solid var(--line);border-top:4px solid var(--c,#999);border-radius:9px;padding:10px 14px 12px;text-decoration:none;color:inherit}
.card:hover{box-shadow:0 2px 8px rgba(20,30,40,.08)}
.card .num{font-size:28px;font-weight:650;text-align:left;line-height:1.15}
.card .num.long{font-size:21px;line-height:1.55}
.card .label{font-weight:600}
.card .hint{font-size:12.5px;color:var(--muted)}
.card.zero{opacity:.55;pointer-events:none}
.k-create{--c:var(--create)}.k-update{--c:var(--update)}.k-conflict{--c:var(--conflict)}.k-invalid{--c:var(--invalid)}
.k-duplicate{--c:var(--duplicate)}.k-orphan{--c:var(--orphan)}.k-skipped{--c:var(--skipped)}.k-unchanged{--c:var(--unchanged)}
.dot{display:inline-block;width:11px;height:11px;border-radius:3px;background:var(--c)}
.top-fields{margin:0 0 18px;color:var(--muted)}
.top-fields strong{color:var(--ink);font-weight:600}
section.history,.cls{background:var(--card);border:1px solid var(--line);border-radius:10px;padding:16px 20px;margin:0 0 18px}
.intro section.history{margin:0}
svg.drift{width:100%;max-width:620px;height:auto;display:block;margin:4px 0 2px}
svg.drift rect{fill:var(--c)}
svg.drift rect.zero{fill:var(--line)}
svg.drift rect.mark{fill:var(--ink)}
svg.drift .grid{stroke:var(--line);stroke-width:1}
svg.drift .axis{fill:var(--muted);font-size:10px;font-variant-numeric:tabular-nums}
.legend{list-style:none;display:flex;flex-wrap:wrap;gap:6px 18px;margin:6px 0 0;padding:0;font-size:13px;color:var(--muted)}
.legend li{display:flex;align-items:center;gap:6px}
.toolbar{position:sticky;top:0;z-index:2;display:flex;flex-wrap:wrap;align-items:center;gap:8px 14px;background:var(--bg);padding:10px 0 12px;margin-bottom:4px}
.toolbar label{font-weight:600}
.toolbar input{font:inherit;padding:7px 11px;border:1px solid #c5ccd4;border-radius:7px;min-width:320px;background:#fff}
.toolbar input:focus{outline:2px solid var(--update);outline-offset:1px}
#qstatus{font-weight:600}
.explain{margin:0 0 8px;color:var(--muted);max-width:80ch}
.shown:empty{display:none}
.shown{margin:0 0 8px;font-weight:600}
.cut{background:#fff7e6;border:1px solid #f0dcae;border-radius:7px;padding:8px 12px;margin:0 0 10px}
.cls.nomatch{opacity:.6;padding-bottom:8px}
.cls.nomatch .scroll,.cls.nomatch .explain,.cls.nomatch .cut,.cls.nomatch .cut-end{display:none}
.cut-end{margin:8px 0 0;color:#8a6d1f;font-size:13px}
details.cls>summary{cursor:pointer;list-style:none}
details.cls>summary::-webkit-details-marker{display:none}
details.cls>summary h2::after{content:"show";font-size:12px;font-weight:500;color:var(--muted);border:1px solid var(--line);border-radius:5px;padding:0 6px}
details.cls[open]>summary h2::after{content:"hide"}
.count{font-variant-numeric:tabular-nums;color:var(--muted);font-weight:500}
.scroll{overflow-x:auto}
table.rows{border-collapse:collapse;width:100%;font-size:14px}
table.rows th{text-align:left;font-weight:600;color:var(--muted);border-bottom:2px solid var(--line);padding:0;white-space:nowrap}
table.rows th.n{text-align:right}
button.sort{all:unset;cursor:pointer;display:block;padding:6px 22px 6px 8px;position:relative}
button.sort:focus-visible{outline:2px solid var(--update)}
button.sort::after{content:"↕";position:absolute;right:6px;opacity:.35}
th[aria-sort=ascending] button.sort::after{content:"↑";opacity:.9}
th[aria-sort=descending] button.sort::after{content:"↓";opacity:.9}
table.rows td{padding:7px 8px;border-bottom:1px solid var(--line);vertical-align:top}
table.rows tbody tr[data-row]:hover{background:#fafbfc}
td.id{white-space:nowrap;font-variant-numeric:tabular-nums;width:1%}
.ctl{font-size:11px;color:#8a6d1f;border:1px solid #f0dcae;border-radius:3px;padding:0 2px;margin:0 1px}
td.reason{max-width:46ch}
td.detail,th.detail{width:58%}
.kv .bad{background:#fbe9e7;border-radius:4px;padding:0 4px;margin:0 -4px}
.kv .bad dt{color:var(--delink);font-weight:600}
tr.ghead th{background:var(--soft);color:var(--ink);font-weight:500;padding:6px 8px;white-space:normal;text-align:left}
.key{display:inline-block;font-size:12px;color:var(--muted);background:var(--soft);border-radius:4px;padding:0 6px;margin-right:4px}
.none{color:#9aa5b1;font-style:italic}
bdi.v{unicode-bidi:isolate;white-space:pre-wrap;overflow-wrap:anywhere}
.chg{display:grid;grid-template-columns:max-content fit-content(42%) 1.2em minmax(0,1fr);gap:3px 10px;align-items:baseline}
.kv{display:grid;grid-template-columns:repeat(auto-fill,minmax(230px,1fr));gap:2px 18px;margin:0}
.kv div{display:flex;gap:8px;min-width:0;align-items:baseline}
.kv div.wide{grid-column:1 / -1}
.kv dt{color:var(--muted);font-size:13px;flex:0 0 auto}
.kv dd{margin:0;min-width:0;color:#1d4430}
.chg .f{color:var(--muted);font-size:13px}
.chg .b .v{color:#6b4a48}
.chg .a .v{color:#1d4430;font-weight:500}
.v.n{font-variant-numeric:tabular-nums}
.chg .b .v.n{display:block;text-align:right}
.chg .arrow{color:var(--muted);text-align:center}
.chg .wide{grid-column:2 / span 3}
.diff{background:#fbfbfc;border:1px solid var(--line);border-radius:6px;padding:6px 9px;white-space:pre-wrap;overflow-wrap:anywhere;line-height:1.55}
del{background:var(--del);color:var(--delink);text-decoration:line-through;text-decoration-color:rgba(142,42,34,.55);border-radius:3px;padding:0 2px;margin-right:2px}
ins{background:var(--ins);color:var(--insink);text-decoration:none;border-radius:3px;padding:0 2px}
.gap{color:var(--muted)}
.cutnote{display:block;font-size:12px;color:#8a6d1f;margin-top:2px}
details.raw{margin-top:6px;font-size:12.5px}
details.raw summary{cursor:pointer;color:var(--muted)}
details.raw pre{white-space:pre-wrap;overflow-wrap:anywhere;background:var(--soft);padding:6px 8px;border-radius:5px;margin:4px 0 0;max-height:260px;overflow:auto}
footer{color:var(--muted);font-size:13px;margin-top:24px}
@media print{.toolbar,details.raw{display:none}body{background:#fff;padding:0}}
"##;

const SCRIPT: &str = r##"
(function () {
  "use strict";
  var input = document.getElementById("q");
  var status = document.getElementById("qstatus");
  var rows = Array.prototype.slice.call(document.querySelectorAll("tr[data-row]"));
  var texts = rows.map(function (r) { return r.textContent.toLowerCase(); });
  var sections = Array.prototype.slice.call(document.querySelectorAll(".cls"));
  var groups = Array.prototype.slice.call(document.querySelectorAll("tbody.group"));

  function apply(raw) {
    var needle = raw.trim().toLowerCase();
    var shown = 0;
    for (var i = 0; i < rows.length; i++) {
      var hit = needle === "" || texts[i].indexOf(needle) !== -1;
      if (hit) { rows[i].removeAttribute("hidden"); shown++; }
      else { rows[i].setAttribute("hidden", ""); }
    }
    groups.forEach(function (g) {
      if (g.querySelector("tr[data-row]:not([hidden])")) { g.removeAttribute("hidden"); }
      else { g.setAttribute("hidden", ""); }
    });
    sections.forEach(function (s) {
      var all = s.querySelectorAll("tr[data-row]").length;
      var vis = s.querySelectorAll("tr[data-row]:not([hidden])").length;
      var note = s.querySelector(".shown");
      if (note) { note.textContent = needle === "" ? "" : vis + " of " + all + " listed rows match."; }
      s.classList.toggle("nomatch", needle !== "" && vis === 0);
      if (needle !== "" && vis > 0 && s.tagName === "DETAILS") { s.open = true; }
    });
    status.textContent = needle === "" ? "" : shown + " of " + rows.length + " rows match";
  }

  function fromHash() {
    var m = /^#q=(.*)$/.exec(window.location.hash);
    if (!m) { return; }
    var v;
    try { v = decodeURIComponent(m[1].replace(/\+/g, " ")); } catch (e) { v = m[1]; }
    input.value = v;
    apply(v);
  }

  input.addEventListener("input", function () {
    apply(input.value);
    var base = window.location.href.split("#")[0];
    try {
      window.history.replaceState(null, "", input.value ? base + "#q=" + encodeURIComponent(input.value) : base);
    } catch (e) { /* some browsers refuse history changes on file:// pages */ }
  });
  window.addEventListener("hashchange", fromHash);

  var collator = new Intl.Collator(undefined, { numeric: true, sensitivity: "base" });
  function cellKey(row, idx) {
    var cell = row.children[idx];
    return cell ? cell.textContent.trim() : "";
  }
  function asNumber(s) {
    if (!/^[-+]?[\d,]*\.?\d+$/.test(s)) { return NaN; }
    return parseFloat(s.replace(/,/g, ""));
  }
  document.querySelectorAll("table.rows thead button.sort").forEach(function (button) {
    button.addEventListener("click", function () {
      var th = button.parentNode;
      var tr = th.parentNode;
      var table = tr.closest("table");
      var idx = Array.prototype.indexOf.call(tr.children, th);
      var dir = th.getAttribute("aria-sort") === "ascending" ? -1 : 1;
      Array.prototype.forEach.call(tr.children, function (h) { h.removeAttribute("aria-sort"); });
      th.setAttribute("aria-sort", dir === 1 ? "ascending" : "descending");
      Array.prototype.forEach.call(table.tBodies, function (tb) {
        var list = Array.prototype.filter.call(tb.rows, function (r) { return r.hasAttribute("data-row"); });
        list.sort(function (x, y) {
          var a = cellKey(x, idx), b = cellKey(y, idx);
          var na = asNumber(a), nb = asNumber(b);
          var c = (!isNaN(na) && !isNaN(nb)) ? na - nb : collator.compare(a, b);
          return dir * c;
        });
        list.forEach(function (r) { tb.appendChild(r); });
      });
    });
  });

  fromHash();
})();
"##;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_covers_markup_quotes_and_controls() {
        assert_eq!(
            escape("<script>alert('x')</script> & \"q\""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot;"
        );
        assert_eq!(escape("a\u{0}b\nc"), "a\u{fffd}b\nc");
        assert_eq!(escape("مرحبا 👋"), "مرحبا 👋");
    }

    #[test]
    fn direction_controls_are_shown_not_obeyed() {
        let mut out = String::new();
        value(&mut out, Some("invoice\u{202e}fdp.exe"));
        assert!(!out.contains('\u{202e}'));
        assert!(out.contains("invoice<span class=\"ctl\""));
        assert!(out.contains(">U+202E</span>fdp.exe"));
    }

    #[test]
    fn numbers_and_clipping() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert!(is_number("-1200.50"));
        assert!(!is_number("2024-01-05"));
        assert!(!is_number("."));
        assert_eq!(clip("héllo", 2), ("hé", true));
        assert_eq!(clip("hé", 2), ("hé", false));
        assert_eq!(nice_ceiling(0), 2);
        assert_eq!(nice_ceiling(5), 6);
        assert_eq!(nice_ceiling(87), 100);
        assert_eq!(nice_ceiling(130), 200);
        assert_eq!(nice_ceiling(1_000), 1_000);
        assert_eq!(compact(5_000), "5,000");
        assert_eq!(compact(50_000), "50k");
        assert_eq!(compact(1_500_000), "1.5M");
    }

    #[test]
    fn reasons_point_at_fields() {
        let r = Some(
            "status value `closed` has no entry in the value map; required field `email` is empty",
        );
        assert!(names_field(r, "status"));
        assert!(names_field(r, "email"));
        assert!(!names_field(r, "city"));
        assert!(!names_field(None, "city"));
    }

    #[test]
    fn long_text_diff_marks_words() {
        let before = "The customer prefers invoices by post and pays within thirty days of the invoice date, always.";
        let after = "The customer prefers invoices by email and pays within sixty days of the invoice date, always.";
        let mut out = String::new();
        word_diff(&mut out, before, after);
        assert!(out.contains("<del>post</del><ins>email</ins>"), "{out}");
        assert!(out.contains("<del>thirty</del><ins>sixty</ins>"), "{out}");
    }

    #[test]
    fn shared_ends_stay_whole_words() {
        assert_eq!(common_ends("one two three", "one tree three"), (4, 6));
        assert_eq!(common_ends("same", "same"), (4, 0));
        assert_eq!(common_ends("abc", "xyz"), (0, 0));
        assert_eq!(common_ends("città è bella", "città era bella"), (7, 6));
    }

    #[test]
    fn a_change_at_the_end_of_a_huge_text_is_found() {
        let huge = "lorem ipsum dolor ".repeat(60_000);
        let before = format!("{huge}paid by post.");
        let after = format!("{huge}paid by card.");
        let mut out = String::new();
        word_diff(&mut out, &before, &after);
        assert!(out.contains("<del>post.</del><ins>card.</ins>"), "{out}");
        assert!(out.len() < 2_000, "{}", out.len());
        assert!(!out.contains("cutnote"));
    }

    #[test]
    fn long_equal_stretches_are_shortened() {
        let common = "word ".repeat(500);
        let before = format!("{common}old ending");
        let after = format!("{common}new ending");
        let mut out = String::new();
        word_diff(&mut out, &before, &after);
        assert!(out.contains("class=\"gap\""));
        assert!(out.len() < 1_000, "{}", out.len());
    }
}
