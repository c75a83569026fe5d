//! `fedproxy run` (being written).

use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct RunArgs {
    /// Configuration file (TOML).
    #[arg(long, short)]
    pub config: PathBuf,
}

pub fn main(_args: RunArgs, _log_format: &str) -> ExitCode {
    eprintln!("fedproxy run: not built yet");
    ExitCode::FAILURE
}
