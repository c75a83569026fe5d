//! Protocol versions (spec §0, §2): `major << 8`, 0x2600 = 22.05 … 0x2D00 = 26.05.

use std::fmt;

/// A protocol version as carried in headers, PERSIST_INIT bodies and cluster records.
#[derive(Copy, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct ProtocolVersion(pub u16);

impl ProtocolVersion {
    pub const V20_11: Self = Self(0x2400);
    pub const V21_08: Self = Self(0x2500);
    pub const V22_05: Self = Self(0x2600);
    pub const V23_02: Self = Self(0x2700);
    pub const V23_11: Self = Self(0x2800);
    pub const V24_05: Self = Self(0x2900);
    pub const V24_11: Self = Self(0x2A00);
    pub const V25_05: Self = Self(0x2B00);
    pub const V25_11: Self = Self(0x2C00);
    pub const V26_05: Self = Self(0x2D00);

    /// Oldest header version any covered release accepts (20.11, accepted by 22.05).
    pub const OLDEST: Self = Self::V20_11;
    /// Newest version this codec knows.
    pub const NEWEST: Self = Self::V26_05;

    /// Every version whose header layout this codec decodes.
    pub const ALL: [Self; 10] = [
        Self::V20_11,
        Self::V21_08,
        Self::V22_05,
        Self::V23_02,
        Self::V23_11,
        Self::V24_05,
        Self::V24_11,
        Self::V25_05,
        Self::V25_11,
        Self::V26_05,
    ];

    /// The 22.05 → 26.05 releases (the ones that write the modern layout).
    pub const MODERN: [Self; 8] = [
        Self::V22_05,
        Self::V23_02,
        Self::V23_11,
        Self::V24_05,
        Self::V24_11,
        Self::V25_05,
        Self::V25_11,
        Self::V26_05,
    ];

    /// True for a version some covered release can put in a header.
    pub fn is_known(self) -> bool {
        self.0 & 0xff == 0 && (Self::OLDEST.0..=Self::NEWEST.0).contains(&self.0)
    }

    /// 20.11/21.08 headers carry an extra u16 (msg_index) after the flags.
    pub fn has_msg_index(self) -> bool {
        self < Self::V22_05
    }

    /// The release name, e.g. "22.05"; `None` for an unknown value.
    pub fn release(self) -> Option<&'static str> {
        Some(match self {
            Self::V20_11 => "20.11",
            Self::V21_08 => "21.08",
            Self::V22_05 => "22.05",
            Self::V23_02 => "23.02",
            Self::V23_11 => "23.11",
            Self::V24_05 => "24.05",
            Self::V24_11 => "24.11",
            Self::V25_05 => "25.05",
            Self::V25_11 => "25.11",
            Self::V26_05 => "26.05",
            _ => return None,
        })
    }
}

impl fmt::Debug for ProtocolVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for ProtocolVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.release() {
            Some(r) => write!(f, "{r}"),
            None => write!(f, "0x{:04x}", self.0),
        }
    }
}

impl serde::Serialize for ProtocolVersion {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}
