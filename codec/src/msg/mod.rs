//! Typed message bodies, one module per message family (spec §8). A body the codec
//! does not model stays raw bytes; that is never an error by itself.
//!
//! To add a family: write its module with `Decode`/`Encode` impls, then add one
//! line to the `messages!` table below.

use bytes::{BufMut, Bytes};

use crate::error::Result;
use crate::msg_type::{MsgType, Namespace};
use crate::version::ProtocolVersion;
use crate::wire::{Decode, Encode, Reader};

pub mod accounting;
pub mod common;
pub mod ctld_mult;
pub mod dep;
pub mod fed_info;
pub mod persist;
pub mod rc;
pub mod reservation;
pub mod sib;

pub use accounting::{AccountingUpdate, UpdateObject, UpdateObjects, UpdateType};
pub use common::{JobId, RawBytes, SiblingBitmap, StepId};
pub use ctld_mult::{CtldItem, CtldMultMsg, ItemContent};
pub use dep::{DependSpec, SendDep, UpdateOriginDep};
pub use fed_info::{
    AccountingRec, AssocRec, ClusterAccountingRec, ClusterFlags, ClusterRec, FedInfoRequest,
    FedInfoResponse, FedState, FederationRec, TresRec,
};
pub use persist::{PersistInit, PersistRc, PersistType};
pub use rc::{Ping, RerouteMsg, ReturnCode, SlurmRc, SlurmRcMsg};
pub use reservation::{ReservationInfoRequest, ReservationInfoResponse, ReservationRec};
pub use sib::{JobState, SibMsg, SibMsgType};

/// One short line for a conversation view. `msg_type` tells apart the message
/// types that share a body layout (4500/4501, 4502/4503/4504).
pub trait Summary {
    fn summary(&self, msg_type: MsgType) -> String;
}

/// A message type's name without its REQUEST_/RESPONSE_ prefix.
pub fn short_name(msg_type: MsgType) -> String {
    let n = msg_type.display_in(Namespace::Slurm);
    n.strip_prefix("REQUEST_")
        .or_else(|| n.strip_prefix("RESPONSE_"))
        .unwrap_or(&n)
        .to_string()
}

macro_rules! messages {
    ($( $variant:ident($ty:ty) = $msg_type:ident ),* $(,)?) => {
        /// A decoded body of a modelled message type.
        #[derive(Clone, Debug, PartialEq, serde::Serialize)]
        #[serde(untagged)]
        pub enum Message {
            $( $variant($ty), )*
        }

        impl Message {
            /// Decodes `body` as `msg_type` at `version`; `None` when the type is not
            /// modelled (the body stays raw). The whole body must be consumed.
            /// `base` = the body's offset in its frame (for error offsets).
            pub fn decode(
                msg_type: MsgType,
                ns: Namespace,
                version: ProtocolVersion,
                body: Bytes,
                base: usize,
            ) -> Option<Result<Message>> {
                if ns == Namespace::Dbd && !matches!(msg_type.0, 1433 | 6500) {
                    return None; // DBD bodies are not modelled
                }
                let mut r = Reader::with_base(body, base);
                let decoded = match msg_type {
                    $( MsgType::$msg_type => <$ty>::decode(&mut r, version).map(Message::$variant), )*
                    _ => return None,
                };
                Some(decoded.and_then(|m| r.finish().map(|_| m)))
            }

            /// Encodes the body at `version` (the frame's header version, or the
            /// persistent connection's negotiated version).
            pub fn encode(&self, w: &mut impl BufMut, version: ProtocolVersion) {
                match self {
                    $( Message::$variant(m) => m.encode(w, version), )*
                }
            }

            pub fn msg_type(&self) -> MsgType {
                match self {
                    $( Message::$variant(_) => MsgType::$msg_type, )*
                }
            }

            /// One short line for a conversation view, e.g.
            /// `CTLD_MULT_MSG [SIB_MSG FED_JOB_SUBMIT_BATCH job 67108865 (cluster 1, local 1)]`.
            pub fn summary(&self) -> String {
                match self {
                    $( Message::$variant(m) => Summary::summary(m, MsgType::$msg_type), )*
                }
            }

            /// False when a CTLD_MULT_MSG item of a modelled type failed to decode and
            /// stayed raw. A caller guessing the version of a persistent connection
            /// can prefer a version at which this holds.
            pub fn is_fully_typed(&self) -> bool {
                match self {
                    Message::CtldMultRequest(m) | Message::CtldMultResponse(m) => m
                        .items
                        .iter()
                        .all(|i| !matches!(i.content, ItemContent::Raw { error: Some(_), .. })),
                    _ => true,
                }
            }

            /// Whether `msg_type` has a typed model.
            pub fn is_modelled(msg_type: MsgType) -> bool {
                matches!(msg_type, $( MsgType::$msg_type )|*)
            }
        }
    };
}

