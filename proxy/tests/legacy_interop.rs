//! Legacy FLURM interop end to end: a private munged, the legacy controller
//! emulator (tests/legacy_support), fedproxy's legacy route, and Debian's real
//! `scontrol` (22.05) as the Slurm client.

mod legacy_support;

use std::net::SocketAddr;
use std::process::Command;
use std::sync::Arc;

use bytes::Bytes;
use fedproxy::run::legacy_route::serve_route;
use flurm::config::{LegacyConfig, PeerConfig, PeerTable};
use flurm::metrics::ProbeLog;
use flurm::munge::{Munge, MungeError};
use flurm::LegacyMetrics;
use flurm::TranslationContext;
use legacy_support::*;
use slurm_codec::auth::AuthSection;
use slurm_codec::body_hash;
use slurm_codec::frame::{Frame, FrameHead, Framing};
use slurm_codec::header::Header;
use slurm_codec::legacy::translate::Unsigned;
use slurm_codec::legacy::{classify_2024, Kind2024};
use slurm_codec::wire::PackStr;
use slurm_codec::{HeaderFlags, MsgType, ProtocolVersion};
use tokio::net::TcpListener;

#[derive(serde::Deserialize)]
struct File {
    #[serde(default)]
    legacy: LegacyConfig,
    #[serde(default, rename = "peer")]
    peers: Vec<PeerConfig>,
}

fn shared(munge: Munge, toml_text: &str) -> Arc<TranslationContext> {
    let f: File = toml::from_str(toml_text).unwrap();
    Arc::new(TranslationContext {
        peers: PeerTable::new(&f.peers, &f.legacy).unwrap(),
        config: f.legacy,
        credentials: Arc::new(munge),
        metrics: LegacyMetrics::new(),
    })
}

/// Starts fedproxy's legacy route to `upstream`; returns its address.
async fn proxy(shared: Arc<TranslationContext>, upstream: SocketAddr) -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(serve_route(
        l,
        upstream,
        shared,
        Arc::new(ProbeLog::default()),
    ));
    addr
}

const LEGACY_UPSTREAM: &str = r#"
[legacy]
fed_ids = { alpha = 2 }
[[peer]]
name = "flurm"
match = "127.0.0.1/32"
cluster_unused = 0
"#;

fn legacy_upstream_config() -> String {
    // The emulator listens on 127.0.0.1: the upstream is the legacy peer.
    LEGACY_UPSTREAM.replace(
        "cluster_unused = 0",
        "dialect = \"legacy-flurm\"\nfed_id = 1",
    )
}

fn count(s: &TranslationContext, direction: &str, from: &str, to: &str) -> u64 {
    s.metrics
        .translations
        .with_label_values(&[direction, from, to])
        .get()
}

/// `scontrol` with a slurm.conf pointing at `port` and our munged.
fn scontrol(munged: &Munged, port: u16, args: &[&str]) -> (i32, String, String) {
    let conf = munged.dir.join("slurm.conf");
    std::fs::write(
        &conf,
        format!(
            "ClusterName=legacy\nSlurmctldHost=localhost\nSlurmctldPort={port}\nAuthType=auth/munge\n\
             AuthInfo=socket={}\nCredType=cred/munge\nSlurmUser=root\nMessageTimeout=5\n\
             NodeName=localhost CPUs=1 State=UNKNOWN\nPartitionName=debug Nodes=localhost Default=YES\n",
            munged.socket.display()
        ),
    )
    .unwrap();
    let out = Command::new("scontrol")
        .args(args)
        .env("SLURM_CONF", &conf)
        .output()
        .expect("scontrol (Debian slurm-client; scripts/install-lab-deps)");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

async fn scontrol_async(
    munged: &Munged,
    port: u16,
    args: &'static [&'static str],
) -> (i32, String, String) {
    // scontrol blocks; the proxy and emulator run on this runtime's other worker.
    tokio::task::block_in_place(|| scontrol(munged, port, args))
}

