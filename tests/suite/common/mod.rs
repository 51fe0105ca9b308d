//! Shared helpers for integration tests: a fresh folder per test, fixtures
//! written by the test, and the real binary.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A temporary working folder holding specs, data, snapshots and reports.
pub struct Dir {
    pub tmp: tempfile::TempDir,
}

impl Dir {
    pub fn new() -> Self {
        Self {
            tmp: tempfile::tempdir().expect("temp dir"),
        }
    }

    pub fn path(&self) -> &Path {
        self.tmp.path()
    }

    /// Write a file (creating folders) and return its path.
    pub fn write(&self, name: &str, bytes: impl AsRef<[u8]>) -> PathBuf {
        let p = self.path().join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, bytes).unwrap();
        p
    }

    /// Run `recon` with `--home` set to this folder.
    pub fn recon(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_recon"))
            .arg("--home")
            .arg(self.path())
            .args(args)
            .output()
            .expect("run recon")
    }

    /// Files under `rel` whose names end with `suffix`, sorted.
    pub fn files(&self, rel: &str, suffix: &str) -> Vec<PathBuf> {
        let mut out = Vec::new();
        walk(&self.path().join(rel), &mut |p| {
            if p.to_string_lossy().ends_with(suffix) {
                out.push(p.to_path_buf());
            }
        });
        out.sort();
        out
    }
}

fn walk(dir: &Path, f: &mut dyn FnMut(&Path)) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            walk(&p, f);
        } else {
            f(&p);
        }
    }
}

/// stdout and stderr of a run, for assertion messages.
pub fn show(o: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Read a Parquet file into a Polars frame.
pub fn read_parquet(path: &Path) -> polars::prelude::DataFrame {
    use polars::prelude::*;
    ParquetReader::new(std::fs::File::open(path).unwrap())
        .finish()
        .unwrap()
}

/// The string values of a column, in row order.
pub fn strings(df: &polars::prelude::DataFrame, name: &str) -> Vec<Option<String>> {
    df.column(name)
        .unwrap()
        .cast(&polars::prelude::DataType::String)
        .unwrap()
        .str()
        .unwrap()
        .iter()
        .map(|v| v.map(str::to_string))
        .collect()
}

/// An emulator serving on its own runtime while the test drives the binary.
pub struct Served {
    pub em: recon::emulate::Emulator,
    _rt: tokio::runtime::Runtime,
}

/// Start the emulator on 127.0.0.1:0 with `config`.
pub fn serve(config: recon::emulate::Config) -> Served {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    let em = rt
        .block_on(recon::emulate::Emulator::start(
            config,
            "127.0.0.1:0".parse().expect("an address"),
        ))
        .expect("the emulator starts");
    Served { em, _rt: rt }
}

impl Dir {
    /// Run `recon` with `--home` set to this folder and `env` set.
    pub fn recon_env(
        &self,
        env: &std::collections::BTreeMap<String, String>,
        args: &[&str],
    ) -> Output {
        Command::new(env!("CARGO_BIN_EXE_recon"))
            .arg("--home")
            .arg(self.path())
            .args(args)
            .envs(env)
            .output()
            .expect("run recon")
    }
}
