//! REQUEST_SEND_DEP (4505, `dep_msg_t`, spec §8.8) and REQUEST_UPDATE_ORIGIN_DEP
//! (4506, `dep_update_origin_msg_t`, §8.9).

use bytes::BufMut;
use std::fmt;

use crate::error::{DecodeError, ErrorKind, Result};
use crate::version::ProtocolVersion;
use crate::wire::{Decode, Encode, PackStr, Reader};

use super::common::{bool8, flag_names, JobId, StepId};

/// REQUEST_SEND_DEP (4505): a job's dependency sent to the origin cluster.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct SendDep {
    pub array_job_id: JobId,
    /// NO_VAL if not an array task.
    pub array_task_id: u32,
    pub dependency: PackStr,
    pub is_array: bool,
    /// ≤25.05 only (moved into `step_id` in 25.11).
    pub job_id: Option<JobId>,
    pub job_name: PackStr,
    /// ≥25.11 only.
    pub step_id: Option<StepId>,
    pub user_id: u32,
}

impl SendDep {
    pub fn job(&self) -> Option<JobId> {
        self.job_id.or(self.step_id.map(|s| s.job_id))
    }

    /// `job 67108866 (cluster 1, local 2) "fedtest2" dependency ""`
    pub fn describe(&self) -> String {
        let job = self.job().map_or("?".into(), |j| j.to_string());
        let dep = self
            .dependency
            .text()
            .map_or("(null)".into(), |d| format!("{d:?}"));
        let name = self
            .job_name
            .text()
            .map_or("(null)".into(), |d| format!("{d:?}"));
        format!("job {job} {name} dependency {dep}")
    }
}

impl Decode for SendDep {
    fn decode(r: &mut Reader, v: ProtocolVersion) -> Result<Self> {
        Ok(SendDep {
            array_job_id: JobId(r.u32()?),
            array_task_id: r.u32()?,
            dependency: r.packstr()?,
            is_array: bool8(r, "is_array")?,
            job_id: if v <= ProtocolVersion::V25_05 {
                Some(JobId(r.u32()?))
            } else {
                None
            },
            job_name: r.packstr()?,
            step_id: if v >= ProtocolVersion::V25_11 {
                Some(StepId::decode(r, v)?)
            } else {
                None
            },
            user_id: r.u32()?,
        })
    }
}

impl Encode for SendDep {
    fn encode(&self, w: &mut impl BufMut, v: ProtocolVersion) {
        w.put_u32(self.array_job_id.0);
        w.put_u32(self.array_task_id);
        self.dependency.encode(w);
        w.put_u8(self.is_array as u8);
        if v <= ProtocolVersion::V25_05 {
            w.put_u32(self.job().unwrap_or_default().0);
        }
        self.job_name.encode(w);
        if v >= ProtocolVersion::V25_11 {
            self.step_id
                .unwrap_or(StepId {
                    job_id: self.job().unwrap_or_default(),
                    ..StepId::default()
                })
                .encode(w, v);
        }
        w.put_u32(self.user_id);
    }
}

/// `depend_type` (`SLURM_DEPEND_*`, `src/slurmctld/slurmctld.h`). Display only.
#[derive(Copy, Clone, PartialEq, Eq, Hash, Default)]
pub struct DependType(pub u16);

impl DependType {
    pub fn name(self) -> String {
        match self.0 {
            1 => "AFTER".into(),
            2 => "AFTER_ANY".into(),
            3 => "AFTER_NOT_OK".into(),
            4 => "AFTER_OK".into(),
            5 => "SINGLETON".into(),
            6 => "EXPAND".into(),
            7 => "AFTER_CORRESPOND".into(),
            8 => "BURST_BUFFER".into(),
            n => format!("UNKNOWN_{n}"),
        }
    }
}

impl fmt::Debug for DependType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

impl serde::Serialize for DependType {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&self.name())
    }
}

/// `depend_flags` (`SLURM_FLAGS_OR` 0x1, `SLURM_FLAGS_REMOTE` 0x2).
#[derive(Copy, Clone, PartialEq, Eq, Hash, Default)]
pub struct DependFlags(pub u16);

impl DependFlags {
    pub fn names(self) -> String {
        if self.0 == 0 {
            return "0".into();
        }
        flag_names(self.0 as u64, &[(0x1, "OR"), (0x2, "REMOTE")])
    }
}

impl fmt::Debug for DependFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.names())
    }
}

impl serde::Serialize for DependFlags {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&self.names())
    }
}

/// `depend_state` (DEPEND_NOT_FULFILLED 0, DEPEND_FULFILLED 1, DEPEND_FAILED 2).
#[derive(Copy, Clone, PartialEq, Eq, Hash, Default)]
pub struct DependState(pub u32);

impl DependState {
    pub fn name(self) -> String {
        match self.0 {
            0 => "NOT_FULFILLED".into(),
            1 => "FULFILLED".into(),
            2 => "FAILED".into(),
            n => format!("UNKNOWN_{n}"),
        }
    }
}

impl fmt::Debug for DependState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

impl serde::Serialize for DependState {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&self.name())
    }
}

/// One `depend_spec_t` of a dependency list (§8.9).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct DependSpec {
    pub array_task_id: u32,
    pub depend_type: DependType,
    pub depend_flags: DependFlags,
    pub depend_state: DependState,
    pub depend_time: u32,
    pub job_id: JobId,
    /// ≥25.11 only.
    pub parsed_array_task_id: Option<u32>,
    pub singleton_bits: u64,
}

