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
pub mod job_ctl;
pub mod job_desc;
pub mod jobs;
pub mod persist;
pub mod rc;
pub mod reservation;
pub mod sib;
pub mod sib_payload;
pub mod slurmdb;

pub use accounting::{AccountingUpdate, UpdateObject, UpdateObjects, UpdateType};
pub use common::{JobId, RawBytes, SiblingBitmap, StepId};
pub use ctld_mult::{CtldItem, CtldMultMsg, ItemContent};
pub use dep::{DependSpec, SendDep, UpdateOriginDep};
pub use fed_info::{FedInfoRequest, FedInfoResponse};
pub use job_ctl::{JobRequeue, JobStepKill, SubmitResponse};
pub use job_desc::{JobDesc, JOB_DESC_FIELDS};
pub use persist::{PersistInit, PersistRc, PersistType};
pub use rc::{Ping, RerouteMsg, ReturnCode, SlurmRc, SlurmRcMsg};
pub use reservation::{ReservationInfoRequest, ReservationInfoResponse, ReservationRec};
pub use sib::{JobState, SibMsg, SibMsgType};
pub use sib_payload::{DecodedPayload, SibPayload};
pub use slurmdb::{
    AccountingRec, AssocRec, ClusterAccountingRec, ClusterFlags, ClusterRec, FedState,
    FederationRec, TresRec,
};

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
                if !layout_modelled(msg_type, version) {
                    return None;
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
    SubmitBatchJob(JobDesc) = REQUEST_SUBMIT_BATCH_JOB,
    ResourceAllocation(JobDesc) = REQUEST_RESOURCE_ALLOCATION,
    JobWillRun(JobDesc) = REQUEST_JOB_WILL_RUN,
    UpdateJob(JobDesc) = REQUEST_UPDATE_JOB,
    SubmitResponse(SubmitResponse) = RESPONSE_SUBMIT_BATCH_JOB,
    CancelJobStep(JobStepKill) = REQUEST_CANCEL_JOB_STEP,
    KillJob(JobStepKill) = REQUEST_KILL_JOB,
    JobRequeue(JobRequeue) = REQUEST_JOB_REQUEUE,
}

/// Job bodies have one layout per release from 22.05 on; older headers (20.11,
/// 21.08) pack other field lists, so their bodies stay raw.
fn layout_modelled(msg_type: MsgType, version: ProtocolVersion) -> bool {
    version >= ProtocolVersion::V22_05
        || !matches!(
            msg_type.0,
            3001 | 4001 | 4003 | 4004 | 4012 | 5005 | 5023 | 5032
        )
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
    /// `PERSIST_RC 0 v22.05` (a PERSIST_INIT accepted), `PERSIST_RC 0 for
    /// DBD_STEP_START` (slurmdbd answering a DBD request), `PERSIST_RC -1 "…"`
    fn summary(&self, _: MsgType) -> String {
        let mut s = match self.cluster_id() {
            Some(id) => format!("PERSIST_RC cluster id {id}"),
            None => format!("PERSIST_RC {}", ReturnCode(self.rc).short()),
        };
        match self.answers() {
            persist::RetInfo::Version(v) if self.rc == 0 => s.push_str(&format!(" v{v}")),
            persist::RetInfo::MsgType(t) => {
                s.push_str(&format!(" for {}", persist::answered_name(t)))
            }
            _ => {}
        }
        if let Some(c) = self.comment.text() {
            s.push_str(&format!(" {c:?}"));
        }
        s
    }
}

impl Summary for JobDesc {
    /// `SUBMIT_BATCH_JOB uid 0 partition (default) name "wrap" script 12B`
    fn summary(&self, t: MsgType) -> String {
        let mut s = format!("{} {}", short_name(t), self.describe(None));
        if self.script.0.is_some() {
            s.push_str(&format!(" script {}B", self.script_len()));
        }
        s
    }
}

impl Summary for SubmitResponse {
    /// `RESPONSE_SUBMIT_BATCH_JOB job 67108865 (cluster 1, local 1)`
    fn summary(&self, t: MsgType) -> String {
        format!("{} {}", t.display_in(Namespace::Slurm), self.describe())
    }
}

impl Summary for JobStepKill {
    /// `KILL_JOB job 67108866 (cluster 1, local 2) signal 9`
    fn summary(&self, t: MsgType) -> String {
        format!("{} {}", short_name(t), self.describe())
    }
}

impl Summary for JobRequeue {
    fn summary(&self, t: MsgType) -> String {
        format!("{} job {}", short_name(t), self.step_id.job_id)
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
