//! Property tests for the federation families: arbitrary typed values (shaped for
//! the layout of each protocol version 22.05 … 26.05) encode, decode back equal
//! through `Message::decode` (whole body consumed) and re-encode to the same bytes.

use bytes::{Bytes, BytesMut};
use proptest::option;
use proptest::prelude::*;
use slurm_codec::msg::accounting::{AccountingUpdate, UpdateObject, UpdateObjects, UpdateType};
use slurm_codec::msg::common::{HexBitmap, JobId, RawBytes, SiblingBitmap, StepId};
use slurm_codec::msg::ctld_mult::{CtldItem, CtldMultMsg, ItemContent};
use slurm_codec::msg::dep::{
    DependFlags, DependSpec, DependState, DependType, SendDep, UpdateOriginDep,
};
use slurm_codec::msg::fed_info::{
    AccountingRec, AssocRec, ClusterAccountingRec, ClusterFlags, ClusterRec, FedInfoResponse,
    FedState, FederationRec, TresRec,
};
use slurm_codec::msg::rc::{RerouteMsg, ReturnCode, SlurmRc, SlurmRcMsg};
use slurm_codec::msg::reservation::{
    CoreSpec, ReservationInfoRequest, ReservationInfoResponse, ReservationRec,
};
use slurm_codec::msg::sib::{JobState, SibMsg, SibMsgType};
use slurm_codec::msg::Message;
use slurm_codec::msg_type::{MsgType, Namespace};
use slurm_codec::wire::{Encode, PackStr, SlurmList};
use slurm_codec::ProtocolVersion;

type V = ProtocolVersion;

fn version() -> impl Strategy<Value = V> {
    proptest::sample::select(V::MODERN.to_vec())
}

fn packstr() -> BoxedStrategy<PackStr> {
    prop_oneof![
        Just(PackStr::NULL),
        "[a-z0-9,=:.]{0,10}".prop_map(|s| PackStr::from_text(&s)),
        proptest::collection::vec(any::<u8>(), 1..6).prop_map(|v| PackStr(Some(Bytes::from(v)))),
    ]
    .boxed()
}

/// `Some(value)` exactly when the layout has the field.
fn gated<T: std::fmt::Debug + Clone + 'static>(
    present: bool,
    s: impl Strategy<Value = T> + 'static,
) -> BoxedStrategy<Option<T>> {
    if present {
        s.prop_map(Some).boxed()
    } else {
        Just(None).boxed()
    }
}

fn list<T: std::fmt::Debug + Clone + 'static>(
    s: impl Strategy<Value = T> + 'static,
    max: usize,
) -> BoxedStrategy<SlurmList<T>> {
    option::of(proptest::collection::vec(s, 0..max))
        .prop_map(SlurmList)
        .boxed()
}

fn raw(max: usize) -> BoxedStrategy<RawBytes> {
    proptest::collection::vec(any::<u8>(), 0..max)
        .prop_map(|v| RawBytes(Bytes::from(v)))
        .boxed()
}

fn tres() -> BoxedStrategy<TresRec> {
    (
        any::<u64>(),
        any::<u64>(),
        any::<u32>(),
        packstr(),
        packstr(),
    )
        .prop_map(|(alloc_secs, count, id, name, tres_type)| TresRec {
            alloc_secs,
            count,
            id,
            name,
            tres_type,
        })
        .boxed()
}

fn accounting(v: V) -> BoxedStrategy<AccountingRec> {
    (
        any::<u64>(),
        tres(),
        any::<u32>(),
        gated(v >= V::V24_11, any::<u32>()),
        any::<i64>(),
    )
        .prop_map(
            |(alloc_secs, tres_rec, id, id_alt, period_start)| AccountingRec {
                alloc_secs,
                tres_rec,
                id,
                id_alt,
                period_start,
            },
        )
        .boxed()
}

fn cluster_accounting() -> BoxedStrategy<ClusterAccountingRec> {
    (any::<u64>(), tres(), any::<[u64; 5]>(), any::<i64>())
        .prop_map(
            |(alloc_secs, tres_rec, s, period_start)| ClusterAccountingRec {
                alloc_secs,
                tres_rec,
                down_secs: s[0],
                idle_secs: s[1],
                over_secs: s[2],
                pdown_secs: s[3],
                period_start,
                plan_secs: s[4],
            },
        )
        .boxed()
}

