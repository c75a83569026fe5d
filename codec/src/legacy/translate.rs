//! Pure translations between legacy FLURM's fed-info pair (2024/2025) and Slurm's
//! (2049/2050). No I/O: functions that produce a frame Slurm will verify return an
//! [`Unsigned`] frame (header + body); the caller mints a credential over
//! [`Unsigned::k12_payload`] and calls [`Unsigned::seal`].
//!
//! | from | to | body |
//! |---|---|---|
//! | Slurm 2049 (empty body, K12 credential) | legacy 2024 | `u32 show_flags = 0`, legacy header, no auth section |
//! | legacy 2025 (record or 12 zeros) | Slurm 2050 at the requester's version | federation record built from data; 12 zeros → "no federation" (`00`) |
//! | legacy 2024 (4-byte body, no auth) | Slurm 2049 at a version the controller accepts | empty |
//! | Slurm 2050 | legacy 2025 | legacy record built from Slurm's; "no federation" → 12 zeros |

use bytes::{BufMut, Bytes, BytesMut};

use crate::auth::AuthSection;
use crate::body_hash;
use crate::flags::HeaderFlags;
use crate::frame::{Frame, FrameHead};
use crate::header::Header;
use crate::msg::fed_info::FedInfoResponse;
use crate::msg::slurmdb::{AssocRec, ClusterFlags, ClusterRec, FedState, FederationRec};
use crate::msg_type::MsgType;
use crate::version::ProtocolVersion;
use crate::wire::{Decode, Encode, PackStr, Reader, SlurmList, NO_VAL};

use super::fed_info::{
    LegacyCluster, LegacyClusterState, LegacyFedInfoRequest, LegacyFedInfoResponse,
    LegacyFederation,
};
use super::{
    classify_2024, legacy_header, Kind2024, LegacyError, LEGACY_REQUEST_FED_INFO,
    LEGACY_RESPONSE_FED_INFO, LEGACY_VERSION, SLURM_REQUEST_FED_INFO, SLURM_RESPONSE_FED_INFO,
};

/// Slurm's MAX_FED_CLUSTERS.
pub const MAX_FED_CLUSTERS: usize = 63;

/// A translated frame waiting for its auth section.
#[derive(Clone, Debug, PartialEq)]
pub struct Unsigned {
    pub header: Header,
    pub body: Bytes,
}

impl Unsigned {
    pub fn msg_type(&self) -> MsgType {
        self.header.msg_type
    }

    /// The credential payload a 22.05+ sender uses: `02 ‖ K12(body, msg_type)`.
    pub fn k12_payload(&self) -> [u8; 33] {
        body_hash::k12_payload(self.header.msg_type, &self.body)
    }

    /// The whole frame (length prefix included) with `auth` between header and body.
    pub fn seal(&self, auth: &AuthSection) -> Bytes {
        let mut out =
            BytesMut::with_capacity(4 + self.header.wire_len() + auth.wire_len() + self.body.len());
        out.put_u32((self.header.wire_len() + auth.wire_len() + self.body.len()) as u32);
        self.header.encode(&mut out);
        auth.encode(&mut out);
        out.put_slice(&self.body);
        out.freeze()
    }

    /// The frame sealed with a MUNGE credential string (`MUNGE:…:`, no NUL).
    pub fn seal_munge(&self, credential: &str) -> Bytes {
        self.seal(&AuthSection::Munge {
            credential: PackStr::from_text(credential),
        })
    }
}

/// Fed ids for clusters: legacy FLURM has none, but Slurm's job ids carry the
/// origin's fed id in bits 26-31, so they come from configuration.
pub trait FedIds {
    /// The configured fed id (1..=63) of a cluster, if any.
    fn fed_id(&self, cluster: &str) -> Option<u32>;
}

impl FedIds for std::collections::HashMap<String, u32> {
    fn fed_id(&self, cluster: &str) -> Option<u32> {
        self.get(cluster).copied()
    }
}

impl FedIds for [(&str, u32)] {
    fn fed_id(&self, cluster: &str) -> Option<u32> {
        self.iter().find(|(n, _)| *n == cluster).map(|&(_, id)| id)
    }
}

fn normal_head(frame: &Frame) -> Result<(&Header, &AuthSection), LegacyError> {
    match &frame.head {
        FrameHead::Normal { header, auth } => Ok((header, auth)),
        FrameHead::Persist { .. } => Err(LegacyError::NotNormalFraming),
    }
}

fn expect_type(header: &Header, t: MsgType) -> Result<(), LegacyError> {
    if header.msg_type != t {
        return Err(LegacyError::WrongMsgType {
            expected: t.0,
            got: header.msg_type.0,
        });
    }
    Ok(())
}

fn body_offset(frame: &Frame) -> usize {
    match &frame.head {
        FrameHead::Normal { header, auth } => 4 + header.wire_len() + auth.wire_len(),
        FrameHead::Persist { .. } => 6,
    }
}

