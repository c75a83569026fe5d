//! One direction of a TCP connection: segments in, in-order bytes out.
//!
//! Positions are kept as 64-bit stream offsets ("abs") relative to the first
//! data byte, so only the conversion from a 32-bit sequence number needs
//! wrapping arithmetic (a signed 32-bit distance to the next expected byte).
//! Out-of-order data waits in a map of non-overlapping ranges; when two copies
//! of a byte differ the first one seen wins, as in most TCP stacks.

use std::collections::BTreeMap;
use std::ops::Bound::{Excluded, Included};

use bytes::{Bytes, BytesMut};

/// Out-of-order bytes held per direction before we stop waiting for the hole
/// in front of them to fill (a capture that dropped a packet never fills it).
const MAX_PENDING_BYTES: usize = 32 << 20;
/// Same bound on the number of held ranges (tiny segments cost more than their bytes).
const MAX_PENDING_RANGES: usize = 64 * 1024;
/// Gaps listed per direction; the byte count stays exact beyond this.
const MAX_GAPS_LISTED: usize = 1024;

/// Bytes that never showed up: `len` bytes missing after `offset` delivered bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Hole {
    pub offset: u64,
    pub len: u64,
}

#[derive(Debug, Default)]
pub(crate) struct Reassembler {
    started: bool,
    /// Sequence number of the next byte we expect (`next_abs` in sequence space).
    next_seq: u32,
    next_abs: u64,
    /// Highest stream position any segment showed (data end, or the sequence
    /// number of an empty segment): everything below it was sent.
    max_seen: u64,
    fin_abs: Option<u64>,
    fin_consumed: bool,
    pending: BTreeMap<u64, Bytes>,
    pending_bytes: usize,
    pub delivered: u64,
    pub retransmitted: u64,
    pub missing: u64,
    pub holes: Vec<Hole>,
}

impl Reassembler {
    /// Stream position of sequence number `seq`; negative = before the start.
    fn abs(&self, seq: u32) -> i64 {
        self.next_abs as i64 + i64::from(seq.wrapping_sub(self.next_seq) as i32)
    }

    fn advance_to(&mut self, abs: u64) {
        let n = abs.saturating_sub(self.next_abs);
        self.next_abs += n;
        self.next_seq = self.next_seq.wrapping_add(n as u32);
    }

    /// Feed one segment of this direction; returns the bytes it made available in order.
    pub fn push(&mut self, seq: u32, syn: bool, fin: bool, payload: Bytes) -> Vec<Bytes> {
        // SYN occupies one sequence number before the first data byte.
        let data_seq = if syn { seq.wrapping_add(1) } else { seq };
        if !self.started {
            // Without a SYN (capture began mid-connection) the first segment
            // seen defines the start of the stream.
            self.started = true;
            self.next_seq = data_seq;
        }
        let mut start = self.abs(data_seq);
        let mut end = start + payload.len() as i64;
        if end >= 0 {
            self.max_seen = self.max_seen.max(end as u64);
        }
        if fin && self.fin_abs.is_none() && end >= self.next_abs as i64 {
            self.fin_abs = Some(end as u64);
        }
        // Nothing exists past the FIN.
        if let Some(f) = self.fin_abs {
            end = end.min(f as i64);
        }
        let mut out = Vec::new();
        if end > start {
            let floor = self.next_abs as i64;
            if start < floor {
                self.retransmitted += (end.min(floor) - start) as u64;
            }
            if end > floor {
                let skip = (floor.max(start) - start) as usize;
                let data = payload.slice(skip..(end - start) as usize);
                start = start.max(floor);
                self.insert_pending(start as u64, data);
            }
        }
        self.drain(&mut out);
        // Stop waiting for a hole that pins too much memory behind it.
        while self.pending_bytes > MAX_PENDING_BYTES || self.pending.len() > MAX_PENDING_RANGES {
            let Some((&first, _)) = self.pending.first_key_value() else {
                break;
            };
            self.skip_to(first, &mut out);
            self.drain(&mut out);
        }
        runs(out)
    }