fn assoc(v: V) -> BoxedStrategy<AssocRec> {
    let flags = if v >= V::V24_05 {
        any::<u32>().boxed()
    } else {
        (0u32..=0xffff).boxed()
    };
    let strings = proptest::collection::vec(packstr(), 13);
    let nums = any::<[u32; 14]>();
    (
        list(accounting(v), 2),
        strings,
        nums,
        flags,
        any::<u16>(),
        gated(v >= V::V23_02, packstr()),
        gated(v <= V::V23_02, any::<u32>()),
        gated(v >= V::V23_11, packstr()),
        gated(v <= V::V23_02, any::<u32>()),
        list(packstr(), 3),
    )
        .prop_map(
            |(accounting_list, s, n, flags, is_def, comment, lft, lineage, rgt, qos_list)| {
                AssocRec {
                    accounting_list,
                    acct: s[0].clone(),
                    cluster: s[1].clone(),
                    comment,
                    def_qos_id: n[0],
                    flags,
                    shares_raw: n[1],
                    grp_tres_mins: s[2].clone(),
                    grp_tres_run_mins: s[3].clone(),
                    grp_tres: s[4].clone(),
                    grp_jobs: n[2],
                    grp_jobs_accrue: n[3],
                    grp_submit_jobs: n[4],
                    grp_wall: n[5],
                    id: n[6],
                    is_def,
                    lft,
                    lineage,
                    max_tres_mins_pj: s[5].clone(),
                    max_tres_run_mins: s[6].clone(),
                    max_tres_pj: s[7].clone(),
                    max_tres_pn: s[8].clone(),
                    max_jobs: n[7],
                    max_jobs_accrue: n[8],
                    min_prio_thresh: n[9],
                    max_submit_jobs: n[10],
                    max_wall_pj: n[11],
                    parent_acct: s[9].clone(),
                    parent_id: n[12],
                    partition: s[10].clone(),
                    priority: n[13],
                    qos_list,
                    rgt,
                    uid: n[0] ^ n[13],
                    user: s[11].clone(),
                }
            },
        )
        .boxed()
}

fn cluster(v: V) -> BoxedStrategy<ClusterRec> {
    (
        (
            list(cluster_accounting(), 2),
            any::<u16>(),
            packstr(),
            any::<u32>(),
            any::<u16>(),
            list(packstr(), 3),
        ),
        (
            packstr(),
            0u32..64,
            any::<u32>(),
            any::<[bool; 4]>(),
            any::<u32>(),
        ),
        (
            gated(v >= V::V24_11, any::<u16>()),
            packstr(),
            packstr(),
            gated(v <= V::V23_11, any::<u32>()),
        ),
        (assoc(v), any::<u16>(), packstr()),
    )
        .prop_map(
            |(
                (
                    accounting_list,
                    classification,
                    control_host,
                    control_port,
                    dimensions,
                    fed_feature_list,
                ),
                (fed_name, fed_id, fed_state, b, flags),
                (id, name, nodes, plugin_id_select),
                (root_assoc, rpc, tres_str),
            )| ClusterRec {
                accounting_list,
                classification,
                control_host,
                control_port,
                dimensions,
                fed_feature_list,
                fed_name,
                fed_id,
                fed_state: FedState(fed_state),
                fed_sync_recvd: b[0],
                fed_sync_sent: b[1],
                flags: ClusterFlags(flags),
                id,
                name,
                nodes,
                plugin_id_select,
                root_assoc,
                rpc_version: ProtocolVersion(rpc),
                fed_recv_connected: b[2],
                fed_send_connected: b[3],
                tres_str,
            },
        )
        .boxed()
}

/// A list slot: NULL slots only exist on the wire from 24.11 (before, NULL is a filler).
fn cluster_slot(v: V) -> BoxedStrategy<Option<ClusterRec>> {
    if v >= V::V24_11 {
        option::of(cluster(v)).boxed()
    } else {
        cluster(v).prop_map(Some).boxed()
    }
}

fn federation(v: V) -> BoxedStrategy<Option<FederationRec>> {
    option::of(
        (packstr(), any::<u32>(), list(cluster_slot(v), 3)).prop_map(
            |(name, flags, cluster_list)| FederationRec {
                name,
                flags,
                cluster_list,
            },
        ),
    )
    .boxed()
}

