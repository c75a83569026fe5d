//! Capture reader tests: synthetic pcap/pcapng files written here (packets
//! from etherparse's PacketBuilder), then the real captures under `captures/`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use etherparse::PacketBuilder;
use slurm_codec::Direction::{self, ClientToServer as C2S, ServerToClient as S2C};
use tcpflow::{
    parse_capture, read_capture, Capture, CaptureError, CaptureFormat, Gap, TcpConnection,
};

// ---------------------------------------------------------------- packets

/// One TCP packet as raw IP bytes. `flags`: S=SYN A=ACK F=FIN R=RST.
fn tcp(src: &str, dst: &str, seq: u32, ack: u32, flags: &str, payload: &[u8]) -> Vec<u8> {
    let src: SocketAddr = src.parse().unwrap();
    let dst: SocketAddr = dst.parse().unwrap();
    let ip = match (src, dst) {
        (SocketAddr::V4(s), SocketAddr::V4(d)) => {
            PacketBuilder::ipv4(s.ip().octets(), d.ip().octets(), 64)
        }
        (SocketAddr::V6(s), SocketAddr::V6(d)) => {
            PacketBuilder::ipv6(s.ip().octets(), d.ip().octets(), 64)
        }
        _ => panic!("mixed address families"),
    };
    let mut b = ip.tcp(src.port(), dst.port(), seq, 65535);
    if flags.contains('S') {
        b = b.syn();
    }
    if flags.contains('A') {
        b = b.ack(ack);
    }
    if flags.contains('F') {
        b = b.fin();
    }
    if flags.contains('R') {
        b = b.rst();
    }
    let mut out = Vec::new();
    b.write(&mut out, payload).unwrap();
    out
}

fn is_v6(ip: &[u8]) -> bool {
    ip[0] >> 4 == 6
}

/// Wrap a raw IP packet in the link header of `linktype`.
fn link(linktype: u32, ip: &[u8]) -> Vec<u8> {
    let ethertype: [u8; 2] = if is_v6(ip) {
        [0x86, 0xdd]
    } else {
        [0x08, 0x00]
    };
    let mut out = Vec::new();
    match linktype {
        1 => {
            out.extend_from_slice(&[2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2]);
            out.extend_from_slice(&ethertype);
        }
        113 => {
            // packet type 0 (to us), ARPHRD_ETHER, 6-byte address, padded to 8.
            out.extend_from_slice(&[0, 0, 0, 1, 0, 6, 2, 0, 0, 0, 0, 1, 0, 0]);
            out.extend_from_slice(&ethertype);
        }
        276 => {
            out.extend_from_slice(&ethertype);
            out.extend_from_slice(&[0, 0, 0, 0, 0, 3, 0, 1, 0, 6, 2, 0, 0, 0, 0, 1, 0, 0]);
        }
        0 => {
            // Host byte order (little-endian host); IPv6 as Darwin's 30.
            let fam: u32 = if is_v6(ip) { 30 } else { 2 };
            out.extend_from_slice(&fam.to_le_bytes());
        }
        108 => {
            let fam: u32 = if is_v6(ip) { 24 } else { 2 };
            out.extend_from_slice(&fam.to_be_bytes());
        }
        12 | 14 | 101 | 228 | 229 => {}
        _ => panic!("no wrapper for {linktype}"),
    }
    out.extend_from_slice(ip);
    out
}

/// Ethernet with one 802.1Q tag.
fn ethernet_vlan(ip: &[u8]) -> Vec<u8> {
    let mut out = vec![2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2, 0x81, 0x00, 0x00, 0x2a];
    out.extend_from_slice(if is_v6(ip) {
        &[0x86, 0xdd]
    } else {
        &[0x08, 0x00]
    });
    out.extend_from_slice(ip);
    out
}

// ---------------------------------------------------------------- writers

/// Timestamp as (seconds, nanoseconds).
#[derive(Clone, Copy)]
struct Ts(u32, u32);

impl Ts {
    fn f64(self) -> f64 {
        self.0 as f64 + self.1 as f64 / 1e9
    }
}

/// Packet `i` of a test: 1.7e9 s + i quarter seconds (exact in f64).
fn ts(i: usize) -> Ts {
    Ts(1_700_000_000 + (i / 4) as u32, (i % 4) as u32 * 250_000_000)
}

fn put32(out: &mut Vec<u8>, be: bool, v: u32) {
    out.extend_from_slice(&if be { v.to_be_bytes() } else { v.to_le_bytes() });
}

fn put16(out: &mut Vec<u8>, be: bool, v: u16) {
    out.extend_from_slice(&if be { v.to_be_bytes() } else { v.to_le_bytes() });
}

/// Classic pcap. Each record: (ts, captured bytes, original length).
fn pcap_records(be: bool, nanos: bool, linktype: u32, recs: &[(Ts, Vec<u8>, u32)]) -> Vec<u8> {
    let mut out = Vec::new();
    put32(&mut out, be, if nanos { 0xa1b2_3c4d } else { 0xa1b2_c3d4 });
    put16(&mut out, be, 2);
    put16(&mut out, be, 4);
    put32(&mut out, be, 0);
    put32(&mut out, be, 0);
    put32(&mut out, be, 262_144);
    put32(&mut out, be, linktype);
    for (t, data, orig) in recs {
        put32(&mut out, be, t.0);
        put32(&mut out, be, if nanos { t.1 } else { t.1 / 1000 });
        put32(&mut out, be, data.len() as u32);
        put32(&mut out, be, *orig);
        out.extend_from_slice(data);
    }
    out
}