/// Slurm REQUEST_FED_INFO (2049) → legacy REQUEST_FED_INFO (2024): the frame legacy
/// FLURM's own request encoder writes (legacy header, `show_flags = 0`, no auth
/// section; legacy FLURM never checks credentials). 24 bytes.
pub fn slurm_2049_to_legacy_2024(frame: &Frame) -> Result<Bytes, LegacyError> {
    let (header, _) = normal_head(frame)?;
    expect_type(header, SLURM_REQUEST_FED_INFO)?;
    let body = frame.body_bytes();
    if !body.is_empty() || !frame.trailing.is_empty() {
        return Err(LegacyError::NonEmptyFedInfoRequest(
            body.len() + frame.trailing.len(),
        ));
    }
    let mut b = BytesMut::new();
    LegacyFedInfoRequest { show_flags: 0 }.encode(&mut b);
    let out = Unsigned {
        header: legacy_header(
            LEGACY_REQUEST_FED_INFO,
            LegacyFedInfoRequest::WIRE_LEN as u32,
        ),
        body: b.freeze(),
    };
    Ok(out.seal(&AuthSection::Absent))
}

/// Legacy REQUEST_FED_INFO (2024, 4-byte body, no auth) → Slurm REQUEST_FED_INFO
/// (2049, empty body) at `version` (one the real slurmctld accepts). The request
/// is then signed by the proxy.
pub fn legacy_2024_to_slurm_2049(
    frame: &Frame,
    version: ProtocolVersion,
) -> Result<Unsigned, LegacyError> {
    let (header, _) = normal_head(frame)?;
    expect_type(header, LEGACY_REQUEST_FED_INFO)?;
    if classify_2024(frame) != Kind2024::LegacyFedInfo {
        return Err(LegacyError::NotLegacy2024(
            "needs a 4-byte body and no auth section",
        ));
    }
    LegacyFedInfoRequest::decode(&mut Reader::with_base(
        frame.body_bytes(),
        body_offset(frame),
    ))?;
    Ok(Unsigned {
        header: Header::new(version, HeaderFlags(0), SLURM_REQUEST_FED_INFO, 0),
        body: Bytes::new(),
    })
}

/// Legacy RESPONSE_FED_INFO (2025) → Slurm RESPONSE_FED_INFO (2050), answering
/// the Slurm request whose header is `request`: same version and flags (replies
/// copy them; SLURM_NO_AUTH_CRED is cleared since the reply gets a credential),
/// body packed at that version.
pub fn legacy_2025_to_slurm_2050(
    frame: &Frame,
    request: &Header,
    ids: &(impl FedIds + ?Sized),
) -> Result<Unsigned, LegacyError> {
    let (header, _) = normal_head(frame)?;
    expect_type(header, LEGACY_RESPONSE_FED_INFO)?;
    let legacy = LegacyFedInfoResponse::decode_body(frame.body_bytes(), body_offset(frame))?;
    let version = request.version;
    let response = legacy_to_slurm_federation(&legacy, ids, version)?;
    let mut body = BytesMut::new();
    response.encode(&mut body, version);
    let mut flags = request.flags;
    flags.0 &= !HeaderFlags::NO_AUTH_CRED;
    Ok(Unsigned {
        header: Header::new(version, flags, SLURM_RESPONSE_FED_INFO, body.len() as u32),
        body: body.freeze(),
    })
}

/// Slurm RESPONSE_FED_INFO (2050) → legacy RESPONSE_FED_INFO (2025) in legacy
/// framing. `local_cluster` names the real controller's own cluster (Slurm's
/// record does not say which one it is). The caller seals it (legacy FLURM does
/// not verify credentials; a real one keeps the reply well-formed for Slurm tools).
pub fn slurm_2050_to_legacy_2025(
    frame: &Frame,
    local_cluster: Option<&str>,
) -> Result<Unsigned, LegacyError> {
    let (header, _) = normal_head(frame)?;
    expect_type(header, SLURM_RESPONSE_FED_INFO)?;
    let mut r = Reader::with_base(frame.body_bytes(), body_offset(frame));
    let slurm = FedInfoResponse::decode(&mut r, header.version)?;
    r.finish()?;
    let legacy = slurm_to_legacy_federation(&slurm, local_cluster);
    let body = legacy.to_bytes();
    Ok(Unsigned {
        header: legacy_header(LEGACY_RESPONSE_FED_INFO, body.len() as u32),
        body,
    })
}

/// Legacy state string → Slurm fed state: up → ACTIVE, down → INACTIVE,
/// drain → ACTIVE|DRAIN; anything else → NA.
pub fn legacy_state_to_fed_state(s: &LegacyClusterState) -> FedState {
    FedState(match s {
        LegacyClusterState::Up => FedState::ACTIVE,
        LegacyClusterState::Down => FedState::INACTIVE,
        LegacyClusterState::Drain => FedState::ACTIVE | FedState::DRAIN,
        LegacyClusterState::Other(_) => FedState::NA,
    })
}

