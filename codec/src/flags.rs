//! Header flags (spec §4.2). Unknown bits are kept verbatim and shown in hex.

use std::fmt;

#[derive(Copy, Clone, PartialEq, Eq, Hash, Default)]
pub struct HeaderFlags(pub u16);

impl HeaderFlags {
    pub const GLOBAL_AUTH_KEY: u16 = 0x0001;
    pub const SLURMDBD_CONNECTION: u16 = 0x0002;
    pub const KEEP_BUFFER: u16 = 0x0004;
    pub const DROP_PRIV: u16 = 0x0008;
    pub const USE_BCAST_NETWORK: u16 = 0x0010;
    pub const CTLD_QUEUE_PROCESSING: u16 = 0x0020;
    pub const NO_AUTH_CRED: u16 = 0x0040;
    pub const PACK_ADDRS: u16 = 0x0080;

    pub const NAMES: [(u16, &'static str); 8] = [
        (Self::GLOBAL_AUTH_KEY, "SLURM_GLOBAL_AUTH_KEY"),
        (Self::SLURMDBD_CONNECTION, "SLURMDBD_CONNECTION"),
        (Self::KEEP_BUFFER, "SLURM_MSG_KEEP_BUFFER"),
        (Self::DROP_PRIV, "SLURM_DROP_PRIV"),
        (Self::USE_BCAST_NETWORK, "USE_BCAST_NETWORK"),
        (Self::CTLD_QUEUE_PROCESSING, "CTLD_QUEUE_PROCESSING"),
        (Self::NO_AUTH_CRED, "SLURM_NO_AUTH_CRED"),
        (Self::PACK_ADDRS, "SLURM_PACK_ADDRS"),
    ];

    pub fn contains(self, bit: u16) -> bool {
        self.0 & bit != 0
    }

    /// Names joined by `|`, unknown bits as hex, "0" for none.
    pub fn names(self) -> String {
        if self.0 == 0 {
            return "0".into();
        }
        let mut parts: Vec<String> = Vec::new();
        let mut rest = self.0;
        for (bit, name) in Self::NAMES {
            if self.0 & bit != 0 {
                parts.push(name.into());
                rest &= !bit;
            }
        }
        if rest != 0 {
            parts.push(format!("0x{rest:04x}"));
        }
        parts.join("|")
    }
}

impl fmt::Debug for HeaderFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.names())
    }
}

impl serde::Serialize for HeaderFlags {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.names())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_known_and_unknown_bits() {
        assert_eq!(HeaderFlags(0).names(), "0");
        assert_eq!(
            HeaderFlags(0x3).names(),
            "SLURM_GLOBAL_AUTH_KEY|SLURMDBD_CONNECTION"
        );
        assert_eq!(
            HeaderFlags(0x8041).names(),
            "SLURM_GLOBAL_AUTH_KEY|SLURM_NO_AUTH_CRED|0x8000"
        );
    }
}
