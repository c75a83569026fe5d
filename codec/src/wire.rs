//! Slurm's primitive encodings (spec §1): big-endian integers, `packmem`/`packstr`
//! length-prefixed blocks, and the `Decode`/`Encode` traits every record implements.
//!
//! Strings stay raw: a [`PackStr`] keeps the exact bytes (NUL or not) and tells NULL
//! (length 0) from "" (length 1, one NUL), so re-encoding is byte-exact.

use bytes::{BufMut, Bytes};
use std::fmt;

use crate::error::{DecodeError, ErrorKind, Result};
use crate::version::ProtocolVersion;

/// Largest packmem/packstr length Slurm accepts (MAX_PACK_MEM_LEN, 1 GiB).
pub const MAX_PACK_MEM_LEN: u32 = 0x4000_0000;
/// Slurm's "no value" sentinels.
pub const NO_VAL: u32 = 0xFFFF_FFFE;
pub const INFINITE: u32 = 0xFFFF_FFFF;
pub const NO_VAL16: u16 = 0xFFFE;
pub const NO_VAL64: u64 = 0xFFFF_FFFF_FFFF_FFFE;

/// A bounds-checked reader over a shared buffer. Offsets are relative to the
/// buffer's start plus `base`, so errors point into the enclosing frame.
#[derive(Clone)]
pub struct Reader {
    buf: Bytes,
    pos: usize,
    base: usize,
}

impl Reader {
    pub fn new(buf: Bytes) -> Self {
        Reader {
            buf,
            pos: 0,
            base: 0,
        }
    }

    /// A reader whose error offsets are shifted by `base` (the buffer's position in
    /// the enclosing unit).
    pub fn with_base(buf: Bytes, base: usize) -> Self {
        Reader { buf, pos: 0, base }
    }

    pub fn offset(&self) -> usize {
        self.base + self.pos
    }

    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    pub fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    pub fn error(&self, kind: ErrorKind) -> DecodeError {
        DecodeError::new(self.offset(), kind)
    }

    fn need(&self, n: usize) -> Result<()> {
        if self.remaining() < n {
            Err(self.error(ErrorKind::Truncated {
                needed: n,
                available: self.remaining(),
            }))
        } else {
            Ok(())
        }
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        self.need(N)?;
        let mut out = [0u8; N];
        out.copy_from_slice(&self.buf[self.pos..self.pos + N]);
        self.pos += N;
        Ok(out)
    }

    pub fn u8(&mut self) -> Result<u8> {
        Ok(self.array::<1>()?[0])
    }
    pub fn u16(&mut self) -> Result<u16> {
        Ok(u16::from_be_bytes(self.array()?))
    }
    pub fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_be_bytes(self.array()?))
    }
    pub fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_be_bytes(self.array()?))
    }
    pub fn i64(&mut self) -> Result<i64> {
        Ok(i64::from_be_bytes(self.array()?))
    }

    /// Looks at the next u16 without consuming it.
    pub fn peek_u16(&self) -> Option<u16> {
        self.buf
            .get(self.pos..self.pos + 2)
            .map(|b| u16::from_be_bytes([b[0], b[1]]))
    }

    /// The next `n` bytes, shared (no copy).
    pub fn bytes(&mut self, n: usize) -> Result<Bytes> {
        self.need(n)?;
        let out = self.buf.slice(self.pos..self.pos + n);
        self.pos += n;
        Ok(out)
    }

    /// Everything left.
    pub fn rest(&mut self) -> Bytes {
        let out = self.buf.slice(self.pos..);
        self.pos = self.buf.len();
        out
    }

    /// Everything left, without consuming it.
    pub fn peek_rest(&self) -> &[u8] {
        &self.buf[self.pos..]
    }

    /// A sub-reader over the next `n` bytes (for length-delimited items).
    pub fn sub(&mut self, n: usize) -> Result<Reader> {
        let base = self.offset();
        Ok(Reader::with_base(self.bytes(n)?, base))
    }

    /// A u32 length checked against the bytes left and Slurm's 1 GiB limit: lengths
    /// from the wire are never trusted to allocate.
    fn block_len(&mut self) -> Result<usize> {
        let at = self.offset();
        let len = self.u32()?;
        if len > MAX_PACK_MEM_LEN || len as usize > self.remaining() {
            return Err(DecodeError::new(
                at,
                ErrorKind::BadStringLength {
                    len,
                    available: self.remaining(),
                },
            ));
        }
        Ok(len as usize)
    }

    /// `packstr`: u32 length (NUL included), bytes. 0 = NULL.
    pub fn packstr(&mut self) -> Result<PackStr> {
        let len = self.block_len()?;
        Ok(PackStr(if len == 0 {
            None
        } else {
            Some(self.bytes(len)?)
        }))
    }

    /// `packmem`: u32 length, bytes.
    pub fn packmem(&mut self) -> Result<Bytes> {
        let len = self.block_len()?;
        self.bytes(len)
    }

    /// A u32 element count that can be NO_VAL ("no list"); other counts must be
    /// coverable by the bytes left at `min_item` bytes per element.
    pub fn count(&mut self, min_item: usize) -> Result<Option<u32>> {
        let at = self.offset();
        let n = self.u32()?;
        if n == NO_VAL {
            return Ok(None);
        }
        if n > NO_VAL || (n as usize).saturating_mul(min_item.max(1)) > self.remaining() {
            return Err(DecodeError::new(at, ErrorKind::BadCount(n)));
        }
        Ok(Some(n))
    }

    /// Fails unless every byte was consumed.
    pub fn finish(&self) -> Result<()> {
        if self.remaining() != 0 {
            return Err(self.error(ErrorKind::TrailingBytes(self.remaining())));
        }
        Ok(())
    }
}

