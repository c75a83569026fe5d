//! The legacy FLURM translator: the proxy's per-connection [`Translator`] in both
//! roles, and the codec's fed-info conversions, fed arbitrary frames.
//!
//! Input: the [`crate::conn`] record format; the config byte picks the role (bit
//! 0), whether credentials verify (bit 1) and `require_peer_credential` (bit 2).
//! Client → server records are client frames, the others upstream frames.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use bytes::Bytes;
use flurm::munge::{Decoded, MungeError};
use flurm::{
    Action, Credentials, LegacyConfig, LegacyMetrics, PeerConfig, PeerTable, Role,
    TranslationContext, Translator,
};
use slurm_codec::frame::{Frame, Framing};
use slurm_codec::legacy::translate::{
    legacy_2024_to_slurm_2049, legacy_2025_to_slurm_2050, slurm_2049_to_legacy_2024,
    slurm_2050_to_legacy_2025,
};
use slurm_codec::{Direction, ProtocolVersion};

/// Stands in for munged: mints a fixed credential, verifies as configured.
struct FakeMunge {
    verifies: bool,
}

impl Credentials for FakeMunge {
    fn mint(&self, payload: &[u8], _uid: Option<u32>) -> Result<String, MungeError> {
        Ok(format!("MUNGE:fuzz{}:", payload.len()))
    }

    fn verify(&self, credential: &[u8]) -> Result<Decoded, MungeError> {
        if self.verifies && !credential.is_empty() {
            Ok(Decoded {
                uid: 64030,
                gid: 64030,
                payload: credential.iter().rev().take(33).copied().collect(),
            })
        } else {
            Err(MungeError::Status {
                code: 15,
                message: "fuzz: invalid credential".into(),
            })
        }
    }
}

const PEER: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 9));

fn shared(config: u8) -> Arc<TranslationContext> {
    let legacy = LegacyConfig {
        local_cluster: Some("c1".into()),
        require_peer_credential: config & 4 != 0,
        fed_ids: HashMap::from([("alpha".to_string(), 2), ("legacy".to_string(), 3)]),
        ..LegacyConfig::default()
    };
    let peers = [PeerConfig {
        name: Some("flurm".into()),
        match_addr: Some(PEER.to_string()),
        cluster: Some("legacy".into()),
        dialect: flurm::Dialect::LegacyFlurm,
        fed_id: Some(3),
    }];
    Arc::new(TranslationContext {
        peers: PeerTable::new(&peers, &legacy).expect("a valid peer table"),
        config: legacy,
        credentials: Arc::new(FakeMunge {
            verifies: config & 2 != 0,
        }),
        metrics: LegacyMetrics::new(),
    })
}

pub fn translate(data: &[u8]) {
    let (config, records) = crate::conn::decode(data);
    let shared = shared(config);
    let peer = shared
        .peers
        .legacy_peer(PEER, None)
        .expect("the peer is legacy")
        .clone();
    let role = if config & 1 == 0 {
        Role::ToLegacy
    } else {
        Role::FromLegacy
    };
    let mut t = Translator::new(role, peer, SocketAddr::new(PEER, 6817), shared);
    for r in &records {
        let raw = Bytes::copy_from_slice(&r.data);
        let action = match r.dir {
            Direction::ClientToServer => t.on_client_frame(raw.clone()),
            Direction::ServerToClient => t.on_upstream_frame(raw.clone()),
        };
        match action {
            Action::Forward(out) | Action::Refuse(out) => {
                if out != raw {
                    // Whatever the translator writes is a well-formed frame.
                    Frame::decode(out.clone(), Framing::Normal)
                        .unwrap_or_else(|e| panic!("translated frame does not decode: {e}"));
                }
            }
        }
        codec_conversions(raw);
    }
}

/// The codec's conversions never panic, and what they produce decodes.
fn codec_conversions(raw: Bytes) {
    let Ok(frame) = Frame::decode(raw, Framing::Normal) else {
        return;
    };
    let ids = HashMap::from([("alpha".to_string(), 2u32)]);
    if let Ok(out) = slurm_2049_to_legacy_2024(&frame) {
        Frame::decode(out, Framing::Normal).expect("2024 decodes");
    }
    let _ = legacy_2024_to_slurm_2049(&frame, ProtocolVersion::V22_05);
    if let Some(h) = frame.header() {
        let _ = legacy_2025_to_slurm_2050(&frame, h, &ids);
    }
    let _ = slurm_2050_to_legacy_2025(&frame, Some("c1"));
}
