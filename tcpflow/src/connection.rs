//! The connection table: TCP packets → connections with ordered segments.
//!
//! Connections are keyed by their unordered 4-tuple. The side that sent the
//! SYN is the client; without a handshake the first packet's sender is taken
//! as client provisionally (the Slurm decoder may [`TcpConnection::flip`] it).

use std::collections::HashMap;
use std::net::SocketAddr;

use bytes::Bytes;
use slurm_codec::Direction;

use super::link::TcpPacket;
use super::reassembly::Reassembler;

/// New in-order bytes that one captured packet made available.
///
/// Bytes held back behind a hole are attributed to the packet that released
/// them: the one that filled the hole, or, when the hole never fills, the
/// peer's acknowledgment past it or else the connection's last packet.
#[derive(Debug, Clone, PartialEq)]
pub struct Segment {
    /// Capture time of the packet, seconds since the epoch (an f64 keeps
    /// about 0.2 µs of precision at today's epoch values, so nanosecond
    /// captures are rounded).
    pub ts: f64,
    pub dir: Direction,
    pub data: Bytes,
}

/// Bytes of one direction that never appeared in the capture.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gap {
    pub dir: Direction,
    /// Bytes of that direction delivered before the hole.
    pub offset: u64,
    /// Bytes missing.
    pub len: u64,
    /// Index in [`TcpConnection::segments`] of the first segment after the
    /// hole (`segments.len()` if none): where a decoder has to resync.
    pub before_segment: usize,
}

/// What one side sent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SideStats {
    /// TCP packets sent by this side.
    pub packets: u64,
    /// Reassembled bytes delivered in this side's direction.
    pub bytes: u64,
    /// Bytes received again (retransmissions, overlaps) and dropped.
    pub retransmitted_bytes: u64,
    /// Bytes of this side's stream that the capture never showed.
    pub missing_bytes: u64,
    pub saw_fin: bool,
    pub saw_rst: bool,
}

/// One TCP connection of a capture with its reassembled data.
#[derive(Debug, Clone)]
pub struct TcpConnection {
    /// 1-based, in order of each connection's first packet.
    pub id: usize,
    pub client: SocketAddr,
    pub server: SocketAddr,
    pub first_ts: f64,
    pub last_ts: f64,
    /// The handshake (SYN or SYN-ACK) was seen, so the orientation is known.
    /// When false the first packet's sender was taken as client.
    pub saw_syn: bool,
    /// What the client sent (client → server direction).
    pub client_side: SideStats,
    /// What the server sent (server → client direction).
    pub server_side: SideStats,
    /// Both directions, in capture order.
    pub segments: Vec<Segment>,
    pub gaps: Vec<Gap>,
}

impl TcpConnection {
    /// Swap client and server (and every direction) when the content shows
    /// that the provisional orientation was wrong.
    pub fn flip(&mut self) {
        std::mem::swap(&mut self.client, &mut self.server);
        std::mem::swap(&mut self.client_side, &mut self.server_side);
        for s in &mut self.segments {
            s.dir = s.dir.reverse();
        }
        for g in &mut self.gaps {
            g.dir = g.dir.reverse();
        }
    }

    /// Statistics of the side that sends in direction `dir`.
    pub fn sender(&self, dir: Direction) -> &SideStats {
        match dir {
            Direction::ClientToServer => &self.client_side,
            Direction::ServerToClient => &self.server_side,
        }
    }

    /// The whole reassembled stream of one direction.
    pub fn stream(&self, dir: Direction) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.sender(dir).bytes as usize);
        for s in self.segments.iter().filter(|s| s.dir == dir) {
            out.extend_from_slice(&s.data);
        }
        out
    }

    /// Bytes missing in both directions.
    pub fn missing_bytes(&self) -> u64 {
        self.client_side.missing_bytes + self.server_side.missing_bytes
    }
}

/// A connection being built.
struct Building {
    conn: TcpConnection,
    /// Reassemblers by direction: [client → server, server → client].
    rx: [Reassembler; 2],
    client_isn: Option<u32>,
    closing: bool,
}

const C2S: usize = 0;
const S2C: usize = 1;

fn dir_of(i: usize) -> Direction {
    if i == C2S {
        Direction::ClientToServer
    } else {
        Direction::ServerToClient
    }
}

impl Building {
    fn new(id: usize, ts: f64, pkt: &TcpPacket<'_>) -> Building {
        // A SYN-ACK seen first (SYN missed) still tells who the client is.
        let (client, server) = if pkt.syn && pkt.ack.is_some() {
            (pkt.dst, pkt.src)
        } else {
            (pkt.src, pkt.dst)
        };
        Building {
            conn: TcpConnection {
                id,
                client,
                server,
                first_ts: ts,
                last_ts: ts,
                saw_syn: pkt.syn,
                client_side: SideStats::default(),
                server_side: SideStats::default(),
                segments: Vec::new(),
                gaps: Vec::new(),
            },
            rx: Default::default(),
            client_isn: None,
            closing: false,
        }
    }

