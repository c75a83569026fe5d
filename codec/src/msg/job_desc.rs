//! `job_desc_msg_t` (job-desc spec §2): the body of REQUEST_SUBMIT_BATCH_JOB (4003),
//! REQUEST_RESOURCE_ALLOCATION (4001), REQUEST_JOB_WILL_RUN (4012) and
//! REQUEST_UPDATE_JOB (3001), and the payload of FED_JOB_SUBMIT_BATCH sib messages.
//!
//! One table ([`JOB_DESC_FIELDS`]) lists every field of every layout 22.05 → 26.05 in
//! wire order with the versions that carry it; the struct, the decoder, the encoder
//! and the Wireshark dissector generator all come from it. A field missing from a
//! version's layout keeps its default and is not written at that version.
//!
//! The batch script and the environment are kept (a relay re-encodes them) but never
//! shown: JSON and summaries give their sizes only.

use bytes::BufMut;

use crate::error::{DecodeError, ErrorKind, Result};
use crate::version::ProtocolVersion;
use crate::wire::{Decode, Encode, PackStr, Reader, INFINITE, NO_VAL};

use super::common::{HexBitmap, JobId, StepId};

/// How a field is laid out on the wire (for the table's readers, e.g. the
/// dissector generator).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum FieldKind {
    U8,
    U16,
    U32,
    U64,
    /// i64 seconds.
    Time,
    /// packstr.
    Str,
    /// u32 count, then that many packstr.
    StrArray,
    /// u64 sluid, u32 job_id, u32 step_id, u32 step_het_comp (≥25.11 only here).
    StepId,
    /// 0x2600 only: u32 select plugin id (no data for the non-Cray plugins).
    SelectPlugin,
    /// u8 present; when 1: u32 flags, 5 hex bitmaps, packstr, u32, u32.
    CronEntry,
}

/// One row of the field table: present at versions `since..=until`.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct FieldSpec {
    pub name: &'static str,
    pub kind: FieldKind,
    pub since: ProtocolVersion,
    pub until: ProtocolVersion,
}

impl FieldSpec {
    pub fn present_at(&self, v: ProtocolVersion) -> bool {
        self.since <= v && v <= self.until
    }
}

/// A field type of the table.
trait JobDescField: Sized + Default {
    const KIND: FieldKind;
    fn get(r: &mut Reader) -> Result<Self>;
    fn put(&self, w: &mut impl BufMut);
}

macro_rules! primitive_field {
    ($ty:ty, $kind:ident, $get:ident, $put:ident) => {
        impl JobDescField for $ty {
            const KIND: FieldKind = FieldKind::$kind;
            fn get(r: &mut Reader) -> Result<Self> {
                r.$get()
            }
            fn put(&self, w: &mut impl BufMut) {
                w.$put(*self)
            }
        }
    };
}

primitive_field!(u8, U8, u8, put_u8);
primitive_field!(u16, U16, u16, put_u16);
primitive_field!(u32, U32, u32, put_u32);
primitive_field!(u64, U64, u64, put_u64);
primitive_field!(i64, Time, i64, put_i64);

impl JobDescField for PackStr {
    const KIND: FieldKind = FieldKind::Str;
    fn get(r: &mut Reader) -> Result<Self> {
        r.packstr()
    }
    fn put(&self, w: &mut impl BufMut) {
        self.encode(w)
    }
}

impl JobDescField for StepId {
    const KIND: FieldKind = FieldKind::StepId;
    fn get(r: &mut Reader) -> Result<Self> {
        StepId::decode(r, ProtocolVersion::V25_11)
    }
    fn put(&self, w: &mut impl BufMut) {
        self.encode(w, ProtocolVersion::V25_11)
    }
}

/// `str[]` (`packstr_array`): a u32 count and the strings.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StrArray(pub Vec<PackStr>);

