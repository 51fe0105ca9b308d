//! The `recon` binary: parse arguments, run the command, map the outcome to
//! an exit code (0 in sync, 2 changes pending, 1 error).

use std::process::ExitCode;

use clap::Parser;

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