messages! {
    PersistInit(PersistInit) = REQUEST_PERSIST_INIT,
    PersistRc(PersistRc) = PERSIST_RC,
    Ping(Ping) = REQUEST_PING,
    ReservationInfoRequest(ReservationInfoRequest) = REQUEST_RESERVATION_INFO,
    ReservationInfoResponse(ReservationInfoResponse) = RESPONSE_RESERVATION_INFO,
    FedInfoRequest(FedInfoRequest) = REQUEST_FED_INFO,
    FedInfoResponse(FedInfoResponse) = RESPONSE_FED_INFO,
    CtldMultRequest(CtldMultMsg) = REQUEST_CTLD_MULT_MSG,
    CtldMultResponse(CtldMultMsg) = RESPONSE_CTLD_MULT_MSG,
    SibMsg(SibMsg) = REQUEST_SIB_MSG,
    SibJobLock(SibMsg) = REQUEST_SIB_JOB_LOCK,
    SibJobUnlock(SibMsg) = REQUEST_SIB_JOB_UNLOCK,
    SendDep(SendDep) = REQUEST_SEND_DEP,
    UpdateOriginDep(UpdateOriginDep) = REQUEST_UPDATE_ORIGIN_DEP,
    SlurmRc(SlurmRc) = RESPONSE_SLURM_RC,
    SlurmRcMsg(SlurmRcMsg) = RESPONSE_SLURM_RC_MSG,
    Reroute(RerouteMsg) = RESPONSE_SLURM_REROUTE_MSG,
    AccountingUpdate(AccountingUpdate) = ACCOUNTING_UPDATE_MSG,
}

impl Summary for PersistInit {
    /// `PERSIST_INIT alpha FED port 6817 v22.05`
    fn summary(&self, _: MsgType) -> String {
        format!(
            "PERSIST_INIT {} {} port {} v{}",
            common::text_or_null(&self.cluster_name),
            self.persist_type.name(),
            self.port,
            self.version
        )
    }
}

impl Summary for PersistRc {
    /// `PERSIST_RC 0 v22.05` (accepted), `PERSIST_RC -1 "no fed_mgr_fed_rec…"`
    fn summary(&self, _: MsgType) -> String {
        let mut s = format!("PERSIST_RC {}", ReturnCode(self.rc).short());
        match self.negotiated_version() {
            Some(v) => s.push_str(&format!(" v{v}")),
            None => {
                if let Some(c) = self.comment.text() {
                    s.push_str(&format!(" {c:?}"));
                }
            }
        }
        s
    }
}

impl Summary for Ping {
    fn summary(&self, t: MsgType) -> String {
        t.display_in(Namespace::Slurm)
    }
}

impl Summary for FedInfoRequest {
    fn summary(&self, t: MsgType) -> String {
        t.display_in(Namespace::Slurm)
    }
}

impl Summary for ReservationInfoRequest {
    fn summary(&self, t: MsgType) -> String {
        format!(
            "{} last_update {}",
            t.display_in(Namespace::Slurm),
            self.last_update
        )
    }
}

/// The message name without its prefix, then the body's own `describe()`:
/// `FED_INFO fed1: alpha#1 ACTIVE 127.0.0.1:6817, beta#2 ACTIVE 127.0.0.1:7817`,
/// `SIB_MSG FED_JOB_SUBMIT_BATCH job 67108865 (cluster 1, local 1)`.
macro_rules! summary_by_describe {
    ($($body:ty),* $(,)?) => {$(
        impl Summary for $body {
            fn summary(&self, t: MsgType) -> String {
                format!("{} {}", short_name(t), self.describe())
            }
        }
    )*};
}

summary_by_describe!(
    FedInfoResponse,
    ReservationInfoResponse,
    CtldMultMsg,
    SibMsg,
    SendDep,
    UpdateOriginDep,
);

impl Summary for SlurmRc {
    /// `SLURM_RC 0`, `SLURM_RC 2002 ESLURM_ACCESS_DENIED`
    fn summary(&self, t: MsgType) -> String {
        format!("{} {}", short_name(t), self.return_code.short())
    }
}

impl Summary for SlurmRcMsg {
    fn summary(&self, t: MsgType) -> String {
        let mut s = format!("{} {}", short_name(t), self.return_code.short());
        if let Some(m) = self.err_msg.text() {
            s.push_str(&format!(" {m:?}"));
        }
        s
    }
}

impl Summary for RerouteMsg {
    fn summary(&self, t: MsgType) -> String {
        match &self.working_cluster_rec {
            Some(c) => format!("{} to {}", short_name(t), c.describe()),
            None => format!("{} (no cluster)", short_name(t)),
        }
    }
}

impl Summary for AccountingUpdate {
    fn summary(&self, t: MsgType) -> String {
        format!(
            "{} {}",
            short_name(t).trim_end_matches("_MSG"),
            self.describe()
        )
    }
}