impl JobDescField for StrArray {
    const KIND: FieldKind = FieldKind::StrArray;
    fn get(r: &mut Reader) -> Result<Self> {
        let at = r.offset();
        let n = r.u32()?;
        if (n as usize).saturating_mul(4) > r.remaining() {
            return Err(DecodeError::new(at, ErrorKind::BadCount(n)));
        }
        let mut v = Vec::with_capacity((n as usize).min(1024));
        for _ in 0..n {
            v.push(r.packstr()?);
        }
        Ok(StrArray(v))
    }
    fn put(&self, w: &mut impl BufMut) {
        w.put_u32(self.0.len() as u32);
        for s in &self.0 {
            s.encode(w);
        }
    }
}

/// `select_jobinfo` of the 0x2600 layout: the sender's select plugin id. The Cray
/// plugins (107, 108, 110) add data this codec does not model: a decode error.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct SelectPlugin(pub u32);

impl SelectPlugin {
    const WITH_DATA: [u32; 3] = [107, 108, 110];
}

impl JobDescField for SelectPlugin {
    const KIND: FieldKind = FieldKind::SelectPlugin;
    fn get(r: &mut Reader) -> Result<Self> {
        let at = r.offset();
        let id = r.u32()?;
        if Self::WITH_DATA.contains(&id) {
            return Err(DecodeError::new(
                at,
                ErrorKind::UnknownValue {
                    field: "select_plugin_id",
                    value: id as u64,
                },
            ));
        }
        Ok(SelectPlugin(id))
    }
    fn put(&self, w: &mut impl BufMut) {
        w.put_u32(self.0)
    }
}

/// A scrontab entry (`pack_cron_entry`, §2.6).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CronSpec {
    pub flags: u32,
    pub minute: HexBitmap,
    pub hour: HexBitmap,
    pub day_of_month: HexBitmap,
    pub month: HexBitmap,
    pub day_of_week: HexBitmap,
    pub cronspec: PackStr,
    pub line_start: u32,
    pub line_end: u32,
}

/// `crontab_entry`: a single 0 byte when absent.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CronEntry(pub Option<CronSpec>);

impl JobDescField for CronEntry {
    const KIND: FieldKind = FieldKind::CronEntry;
    fn get(r: &mut Reader) -> Result<Self> {
        if !super::common::bool8(r, "crontab_entry")? {
            return Ok(CronEntry(None));
        }
        let v = ProtocolVersion::V22_05; // bitmaps are version-independent
        Ok(CronEntry(Some(CronSpec {
            flags: r.u32()?,
            minute: HexBitmap::decode(r, v)?,
            hour: HexBitmap::decode(r, v)?,
            day_of_month: HexBitmap::decode(r, v)?,
            month: HexBitmap::decode(r, v)?,
            day_of_week: HexBitmap::decode(r, v)?,
            cronspec: r.packstr()?,
            line_start: r.u32()?,
            line_end: r.u32()?,
        })))
    }
    fn put(&self, w: &mut impl BufMut) {
        let Some(c) = &self.0 else {
            w.put_u8(0);
            return;
        };
        let v = ProtocolVersion::V22_05;
        w.put_u8(1);
        w.put_u32(c.flags);
        for b in [
            &c.minute,
            &c.hour,
            &c.day_of_month,
            &c.month,
            &c.day_of_week,
        ] {
            b.encode(w, v);
        }
        c.cronspec.encode(w);
        w.put_u32(c.line_start);
        w.put_u32(c.line_end);
    }
}

const ALWAYS: ProtocolVersion = ProtocolVersion(0);
const FOREVER: ProtocolVersion = ProtocolVersion(u16::MAX);