impl DependSpec {
    pub const MIN_WIRE_LEN: usize = 4 + 2 + 2 + 4 + 4 + 4 + 8;
}

impl Decode for DependSpec {
    fn decode(r: &mut Reader, v: ProtocolVersion) -> Result<Self> {
        Ok(DependSpec {
            array_task_id: r.u32()?,
            depend_type: DependType(r.u16()?),
            depend_flags: DependFlags(r.u16()?),
            depend_state: DependState(r.u32()?),
            depend_time: r.u32()?,
            job_id: JobId(r.u32()?),
            parsed_array_task_id: if v >= ProtocolVersion::V25_11 {
                Some(r.u32()?)
            } else {
                None
            },
            singleton_bits: r.u64()?,
        })
    }
}

impl Encode for DependSpec {
    fn encode(&self, w: &mut impl BufMut, v: ProtocolVersion) {
        w.put_u32(self.array_task_id);
        w.put_u16(self.depend_type.0);
        w.put_u16(self.depend_flags.0);
        w.put_u32(self.depend_state.0);
        w.put_u32(self.depend_time);
        w.put_u32(self.job_id.0);
        if v >= ProtocolVersion::V25_11 {
            w.put_u32(self.parsed_array_task_id.unwrap_or(0));
        }
        w.put_u64(self.singleton_bits);
    }
}

/// REQUEST_UPDATE_ORIGIN_DEP (4506): u32 count (a plain count: an empty or missing
/// list is 0), the entries, then the job id (≤25.05) or step id (≥25.11).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct UpdateOriginDep {
    pub depend_list: Vec<DependSpec>,
    /// ≤25.05 only.
    pub job_id: Option<JobId>,
    /// ≥25.11 only.
    pub step_id: Option<StepId>,
}

impl UpdateOriginDep {
    pub fn job(&self) -> Option<JobId> {
        self.job_id.or(self.step_id.map(|s| s.job_id))
    }

    pub fn describe(&self) -> String {
        let job = self.job().map_or("?".into(), |j| j.to_string());
        format!("job {job} {} dependencies", self.depend_list.len())
    }
}

impl Decode for UpdateOriginDep {
    fn decode(r: &mut Reader, v: ProtocolVersion) -> Result<Self> {
        let at = r.offset();
        let n = r.u32()?;
        let min = DependSpec::MIN_WIRE_LEN + if v >= ProtocolVersion::V25_11 { 4 } else { 0 };
        if (n as usize).saturating_mul(min) > r.remaining() {
            return Err(DecodeError::new(at, ErrorKind::BadCount(n)));
        }
        let mut depend_list = Vec::with_capacity(n as usize);
        for _ in 0..n {
            depend_list.push(DependSpec::decode(r, v)?);
        }
        let job_id = if v <= ProtocolVersion::V25_05 {
            Some(JobId(r.u32()?))
        } else {
            None
        };
        let step_id = if v >= ProtocolVersion::V25_11 {
            Some(StepId::decode(r, v)?)
        } else {
            None
        };
        Ok(UpdateOriginDep {
            depend_list,
            job_id,
            step_id,
        })
    }
}

impl Encode for UpdateOriginDep {
    fn encode(&self, w: &mut impl BufMut, v: ProtocolVersion) {
        w.put_u32(self.depend_list.len() as u32);
        for d in &self.depend_list {
            d.encode(w, v);
        }
        if v <= ProtocolVersion::V25_05 {
            w.put_u32(self.job().unwrap_or_default().0);
        }
        if v >= ProtocolVersion::V25_11 {
            self.step_id
                .unwrap_or(StepId {
                    job_id: self.job().unwrap_or_default(),
                    ..StepId::default()
                })
                .encode(w, v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    #[test]
    fn spec_8_8_send_dep_22_05() {
        // [LAB 22.05] 00000000 fffffffe 00000001 00 00 04000002 00000009 "fedtest2\0" 00000000
        let mut want = vec![
            0, 0, 0, 0, 0xff, 0xff, 0xff, 0xfe, 0, 0, 0, 1, 0, 0, 4, 0, 0, 2, 0, 0, 0, 9,
        ];
        want.extend_from_slice(b"fedtest2\0");
        want.extend_from_slice(&[0, 0, 0, 0]);
        let m = SendDep {
            array_job_id: JobId(0),
            array_task_id: crate::wire::NO_VAL,
            dependency: PackStr::from_text(""),
            is_array: false,
            job_id: Some(JobId::federated(1, 2)),
            job_name: PackStr::from_text("fedtest2"),
            step_id: None,
            user_id: 0,
        };
        for v in [ProtocolVersion::V22_05, ProtocolVersion::V25_05] {
            let mut out = Vec::new();
            m.encode(&mut out, v);
            assert_eq!(out, want);
            assert_eq!(
                SendDep::decode(&mut Reader::new(Bytes::from(out)), v).unwrap(),
                m
            );
        }
    }

    #[test]
    fn update_origin_dep_count_is_bounded() {
        let e = UpdateOriginDep::decode(
            &mut Reader::new(Bytes::from_static(&[0xff, 0xff, 0xff, 0xfe, 0, 0, 0, 1])),
            ProtocolVersion::V22_05,
        )
        .unwrap_err();
        assert_eq!((e.offset, e.reason()), (0, "bad_count"));
    }
}