    /// The peer acknowledged everything before `ack`: what we have not seen of
    /// that was lost by the capture and will not be retransmitted.
    pub fn acked(&mut self, ack: u32) -> Vec<Bytes> {
        if !self.started {
            return Vec::new();
        }
        let mut limit = self.abs(ack);
        // The FIN's sequence number is acknowledged too but is not data.
        if let Some(f) = self.fin_abs {
            limit = limit.min(f as i64);
        }
        if limit <= self.next_abs as i64 {
            return Vec::new();
        }
        let limit = limit as u64;
        self.max_seen = self.max_seen.max(limit);
        let mut out = Vec::new();
        while self.next_abs < limit {
            let target = match self.pending.first_key_value() {
                Some((&k, _)) if k < limit => k,
                _ => limit,
            };
            self.skip_to(target, &mut out);
            self.drain(&mut out);
        }
        runs(out)
    }

    /// End of the connection: give up on every hole, release what is held.
    pub fn finish(&mut self) -> Vec<Bytes> {
        let mut out = Vec::new();
        while let Some((&first, _)) = self.pending.first_key_value() {
            self.skip_to(first, &mut out);
            self.drain(&mut out);
        }
        let data_end = self.fin_abs.unwrap_or(self.max_seen);
        if data_end > self.next_abs {
            self.skip_to(data_end, &mut out);
            self.consume_fin();
        }
        runs(out)
    }

    /// Record `[next_abs, target)` as missing and move past it. An empty
    /// chunk in `out` marks the hole so that the bytes around it are not
    /// merged into one segment.
    fn skip_to(&mut self, target: u64, out: &mut Vec<Bytes>) {
        if target <= self.next_abs {
            return;
        }
        out.push(Bytes::new());
        let len = target - self.next_abs;
        self.missing += len;
        if self.holes.len() < MAX_GAPS_LISTED {
            self.holes.push(Hole {
                offset: self.delivered,
                len,
            });
        }
        self.advance_to(target);
    }

    /// Hold `data` at `start`, keeping bytes already held where they overlap.
    fn insert_pending(&mut self, start: u64, data: Bytes) {
        let end = start + data.len() as u64;
        let mut cur = start;
        let mut pieces = Vec::new();
        if let Some((&k, v)) = self.pending.range(..=start).next_back() {
            cur = cur.max(k + v.len() as u64);
        }
        for (&k, v) in self.pending.range((Excluded(start), Included(end))) {
            if k >= end {
                break;
            }
            if k > cur {
                pieces.push((cur, k));
            }
            cur = cur.max(k + v.len() as u64);
        }
        if cur < end {
            pieces.push((cur, end));
        }
        let kept: u64 = pieces.iter().map(|(a, b)| b - a).sum();
        self.retransmitted += data.len() as u64 - kept;
        for (a, b) in pieces {
            let piece = data.slice((a - start) as usize..(b - start) as usize);
            self.pending_bytes += piece.len();
            self.pending.insert(a, piece);
        }
    }

    /// Move every held range that now starts at `next_abs` to `out`.
    fn drain(&mut self, out: &mut Vec<Bytes>) {
        while let Some(entry) = self.pending.first_entry() {
            let k = *entry.key();
            if k > self.next_abs {
                break;
            }
            let v = entry.remove();
            self.pending_bytes -= v.len();
            let end = k + v.len() as u64;
            if end <= self.next_abs {
                continue;
            }
            let v = v.slice((self.next_abs - k) as usize..);
            self.delivered += v.len() as u64;
            self.advance_to(end);
            out.push(v);
        }
        self.consume_fin();
    }

    fn consume_fin(&mut self) {
        if !self.fin_consumed && self.fin_abs == Some(self.next_abs) {
            self.fin_consumed = true;
            self.advance_to(self.next_abs + 1);
        }
    }
}

