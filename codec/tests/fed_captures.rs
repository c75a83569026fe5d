//! Real 22.05 federation bodies (fixtures/bodies/, extracted from the shared
//! captures; see fixtures/bodies/README.md) decode typed and re-encode byte-exact,
//! and what they say matches what scontrol/sbatch printed (the captures' cmd.txt).

use bytes::{BufMut, Bytes, BytesMut};
use slurm_codec::auth::AuthSection;
use slurm_codec::frame::{Frame, Framing};
use slurm_codec::header::Header;
use slurm_codec::msg::{
    CtldMultMsg, FedInfoResponse, ItemContent, JobId, Message, SibMsgType, UpdateObjects,
};
use slurm_codec::msg_type::{MsgType, Namespace};
use slurm_codec::wire::PackStr;
use slurm_codec::{HeaderFlags, ProtocolVersion};

const V: ProtocolVersion = ProtocolVersion::V22_05;

fn fixture(path: &str) -> Bytes {
    let full = format!("{}/../fixtures/bodies/{path}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{full}: {e}"));
    let hex: String = text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .flat_map(|l| l.chars())
        .filter(|c| !c.is_whitespace())
        .collect();
    Bytes::from(
        (0..hex.len() / 2)
            .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap())
            .collect::<Vec<_>>(),
    )
}

/// Decodes strictly at 22.05, checks the re-encoding, returns the message.
fn typed(path: &str, msg_type: u16) -> (Bytes, Message) {
    let body = fixture(path);
    let m = Message::decode(MsgType(msg_type), Namespace::Slurm, V, body.clone(), 0)
        .expect("modelled")
        .unwrap_or_else(|e| panic!("{path}: {e}"));
    let mut out = BytesMut::new();
    m.encode(&mut out, V);
    assert_eq!(out.freeze(), body, "{path}: re-encoding differs");
    (body, m)
}

/// No item of a CTLD_MULT_MSG stays raw.
fn all_typed(m: &CtldMultMsg) {
    for item in &m.items {
        assert!(
            matches!(item.content, ItemContent::Typed(_)),
            "raw item: {item:?}"
        );
        assert_eq!(item.declared_size, None);
    }
}

#[test]
fn every_fixture_decodes_and_reencodes() {
    let all = [
        ("fed_info/2050_from_alpha.hex", 2050),
        ("fed_info/2050_from_beta.hex", 2050),
        ("fed_create/2050_no_federation.hex", 2050),
        ("fed_create/10001_federation_removed.hex", 10001),
        ("fed_create/10001_federation_added.hex", 10001),
        ("fed_startup/10001_update_feds.hex", 10001),
        ("fed_startup/4500_fed_job_sync.hex", 4500),
        ("fed_startup/4501_rc0.hex", 4501),
        ("fed_submit/4500_submit_batch.hex", 4500),
        ("fed_submit/4500_complete_revoke.hex", 4500),
        ("fed_cancel/4500_submit_batch.hex", 4500),
        ("misc_rpcs/2024_request.hex", 2024),
        ("misc_rpcs/2025_empty.hex", 2025),
        ("misc_rpcs/2025_labresv.hex", 2025),
        ("misc_rpcs/8001_rc0.hex", 8001),
        ("fedlab/4500_complete_dep_complete.hex", 4500),
        ("fedlab/4501_three_rc.hex", 4501),
        ("fedlab/4500_submit_batch.hex", 4500),
        ("fedlab/10001_update_feds.hex", 10001),
        ("fedlab/2050_486.hex", 2050),
        ("fedlab/2050_536.hex", 2050),
    ];
    for (path, t) in all {
        let (_, m) = typed(path, t);
        if let Message::CtldMultRequest(c) | Message::CtldMultResponse(c) = &m {
            all_typed(c);
        }
        // Serializes (and without huge blobs).
        let json = serde_json::to_string(&m).unwrap();
        assert!(json.len() < 20_000, "{path}: {} bytes of JSON", json.len());
        assert!(!m.summary().is_empty());
    }
}

