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

/// Read a snapshot's footer metadata and its hash.
pub fn read_info(path: &Path) -> Result<SnapshotInfo, String> {
    Ok(SnapshotInfo {
        sha256: snapshot_sha256(path)?,
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

/// A snapshot's SHA-256: the one its writer kept beside it
/// (`<snapshot>.sha256`), unless the snapshot was written after it or it
/// does not name the snapshot; else hashed from the file.
pub fn snapshot_sha256(path: &Path) -> Result<String, String> {
    let sums = super::write::hash_path(path);
    let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    if let (Some(kept), Some(data)) = (modified(&sums), modified(path))
        && kept >= data
        && let Ok(text) = std::fs::read_to_string(&sums)
        && let Some((hash, name)) = text.trim_end().split_once("  ")
        && hash.len() == 64
        && hash.bytes().all(|b| b.is_ascii_hexdigit())
        && path
            .file_name()
            .is_some_and(|n| n.to_string_lossy() == name)
    {
        return Ok(hash.to_ascii_lowercase());
    }
    file_sha256(path)
}

/// The SHA-256 of a file's bytes, in hex.
fn file_sha256(path: &Path) -> Result<String, String> {
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

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use super::*;
    use crate::snapshot::write::hash_path;
    use crate::snapshot::{SnapshotWriter, arrow_schema};

    fn touch(path: &Path, at: SystemTime) {
        std::fs::File::options()
            .append(true)
            .open(path)
            .unwrap()
            .set_modified(at)
            .unwrap();
    }

    #[test]
    fn a_snapshot_keeps_its_hash_beside_it_until_it_is_rewritten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("20260101T000000.000Z.parquet");
        let mut w = SnapshotWriter::create(&path, arrow_schema(&[]), vec![]).unwrap();
        for i in 0..100 {
            w.push(&format!("id{i}"), vec![]).unwrap();
        }
        w.finish(vec![]).unwrap();
        let real = file_sha256(&path).unwrap();
        let sums = std::fs::read_to_string(hash_path(&path)).unwrap();
        assert_eq!(sums, format!("{real}  20260101T000000.000Z.parquet\n"));
        assert_eq!(snapshot_sha256(&path).unwrap(), real);

        // The kept hash is what a plan reads.
        let kept = "ab".repeat(32);
        std::fs::write(
            hash_path(&path),
            format!("{kept}  20260101T000000.000Z.parquet\n"),
        )
        .unwrap();
        let now = SystemTime::now();
        touch(&path, now - Duration::from_secs(60));
        touch(&hash_path(&path), now);
        assert_eq!(snapshot_sha256(&path).unwrap(), kept);

        // A snapshot written after its hash, or a hash of another file, is
        // hashed again.
        touch(&path, now + Duration::from_secs(60));
        assert_eq!(snapshot_sha256(&path).unwrap(), real);
        touch(&path, now - Duration::from_secs(60));
        std::fs::write(hash_path(&path), format!("{kept}  other.parquet\n")).unwrap();
        touch(&hash_path(&path), now);
        assert_eq!(snapshot_sha256(&path).unwrap(), real);
        std::fs::remove_file(hash_path(&path)).unwrap();
        assert_eq!(snapshot_sha256(&path).unwrap(), real);
    }
}
