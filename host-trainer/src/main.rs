use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    host_trainer::allocator::reuse_freed_buffers();
    let cli = host_trainer::cli::Cli::parse();
    match host_trainer::cli::run(cli) {
        Ok(code) => code,
        Err(e) => {
            host_trainer::say!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