/// Classic pcap of IP packets wrapped for `linktype`, packet i at `ts(i)`.
fn pcap(be: bool, nanos: bool, linktype: u32, ips: &[Vec<u8>]) -> Vec<u8> {
    let recs: Vec<_> = ips
        .iter()
        .enumerate()
        .map(|(i, ip)| {
            let d = link(linktype, ip);
            let n = d.len() as u32;
            (ts(i), d, n)
        })
        .collect();
    pcap_records(be, nanos, linktype, &recs)
}

/// pcapng writer, one section at a time.
struct PcapNg {
    out: Vec<u8>,
    be: bool,
}

impl PcapNg {
    fn new() -> Self {
        PcapNg {
            out: Vec::new(),
            be: false,
        }
    }

    fn block(&mut self, kind: u32, body: &[u8]) {
        let mut body = body.to_vec();
        while body.len() % 4 != 0 {
            body.push(0);
        }
        let len = 12 + body.len() as u32;
        let be = self.be;
        put32(&mut self.out, be, kind);
        put32(&mut self.out, be, len);
        self.out.extend_from_slice(&body);
        put32(&mut self.out, be, len);
    }

    fn section(&mut self, be: bool) {
        self.be = be;
        let mut b = Vec::new();
        put32(&mut b, be, 0x1a2b_3c4d);
        put16(&mut b, be, 1);
        put16(&mut b, be, 0);
        b.extend_from_slice(&[0xff; 8]); // section length unknown
        self.block(0x0a0d_0d0a, &b);
    }

    fn interface(&mut self, linktype: u16, tsresol: Option<u8>, tsoffset: Option<i64>) {
        let be = self.be;
        let mut b = Vec::new();
        put16(&mut b, be, linktype);
        put16(&mut b, be, 0);
        put32(&mut b, be, 0);
        if let Some(r) = tsresol {
            put16(&mut b, be, 9);
            put16(&mut b, be, 1);
            b.extend_from_slice(&[r, 0, 0, 0]);
        }
        if let Some(o) = tsoffset {
            put16(&mut b, be, 14);
            put16(&mut b, be, 8);
            b.extend_from_slice(&if be { o.to_be_bytes() } else { o.to_le_bytes() });
        }
        put16(&mut b, be, 0);
        put16(&mut b, be, 0);
        self.block(1, &b);
    }

    /// Enhanced Packet Block with a raw timestamp in the interface's units.
    fn epb(&mut self, if_id: u32, units: u64, data: &[u8]) {
        let be = self.be;
        let mut b = Vec::new();
        put32(&mut b, be, if_id);
        put32(&mut b, be, (units >> 32) as u32);
        put32(&mut b, be, units as u32);
        put32(&mut b, be, data.len() as u32);
        put32(&mut b, be, data.len() as u32);
        b.extend_from_slice(data);
        self.block(6, &b);
    }

    fn spb(&mut self, data: &[u8]) {
        let be = self.be;
        let mut b = Vec::new();
        put32(&mut b, be, data.len() as u32);
        b.extend_from_slice(data);
        self.block(3, &b);
    }
}

// ---------------------------------------------------------------- checks

fn segs(c: &TcpConnection) -> Vec<(Direction, String)> {
    c.segments
        .iter()
        .map(|s| (s.dir, String::from_utf8_lossy(&s.data).into_owned()))
        .collect()
}

fn seg(dir: Direction, s: &str) -> (Direction, String) {
    (dir, s.to_string())
}

fn streams(c: &TcpConnection) -> (String, String) {
    (
        String::from_utf8(c.stream(C2S)).unwrap(),
        String::from_utf8(c.stream(S2C)).unwrap(),
    )
}

fn only(cap: &Capture) -> &TcpConnection {
    assert_eq!(cap.connections.len(), 1, "{:#?}", cap.connections);
    &cap.connections[0]
}

/// Handshake, a request in two segments, a reply, FIN both ways (9 packets).
fn conversation(c: &str, s: &str) -> Vec<Vec<u8>> {
    vec![
        tcp(c, s, 1000, 0, "S", b""),
        tcp(s, c, 5000, 1001, "SA", b""),
        tcp(c, s, 1001, 5001, "A", b""),
        tcp(c, s, 1001, 5001, "A", b"hel"),
        tcp(c, s, 1004, 5001, "A", b"lo"),
        tcp(s, c, 5001, 1006, "A", b"world!"),
        tcp(c, s, 1006, 5007, "FA", b""),
        tcp(s, c, 5007, 1007, "FA", b""),
        tcp(c, s, 1007, 5008, "A", b""),
    ]
}

fn check_conversation(cap: &Capture, c: &str, s: &str, what: &str) {
    let k = only(cap);
    assert_eq!(k.id, 1);
    assert_eq!(k.client, c.parse::<SocketAddr>().unwrap(), "{what}");
    assert_eq!(k.server, s.parse::<SocketAddr>().unwrap(), "{what}");
    assert!(k.saw_syn);
    assert_eq!(
        segs(k),
        vec![seg(C2S, "hel"), seg(C2S, "lo"), seg(S2C, "world!")],
        "{what}"
    );
    let t: Vec<f64> = k.segments.iter().map(|s| s.ts).collect();
    for (got, i) in t.iter().zip([3, 4, 5]) {
        assert!(
            (got - ts(i).f64()).abs() < 1e-6,
            "{what}: ts {got} vs packet {i}"
        );
    }
    assert!((k.first_ts - ts(0).f64()).abs() < 1e-6);
    assert!((k.last_ts - ts(8).f64()).abs() < 1e-6);
    assert_eq!((k.client_side.bytes, k.server_side.bytes), (5, 6));
    assert!(k.client_side.saw_fin && k.server_side.saw_fin);
    assert!(!k.client_side.saw_rst && !k.server_side.saw_rst);
    assert_eq!(k.missing_bytes(), 0);
    assert!(k.gaps.is_empty());
    assert_eq!(cap.stats.packets, 9);
    assert_eq!(cap.stats.tcp_packets, 9);
}

