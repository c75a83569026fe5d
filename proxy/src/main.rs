//! `fedproxy`: transparent interop proxy beside slurmctld.

use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};

/// Transparent interop proxy for Slurm federations: relays slurmctld's traffic,
/// decodes every RPC byte-exactly, exports Prometheus metrics, and replays captures.
#[derive(Parser)]
#[command(name = "fedproxy", version, about, long_about = None)]
struct Cli {
    /// Log format of `fedproxy run` (text or json), before or after the subcommand.
    #[arg(long, global = true, default_value = "text", value_parser = ["text", "json"])]
    log_format: String,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the proxy beside slurmctld (inbound, outbound and static-route listeners,
    /// admin HTTP with /metrics, /live, /ready).
    Run(fedproxy::run::RunArgs),

    /// Decode every frame of every TCP connection in pcap/pcapng captures, re-encode
    /// it and compare with the captured bytes.
    Replay(fedproxy::replay::ReplayArgs),

    /// The iptables/nftables rules that send slurmctld's traffic through the
    /// proxy, generated from its configuration: plan, apply, remove, status.
    Rules(fedproxy::rules::RulesArgs),

    /// Write the man pages (fedproxy.1 and one per subcommand) into DIR.
    #[command(hide = true)]
    Man { dir: std::path::PathBuf },

    /// Print a Wireshark/tshark Lua dissector for Slurm generated from the codec's
    /// tables (`fedproxy dissector > deploy/wireshark/slurm.lua`).
    Dissector(fedproxy::dissector::DissectorArgs),

    /// Follow a running proxy's decoded messages live (its admin `/tap` stream), in
    /// the conversation format or as JSON lines.
    Tap(fedproxy::run::tap_client::TapArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Run(args) => fedproxy::run::main(args, &cli.log_format),
        Command::Replay(args) => fedproxy::replay::main(args),
        Command::Rules(args) => fedproxy::rules::main(args),
        Command::Man { dir } => match clap_mangen::generate_to(Cli::command(), &dir) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("fedproxy man: {}: {e}", dir.display());
                ExitCode::FAILURE
            }
        },
        Command::Dissector(args) => fedproxy::dissector::main(args),
        Command::Tap(args) => fedproxy::run::tap_client::main(args),
    }
}
