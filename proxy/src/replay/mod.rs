//! `fedproxy replay` (being written).

use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct ReplayArgs {
    /// Capture files (pcap or pcapng).
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
}

pub fn main(_args: ReplayArgs) -> ExitCode {
    ExitCode::FAILURE
}