const C4: &str = "10.0.0.1:40000";
const S4: &str = "10.0.0.2:6817";
const C6: &str = "[fd00::1]:40000";
const S6: &str = "[fd00::2]:6817";

fn eth(ips: &[Vec<u8>]) -> Capture {
    parse_capture(&pcap(false, false, 1, ips)).unwrap()
}

// ---------------------------------------------------------------- formats and link types

#[test]
fn every_link_type_ipv4_and_ipv6() {
    for lt in [1u32, 113, 276, 0, 108, 101, 12, 14, 228, 229] {
        for (c, s) in [(C4, S4), (C6, S6)] {
            let v6 = c.starts_with('[');
            if (lt == 228 && v6) || (lt == 229 && !v6) {
                continue;
            }
            let cap = parse_capture(&pcap(false, false, lt, &conversation(c, s))).unwrap();
            assert_eq!(cap.format, CaptureFormat::Pcap);
            check_conversation(&cap, c, s, &format!("linktype {lt} {c}"));
        }
    }
}

#[test]
fn null_link_type_accepts_every_ipv6_family_and_byte_order() {
    for fam in [24u32, 28, 30] {
        for be in [false, true] {
            let recs: Vec<_> = conversation(C6, S6)
                .iter()
                .enumerate()
                .map(|(i, ip)| {
                    let mut d = if be {
                        fam.to_be_bytes()
                    } else {
                        fam.to_le_bytes()
                    }
                    .to_vec();
                    d.extend_from_slice(ip);
                    let n = d.len() as u32;
                    (ts(i), d, n)
                })
                .collect();
            let cap = parse_capture(&pcap_records(false, false, 0, &recs)).unwrap();
            check_conversation(&cap, C6, S6, &format!("NULL family {fam} be={be}"));
        }
    }
}

#[test]
fn vlan_tagged_ethernet() {
    let recs: Vec<_> = conversation(C4, S4)
        .iter()
        .enumerate()
        .map(|(i, ip)| {
            let d = ethernet_vlan(ip);
            let n = d.len() as u32;
            (ts(i), d, n)
        })
        .collect();
    let cap = parse_capture(&pcap_records(false, false, 1, &recs)).unwrap();
    check_conversation(&cap, C4, S4, "vlan");
}

#[test]
fn pcap_both_byte_orders_and_resolutions() {
    for be in [false, true] {
        for nanos in [false, true] {
            // Non-binary fractions so the resolution matters.
            let recs: Vec<_> = conversation(C4, S4)
                .iter()
                .enumerate()
                .map(|(i, ip)| {
                    let d = link(1, ip);
                    let n = d.len() as u32;
                    (Ts(1_600_000_000 + i as u32, 123_456_789), d, n)
                })
                .collect();
            let cap = parse_capture(&pcap_records(be, nanos, 1, &recs)).unwrap();
            let k = only(&cap);
            assert_eq!(
                segs(k),
                vec![seg(C2S, "hel"), seg(C2S, "lo"), seg(S2C, "world!")]
            );
            let want = if nanos {
                1_600_000_003.0 + 0.123_456_789
            } else {
                1_600_000_003.123_456
            };
            let got = k.segments[0].ts;
            assert!(
                (got - want).abs() < 5e-7,
                "be={be} nanos={nanos}: {got} vs {want}"
            );
            // µs files must not carry the nanosecond digits.
            if !nanos {
                assert!((got - (1_600_000_003.0 + 0.123_456_789)).abs() > 5e-7);
            }
        }
    }
}

#[test]
fn pcapng_interfaces_with_own_link_type_and_resolution() {
    let a = conversation(C4, S4); // on interface 0: Ethernet, µs (default)
    let b = conversation("10.9.0.1:50000", "10.9.0.2:7817"); // interface 1: raw IP, ns, offset
    let c = conversation(C6, S6); // second, big-endian section: SLL2, 2^-20 s
    let mut ng = PcapNg::new();
    ng.section(false);
    ng.interface(1, None, None);
    ng.interface(101, Some(9), Some(1000));
    ng.block(0x0000_0bad, &[1, 2, 3, 4]); // unknown block type: skipped
    for i in 0..9 {
        let us = 1_700_000_000_000_000u64 + i as u64 * 1_000_000;
        if i == 4 {
            ng.spb(&link(1, &a[i]));
        } else {
            ng.epb(0, us, &link(1, &a[i]));
        }
        let ns = 1_700_000_000_000_000_000u64 + i as u64 * 1_000_000_000 + 500_000_000;
        ng.epb(1, ns, &b[i]);
    }
    ng.section(true);
    ng.interface(276, Some(0x80 | 20), None);
    for (i, ip) in c.iter().enumerate() {
        let units = (1_800_000_000u64 + i as u64) << 20 | (1 << 18); // + 0.25 s
        ng.epb(0, units, &link(276, ip));
    }
    let cap = parse_capture(&ng.out).unwrap();
    assert_eq!(cap.format, CaptureFormat::PcapNg);
    assert_eq!(cap.connections.len(), 3);
    assert_eq!(cap.stats.packets, 27);
    assert_eq!(cap.stats.other_blocks, 1);
    for (k, (cl, sv)) in
        cap.connections
            .iter()
            .zip([(C4, S4), ("10.9.0.1:50000", "10.9.0.2:7817"), (C6, S6)])
    {
        assert_eq!(k.client, cl.parse::<SocketAddr>().unwrap());
        assert_eq!(k.server, sv.parse::<SocketAddr>().unwrap());
        assert_eq!(
            segs(k),
            vec![seg(C2S, "hel"), seg(C2S, "lo"), seg(S2C, "world!")]
        );
    }
    let t = |k: usize, s: usize| cap.connections[k].segments[s].ts;
    assert_eq!(t(0, 0), 1_700_000_003.0);
    // An SPB has no time of its own: it takes that of the packet before it in
    // the file (here interface 1's packet 3).
    assert_eq!(t(0, 1), 1_700_001_003.5);
    assert_eq!(t(0, 2), 1_700_000_005.0);
    assert_eq!(t(1, 0), 1_700_001_003.5, "ns resolution plus if_tsoffset");
    assert_eq!(
        t(2, 0),
        1_800_000_003.25,
        "binary resolution in a big-endian section"
    );
}

