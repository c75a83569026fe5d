//! `sib_msg_t` (spec §8.7): REQUEST_SIB_MSG (4502), REQUEST_SIB_JOB_LOCK (4503),
//! REQUEST_SIB_JOB_UNLOCK (4504). The embedded data (`has_data` = 1) is the raw body
//! of a `data_type` message packed at `data_version`, running to the end of the
//! enclosing buffer; it stays raw and delimited.

use bytes::BufMut;
use std::fmt;

use crate::error::{DecodeError, ErrorKind, Result};
use crate::msg_type::{MsgType, Namespace};
use crate::version::ProtocolVersion;
use crate::wire::{Decode, Encode, PackStr, Reader};

use super::common::{bool16, flag_names, JobId, RawBytes, SiblingBitmap, StepId};
use super::rc::ReturnCode;
use super::sib_payload::SibPayload;

/// `enum fed_job_update_type` (`src/slurmctld/fed_mgr.c`, unchanged 22.05 → 26.05).
#[derive(Copy, Clone, PartialEq, Eq, Hash)]
pub enum SibMsgType {
    None,
    Cancel,
    Complete,
    RemoveActiveSibBit,
    Requeue,
    Start,
    SubmitBatch,
    SubmitInt,
    SubmitResp,
    Sync,
    Update,
    UpdateResponse,
    SendJobSync,
}

impl SibMsgType {
    const ALL: [SibMsgType; 13] = [
        SibMsgType::None,
        SibMsgType::Cancel,
        SibMsgType::Complete,
        SibMsgType::RemoveActiveSibBit,
        SibMsgType::Requeue,
        SibMsgType::Start,
        SibMsgType::SubmitBatch,
        SibMsgType::SubmitInt,
        SibMsgType::SubmitResp,
        SibMsgType::Sync,
        SibMsgType::Update,
        SibMsgType::UpdateResponse,
        SibMsgType::SendJobSync,
    ];

    /// The wire value; unknown values are a decode error.
    pub fn from_wire(v: u16) -> Option<SibMsgType> {
        Self::ALL.get(v as usize).copied()
    }

    pub fn to_wire(self) -> u16 {
        self as u16
    }

    pub fn name(self) -> &'static str {
        match self {
            SibMsgType::None => "FED_JOB_NONE",
            SibMsgType::Cancel => "FED_JOB_CANCEL",
            SibMsgType::Complete => "FED_JOB_COMPLETE",
            SibMsgType::RemoveActiveSibBit => "FED_JOB_REMOVE_ACTIVE_SIB_BIT",
            SibMsgType::Requeue => "FED_JOB_REQUEUE",
            SibMsgType::Start => "FED_JOB_START",
            SibMsgType::SubmitBatch => "FED_JOB_SUBMIT_BATCH",
            SibMsgType::SubmitInt => "FED_JOB_SUBMIT_INT",
            SibMsgType::SubmitResp => "FED_JOB_SUBMIT_RESP",
            SibMsgType::Sync => "FED_JOB_SYNC",
            SibMsgType::Update => "FED_JOB_UPDATE",
            SibMsgType::UpdateResponse => "FED_JOB_UPDATE_RESPONSE",
            SibMsgType::SendJobSync => "FED_SEND_JOB_SYNC",
        }
    }
}