#[test]
fn munge_mints_and_verifies_with_uid_restriction_and_replay_detection() {
    let m = Munged::start();
    let c = m.client();
    let payload = body_hash::k12_payload(MsgType(2050), &[0]);
    let cred = c.encode(&payload, None).unwrap();
    assert!(cred.starts_with("MUNGE:") && cred.ends_with(':'));
    let d = c.decode(cred.as_bytes()).unwrap();
    assert_eq!((d.uid, d.gid, d.payload.as_slice()), (0, 0, &payload[..]));
    // Same credential again: replayed.
    assert_eq!(
        c.decode(cred.as_bytes()).unwrap_err().reason(),
        "credential_replayed"
    );
    // Tampered: one base64 character changed.
    let fresh = c.encode(&payload, None).unwrap();
    let mut t = fresh.into_bytes();
    t[20] = if t[20] == b'A' { b'B' } else { b'A' };
    assert!(c.decode(&t).is_err());
    // Restricted to another uid: root cannot decode it either.
    let r = c.encode(&payload, Some(4242)).unwrap();
    assert_eq!(
        c.decode(r.as_bytes()).unwrap_err().reason(),
        "credential_unauthorized"
    );
    // A key of another cluster does not verify ours.
    let other = Munged::start();
    let mine = c.encode(&payload, None).unwrap();
    assert!(other.client().decode(mine.as_bytes()).is_err());
    // No munged on the socket: a typed error, not a panic.
    let none = Munge::load(Some(&m.dir.join("nope"))).unwrap();
    assert!(matches!(
        none.encode(b"x", None),
        Err(MungeError::Status { .. })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scontrol_show_federation_through_fedproxy_to_legacy_flurm() {
    let m = Munged::start();
    let emu = legacy_emulator(EmulatorMode::Populated, Some(m.client())).await;
    let s = shared(m.client(), &legacy_upstream_config());
    let p = proxy(s.clone(), emu.addr).await;

    let (rc, out, err) = scontrol_async(&m, p.port(), &["show", "federation"]).await;
    assert_eq!(rc, 0, "stdout {out:?} stderr {err:?}");
    assert!(out.contains("Federation: fed1"), "{out}");
    assert!(
        out.contains("Self:       legacy:flurm-head:6817 ID:1 FedState:ACTIVE Features:gpu"),
        "{out}"
    );
    assert!(
        out.contains("Sibling:    alpha:127.0.0.1:6817 ID:2 FedState:ACTIVE"),
        "{out}"
    );
    assert_eq!(count(&s, "to_legacy", "slurm_2049", "legacy_2024"), 1);
    assert_eq!(count(&s, "from_legacy", "legacy_2025", "slurm_2050"), 1);
    assert_eq!(
        s.metrics
            .credentials_minted
            .with_label_values(&["2050"])
            .get(),
        1
    );
    // The legacy controller got exactly its own request encoder's frame.
    let got = emu.received.lock().unwrap().clone();
    assert_eq!(
        got,
        vec![Bytes::from(
            capture_frames("legacy_fedinfo_populated.hex.txt")[0]
                .1
                .clone()
        )]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zero_reply_means_no_federation_and_the_reservation_collision_passes_untouched() {
    let m = Munged::start();
    let emu = legacy_emulator(EmulatorMode::Zero, Some(m.client())).await;
    let s = shared(m.client(), &legacy_upstream_config());
    let p = proxy(s.clone(), emu.addr).await;

    // 12 zeros → "no federation": scontrol prints nothing and succeeds.
    let (rc, out, err) = scontrol_async(&m, p.port(), &["show", "federation"]).await;
    assert_eq!((rc, out.as_str()), (0, ""), "stderr {err:?}");
    assert_eq!(count(&s, "from_legacy", "legacy_2025", "slurm_2050"), 1);

    // Slurm's REQUEST_RESERVATION_INFO (2024) through the same proxy: not translated.
    let (rc, out, err) = scontrol_async(&m, p.port(), &["show", "reservation"]).await;
    assert_eq!(rc, 0, "stderr {err:?}");
    assert_eq!(out.trim(), "No reservations in the system");
    let got = emu.received.lock().unwrap().clone();
    assert_eq!(got.len(), 2);
    let f = Frame::decode(got[1].clone(), Framing::Normal).unwrap();
    assert_eq!(
        classify_2024(&f),
        Kind2024::SlurmReservationInfo,
        "forwarded as scontrol sent it"
    );
    assert_eq!(
        s.metrics
            .passthrough
            .with_label_values(&["flurm", "slurm_2024"])
            .get(),
        1
    );
    assert_eq!(
        count(&s, "to_legacy", "slurm_2049", "legacy_2024"),
        1,
        "only the 2049 was translated"
    );
}

/// A Slurm 2049 with a credential minted by `m` over `payload`.
fn slurm_2049(m: &Munge, payload: &[u8]) -> Vec<u8> {
    let u = Unsigned {
        header: Header::new(ProtocolVersion::V22_05, HeaderFlags(0), MsgType(2049), 0),
        body: Bytes::new(),
    };
    u.seal_munge(&m.encode(payload, None).unwrap()).to_vec()
}

fn assert_auth_error(reply: &[u8], m: &Munge) {
    let f = Frame::decode(Bytes::copy_from_slice(reply), Framing::Normal).unwrap();
    assert_eq!(f.msg_type(), MsgType(8001));
    assert_eq!(
        &f.body_bytes()[..],
        &1007u32.to_be_bytes(),
        "SLURM_PROTOCOL_AUTHENTICATION_ERROR"
    );
    let FrameHead::Normal {
        auth: AuthSection::Munge {
            credential: PackStr(Some(c)),
        },
        ..
    } = &f.head
    else {
        panic!("reply without credential")
    };
    let d = m.decode(c).unwrap();
    assert!(body_hash::payload_matches(
        &d.payload,
        MsgType(8001),
        &f.body_bytes()
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tampered_or_mismatched_credentials_are_refused_with_the_auth_error() {
    let m = Munged::start();
    let c = m.client();
    let emu = legacy_emulator(EmulatorMode::Populated, Some(c.clone())).await;
    let s = shared(c.clone(), &legacy_upstream_config());
    let p = proxy(s.clone(), emu.addr).await;

    // 1. A credential whose payload is another message's body hash.
    let wrong = slurm_2049(&c, &body_hash::k12_payload(MsgType(2024), &[0; 8]));
    assert_auth_error(&exchange(p, &wrong).await, &c);
    // 2. A credential with one character changed.
    let mut tampered = slurm_2049(&c, &body_hash::k12_payload(MsgType(2049), &[]));
    tampered[30] = if tampered[30] == b'A' { b'B' } else { b'A' };
    assert_auth_error(&exchange(p, &tampered).await, &c);
    // 3. A credential from a munged with another key.
    let other = Munged::start();
    let foreign = slurm_2049(&other.client(), &body_hash::k12_payload(MsgType(2049), &[]));
    assert_auth_error(&exchange(p, &foreign).await, &c);

    assert!(
        emu.received.lock().unwrap().is_empty(),
        "nothing reached the legacy controller"
    );
    assert_eq!(
        s.metrics
            .refusals
            .with_label_values(&["flurm", "body_hash_mismatch"])
            .get(),
        1
    );
    let total: u64 = ["credential_invalid", "munge_error"]
        .iter()
        .map(|r| s.metrics.refusals.with_label_values(&["flurm", r]).get())
        .sum();
    assert_eq!(total, 2);
    assert_eq!(count(&s, "to_legacy", "slurm_2049", "legacy_2024"), 0);

    // 4. A legacy reply without a real credential (FLURM without munge) is refused too.
    let unsigned_emu = legacy_emulator(EmulatorMode::Populated, None).await;
    let p2 = proxy(s.clone(), unsigned_emu.addr).await;
    let good = slurm_2049(&c, &body_hash::k12_payload(MsgType(2049), &[]));
    assert_auth_error(&exchange(p2, &good).await, &c);
    assert_eq!(
        s.metrics
            .refusals
            .with_label_values(&["flurm", "empty_credential"])
            .get(),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frames_from_non_legacy_peers_are_never_translated() {
    let m = Munged::start();
    let emu = legacy_emulator(EmulatorMode::Zero, Some(m.client())).await;
    // The only legacy peer is 127.0.0.2 (nobody here); upstream 127.0.0.1 is plain Slurm.
    let s = shared(
        m.client(),
        "[[peer]]\nmatch = \"127.0.0.2\"\ndialect = \"legacy-flurm\"\n[[peer]]\nmatch = \"127.0.0.1\"\ndialect = \"slurm\"\n",
    );
    let p = proxy(s.clone(), emu.addr).await;
    let legacy_2024 = capture_frames("legacy_fedinfo_zero.hex.txt")[0].1.clone();
    let reply = exchange(p, &legacy_2024).await;
    // The 2024 arrived byte for byte, and the 2025 came back as the peer sent it.
    assert_eq!(emu.received.lock().unwrap()[0][..], legacy_2024[..]);
    let f = Frame::decode(Bytes::from(reply), Framing::Normal).unwrap();
    assert_eq!(
        (f.msg_type(), f.body_bytes().to_vec()),
        (MsgType(2025), vec![0; 12])
    );
    let total: u64 = flurm::metrics::TRANSLATIONS
        .iter()
        .map(|(d, a, b)| count(&s, d, a, b))
        .sum();
    assert_eq!(total, 0);
    assert_eq!(
        s.metrics
            .credentials_minted
            .with_label_values(&["2050"])
            .get(),
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn legacy_http_probes_are_counted_and_passed_through() {
    let m = Munged::start();
    // A listener that records what arrives (like the capture's closing listener).
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let up = l.local_addr().unwrap();
    let seen = Arc::new(tokio::sync::Mutex::new(Vec::new()));
    let seen2 = seen.clone();
    tokio::spawn(async move {
        loop {
            let (mut s, _) = l.accept().await.unwrap();
            let mut b = Vec::new();
            tokio::io::AsyncReadExt::read_to_end(&mut s, &mut b)
                .await
                .unwrap();
            seen2.lock().await.push(b);
        }
    });
    let s = shared(m.client(), &legacy_upstream_config());
    let p = proxy(s.clone(), up).await;
    for (_, req) in capture_frames("legacy_http_probe.hex.txt")
        .into_iter()
        .chain(capture_frames("legacy_http_probe_httpc.hex.txt"))
    {
        let mut c = tokio::net::TcpStream::connect(p).await.unwrap();
        tokio::io::AsyncWriteExt::write_all(&mut c, &req)
            .await
            .unwrap();
        tokio::io::AsyncWriteExt::shutdown(&mut c).await.unwrap();
        let mut sink = Vec::new();
        let _ = tokio::io::AsyncReadExt::read_to_end(&mut c, &mut sink).await;
    }
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let seen = seen.lock().await;
    assert_eq!(seen.len(), 4);
    assert!(
        seen.iter().all(|b| b.starts_with(b"GET /api/v1/")),
        "passed through unchanged"
    );
    assert_eq!(
        s.metrics
            .http_probes
            .with_label_values(&["flurm", "/api/v1/health"])
            .get(),
        2
    );
    assert_eq!(
        s.metrics
            .http_probes
            .with_label_values(&["flurm", "/api/v1/cluster/stats"])
            .get(),
        2
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn legacy_2024_through_fedproxy_to_a_real_slurmctld_gets_a_legacy_2025() {
    let m = Munged::start();
    let ctld = tokio::task::block_in_place(|| Slurmctld::start(&m));
    // The legacy FLURM peer calls in from 127.0.0.2.
    let s = shared(
        m.client(),
        "[legacy]\nlocal_cluster = \"real\"\n[[peer]]\nname = \"flurm-in\"\nmatch = \"127.0.0.2/32\"\ndialect = \"legacy-flurm\"\n",
    );
    let p = proxy(s.clone(), ctld.addr()).await;
    let legacy = std::net::IpAddr::from([127, 0, 0, 2]);
    let req = capture_frames("legacy_fedinfo_zero.hex.txt")[0].1.clone();
    let reply = exchange_from(legacy, p, &req).await;
    assert!(
        !reply.is_empty(),
        "slurmctld accepted the minted 2049: {}",
        ctld.log()
    );
    let f = Frame::decode(Bytes::from(reply), Framing::Normal).unwrap();
    let h = f.header().unwrap();
    assert_eq!(
        (h.version, h.msg_type, h.flags.0),
        (ProtocolVersion::V22_05, MsgType(2025), 0),
        "legacy framing"
    );
    // This slurmctld has no slurmdbd, so no federation: `scontrol show federation`
    // on it prints nothing, and the legacy answer is legacy's own "nothing" (12 zeros).
    let (rc, out, _) = tokio::task::block_in_place(|| {
        let o = Command::new("scontrol")
            .args(["show", "federation"])
            .env("SLURM_CONF", &ctld.conf)
            .output()
            .unwrap();
        (
            o.status.code(),
            String::from_utf8_lossy(&o.stdout).into_owned(),
            (),
        )
    });
    assert_eq!((rc, out.as_str()), (Some(0), ""));
    assert_eq!(f.body_bytes().to_vec(), vec![0u8; 12]);
    // The legacy reply is signed for its new body and number.
    let FrameHead::Normal {
        auth: AuthSection::Munge {
            credential: PackStr(Some(c)),
        },
        ..
    } = &f.head
    else {
        panic!()
    };
    let d = m.client().decode(c).unwrap();
    assert!(body_hash::payload_matches(
        &d.payload,
        MsgType(2025),
        &f.body_bytes()
    ));
    assert_eq!(count(&s, "from_legacy", "legacy_2024", "slurm_2049"), 1);
    assert_eq!(count(&s, "to_legacy", "slurm_2050", "legacy_2025"), 1);

    // An unsigned legacy frame of another type would need minting: passed untouched, counted.
    let other = capture_frames("legacy_federation_codecs.hex.txt")[2]
        .1
        .clone(); // 2034, no auth
    let r = exchange_from(legacy, p, &other).await;
    assert!(
        r.is_empty(),
        "slurmctld drops an unauthenticated frame without reply"
    );
    assert_eq!(
        s.metrics
            .passthrough
            .with_label_values(&["flurm-in", "unsigned_other_type"])
            .get(),
        1
    );
    // The genuine Slurm 2024 (captured, expired credential) from the legacy address: untouched.
    let collision = capture_frames("legacy_reservation_collision.hex.txt")[0]
        .1
        .clone();
    let _ = exchange_from(legacy, p, &collision).await;
    assert_eq!(
        s.metrics
            .passthrough
            .with_label_values(&["flurm-in", "slurm_2024"])
            .get(),
        1
    );
    assert_eq!(
        count(&s, "from_legacy", "legacy_2024", "slurm_2049"),
        1,
        "still only the one translation"
    );
}

/// The daemon itself (`fedproxy run`): a `[[route]]` to the legacy controller and
/// a `[[peer]]` declaring it legacy-flurm; scontrol through it; /metrics shows
/// the translations.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fedproxy_run_translates_for_a_configured_legacy_peer() {
    let m = Munged::start();
    let emu = legacy_emulator(EmulatorMode::Populated, Some(m.client())).await;
    let cfg = fedproxy::run::Config::from_toml(&format!(
        "[admin]\nlisten = \"127.0.0.1:0\"\n[[route]]\nlisten = \"127.0.0.1:0\"\nupstream = \"{up}\"\nname = \"to-flurm\"\n\
         [legacy]\nmunge_socket = \"{sock}\"\nfed_ids = {{ alpha = 2 }}\n\
         [[peer]]\nname = \"flurm\"\nmatch = \"{ip}\"\ndialect = \"legacy-flurm\"\nfed_id = 1\n",
        up = emu.addr,
        ip = emu.addr.ip(),
        sock = m.socket.display()
    ))
    .unwrap();
    let proxy = fedproxy::run::Proxy::start(cfg).await.unwrap();
    let addr = proxy.listener_addr("to-flurm").unwrap();
    let (rc, out, err) = scontrol_async(&m, addr.port(), &["show", "federation"]).await;
    assert_eq!(rc, 0, "{err}");
    assert!(
        out.contains("Self:       legacy:flurm-head:6817 ID:1 FedState:ACTIVE"),
        "{out}"
    );
    let text = proxy.metrics().render();
    assert!(
        text.contains(r#"fedproxy_legacy_translations_total{direction="from_legacy",from="legacy_2025",to="slurm_2050"} 1"#),
        "{text}"
    );
    assert!(text.contains(r#"fedproxy_legacy_credentials_minted_total{msg_type="2050"} 1"#));
    proxy.start_drain();
    proxy.shutdown().await;
}

/// `fedproxy_messages_total{direction,msg_type}` summed over `conn_kind`.
fn messages(m: &fedproxy::run::Metrics, dir: &str, msg_type: &str) -> u64 {
    [
        "unknown",
        "oneshot",
        "fed_persist",
        "dbd_persist",
        "other_persist",
        "http",
    ]
    .iter()
    .map(|k| m.messages.with_label_values(&[dir, msg_type, k]).get())
    .sum()
}

/// The sum of a metric family's samples whose line starts with `prefix`.
fn sum(text: &str, prefix: &str) -> u64 {
    text.lines()
        .filter(|l| l.starts_with(prefix))
        .map(|l| l.rsplit(' ').next().unwrap().parse::<u64>().unwrap())
        .sum()
}

/// Waits (at most 5 s) until `listener` has closed `n` legacy connections: the
/// proxy finishes a connection just after the client has read its end.
async fn legacy_closed(m: &fedproxy::run::Metrics, listener: &str, n: u64) -> u64 {
    let c = m
        .connections_closed
        .with_label_values(&[listener, "legacy"]);
    for _ in 0..100 {
        if c.get() >= n {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    c.get()
}

/// Legacy connections feed the daemon's observer with their Slurm side: message
/// metrics, RPC durations and decode errors count them like any other connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fedproxy_run_counts_messages_and_decode_errors_on_connections_to_a_legacy_peer() {
    let m = Munged::start();
    let emu = legacy_emulator(EmulatorMode::Zero, Some(m.client())).await;
    let cfg = fedproxy::run::Config::from_toml(&format!(
        "[admin]\nlisten = \"127.0.0.1:0\"\n[[route]]\nlisten = \"127.0.0.1:0\"\nupstream = \"{up}\"\nname = \"to-flurm\"\n\
         [legacy]\nmunge_socket = \"{sock}\"\n\
         [[peer]]\nname = \"flurm\"\nmatch = \"{ip}\"\ndialect = \"legacy-flurm\"\n",
        up = emu.addr,
        ip = emu.addr.ip(),
        sock = m.socket.display()
    ))
    .unwrap();
    let proxy = fedproxy::run::Proxy::start(cfg).await.unwrap();
    let addr = proxy.listener_addr("to-flurm").unwrap();

    // 2049 translated to legacy 2024 and its 2025 back to 2050: counted as scontrol
    // sent and received them (REQUEST/RESPONSE_FED_INFO), not by the legacy numbers.
    let (rc, _, err) = scontrol_async(&m, addr.port(), &["show", "federation"]).await;
    assert_eq!(rc, 0, "{err}");
    // Slurm's own 2024/2025 (the collision case, untranslated).
    let (rc, _, err) = scontrol_async(&m, addr.port(), &["show", "reservation"]).await;
    assert_eq!(rc, 0, "{err}");
    // A frame whose header does not decode: relayed, counted as a decode error.
    let mut garbage = vec![0, 0, 0, 16];
    garbage.extend_from_slice(&[0xff; 16]);
    let _ = exchange(addr, &garbage).await;
    // An HTTP probe: counted once, as the legacy relay's (with the peer's name).
    let _ = exchange(addr, b"GET /api/v1/health HTTP/1.1\r\nHost: flurm\r\n\r\n").await;

    let mx = proxy.metrics();
    assert_eq!(legacy_closed(mx, "to-flurm", 4).await, 4);
    let text = mx.render();
    assert_eq!(messages(mx, "c2s", "REQUEST_FED_INFO"), 1, "{text}");
    assert_eq!(messages(mx, "s2c", "RESPONSE_FED_INFO"), 1, "{text}");
    assert_eq!(messages(mx, "c2s", "REQUEST_RESERVATION_INFO"), 1, "{text}");
    assert_eq!(
        messages(mx, "s2c", "RESPONSE_RESERVATION_INFO"),
        1,
        "{text}"
    );
    assert!(
        text.contains(r#"fedproxy_rpc_duration_seconds_count{msg_type="REQUEST_FED_INFO"} 1"#),
        "{text}"
    );
    assert_eq!(
        sum(&text, r#"fedproxy_decode_errors_total{direction="c2s""#),
        1,
        "{text}"
    );
    assert_eq!(
        sum(&text, r#"fedproxy_decode_errors_total{direction="s2c""#),
        0,
        "{text}"
    );
    assert_eq!(
        sum(&text, "fedproxy_legacy_http_probes_total{"),
        1,
        "{text}"
    );
    assert!(
        text.contains(r#"fedproxy_legacy_http_probes_total{path="/api/v1/health",peer="flurm"} 1"#),
        "{text}"
    );
    assert!(text.contains(r#"fedproxy_legacy_translations_total{direction="from_legacy",from="legacy_2025",to="slurm_2050"} 1"#));
    proxy.start_drain();
    proxy.shutdown().await;
}

/// A legacy peer calling a real slurmctld: the observer counts the 2049 fedproxy
/// minted and slurmctld's 2050 — never the legacy 2024 as Slurm's
/// REQUEST_RESERVATION_INFO.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fedproxy_run_counts_the_slurm_side_of_a_legacy_peer_calling_in() {
    let m = Munged::start();
    let ctld = tokio::task::block_in_place(|| Slurmctld::start(&m));
    let cfg = fedproxy::run::Config::from_toml(&format!(
        "[admin]\nlisten = \"127.0.0.1:0\"\n[[route]]\nlisten = \"127.0.0.1:0\"\nupstream = \"{up}\"\nname = \"from-flurm\"\n\
         [legacy]\nmunge_socket = \"{sock}\"\nlocal_cluster = \"real\"\n\
         [[peer]]\nname = \"flurm-in\"\nmatch = \"127.0.0.2/32\"\ndialect = \"legacy-flurm\"\n",
        up = ctld.addr(),
        sock = m.socket.display()
    ))
    .unwrap();
    let proxy = fedproxy::run::Proxy::start(cfg).await.unwrap();
    let addr = proxy.listener_addr("from-flurm").unwrap();
    let req = capture_frames("legacy_fedinfo_populated.hex.txt")[0]
        .1
        .clone();
    let reply = exchange_from(std::net::IpAddr::from([127, 0, 0, 2]), addr, &req).await;
    let f = Frame::decode(Bytes::from(reply), Framing::Normal)
        .unwrap_or_else(|e| panic!("{e}: {}", ctld.log()));
    assert_eq!(f.msg_type(), MsgType(2025));

    let mx = proxy.metrics();
    assert_eq!(legacy_closed(mx, "from-flurm", 1).await, 1);
    let text = mx.render();
    assert_eq!(messages(mx, "c2s", "REQUEST_FED_INFO"), 1, "{text}");
    assert_eq!(messages(mx, "s2c", "RESPONSE_FED_INFO"), 1, "{text}");
    assert_eq!(messages(mx, "c2s", "REQUEST_RESERVATION_INFO"), 0, "{text}");
    assert_eq!(
        messages(mx, "s2c", "RESPONSE_RESERVATION_INFO"),
        0,
        "{text}"
    );
    assert_eq!(sum(&text, "fedproxy_decode_errors_total{"), 0, "{text}");
    proxy.start_drain();
    proxy.shutdown().await;
}

/// One relay for legacy connections too: a Slurm client that stops reading stalls
/// only the legacy peer → client direction; its own frames still reach the peer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_reader_on_a_legacy_connection_does_not_stall_the_other_direction() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let m = Munged::start();
    let peer = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let s = shared(m.client(), &legacy_upstream_config());
    let p = proxy(s, peer.local_addr().unwrap()).await;
    let mut client = tokio::net::TcpStream::connect(p).await.unwrap();
    let (upstream, _) = peer.accept().await.unwrap();
    let (mut from_proxy, mut to_proxy) = upstream.into_split();

    // Frames the translator cannot decode: forwarded frame by frame, unchanged.
    let mut frame = 4092u32.to_be_bytes().to_vec();
    frame.resize(4096, 0xab);
    const FLOOD: usize = 64 << 20;
    let flooded = Arc::new(AtomicUsize::new(0));
    let flood = {
        let (frame, flooded) = (frame.clone(), flooded.clone());
        tokio::spawn(async move {
            while flooded.load(Ordering::Relaxed) < FLOOD {
                if to_proxy.write_all(&frame).await.is_err() {
                    return;
                }
                flooded.fetch_add(frame.len(), Ordering::Relaxed);
            }
        })
    };
    // The client never reads: once the socket buffers are full the flood stops.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let stalled_at = flooded.load(Ordering::Relaxed);
    assert!(
        stalled_at < FLOOD,
        "the peer → client direction did not stall"
    );

    const SENT: usize = 1 << 20;
    let sender = tokio::spawn(async move {
        for _ in 0..SENT / frame.len() {
            client.write_all(&frame).await.unwrap();
        }
        client // kept open (and unread) until the end
    });
    let mut got = vec![0u8; SENT];
    tokio::time::timeout(
        std::time::Duration::from_secs(10),
        from_proxy.read_exact(&mut got),
    )
    .await
    .expect("client → peer frames were held up by the stalled direction")
    .unwrap();
    assert!(got
        .chunks(4096)
        .all(|f| f[..4] == 4092u32.to_be_bytes()[..] && f[4..].iter().all(|&b| b == 0xab)));
    assert!(flooded.load(Ordering::Relaxed) < FLOOD);
    drop(sender.await.unwrap());
    flood.abort();
}