#[test]
fn format_is_detected_by_magic_and_bad_input_is_an_error() {
    assert!(matches!(
        parse_capture(b""),
        Err(CaptureError::TooShort { len: 0 })
    ));
    assert!(matches!(
        parse_capture(b"\xd4\xc3"),
        Err(CaptureError::TooShort { .. })
    ));
    let e = parse_capture(b"GET / HTTP/1.1\r\n\r\n").unwrap_err();
    assert!(matches!(e, CaptureError::BadMagic { magic } if &magic == b"GET "));
    assert!(e.to_string().contains("47455420"), "{e}");
    // A pcap header cut short is reported, not a panic.
    assert!(parse_capture(&pcap(false, false, 1, &[])[..20]).is_err());
    // Header only: a valid, empty capture.
    let empty = parse_capture(&pcap(true, true, 1, &[])).unwrap();
    assert!(empty.connections.is_empty());
    let e = read_capture(Path::new("/nonexistent/x.pcap")).unwrap_err();
    assert!(matches!(e, CaptureError::Io { .. }), "{e}");
}

#[test]
fn truncated_final_record_is_tolerated_and_counted() {
    let file = pcap(false, false, 1, &conversation(C4, S4));
    let cut = parse_capture(&file[..file.len() - 10]).unwrap();
    assert_eq!(cut.stats.truncated_records, 1);
    assert_eq!(cut.stats.packets, 8);
    assert_eq!(streams(only(&cut)), ("hello".into(), "world!".into()));

    let mut ng = PcapNg::new();
    ng.section(false);
    ng.interface(1, None, None);
    for ip in conversation(C4, S4) {
        ng.epb(0, 0, &link(1, &ip));
    }
    let cut = parse_capture(&ng.out[..ng.out.len() - 3]).unwrap();
    assert_eq!((cut.stats.truncated_records, cut.stats.packets), (1, 8));
}

#[test]
fn malformed_pcapng_block_reports_offset_and_record() {
    let mut ng = PcapNg::new();
    ng.section(false);
    ng.interface(1, None, None);
    let conv = conversation(C4, S4);
    ng.epb(0, 0, &link(1, &conv[0]));
    let bad_at = ng.out.len();
    ng.epb(0, 0, &link(1, &conv[1]));
    ng.epb(0, 0, &link(1, &conv[2]));
    // Break the trailing length of the 4th block.
    let len = u32::from_le_bytes(ng.out[bad_at + 4..bad_at + 8].try_into().unwrap()) as usize;
    ng.out[bad_at + len - 4] ^= 0x40;
    match parse_capture(&ng.out) {
        Err(CaptureError::Malformed { offset, record, .. }) => {
            assert_eq!((offset, record), (bad_at, 4));
        }
        other => panic!("{other:?}"),
    }
    // A packet naming an interface that was never described is counted.
    let mut ng = PcapNg::new();
    ng.section(false);
    ng.interface(1, None, None);
    ng.epb(3, 0, &link(1, &conv[0]));
    let cap = parse_capture(&ng.out).unwrap();
    assert_eq!((cap.stats.packets, cap.stats.malformed), (1, 1));
}

#[test]
fn non_tcp_fragments_and_unknown_link_types_are_counted() {
    let mut udp = Vec::new();
    PacketBuilder::ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
        .udp(53, 53)
        .write(&mut udp, b"dns")
        .unwrap();
    let mut frag = tcp(C4, S4, 1, 0, "A", b"fragment");
    frag[6] |= 0x20; // IPv4 "more fragments"
    let mut ips = conversation(C4, S4);
    ips.insert(3, udp);
    ips.insert(4, frag);
    let cap = eth(&ips);
    assert_eq!(cap.stats.skipped_non_tcp, 1);
    assert_eq!(cap.stats.skipped_fragments, 1);
    assert_eq!(cap.stats.tcp_packets, 9);
    assert_eq!(streams(only(&cap)), ("hello".into(), "world!".into()));

    let cap = parse_capture(&pcap_records(
        false,
        false,
        147,
        &[(ts(0), vec![1, 2, 3], 3)],
    ))
    .unwrap();
    assert_eq!(cap.stats.unsupported_linktype, 1);
    assert!(cap.connections.is_empty());
}

#[test]
fn snaplen_cut_packet_shows_as_missing_bytes() {
    let conv = conversation(C4, S4);
    let recs: Vec<_> = conv
        .iter()
        .enumerate()
        .map(|(i, ip)| {
            let d = link(1, ip);
            let n = d.len() as u32;
            // Packet 3 ("hel") captured without its last byte.
            let d = if i == 3 { d[..d.len() - 1].to_vec() } else { d };
            (ts(i), d, n)
        })
        .collect();
    let cap = parse_capture(&pcap_records(false, false, 1, &recs)).unwrap();
    assert_eq!(cap.stats.snaplen_truncated, 1);
    let k = only(&cap);
    assert_eq!(streams(k), ("helo".into(), "world!".into()));
    assert_eq!(k.client_side.missing_bytes, 1);
    // The server's ACK of 1006 proves the byte was sent: the hole is closed there.
    assert_eq!(
        k.gaps,
        vec![Gap {
            dir: C2S,
            offset: 2,
            len: 1,
            before_segment: 1
        }]
    );
    assert_eq!(
        segs(k),
        vec![seg(C2S, "he"), seg(C2S, "lo"), seg(S2C, "world!")]
    );
}

