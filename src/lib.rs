//! recon: batch reconciliation between business systems.
//!
//! # Layout
//!
//! The folders follow the flow of one run, each stage reading what the one
//! before it wrote to disk:
//!
//! - [`spec`]: the TOML spec, parsed into a wire model and validated into a
//!   typed [`spec::Spec`] with file/line/column diagnostics.
//! - [`connect`]: where records come from (files today; HTTP profiles plug in
//!   beside them).
//! - [`snapshot`]: native records mapped to typed canonical columns and
//!   written atomically as Parquet, with a rejects file for unreadable rows.
//! - [`engine`]: the pure plan function over Polars frames: normalize keys,
//!   match by cascade, compare under field rules, classify.
//! - [`report`]: the plan written for machines and people.
//! - [`apply`]: the approved plan written to the receiving side, through a
//!   journal that makes a crash and a rerun neither lose nor repeat a write.
//! - [`ledger`]: recon's own state in SQLite (runs, links).
//! - [`emulate`]: the vendor APIs served in-process (`recon emulate`), for
//!   tests, benchmarks and trying a spec before going live.
//! - [`cli`]: one file per command; [`ui`]: output and progress.

pub mod apply;
pub mod bench;
pub mod cli;
pub mod connect;
pub mod emulate;
pub mod engine;
pub mod ledger;
pub mod report;
pub mod snapshot;
pub mod spec;
pub mod ui;
