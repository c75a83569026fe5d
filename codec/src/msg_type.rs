//! The message-type table (spec §7): Slurm's numbers and names, and the slurmdbd
//! numbers used on DBD persistent connections. One table; everything else looks
//! names up here.

use std::fmt;

/// A message type number as carried on the wire.
#[derive(Copy, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct MsgType(pub u16);

/// Which numbering a connection uses: slurmctld RPCs, or slurmdbd's on DBD
/// persistent connections (where 1401…1500 are DBD_* and 1433 is PERSIST_RC).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum Namespace {
    Slurm,
    Dbd,
}

macro_rules! msg_types {
    ($( $num:literal $name:ident ),* $(,)?) => {
        impl MsgType {
            $( pub const $name: MsgType = MsgType($num); )*
        }
        /// (number, name) sorted by number: `slurm_msg_type_t`, 22.05 names.
        static SLURM_TABLE: &[(u16, &str)] = &[ $( ($num, stringify!($name)) ),* ];
    };
}

macro_rules! dbd_types {
    ($( $num:literal $name:ident ),* $(,)?) => {
        /// DBD message types (`slurmdbd_msg_type_t`), as sent on DBD persistent connections.
        pub mod dbd {
            use super::MsgType;
            $( pub const $name: MsgType = MsgType($num); )*
        }
        static DBD_TABLE: &[(u16, &str)] = &[ $( ($num, stringify!($name)) ),* ];
    };
}

include!("msg_type_table.rs");

fn lookup(table: &'static [(u16, &'static str)], n: u16) -> Option<&'static str> {
    table
        .binary_search_by_key(&n, |&(k, _)| k)
        .ok()
        .map(|i| table[i].1)
}

impl MsgType {
    /// Slurm's name for this number (slurmctld numbering).
    pub fn name(self) -> Option<&'static str> {
        lookup(SLURM_TABLE, self.0)
    }

    /// The name in a namespace; on DBD connections the DBD table wins, except for
    /// numbers only the Slurm table has (PERSIST_INIT 6500).
    pub fn name_in(self, ns: Namespace) -> Option<&'static str> {
        match ns {
            Namespace::Slurm => self.name(),
            Namespace::Dbd => lookup(DBD_TABLE, self.0).or_else(|| self.name()),
        }
    }

    /// True when the number has a name in the namespace.
    pub fn is_known_in(self, ns: Namespace) -> bool {
        self.name_in(ns).is_some()
    }

    /// Display name: the table's, else `UNKNOWN_<n>`.
    pub fn display_in(self, ns: Namespace) -> String {
        match self.name_in(ns) {
            Some(n) => n.to_string(),
            None => format!("UNKNOWN_{}", self.0),
        }
    }

    /// True for message types that only a server sends back (replies): used to tell
    /// client from server when a capture or a proxy starts mid-connection.
    pub fn is_reply(self, ns: Namespace) -> bool {
        if matches!(self.0, 1433 | 8001 | 8002 | 8003) {
            return true;
        }
        match self.name_in(ns) {
            Some(n) => n.starts_with("RESPONSE_") || n.starts_with("DBD_GOT_") || n == "DBD_ID_RC",
            None => false,
        }
    }

    /// Every named Slurm type (for tests and metric pre-registration).
    pub fn all_slurm() -> impl Iterator<Item = (MsgType, &'static str)> {
        SLURM_TABLE.iter().map(|&(n, s)| (MsgType(n), s))
    }

    /// Every named DBD type.
    pub fn all_dbd() -> impl Iterator<Item = (MsgType, &'static str)> {
        DBD_TABLE.iter().map(|&(n, s)| (MsgType(n), s))
    }
}

impl fmt::Debug for MsgType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}({})", self.display_in(Namespace::Slurm), self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_are_sorted_and_unique() {
        for t in [SLURM_TABLE, DBD_TABLE] {
            assert!(
                t.windows(2).all(|w| w[0].0 < w[1].0),
                "table must be strictly sorted"
            );
        }
    }

    #[test]
    fn federation_and_collision_numbers() {
        assert_eq!(MsgType(2024).name(), Some("REQUEST_RESERVATION_INFO"));
        assert_eq!(MsgType(2049).name(), Some("REQUEST_FED_INFO"));
        assert_eq!(MsgType(4502).name(), Some("REQUEST_SIB_MSG"));
        assert_eq!(MsgType(6500).name(), Some("REQUEST_PERSIST_INIT"));
        assert_eq!(MsgType(1433).name_in(Namespace::Dbd), Some("PERSIST_RC"));
        assert_eq!(
            MsgType(1441).name_in(Namespace::Dbd),
            Some("DBD_STEP_COMPLETE")
        );
        assert_eq!(
            MsgType(6500).name_in(Namespace::Dbd),
            Some("REQUEST_PERSIST_INIT")
        );
        assert_eq!(MsgType(1999).display_in(Namespace::Slurm), "UNKNOWN_1999");
    }
}