#[test]
fn fed_info_matches_scontrol_show_federation() {
    // fed_info.cmd.txt: "Federation: fed1 / Self: alpha:127.0.0.1:6817 ID:1 FedState:ACTIVE /
    // Sibling: beta:127.0.0.1:7817 ID:2 FedState:ACTIVE PersistConnSend/Recv:Yes/Yes"
    for (path, me) in [
        ("fed_info/2050_from_alpha.hex", "alpha"),
        ("fed_info/2050_from_beta.hex", "beta"),
    ] {
        let (_, m) = typed(path, 2050);
        assert_eq!(
            m.summary(),
            "FED_INFO fed1: alpha#1 ACTIVE 127.0.0.1:6817, beta#2 ACTIVE 127.0.0.1:7817"
        );
        let Message::FedInfoResponse(FedInfoResponse {
            federation: Some(f),
        }) = &m
        else {
            panic!("{m:?}")
        };
        assert_eq!(f.name.text().as_deref(), Some("fed1"));
        let clusters: Vec<_> = f
            .cluster_list
            .0
            .as_ref()
            .unwrap()
            .iter()
            .map(|c| c.as_ref().unwrap())
            .collect();
        assert_eq!(clusters.len(), 2);
        for c in clusters {
            let name = c.name.text().unwrap();
            let (id, port, nodes) = if name == "alpha" {
                (1, 6817, "alpha-n1")
            } else {
                (2, 7817, "beta-n1")
            };
            assert_eq!((c.fed_id, c.control_port), (id, port));
            assert_eq!(c.control_host.text().as_deref(), Some("127.0.0.1"));
            assert_eq!(c.fed_state.names(), "ACTIVE");
            assert_eq!(c.fed_name.text().as_deref(), Some("fed1"));
            assert_eq!(c.nodes.text().as_deref(), Some(nodes));
            assert_eq!(c.rpc_version, V);
            assert_eq!(c.flags.names(), "MULTSD"); // Debian's multiple-slurmd build (spec §6.6)
            assert_eq!(c.plugin_id_select, Some(109));
            assert_eq!(c.id, None);
            // The sibling's persistent connections are up (Send/Recv: Yes/Yes); none to self.
            let sibling = name != me;
            assert_eq!(
                (c.fed_send_connected, c.fed_recv_connected),
                (sibling, sibling)
            );
            let ra = &c.root_assoc;
            assert_eq!(ra.acct.text().as_deref(), Some("root"));
            assert_eq!(ra.cluster.text().as_deref(), Some(name.as_str()));
            assert_eq!(
                (
                    ra.id,
                    ra.lft.is_some(),
                    ra.lineage.is_none(),
                    ra.comment.is_none()
                ),
                (1, true, true, true)
            );
            assert_eq!(
                ra.qos_list.0.as_deref(),
                Some(&[PackStr::from_text("1")][..])
            );
            assert_eq!(
                c.tres_str.text().as_deref(),
                Some("1=2,2=1000,3=0,4=1,5=2,6=0,7=0,8=0")
            );
        }
    }
    let (_, m) = typed("fed_create/2050_no_federation.hex", 2050);
    assert_eq!(
        m,
        Message::FedInfoResponse(FedInfoResponse { federation: None })
    );
}

#[test]
fn submit_batch_carries_job_67108865() {
    // fed_submit.cmd.txt: "submitted 67108865 … job 67108865 = fed_id 1 << 26 | local_id 1"
    let (body, m) = typed("fed_submit/4500_submit_batch.hex", 4500);
    assert_eq!(
        m.summary(),
        "CTLD_MULT_MSG [SIB_MSG FED_JOB_SUBMIT_BATCH job 67108865 (cluster 1, local 1) \
         uid 0 partition (default) name \"wrap\"]"
    );
    let Message::CtldMultRequest(c) = &m else {
        panic!()
    };
    let Some(Message::SibMsg(s)) = c.items[0].message() else {
        panic!()
    };
    assert_eq!(s.sib_msg_type, SibMsgType::SubmitBatch);
    assert_eq!(s.job(), Some(JobId(67108865)));
    assert_eq!(
        (s.job().unwrap().cluster(), s.job().unwrap().local()),
        (1, 1)
    );
    assert_eq!(s.fed_siblings.cluster_ids(), vec![1, 2]); // FedViableSiblings=alpha,beta
    assert_eq!(s.data_type, MsgType::REQUEST_SUBMIT_BATCH_JOB);
    assert_eq!(s.data_version, V);
    assert_eq!(s.submit_host.text().as_deref(), Some("localhost"));
    // Embedded body = everything after the 52+10-byte sib header ("localhost\0"), delimited.
    let data = s.data.as_ref().unwrap();
    assert_eq!(data.len(), body.len() - 4 - 8 - 2 - 52 - 10);
    let json = serde_json::to_value(&m).unwrap();
    let sib = &json["items"][0]["body"];
    assert_eq!(sib["sib_msg_type"], "FED_JOB_SUBMIT_BATCH");
    assert_eq!(sib["job_id"]["id"], 67108865);
    assert_eq!(sib["job_id"]["cluster"], 1);
    assert_eq!(sib["job_id"]["local"], 1);
    assert_eq!(sib["data_type"], "REQUEST_SUBMIT_BATCH_JOB");
    assert_eq!(sib["data"]["len"], data.len());

    let (_, m) = typed("fed_submit/4500_complete_revoke.hex", 4500);
    assert_eq!(
        m.summary(),
        "CTLD_MULT_MSG [SIB_MSG FED_JOB_COMPLETE job 67108865 (cluster 1, local 1)]"
    );
    let Message::CtldMultRequest(c) = &m else {
        panic!()
    };
    let Some(Message::SibMsg(s)) = c.items[0].message() else {
        panic!()
    };
    assert_eq!(s.job_state.names(), "CANCELLED");
    assert_eq!(s.data, None);

    let (_, m) = typed("fed_cancel/4500_submit_batch.hex", 4500);
    assert_eq!(
        m.summary(),
        "CTLD_MULT_MSG [SIB_MSG FED_JOB_SUBMIT_BATCH job 67108866 (cluster 1, local 2) \
         uid 0 partition (default) name \"wrap\"]"
    );
}

