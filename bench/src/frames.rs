//! The frames the synthetic peer serves, taken from the bundled captures with
//! `tcpflow::read_capture` + `fedproxy_replay::replay_capture`.
//!
//! Every frame is the captured wire bytes (u32 length prefix included); the
//! replay re-encodes each frame and checks it against the capture, and only
//! exact frames are used.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use fedproxy_replay::{replay_capture, ReplayedConnection};
use slurm_codec::conn::ConnKind;
use slurm_codec::{Direction, MsgType};
use tcpflow::read_capture;

/// A request frame and the reply the captured controller sent to it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Exchange {
    pub name: String,
    pub request: Vec<u8>,
    pub reply: Vec<u8>,
}

/// Everything the benchmark sends and answers.
#[derive(Clone, Debug)]
pub struct Frames {
    /// One-shot RPC: REQUEST_FED_INFO (with its MUNGE credential) → RESPONSE_FED_INFO.
    pub rpc: Exchange,
    /// Opening of a federation persistent connection: REQUEST_PERSIST_INIT → PERSIST_RC.
    pub persist_init: Exchange,
    /// Federation traffic on it: REQUEST_CTLD_MULT_MSG (SIB_MSG inside) → RESPONSE_CTLD_MULT_MSG.
    pub persist_msgs: Vec<Exchange>,
}

/// `captures/slurm-22.05` of the workspace (for tests and the default of `--captures`).
pub fn default_capture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../captures/slurm-22.05")
}

fn replay(path: &Path) -> Result<Vec<ReplayedConnection>> {
    let cap = read_capture(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(replay_capture(cap))
}

/// Request/reply pairs of one connection: each client frame of type `req`
/// followed (next server frame) by one of type `rep`.
fn pairs(c: &ReplayedConnection, req: MsgType, rep: MsgType, what: &str) -> Vec<Exchange> {
    let mut out = Vec::new();
    let fr = &c.frames;
    for i in 0..fr.len() {
        let f = &fr[i];
        if f.dir != Direction::ClientToServer || f.frame.msg_type() != req || !f.exact {
            continue;
        }
        if let Some(r) = fr[i + 1..]
            .iter()
            .find(|r| r.dir == Direction::ServerToClient)
        {
            if r.frame.msg_type() == rep && r.exact {
                out.push(Exchange {
                    name: format!("{what} {}B->{}B", f.frame_len, r.frame_len),
                    request: f.frame.to_bytes().to_vec(),
                    reply: r.frame.to_bytes().to_vec(),
                });
            }
        }
    }
    out
}

impl Frames {
    /// Loads the frames from `dir` (captures/slurm-22.05): fed_info.pcap,
    /// fed_startup.pcap and fed_submit.pcap.
    pub fn load(dir: &Path) -> Result<Frames> {
        let info = replay(&dir.join("fed_info.pcap"))?;
        let rpc = info
            .iter()
            .flat_map(|c| {
                pairs(
                    c,
                    MsgType::REQUEST_FED_INFO,
                    MsgType::RESPONSE_FED_INFO,
                    "REQUEST_FED_INFO",
                )
            })
            .next()
            .ok_or_else(|| {
                anyhow!("no REQUEST_FED_INFO/RESPONSE_FED_INFO pair in fed_info.pcap")
            })?;

        let mut persist_init = None;
        let mut persist_msgs = Vec::new();
        for file in ["fed_startup.pcap", "fed_submit.pcap"] {
            for c in replay(&dir.join(file))? {
                if c.kind != ConnKind::FedPersist {
                    continue;
                }
                if persist_init.is_none() {
                    persist_init = pairs(
                        &c,
                        MsgType::REQUEST_PERSIST_INIT,
                        MsgType::PERSIST_RC,
                        "REQUEST_PERSIST_INIT",
                    )
                    .into_iter()
                    .next();
                }
                for e in pairs(
                    &c,
                    MsgType::REQUEST_CTLD_MULT_MSG,
                    MsgType::RESPONSE_CTLD_MULT_MSG,
                    "REQUEST_CTLD_MULT_MSG",
                ) {
                    if !persist_msgs
                        .iter()
                        .any(|m: &Exchange| m.request == e.request)
                    {
                        persist_msgs.push(e);
                    }
                }
            }
        }
        let persist_init = persist_init
            .ok_or_else(|| anyhow!("no PERSIST_INIT/PERSIST_RC pair in fed_startup.pcap"))?;
        if persist_msgs.is_empty() {
            bail!("no CTLD_MULT_MSG exchange in fed_startup.pcap/fed_submit.pcap");
        }
        for e in std::iter::once(&rpc)
            .chain([&persist_init])
            .chain(&persist_msgs)
        {
            check_prefix(&e.request)?;
            check_prefix(&e.reply)?;
        }
        Ok(Frames {
            rpc,
            persist_init,
            persist_msgs,
        })
    }

    /// Every exchange the synthetic peer answers.
    pub fn all(&self) -> Vec<Exchange> {
        let mut v = vec![self.rpc.clone(), self.persist_init.clone()];
        v.extend(self.persist_msgs.iter().cloned());
        v
    }

    /// Mean request+reply bytes of one persistent exchange (over the cycle used).
    pub fn persist_cycle_bytes(&self) -> f64 {
        let t: usize = self
            .persist_msgs
            .iter()
            .map(|e| e.request.len() + e.reply.len())
            .sum();
        t as f64 / self.persist_msgs.len() as f64
    }
}

fn check_prefix(f: &[u8]) -> Result<()> {
    if f.len() < 4 || u32::from_be_bytes(f[..4].try_into().unwrap()) as usize + 4 != f.len() {
        bail!(
            "frame without a consistent u32 length prefix ({} bytes)",
            f.len()
        );
    }
    Ok(())
}