impl fmt::Debug for SibMsgType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl serde::Serialize for SibMsgType {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

/// A job state (`enum job_states` + flags, `slurm/slurm.h`): base state in the low
/// 8 bits, flags above. Display only; any value round-trips.
#[derive(Copy, Clone, PartialEq, Eq, Hash, Default)]
pub struct JobState(pub u32);

impl JobState {
    const BASE: [&'static str; 12] = [
        "PENDING",
        "RUNNING",
        "SUSPENDED",
        "COMPLETE",
        "CANCELLED",
        "FAILED",
        "TIMEOUT",
        "NODE_FAIL",
        "PREEMPTED",
        "BOOT_FAIL",
        "DEADLINE",
        "OOM",
    ];
    const FLAGS: [(u64, &'static str); 16] = [
        (0x100, "LAUNCH_FAILED"),
        (0x200, "UPDATE_DB"),
        (0x400, "REQUEUE"),
        (0x800, "REQUEUE_HOLD"),
        (0x1000, "SPECIAL_EXIT"),
        (0x2000, "RESIZING"),
        (0x4000, "CONFIGURING"),
        (0x8000, "COMPLETING"),
        (0x10000, "STOPPED"),
        (0x20000, "RECONFIG_FAIL"),
        (0x40000, "POWER_UP_NODE"),
        (0x80000, "REVOKED"),
        (0x100000, "REQUEUE_FED"),
        (0x200000, "RESV_DEL_HOLD"),
        (0x400000, "SIGNALING"),
        (0x800000, "STAGE_OUT"),
    ];

    pub fn names(self) -> String {
        let base = self.0 & 0xff;
        let mut s = match Self::BASE.get(base as usize) {
            Some(n) => n.to_string(),
            None => format!("UNKNOWN_{base}"),
        };
        let flags = flag_names((self.0 & !0xff) as u64, &Self::FLAGS);
        if !flags.is_empty() {
            s.push('|');
            s.push_str(&flags);
        }
        s
    }
}

impl fmt::Debug for JobState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.names())
    }
}

impl serde::Serialize for JobState {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&self.names())
    }
}

/// `sib_msg_t` (§8.7). Fields missing from a version's layout are `None`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SibMsg {
    /// For LOCK/UNLOCK: the cluster asking for the lock.
    pub cluster_id: u32,
    /// msg_type of the embedded data (0 when none).
    pub data_type: MsgType,
    /// Version the embedded data says it is packed with (not to be trusted alone, §9.3).
    pub data_version: ProtocolVersion,
    pub fed_siblings: SiblingBitmap,
    /// ≥23.02 only.
    pub group_id: Option<u32>,
    /// ≤25.05 only (moved into `step_id` in 25.11).
    pub job_id: Option<JobId>,
    pub job_state: JobState,
    pub return_code: ReturnCode,
    pub start_time: i64,
    pub resp_host: PackStr,
    pub req_uid: u32,
    pub sib_msg_type: SibMsgType,
    /// ≥25.11 only.
    pub step_id: Option<StepId>,
    pub submit_host: PackStr,
    /// ≥23.11 only.
    pub submit_proto_ver: Option<u16>,
    /// ≥23.02 only.
    pub user_id: Option<u32>,
    /// `has_data` = 1: the embedded body (possibly empty).
    pub data: Option<RawBytes>,
}

impl SibMsg {
    /// The job id wherever the version keeps it.
    /// FED_JOB_CANCEL leaves the header's id 0: then the embedded body's job.
    pub fn job(&self) -> Option<JobId> {
        let header = self.job_id.or(self.step_id.map(|s| s.job_id));
        match header {
            Some(j) if j.0 != 0 => Some(j),
            _ => self.payload().and_then(|p| p.job()).or(header),
        }
    }

    /// `FED_JOB_SUBMIT_BATCH job 67108865 (cluster 1, local 1)`
    pub fn describe(&self) -> String {
        let mut s = self.sib_msg_type.name().to_string();
        // No job (0) is said by leaving it out: FED_JOB_SYNC carries none.
        if let Some(j) = self.job().filter(|j| j.0 != 0) {
            s.push_str(&format!(" job {j}"));
        }
        if self.return_code.0 != 0 {
            s.push_str(&format!(" rc {}", self.return_code.short()));
        }
        match self.payload().map(|p| p.payload) {
            Some(SibPayload::JobDesc(d)) => s.push_str(&format!(" {}", d.describe(self.user_id))),
            Some(SibPayload::Kill(k)) => s.push_str(&format!(" signal {}", k.signal)),
            _ => {}
        }
        s
    }
}

