//! `recon bench`: generate two sides of N customers and time the plan in a
//! child process, reporting its wall time and peak memory.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, bail};

use super::Outcome;
use crate::bench;
use crate::report::read_plan;
use crate::spec::Spec;
use crate::ui::Progress;

/// Environment variable that makes `recon` print its peak memory on exit.
pub const PEAK_RSS_ENV: &str = "RECON_PEAK_RSS";

pub fn run(rows: u64, seed: u64, out: Option<PathBuf>, ui: &Progress) -> anyhow::Result<Outcome> {
    let out = out.unwrap_or_else(|| PathBuf::from("bench/out").join(rows.to_string()));
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let spec_path = out.join("bench.toml");
    std::fs::write(&spec_path, bench::SPEC)?;
    let spec = Spec::load(&spec_path)?;

    let started = Instant::now();
    let stamp = super::stamp(chrono::Utc::now());
    let generated = bench::generate(&spec, &out, rows, seed, &stamp)?;
    ui.say(format!(
        "generated {} + {} records in {:.1}s -> {}, {}",
        generated.rows[0],
        generated.rows[1],
        started.elapsed().as_secs_f64(),
        generated.paths[0].display(),
        generated.paths[1].display()
    ));

    let exe = std::env::current_exe()?;
    let started = Instant::now();
    let child = Command::new(exe)
        .arg("--home")
        .arg(&out)
        .arg("--quiet")
        .arg("plan")
        .arg(&spec_path)
        .env(PEAK_RSS_ENV, "1")
        .output()
        .context("running recon plan")?;
    let seconds = started.elapsed().as_secs_f64();
    let stderr = String::from_utf8_lossy(&child.stderr);
    if !matches!(child.status.code(), Some(0 | 2)) {
        bail!("recon plan failed:\n{stderr}");
    }
    let peak_kb: u64 = stderr
        .lines()
        .find_map(|l| l.strip_prefix("peak_rss_kb: "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    let plan_dir = latest_plan(&out)?;
    let (summary, _) = read_plan(&plan_dir).map_err(anyhow::Error::msg)?;
    let result = serde_json::json!({
        "rows": rows,
        "seed": seed,
        "plan_seconds": seconds,
        "peak_rss_mb": peak_kb as f64 / 1024.0,
        "counts": summary.counts,
        "snapshots": generated.paths,
        "plan": plan_dir.join(&summary.plan),
    });
    std::fs::write(
        out.join("result.json"),
        serde_json::to_string_pretty(&result)?,
    )?;
    ui.say(format!(
        "plan of {rows} x {rows}: {seconds:.2}s wall, peak memory {:.0} MB",
        peak_kb as f64 / 1024.0
    ));
    ui.say(format!(
        "  counts: {}",
        serde_json::Value::Object(summary.counts)
    ));
    ui.say(format!("  wrote {}", out.join("result.json").display()));
    Ok(Outcome::InSync)
}

fn latest_plan(out: &Path) -> anyhow::Result<PathBuf> {
    let dir = out.join("reports").join("bench");
    let mut runs: Vec<PathBuf> = std::fs::read_dir(&dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    runs.sort();
    runs.pop().context("the plan wrote no folder")
}

/// Peak resident memory of this process in kB (Linux), for `recon bench`.
pub fn peak_rss_kb() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}