macro_rules! job_desc {
    ($( $name:ident : $ty:ty $( [$since:ident ..= $until:ident] )? ),* $(,)?) => {
        /// `job_desc_msg_t`, every field of every layout 22.05 → 26.05 (§2.4).
        #[derive(Clone, Debug, Default, PartialEq, Eq)]
        pub struct JobDesc {
            $( pub $name: $ty, )*
        }

        /// The field table, in wire order (§2.4).
        pub const JOB_DESC_FIELDS: &[FieldSpec] = &[
            $( FieldSpec {
                name: stringify!($name),
                kind: <$ty as JobDescField>::KIND,
                since: job_desc!(@bound ALWAYS $($since)?),
                until: job_desc!(@bound FOREVER $($until)?),
            }, )*
        ];

        impl Decode for JobDesc {
            fn decode(r: &mut Reader, v: ProtocolVersion) -> Result<Self> {
                let mut fields = JOB_DESC_FIELDS.iter();
                // Struct fields are evaluated in the order written: wire order.
                Ok(JobDesc {
                    $( $name: {
                        let spec = fields.next().expect("one spec per field");
                        if spec.present_at(v) { <$ty as JobDescField>::get(r)? } else { Default::default() }
                    }, )*
                })
            }
        }

        impl Encode for JobDesc {
            fn encode(&self, w: &mut impl BufMut, v: ProtocolVersion) {
                let mut fields = JOB_DESC_FIELDS.iter();
                $(
                    if fields.next().is_some_and(|spec| spec.present_at(v)) {
                        JobDescField::put(&self.$name, w);
                    }
                )*
            }
        }
    };
    (@bound $default:ident) => { $default };
    (@bound $default:ident ALWAYS) => { ALWAYS };
    (@bound $default:ident FOREVER) => { FOREVER };
    (@bound $default:ident $v:ident) => { ProtocolVersion::$v };
}

job_desc! {
    step_id: StepId [V25_11 ..= FOREVER],
    site_factor: u32,
    batch_features: PackStr,
    cluster_features: PackStr,
    clusters: PackStr,
    contiguous: u16,
    container: PackStr,
    container_id: PackStr [V23_02 ..= FOREVER],
    container_type: PackStr [V26_05 ..= FOREVER],
    core_spec: u16,
    task_dist: u32,
    kill_on_node_fail: u16,
    features: PackStr,
    fed_siblings_active: u64,
    fed_siblings_viable: u64,
    job_id: u32 [ALWAYS ..= V25_05],
    job_id_str: PackStr,
    name: PackStr,
    alloc_node: PackStr,
    alloc_sid: u32,
    array_inx: PackStr,
    burst_buffer: PackStr,
    pn_min_cpus: u16,
    pn_min_memory: u64,
    mem_update_delay: u16 [V26_05 ..= FOREVER],
    mem_update_margin: u16 [V26_05 ..= FOREVER],
    oom_kill_step: u16 [V24_11 ..= FOREVER],
    pn_min_tmp_disk: u32,
    power_flags: u8 [ALWAYS ..= V24_05],
    prefer: PackStr,
    cpu_freq_min: u32,
    cpu_freq_max: u32,
    cpu_freq_gov: u32,
    partition: PackStr,
    priority: u32,
    dependency: PackStr,
    account: PackStr,
    admin_comment: PackStr,
    comment: PackStr,
    nice: u32,
    profile: u32,
    qos: PackStr,
    mcs_label: PackStr,
    origin_cluster: PackStr,
    open_mode: u8,
    overcommit: u8,
    acctg_freq: PackStr,
    num_tasks: u32,
    req_context: PackStr,
    req_nodes: PackStr,
    exc_nodes: PackStr,
    environment: StrArray,
    spank_job_env: StrArray,
    script: PackStr,
    argv: StrArray,
    std_err: PackStr,
    std_in: PackStr,
    std_out: PackStr,
    submit_line: PackStr,
    work_dir: PackStr,
    immediate: u16,
    reboot: u16,
    requeue: u16,
    shared: u16,
    cpus_per_task: u16,
    ntasks_per_node: u16,
    ntasks_per_board: u16,
    ntasks_per_socket: u16,
    ntasks_per_core: u16,
    ntasks_per_tres: u16,
    plane_size: u16,
    cpu_bind_type: u16,
    mem_bind_type: u16,
    cpu_bind: PackStr,
    mem_bind: PackStr,
    time_limit: u32,
    time_min: u32,
    min_cpus: u32,
    max_cpus: u32,
    min_nodes: u32,
    max_nodes: u32,
    job_size_str: PackStr [V23_02 ..= FOREVER],
    boards_per_node: u16,
    sockets_per_board: u16,
    sockets_per_node: u16,
    cores_per_socket: u16,
    threads_per_core: u16,
    user_id: u32,
    group_id: u32,
    alloc_resp_port: u16,
    alloc_tls_cert: PackStr [V25_05 ..= FOREVER],
    resp_host: PackStr,
    other_port: u16,
    resv_port_cnt: u16 [V24_05 ..= FOREVER],
    network: PackStr,
    begin_time: i64,
    end_time: i64,
    deadline: i64,
    licenses: PackStr,
    mail_type: u16,
    mail_user: PackStr,
    reservation: PackStr,
    restart_cnt: u16,
    warn_flags: u16,
    warn_signal: u16,
    warn_time: u16,
    wckey: PackStr,
    req_switch: u32,
    wait4switch: u32,
    select_jobinfo: SelectPlugin [ALWAYS ..= V22_05],
    wait_all_nodes: u16,
    bitflags: u64,
    delay_boot: u32,
    extra: PackStr,
    x11: u16,
    x11_magic_cookie: PackStr,
    x11_target: PackStr,
    x11_target_port: u16,
    cpus_per_tres: PackStr,
    mem_per_tres: PackStr,
    tres_bind: PackStr,
    tres_freq: PackStr,
    tres_per_job: PackStr,
    tres_per_node: PackStr,
    tres_per_socket: PackStr,
    tres_per_task: PackStr,
    crontab_entry: CronEntry,
    segment_size: u16 [V24_05 ..= FOREVER],
}

