//! Apply: execute an approved plan against the receiving side, safely.
//!
//! Every plan row that writes goes through the journal in the ledger:
//! `planned`, then `sent` (committed before the request leaves), then `done`
//! with the receiver's id or `failed` with the vendor's message (committed
//! after). A rerun resumes: done rows are skipped; a row left `sent` by a
//! crash is resolved by the system's idempotency (MoySklad `syncId`) or by
//! finding the record by its business key before creating it again. Before
//! updating, the receiving side is read again and a row whose target changed
//! since the plan is refused as `stale` (unless forced).

pub mod native;
pub mod target;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use anyhow::{Context, anyhow, bail};
use futures::StreamExt;
use polars::prelude::*;
use serde_json::{Map, Value};

use self::target::{FileTarget, HttpTarget, Prepared, row_uuid};
use crate::connect::http::Body;
use crate::engine::normalize;
use crate::ledger::{JournalRow, Ledger};
use crate::report::read_plan;
use crate::snapshot::{PullOptions, pull_side};
use crate::spec::{Connection, SideIx, Spec};
use crate::ui::Progress;

/// How to apply.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// Print each request and write nothing.
    pub dry_run: bool,
    /// Write rows whose target changed since the plan.
    pub force: bool,
    /// Also delete orphans on the receiving side.
    pub mirror: bool,
}

/// One row of the plan, as apply needs it.
#[derive(Debug, Clone)]
pub struct PlanRow {
    pub row: i64,
    pub class: String,
    pub key: Option<String>,
    pub left_id: Option<String>,
    pub right_id: Option<String>,
    pub receiver: Option<String>,
    pub changes: Vec<(String, Option<String>, Option<String>)>,
    pub payload: Option<Map<String, Value>>,
    pub synced: Option<String>,
}

/// What an apply did, row by row.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Report {
    pub spec: String,
    pub plan: String,
    pub dry_run: bool,
    pub counts: BTreeMap<String, u64>,
    pub rows: Vec<JournalRow>,
}

impl Report {
    pub fn all_done(&self) -> bool {
        self.rows.iter().all(|r| r.state == "done")
    }
}

/// Read the plan's rows.
pub fn plan_rows(df: &DataFrame) -> anyhow::Result<Vec<PlanRow>> {
    let s = |n: &str| -> anyhow::Result<Vec<Option<String>>> {
        Ok(df
            .column(n)?
            .str()?
            .iter()
            .map(|v| v.map(str::to_string))
            .collect())
    };
    let (class, key, left, right, receiver, payload) = (
        s("class")?,
        s("key")?,
        s("left_id")?,
        s("right_id")?,
        s("receiver")?,
        s("payload")?,
    );
    let synced = if df.get_column_names().iter().any(|c| c.as_str() == "synced") {
        s("synced")?
    } else {
        vec![None; df.height()]
    };
    let changes = df.column("changes")?.list()?.clone();
    let mut out = Vec::with_capacity(df.height());
    for i in 0..df.height() {
        let mut ch = Vec::new();
        if let Some(series) = changes.get_as_series(i)
            && !series.is_empty()
        {
            let st = series.struct_()?;
            let get = |n: &str| -> anyhow::Result<Vec<Option<String>>> {
                Ok(st
                    .field_by_name(n)?
                    .str()?
                    .iter()
                    .map(|v| v.map(str::to_string))
                    .collect())
            };
            let (f, b, a) = (get("field")?, get("before")?, get("after")?);
            for ((f, b), a) in f.into_iter().zip(b).zip(a) {
                ch.push((f.unwrap_or_default(), b, a));
            }
        }
        out.push(PlanRow {
            row: i as i64,
            class: class[i].clone().unwrap_or_default(),
            key: key[i].clone(),
            left_id: left[i].clone(),
            right_id: right[i].clone(),
            receiver: receiver[i].clone(),
            changes: ch,
            payload: payload[i]
                .as_deref()
                .and_then(|p| serde_json::from_str(p).ok()),
            synced: synced[i].clone(),
        });
    }
    Ok(out)
}

