use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = edge_cli::Cli::parse();
    match edge_cli::run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