// ---------------------------------------------------------------- reassembly

fn handshake(c: &str, s: &str, cs: u32, ss: u32) -> Vec<Vec<u8>> {
    vec![
        tcp(c, s, cs, 0, "S", b""),
        tcp(s, c, ss, cs + 1, "SA", b""),
        tcp(c, s, cs + 1, ss + 1, "A", b""),
    ]
}

#[test]
fn out_of_order_segments_are_released_by_the_packet_that_fills_the_gap() {
    let mut p = handshake(C4, S4, 1000, 5000);
    p.push(tcp(C4, S4, 1004, 5001, "A", b"BBB")); // 3
    p.push(tcp(C4, S4, 1007, 5001, "A", b"CCC")); // 4
    p.push(tcp(C4, S4, 1001, 5001, "A", b"AAA")); // 5 fills the hole
    p.push(tcp(S4, C4, 5001, 1010, "A", b"ok")); // 6
    let k = eth(&p).connections.remove(0);
    assert_eq!(segs(&k), vec![seg(C2S, "AAABBBCCC"), seg(S2C, "ok")]);
    assert_eq!(k.segments[0].ts, ts(5).f64());
    assert_eq!(k.segments[1].ts, ts(6).f64());
    assert_eq!(k.missing_bytes(), 0);
}

#[test]
fn retransmissions_and_partial_overlaps_keep_the_first_bytes() {
    let mut p = handshake(C4, S4, 1000, 5000);
    p.push(tcp(C4, S4, 1001, 5001, "A", b"hello"));
    p.push(tcp(C4, S4, 1001, 5001, "A", b"hello")); // exact duplicate
    p.push(tcp(C4, S4, 1004, 5001, "A", b"LOxyz")); // overlaps "lo", adds "xyz"
    p.push(tcp(C4, S4, 1001, 5001, "A", b"h")); // old byte
    p.push(tcp(S4, C4, 5001, 1009, "A", b"ok"));
    p.push(tcp(S4, C4, 5001, 1009, "A", b"o")); // old byte in the other direction
    p.push(tcp(S4, C4, 5002, 1009, "A", b"k!")); // overlap + new
    let k = eth(&p).connections.remove(0);
    assert_eq!(
        segs(&k),
        vec![
            seg(C2S, "hello"),
            seg(C2S, "xyz"),
            seg(S2C, "ok"),
            seg(S2C, "!")
        ]
    );
    assert_eq!(k.client_side.retransmitted_bytes, 5 + 2 + 1);
    assert_eq!(k.server_side.retransmitted_bytes, 2);
    assert_eq!(k.missing_bytes(), 0);
}

#[test]
fn zero_length_segments_syn_and_fin_take_no_data_bytes() {
    let mut p = handshake(C4, S4, 1000, 5000);
    p.push(tcp(C4, S4, 1001, 5001, "A", b""));
    p.push(tcp(C4, S4, 1001, 5001, "A", b"x"));
    p.push(tcp(C4, S4, 1002, 5001, "FA", b"y")); // data and FIN in one segment
    p.push(tcp(S4, C4, 5001, 1004, "A", b"")); // acks the FIN
    p.push(tcp(C4, S4, 1004, 5001, "A", b"")); // after the FIN: one past it
    p.push(tcp(C4, S4, 1003, 5001, "FA", b"")); // FIN retransmitted
    let k = eth(&p).connections.remove(0);
    assert_eq!(segs(&k), vec![seg(C2S, "x"), seg(C2S, "y")]);
    assert_eq!(k.missing_bytes(), 0);
    assert!(k.client_side.saw_fin && !k.server_side.saw_fin);
}

#[test]
fn sequence_numbers_wrap() {
    let isn = u32::MAX - 2;
    let mut p = handshake(C4, S4, isn, 7);
    p.push(tcp(C4, S4, 0, 8, "A", b"cd")); // after the wrap, first
    p.push(tcp(C4, S4, isn.wrapping_add(1), 8, "A", b"ab"));
    p.push(tcp(C4, S4, 2, 8, "A", b"ef"));
    let k = eth(&p).connections.remove(0);
    assert_eq!(segs(&k), vec![seg(C2S, "abcd"), seg(C2S, "ef")]);
}