    /// A pure SYN on a known tuple opens a new connection unless it repeats
    /// this connection's own SYN (same sender, same initial sequence number).
    fn is_reused_by(&self, pkt: &TcpPacket<'_>) -> bool {
        let retransmitted_syn =
            self.conn.saw_syn && pkt.src == self.conn.client && self.client_isn == Some(pkt.seq);
        self.closing || !retransmitted_syn
    }

    fn emit(&mut self, ts: f64, side: usize, released: Vec<Bytes>) {
        for data in released {
            self.conn.segments.push(Segment {
                ts,
                dir: dir_of(side),
                data,
            });
        }
    }

    fn on_packet(&mut self, ts: f64, pkt: &TcpPacket<'_>) {
        let side = if pkt.src == self.conn.client {
            C2S
        } else {
            S2C
        };
        let other = 1 - side;
        self.conn.last_ts = ts;
        let stats = if side == C2S {
            &mut self.conn.client_side
        } else {
            &mut self.conn.server_side
        };
        stats.packets += 1;
        if pkt.rst {
            // A reset's sequence and acknowledgment numbers need not be
            // meaningful (e.g. answering a SYN), so it only ends things.
            stats.saw_rst = true;
            self.closing = true;
            return;
        }
        if pkt.fin {
            stats.saw_fin = true;
            self.closing = true;
        }
        if pkt.syn {
            self.conn.saw_syn = true;
            if pkt.ack.is_none() && side == C2S && self.client_isn.is_none() {
                self.client_isn = Some(pkt.seq);
            }
        }
        // The acknowledgment concerns what the other side sent before.
        if let Some(ack) = pkt.ack {
            let released = self.rx[other].acked(ack);
            self.emit(ts, other, released);
        }
        let payload = Bytes::copy_from_slice(pkt.payload);
        let released = self.rx[side].push(pkt.seq, pkt.syn, pkt.fin, payload);
        self.emit(ts, side, released);
    }

    fn finish(mut self) -> TcpConnection {
        let ts = self.conn.last_ts;
        for side in [C2S, S2C] {
            let released = self.rx[side].finish();
            self.emit(ts, side, released);
        }
        for side in [C2S, S2C] {
            let dir = dir_of(side);
            let rx = &self.rx[side];
            let stats = if side == C2S {
                &mut self.conn.client_side
            } else {
                &mut self.conn.server_side
            };
            stats.bytes = rx.delivered;
            stats.missing_bytes = rx.missing;
            stats.retransmitted_bytes = rx.retransmitted;
            // Locate each hole among the segments by the stream offset it sits at.
            let mut holes = rx.holes.iter().peekable();
            let mut offset = 0u64;
            for (i, seg) in self.conn.segments.iter().enumerate() {
                if seg.dir != dir {
                    continue;
                }
                while let Some(h) = holes.next_if(|h| h.offset <= offset) {
                    self.conn.gaps.push(gap(dir, h.offset, h.len, i));
                }
                offset += seg.data.len() as u64;
            }
            let end = self.conn.segments.len();
            for h in holes {
                self.conn.gaps.push(gap(dir, h.offset, h.len, end));
            }
        }
        self.conn.gaps.sort_by_key(|g| g.before_segment);
        self.conn
    }
}

fn gap(dir: Direction, offset: u64, len: u64, before_segment: usize) -> Gap {
    Gap {
        dir,
        offset,
        len,
        before_segment,
    }
}

/// Unordered 4-tuple.
fn key(a: SocketAddr, b: SocketAddr) -> (SocketAddr, SocketAddr) {
    if a <= b {
        (a, b)
    } else {
        (b, a)
    }
}

#[derive(Default)]
pub(crate) struct ConnectionTable {
    /// Slot per connection in order of first packet; `None` once finished.
    building: Vec<Option<Building>>,
    done: Vec<Option<TcpConnection>>,
    active: HashMap<(SocketAddr, SocketAddr), usize>,
}

impl ConnectionTable {
    pub fn on_packet(&mut self, ts: f64, pkt: &TcpPacket<'_>) {
        let k = key(pkt.src, pkt.dst);
        let mut slot = self.active.get(&k).copied();
        if let Some(i) = slot {
            let pure_syn = pkt.syn && pkt.ack.is_none();
            let reused = pure_syn
                && self.building[i]
                    .as_ref()
                    .is_some_and(|b| b.is_reused_by(pkt));
            if reused {
                self.finish(i);
                slot = None;
            }
        }
        let i = match slot {
            Some(i) => i,
            None => {
                let i = self.building.len();
                self.building.push(Some(Building::new(i + 1, ts, pkt)));
                self.done.push(None);
                self.active.insert(k, i);
                i
            }
        };
        if let Some(b) = self.building[i].as_mut() {
            b.on_packet(ts, pkt);
        }
    }

    fn finish(&mut self, i: usize) {
        if let Some(b) = self.building[i].take() {
            self.done[i] = Some(b.finish());
        }
    }

    pub fn into_connections(mut self) -> Vec<TcpConnection> {
        for i in 0..self.building.len() {
            self.finish(i);
        }
        self.done.into_iter().flatten().collect()
    }
}
