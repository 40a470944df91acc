use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = host_trainer::cli::Cli::parse();
    match host_trainer::cli::run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