/// SLURM_AUTH_NOBODY: what 23.02+ clients put in user_id/group_id ("use the
/// authenticated id").
pub const AUTH_NOBODY: u32 = 99;

impl JobDesc {
    /// Oldest layout modelled (older releases pack a different field list).
    pub const OLDEST: ProtocolVersion = ProtocolVersion::V22_05;

    /// The job the message names, where the version keeps it (NO_VAL from sbatch).
    pub fn job(&self, v: ProtocolVersion) -> JobId {
        if v >= ProtocolVersion::V25_11 {
            self.step_id.job_id
        } else {
            JobId(self.job_id)
        }
    }

    /// Bytes of the batch script (without its NUL); 0 when there is none.
    pub fn script_len(&self) -> usize {
        self.script
            .0
            .as_ref()
            .map_or(0, |b| b.len().saturating_sub(1))
    }

    /// ` uid 0 partition (default) name "wrap"`: who submitted what, where.
    /// `auth_uid` = the authenticated uid when known (sib header, 23.02+).
    pub fn describe(&self, auth_uid: Option<u32>) -> String {
        let uid = match auth_uid {
            Some(u) if self.user_id == AUTH_NOBODY || self.user_id == u => u,
            _ => self.user_id,
        };
        let mut s = format!("uid {uid}");
        match self.partition.text() {
            Some(p) => s.push_str(&format!(" partition {p}")),
            None => s.push_str(" partition (default)"),
        }
        if let Some(n) = self.name.text() {
            s.push_str(&format!(" name {n:?}"));
        }
        if let Some(c) = self.clusters.text() {
            s.push_str(&format!(" clusters {c}"));
        }
        if let Some(a) = self.array_inx.text() {
            s.push_str(&format!(" array {a}"));
        }
        s
    }
}

/// A number that may be NO_VAL ("not set") or INFINITE ("unlimited"), for JSON.
fn opt_num(v: u32) -> serde_json_like::Num {
    match v {
        NO_VAL => serde_json_like::Num::NotSet,
        INFINITE => serde_json_like::Num::Unlimited,
        n => serde_json_like::Num::Value(n),
    }
}

mod serde_json_like {
    /// A u32 that may be a sentinel: serialized as the number, `null` (NO_VAL) or
    /// `"unlimited"` (INFINITE).
    pub enum Num {
        Value(u32),
        NotSet,
        Unlimited,
    }

    impl serde::Serialize for Num {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            match self {
                Num::Value(n) => s.serialize_u32(*n),
                Num::NotSet => s.serialize_none(),
                Num::Unlimited => s.serialize_str("unlimited"),
            }
        }
    }
}

/// Length of a packstr's content (without its NUL), for fields that are secret.
fn secret_len(s: &PackStr) -> Option<usize> {
    s.0.as_ref().map(|b| b.len().saturating_sub(1))
}

