//! Starting corpora, built at run time from the repository's captures and
//! fixtures (nothing generated is committed): every captured connection, every
//! frame and body in it, each capture file as pcap and as pcapng, the legacy
//! FLURM exchanges, and the example configuration.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use slurm_codec::conn::{ConnConfig, ConnEvent, Connection, StreamStart};
use slurm_codec::frame::Framing;
use slurm_codec::msg::Message;
use slurm_codec::{Direction, ProtocolVersion};

use crate::conn::{self, Record};
use crate::frame;

/// Which seed set a target starts from.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum SeedKind {
    /// Whole connections, chunked as captured (conn targets).
    Conversation,
    /// The frames of persistent connections after their handshake.
    PersistConversation,
    /// `framing ‖ guess ‖ frame` for every captured frame.
    Frame,
    /// `type ‖ version ‖ body` for every captured typed body.
    Body,
    /// Capture files, pcap and pcapng.
    CaptureFile,
    /// Legacy FLURM exchanges, frame by frame, in each translator setting.
    Legacy,
    /// Configuration files.
    Config,
}

/// The repository root (this crate sits one level below it).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("crate below the root")
        .to_path_buf()
}

/// Every seed set, computed once from the repository.
pub struct Seeds {
    pub conversation: Vec<Vec<u8>>,
    pub persist: Vec<Vec<u8>>,
    pub frame: Vec<Vec<u8>>,
    pub body: Vec<Vec<u8>>,
    pub capture_file: Vec<Vec<u8>>,
    pub legacy: Vec<Vec<u8>>,
    pub config: Vec<Vec<u8>>,
}

impl Seeds {
    pub fn get(&self, kind: SeedKind) -> &[Vec<u8>] {
        match kind {
            SeedKind::Conversation => &self.conversation,
            SeedKind::PersistConversation => &self.persist,
            SeedKind::Frame => &self.frame,
            SeedKind::Body => &self.body,
            SeedKind::CaptureFile => &self.capture_file,
            SeedKind::Legacy => &self.legacy,
            SeedKind::Config => &self.config,
        }
    }

    /// Reads every capture under `captures/` and the configuration examples.
    pub fn load() -> Seeds {
        let root = repo_root();
        let mut s = Sets::default();
        for path in capture_files(&root.join("captures")) {
            let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let legacy = path.to_string_lossy().contains("legacy");
            s.capture_file.insert(bytes.clone());
            if let Some(ng) = pcap_to_pcapng(&bytes) {
                s.capture_file.insert(ng);
            }
            let Ok(cap) = tcpflow::parse_capture(&bytes) else {
                continue;
            };
            for c in &cap.connections {
                let mut records = Vec::new();
                let mut gaps = c.gaps.iter().peekable();
                for (i, seg) in c.segments.iter().enumerate() {
                    let gap_before = gaps.next_if(|g| g.before_segment <= i).is_some();
                    records.push(Record {
                        dir: seg.dir,
                        gap_before,
                        data: seg.data.to_vec(),
                    });
                }
                s.conversation.insert(conn::encode(0, &records));
                observe(c, &records, legacy, &mut s);
            }
        }
        s.config.insert(
            std::fs::read(root.join("fedproxy.example.toml")).expect("fedproxy.example.toml"),
        );
        for text in CONFIGS {
            s.config.insert(text.as_bytes().to_vec());
        }
        s.legacy.insert(conn::encode(
            0,
            &[Record {
                dir: Direction::ClientToServer,
                gap_before: false,
                data: conn::PERSIST_INIT_2205.to_vec(),
            }],
        ));
        Seeds {
            conversation: s.conversation.into_iter().collect(),
            persist: s.persist.into_iter().collect(),
            frame: s.frame.into_iter().collect(),
            body: s.body.into_iter().collect(),
            capture_file: s.capture_file.into_iter().collect(),
            legacy: s.legacy.into_iter().collect(),
            config: s.config.into_iter().collect(),
        }
    }

