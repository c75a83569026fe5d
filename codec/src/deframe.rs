//! Incremental deframing: bytes in, whole `u32 length ‖ payload` frames out, however
//! the bytes were chunked (Slurm writes one message in 3-4 `send()`s).
//!
//! Memory stays bounded: a frame longer than `max_buffered` is not held whole; its
//! first bytes are reported and the rest is skipped as it streams past.

use bytes::{Buf, Bytes, BytesMut};

use crate::error::{DecodeError, ErrorKind};

/// Slurm's MAX_MSG_SIZE: a receiver rejects longer length prefixes.
pub const MAX_MSG_SIZE: u32 = 0x4000_0000;

/// Bytes of an oversized frame kept to report it (its header and msg_type).
pub const OVERSIZED_HEAD: usize = 4096;

/// What the deframer produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Deframed {
    /// A complete frame, length prefix included.
    Frame(Bytes),
    /// A frame over the buffering limit: its first `head.len()` bytes (prefix
    /// included); the remaining `len + 4 - head.len()` bytes are skipped.
    Oversized { len: u32, head: Bytes },
}

#[derive(Debug)]
pub struct Deframer {
    buf: BytesMut,
    /// Bytes of an oversized frame still to skip.
    skip: u64,
    max_buffered: usize,
    /// Stream offset of `buf[0]` (bytes consumed so far).
    consumed: u64,
}

impl Deframer {
    pub fn new(max_buffered: usize) -> Self {
        Deframer {
            buf: BytesMut::new(),
            skip: 0,
            max_buffered: max_buffered.max(64),
            consumed: 0,
        }
    }

    /// Offset in the stream of the next byte not yet returned in a frame.
    pub fn stream_offset(&self) -> u64 {
        self.consumed
    }

    /// Sets the stream offset of the next byte (after skipping bytes elsewhere).
    pub fn set_offset(&mut self, offset: u64) {
        self.consumed = offset;
    }

    /// Bytes held waiting for the rest of a frame.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Bytes of an oversized frame still to come (and be skipped).
    pub fn pending_skip(&self) -> u64 {
        self.skip
    }

    /// Adds bytes; skipped bytes of an oversized frame are dropped at once.
    pub fn push(&mut self, mut data: &[u8]) {
        if self.skip > 0 {
            let n = (self.skip as usize).min(data.len());
            self.skip -= n as u64;
            self.consumed += n as u64;
            data = &data[n..];
        }
        self.buf.extend_from_slice(data);
    }

    /// Peeks at the length prefix, if 4 bytes are there.
    pub fn peek_len(&self) -> Option<u32> {
        (self.buf.len() >= 4)
            .then(|| u32::from_be_bytes([self.buf[0], self.buf[1], self.buf[2], self.buf[3]]))
    }

    /// The bytes held (for sniffing framing before the first frame).
    pub fn peek(&self) -> &[u8] {
        &self.buf
    }

    /// The next frame if one is complete. `min_len`/`max_len` bound the length
    /// prefix for the current framing; a violation is an error at the prefix.
    pub fn next(&mut self, min_len: u32, max_len: u32) -> Option<Result<Deframed, DecodeError>> {
        if self.skip > 0 {
            return None;
        }
        let len = self.peek_len()?;
        if looks_like_http(&self.buf) {
            return Some(Err(DecodeError::new(0, ErrorKind::Http)));
        }
        if looks_like_tls(&self.buf) {
            return Some(Err(DecodeError::new(0, ErrorKind::Tls)));
        }
        if len > max_len {
            return Some(Err(DecodeError::new(
                0,
                ErrorKind::LengthOverLimit {
                    len: len as u64,
                    limit: max_len as u64,
                },
            )));
        }
        if len < min_len {
            return Some(Err(DecodeError::new(
                0,
                ErrorKind::LengthUnderMinimum {
                    len: len as u64,
                    min: min_len as u64,
                },
            )));
        }
        let total = 4 + len as usize;
        if total > self.max_buffered {
            // Only the head is looked at (prefix, header, msg_type): a few KiB, not
            // the buffering limit, so a peer that announces a huge frame and then
            // stalls holds next to nothing.
            let head_want = self.max_buffered.min(OVERSIZED_HEAD);
            let head_len = head_want.min(self.buf.len());
            if head_len < head_want && self.buf.len() < total {
                return None; // wait for a full head
            }
            let head = self.buf.split_to(head_len).freeze();
            let rest = (total - head_len) as u64;
            let have = (self.buf.len() as u64).min(rest);
            self.buf.advance(have as usize);
            self.skip = rest - have;
            self.consumed += head_len as u64 + have;
            return Some(Ok(Deframed::Oversized { len, head }));
        }
        if self.buf.len() < total {
            // No reserve from the length prefix: a few bytes claiming a large frame
            // must not allocate it; the buffer grows with the bytes that arrive.
            return None;
        }
        self.consumed += total as u64;
        let frame = self.buf.split_to(total).freeze();
        if self.buf.is_empty() {
            // Let go of the allocation: an idle connection holds no frame buffer.
            self.buf = BytesMut::new();
        }
        Some(Ok(Deframed::Frame(frame)))
    }

