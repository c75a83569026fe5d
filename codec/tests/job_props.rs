//! Job bodies (job-desc spec §2–§4, §6): byte-exact round trips at every layout
//! 22.05 → 26.05, built field by field from the codec's own field table, and the
//! embedded sib payloads found from the bytes alone.

use bytes::{BufMut, Bytes, BytesMut};
use proptest::prelude::*;
use slurm_codec::msg::common::{JobId, SiblingBitmap, StepId};
use slurm_codec::msg::job_desc::{FieldKind, JobDesc, JOB_DESC_FIELDS};
use slurm_codec::msg::sib::{JobState, SibMsg, SibMsgType};
use slurm_codec::msg::{JobStepKill, Message, SibPayload, SubmitResponse};
use slurm_codec::msg_type::{MsgType, Namespace};
use slurm_codec::wire::{Decode, Encode, PackStr, Reader};
use slurm_codec::ProtocolVersion as V;

use slurm_codec::msg::rc::ReturnCode;

/// One random value per table row; strings of printable text or NULL.
#[derive(Clone, Debug)]
struct Draw {
    n: u64,
    text: Option<String>,
    count: usize,
}

fn draw() -> impl Strategy<Value = Draw> {
    (any::<u64>(), proptest::option::of("[ -~]{0,12}"), 0usize..4)
        .prop_map(|(n, text, count)| Draw { n, text, count })
}

fn put_str(w: &mut BytesMut, t: &Option<String>) {
    match t {
        None => w.put_u32(0),
        Some(t) => PackStr::from_text(t).encode(w),
    }
}

/// The bytes of a job_desc at `v`, written from the table with drawn values.
fn wire_from_table(v: V, draws: &[Draw]) -> Bytes {
    let mut w = BytesMut::new();
    let fields = JOB_DESC_FIELDS.iter().filter(|f| f.present_at(v));
    for (f, d) in fields.zip(draws.iter().cycle()) {
        match f.kind {
            FieldKind::U8 => w.put_u8(d.n as u8),
            FieldKind::U16 => w.put_u16(d.n as u16),
            FieldKind::U32 => w.put_u32(d.n as u32),
            FieldKind::U64 => w.put_u64(d.n),
            FieldKind::Time => w.put_i64(d.n as i64),
            FieldKind::Str => put_str(&mut w, &d.text),
            FieldKind::StrArray => {
                w.put_u32(d.count as u32);
                for i in 0..d.count {
                    PackStr::from_text(&format!("K{i}=v")).encode(&mut w);
                }
            }
            FieldKind::StepId => {
                w.put_u64(d.n);
                w.put_u32(d.n as u32);
                w.put_u32(0xFFFF_FFFE);
                w.put_u32(0xFFFF_FFFE);
            }
            FieldKind::SelectPlugin => w.put_u32([101, 102, 109][d.count % 3]),
            FieldKind::CronEntry if d.count % 2 == 0 => w.put_u8(0),
            FieldKind::CronEntry => {
                w.put_u8(1);
                w.put_u32(0x02);
                for bits in [61u32, 25, 32, 13] {
                    w.put_u32(bits);
                    PackStr::from_text("0x1").encode(&mut w);
                }
                w.put_u32(0xFFFF_FFFE); // day_of_week absent
                put_str(&mut w, &d.text);
                w.put_u32(3);
                w.put_u32(4);
            }
        }
    }
    w.freeze()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Every layout: a body written from the table decodes to its last byte and
    /// re-encodes to the same bytes, and a second decode gives the same value.
    #[test]
    fn job_desc_roundtrips_byte_exact_at_every_layout(
        v in proptest::sample::select(V::MODERN.to_vec()),
        draws in proptest::collection::vec(draw(), 1..40),
    ) {
        let wire = wire_from_table(v, &draws);
        for t in [4003u16, 4001, 4012, 3001] {
            let m = Message::decode(MsgType(t), Namespace::Slurm, v, wire.clone(), 0)
                .expect("modelled")
                .unwrap_or_else(|e| panic!("{v} {t}: {e}"));
            let mut out = BytesMut::new();
            m.encode(&mut out, v);
            prop_assert_eq!(out.freeze(), wire.clone());
            let again = Message::decode(MsgType(t), Namespace::Slurm, v, wire.clone(), 0).unwrap().unwrap();
            prop_assert_eq!(&again, &m);
            prop_assert!(serde_json::to_string(&m).is_ok());
        }
    }

    /// Any bytes: no panic; a successful decode is exact.
    #[test]
    fn arbitrary_job_bodies_never_panic(
        v in proptest::sample::select(V::MODERN.to_vec()),
        t in proptest::sample::select(vec![3001u16, 4001, 4003, 4004, 4012, 5005, 5023, 5032]),
        body in proptest::collection::vec(any::<u8>(), 0..600),
    ) {
        let body = Bytes::from(body);
        if let Some(Ok(m)) = Message::decode(MsgType(t), Namespace::Slurm, v, body.clone(), 0) {
            let mut out = BytesMut::new();
            m.encode(&mut out, v);
            prop_assert_eq!(out.freeze(), body);
        }
    }

    #[test]
    fn kill_and_submit_response_roundtrip(
        v in proptest::sample::select(V::MODERN.to_vec()),
        job in any::<u32>(), signal in any::<u16>(), flags in any::<u16>(), sluid in any::<u64>(),
        sjob in proptest::option::of("[0-9_+]{1,10}"),
    ) {
        let sluid = if v >= V::V24_11 { sluid } else { 0 };
        let k = JobStepKill {
            step_id: StepId { sluid, job_id: JobId(job), step_id: 1, step_het_comp: 2 },
            sjob_id: sjob.as_deref().map_or(PackStr::NULL, PackStr::from_text),
            sibling: PackStr::NULL,
            signal,
            flags,
        };
        let mut out = BytesMut::new();
        k.encode(&mut out, v);
        prop_assert_eq!(JobStepKill::decode(&mut Reader::new(out.freeze()), v).unwrap(), k);
        let s = SubmitResponse {
            step_id: StepId {
                sluid: if v >= V::V25_11 { sluid } else { 0 },
                job_id: JobId(job),
                step_id: 0xFFFF_FFFB,
                step_het_comp: if v >= V::V25_11 { 0xFFFF_FFFE } else { 0 },
            },
            error_code: ReturnCode(signal as i32),
            job_submit_user_msg: PackStr::NULL,
        };
        let mut out = BytesMut::new();
        s.encode(&mut out, v);
        prop_assert_eq!(SubmitResponse::decode(&mut Reader::new(out.freeze()), v).unwrap(), s);
    }
}