/// Join released chunks into contiguous runs, splitting at hole markers.
fn runs(parts: Vec<Bytes>) -> Vec<Bytes> {
    let mut out = Vec::new();
    for run in parts.split(Bytes::is_empty) {
        match run {
            [] => {}
            [one] => out.push(one.clone()),
            many => {
                let mut all = BytesMut::with_capacity(many.iter().map(Bytes::len).sum());
                for p in many {
                    all.extend_from_slice(p);
                }
                out.push(all.freeze());
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    fn s(out: Vec<Bytes>) -> String {
        out.iter()
            .map(|b| std::str::from_utf8(b).unwrap())
            .collect::<Vec<_>>()
            .join("|")
    }

    #[test]
    fn in_order_with_syn_and_fin() {
        let mut r = Reassembler::default();
        assert_eq!(s(r.push(100, true, false, Bytes::new())), "");
        assert_eq!(s(r.push(101, false, false, b("abc"))), "abc");
        assert_eq!(s(r.push(104, false, true, b("de"))), "de");
        // A pure ACK after the FIN sits one past the FIN: no hole.
        assert_eq!(s(r.push(107, false, false, Bytes::new())), "");
        assert_eq!(s(r.finish()), "");
        assert_eq!((r.delivered, r.missing), (5, 0));
    }

    #[test]
    fn reorder_duplicate_and_overlap() {
        let mut r = Reassembler::default();
        r.push(0, true, false, Bytes::new());
        assert_eq!(s(r.push(4, false, false, b("def"))), "");
        assert_eq!(s(r.push(4, false, false, b("XYZ"))), ""); // same range again: first seen kept
        assert_eq!(s(r.push(1, false, false, b("abc"))), "abcdef");
        assert_eq!(s(r.push(1, false, false, b("abc"))), ""); // retransmission
        assert_eq!(s(r.push(5, false, false, b("efgh"))), "gh"); // partial overlap
        assert_eq!(r.retransmitted, 3 + 3 + 2);
        assert_eq!(r.delivered, 8);
    }

    #[test]
    fn overlap_inside_pending_keeps_first_bytes() {
        let mut r = Reassembler::default();
        r.push(0, false, false, b("a"));
        r.push(3, false, false, b("DE"));
        r.push(7, false, false, b("H"));
        // Covers 2..9: only 2, 5, 6 and 8 are new.
        assert_eq!(s(r.push(2, false, false, b("cxxfgxi"))), "");
        assert_eq!(s(r.push(1, false, false, b("b"))), "bcDEfgHi");
    }

    #[test]
    fn sequence_wraps() {
        let mut r = Reassembler::default();
        r.push(u32::MAX - 1, true, false, Bytes::new());
        assert_eq!(s(r.push(u32::MAX, false, false, b("ab"))), "ab");
        // "ab" took MAX and 0: the next byte is 1.
        assert_eq!(s(r.push(2, false, false, b("d"))), "");
        assert_eq!(s(r.push(1, false, false, b("c"))), "cd");
    }

    #[test]
    fn hole_skipped_on_ack_and_at_finish() {
        let mut r = Reassembler::default();
        r.push(0, false, false, b("ab"));
        r.push(5, false, false, b("fg"));
        // The receiver acknowledged through 7: bytes 2..5 were lost by the capture.
        assert_eq!(s(r.acked(7)), "fg");
        assert_eq!(r.holes, vec![Hole { offset: 2, len: 3 }]);
        r.push(9, false, false, b("j"));
        assert_eq!(s(r.finish()), "j");
        assert_eq!(r.missing, 5);
        assert_eq!(r.holes[1], Hole { offset: 4, len: 2 });
    }

    #[test]
    fn tail_hole_seen_from_fin_position() {
        let mut r = Reassembler::default();
        r.push(0, true, false, Bytes::new());
        r.push(1, false, false, b("ab"));
        r.push(10, false, true, Bytes::new());
        assert_eq!(s(r.finish()), "");
        assert_eq!(r.missing, 7);
    }
}