#[test]
fn spec_9_7_excerpt_is_the_fedlab_capture() {
    let (body, m) = typed("fedlab/4500_complete_dep_complete.hex", 4500);
    assert_eq!(
        m.summary(),
        "CTLD_MULT_MSG [SIB_MSG FED_JOB_COMPLETE job 67108866 (cluster 1, local 2), \
         SEND_DEP job 67108866 (cluster 1, local 2) \"fedtest2\" dependency \"\", \
         SIB_MSG FED_JOB_COMPLETE job 67108866 (cluster 1, local 2)]"
    );
    // The annotated bytes of spec §9.7, after `00 00 00 af 11 94`.
    let spec =
        "00000003 00000036 00000036 1196 00000000 00000000 0000000000000000 04000002 00000004 \
                00000000 000000006b02d07c 00000000 00000000 0002 00000000 0000 \
                00000025 00000025 1199 00000000 fffffffe 0000000100 00 04000002 \
                00000009 66656474657374320000000000";
    let spec: String = spec.chars().filter(|c| !c.is_whitespace()).collect();
    let spec: Vec<u8> = (0..spec.len() / 2)
        .map(|i| u8::from_str_radix(&spec[2 * i..2 * i + 2], 16).unwrap())
        .collect();
    assert_eq!(&body[..spec.len()], &spec[..]);
    let (_, m) = typed("fedlab/4501_three_rc.hex", 4501);
    assert_eq!(
        m.summary(),
        "CTLD_MULT_MSG [SLURM_RC 0, SLURM_RC 0, SLURM_RC 0]"
    );
}

#[test]
fn fed_job_sync_carries_job_info() {
    let (_, m) = typed("fed_startup/4500_fed_job_sync.hex", 4500);
    let Message::CtldMultRequest(c) = &m else {
        panic!()
    };
    let Some(Message::SibMsg(s)) = c.items[0].message() else {
        panic!()
    };
    assert_eq!(s.sib_msg_type, SibMsgType::Sync);
    assert_eq!(s.data_type, MsgType::RESPONSE_JOB_INFO);
    // An empty RESPONSE_JOB_INFO: u32 0 + two times.
    assert_eq!(s.data.as_ref().unwrap().len(), 20);
    let (_, m) = typed("fed_startup/4501_rc0.hex", 4501);
    assert_eq!(m.summary(), "CTLD_MULT_MSG [SLURM_RC 0]");
}

#[test]
fn accounting_updates_carry_the_federation() {
    let (_, m) = typed("fed_create/10001_federation_removed.hex", 10001);
    assert_eq!(m.summary(), "ACCOUNTING_UPDATE [UPDATE_FEDS []]");
    let (_, m) = typed("fed_create/10001_federation_added.hex", 10001);
    assert_eq!(m.summary(), "ACCOUNTING_UPDATE [UPDATE_FEDS [fed1]]");
    let Message::AccountingUpdate(a) = &m else {
        panic!()
    };
    let UpdateObjects::Feds(l) = &a.updates[0].objects else {
        panic!()
    };
    let fed = l.0.as_ref().unwrap()[0].as_ref().unwrap();
    assert_eq!(
        fed.describe(),
        "fed1: alpha#1 ACTIVE 127.0.0.1:6817, beta#2 ACTIVE 127.0.0.1:7817"
    );
    // fed_startup: beta went down, slurmdbd cleared its control host ("" — not NULL).
    let (_, m) = typed("fed_startup/10001_update_feds.hex", 10001);
    let Message::AccountingUpdate(a) = &m else {
        panic!()
    };
    let UpdateObjects::Feds(l) = &a.updates[0].objects else {
        panic!()
    };
    let fed = l.0.as_ref().unwrap()[0].as_ref().unwrap();
    let beta = fed.cluster_list.0.as_ref().unwrap()[1].as_ref().unwrap();
    assert_eq!(beta.name.text().as_deref(), Some("beta"));
    assert_eq!(beta.control_host.text().as_deref(), Some(""));
    assert_eq!(beta.control_host.wire_len(), 5);
    assert_eq!(beta.control_port, 0);
}