fn step_id() -> BoxedStrategy<StepId> {
    (any::<u64>(), any::<u32>(), any::<u32>(), any::<u32>())
        .prop_map(|(sluid, j, step_id, step_het_comp)| StepId {
            sluid,
            job_id: JobId(j),
            step_id,
            step_het_comp,
        })
        .boxed()
}

fn sib(v: V) -> BoxedStrategy<SibMsg> {
    (
        (
            any::<u32>(),
            any::<u16>(),
            any::<u16>(),
            any::<u64>(),
            gated(v >= V::V23_02, any::<u32>()),
        ),
        (
            gated(v <= V::V25_05, any::<u32>()),
            any::<u32>(),
            any::<i32>(),
            any::<i64>(),
            packstr(),
            any::<u32>(),
        ),
        (
            0u16..=12,
            gated(v >= V::V25_11, step_id()),
            packstr(),
            gated(v >= V::V23_11, any::<u16>()),
        ),
        (gated(v >= V::V23_02, any::<u32>()), option::of(raw(40))),
    )
        .prop_map(
            |(
                (cluster_id, data_type, data_version, sibs, group_id),
                (job_id, job_state, rc, start_time, resp_host, req_uid),
                (t, step_id, submit_host, submit_proto_ver),
                (user_id, data),
            )| SibMsg {
                cluster_id,
                data_type: MsgType(data_type),
                data_version: ProtocolVersion(data_version),
                fed_siblings: SiblingBitmap(sibs),
                group_id,
                job_id: job_id.map(JobId),
                job_state: JobState(job_state),
                return_code: ReturnCode(rc),
                start_time,
                resp_host,
                req_uid,
                sib_msg_type: SibMsgType::from_wire(t).unwrap(),
                step_id,
                submit_host,
                submit_proto_ver,
                user_id,
                data,
            },
        )
        .boxed()
}

fn send_dep(v: V) -> BoxedStrategy<SendDep> {
    (
        any::<u32>(),
        any::<u32>(),
        packstr(),
        any::<bool>(),
        gated(v <= V::V25_05, any::<u32>()),
        packstr(),
        gated(v >= V::V25_11, step_id()),
        any::<u32>(),
    )
        .prop_map(
            |(a, t, dependency, is_array, job_id, job_name, step_id, user_id)| SendDep {
                array_job_id: JobId(a),
                array_task_id: t,
                dependency,
                is_array,
                job_id: job_id.map(JobId),
                job_name,
                step_id,
                user_id,
            },
        )
        .boxed()
}

fn update_origin_dep(v: V) -> BoxedStrategy<UpdateOriginDep> {
    let spec = (
        any::<u32>(),
        any::<u16>(),
        any::<u16>(),
        any::<[u32; 3]>(),
        gated(v >= V::V25_11, any::<u32>()),
        any::<u64>(),
    )
        .prop_map(
            |(array_task_id, t, f, n, parsed_array_task_id, singleton_bits)| DependSpec {
                array_task_id,
                depend_type: DependType(t),
                depend_flags: DependFlags(f),
                depend_state: DependState(n[0]),
                depend_time: n[1],
                job_id: JobId(n[2]),
                parsed_array_task_id,
                singleton_bits,
            },
        );
    (
        proptest::collection::vec(spec, 0..3),
        gated(v <= V::V25_05, any::<u32>()),
        gated(v >= V::V25_11, step_id()),
    )
        .prop_map(|(depend_list, job_id, step_id)| UpdateOriginDep {
            depend_list,
            job_id: job_id.map(JobId),
            step_id,
        })
        .boxed()
}

