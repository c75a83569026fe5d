//! The small job-control bodies (job-desc spec §3, §4, §6.4):
//! `job_step_kill_msg_t` (REQUEST_CANCEL_JOB_STEP 5005, REQUEST_KILL_JOB 5032, and the
//! payload of FED_JOB_CANCEL), `submit_response_msg_t` (RESPONSE_SUBMIT_BATCH_JOB
//! 4004) and `requeue_msg_t` (REQUEST_JOB_REQUEUE 5023, payload of FED_JOB_REQUEUE).

use bytes::BufMut;

use crate::error::Result;
use crate::version::ProtocolVersion;
use crate::wire::{Decode, Encode, PackStr, Reader};

use super::common::{JobId, StepId};
use super::rc::ReturnCode;

/// The step_id block as `pack_step_id` writes it (§1.2): 12 bytes up to 24.05,
/// 20 bytes (with the u64 sluid first) from 24.11.
pub fn decode_step_block(r: &mut Reader, v: ProtocolVersion) -> Result<StepId> {
    let sluid = if v >= ProtocolVersion::V24_11 {
        r.u64()?
    } else {
        0
    };
    Ok(StepId {
        sluid,
        job_id: JobId(r.u32()?),
        step_id: r.u32()?,
        step_het_comp: r.u32()?,
    })
}

pub fn encode_step_block(s: &StepId, w: &mut impl BufMut, v: ProtocolVersion) {
    if v >= ProtocolVersion::V24_11 {
        w.put_u64(s.sluid);
    }
    w.put_u32(s.job_id.0);
    w.put_u32(s.step_id);
    w.put_u32(s.step_het_comp);
}

/// `job_step_kill_msg_t` (§3): the same fields at every version.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct JobStepKill {
    pub step_id: StepId,
    /// The job id as text (`67108866`, `123_4`); NULL when step_id names the job.
    pub sjob_id: PackStr,
    /// Sibling cluster name for federation-internal kills.
    pub sibling: PackStr,
    pub signal: u16,
    pub flags: u16,
}

impl JobStepKill {
    /// The job: step_id's when set, else the leading number of `sjob_id`.
    pub fn job(&self) -> Option<JobId> {
        if !self.step_id.job_id.is_sentinel() && self.step_id.job_id.0 != 0 {
            return Some(self.step_id.job_id);
        }
        let text = self.sjob_id.text()?;
        let digits: String = text.chars().take_while(|c| c.is_ascii_digit()).collect();
        digits.parse().ok().map(JobId)
    }

    /// `job 67108866 (cluster 1, local 2) signal 9`
    pub fn describe(&self) -> String {
        let mut s = match self.job() {
            Some(j) => format!("job {j}"),
            None => "job ?".to_string(),
        };
        s.push_str(&format!(" signal {}", self.signal));
        if let Some(c) = self.sibling.text() {
            s.push_str(&format!(" sibling {c}"));
        }
        s
    }
}

impl Decode for JobStepKill {
    fn decode(r: &mut Reader, v: ProtocolVersion) -> Result<Self> {
        Ok(JobStepKill {
            step_id: decode_step_block(r, v)?,
            sjob_id: r.packstr()?,
            sibling: r.packstr()?,
            signal: r.u16()?,
            flags: r.u16()?,
        })
    }
}

impl Encode for JobStepKill {
    fn encode(&self, w: &mut impl BufMut, v: ProtocolVersion) {
        encode_step_block(&self.step_id, w, v);
        self.sjob_id.encode(w);
        self.sibling.encode(w);
        w.put_u16(self.signal);
        w.put_u16(self.flags);
    }
}

/// `submit_response_msg_t` (§4): u32 job_id and step_id up to 25.05, the 20-byte
/// step_id block from 25.11.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct SubmitResponse {
    pub step_id: StepId,
    pub error_code: ReturnCode,
    pub job_submit_user_msg: PackStr,
}