#[test]
fn a_gap_that_never_fills_is_recorded() {
    // No acknowledgment covers the hole: the bytes after it come out at the end.
    let mut p = handshake(C4, S4, 1000, 5000);
    p.push(tcp(C4, S4, 1001, 5001, "A", b"abc"));
    p.push(tcp(C4, S4, 1007, 5001, "A", b"ghi")); // "def" never captured
    p.push(tcp(S4, C4, 5001, 1004, "A", b"ok"));
    let k = eth(&p).connections.remove(0);
    assert_eq!(
        segs(&k),
        vec![seg(C2S, "abc"), seg(S2C, "ok"), seg(C2S, "ghi")]
    );
    assert_eq!(k.client_side.missing_bytes, 3);
    assert_eq!(
        k.gaps,
        vec![Gap {
            dir: C2S,
            offset: 3,
            len: 3,
            before_segment: 2
        }]
    );
    assert_eq!(k.segments[2].ts, k.last_ts);

    // The peer acknowledges past the hole: it got the bytes, the capture did
    // not, so the wait ends at that acknowledgment.
    let mut p = handshake(C4, S4, 1000, 5000);
    p.push(tcp(C4, S4, 1001, 5001, "A", b"abc"));
    p.push(tcp(C4, S4, 1007, 5001, "A", b"ghi"));
    p.push(tcp(S4, C4, 5001, 1010, "A", b"ok"));
    p.push(tcp(C4, S4, 1010, 5003, "A", b"jk"));
    let k = eth(&p).connections.remove(0);
    assert_eq!(
        segs(&k),
        vec![
            seg(C2S, "abc"),
            seg(C2S, "ghi"),
            seg(S2C, "ok"),
            seg(C2S, "jk")
        ]
    );
    assert_eq!(k.segments[1].ts, ts(5).f64());
    assert_eq!(
        k.gaps,
        vec![Gap {
            dir: C2S,
            offset: 3,
            len: 3,
            before_segment: 1
        }]
    );
    assert_eq!(k.missing_bytes(), 3);

    // Bytes missing at the very end show from the FIN's position.
    let mut p = handshake(C4, S4, 1000, 5000);
    p.push(tcp(C4, S4, 1001, 5001, "A", b"abc"));
    p.push(tcp(C4, S4, 1010, 5001, "FA", b""));
    let k = eth(&p).connections.remove(0);
    assert_eq!(k.client_side.missing_bytes, 6);
    assert_eq!(
        k.gaps,
        vec![Gap {
            dir: C2S,
            offset: 3,
            len: 6,
            before_segment: 1
        }]
    );
}

#[test]
fn capture_starting_mid_connection_orients_provisionally_and_flips() {
    // The server speaks first in the capture; no SYN was seen.
    let p = vec![
        tcp(S4, C4, 7000, 3000, "A", b"resp1"),
        tcp(C4, S4, 3000, 7005, "A", b"req2"),
        tcp(S4, C4, 7005, 3004, "A", b"resp2"),
        tcp(C4, S4, 3004, 7010, "A", b""),
    ];
    let mut k = eth(&p).connections.remove(0);
    assert!(!k.saw_syn);
    assert_eq!(k.client, S4.parse::<SocketAddr>().unwrap());
    assert_eq!(
        segs(&k),
        vec![seg(C2S, "resp1"), seg(S2C, "req2"), seg(C2S, "resp2")]
    );
    assert_eq!(k.client_side.bytes, 10);
    k.flip();
    assert_eq!(k.client, C4.parse::<SocketAddr>().unwrap());
    assert_eq!(k.server, S4.parse::<SocketAddr>().unwrap());
    assert_eq!(
        segs(&k),
        vec![seg(S2C, "resp1"), seg(C2S, "req2"), seg(S2C, "resp2")]
    );
    assert_eq!((k.client_side.bytes, k.server_side.bytes), (4, 10));
    assert_eq!(streams(&k), ("req2".into(), "resp1resp2".into()));
    assert_eq!(k.missing_bytes(), 0);
}

#[test]
fn syn_ack_seen_first_still_orients() {
    let p = vec![
        tcp(S4, C4, 5000, 1001, "SA", b""),
        tcp(C4, S4, 1001, 5001, "A", b"q"),
        tcp(S4, C4, 5001, 1002, "A", b"r"),
    ];
    let k = eth(&p).connections.remove(0);
    assert!(k.saw_syn);
    assert_eq!(k.client, C4.parse::<SocketAddr>().unwrap());
    assert_eq!(segs(&k), vec![seg(C2S, "q"), seg(S2C, "r")]);
}

#[test]
fn port_reuse_after_fin_or_rst_starts_a_new_connection() {
    let mut p = conversation(C4, S4);
    // Same 4-tuple again with a new initial sequence number.
    p.extend(handshake(C4, S4, 90_000, 70_000));
    p.push(tcp(C4, S4, 90_001, 70_001, "A", b"second"));
    p.push(tcp(S4, C4, 70_001, 90_007, "A", b"reply"));
    // A refused attempt (RST), then a retry on the same tuple.
    p.push(tcp(C4, S4, 90_007, 70_006, "R", b""));
    p.extend(handshake(C4, S4, 200, 300));
    p.push(tcp(C4, S4, 201, 301, "A", b"third"));
    let cap = eth(&p);
    assert_eq!(cap.connections.len(), 3);
    let ids: Vec<_> = cap.connections.iter().map(|k| k.id).collect();
    assert_eq!(ids, vec![1, 2, 3]);
    assert_eq!(
        streams(&cap.connections[0]),
        ("hello".into(), "world!".into())
    );
    assert_eq!(
        streams(&cap.connections[1]),
        ("second".into(), "reply".into())
    );
    assert!(cap.connections[1].client_side.saw_rst);
    assert_eq!(streams(&cap.connections[2]), ("third".into(), "".into()));
    assert!(cap
        .connections
        .iter()
        .all(|k| k.saw_syn && k.missing_bytes() == 0));
    assert!(cap.connections[1].first_ts > cap.connections[0].last_ts);
}

#[test]
fn retransmitted_syn_does_not_start_a_new_connection() {
    let mut p = vec![tcp(C4, S4, 1000, 0, "S", b"")];
    p.extend(conversation(C4, S4));
    let cap = eth(&p);
    assert_eq!(streams(only(&cap)), ("hello".into(), "world!".into()));
}

#[test]
fn interleaved_connections_keep_capture_order_and_ids() {
    let a = conversation(C4, S4);
    let b = conversation("10.0.0.3:40001", S4);
    let mut p = Vec::new();
    for i in 0..9 {
        p.push(a[i].clone());
        p.push(b[i].clone());
    }
    let cap = eth(&p);
    assert_eq!(cap.connections.len(), 2);
    assert_eq!(
        cap.connections[1].client,
        "10.0.0.3:40001".parse::<SocketAddr>().unwrap()
    );
    for k in &cap.connections {
        assert_eq!(
            segs(k),
            vec![seg(C2S, "hel"), seg(C2S, "lo"), seg(S2C, "world!")]
        );
        assert!(k.segments.windows(2).all(|w| w[0].ts <= w[1].ts));
    }
}