fn reservation(v: V) -> BoxedStrategy<ReservationRec> {
    (
        proptest::collection::vec(packstr(), 11),
        any::<[u32; 4]>(),
        any::<[i64; 2]>(),
        any::<u64>(),
        gated(v >= V::V23_02, packstr()),
        gated(v <= V::V25_05, any::<u32>()),
        gated(v >= V::V25_11, packstr()),
        gated(v >= V::V25_11, packstr()),
        option::of((
            any::<u32>().prop_filter("not NO_VAL", |b| *b != slurm_codec::wire::NO_VAL),
            packstr(),
        )),
        proptest::collection::vec((packstr(), packstr()), 0..3),
    )
        .prop_map(
            |(s, n, t, flags, comment, resv_watts, qos, allowed_parts, inx, cs)| ReservationRec {
                accounts: s[0].clone(),
                burst_buffer: s[1].clone(),
                comment,
                core_cnt: n[0],
                end_time: t[0],
                features: s[2].clone(),
                flags,
                licenses: s[3].clone(),
                max_start_delay: n[1],
                name: s[4].clone(),
                node_cnt: n[2],
                node_list: s[5].clone(),
                partition: s[6].clone(),
                purge_comp_time: n[3],
                resv_watts,
                start_time: t[1],
                tres_str: s[7].clone(),
                users: s[8].clone(),
                groups: s[9].clone(),
                qos,
                allowed_parts,
                node_inx: HexBitmap(inx),
                core_spec: cs
                    .into_iter()
                    .map(|(node_name, core_id)| CoreSpec { node_name, core_id })
                    .collect(),
            },
        )
        .boxed()
}

fn ctld_item(v: V) -> BoxedStrategy<CtldItem> {
    let typed = prop_oneof![
        any::<i32>().prop_map(|rc| Message::SlurmRc(SlurmRc {
            return_code: ReturnCode(rc)
        })),
        sib(v).prop_map(Message::SibMsg),
        send_dep(v).prop_map(Message::SendDep),
        update_origin_dep(v).prop_map(Message::UpdateOriginDep),
        Just(Message::Ping(slurm_codec::msg::rc::Ping)),
    ];
    let content = prop_oneof![
        4 => typed.prop_map(|m| ItemContent::Typed(Box::new(m))),
        // Unmodelled types stay raw.
        1 => raw(20).prop_map(|body| ItemContent::Raw { msg_type: Some(MsgType::REQUEST_BATCH_JOB_LAUNCH), body, error: None }),
        1 => raw(2).prop_map(|body| ItemContent::Raw { msg_type: None, body: RawBytes(body.0.slice(..body.len().min(1))), error: None }),
    ];
    (content, option::of(any::<u32>()))
        .prop_map(move |(content, size)| {
            let mut item = CtldItem {
                declared_size: None,
                content,
            };
            // A first size field that differs from the packmem length survives too.
            let mut enc = Vec::new();
            CtldMultMsg {
                items: vec![item.clone()],
            }
            .encode(&mut enc, v);
            let real = u32::from_be_bytes([enc[8], enc[9], enc[10], enc[11]]);
            item.declared_size = size.filter(|s| *s != real);
            item
        })
        .boxed()
}

fn accounting_update(v: V) -> BoxedStrategy<AccountingUpdate> {
    let typed = prop_oneof![
        Just(UpdateObject {
            update_type: UpdateType(UpdateType::ADD_CLUSTER),
            objects: UpdateObjects::Nothing
        }),
        Just(UpdateObject {
            update_type: UpdateType(UpdateType::REMOVE_CLUSTER),
            objects: UpdateObjects::Nothing
        }),
        (
            proptest::sample::select(vec![2u16, 5, 7, 17]),
            list(assoc(v), 2)
        )
            .prop_map(|(t, l)| UpdateObject {
                update_type: UpdateType(t),
                objects: UpdateObjects::Assocs(l)
            }),
        list(tres(), 3).prop_map(|l| UpdateObject {
            update_type: UpdateType(22),
            objects: UpdateObjects::Tres(l)
        }),
        list(federation(v), 2).prop_map(|l| UpdateObject {
            update_type: UpdateType(23),
            objects: UpdateObjects::Feds(l)
        }),
    ];
    (
        proptest::collection::vec(typed, 0..3),
        option::of((
            proptest::sample::select(vec![1u16, 4, 9, 11, 12, 18, 21, 1490]),
            raw(30),
            0u32..3,
        )),
    )
        .prop_map(|(mut updates, tail)| {
            let mut count = updates.len() as u32;
            if let Some((t, bytes, later)) = tail {
                // The tail holds this update's list and the `later` updates (2+ bytes each).
                let mut b = bytes.0.to_vec();
                b.resize(b.len().max(4 + 2 * later as usize), 0);
                let bytes = RawBytes(Bytes::from(b));
                updates.push(UpdateObject {
                    update_type: UpdateType(t),
                    objects: UpdateObjects::RawTail(bytes),
                });
                count += 1 + later;
            }
            AccountingUpdate { count, updates }
        })
        .boxed()
}