    /// Drops everything buffered (after an error, the stream is opaque) and
    /// lets go of the allocation.
    pub fn clear(&mut self) {
        self.consumed += self.buf.len() as u64;
        self.buf = BytesMut::new();
    }

    /// Bytes allocated for the buffer (what it costs in memory).
    pub fn capacity(&self) -> usize {
        self.buf.capacity()
    }
}

/// A TLS handshake record carrying a ClientHello (`16 03 0x LL LL 01`): a client
/// that speaks TLS to a plain Slurm port (25.05+ sites may enable TLS). Its first
/// four bytes read as a ~369 MB length prefix; byte 5 can never start a normal
/// frame (a version's low byte is 0).
pub fn looks_like_tls(buf: &[u8]) -> bool {
    matches!(buf, [0x16, 0x03, 0..=0x04, _, _, 0x01, ..])
}

/// The first four bytes of the HTTP requests (and replies) a client could send to a
/// Slurm port (legacy FLURM probes, curl); they read as an absurd length prefix.
pub const HTTP_METHODS: [&[u8]; 9] = [
    b"GET ", b"POST", b"PUT ", b"HEAD", b"DELE", b"OPTI", b"PATC", b"CONN", b"HTTP",
];

pub fn looks_like_http(buf: &[u8]) -> bool {
    buf.len() >= 4 && HTTP_METHODS.iter().any(|m| &buf[..4] == *m)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(payload: &[u8]) -> Vec<u8> {
        let mut v = (payload.len() as u32).to_be_bytes().to_vec();
        v.extend_from_slice(payload);
        v
    }

    #[test]
    fn byte_at_a_time_equals_whole() {
        let stream: Vec<u8> = [frame(b"hello"), frame(b""), frame(&[7; 300])].concat();
        let mut whole = Deframer::new(1 << 20);
        whole.push(&stream);
        let mut a = Vec::new();
        while let Some(f) = whole.next(0, MAX_MSG_SIZE) {
            a.push(f.unwrap());
        }
        let mut bytewise = Deframer::new(1 << 20);
        let mut b = Vec::new();
        for byte in &stream {
            bytewise.push(std::slice::from_ref(byte));
            while let Some(f) = bytewise.next(0, MAX_MSG_SIZE) {
                b.push(f.unwrap());
            }
        }
        assert_eq!(a.len(), 3);
        assert_eq!(a, b);
        assert_eq!(bytewise.stream_offset(), stream.len() as u64);
    }

    #[test]
    fn oversized_frame_is_skipped_not_held() {
        let mut d = Deframer::new(100);
        let big = frame(&[1; 1000]);
        let next = frame(b"ok");
        d.push(&big[..150]);
        match d.next(0, MAX_MSG_SIZE).unwrap().unwrap() {
            Deframed::Oversized { len, head } => {
                assert_eq!(len, 1000);
                assert_eq!(head.len(), 100);
            }
            other => panic!("{other:?}"),
        }
        assert!(d.buffered() == 0);
        d.push(&big[150..]);
        d.push(&next);
        assert_eq!(
            d.next(0, MAX_MSG_SIZE).unwrap().unwrap(),
            Deframed::Frame(Bytes::from(next))
        );
    }

    #[test]
    fn an_oversized_frame_is_reported_from_its_head_not_held_to_the_limit() {
        // Issue 10's reproducer: a 1 GiB frame announced, then 1 MB that never ends.
        let mut d = Deframer::new(1 << 20);
        d.push(&[0x3f, 0xff, 0xff, 0xf0, 0x26, 0, 0, 0, 0x08, 0x01]);
        d.push(&vec![0; OVERSIZED_HEAD]);
        match d.next(0, MAX_MSG_SIZE).unwrap().unwrap() {
            Deframed::Oversized { head, .. } => assert_eq!(head.len(), OVERSIZED_HEAD),
            other => panic!("{other:?}"),
        }
        d.push(&vec![0; 1_000_000]);
        assert_eq!(d.buffered(), 0);
        assert!(d.next(0, MAX_MSG_SIZE).is_none());
    }

    #[test]
    fn insane_length_and_http_are_errors() {
        let mut d = Deframer::new(1 << 20);
        d.push(&[0x7f, 0, 0, 0, 1]);
        assert_eq!(
            d.next(0, MAX_MSG_SIZE).unwrap().unwrap_err().reason(),
            "length_over_limit"
        );
        let mut h = Deframer::new(1 << 20);
        h.push(b"GET /api/v1/health HTTP/1.1\r\n");
        assert_eq!(
            h.next(0, MAX_MSG_SIZE).unwrap().unwrap_err().reason(),
            "http"
        );
    }
}