fn sib_header(v: V, t: SibMsgType, data_type: u16, data: Bytes) -> SibMsg {
    SibMsg {
        cluster_id: 0,
        data_type: MsgType(data_type),
        data_version: v,
        fed_siblings: SiblingBitmap(3),
        group_id: (v >= V::V23_02).then_some(1000),
        job_id: (v <= V::V25_05).then_some(JobId(0)),
        job_state: JobState(0),
        return_code: ReturnCode(0),
        start_time: 0,
        resp_host: PackStr::NULL,
        req_uid: 1000,
        sib_msg_type: t,
        step_id: (v >= V::V25_11).then(StepId::default),
        submit_host: PackStr::NULL,
        submit_proto_ver: (v >= V::V23_11).then_some(v.0),
        user_id: (v >= V::V23_02).then_some(1000),
        data: Some(slurm_codec::msg::RawBytes(data)),
    }
}

#[test]
fn fed_job_cancel_shows_the_job_of_its_embedded_kill() {
    // job-desc §6.2: the header's job id is 0; the job is in the 5005 payload.
    for v in V::MODERN {
        let kill = JobStepKill {
            step_id: StepId {
                sluid: 0,
                job_id: JobId::federated(1, 2),
                step_id: 0xFFFF_FFFE,
                step_het_comp: 0xFFFF_FFFE,
            },
            signal: 9,
            ..JobStepKill::default()
        };
        let mut data = BytesMut::new();
        kill.encode(&mut data, v);
        let sib = sib_header(v, SibMsgType::Cancel, 5005, data.freeze());
        let mut wire = BytesMut::new();
        sib.encode(&mut wire, v);
        let back = SibMsg::decode(&mut Reader::new(wire.freeze()), v).unwrap();
        assert_eq!(back.job(), Some(JobId(67108866)), "{v}");
        assert_eq!(
            back.describe(),
            "FED_JOB_CANCEL job 67108866 (cluster 1, local 2) signal 9"
        );
        let json = serde_json::to_value(Message::SibMsg(back)).unwrap();
        assert_eq!(json["payload"]["signal"], 9);
    }
}

#[test]
fn fed_job_submit_batch_shows_who_submitted_what_where() {
    for v in V::MODERN {
        let desc = JobDesc {
            name: PackStr::from_text("sleep"),
            partition: PackStr::from_text("debug"),
            user_id: if v >= V::V23_02 { 99 } else { 1000 },
            script: PackStr::from_text("#!/bin/sh\nsleep 1\n"),
            ..JobDesc::default()
        };
        let mut data = BytesMut::new();
        desc.encode(&mut data, v);
        let mut sib = sib_header(v, SibMsgType::SubmitBatch, 4003, data.freeze());
        sib.job_id = sib.job_id.map(|_| JobId(67108865));
        sib.step_id = sib.step_id.map(|s| StepId {
            job_id: JobId(67108865),
            ..s
        });
        let mut wire = BytesMut::new();
        sib.encode(&mut wire, v);
        let back = SibMsg::decode(&mut Reader::new(wire.freeze()), v).unwrap();
        assert_eq!(
            back.describe(),
            "FED_JOB_SUBMIT_BATCH job 67108865 (cluster 1, local 1) uid 1000 partition debug name \"sleep\"",
            "{v}"
        );
        let p = back.payload().unwrap();
        assert_eq!(p.layout, v);
        let SibPayload::JobDesc(d) = p.payload else {
            panic!()
        };
        assert_eq!(d.script_len(), 18);
        let json = serde_json::to_string(&Message::SibMsg(back)).unwrap();
        assert!(!json.contains("sleep 1"), "script content leaked: {json}");
        assert!(json.contains("\"script_len\":18"));
    }
}

#[test]
fn a_payload_repacked_for_an_older_sibling_still_decodes() {
    // job-desc §6.3: a 24.11 layout labelled 26.05.
    let desc = JobDesc {
        name: PackStr::from_text("x"),
        ..JobDesc::default()
    };
    let mut data = BytesMut::new();
    desc.encode(&mut data, V::V24_11);
    let sib = sib_header(V::V26_05, SibMsgType::SubmitBatch, 4003, data.freeze());
    let p = sib.payload().unwrap();
    assert_eq!(p.layout, V::V24_11);
}
