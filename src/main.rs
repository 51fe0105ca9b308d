//! The `recon` binary: parse arguments, run the command, map the outcome to
//! an exit code (0 in sync, 2 changes pending, 1 error).

use std::process::ExitCode;

use clap::Parser;

// Polars allocates and frees large column buffers at a high rate; glibc's
// malloc spends a fifth of a 1M-row plan zeroing fresh pages and merging
// chunks, where mimalloc reuses them. Without transparent huge pages: each
// fresh 2 MiB page is zeroed in full, which cost seconds of system time.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = recon::cli::Cli::parse();
    cli.init_logging();
    match cli.run() {
        Ok(outcome) => ExitCode::from(outcome.code()),
        Err(e) => {
            eprintln!("{}", recon::cli::render_error(&e));
            ExitCode::from(1)
        }
    }
}
