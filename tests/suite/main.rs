//! The integration suite, one test binary. Each module covers one part of
//! the flow; run one with `cargo test --test suite engine::`.
//!
//! One binary instead of one per file: every test binary links Polars, and
//! fifteen of them took 12 GB of disk and most of the build's link time.

mod common;

mod apply;
mod browser;
mod emulate;
mod engine;
mod http;
mod properties;
mod pull;
mod report_bench;
mod report_html;
mod scenario_calltouch_moysklad;
mod scenario_eaccounting_ccv;
mod scenario_mplus_teamleader;
mod scenario_teamsystem_reviso;
mod scenario_unas_minicrm;
mod spec;