impl serde::Serialize for JobDesc {
    /// Who, what and where; never the script, the environment, the submit line
    /// (it can hold the `--wrap` script), the X11 cookie or the client's working
    /// directory: sizes at most.
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("JobDesc", 23)?;
        st.serialize_field("name", &self.name)?;
        st.serialize_field("user_id", &self.user_id)?;
        st.serialize_field("group_id", &self.group_id)?;
        st.serialize_field("partition", &self.partition)?;
        st.serialize_field("account", &self.account)?;
        st.serialize_field("qos", &self.qos)?;
        st.serialize_field("clusters", &self.clusters)?;
        st.serialize_field("cluster_features", &self.cluster_features)?;
        st.serialize_field("features", &self.features)?;
        st.serialize_field("origin_cluster", &self.origin_cluster)?;
        st.serialize_field("time_limit", &opt_num(self.time_limit))?;
        st.serialize_field("min_nodes", &opt_num(self.min_nodes))?;
        st.serialize_field("max_nodes", &opt_num(self.max_nodes))?;
        st.serialize_field("min_cpus", &opt_num(self.min_cpus))?;
        st.serialize_field("max_cpus", &opt_num(self.max_cpus))?;
        st.serialize_field("num_tasks", &opt_num(self.num_tasks))?;
        st.serialize_field("array_inx", &self.array_inx)?;
        st.serialize_field("dependency", &self.dependency)?;
        st.serialize_field("reservation", &self.reservation)?;
        st.serialize_field("script_len", &self.script_len())?;
        st.serialize_field("environment_count", &self.environment.0.len())?;
        st.serialize_field("submit_line_len", &secret_len(&self.submit_line))?;
        st.serialize_field("bitflags", &format!("0x{:x}", self.bitflags))?;
        st.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    const LAYOUTS: [ProtocolVersion; 8] = ProtocolVersion::MODERN;

    #[test]
    fn field_and_byte_counts_match_the_spec_table() {
        // §2.2: fields, of which str, and minimum bytes per layout.
        let want: [(usize, usize, usize); 8] = [
            (118, 48, 424),
            (119, 50, 428),
            (119, 50, 428),
            (121, 50, 432),
            (121, 50, 433),
            (122, 51, 437),
            (122, 51, 453),
            (125, 52, 461),
        ];
        for (v, (fields, strs, bytes)) in LAYOUTS.into_iter().zip(want) {
            let present: Vec<_> = JOB_DESC_FIELDS.iter().filter(|f| f.present_at(v)).collect();
            let n_str = present.iter().filter(|f| f.kind == FieldKind::Str).count();
            let mut out = Vec::new();
            JobDesc::default().encode(&mut out, v);
            assert_eq!(
                (present.len(), n_str, out.len()),
                (fields, strs, bytes),
                "{v}"
            );
            let back = JobDesc::decode(&mut Reader::new(Bytes::from(out)), v).unwrap();
            assert_eq!(back, JobDesc::default());
        }
    }

    #[test]
    fn cray_select_plugin_is_a_typed_error() {
        let d = JobDesc {
            select_jobinfo: SelectPlugin(107),
            ..JobDesc::default()
        };
        let mut out = Vec::new();
        d.encode(&mut out, ProtocolVersion::V22_05);
        let e = JobDesc::decode(&mut Reader::new(Bytes::from(out)), ProtocolVersion::V22_05)
            .unwrap_err();
        assert_eq!(e.reason(), "unknown_value");
    }

    #[test]
    fn script_and_environment_never_serialized() {
        let d = JobDesc {
            script: PackStr::from_text("#!/bin/sh\nsecret"),
            environment: StrArray(vec![PackStr::from_text("TOKEN=secret")]),
            submit_line: PackStr::from_text("sbatch --wrap secret"),
            x11_magic_cookie: PackStr::from_text("secret"),
            name: PackStr::from_text("wrap"),
            ..JobDesc::default()
        };
        let json = serde_json::to_string(&d).unwrap();
        assert!(!json.contains("secret"), "{json}");
        assert!(json.contains("\"script_len\":16"), "{json}");
        assert_eq!(d.describe(None), "uid 0 partition (default) name \"wrap\"");
    }
}