#[test]
fn reservation_matches_scontrol_show_reservation() {
    // misc_rpcs.cmd.txt: ReservationName=labresv Nodes=alpha-n1 NodeCnt=1 CoreCnt=2
    // Flags=SPEC_NODES TRES=cpu=2 Users=root
    let (_, m) = typed("misc_rpcs/2025_labresv.hex", 2025);
    let Message::ReservationInfoResponse(r) = &m else {
        panic!()
    };
    let rec = &r.reservations[0];
    assert_eq!(rec.name.text().as_deref(), Some("labresv"));
    assert_eq!(rec.node_list.text().as_deref(), Some("alpha-n1"));
    assert_eq!((rec.node_cnt, rec.core_cnt, rec.flags), (1, 2, 0x8000));
    assert_eq!(rec.tres_str.text().as_deref(), Some("cpu=2"));
    assert_eq!(rec.users.text().as_deref(), Some("root"));
    assert_eq!(rec.end_time - rec.start_time, 30 * 60);
    assert_eq!(rec.comment, None);
    assert_eq!(rec.resv_watts, Some(slurm_codec::wire::NO_VAL));
    assert_eq!(m.summary(), "RESERVATION_INFO 1 reservations: labresv");
    let (_, m) = typed("misc_rpcs/2024_request.hex", 2024);
    assert_eq!(m.summary(), "REQUEST_RESERVATION_INFO last_update 0");
    let (_, m) = typed("misc_rpcs/8001_rc0.hex", 8001);
    assert_eq!(m.summary(), "SLURM_RC 0");
}

fn persist_frame(msg_type: u16, body: &[u8]) -> Bytes {
    let mut b = BytesMut::new();
    b.put_u32(2 + body.len() as u32);
    b.put_u16(msg_type);
    b.put_slice(body);
    b.freeze()
}

fn normal_frame(msg_type: u16, body: &[u8]) -> Bytes {
    let h = Header::new(V, HeaderFlags(0), MsgType(msg_type), body.len() as u32);
    let auth = AuthSection::Munge {
        credential: PackStr::from_text("MUNGE:x:"),
    };
    let mut b = BytesMut::new();
    b.put_u32(0);
    h.encode(&mut b);
    auth.encode(&mut b);
    b.put_slice(body);
    let len = (b.len() - 4) as u32;
    b[..4].copy_from_slice(&len.to_be_bytes());
    b.freeze()
}

#[test]
fn real_bodies_through_frames() {
    // Persist frames, version known and unknown (oldest first → 22.05).
    for (path, t) in [
        ("fed_submit/4500_submit_batch.hex", 4500),
        ("fedlab/4500_complete_dep_complete.hex", 4500),
        ("fed_startup/4501_rc0.hex", 4501),
    ] {
        let wire = persist_frame(t, &fixture(path));
        for version in [Some(V), None] {
            let f = Frame::decode(
                wire.clone(),
                Framing::Persist {
                    ns: Namespace::Slurm,
                    version,
                },
            )
            .unwrap();
            assert!(f.message().is_some(), "{path}: {:?}", f.body_error);
            assert_eq!(f.to_bytes(), wire);
        }
    }
    for (path, t) in [
        ("fed_info/2050_from_alpha.hex", 2050),
        ("fed_create/10001_federation_added.hex", 10001),
        ("misc_rpcs/2025_labresv.hex", 2025),
        ("misc_rpcs/2024_request.hex", 2024),
    ] {
        let wire = normal_frame(t, &fixture(path));
        let f = Frame::decode(wire.clone(), Framing::Normal).unwrap();
        assert!(f.message().is_some(), "{path}: {:?}", f.body_error);
        assert_eq!(f.to_bytes(), wire);
    }
}
