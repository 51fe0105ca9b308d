//! Finding and describing snapshots. The engine reads their rows with Polars.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use parquet::file::reader::{FileReader, SerializedFileReader};
use sha2::{Digest, Sha256};

/// A snapshot on disk and what its metadata says.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SnapshotInfo {
    pub path: PathBuf,
    pub sha256: String,
    pub rows: u64,
    pub metadata: BTreeMap<String, String>,
}

/// The newest snapshot of `side` for `spec` under `home`, if any.
pub fn latest(home: &Path, spec: &str, side: &str) -> std::io::Result<Option<PathBuf>> {
    let dir = home.join("snapshots").join(spec).join(side);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Ok(None);
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension().is_some_and(|e| e == "parquet")
                && !p
                    .file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with('.'))
        })
        .collect();
    // Names are UTC timestamps, so the greatest name is the newest.
    files.sort();
    Ok(files.pop())
}

/// Read a snapshot's footer metadata and hash its bytes.
pub fn read_info(path: &Path) -> Result<SnapshotInfo, String> {
    Ok(SnapshotInfo {
        sha256: file_sha256(path)?,
        ..read_footer(path)?
    })
}

/// Read a snapshot's footer metadata only: `sha256` is left empty.
pub fn read_footer(path: &Path) -> Result<SnapshotInfo, String> {
    let ctx = |e: &dyn std::fmt::Display| format!("cannot read snapshot {}: {e}", path.display());
    let file = File::open(path).map_err(|e| ctx(&e))?;
    let reader = SerializedFileReader::new(file).map_err(|e| ctx(&e))?;
    let md = reader.metadata().file_metadata();
    let metadata: BTreeMap<String, String> = md
        .key_value_metadata()
        .into_iter()
        .flatten()
        .filter(|kv| kv.key.starts_with("recon."))
        .map(|kv| (kv.key.clone(), kv.value.clone().unwrap_or_default()))
        .collect();
    Ok(SnapshotInfo {
        path: path.to_path_buf(),
        sha256: String::new(),
        rows: md.num_rows() as u64,
        metadata,
    })
}

/// The SHA-256 of a file's bytes, in hex.
pub fn file_sha256(path: &Path) -> Result<String, String> {
    let ctx = |e: &dyn std::fmt::Display| format!("cannot read snapshot {}: {e}", path.display());
    let mut hasher = Sha256::new();
    let mut f = File::open(path).map_err(|e| ctx(&e))?;
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = f.read(&mut buf).map_err(|e| ctx(&e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(format!("{:x}", hasher.finalize()))
}
