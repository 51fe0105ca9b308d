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

/// What `recon bench` measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Kind {
    /// Plan N x N generated customers.
    Plan,
    /// Pull N MoySklad counterparties (1000 per page) from the emulator.
    Pull,
    /// Apply N changes (half creates, half updates) to the emulator, journal on.
    Apply,
}

pub fn run(
    kind: Kind,
    rows: u64,
    seed: u64,
    out: Option<PathBuf>,
    ui: &Progress,
) -> anyhow::Result<Outcome> {
    let out = out.unwrap_or_else(|| {
        PathBuf::from("bench/out").join(format!("{kind:?}-{rows}").to_lowercase())
    });
    match kind {
        Kind::Plan => plan(rows, seed, out, ui),
        Kind::Pull | Kind::Apply => emulated(kind, rows, seed, out, ui),
    }
}

/// Run `recon` as a child with `args`, returning wall seconds and peak memory.
fn timed(
    home: &Path,
    args: &[&str],
    env: &[(String, String)],
) -> anyhow::Result<(f64, f64, String)> {
    let exe = std::env::current_exe()?;
    let started = Instant::now();
    let child = Command::new(exe)
        .arg("--home")
        .arg(home)
        .arg("--quiet")
        .args(args)
        .envs(env.iter().cloned())
        .env(PEAK_RSS_ENV, "1")
        .output()
        .context("running recon")?;
    let seconds = started.elapsed().as_secs_f64();
    let stderr = String::from_utf8_lossy(&child.stderr).to_string();
    if !matches!(child.status.code(), Some(0 | 2)) {
        bail!("recon {} failed:\n{stderr}", args.join(" "));
    }
    let peak_kb: u64 = stderr
        .lines()
        .find_map(|l| l.strip_prefix("peak_rss_kb: "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    Ok((seconds, peak_kb as f64 / 1024.0, stderr))
}

/// Pull or apply against an emulated MoySklad served by this process.
fn emulated(
    kind: Kind,
    rows: u64,
    seed: u64,
    out: PathBuf,
    ui: &Progress,
) -> anyhow::Result<Outcome> {
    use crate::emulate::{Config, Emulator, System};
    if out.exists() {
        std::fs::remove_dir_all(&out).with_context(|| format!("clearing {}", out.display()))?;
    }
    std::fs::create_dir_all(&out)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let records = match kind {
        Kind::Pull => rows as usize,
        _ => (rows as usize).max(1000),
    };
    let config = Config {
        systems: vec![System::MoySklad],
        records,
        seed,
        rate_limits: false,
        ..Config::default()
    };
    let em = rt.block_on(Emulator::start(
        config,
        "127.0.0.1:0".parse().expect("an address"),
    ))?;
    let (updates, creates) = match kind {
        Kind::Pull => (0, 0),
        _ => ((rows / 2) as usize, (rows - rows / 2) as usize),
    };
    let (spec, env) = bench::counterparty_fixture(&em, &out, updates, creates, true)?;
    let spec_s = spec.display().to_string();
    let result = match kind {
        Kind::Pull => {
            let started = Instant::now();
            em.warm(System::MoySklad, "counterparty");
            ui.say(format!(
                "the emulator rendered {rows} records in {:.2}s (not timed)",
                started.elapsed().as_secs_f64()
            ));
            let (seconds, peak, _) = timed(&out, &["pull", &spec_s], &env)?;
            let rate = rows as f64 / seconds;
            ui.say(format!("pulled {rows} MoySklad records (1000 per page) in {seconds:.2}s: {rate:.0} records/s, peak memory {peak:.0} MB"));
            serde_json::json!({"kind": "pull", "records": rows, "seconds": seconds, "records_per_second": rate, "peak_rss_mb": peak})
        }
        _ => {
            timed(&out, &["run", &spec_s], &env)?;
            let plan = latest_plan(&out, "cp")?;
            let plan_s = plan.display().to_string();
            let (seconds, peak, _) = timed(&out, &["apply", "--yes", &plan_s], &env)?;
            let applied: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(plan.join("apply.json"))?)?;
            let done = applied["counts"]["done"].as_u64().unwrap_or(0);
            let rate = done as f64 / seconds;
            ui.say(format!(
                "applied {done} of {rows} changes ({creates} creates, {updates} updates) with the journal in {seconds:.2}s: {rate:.0} changes/s, peak memory {peak:.0} MB"
            ));
            serde_json::json!({"kind": "apply", "changes": rows, "done": done, "seconds": seconds, "changes_per_second": rate, "peak_rss_mb": peak})
        }
    };
    rt.block_on(em.shutdown());
    std::fs::write(
        out.join("result.json"),
        serde_json::to_string_pretty(&result)?,
    )?;
    ui.say(format!("  wrote {}", out.join("result.json").display()));
    Ok(Outcome::InSync)
}

fn plan(rows: u64, seed: u64, out: PathBuf, ui: &Progress) -> anyhow::Result<Outcome> {
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

    let (seconds, peak_mb, _) = timed(&out, &["plan", &spec_path.display().to_string()], &[])?;
    let plan_dir = latest_plan(&out, "bench")?;
    let (summary, _) = read_plan(&plan_dir).map_err(anyhow::Error::msg)?;
    let result = serde_json::json!({
        "rows": rows,
        "seed": seed,
        "plan_seconds": seconds,
        "peak_rss_mb": peak_mb,
        "counts": summary.counts,
        "snapshots": generated.paths,
        "plan": plan_dir.join(&summary.plan),
    });
    std::fs::write(
        out.join("result.json"),
        serde_json::to_string_pretty(&result)?,
    )?;
    ui.say(format!(
        "plan of {rows} x {rows}: {seconds:.2}s wall, peak memory {peak_mb:.0} MB"
    ));
    ui.say(format!(
        "  counts: {}",
        serde_json::Value::Object(summary.counts)
    ));
    ui.say(format!("  wrote {}", out.join("result.json").display()));
    Ok(Outcome::InSync)
}

/// The newest plan folder of `spec` under `out` (run ids sort by time).
fn latest_plan(out: &Path, spec: &str) -> anyhow::Result<PathBuf> {
    let dir = out.join("reports").join(spec);
    std::fs::read_dir(&dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .max()
        .context("the plan wrote no folder")
}

/// Peak resident memory of this process in kB (Linux), for `recon bench`.
pub fn peak_rss_kb() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}
