//! `fedproxy replay`: decode every frame of every TCP connection in pcap/pcapng
//! captures, re-encode it, compare with the captured bytes, and show the result
//! as a summary, JSON lines or a readable conversation.

pub mod live;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use fedproxy_replay::{conversation, json, summary};
use tcpflow::{read_capture, Capture};

pub use fedproxy_replay::{
    replay_capture, replay_connections, ReplayedConnection, ReplayedFrame, Totals,
};

#[derive(clap::Args, Debug)]
#[command(
    after_help = "Exit status: 0 when every frame decodes and re-encodes byte-exact, \
1 when any frame fails to decode or round-trip, 2 when a capture cannot be read."
)]
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

    /// Also play every connection through a fedproxy started on loopback (a local
    /// client and server peer send the captured segments in captured order) and
    /// check that both sides receive exactly the captured bytes and that /metrics
    /// counts the same messages as the offline decode.
    #[arg(long)]
    pub live: bool,
}

pub fn main(args: ReplayArgs) -> ExitCode {
    let mut totals = Totals::default();
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut replayed = Vec::with_capacity(args.files.len());
    let mut captures: Vec<Capture> = Vec::with_capacity(args.files.len());
    for path in &args.files {
        match read_capture(path) {
            Ok(mut capture) => {
                replayed.push((path.display().to_string(), replay_connections(&mut capture)));
                captures.push(capture);
            }
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
            conversation::render(
                file,
                conns,
                &peers,
                conversation::ConversationFilter {
                    peers_only: args.peers_only,
                },
            )
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
    let live_ok = !args.live || {
        let pairs: Vec<_> = captures
            .iter()
            .zip(&replayed)
            .flat_map(|(cap, (_, conns))| cap.connections.iter().zip(conns.iter()))
            .collect();
        run_live(&pairs)
    };
    ExitCode::from(exit_status(&totals, live_ok))
}

/// 0 when every frame decoded and re-encoded byte-exact (and the live replay, if
/// any, passed); 1 otherwise.
pub fn exit_status(totals: &Totals, live_ok: bool) -> u8 {
    if totals.ok() && live_ok {
        0
    } else {
        1
    }
}

/// Runs the live replay and prints its report; true when it passed.
fn run_live(pairs: &[(&tcpflow::TcpConnection, &ReplayedConnection)]) -> bool {
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("fedproxy replay --live: cannot start the runtime: {e}");
            return false;
        }
    };
    let report = match rt.block_on(live::play(pairs)) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("fedproxy replay --live: {e}");
            return false;
        }
    };
    let offline: u64 = report.offline_counts.values().sum();
    let proxied: u64 = report.proxy_counts.values().sum();
    println!(
        "live: {} connections through fedproxy, {} + {} bytes (c2s + s2c) delivered, {} mismatches; \
         /metrics counted {proxied} messages, offline decode {offline}, {} decode errors",
        report.connections,
        report.bytes[0],
        report.bytes[1],
        report.mismatches.len(),
        report.decode_errors
    );
    for m in &report.mismatches {
        println!("  mismatch: {m}");
    }
    let names: std::collections::BTreeSet<_> = report
        .offline_counts
        .keys()
        .chain(report.proxy_counts.keys())
        .collect();
    for n in names {
        let (a, b) = (
            report.offline_counts.get(n).copied().unwrap_or(0),
            report.proxy_counts.get(n).copied().unwrap_or(0),
        );
        if a != b {
            println!("  count differs: {n}: offline {a}, proxy {b}");
        }
    }
    println!("  /metrics excerpt:");
    let interesting = |l: &&String| {
        (l.starts_with("fedproxy_messages_total")
            && (l.contains("PERSIST") || l.contains("CTLD_MULT") || l.contains("FED_INFO")))
            || l.starts_with("fedproxy_connections_accepted")
            || (l.starts_with("fedproxy_decode_errors") && !l.ends_with(" 0"))
    };
    println!("    decode errors in total: {}", report.decode_errors);
    for l in report.metrics_excerpt.iter().filter(interesting).take(16) {
        println!("    {l}");
    }
    println!("live: {}", if report.ok() { "OK" } else { "FAILED" });
    report.ok()
}
