//! Legacy FLURM's federation-info dialect (FLURM up to commit 222bcaf), see
//! `docs/legacy-flurm-wire.md` of the shared docs and `captures/legacy-flurm/`.
//!
//! Legacy FLURM numbers REQUEST/RESPONSE_FED_INFO 2024/2025, which Slurm uses for
//! REQUEST/RESPONSE_RESERVATION_INFO. Its bodies differ from Slurm's too:
//!
//! * legacy 2024 = `u32 show_flags` (4 bytes) and, from the legacy request encoder,
//!   **no auth section**; Slurm's 2024 = `i64 last_update` (8 bytes) with a credential;
//! * legacy 2025 = its own record layout ([`fed_info::LegacyFedInfoResponse`]);
//!   the running legacy controller only ever sends 12 zero bytes.
//!
//! Nothing here decides by message number alone: [`classify_2024`] looks at the body
//! length and the auth section, and the proxy additionally requires the peer to be
//! configured as a legacy FLURM peer. [`translate`] holds the pure frame-to-frame
//! translations; minting the credential of a translated frame is the caller's job
//! (the codec does no I/O): it gets an [`translate::Unsigned`] frame and the body-hash
//! payload to sign.

pub mod fed_info;
pub mod translate;

use crate::auth::AuthSection;
use crate::error::DecodeError;
use crate::flags::HeaderFlags;
use crate::frame::{Frame, FrameHead};
use crate::header::Header;
use crate::msg_type::MsgType;
use crate::version::ProtocolVersion;

pub use fed_info::{
    LegacyCluster, LegacyClusterState, LegacyFedInfoRequest, LegacyFedInfoResponse,
    LegacyFederation,
};

/// The only header version legacy FLURM writes (0x2600, no negotiation).
pub const LEGACY_VERSION: ProtocolVersion = ProtocolVersion::V22_05;
/// Legacy FLURM's REQUEST_FED_INFO (Slurm: REQUEST_RESERVATION_INFO).
pub const LEGACY_REQUEST_FED_INFO: MsgType = MsgType(2024);
/// Legacy FLURM's RESPONSE_FED_INFO (Slurm: RESPONSE_RESERVATION_INFO).
pub const LEGACY_RESPONSE_FED_INFO: MsgType = MsgType(2025);
/// Slurm's REQUEST_FED_INFO / RESPONSE_FED_INFO.
pub const SLURM_REQUEST_FED_INFO: MsgType = MsgType(2049);
pub const SLURM_RESPONSE_FED_INFO: MsgType = MsgType(2050);

/// Body length of legacy FLURM's 2024 (u32 show_flags).
pub const LEGACY_2024_BODY_LEN: u32 = 4;
/// Body length of Slurm's 2024 (i64 last_update).
pub const SLURM_2024_BODY_LEN: u32 = 8;

/// Why a translation could not be done. Every variant has a stable label
/// ([`LegacyError::reason`]) for metrics.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LegacyError {
    #[error("decode: {0}")]
    Decode(#[from] DecodeError),
    #[error("expected msg_type {expected}, got {got}")]
    WrongMsgType { expected: u16, got: u16 },
    #[error("persist-framed frame: legacy translation needs normal framing")]
    NotNormalFraming,
    #[error("2024 frame is not attributable to legacy FLURM ({0})")]
    NotLegacy2024(&'static str),
    #[error("REQUEST_FED_INFO with a {0}-byte body (Slurm's has none)")]
    NonEmptyFedInfoRequest(usize),
    #[error("legacy 2025 has {0} clusters, more than Slurm's MAX_FED_CLUSTERS (63)")]
    TooManyClusters(usize),
}

impl LegacyError {
    pub fn reason(&self) -> &'static str {
        match self {
            LegacyError::Decode(_) => "decode",
            LegacyError::WrongMsgType { .. } => "wrong_msg_type",
            LegacyError::NotNormalFraming => "not_normal_framing",
            LegacyError::NotLegacy2024(_) => "not_legacy_2024",
            LegacyError::NonEmptyFedInfoRequest(_) => "non_empty_request",
            LegacyError::TooManyClusters(_) => "too_many_clusters",
        }
    }
}

/// What a frame numbered 2024 is, judged from its shape (never from the number).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Kind2024 {
    /// Slurm's REQUEST_RESERVATION_INFO: an 8-byte body and a credential.
    SlurmReservationInfo,
    /// Legacy FLURM's REQUEST_FED_INFO: a 4-byte body and no auth section.
    LegacyFedInfo,
    /// Numbered 2024 but neither shape (counted and passed through untouched).
    Unrecognised,
}

/// Classifies a 2024 frame by body length and auth section. Frames with another
/// msg_type, or persist-framed, are `Unrecognised`.
pub fn classify_2024(frame: &Frame) -> Kind2024 {
    let FrameHead::Normal { header, auth } = &frame.head else {
        return Kind2024::Unrecognised;
    };
    if header.msg_type != LEGACY_REQUEST_FED_INFO || !frame.trailing.is_empty() {
        return Kind2024::Unrecognised;
    }
    let has_credential = !matches!(auth, AuthSection::Absent | AuthSection::NoCredential);
    match (header.body_length, has_credential) {
        (SLURM_2024_BODY_LEN, true) => Kind2024::SlurmReservationInfo,
        (LEGACY_2024_BODY_LEN, false) if matches!(auth, AuthSection::Absent) => {
            Kind2024::LegacyFedInfo
        }
        _ => Kind2024::Unrecognised,
    }
}

/// The 16-byte header legacy FLURM writes: 0x2600, flags 0, no forward/ret,
/// AF_UNSPEC.
pub fn legacy_header(msg_type: MsgType, body_length: u32) -> Header {
    Header::new(LEGACY_VERSION, HeaderFlags(0), msg_type, body_length)
}