// ---------------------------------------------------------------- real captures

fn captures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../captures")
}

fn pcaps(sub: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(captures_dir().join(sub))
        .unwrap_or_else(|e| panic!("captures/{sub}: {e}"))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "pcap"))
        .collect();
    v.sort();
    v
}

fn assert_complete(path: &Path, cap: &Capture) {
    let name = path.display();
    assert_eq!(cap.stats.tcp_packets, cap.stats.packets, "{name}");
    assert_eq!(cap.stats.truncated_records, 0, "{name}");
    assert_eq!(cap.stats.malformed, 0, "{name}");
    for k in &cap.connections {
        assert_eq!(k.missing_bytes(), 0, "{name} connection {}", k.id);
        assert!(k.gaps.is_empty(), "{name} connection {}", k.id);
        let total: u64 = k.segments.iter().map(|s| s.data.len() as u64).sum();
        assert_eq!(total, k.client_side.bytes + k.server_side.bytes);
        assert!(k.segments.iter().all(|s| !s.data.is_empty()));
        assert!(
            k.segments.windows(2).all(|w| w[0].ts <= w[1].ts),
            "{name} #{}",
            k.id
        );
    }
    let ids: Vec<usize> = cap.connections.iter().map(|k| k.id).collect();
    assert_eq!(ids, (1..=cap.connections.len()).collect::<Vec<_>>());
}

/// The scenarios a capture folder's README lists:
/// "### fed_info.pcap  (5302 bytes, 2 TCP connections)".
fn readme_scenarios(dir: &str) -> Vec<(String, u64, usize)> {
    let readme = std::fs::read_to_string(captures_dir().join(dir).join("README.md")).unwrap();
    let mut scenarios = Vec::new();
    for line in readme.lines() {
        let Some(rest) = line.strip_prefix("### ") else {
            continue;
        };
        let Some((name, tail)) = rest.split_once(".pcap") else {
            continue;
        };
        let tail = tail.trim().trim_start_matches('(');
        let words: Vec<&str> = tail.split_whitespace().collect();
        if let [bytes, "bytes,", conns, "TCP", ..] = words[..] {
            scenarios.push((
                format!("{name}.pcap"),
                bytes.parse::<u64>().unwrap(),
                conns.parse::<usize>().unwrap(),
            ));
        }
    }
    scenarios
}

#[test]
fn every_later_release_capture_matches_its_readme() {
    let mut dirs: Vec<String> = std::fs::read_dir(captures_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("slurm-") && n != "slurm-22.05")
        .collect();
    dirs.sort();
    assert!(dirs.len() >= 3, "{dirs:?}");
    for dir in dirs {
        let scenarios = readme_scenarios(&dir);
        assert!(!scenarios.is_empty(), "{dir}");
        for (name, bytes, conns) in &scenarios {
            let path = captures_dir().join(&dir).join(name);
            assert_eq!(
                std::fs::metadata(&path).unwrap().len(),
                *bytes,
                "{dir}/{name}"
            );
            let mut cap = read_capture(&path).unwrap();
            assert_eq!(cap.connections.len(), *conns, "{dir}/{name}");
            // A persistent connection idle through the whole scenario shows only
            // TCP keepalive probes (one already acknowledged byte each way): no
            // stream data, reported as a missing byte. Everything else is whole.
            cap.connections.retain(|k| {
                let keepalive_only = k.segments.iter().all(|s| s.data.len() <= 1);
                !(keepalive_only && k.missing_bytes() > 0)
            });
            let kept: Vec<usize> = cap.connections.iter().map(|k| k.id).collect();
            for (i, k) in cap.connections.iter_mut().enumerate() {
                k.id = i + 1;
            }
            assert_complete(&path, &cap);
            assert!(kept.len() + 2 >= *conns, "{dir}/{name}: {kept:?}");
        }
        assert_eq!(pcaps(&dir).len(), scenarios.len(), "{dir}");
    }
}

#[test]
fn slurm_22_05_captures_match_the_readme() {
    let readme = std::fs::read_to_string(captures_dir().join("slurm-22.05/README.md")).unwrap();
    // "### fed_info.pcap  (5302 bytes, 2 TCP connections)"
    let mut scenarios = Vec::new();
    for line in readme.lines() {
        let Some(rest) = line.strip_prefix("### ") else {
            continue;
        };
        let Some((name, tail)) = rest.split_once(".pcap") else {
            continue;
        };
        let tail = tail.trim().trim_start_matches('(');
        let words: Vec<&str> = tail.split_whitespace().collect();
        if let [bytes, "bytes,", conns, "TCP", ..] = words[..] {
            scenarios.push((
                format!("{name}.pcap"),
                bytes.parse::<u64>().unwrap(),
                conns.parse::<usize>().unwrap(),
            ));
        }
    }
    assert_eq!(scenarios.len(), 8, "{scenarios:?}");
    assert!(scenarios.contains(&("fed_info.pcap".into(), 5302, 2)));
    assert!(scenarios.contains(&("fed_submit.pcap".into(), 127224, 46)));
    for (name, bytes, conns) in &scenarios {
        let path = captures_dir().join("slurm-22.05").join(name);
        assert_eq!(std::fs::metadata(&path).unwrap().len(), *bytes, "{name}");
        let cap = read_capture(&path).unwrap();
        assert_eq!(cap.connections.len(), *conns, "{name}");
        assert_complete(&path, &cap);
    }
    assert_eq!(pcaps("slurm-22.05").len(), scenarios.len());
}

