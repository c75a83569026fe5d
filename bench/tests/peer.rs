//! The synthetic peer answers captured requests with the captured replies,
//! byte-exact, over loopback; and the client workloads run against it.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use bytes::Bytes;
use fedproxy_bench::client;
use fedproxy_bench::frames::{default_capture_dir, Frames};
use fedproxy_bench::peer::{answers, read_frame, Peer};
use slurm_codec::frame::{Frame, Framing};
use slurm_codec::MsgType;

fn setup(hold: bool) -> (Frames, Peer) {
    let f = Frames::load(&default_capture_dir()).unwrap();
    let p = Peer::start(
        "127.0.0.1:0".parse().unwrap(),
        answers(&f.rpc, &f.persist_init, &f.persist_msgs),
        4,
        hold,
    )
    .unwrap();
    (f, p)
}

#[test]
fn frames_from_the_captures() {
    let f = Frames::load(&default_capture_dir()).unwrap();
    assert_eq!((f.rpc.request.len(), f.rpc.reply.len()), (216, 767));
    let ty = |b: &[u8]| {
        Frame::decode(Bytes::copy_from_slice(b), Framing::Normal)
            .unwrap()
            .msg_type()
    };
    assert_eq!(ty(&f.rpc.request), MsgType::REQUEST_FED_INFO);
    assert_eq!(ty(&f.rpc.reply), MsgType::RESPONSE_FED_INFO);
    assert_eq!(ty(&f.persist_init.request), MsgType::REQUEST_PERSIST_INIT);
    assert!(!f.persist_msgs.is_empty());
    assert!(
        f.persist_msgs.iter().any(|e| e.request.len() > 2000),
        "the FED_JOB_SUBMIT_BATCH SIB_MSG"
    );
}

#[test]
fn oneshot_reply_is_the_captured_one_and_the_peer_closes() {
    let (f, p) = setup(false);
    let mut s = TcpStream::connect(p.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    // Written in pieces, as Slurm does (3-4 send()s per message).
    for chunk in f.rpc.request.chunks(50) {
        s.write_all(chunk).unwrap();
    }
    let mut got = Vec::new();
    s.read_to_end(&mut got).unwrap(); // EOF: the peer closed after its reply
    assert_eq!(got, f.rpc.reply);
    assert_eq!(
        p.stats.replies.load(std::sync::atomic::Ordering::Relaxed),
        1
    );
}

#[test]
fn persistent_connection_answers_every_captured_frame() {
    let (f, p) = setup(false);
    let mut s = client::open_persist(p.addr, &f).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut buf = Vec::new();
    for e in f.persist_msgs.iter().chain(f.persist_msgs.iter()) {
        s.write_all(&e.request).unwrap();
        assert!(read_frame(&mut s, &mut buf).unwrap());
        assert_eq!(buf, e.reply);
    }
    // An unknown frame closes the connection.
    s.write_all(&[0, 0, 0, 2, 0xde, 0xad]).unwrap();
    assert!(!read_frame(&mut s, &mut buf).unwrap());
}

#[test]
fn workloads_run_short() {
    let (f, p) = setup(false);
    let d = Duration::from_millis(100);
    let t = client::oneshot_trial(p.addr, &f.rpc, 4, d);
    assert!(
        t.ops() > 0 && t.errors == 0,
        "{} ops {} errors",
        t.ops(),
        t.errors
    );
    let t = client::pingpong_trial(p.addr, &f, d).unwrap();
    assert!(t.ops() > 0);
    let t = client::pipelined_trial(p.addr, &f, 16, d).unwrap();
    assert!(t.ops() > 0);
}

#[test]
fn hold_mode_parks_idle_connections() {
    let (f, p) = setup(true);
    let conns = client::open_idle(p.addr, &f, 50).unwrap();
    let t = std::time::Instant::now();
    while p.held() < 50 && t.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(p.held(), 50);
    drop(conns);
    p.release_held();
    assert_eq!(p.held(), 0);
}