impl serde::Serialize for SibMsg {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("SibMsg", 19)?;
        st.serialize_field("sib_msg_type", &self.sib_msg_type)?;
        st.serialize_field("job_id", &self.job())?;
        st.serialize_field("cluster_id", &self.cluster_id)?;
        st.serialize_field("fed_siblings", &self.fed_siblings)?;
        st.serialize_field("group_id", &self.group_id)?;
        st.serialize_field("job_state", &self.job_state)?;
        st.serialize_field("return_code", &self.return_code)?;
        st.serialize_field("start_time", &self.start_time)?;
        st.serialize_field("resp_host", &self.resp_host)?;
        st.serialize_field("req_uid", &self.req_uid)?;
        st.serialize_field("step_id", &self.step_id)?;
        st.serialize_field("submit_host", &self.submit_host)?;
        st.serialize_field(
            "submit_proto_ver",
            &self.submit_proto_ver.map(ProtocolVersion),
        )?;
        st.serialize_field("user_id", &self.user_id)?;
        st.serialize_field("data_type", &self.data_type.display_in(Namespace::Slurm))?;
        st.serialize_field("data_version", &self.data_version)?;
        st.serialize_field("data", &self.data)?;
        st.serialize_field("payload", &self.payload().map(|p| p.payload))?;
        st.end()
    }
}

impl Decode for SibMsg {
    fn decode(r: &mut Reader, v: ProtocolVersion) -> Result<Self> {
        let cluster_id = r.u32()?;
        let data_type = MsgType(r.u16()?);
        let data_version = ProtocolVersion(r.u16()?);
        let fed_siblings = SiblingBitmap(r.u64()?);
        let group_id = if v >= ProtocolVersion::V23_02 {
            Some(r.u32()?)
        } else {
            None
        };
        let job_id = if v <= ProtocolVersion::V25_05 {
            Some(JobId(r.u32()?))
        } else {
            None
        };
        let job_state = JobState(r.u32()?);
        let return_code = ReturnCode(r.u32()? as i32);
        let start_time = r.i64()?;
        let resp_host = r.packstr()?;
        let req_uid = r.u32()?;
        let at = r.offset();
        let raw_type = r.u16()?;
        let sib_msg_type = SibMsgType::from_wire(raw_type).ok_or_else(|| {
            DecodeError::new(
                at,
                ErrorKind::UnknownValue {
                    field: "sib_msg_type",
                    value: raw_type as u64,
                },
            )
        })?;
        let step_id = if v >= ProtocolVersion::V25_11 {
            Some(StepId::decode(r, v)?)
        } else {
            None
        };
        let submit_host = r.packstr()?;
        let submit_proto_ver = if v >= ProtocolVersion::V23_11 {
            Some(r.u16()?)
        } else {
            None
        };
        let user_id = if v >= ProtocolVersion::V23_02 {
            Some(r.u32()?)
        } else {
            None
        };
        let data = if bool16(r, "has_data")? {
            Some(RawBytes(r.rest()))
        } else {
            None
        };
        Ok(SibMsg {
            cluster_id,
            data_type,
            data_version,
            fed_siblings,
            group_id,
            job_id,
            job_state,
            return_code,
            start_time,
            resp_host,
            req_uid,
            sib_msg_type,
            step_id,
            submit_host,
            submit_proto_ver,
            user_id,
            data,
        })
    }
}

