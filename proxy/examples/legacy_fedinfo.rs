//! Lab check tool (not part of the daemon): plays a legacy FLURM controller asking
//! for federation info. Sends the captured legacy REQUEST_FED_INFO (2024: 0x2600
//! header, 4-byte show_flags body, no auth section) to a Slurm port, reads the
//! one reply frame, checks that it is a legacy RESPONSE_FED_INFO (2025, legacy
//! framing) and prints its record, one fact per line:
//!
//! ```text
//! reply msg_type=2025 version=0x2600 flags=0x0000 body_len=152
//! credential uid=0 body_hash=ok        (with --munge-socket)
//! federation fed1
//! local_cluster alpha
//! cluster alpha 10.199.80.11 6817 up
//! cluster beta 10.199.80.12 6817 up
//! ```
//!
//! (12 zero bytes, legacy's "no federation", print `no-federation`.) Exits 1 when
//! there is no reply or it is not a decodable legacy 2025. Used by
//! `scripts/lab-test`; build with `cargo build --release -p fedproxy --example legacy_fedinfo`.

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use bytes::Bytes;
use clap::Parser;
use flurm::munge::Munge;
use slurm_codec::auth::AuthSection;
use slurm_codec::body_hash;
use slurm_codec::frame::{BodyDecoding, Frame, FrameHead, Framing};
use slurm_codec::legacy::{LegacyFedInfoResponse, LEGACY_RESPONSE_FED_INFO};
use slurm_codec::wire::PackStr;
use socket2::{Domain, SockAddr, Socket, Type};

#[derive(Parser)]
#[command(about = "Send a captured legacy FLURM 2024 and print the legacy 2025 reply")]
struct Args {
    /// Where to send it (a slurmctld port, e.g. 10.199.80.11:6817).
    #[arg(long)]
    to: SocketAddr,
    /// Source address to connect from (the address the proxy knows as the legacy peer).
    #[arg(long)]
    from: Option<IpAddr>,
    /// Capture whose first "c2s" line is the request.
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/../captures/legacy-flurm/legacy_fedinfo_populated.hex.txt"))]
    capture: PathBuf,
    /// Verify the reply's MUNGE credential (signed for 2025 and its body) through this munged.
    #[arg(long)]
    munge_socket: Option<PathBuf>,
    /// Connect and read timeout.
    #[arg(long, default_value_t = 10)]
    timeout_secs: u64,
}

fn first_c2s(path: &PathBuf) -> Result<Vec<u8>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let hex: String = text
        .lines()
        .find_map(|l| l.strip_prefix("c2s "))
        .with_context(|| format!("no c2s line in {}", path.display()))?
        .split_whitespace()
        .collect();
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2).unwrap_or("x"), 16).context("bad hex"))
        .collect()
}

fn text(s: &PackStr) -> String {
    s.text().unwrap_or_else(|| "(null)".into())
}

fn main() -> Result<()> {
    let a = Args::parse();
    let request = first_c2s(&a.capture)?;
    let timeout = Duration::from_secs(a.timeout_secs);

    let sock = Socket::new(Domain::for_address(a.to), Type::STREAM, None)?;
    if let Some(from) = a.from {
        sock.bind(&SockAddr::from(SocketAddr::new(from, 0)))
            .with_context(|| format!("binding {from}"))?;
    }
    sock.connect_timeout(&SockAddr::from(a.to), timeout)
        .with_context(|| format!("connecting to {}", a.to))?;
    let mut s: TcpStream = sock.into();
    s.set_read_timeout(Some(timeout))?;
    s.write_all(&request)?;

    let mut prefix = [0u8; 4];
    s.read_exact(&mut prefix)
        .context("no reply (the connection closed or timed out before a frame)")?;
    let len = u32::from_be_bytes(prefix) as usize;
    if len > 1 << 20 {
        bail!("reply length prefix {len}: not a fed-info frame");
    }
    let mut raw = prefix.to_vec();
    raw.resize(4 + len, 0);
    s.read_exact(&mut raw[4..])
        .context("reply frame truncated")?;

    let frame = Frame::decode_with(Bytes::from(raw), Framing::Normal, BodyDecoding::Observe)
        .context("reply frame")?;
    let FrameHead::Normal { header: h, auth } = &frame.head else {
        unreachable!("normal framing")
    };
    println!(
        "reply msg_type={} version=0x{:04x} flags=0x{:04x} body_len={}",
        h.msg_type.0, h.version.0, h.flags.0, h.body_length
    );
    if h.msg_type != LEGACY_RESPONSE_FED_INFO {
        bail!(
            "reply is msg_type {}, not the legacy RESPONSE_FED_INFO 2025",
            h.msg_type.0
        );
    }
    let body = frame.body_bytes();
    if let Some(sock) = &a.munge_socket {
        let AuthSection::Munge {
            credential: PackStr(Some(c)),
        } = auth
        else {
            bail!("reply has no MUNGE credential ({})", auth.label());
        };
        let d = Munge::load(Some(sock))?
            .decode(c)
            .context("reply credential does not verify")?;
        let ok = body_hash::payload_matches(&d.payload, h.msg_type, &body);
        println!(
            "credential uid={} body_hash={}",
            d.uid,
            if ok { "ok" } else { "MISMATCH" }
        );
        if !ok {
            bail!("the credential's payload is not the body hash of this 2025");
        }
    }
    match LegacyFedInfoResponse::decode_body(body, 0).context("legacy 2025 body")? {
        LegacyFedInfoResponse::ZeroFallback => println!("no-federation"),
        LegacyFedInfoResponse::Record(f) => {
            println!("federation {}", text(&f.federation_name));
            println!("local_cluster {}", text(&f.local_cluster));
            for c in &f.clusters {
                let state = text(&c.state.to_packstr());
                println!(
                    "cluster {} {} {} {}",
                    text(&c.name),
                    text(&c.host),
                    c.port,
                    state
                );
            }
        }
    }
    Ok(())
}