/// The side a row writes to (an orphan is deleted where it lives).
fn receiver(spec: &Spec, r: &PlanRow) -> Option<SideIx> {
    match r.class.as_str() {
        "orphan" => Some(if r.left_id.is_some() {
            SideIx::A
        } else {
            SideIx::B
        }),
        _ => r.receiver.as_deref().and_then(|n| spec.side_by_name(n)),
    }
}

/// The id of the row's record on `side`.
fn id_on(r: &PlanRow, side: SideIx) -> Option<&str> {
    match side {
        SideIx::A => r.left_id.as_deref(),
        SideIx::B => r.right_id.as_deref(),
    }
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Current canonical values of the receiving side, as text by id and field:
/// read again with the same mapping as a pull, into a scratch folder.
///
/// When the plan's own snapshot of the side carries a cursor, only records
/// changed since it are read and merged into a copy of that snapshot: the
/// same current state for the cost of the changes.
fn current(
    spec: &Spec,
    side: SideIx,
    scratch: &Path,
    token_store: Option<PathBuf>,
    planned_from: Option<&Path>,
) -> anyhow::Result<HashMap<String, HashMap<String, Option<String>>>> {
    let _ = std::fs::remove_dir_all(scratch.join("snapshots"));
    let mut since = None;
    if let Some(snap) = planned_from
        && let Ok(info) = crate::snapshot::read_info(snap)
        && let Some(cursor) = info
            .metadata
            .get(crate::snapshot::meta::CURSOR)
            .and_then(|c| crate::connect::Cursor::parse(c))
    {
        let dir = scratch
            .join("snapshots")
            .join(&spec.name)
            .join(&spec.side(side).name);
        std::fs::create_dir_all(&dir)?;
        // Named before any new stamp, so the read merges into it.
        std::fs::copy(snap, dir.join("00000000T000000.000Z.parquet"))?;
        since = Some(cursor);
    }
    let stamp = crate::cli::stamp_now();
    let opts = PullOptions {
        stamp: stamp.clone(),
        pulled_at: stamp,
        since,
        token_store,
    };
    let out = pull_side(spec, side, scratch, &opts, &Progress::hidden())
        .with_context(|| format!("reading {} again before writing", spec.side(side).name))?;
    let df = ParquetReader::new(std::fs::File::open(&out.path)?).finish()?;
    let ids: Vec<String> = df
        .column("_id")?
        .str()?
        .iter()
        .map(|v| v.unwrap_or_default().to_string())
        .collect();
    let mut map: HashMap<String, HashMap<String, Option<String>>> =
        ids.iter().map(|id| (id.clone(), HashMap::new())).collect();
    for c in df.columns().iter().skip(1) {
        let texts = c.cast(&DataType::String)?;
        for (id, v) in ids.iter().zip(texts.str()?.iter()) {
            map.get_mut(id)
                .expect("ids listed above")
                .insert(c.name().to_string(), v.map(str::to_string));
        }
    }
    let _ = std::fs::remove_dir_all(scratch.join("snapshots"));
    Ok(map)
}

/// Find a record of `current` whose key values equal the payload's: a
/// create whose outcome was lost may have landed.
fn find_by_key(
    spec: &Spec,
    side: SideIx,
    payload: &Map<String, Value>,
    current: &HashMap<String, HashMap<String, Option<String>>>,
) -> Option<String> {
    let region = spec.side(side).region.as_deref();
    for k in &spec.keys {
        let norm = |get: &dyn Fn(&str) -> Option<String>| -> Option<String> {
            let parts: Option<Vec<String>> = k
                .fields
                .iter()
                .map(|f| get(f).and_then(|v| normalize::scalar(&v, k.normalize, region)))
                .collect();
            parts.map(|p| p.join("\u{1f}"))
        };
        let want = norm(&|f: &str| {
            payload.get(f).and_then(|v| match v {
                Value::String(s) => Some(s.clone()),
                Value::Null => None,
                other => Some(other.to_string()),
            })
        });
        let Some(want) = want else { continue };
        let found: Vec<&String> = current
            .iter()
            .filter(|(_, vals)| {
                norm(&|f: &str| vals.get(f).cloned().flatten()).as_deref() == Some(want.as_str())
            })
            .map(|(id, _)| id)
            .collect();
        if found.len() == 1 {
            return Some(found[0].clone());
        }
    }
    None
}

/// Apply a plan folder. Returns the report; the journal is in the ledger.
pub fn apply(
    spec: &Spec,
    plan_dir: &Path,
    home: &Path,
    opts: Options,
    ui: &Progress,
) -> anyhow::Result<Report> {
    let (summary, df) = read_plan(plan_dir).map_err(|e| anyhow!(e))?;
    if summary.spec != spec.name {
        bail!(
            "{} is a plan of spec `{}`, not `{}`",
            plan_dir.display(),
            summary.spec,
            spec.name
        );
    }
    if summary.spec_hash != spec.hash && !opts.force {
        bail!("the spec changed since this plan was made; plan again (or apply with --force)");
    }
    if spec.direction == crate::spec::Direction::Audit {
        bail!(
            "spec `{}` is an audit: it compares and never writes",
            spec.name
        );
    }
    // Specs this one depends on go first: their latest plan must not have
    // writes waiting, or a child would point at parents not written yet.
    if !opts.dry_run && !opts.force {
        let ledger = Ledger::open(home)?;
        for parent in &spec.after {
            let last = ledger
                .runs(parent, 50)?
                .into_iter()
                .rev()
                .find(|r| r.command == "plan" && r.status == "ok");
            if let Some(run) = last {
                let waiting: u64 = ["create", "update"]
                    .iter()
                    .filter_map(|c| run.counts.get(*c).and_then(Value::as_u64))
                    .sum();
                if waiting > 0 && !run.applied {
                    bail!(
                        "spec `{}` comes after `{parent}`, whose latest plan ({}) has {waiting} write(s) not applied: apply it first (or pass --force)",
                        spec.name,
                        run.plan_dir.unwrap_or_default()
                    );
                }
            }
        }
    }
    let rows = plan_rows(&df)?;
    let writes: Vec<&PlanRow> = rows
        .iter()
        .filter(|r| {
            matches!(r.class.as_str(), "create" | "update") || (opts.mirror && r.class == "orphan")
        })
        .collect();
    let plan_key = plan_dir
        .canonicalize()
        .unwrap_or_else(|_| plan_dir.to_path_buf())
        .display()
        .to_string();
    let ledger = Ledger::open(home)?;
    let run_id = if opts.dry_run {
        0
    } else {
        ledger.start_run(&spec.name, "apply", &now())?
    };

    if !opts.dry_run {
        let journal_rows: Vec<JournalRow> = writes
            .iter()
            .map(|r| JournalRow {
                row: r.row,
                class: r.class.clone(),
                receiver: receiver(spec, r).map(|s| spec.side(s).name.clone()),
                left_id: r.left_id.clone(),
                right_id: r.right_id.clone(),
                state: "planned".into(),
                target_id: None,
                message: None,
                tries: 0,
            })
            .collect();
        ledger.journal_start(&plan_key, &spec.name, &journal_rows, &now())?;
        // Matches the plan confirmed are links (and baselines) right away.
        ledger.transaction(|| {
            for r in rows.iter().filter(|r| r.class == "unchanged") {
                if let (Some(l), Some(rt)) = (&r.left_id, &r.right_id) {
                    ledger.link(
                        &spec.name,
                        l,
                        rt,
                        r.key.as_deref().unwrap_or("match"),
                        run_id,
                        &now(),
                    )?;
                    if let Some(s) = &r.synced {
                        ledger.set_baseline(&spec.name, l, rt, s, run_id, &now())?;
                    }
                }
            }
            Ok(())
        })?;
    }
    let states: HashMap<i64, JournalRow> = if opts.dry_run {
        HashMap::new()
    } else {
        ledger
            .journal(&plan_key)?
            .into_iter()
            .map(|j| (j.row, j))
            .collect()
    };

    let mut run = Run {
        spec,
        ledger: &ledger,
        plan_key: &plan_key,
        run_id,
        opts,
        ui,
        dry: Vec::new(),
        planned_from: summary
            .inputs
            .iter()
            .filter_map(|i| Some((spec.side_by_name(&i.side)?, PathBuf::from(&i.path))))
            .collect(),
    };
    for side in SideIx::both() {
        let mine: Vec<&PlanRow> = writes
            .iter()
            .copied()
            .filter(|r| receiver(spec, r) == Some(side))
            .filter(|r| states.get(&r.row).is_none_or(|j| j.state != "done"))
            .collect();
        if mine.is_empty() {
            continue;
        }
        let scratch = plan_dir.join(".apply");
        let store = crate::spec::token_store(spec.side(side), home);
        match &spec.side(side).connection {
            Connection::File(_) => run.write_file(side, &mine, &states, &scratch)?,
            Connection::Http(h) => run.write_http(side, h, &mine, &states, &scratch, store)?,
        }
    }
    if opts.dry_run {
        for line in &run.dry {
            ui.say(line);
        }
        let sent = run.dry.len() as u64;
        return Ok(Report {
            spec: spec.name.clone(),
            plan: plan_key.clone(),
            dry_run: true,
            counts: BTreeMap::from([("would send".to_string(), sent)]),
            rows: vec![],
        });
    }
    let journal = ledger.journal(&plan_key)?;
    let mut counts = BTreeMap::new();
    for j in &journal {
        *counts.entry(j.state.clone()).or_insert(0u64) += 1;
    }
    let report = Report {
        spec: spec.name.clone(),
        plan: plan_key.clone(),
        dry_run: false,
        counts,
        rows: journal,
    };
    let all_done = report.all_done();
    if all_done {
        ledger.mark_applied(&plan_dir.display().to_string())?;
    }
    let mut counts_json = serde_json::Map::new();
    for (k, v) in &report.counts {
        counts_json.insert(k.clone(), (*v).into());
    }
    ledger.finish_run(
        run_id,
        &now(),
        if all_done { "ok" } else { "partial" },
        &[],
        &counts_json,
        Some(&plan_dir.display().to_string()),
        None,
    )?;
    Ok(report)
}

/// State shared by the writes of one apply.
struct Run<'a> {
    spec: &'a Spec,
    ledger: &'a Ledger,
    plan_key: &'a str,
    run_id: i64,
    opts: Options,
    ui: &'a Progress,
    /// Requests a dry run would send.
    dry: Vec<String>,
    /// The snapshot of each side the plan was computed from.
    planned_from: HashMap<SideIx, PathBuf>,
}