impl SubmitResponse {
    pub fn describe(&self) -> String {
        let mut s = format!("job {}", self.step_id.job_id);
        if self.error_code.0 != 0 {
            s.push_str(&format!(" rc {}", self.error_code.short()));
        }
        s
    }
}

impl Decode for SubmitResponse {
    fn decode(r: &mut Reader, v: ProtocolVersion) -> Result<Self> {
        let step_id = if v >= ProtocolVersion::V25_11 {
            decode_step_block(r, v)?
        } else {
            let job_id = JobId(r.u32()?);
            StepId {
                job_id,
                step_id: r.u32()?,
                ..StepId::default()
            }
        };
        Ok(SubmitResponse {
            step_id,
            error_code: ReturnCode(r.u32()? as i32),
            job_submit_user_msg: r.packstr()?,
        })
    }
}

impl Encode for SubmitResponse {
    fn encode(&self, w: &mut impl BufMut, v: ProtocolVersion) {
        if v >= ProtocolVersion::V25_11 {
            encode_step_block(&self.step_id, w, v);
        } else {
            w.put_u32(self.step_id.job_id.0);
            w.put_u32(self.step_id.step_id);
        }
        w.put_u32(self.error_code.0 as u32);
        self.job_submit_user_msg.encode(w);
    }
}

/// `requeue_msg_t` (§6.4): u32 job_id up to 25.05, the step_id block from 25.11.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct JobRequeue {
    pub step_id: StepId,
    pub job_id_str: PackStr,
    pub flags: u32,
}

impl Decode for JobRequeue {
    fn decode(r: &mut Reader, v: ProtocolVersion) -> Result<Self> {
        let step_id = if v >= ProtocolVersion::V25_11 {
            decode_step_block(r, v)?
        } else {
            StepId {
                job_id: JobId(r.u32()?),
                ..StepId::default()
            }
        };
        Ok(JobRequeue {
            step_id,
            job_id_str: r.packstr()?,
            flags: r.u32()?,
        })
    }
}

impl Encode for JobRequeue {
    fn encode(&self, w: &mut impl BufMut, v: ProtocolVersion) {
        if v >= ProtocolVersion::V25_11 {
            encode_step_block(&self.step_id, w, v);
        } else {
            w.put_u32(self.step_id.job_id.0);
        }
        self.job_id_str.encode(w);
        w.put_u32(self.flags);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    #[test]
    fn kill_sizes_match_the_spec() {
        // §3: 24 bytes (≤0x2900) or 32 (≥0x2A00) with both strings NULL; scancel
        // of 67108866 with sjob_id text: 33 / 41.
        let k = JobStepKill {
            sjob_id: PackStr::from_text("67108866"),
            signal: 9,
            ..JobStepKill::default()
        };
        for (v, n) in [
            (ProtocolVersion::V22_05, 33),
            (ProtocolVersion::V24_05, 33),
            (ProtocolVersion::V24_11, 41),
            (ProtocolVersion::V26_05, 41),
        ] {
            let mut out = Vec::new();
            k.encode(&mut out, v);
            assert_eq!(out.len(), n, "{v}");
            let back = JobStepKill::decode(&mut Reader::new(Bytes::from(out)), v).unwrap();
            assert_eq!(back, k);
            assert_eq!(back.job(), Some(JobId(67108866)));
        }
    }

    #[test]
    fn submit_response_sizes_match_the_spec() {
        let s = SubmitResponse {
            step_id: StepId {
                job_id: JobId(67108865),
                step_id: 0xFFFF_FFFB,
                ..StepId::default()
            },
            ..SubmitResponse::default()
        };
        for (v, n) in [(ProtocolVersion::V25_05, 16), (ProtocolVersion::V25_11, 28)] {
            let mut out = Vec::new();
            s.encode(&mut out, v);
            assert_eq!(out.len(), n);
            let back = SubmitResponse::decode(&mut Reader::new(Bytes::from(out)), v).unwrap();
            assert_eq!(back, s);
        }
        assert_eq!(s.describe(), "job 67108865 (cluster 1, local 1)");
    }
}