/// Slurm fed state → legacy state string: any DRAIN → "drain", ACTIVE → "up",
/// everything else (INACTIVE, NA, REMOVE) → "down".
pub fn fed_state_to_legacy_state(s: FedState) -> LegacyClusterState {
    if s.0 & FedState::DRAIN != 0 {
        LegacyClusterState::Drain
    } else if s.0 & 0xf == FedState::ACTIVE && s.0 & FedState::REMOVE == 0 {
        LegacyClusterState::Up
    } else {
        LegacyClusterState::Down
    }
}

/// Builds Slurm's federation record from the legacy one. Clusters without a
/// configured fed id get the lowest id (1..=63) not configured for another
/// cluster of the record, in record order. `version` = the layout the record
/// will be packed at (version-gated fields are set accordingly).
pub fn legacy_to_slurm_federation(
    legacy: &LegacyFedInfoResponse,
    ids: &(impl FedIds + ?Sized),
    version: ProtocolVersion,
) -> Result<FedInfoResponse, LegacyError> {
    let fed = match legacy {
        LegacyFedInfoResponse::ZeroFallback => return Ok(FedInfoResponse { federation: None }),
        LegacyFedInfoResponse::Record(f) => f,
    };
    if fed.federation_name.is_null() {
        // A record without a federation name carries no federation (the 12-zero
        // body is exactly that record: NULL, NULL, 0 clusters).
        return Ok(FedInfoResponse { federation: None });
    }
    if fed.clusters.len() > MAX_FED_CLUSTERS {
        return Err(LegacyError::TooManyClusters(fed.clusters.len()));
    }
    let configured: Vec<Option<u32>> = fed
        .clusters
        .iter()
        .map(|c| c.name.text().and_then(|n| ids.fed_id(&n)))
        .collect();
    let mut used: Vec<u32> = configured.iter().flatten().copied().collect();
    let mut clusters = Vec::with_capacity(fed.clusters.len());
    for (c, id) in fed.clusters.iter().zip(configured) {
        let id = id.unwrap_or_else(|| {
            let id = (1..=MAX_FED_CLUSTERS as u32)
                .find(|i| !used.contains(i))
                .unwrap_or(0);
            used.push(id);
            id
        });
        clusters.push(Some(cluster_rec_from_legacy(
            c,
            &fed.federation_name,
            id,
            version,
        )));
    }
    Ok(FedInfoResponse {
        federation: Some(FederationRec {
            name: fed.federation_name.clone(),
            flags: 0,
            cluster_list: SlurmList(Some(clusters)),
        }),
    })
}

fn cluster_rec_from_legacy(
    c: &LegacyCluster,
    fed_name: &PackStr,
    fed_id: u32,
    v: ProtocolVersion,
) -> ClusterRec {
    ClusterRec {
        accounting_list: SlurmList(None),
        classification: 0,
        control_host: c.host.clone(),
        control_port: c.port,
        dimensions: 1,
        fed_feature_list: SlurmList(if c.features.is_empty() {
            None
        } else {
            Some(c.features.clone())
        }),
        fed_name: fed_name.clone(),
        fed_id,
        fed_state: legacy_state_to_fed_state(&c.state),
        fed_sync_recvd: false,
        fed_sync_sent: false,
        flags: ClusterFlags(0),
        id: (v >= ProtocolVersion::V24_11).then_some(fed_id as u16),
        name: c.name.clone(),
        nodes: PackStr::NULL,
        plugin_id_select: (v <= ProtocolVersion::V23_11).then_some(NO_VAL),
        root_assoc: AssocRec::null_filler(v),
        rpc_version: LEGACY_VERSION,
        fed_recv_connected: false,
        fed_send_connected: false,
        tres_str: PackStr::NULL,
    }
}

/// Builds the legacy record from Slurm's. "No federation" → the 12-zero body
/// (what legacy FLURM itself sends); weights are 1, partitions empty (Slurm's
/// record has neither).
pub fn slurm_to_legacy_federation(
    slurm: &FedInfoResponse,
    local_cluster: Option<&str>,
) -> LegacyFedInfoResponse {
    let Some(fed) = &slurm.federation else {
        return LegacyFedInfoResponse::ZeroFallback;
    };
    let clusters = fed
        .cluster_list
        .0
        .iter()
        .flatten()
        .flatten()
        .map(|c| LegacyCluster {
            name: c.name.clone(),
            host: c.control_host.clone(),
            port: c.control_port,
            state: fed_state_to_legacy_state(c.fed_state),
            weight: 1,
            features: c.fed_feature_list.0.clone().unwrap_or_default(),
            partitions: Vec::new(),
        })
        .collect();
    LegacyFedInfoResponse::Record(LegacyFederation {
        federation_name: fed.name.clone(),
        local_cluster: local_cluster.map_or(PackStr::NULL, PackStr::from_text),
        clusters,
    })
}
