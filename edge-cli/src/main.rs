use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = edge_cli::Cli::parse();
    match edge_cli::run(cli) {
        Ok(code) => code,
        // `edge-cli classify ... | head`: a closed pipe is the reader's choice, not an error.
        Err(e)
            if e.downcast_ref::<std::io::Error>()
                .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe) =>
        {
            ExitCode::SUCCESS
        }
        Err(e) => {
            edge_cli::warn!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