/// The result of one row's write.
struct Done {
    row: i64,
    state: &'static str,
    target: Option<String>,
    message: Option<String>,
}

impl Run<'_> {
    fn set(
        &self,
        results: &[Done],
        rows: &HashMap<i64, &PlanRow>,
        side: SideIx,
    ) -> anyhow::Result<()> {
        let updates: Vec<(i64, &str, Option<&str>, Option<&str>)> = results
            .iter()
            .map(|d| (d.row, d.state, d.target.as_deref(), d.message.as_deref()))
            .collect();
        let at = now();
        self.ledger.transaction(|| {
            for d in results.iter().filter(|d| d.state == "done") {
                let r = rows[&d.row];
                let (left, right) = match side {
                    SideIx::B => (r.left_id.clone(), d.target.clone().or(r.right_id.clone())),
                    SideIx::A => (d.target.clone().or(r.left_id.clone()), r.right_id.clone()),
                };
                if let (Some(l), Some(rt)) = (left, right)
                    && r.class != "orphan"
                {
                    self.ledger.link(
                        &self.spec.name,
                        &l,
                        &rt,
                        r.key.as_deref().unwrap_or("create"),
                        self.run_id,
                        &at,
                    )?;
                    if let Some(s) = &r.synced {
                        self.ledger
                            .set_baseline(&self.spec.name, &l, &rt, s, self.run_id, &at)?;
                    }
                }
            }
            Ok(())
        })?;
        self.ledger.journal_set(self.plan_key, &updates, &at)?;
        Ok(())
    }

    fn mark_sent(&self, rows: &[&PlanRow]) -> anyhow::Result<()> {
        let updates: Vec<(i64, &str, Option<&str>, Option<&str>)> =
            rows.iter().map(|r| (r.row, "sent", None, None)).collect();
        self.ledger.journal_set(self.plan_key, &updates, &now())?;
        Ok(())
    }

    /// Check an update against the receiver's current values: `Ok(None)` to
    /// write, `Ok(Some(done))` when already applied, `Err(why)` when stale.
    fn stale_check(
        &self,
        r: &PlanRow,
        current: &HashMap<String, Option<String>>,
    ) -> Result<bool, String> {
        let mut applied = true;
        let mut changed = Vec::new();
        for (field, before, after) in &r.changes {
            let now = current.get(field).cloned().flatten();
            if now != *after {
                applied = false;
            }
            if now != *before && now != *after {
                changed.push(format!(
                    "{field} is now `{}` (the plan saw `{}`)",
                    now.unwrap_or_default(),
                    before.clone().unwrap_or_default()
                ));
            }
        }
        if !changed.is_empty() && !self.opts.force {
            return Err(format!("changed since the plan: {}", changed.join("; ")));
        }
        Ok(applied)
    }

    fn write_file(
        &mut self,
        side: SideIx,
        rows: &[&PlanRow],
        states: &HashMap<i64, JournalRow>,
        scratch: &Path,
    ) -> anyhow::Result<()> {
        let s = self.spec.side(side);
        let Connection::File(src) = &s.connection else {
            unreachable!("a file side")
        };
        let needs_check = rows
            .iter()
            .any(|r| r.class == "update" || states.get(&r.row).is_some_and(|j| j.state == "sent"));
        let current = if needs_check && !self.opts.dry_run {
            current(self.spec, side, scratch, None, None)?
        } else {
            HashMap::new()
        };
        let mut target = FileTarget::open(src, &s.id).map_err(|e| anyhow!(e))?;
        let by_row: HashMap<i64, &PlanRow> = rows.iter().map(|r| (r.row, *r)).collect();
        let mut results = Vec::new();
        let mut sent = Vec::new();
        for r in rows {
            let payload = r.payload.clone().unwrap_or_default();
            let partial = native::native(self.spec, side, &payload);
            let was_sent = states.get(&r.row).is_some_and(|j| j.state == "sent");
            match r.class.as_str() {
                "create" => {
                    let sender = id_on(r, side.other()).unwrap_or_default();
                    if was_sent
                        && let Some(found) = target
                            .get(sender)
                            .map(|_| sender.to_string())
                            .or_else(|| find_by_key(self.spec, side, &payload, &current))
                    {
                        results.push(Done {
                            row: r.row,
                            state: "done",
                            target: Some(found),
                            message: None,
                        });
                        continue;
                    }
                    let id = target.create(partial, sender);
                    sent.push(*r);
                    results.push(Done {
                        row: r.row,
                        state: "done",
                        target: Some(id),
                        message: None,
                    });
                }
                "update" if self.opts.dry_run => sent.push(*r),
                "update" => {
                    let id = id_on(r, side).unwrap_or_default();
                    match current.get(id).map(|c| self.stale_check(r, c)) {
                        None => results.push(Done {
                            row: r.row,
                            state: "failed",
                            target: None,
                            message: Some(format!(
                                "record `{id}` is no longer in {}",
                                src.path.display()
                            )),
                        }),
                        Some(Err(why)) => results.push(Done {
                            row: r.row,
                            state: "stale",
                            target: None,
                            message: Some(why),
                        }),
                        Some(Ok(true)) => results.push(Done {
                            row: r.row,
                            state: "done",
                            target: Some(id.to_string()),
                            message: None,
                        }),
                        Some(Ok(false)) => match target.update(id, &partial) {
                            Ok(()) => {
                                sent.push(*r);
                                results.push(Done {
                                    row: r.row,
                                    state: "done",
                                    target: Some(id.to_string()),
                                    message: None,
                                });
                            }
                            Err(e) => results.push(Done {
                                row: r.row,
                                state: "failed",
                                target: None,
                                message: Some(e),
                            }),
                        },
                    }
                }
                _ => {
                    let id = id_on(r, side).unwrap_or_default().to_string();
                    target.delete(&id);
                    sent.push(*r);
                    results.push(Done {
                        row: r.row,
                        state: "done",
                        target: Some(id),
                        message: None,
                    });
                }
            }
        }
        if self.opts.dry_run {
            self.dry.push(format!(
                "write a new version of {} ({} change(s))",
                src.path.display(),
                sent.len()
            ));
            return Ok(());
        }
        if !sent.is_empty() {
            self.mark_sent(&sent)?;
            let backup = target
                .save(&crate::cli::stamp_now())
                .with_context(|| format!("writing {}", src.path.display()))?;
            self.ui.say(format!(
                "wrote {} ({} change(s)); previous version kept as {}",
                src.path.display(),
                sent.len(),
                backup.display()
            ));
        }
        self.set(&results, &by_row, side)
    }

    fn write_http(
        &mut self,
        side: SideIx,
        src: &crate::connect::http::HttpSource,
        rows: &[&PlanRow],
        states: &HashMap<i64, JournalRow>,
        scratch: &Path,
        store: Option<PathBuf>,
    ) -> anyhow::Result<()> {
        let needs_check = rows
            .iter()
            .any(|r| r.class == "update" || states.get(&r.row).is_some_and(|j| j.state == "sent"));
        let current = if needs_check && !self.opts.dry_run {
            current(
                self.spec,
                side,
                scratch,
                store.clone(),
                self.planned_from.get(&side).map(PathBuf::as_path),
            )?
        } else {
            HashMap::new()
        };
        // Built after the re-read: an OAuth2 refresh there rotates the token.
        let target = HttpTarget::new(src, store).map_err(|e| anyhow!(e))?;
        let by_row: HashMap<i64, &PlanRow> = rows.iter().map(|r| (r.row, *r)).collect();
        let idempotent = src
            .entity()
            .create
            .as_ref()
            .is_some_and(|c| c.idempotency.is_some());
        let redact = |t: &str| target.client.secrets().redact(t);

        // Creates: a row left `sent` is looked up first unless the system
        // recognises a repeated create itself.
        let mut results: Vec<Done> = Vec::new();
        let mut creates: Vec<(&PlanRow, Value)> = Vec::new();
        let mut updates: Vec<(&PlanRow, String, Value)> = Vec::new();
        let mut deletes: Vec<(&PlanRow, String)> = Vec::new();
        for r in rows {
            let payload = r.payload.clone().unwrap_or_default();
            let native = native::native(self.spec, side, &payload);
            let was_sent = states.get(&r.row).is_some_and(|j| j.state == "sent");
            match r.class.as_str() {
                "create" => {
                    if was_sent
                        && !idempotent
                        && let Some(found) = find_by_key(self.spec, side, &payload, &current)
                    {
                        results.push(Done {
                            row: r.row,
                            state: "done",
                            target: Some(found),
                            message: Some("found after an interrupted apply".into()),
                        });
                        continue;
                    }
                    creates.push((r, native));
                }
                "update" => {
                    let id = id_on(r, side).unwrap_or_default().to_string();
                    if self.opts.dry_run {
                        updates.push((r, id, native));
                        continue;
                    }
                    match current.get(&id).map(|c| self.stale_check(r, c)) {
                        None => results.push(Done {
                            row: r.row,
                            state: "failed",
                            target: None,
                            message: Some(format!(
                                "record `{id}` no longer exists in {}",
                                src.profile.name
                            )),
                        }),
                        Some(Err(why)) => results.push(Done {
                            row: r.row,
                            state: "stale",
                            target: None,
                            message: Some(why),
                        }),
                        Some(Ok(true)) => results.push(Done {
                            row: r.row,
                            state: "done",
                            target: Some(id),
                            message: None,
                        }),
                        Some(Ok(false)) => updates.push((r, id, native)),
                    }
                }
                _ => deletes.push((r, id_on(r, side).unwrap_or_default().to_string())),
            }
        }
        if !self.opts.dry_run {
            self.set(&results, &by_row, side)?;
        }

        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?;
        let parallel = src
            .profile
            .rate_limit
            .map(|l| l.parallel)
            .unwrap_or(4)
            .clamp(1, 8);
        let mut bar = self
            .ui
            .records(&format!("apply to {}", self.spec.side(side).name));

        // Creates, batched where the system has a batch endpoint.
        let prepared: Vec<(&PlanRow, Result<Prepared, String>)> = creates
            .iter()
            .map(|(r, native)| {
                let sender = id_on(r, side.other()).unwrap_or_default();
                (
                    *r,
                    target.prepare_create(native.clone(), &row_uuid(self.plan_key, r.row), sender),
                )
            })
            .collect();
        if self.opts.dry_run {
            for (r, p) in &prepared {
                self.dry.push(match p {
                    Ok(p) => p.describe(&redact),
                    Err(e) => format!("row {}: {e}", r.row),
                });
            }
            for (r, id, native) in &updates {
                let whole = target.replaces().then(|| Value::Object(Map::new()));
                self.dry
                    .push(match target.prepare_update(id, native.clone(), whole) {
                        Ok(p) if target.replaces() => format!(
                            "{} (merged into the record read first)",
                            p.describe(&redact)
                        ),
                        Ok(p) => p.describe(&redact),
                        Err(e) => format!("row {}: {e}", r.row),
                    });
            }
            for (_, id) in &deletes {
                self.dry.push(match target.prepare_delete(id) {
                    Ok(p) => p.describe(&redact),
                    Err(e) => e,
                });
            }
            return Ok(());
        }
        let created = |r: &PlanRow, result: Result<Value, String>| match result {
            Ok(resp) => match target.created_id(&resp) {
                Some(id) => Done {
                    row: r.row,
                    state: "done",
                    target: Some(id),
                    message: None,
                },
                None => Done {
                    row: r.row,
                    state: "failed",
                    target: None,
                    message: Some(redact(&format!(
                        "no id in the answer: {}",
                        truncate(&resp.to_string())
                    ))),
                },
            },
            Err(e) => Done {
                row: r.row,
                state: "failed",
                target: None,
                message: Some(e),
            },
        };
        match target.batch_size() {
            Some(max) => {
                for chunk in prepared.chunks(max) {
                    let rows_in: Vec<&PlanRow> = chunk.iter().map(|c| c.0).collect();
                    self.mark_sent(&rows_in)?;
                    let items: Vec<Value> = chunk
                        .iter()
                        .filter_map(|c| match &c.1 {
                            Ok(Prepared {
                                body: Some(Body::Json(v)),
                                ..
                            }) => Some(v.clone()),
                            _ => None,
                        })
                        .collect();
                    let done: Vec<Done> = if items.len() != chunk.len() {
                        chunk
                            .iter()
                            .map(|c| {
                                created(c.0, Err("the record cannot be sent in a batch".into()))
                            })
                            .collect()
                    } else {
                        let p = target
                            .prepare_batch(items)
                            .expect("batch_size implies a batch endpoint");
                        match rt.block_on(target.send(&p)) {
                            Ok(Value::Array(answers)) if answers.len() == chunk.len() => chunk
                                .iter()
                                .zip(answers)
                                .map(|(c, a)| created(c.0, Ok(a)))
                                .collect(),
                            Ok(other) => chunk
                                .iter()
                                .map(|c| {
                                    created(
                                        c.0,
                                        Err(format!(
                                            "unexpected batch answer: {}",
                                            truncate(&other.to_string())
                                        )),
                                    )
                                })
                                .collect(),
                            Err(e) => chunk
                                .iter()
                                .map(|c| created(c.0, Err(e.to_string())))
                                .collect(),
                        }
                    };
                    bar.inc(chunk.len() as u64);
                    self.set(&done, &by_row, side)?;
                }
            }
            None => {
                for chunk in prepared.chunks(64) {
                    let rows_in: Vec<&PlanRow> = chunk.iter().map(|c| c.0).collect();
                    self.mark_sent(&rows_in)?;
                    let done: Vec<Done> = rt.block_on(
                        futures::stream::iter(chunk.iter().map(|(r, p)| {
                            let target = &target;
                            let created = &created;
                            async move {
                                let result = match p {
                                    Ok(p) => target.send(p).await.map_err(|e| e.to_string()),
                                    Err(e) => Err(e.clone()),
                                };
                                created(r, result)
                            }
                        }))
                        .buffer_unordered(parallel)
                        .collect(),
                    );
                    bar.inc(chunk.len() as u64);
                    self.set(&done, &by_row, side)?;
                }
            }
        }

        // Updates: in batches where the system takes them, else each to its
        // record (whole-record systems read it first).
        if let Some(max) = target.batch_update_size() {
            for chunk in updates.chunks(max) {
                let rows_in: Vec<&PlanRow> = chunk.iter().map(|c| c.0).collect();
                self.mark_sent(&rows_in)?;
                let p = target
                    .prepare_batch_update(
                        chunk
                            .iter()
                            .map(|(_, id, native)| (id.clone(), native.clone()))
                            .collect(),
                    )
                    .expect("batch_update_size implies a batch endpoint");
                let done: Vec<Done> = match rt.block_on(target.send(&p)) {
                    Ok(Value::Array(answers)) if answers.len() == chunk.len() => chunk
                        .iter()
                        .map(|(r, id, _)| Done {
                            row: r.row,
                            state: "done",
                            target: Some(id.clone()),
                            message: None,
                        })
                        .collect(),
                    Ok(other) => chunk
                        .iter()
                        .map(|(r, _, _)| Done {
                            row: r.row,
                            state: "failed",
                            target: None,
                            message: Some(redact(&format!(
                                "unexpected batch answer: {}",
                                truncate(&other.to_string())
                            ))),
                        })
                        .collect(),
                    Err(e) => chunk
                        .iter()
                        .map(|(r, _, _)| Done {
                            row: r.row,
                            state: "failed",
                            target: None,
                            message: Some(e.to_string()),
                        })
                        .collect(),
                };
                bar.inc(chunk.len() as u64);
                self.set(&done, &by_row, side)?;
            }
            updates.clear();
        }
        for chunk in updates.chunks(64) {
            let rows_in: Vec<&PlanRow> = chunk.iter().map(|c| c.0).collect();
            self.mark_sent(&rows_in)?;
            let done: Vec<Done> = rt.block_on(async {
                futures::stream::iter(chunk.iter().map(|(r, id, native)| {
                    let target = &target;
                    async move {
                        let whole = if target.replaces() {
                            match target.get(id).await {
                                Ok(w) => Some(w),
                                Err(e) => {
                                    return Done {
                                        row: r.row,
                                        state: "failed",
                                        target: None,
                                        message: Some(e.to_string()),
                                    };
                                }
                            }
                        } else {
                            None
                        };
                        let p: Result<Prepared, String> =
                            target.prepare_update(id, native.clone(), whole);
                        match p {
                            Ok(p) => match target.send(&p).await {
                                Ok(_) => Done {
                                    row: r.row,
                                    state: "done",
                                    target: Some(id.clone()),
                                    message: None,
                                },
                                Err(e) => Done {
                                    row: r.row,
                                    state: "failed",
                                    target: None,
                                    message: Some(e.to_string()),
                                },
                            },
                            Err(e) => Done {
                                row: r.row,
                                state: "failed",
                                target: None,
                                message: Some(e),
                            },
                        }
                    }
                }))
                .buffer_unordered(parallel)
                .collect()
                .await
            });
            bar.inc(chunk.len() as u64);
            self.set(&done, &by_row, side)?;
        }

        for (r, id) in &deletes {
            self.mark_sent(&[*r])?;
            let d = match target.prepare_delete(id) {
                Ok(p) => match rt.block_on(target.send(&p)) {
                    Ok(_) => Done {
                        row: r.row,
                        state: "done",
                        target: Some(id.clone()),
                        message: None,
                    },
                    Err(e) => Done {
                        row: r.row,
                        state: "failed",
                        target: None,
                        message: Some(e.to_string()),
                    },
                },
                Err(e) => Done {
                    row: r.row,
                    state: "failed",
                    target: None,
                    message: Some(e),
                },
            };
            self.set(&[d], &by_row, side)?;
        }
        bar.finish();
        Ok(())
    }
}

fn truncate(s: &str) -> String {
    s.chars().take(300).collect()
}
