//! The body a sib message embeds (job-desc spec §6): decoded on demand from the
//! raw, delimited `data` of a [`SibMsg`], so relaying never pays for it.
//!
//! The layout version: `data_version` first, clamped to the newest layout; then,
//! older layouts (an origin ≥24.11 re-packs for an older sibling but keeps the
//! client's newer `data_version`, §6.3). A payload that fits no layout stays raw.

use bytes::Bytes;

use crate::msg_type::MsgType;
use crate::version::ProtocolVersion;
use crate::wire::{Decode, Reader};

use super::common::JobId;
use super::job_ctl::{JobRequeue, JobStepKill};
use super::job_desc::JobDesc;
use super::sib::SibMsg;

/// A decoded sib payload.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(untagged)]
pub enum SibPayload {
    /// 4003 / 4001 / 3001: FED_JOB_SUBMIT_BATCH, _SUBMIT_INT, _UPDATE.
    JobDesc(Box<JobDesc>),
    /// 5005 / 5032: FED_JOB_CANCEL.
    Kill(JobStepKill),
    /// 5023: FED_JOB_REQUEUE.
    Requeue(JobRequeue),
}

/// A payload with the layout it decoded at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecodedPayload {
    pub payload: SibPayload,
    pub layout: ProtocolVersion,
}

impl DecodedPayload {
    /// The job the payload names (not a sentinel, not 0).
    pub fn job(&self) -> Option<JobId> {
        let j = match &self.payload {
            SibPayload::JobDesc(d) => d.job(self.layout),
            SibPayload::Kill(k) => return k.job(),
            SibPayload::Requeue(q) => q.step_id.job_id,
        };
        (!j.is_sentinel() && j.0 != 0).then_some(j)
    }
}

fn decode_as(t: MsgType, body: &Bytes, v: ProtocolVersion) -> Option<SibPayload> {
    let mut r = Reader::new(body.clone());
    let p = match t {
        MsgType::REQUEST_SUBMIT_BATCH_JOB
        | MsgType::REQUEST_RESOURCE_ALLOCATION
        | MsgType::REQUEST_UPDATE_JOB => {
            SibPayload::JobDesc(Box::new(JobDesc::decode(&mut r, v).ok()?))
        }
        MsgType::REQUEST_CANCEL_JOB_STEP | MsgType::REQUEST_KILL_JOB => {
            SibPayload::Kill(JobStepKill::decode(&mut r, v).ok()?)
        }
        MsgType::REQUEST_JOB_REQUEUE => SibPayload::Requeue(JobRequeue::decode(&mut r, v).ok()?),
        _ => return None,
    };
    r.is_empty().then_some(p)
}

impl SibMsg {
    /// The embedded body, typed, when its `data_type` is modelled and it decodes to
    /// its last byte at `data_version` (or an older layout, §6.3).
    pub fn payload(&self) -> Option<DecodedPayload> {
        let data = &self.data.as_ref()?.0;
        let claimed = self.data_version.min(ProtocolVersion::NEWEST);
        if claimed < JobDesc::OLDEST {
            return None;
        }
        ProtocolVersion::MODERN
            .iter()
            .rev()
            .filter(|&&v| v <= claimed)
            .find_map(|&v| {
                decode_as(self.data_type, data, v)
                    .map(|payload| DecodedPayload { payload, layout: v })
            })
    }
}