    /// Writes each target's corpus as files `DIR/<target>/seed-<n>` (cargo fuzz).
    pub fn write_corpora(&self, dir: &Path) -> std::io::Result<usize> {
        let mut n = 0;
        for t in crate::TARGETS {
            let d = dir.join(t.name);
            std::fs::create_dir_all(&d)?;
            for (i, seed) in self.get(t.seeds).iter().enumerate() {
                std::fs::write(d.join(format!("seed-{i:05}")), seed)?;
                n += 1;
            }
        }
        Ok(n)
    }
}

#[derive(Default)]
struct Sets {
    conversation: BTreeSet<Vec<u8>>,
    persist: BTreeSet<Vec<u8>>,
    frame: BTreeSet<Vec<u8>>,
    body: BTreeSet<Vec<u8>>,
    capture_file: BTreeSet<Vec<u8>>,
    legacy: BTreeSet<Vec<u8>>,
    config: BTreeSet<Vec<u8>>,
}

/// Decodes a captured connection and collects its frames, bodies and (for a
/// persistent connection) the frames after the handshake.
fn observe(c: &tcpflow::TcpConnection, records: &[Record], legacy: bool, s: &mut Sets) {
    let mut conn = Connection::new(ConnConfig {
        start: if c.saw_syn {
            StreamStart::Beginning
        } else {
            StreamStart::MidStream
        },
        ..ConnConfig::default()
    });
    let mut events = Vec::new();
    for r in records {
        if r.gap_before {
            conn.gap(r.dir);
        }
        conn.feed(r.dir, &r.data, &mut events);
    }
    let mut after_handshake = Vec::new();
    let mut frames = Vec::new();
    let mut established = false;
    for e in &events {
        match e {
            ConnEvent::PersistEstablished { .. } => established = true,
            ConnEvent::Frame(o) => {
                let framing = o.frame.framing();
                let mut f = vec![frame::framing_index(framing), 0];
                f.extend_from_slice(&o.raw);
                s.frame.insert(f);
                if let Some(seed) = body_seed(&o.frame) {
                    s.body.insert(seed);
                }
                frames.push(Record {
                    dir: o.dir,
                    gap_before: false,
                    data: o.raw.to_vec(),
                });
                if established && framing != Framing::Normal {
                    after_handshake.push(frames.last().expect("pushed").clone());
                }
            }
            _ => {}
        }
    }
    if !after_handshake.is_empty() {
        s.persist.insert(conn::encode(0, &after_handshake));
    }
    if legacy {
        for config in 0..8 {
            s.legacy.insert(conn::encode(config, &frames));
        }
    }
}

fn body_seed(f: &slurm_codec::frame::Frame) -> Option<Vec<u8>> {
    let m: &Message = f.message()?;
    let version = f.version().or(f.inferred_version)?;
    let types = frame::modelled();
    let t = types
        .iter()
        .position(|&(t, ns)| t == m.msg_type() && ns == f.namespace())?;
    let v = ProtocolVersion::ALL.iter().position(|&x| x == version)?;
    let mut seed = vec![t as u8, v as u8];
    seed.extend_from_slice(&f.body_bytes());
    Some(seed)
}

fn capture_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(capture_files(&p));
        } else if matches!(
            p.extension().and_then(|x| x.to_str()),
            Some("pcap" | "pcapng")
        ) {
            out.push(p);
        }
    }
    out.sort();
    out
}