#[test]
fn fed_info_keeps_slurms_segmentation() {
    let cap = read_capture(&captures_dir().join("slurm-22.05/fed_info.pcap")).unwrap();
    for (k, port) in cap.connections.iter().zip([6817, 7817]) {
        assert!(k.saw_syn);
        assert_eq!(k.server.port(), port);
        // REQUEST_FED_INFO (empty body): length prefix, header, auth — 3 send()s.
        let sizes: Vec<(Direction, usize)> =
            k.segments.iter().map(|s| (s.dir, s.data.len())).collect();
        assert_eq!(&sizes[..3], &[(C2S, 4), (C2S, 16), (C2S, 196)]);
        let c2s = k.stream(C2S);
        assert_eq!(c2s.len(), 216);
        assert_eq!(u32::from_be_bytes(c2s[..4].try_into().unwrap()), 212);
        assert_eq!(&c2s[4..10], &[0x26, 0x00, 0x00, 0x00, 0x08, 0x01]); // v0x2600, 2049
        let s2c = k.stream(S2C);
        assert_eq!(s2c.len(), 767);
        assert_eq!(&s2c[8..10], &[0x08, 0x02]); // 2050 RESPONSE_FED_INFO
        assert!(k.client_side.saw_fin && k.server_side.saw_fin);
    }
}

/// `NAME.hex.txt`: "# connection N: A -> B; ..." then "c2s HEX" / "s2c HEX"
/// lines, one application frame each, in capture order.
fn hex_fixture(path: &Path) -> Vec<(SocketAddr, SocketAddr, Vec<u8>, Vec<u8>)> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut conns: Vec<(SocketAddr, SocketAddr, Vec<u8>, Vec<u8>)> = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# connection ") {
            let addrs = rest.split_once(": ").unwrap().1.split(';').next().unwrap();
            let (a, b) = addrs.split_once(" -> ").unwrap();
            conns.push((
                a.trim().parse().unwrap(),
                b.trim().parse().unwrap(),
                Vec::new(),
                Vec::new(),
            ));
        } else if let Some((dir, hex)) = line.split_once(' ') {
            let bytes: Vec<u8> = match dir {
                "c2s" | "s2c" => (0..hex.len())
                    .step_by(2)
                    .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
                    .collect(),
                _ => continue,
            };
            let c = conns.last_mut().expect("frame before any connection line");
            if dir == "c2s" { &mut c.2 } else { &mut c.3 }.extend_from_slice(&bytes);
        }
    }
    conns
}

#[test]
fn legacy_flurm_captures_match_their_hex_frames() {
    let files = pcaps("legacy-flurm");
    assert!(files.len() >= 7, "{files:?}");
    for path in files {
        let cap = read_capture(&path).unwrap();
        assert_complete(&path, &cap);
        let want = hex_fixture(&path.with_extension("hex.txt"));
        assert_eq!(cap.connections.len(), want.len(), "{}", path.display());
        for (k, (cl, sv, c2s, s2c)) in cap.connections.iter().zip(&want) {
            assert_eq!((k.client, k.server), (*cl, *sv), "{}", path.display());
            assert!(k.saw_syn);
            assert_eq!(&k.stream(C2S), c2s, "{} #{}", path.display(), k.id);
            assert_eq!(&k.stream(S2C), s2c, "{} #{}", path.display(), k.id);
        }
    }
}

// ---------------------------------------------------------------- never panic

/// xorshift64*: deterministic, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn mutate_and_parse(name: &str, base: &[u8], rounds: usize, seed: u64) {
    let mut rng = Rng(seed);
    for round in 0..rounds {
        let mut f = base.to_vec();
        for _ in 0..1 + rng.below(8) {
            let i = rng.below(f.len());
            f[i] = match rng.below(4) {
                0 => f[i] ^ (1 << rng.below(8)),
                1 => 0xff,
                2 => 0,
                _ => rng.next() as u8,
            };
        }
        if rng.below(4) == 0 {
            f.truncate(rng.below(f.len() + 1));
        }
        let r = std::panic::catch_unwind(|| parse_capture(&f).map(|c| c.connections.len()));
        assert!(
            r.is_ok(),
            "{name}: parse panicked in round {round} (seed {seed})"
        );
    }
}

#[test]
fn truncated_or_corrupted_files_never_panic() {
    let real = std::fs::read(captures_dir().join("slurm-22.05/fed_info.pcap")).unwrap();
    for len in 0..=real.len() {
        let r = parse_capture(&real[..len]);
        // Only a cut inside the 24-byte file header is an error.
        assert_eq!(r.is_ok(), len >= 24, "cut at {len}");
    }
    mutate_and_parse("fed_info.pcap", &real, 3000, 0x5eed_0001);

    let mut ng = PcapNg::new();
    ng.section(false);
    ng.interface(1, Some(9), Some(5));
    ng.interface(276, Some(0x80 | 30), None);
    for (i, ip) in conversation(C6, S6).iter().enumerate() {
        ng.epb(
            (i % 2) as u32,
            i as u64 * 1000,
            &link(if i % 2 == 0 { 1 } else { 276 }, ip),
        );
    }
    ng.spb(&link(1, &tcp(C4, S4, 1, 2, "A", b"spb")));
    ng.section(true);
    ng.interface(113, None, None);
    for ip in conversation(C4, S4) {
        ng.epb(0, 42, &link(113, &ip));
    }
    for len in 0..=ng.out.len() {
        let _ = parse_capture(&ng.out[..len]);
    }
    mutate_and_parse("synthetic.pcapng", &ng.out, 3000, 0x5eed_0002);
}
