//! `fedproxy replay`: decode every frame of every TCP connection in pcap/pcapng
//! captures, re-encode it, compare with the captured bytes, and show the result
//! as a summary, JSON lines or a readable conversation.

pub mod conversation;
pub mod decode;
pub mod json;
pub mod summary;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use crate::capture::read_capture;

pub use decode::{replay_capture, ReplayedConnection, ReplayedFrame};
pub use summary::Totals;

#[derive(clap::Args, Debug)]
#[command(after_help = "Exit status: 0 when every frame decodes and re-encodes byte-exact, \
1 when any frame fails to decode or round-trip, 2 when a capture cannot be read.")]
pub struct ReplayArgs {
    /// Capture files (pcap or pcapng; link types Ethernet, Linux SLL/SLL2, NULL/loopback, raw IP).
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,

    /// One JSON object per top-level message (and per decode error), one per line.
    #[arg(long, conflicts_with = "conversation")]
    pub json: bool,

    /// A readable conversation: one line per message, connections labelled by cluster.
    #[arg(long)]
    pub conversation: bool,

    /// With --conversation: only controller <-> controller federation connections.
    #[arg(long, requires = "conversation")]
    pub peers_only: bool,
}

pub fn main(args: ReplayArgs) -> ExitCode {
    let mut totals = Totals::default();
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut replayed = Vec::with_capacity(args.files.len());
    for path in &args.files {
        match read_capture(path) {
            Ok(capture) => replayed.push((path.display().to_string(), replay_capture(capture))),
            Err(e) => {
                eprintln!("fedproxy replay: cannot read {}: {e}", path.display());
                return ExitCode::from(2);
            }
        }
    }
    let mut peers = conversation::Peers::default();
    for (_, conns) in &replayed {
        peers.add(conns);
    }
    for (file, conns) in &replayed {
        let (file, conns) = (file.as_str(), conns.as_slice());
        totals.add(conns);
        let text = if args.json {
            let mut s = String::new();
            for c in conns {
                if let Some(line) = &c.http_request {
                    let v = serde_json::json!({"file": file, "conn": c.id, "client": c.client.to_string(),
                        "server": c.server.to_string(), "conn_kind": "http", "http_request": line});
                    s.push_str(&v.to_string());
                    s.push('\n');
                }
                for f in &c.frames {
                    s.push_str(&json::frame_json(file, c, f).to_string());
                    s.push('\n');
                }
                for e in &c.errors {
                    s.push_str(&json::error_json(file, c, e).to_string());
                    s.push('\n');
                }
            }
            s
        } else if args.conversation {
            conversation::render(file, conns, &peers, conversation::ConversationFilter { peers_only: args.peers_only })
        } else {
            summary::render(file, conns)
        };
        if out.write_all(text.as_bytes()).is_err() {
            return ExitCode::from(1); // stdout closed (e.g. piped to head)
        }
    }
    if !args.json {
        let _ = writeln!(
            out,
            "total: {} files, {} connections, {} frames, {}/{} byte-exact, {} errors",
            args.files.len(),
            totals.connections,
            totals.frames,
            totals.exact,
            totals.frames,
            totals.errors
        );
    }
    let _ = out.flush();
    if totals.ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}