/// The same packets in a pcapng file (section header, one interface, enhanced
/// packet blocks), so the pcapng reader is fuzzed from real content too. Only
/// little-endian microsecond pcap files are converted.
pub fn pcap_to_pcapng(pcap: &[u8]) -> Option<Vec<u8>> {
    let u32le = |b: &[u8], at: usize| -> Option<u32> {
        Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
    };
    if pcap.get(..4)? != [0xd4, 0xc3, 0xb2, 0xa1] {
        return None;
    }
    let snaplen = u32le(pcap, 16)?;
    let linktype = u32le(pcap, 20)?;
    let mut out = Vec::new();
    let block = |out: &mut Vec<u8>, kind: u32, body: &[u8]| {
        let len = (12 + body.len()).next_multiple_of(4) as u32;
        out.extend_from_slice(&kind.to_le_bytes());
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(body);
        out.resize(out.len() + (len as usize - 12 - body.len()), 0);
        out.extend_from_slice(&len.to_le_bytes());
    };
    let mut shb = Vec::new();
    shb.extend_from_slice(&0x1A2B_3C4Du32.to_le_bytes());
    shb.extend_from_slice(&1u16.to_le_bytes());
    shb.extend_from_slice(&0u16.to_le_bytes());
    shb.extend_from_slice(&(-1i64).to_le_bytes());
    block(&mut out, 0x0A0D_0D0A, &shb);
    let mut idb = Vec::new();
    idb.extend_from_slice(&(linktype as u16).to_le_bytes());
    idb.extend_from_slice(&0u16.to_le_bytes());
    idb.extend_from_slice(&snaplen.to_le_bytes());
    block(&mut out, 1, &idb);
    let mut at = 24;
    while at + 16 <= pcap.len() {
        let (sec, usec) = (u32le(pcap, at)? as u64, u32le(pcap, at + 4)? as u64);
        let (incl, orig) = (u32le(pcap, at + 8)?, u32le(pcap, at + 12)?);
        let data = pcap.get(at + 16..at + 16 + incl as usize)?;
        let ts = sec * 1_000_000 + usec;
        let mut epb = Vec::new();
        epb.extend_from_slice(&0u32.to_le_bytes());
        epb.extend_from_slice(&((ts >> 32) as u32).to_le_bytes());
        epb.extend_from_slice(&(ts as u32).to_le_bytes());
        epb.extend_from_slice(&incl.to_le_bytes());
        epb.extend_from_slice(&orig.to_le_bytes());
        epb.extend_from_slice(data);
        epb.resize(epb.len().next_multiple_of(4), 0);
        block(&mut out, 6, &epb);
        at += 16 + incl as usize;
    }
    Some(out)
}

/// Configuration shapes beyond the example file.
const CONFIGS: &[&str] = &[
    "[[route]]\nlisten = \"127.0.0.1:7001\"\nupstream = \"127.0.0.1:6817\"\n",
    "[inbound]\n[outbound]\n[admin]\nlisten = \"[::1]:9100\"\n",
    "[inbound]\nlisten = \"0.0.0.0:16817\"\nupstream = \"10.0.0.1:6817\"\ntransparent = true\n\
     [relay]\nconnect_timeout_ms = 100\nbuffer_size = 4096\n",
    "[[route]]\nname = \"r\"\nlisten = \"127.0.0.1:7002\"\nupstream = \"127.0.0.1:6817\"\n\
     [legacy]\nupstream_version = 0x2600\nlocal_cluster = \"c1\"\nfed_ids = { alpha = 2 }\n\
     [[peer]]\nname = \"flurm\"\nmatch = \"10.0.0.0/24\"\ndialect = \"legacy-flurm\"\nfed_id = 3\n",
    // Issue 10 item 4: values that only a full start-up check rejects.
    "[[route]]\nlisten = \"127.0.0.1:7003\"\nupstream = \"127.0.0.1:6817\"\n\
     [legacy]\nupstream_version = 0x1234\n\
     [[peer]]\nmatch = \"10.0.0.0/33\"\ncluster = \"x\"\ndialect = \"slurm\"\nfed_id = 99\n",
    "[outbound]\nlisten = \"[::]:16818\"\n[relay]\nkeepalive_secs = 40000\nworker_threads = 100000\n\
     max_observed_frame = 64\nobserve = false\ndrain_timeout_ms = 0\n",
];
