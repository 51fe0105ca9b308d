//! `recon emulate SYSTEM...`: serve emulated vendor APIs on one local port
//! until Ctrl-C, so a spec can be tried before it meets the real systems.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{Context, bail};

use super::Outcome;
use crate::emulate::{Config, Emulator, Faults, System};
use crate::ui::Progress;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Systems to serve: moysklad, retailcrm, teamleader, reviso,
    /// eaccounting, or all.
    #[arg(required = true, num_args = 1.., value_name = "SYSTEM")]
    pub systems: Vec<String>,
    /// Port on 127.0.0.1 (0 picks a free one).
    #[arg(long, default_value_t = 8787)]
    pub port: u16,
    /// Seeded records per entity (generated on demand: a million costs no memory).
    #[arg(long, default_value_t = 100)]
    pub records: usize,
    /// Seed of the records, credentials and faults.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Injected faults as shares of requests, e.g.
    /// `500=0.05,429=0.05,slow=0.02:1500,malformed=0.02`.
    #[arg(long, default_value = "none")]
    pub faults: Faults,
    /// State file: loaded at start if it exists, written on exit.
    #[arg(long, value_name = "FILE")]
    pub state: Option<PathBuf>,
    /// Serve without the vendors' request limits.
    #[arg(long)]
    pub no_rate_limits: bool,
}

fn systems(names: &[String]) -> anyhow::Result<Vec<System>> {
    let mut out = Vec::new();
    for name in names {
        if name.eq_ignore_ascii_case("all") {
            out.extend(System::ALL);
        } else {
            out.push(name.parse::<System>().map_err(anyhow::Error::msg)?);
        }
    }
    out.sort();
    out.dedup();
    if out.is_empty() {
        bail!("name at least one system to emulate");
    }
    Ok(out)
}

pub fn run(args: &Args, ui: &Progress) -> anyhow::Result<Outcome> {
    let config = Config {
        systems: systems(&args.systems)?,
        records: args.records,
        seed: args.seed,
        faults: args.faults,
        rate_limits: !args.no_rate_limits,
        state_file: args.state.clone(),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(serve(config, args.port, ui))
}

async fn serve(config: Config, port: u16, ui: &Progress) -> anyhow::Result<Outcome> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let loaded = config.state_file.as_ref().filter(|p| p.exists()).cloned();
    let systems = config.systems.clone();
    let (faults, rate_limits) = (config.faults, config.rate_limits);
    let state_file = config.state_file.clone();
    let emulator = Emulator::start(config, addr)
        .await
        .with_context(|| format!("starting the emulator on {addr}"))?;
    ui.say(format!(
        "recon emulate on {}: {} records per entity, seed {}, faults {faults}, rate limits {}",
        emulator.root(),
        emulator.records_per_entity(),
        emulator.seed(),
        if rate_limits { "on" } else { "off" }
    ));
    if let Some(path) = &loaded {
        ui.say(format!("loaded state from {}", path.display()));
    }
    for system in &systems {
        let mut line = format!("  {:<12} {}", system.name(), emulator.base_url(*system));
        if let Some(token_url) = emulator.token_url(*system) {
            line.push_str(&format!("  (OAuth2 token endpoint {token_url})"));
        }
        ui.say(line);
        ui.say(format!(
            "  {:<12} entities: {}",
            "",
            system.entities().join(", ")
        ));
        let credentials: Vec<String> = emulator
            .credentials(*system)
            .into_iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        ui.say(format!("  {:<12} {}", "", credentials.join("  ")));
    }
    ui.say(format!(
        "  {:<12} {}/_admin/ (GET state, GET stats, POST save, POST|PATCH|DELETE SYSTEM/ENTITY[/ID], POST reviso/renumber)",
        "admin",
        emulator.root()
    ));
    match &state_file {
        Some(path) => ui.say(format!(
            "Ctrl-C to stop and save the state to {}",
            path.display()
        )),
        None => ui.say("Ctrl-C to stop"),
    }
    tokio::signal::ctrl_c()
        .await
        .context("waiting for Ctrl-C")?;
    if let Some(path) = &state_file {
        emulator
            .save(path)
            .with_context(|| format!("saving the state to {}", path.display()))?;
        ui.say(format!("saved the state to {}", path.display()));
    }
    let stats = emulator.stats();
    for system in &systems {
        let s = stats.system(*system);
        ui.say(format!(
            "{}: {} requests, {} faults injected, {} rate limited, {} unauthorized, {} writes",
            system.name(),
            s.requests,
            s.faults,
            s.rate_limited,
            s.unauthorized,
            s.writes + s.admin_writes
        ));
    }
    emulator.shutdown().await;
    Ok(Outcome::InSync)
}