impl Encode for SibMsg {
    fn encode(&self, w: &mut impl BufMut, v: ProtocolVersion) {
        w.put_u32(self.cluster_id);
        w.put_u16(self.data_type.0);
        w.put_u16(self.data_version.0);
        w.put_u64(self.fed_siblings.0);
        if v >= ProtocolVersion::V23_02 {
            w.put_u32(self.group_id.unwrap_or(0));
        }
        if v <= ProtocolVersion::V25_05 {
            w.put_u32(self.job().unwrap_or_default().0);
        }
        w.put_u32(self.job_state.0);
        w.put_u32(self.return_code.0 as u32);
        w.put_i64(self.start_time);
        self.resp_host.encode(w);
        w.put_u32(self.req_uid);
        w.put_u16(self.sib_msg_type.to_wire());
        if v >= ProtocolVersion::V25_11 {
            let step = self.step_id.unwrap_or(StepId {
                job_id: self.job().unwrap_or_default(),
                ..StepId::default()
            });
            step.encode(w, v);
        }
        self.submit_host.encode(w);
        if v >= ProtocolVersion::V23_11 {
            w.put_u16(self.submit_proto_ver.unwrap_or(0));
        }
        if v >= ProtocolVersion::V23_02 {
            w.put_u32(self.user_id.unwrap_or(0));
        }
        match &self.data {
            None => w.put_u16(0),
            Some(d) => {
                w.put_u16(1);
                w.put_slice(&d.0);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn complete_22_05() -> SibMsg {
        SibMsg {
            cluster_id: 0,
            data_type: MsgType(0),
            data_version: ProtocolVersion(0),
            fed_siblings: SiblingBitmap(0),
            group_id: None,
            job_id: Some(JobId::federated(1, 2)),
            job_state: JobState(4),
            return_code: ReturnCode(0),
            start_time: 0x6b02d07c,
            resp_host: PackStr::NULL,
            req_uid: 0,
            sib_msg_type: SibMsgType::Complete,
            step_id: None,
            submit_host: PackStr::NULL,
            submit_proto_ver: None,
            user_id: None,
            data: None,
        }
    }

    #[test]
    fn spec_9_7_fed_job_complete() {
        // Spec §9.7: the 52-byte 22.05 FED_JOB_COMPLETE body (after its u16 type).
        let want = "00000000 0000 0000 0000000000000000 04000002 00000004 00000000 000000006b02d07c 00000000 00000000 0002 00000000 0000";
        let want: Vec<u8> = (0..want.replace(' ', "").len() / 2)
            .map(|i| u8::from_str_radix(&want.replace(' ', "")[2 * i..2 * i + 2], 16).unwrap())
            .collect();
        let m = complete_22_05();
        let mut out = Vec::new();
        m.encode(&mut out, ProtocolVersion::V22_05);
        assert_eq!(out, want);
        assert_eq!(out.len(), 52);
        let back =
            SibMsg::decode(&mut Reader::new(Bytes::from(out)), ProtocolVersion::V22_05).unwrap();
        assert_eq!(back, m);
        assert_eq!(back.job_state.names(), "CANCELLED");
        assert_eq!(
            back.describe(),
            "FED_JOB_COMPLETE job 67108866 (cluster 1, local 2)"
        );
    }

    #[test]
    fn unknown_sib_msg_type_is_typed_error() {
        let mut m = Vec::new();
        complete_22_05().encode(&mut m, ProtocolVersion::V22_05);
        m[44] = 0;
        m[45] = 13; // sib_msg_type
        let e = SibMsg::decode(
            &mut Reader::with_base(Bytes::from(m), 100),
            ProtocolVersion::V22_05,
        )
        .unwrap_err();
        assert_eq!(e.offset, 144);
        assert_eq!(
            e.kind,
            ErrorKind::UnknownValue {
                field: "sib_msg_type",
                value: 13
            }
        );
    }

    #[test]
    fn bad_has_data_is_rejected() {
        let mut m = Vec::new();
        complete_22_05().encode(&mut m, ProtocolVersion::V22_05);
        let n = m.len();
        m[n - 1] = 2;
        let e =
            SibMsg::decode(&mut Reader::new(Bytes::from(m)), ProtocolVersion::V22_05).unwrap_err();
        assert_eq!((e.offset, e.reason()), (50, "unknown_value"));
    }
}
