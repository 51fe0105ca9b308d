//! Snapshots: one immutable Parquet file per side and pull.
//!
//! `snapshots/<spec>/<side>/<UTC timestamp>.parquet` holds `_id` (the
//! record's native id) and one typed column per canonical field the side
//! has. Key-value metadata says where it came from. Records that could not be
//! read land in `<timestamp>.rejects.csv` beside it.

pub mod convert;
pub mod merge;
mod pull;
mod read;
mod write;

pub use pull::{PullOptions, PullOutcome, pull_side};
pub use read::{SnapshotInfo, latest, read_footer, read_info, snapshot_sha256};
pub use write::{SnapshotWriter, arrow_schema};

/// Metadata keys written into every snapshot.
pub mod meta {
    pub const SPEC: &str = "recon.spec";
    pub const SPEC_HASH: &str = "recon.spec_hash";
    pub const SIDE: &str = "recon.side";
    pub const SOURCE: &str = "recon.source";
    pub const MODE: &str = "recon.mode";
    pub const ROWS: &str = "recon.rows";
    pub const REJECTS: &str = "recon.rejects";
    pub const PULLED_AT: &str = "recon.pulled_at";
    pub const CHANGED: &str = "recon.changed";
    pub const DELETED_UPSTREAM: &str = "recon.deleted_upstream";
    /// Where an incremental read from this snapshot's state starts.
    pub const CURSOR: &str = "recon.cursor";
}

/// The column holding each record's native id.
pub const ID_COLUMN: &str = "_id";