fn reroute(v: V) -> BoxedStrategy<RerouteMsg> {
    let slot = if v >= V::V24_11 {
        prop_oneof![
            Just((false, None)),
            Just((true, None)),
            cluster(v).prop_map(|c| (true, Some(Box::new(c)))),
        ]
        .boxed()
    } else {
        prop_oneof![
            Just((false, None)),
            cluster(v).prop_map(|c| (true, Some(Box::new(c))))
        ]
        .boxed()
    };
    (slot, gated(v >= V::V24_05, packstr()))
        .prop_map(|((has_cluster, working_cluster_rec), stepmgr)| RerouteMsg {
            has_cluster,
            working_cluster_rec,
            stepmgr,
        })
        .boxed()
}

/// Any modelled federation message, shaped for `v`.
fn message(v: V) -> BoxedStrategy<Message> {
    prop_oneof![
        Just(Message::Ping(slurm_codec::msg::rc::Ping)),
        Just(Message::FedInfoRequest(
            slurm_codec::msg::fed_info::FedInfoRequest
        )),
        federation(v)
            .prop_map(|federation| Message::FedInfoResponse(FedInfoResponse { federation })),
        any::<i64>().prop_map(|last_update| Message::ReservationInfoRequest(
            ReservationInfoRequest { last_update }
        )),
        (
            any::<i64>(),
            proptest::collection::vec(reservation(v), 0..3)
        )
            .prop_map(|(last_update, reservations)| {
                Message::ReservationInfoResponse(ReservationInfoResponse {
                    last_update,
                    reservations,
                })
            }),
        proptest::collection::vec(ctld_item(v), 0..4)
            .prop_map(|items| Message::CtldMultRequest(CtldMultMsg { items })),
        proptest::collection::vec(ctld_item(v), 0..4)
            .prop_map(|items| Message::CtldMultResponse(CtldMultMsg { items })),
        sib(v).prop_map(Message::SibMsg),
        sib(v).prop_map(Message::SibJobLock),
        sib(v).prop_map(Message::SibJobUnlock),
        send_dep(v).prop_map(Message::SendDep),
        update_origin_dep(v).prop_map(Message::UpdateOriginDep),
        any::<i32>().prop_map(|rc| Message::SlurmRc(SlurmRc {
            return_code: ReturnCode(rc)
        })),
        (any::<i32>(), packstr()).prop_map(|(rc, err_msg)| Message::SlurmRcMsg(SlurmRcMsg {
            return_code: ReturnCode(rc),
            err_msg
        })),
        reroute(v).prop_map(Message::Reroute),
        accounting_update(v).prop_map(Message::AccountingUpdate),
    ]
    .boxed()
}

fn versioned_message() -> impl Strategy<Value = (V, Message)> {
    version().prop_flat_map(|v| (Just(v), message(v)))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn typed_values_roundtrip_at_every_version((v, m) in versioned_message()) {
        let mut out = BytesMut::new();
        m.encode(&mut out, v);
        let wire = out.freeze();
        let back = Message::decode(m.msg_type(), Namespace::Slurm, v, wire.clone(), 0)
            .expect("modelled")
            .unwrap_or_else(|e| panic!("{v} {:?}: {e}", m.msg_type()));
        prop_assert_eq!(&back, &m);
        let mut again = BytesMut::new();
        back.encode(&mut again, v);
        prop_assert_eq!(again.freeze(), wire);
        prop_assert!(!back.summary().is_empty());
        prop_assert!(serde_json::to_string(&back).is_ok());
    }

    /// Whatever bytes a modelled body holds: no panic, and a successful decode
    /// re-encodes to exactly those bytes.
    #[test]
    fn arbitrary_bodies_never_panic_and_ok_is_exact(
        v in version(),
        t in proptest::sample::select(vec![1008u16, 2024, 2025, 2049, 2050, 4500, 4501, 4502, 4503, 4504, 4505, 4506, 8001, 8002, 8003, 10001]),
        body in proptest::collection::vec(any::<u8>(), 0..200),
    ) {
        let body = Bytes::from(body);
        if let Some(Ok(m)) = Message::decode(MsgType(t), Namespace::Slurm, v, body.clone(), 0) {
            let mut out = BytesMut::new();
            m.encode(&mut out, v);
            prop_assert_eq!(out.freeze(), body);
        }
    }
}
