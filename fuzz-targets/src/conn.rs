//! The connection state machine in each start mode: bytes of both directions,
//! chunked as a hostile peer or a capture would deliver them.
//!
//! Input: one config byte, then records `tag ‖ u16 len ‖ len bytes` (the last
//! record may be short). Tag bit 0 = direction (server → client when set); bit 1 =
//! bytes were lost before this record (a capture gap). Every direction ends with
//! EOF.

use slurm_codec::conn::{ConnConfig, ConnEvent, Connection, StreamStart};
use slurm_codec::frame::BodyDecoding;
use slurm_codec::{Direction, ProtocolVersion};

/// One chunk of a conversation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    pub dir: Direction,
    pub gap_before: bool,
    pub data: Vec<u8>,
}

/// Encodes records in the target's input format (for seeds).
pub fn encode(config: u8, records: &[Record]) -> Vec<u8> {
    let mut out = vec![config];
    for r in records {
        for chunk in r.data.chunks(u16::MAX as usize) {
            let tag = (r.dir == Direction::ServerToClient) as u8 | (r.gap_before as u8) << 1;
            out.push(tag);
            out.extend_from_slice(&(chunk.len() as u16).to_be_bytes());
            out.extend_from_slice(chunk);
        }
    }
    out
}

/// Splits an input into its config byte and records.
pub fn decode(data: &[u8]) -> (u8, Vec<Record>) {
    let Some((&config, mut rest)) = data.split_first() else {
        return (0, Vec::new());
    };
    let mut records = Vec::new();
    while let Some((&tag, tail)) = rest.split_first() {
        let len = match tail {
            [a, b, ..] => u16::from_be_bytes([*a, *b]) as usize,
            _ => tail.len(),
        };
        let body = tail.get(2..).unwrap_or(&[]);
        let take = len.min(body.len());
        records.push(Record {
            dir: if tag & 1 == 0 {
                Direction::ClientToServer
            } else {
                Direction::ServerToClient
            },
            gap_before: tag & 2 != 0,
            data: body[..take].to_vec(),
        });
        rest = &body[take..];
    }
    (config, records)
}

fn config(byte: u8, start: StreamStart) -> ConnConfig {
    let max_buffered = [1 << 20, 4096, 64, 65536][(byte & 3) as usize];
    let hint = match (byte >> 2) & 0xf {
        0 => None,
        i => ProtocolVersion::ALL.get(i as usize - 1).copied(),
    };
    ConnConfig {
        start,
        max_buffered,
        version_hint: hint,
        bodies: if byte & 0x40 != 0 {
            BodyDecoding::Observe
        } else {
            BodyDecoding::All
        },
    }
}

/// A capture that saw the SYN (or a proxy): strict decoding from byte 0.
pub fn beginning(data: &[u8]) {
    run(data, StreamStart::Beginning, &[]);
}

/// A capture picked up in the middle of a connection.
pub fn mid_stream(data: &[u8]) {
    run(data, StreamStart::MidStream, &[]);
}

/// A connection the proxy accepted: orientation known, framing sniffed.
pub fn accepted(data: &[u8]) {
    run(data, StreamStart::Accepted, &[]);
}

/// A federation persistent connection after its (22.05) handshake.
pub fn persist(data: &[u8]) {
    let handshake = [
        Record {
            dir: Direction::ClientToServer,
            gap_before: false,
            data: PERSIST_INIT_2205.to_vec(),
        },
        Record {
            dir: Direction::ServerToClient,
            gap_before: false,
            data: PERSIST_RC_2205.to_vec(),
        },
    ];
    run(data, StreamStart::Beginning, &handshake);
}

/// REQUEST_PERSIST_INIT, 22.05, persist_type FED, cluster "c1", NULL credential.
pub const PERSIST_INIT_2205: [u8; 41] = [
    0, 0, 0, 37, 0x26, 0, 0, 1, 0x19, 0x64, 0, 0, 0, 13, 0, 0, 0, 0, 0, 0, 0, 0, 0, 101, 0, 0, 0,
    0, 0x26, 0, 0, 0, 0, 3, b'c', b'1', 0, 0, 2, 0x68, 0xc1,
];
/// PERSIST_RC rc 0 at 22.05 (persist framing): the handshake is accepted.
pub const PERSIST_RC_2205: [u8; 18] = [
    0, 0, 0, 0x0e, 0x05, 0x99, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x26, 0,
];

fn run(data: &[u8], start: StreamStart, prefix: &[Record]) {
    let (cfg_byte, records) = decode(data);
    let cfg = config(cfg_byte, start);
    let mut conn = Connection::new(cfg);
    // What the caller fed per direction (caller's view), for checking frames.
    let mut fed: [Vec<u8>; 2] = [Vec::new(), Vec::new()];
    let mut events = Vec::new();
    for r in prefix.iter().chain(&records) {
        if r.gap_before {
            conn.gap(r.dir);
        }
        fed[r.dir.index()].extend_from_slice(&r.data);
        conn.feed(r.dir, &r.data, &mut events);
        // Bounded memory: never more than one frame's worth per direction, plus
        // the sniffing window of a mid-stream start.
        let bound = 2 * (cfg.max_buffered.max(64) + 64 * 1024 + u16::MAX as usize);
        assert!(
            conn.buffered() <= bound,
            "{} bytes buffered",
            conn.buffered()
        );
    }
    for dir in [Direction::ClientToServer, Direction::ServerToClient] {
        conn.eof(dir, &mut events);
    }
    assert_eq!(conn.buffered(), 0, "bytes still held after EOF");
    check_events(&fed, &events);
}

/// Every frame is the exact slice of its direction's stream at its offset.
/// Events before a `Reoriented` carry the caller's directions, later ones the
/// true directions.
fn check_events(fed: &[Vec<u8>; 2], events: &[ConnEvent]) {
    let mut flipped = false;
    for e in events {
        match e {
            ConnEvent::Reoriented => flipped = true,
            ConnEvent::Frame(o) => {
                let caller = if flipped { o.dir.reverse() } else { o.dir };
                let s = &fed[caller.index()];
                let at = o.stream_offset as usize;
                let wire = s.get(at..at + o.raw.len());
                assert_eq!(
                    wire,
                    Some(&o.raw[..]),
                    "{:?} frame at {at} is not the bytes at that offset",
                    o.dir
                );
            }
            _ => {}
        }
    }
}