/// A `packstr` value kept exactly as on the wire: `None` = NULL (length 0),
/// `Some(bytes)` = the counted bytes, normally text plus its NUL.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct PackStr(pub Option<Bytes>);

impl PackStr {
    pub const NULL: PackStr = PackStr(None);

    /// A C string as Slurm packs it: the text followed by one NUL.
    pub fn from_text(s: &str) -> PackStr {
        let mut v = Vec::with_capacity(s.len() + 1);
        v.extend_from_slice(s.as_bytes());
        v.push(0);
        PackStr(Some(Bytes::from(v)))
    }

    pub fn is_null(&self) -> bool {
        self.0.is_none()
    }

    /// The text without its terminating NUL (lossy UTF-8); `None` for NULL.
    pub fn text(&self) -> Option<String> {
        self.0.as_ref().map(|b| {
            let t = b.strip_suffix(&[0]).unwrap_or(b);
            String::from_utf8_lossy(t).into_owned()
        })
    }

    pub fn wire_len(&self) -> usize {
        4 + self.0.as_ref().map_or(0, |b| b.len())
    }

    pub fn encode(&self, w: &mut impl BufMut) {
        match &self.0 {
            None => w.put_u32(0),
            Some(b) => {
                w.put_u32(b.len() as u32);
                w.put_slice(b);
            }
        }
    }
}

impl fmt::Debug for PackStr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.text() {
            None => f.write_str("NULL"),
            Some(t) => write!(f, "{t:?}"),
        }
    }
}

impl serde::Serialize for PackStr {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        match self.text() {
            None => s.serialize_none(),
            Some(t) => s.serialize_str(&t),
        }
    }
}

/// Writes a `packmem` block.
pub fn put_packmem(w: &mut impl BufMut, data: &[u8]) {
    w.put_u32(data.len() as u32);
    w.put_slice(data);
}

/// A record that decodes from the wire at a given protocol version.
pub trait Decode: Sized {
    fn decode(r: &mut Reader, version: ProtocolVersion) -> Result<Self>;
}

/// A record that encodes to the wire at a given protocol version.
pub trait Encode {
    fn encode(&self, w: &mut impl BufMut, version: ProtocolVersion);
}

/// A list as `slurm_pack_list` writes it: u32 NO_VAL for "no list", else a count
/// and the elements.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[serde(transparent)]
pub struct SlurmList<T>(pub Option<Vec<T>>);

impl<T: Decode> SlurmList<T> {
    /// `min_item` = fewest bytes one element can take (bounds the count).
    pub fn decode_with(r: &mut Reader, version: ProtocolVersion, min_item: usize) -> Result<Self> {
        match r.count(min_item)? {
            None => Ok(SlurmList(None)),
            Some(n) => {
                let mut v = Vec::with_capacity((n as usize).min(1024));
                for _ in 0..n {
                    v.push(T::decode(r, version)?);
                }
                Ok(SlurmList(Some(v)))
            }
        }
    }
}

impl<T: Encode> Encode for SlurmList<T> {
    fn encode(&self, w: &mut impl BufMut, version: ProtocolVersion) {
        match &self.0 {
            None => w.put_u32(NO_VAL),
            Some(v) => {
                w.put_u32(v.len() as u32);
                for item in v {
                    item.encode(w, version);
                }
            }
        }
    }
}

impl Decode for PackStr {
    fn decode(r: &mut Reader, _: ProtocolVersion) -> Result<Self> {
        r.packstr()
    }
}

impl Encode for PackStr {
    fn encode(&self, w: &mut impl BufMut, _: ProtocolVersion) {
        PackStr::encode(self, w)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packstr_keeps_null_empty_and_missing_nul_apart() {
        let wire: &[u8] = &[0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 2, b'h', b'i'];
        let mut r = Reader::new(Bytes::copy_from_slice(wire));
        let v = ProtocolVersion::V22_05;
        let a = PackStr::decode(&mut r, v).unwrap();
        let b = PackStr::decode(&mut r, v).unwrap();
        let c = PackStr::decode(&mut r, v).unwrap();
        assert!(a.is_null());
        assert_eq!(b.text().as_deref(), Some(""));
        assert_eq!(c.text().as_deref(), Some("hi"));
        let mut out = Vec::new();
        for s in [&a, &b, &c] {
            s.encode(&mut out);
        }
        assert_eq!(out, wire);
    }

    #[test]
    fn string_length_past_the_end_is_a_typed_error() {
        let mut r = Reader::with_base(Bytes::from_static(&[0, 0, 0, 9, b'x']), 100);
        let e = r.packstr().unwrap_err();
        assert_eq!(e.offset, 100);
        assert_eq!(e.reason(), "bad_string_length");
    }

    #[test]
    fn no_val_count_means_no_list() {
        let mut r = Reader::new(Bytes::from_static(&[0xff, 0xff, 0xff, 0xfe]));
        let l = SlurmList::<PackStr>::decode_with(&mut r, ProtocolVersion::V22_05, 4).unwrap();
        assert_eq!(l, SlurmList(None));
        let mut out = Vec::new();
        l.encode(&mut out, ProtocolVersion::V22_05);
        assert_eq!(out, [0xff, 0xff, 0xff, 0xfe]);
    }
}
