//! Configuration of legacy peers: `[[peer]]` entries and the `[legacy]` table.
//!
//! ```toml
//! [legacy]
//! munge_socket = "/run/munge/munge.socket.2"   # the cluster's munged (AuthInfo socket)
//! slurm_user_uid = 64030        # replies to this uid (and root) are not uid-restricted
//! upstream_version = 0x2600     # version of translated requests toward the real slurmctld
//! local_cluster = "c1"          # the local slurmctld's cluster name (legacy 2025 local_cluster)
//! require_peer_credential = true
//! fed_ids = { alpha = 2 }       # fed ids for clusters legacy FLURM reports (it has none)
//!
//! [[peer]]
//! name = "flurm-a"              # metric/log label (default: match or cluster)
//! match = "10.0.0.0/24"         # remote address or CIDR ...
//! cluster = "legacy"             # optional: the peer's cluster name (fed ids, labels)
//! dialect = "legacy-flurm"
//! fed_id = 3                    # the peer cluster's fed id
//! ```

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::str::FromStr;

use ipnet::IpNet;
use serde::Deserialize;
use slurm_codec::legacy::translate::FedIds;
use slurm_codec::ProtocolVersion;

/// How a peer speaks.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Dialect {
    /// Genuine Slurm: nothing is translated (the default for every peer).
    Slurm,
    /// FLURM at or before 222bcaf: fed info numbered 2024/2025.
    LegacyFlurm,
}

/// One `[[peer]]` entry.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeerConfig {
    pub name: Option<String>,
    /// An address or CIDR ("10.0.0.7", "10.0.0.0/24", "::1/128").
    #[serde(rename = "match")]
    pub match_addr: Option<String>,
    /// A cluster name (for connections the relay can attribute to a cluster).
    pub cluster: Option<String>,
    pub dialect: Dialect,
    pub fed_id: Option<u32>,
}

/// The `[legacy]` table.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LegacyConfig {
    /// munged's socket; default: libmunge's default socket.
    pub munge_socket: Option<PathBuf>,
    /// SlurmUser's uid: credentials for replies to it (and to root) are not restricted.
    #[serde(default)]
    pub slurm_user_uid: Option<u32>,
    /// Header version of requests translated toward the real slurmctld.
    #[serde(default = "default_upstream_version")]
    pub upstream_version: u16,
    /// The local slurmctld's cluster name (legacy 2025 `local_cluster`).
    pub local_cluster: Option<String>,
    /// Refuse a legacy 2025 whose credential does not verify (FLURM without munge
    /// sends an empty one). Default true.
    #[serde(default = "default_true")]
    pub require_peer_credential: bool,
    /// Fed ids of clusters a legacy peer reports, by name.
    #[serde(default)]
    pub fed_ids: HashMap<String, u32>,
}

fn default_upstream_version() -> u16 {
    ProtocolVersion::V22_05.0
}

fn default_true() -> bool {
    true
}

impl Default for LegacyConfig {
    fn default() -> Self {
        LegacyConfig {
            munge_socket: None,
            slurm_user_uid: None,
            upstream_version: default_upstream_version(),
            local_cluster: None,
            require_peer_credential: true,
            fed_ids: HashMap::new(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("[[peer]] #{0}: set `match` (the peer's address or CIDR); `cluster` may name it too")]
    MatchOrCluster(usize),
    #[error("[[peer]] #{0}: a legacy-flurm peer needs `match` (its address or CIDR): connections are recognised by address, a cluster name alone cannot be attributed to a connection")]
    ClusterNeedsMatch(usize),
    #[error("[[peer]] #{0}: bad address or CIDR {1:?}")]
    BadCidr(usize, String),
    #[error("[[peer]] #{0}: fed_id {1} is outside 1..=63")]
    BadFedId(usize, u32),
    #[error("[legacy] upstream_version 0x{0:04x} is not a known Slurm protocol version")]
    BadVersion(u16),
}

/// A resolved peer.
#[derive(Clone, Debug, PartialEq)]
pub struct Peer {
    pub name: String,
    pub dialect: Dialect,
    pub fed_id: Option<u32>,
    pub cluster: Option<String>,
    net: Option<IpNet>,
}

/// The peers, checked and ready for lookups.
#[derive(Clone, Debug, Default)]
pub struct PeerTable {
    peers: Vec<Peer>,
    fed_ids: HashMap<String, u32>,
}

impl PeerTable {
    pub fn new(entries: &[PeerConfig], legacy: &LegacyConfig) -> Result<PeerTable, ConfigError> {
        if !ProtocolVersion(legacy.upstream_version).is_known() {
            return Err(ConfigError::BadVersion(legacy.upstream_version));
        }
        let mut peers = Vec::new();
        let mut fed_ids = legacy.fed_ids.clone();
        for (i, e) in entries.iter().enumerate() {
            // Legacy peers are recognised by address; `cluster` names the peer's
            // cluster (fed ids, labels). A slurm-dialect peer may be a name only.
            let net = match (&e.match_addr, &e.cluster) {
                (Some(m), _) => {
                    Some(parse_net(m).ok_or_else(|| ConfigError::BadCidr(i, m.clone()))?)
                }
                (None, Some(_)) if e.dialect == Dialect::LegacyFlurm => {
                    return Err(ConfigError::ClusterNeedsMatch(i))
                }
                (None, Some(_)) => None,
                (None, None) => return Err(ConfigError::MatchOrCluster(i)),
            };
            if let Some(id) = e.fed_id {
                if !(1..=63).contains(&id) {
                    return Err(ConfigError::BadFedId(i, id));
                }
                if let Some(c) = &e.cluster {
                    fed_ids.insert(c.clone(), id);
                }
            }
            let name = e
                .name
                .clone()
                .or_else(|| e.cluster.clone())
                .or_else(|| e.match_addr.clone())
                .unwrap_or_default();
            peers.push(Peer {
                name,
                dialect: e.dialect,
                fed_id: e.fed_id,
                cluster: e.cluster.clone(),
                net,
            });
        }
        Ok(PeerTable { peers, fed_ids })
    }

    /// The first peer matching the remote address or (if the relay knows it) the
    /// remote cluster's name.
    pub fn lookup(&self, addr: IpAddr, cluster: Option<&str>) -> Option<&Peer> {
        let addr = canonical(addr);
        self.peers.iter().find(|p| match (&p.net, &p.cluster) {
            (Some(net), _) => net.contains(&addr),
            (None, Some(c)) => cluster == Some(c.as_str()),
            (None, None) => false,
        })
    }

    /// The legacy-FLURM peer matching, if any (the only case where anything is
    /// translated).
    pub fn legacy_peer(&self, addr: IpAddr, cluster: Option<&str>) -> Option<&Peer> {
        self.lookup(addr, cluster)
            .filter(|p| p.dialect == Dialect::LegacyFlurm)
    }

    pub fn is_empty(&self) -> bool {
        self.peers.is_empty()
    }

    pub fn peers(&self) -> &[Peer] {
        &self.peers
    }

    /// Fed ids by cluster name: `[legacy].fed_ids` plus every `[[peer]]` with both
    /// `cluster` and `fed_id`.
    pub fn fed_ids(&self) -> &HashMap<String, u32> {
        &self.fed_ids
    }

    /// Fed ids for one peer's answer: the table, plus the peer's own fed_id for
    /// the cluster legacy FLURM names as its local one.
    pub fn fed_ids_for(&self, peer: &Peer, local_cluster: Option<&str>) -> HashMap<String, u32> {
        let mut ids = self.fed_ids.clone();
        if let (Some(id), Some(name)) = (peer.fed_id, peer.cluster.as_deref().or(local_cluster)) {
            ids.entry(name.to_string()).or_insert(id);
        }
        ids
    }
}

/// IPv4-mapped IPv6 addresses (dual-stack listeners) compare as IPv4.
fn canonical(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(addr),
        v4 => v4,
    }
}

fn parse_net(s: &str) -> Option<IpNet> {
    IpNet::from_str(s)
        .ok()
        .or_else(|| IpAddr::from_str(s).ok().map(IpNet::from))
}

impl FedIds for PeerTable {
    fn fed_id(&self, cluster: &str) -> Option<u32> {
        self.fed_ids.get(cluster).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct File {
        #[serde(default)]
        legacy: LegacyConfig,
        #[serde(default, rename = "peer")]
        peers: Vec<PeerConfig>,
    }

    #[test]
    fn parses_and_matches_by_cidr_and_cluster() {
        let f: File = toml::from_str(
            r#"
            [legacy]
            local_cluster = "c1"
            fed_ids = { alpha = 2 }
            [[peer]]
            match = "10.0.0.0/24"
            dialect = "legacy-flurm"
            fed_id = 3
            [[peer]]
            match = "192.0.2.1"
            cluster = "legacy"
            dialect = "legacy-flurm"
            fed_id = 1
            [[peer]]
            match = "127.0.0.9"
            dialect = "slurm"
            "#,
        )
        .unwrap();
        let t = PeerTable::new(&f.peers, &f.legacy).unwrap();
        assert_eq!(
            t.legacy_peer("10.0.0.7".parse().unwrap(), None)
                .unwrap()
                .name,
            "10.0.0.0/24"
        );
        assert_eq!(
            t.legacy_peer("::ffff:10.0.0.7".parse().unwrap(), None)
                .unwrap()
                .fed_id,
            Some(3)
        );
        assert!(t.legacy_peer("10.0.1.7".parse().unwrap(), None).is_none());
        assert_eq!(
            t.legacy_peer("192.0.2.1".parse().unwrap(), None)
                .unwrap()
                .name,
            "legacy"
        );
        assert!(
            t.legacy_peer("127.0.0.9".parse().unwrap(), None).is_none(),
            "slurm dialect is never legacy"
        );
        assert!(t.lookup("127.0.0.9".parse().unwrap(), None).is_some());
        assert_eq!(t.fed_id("alpha"), Some(2));
        assert_eq!(t.fed_id("legacy"), Some(1));
    }

    #[test]
    fn bad_entries_are_errors() {
        let p = |m: Option<&str>, c: Option<&str>, id| PeerConfig {
            name: None,
            match_addr: m.map(Into::into),
            cluster: c.map(Into::into),
            dialect: Dialect::LegacyFlurm,
            fed_id: id,
        };
        let l = LegacyConfig::default();
        assert_eq!(
            PeerTable::new(&[p(None, None, None)], &l).unwrap_err(),
            ConfigError::MatchOrCluster(0)
        );
        assert_eq!(
            PeerTable::new(&[p(None, Some("legacy"), None)], &l).unwrap_err(),
            ConfigError::ClusterNeedsMatch(0)
        );
        assert!(matches!(
            PeerTable::new(&[p(Some("10.0.0.0/99"), None, None)], &l),
            Err(ConfigError::BadCidr(0, _))
        ));
        assert_eq!(
            PeerTable::new(&[p(Some("10.0.0.1"), None, Some(64))], &l).unwrap_err(),
            ConfigError::BadFedId(0, 64)
        );
        let bad = LegacyConfig {
            upstream_version: 0x2650,
            ..LegacyConfig::default()
        };
        assert_eq!(
            PeerTable::new(&[], &bad).unwrap_err(),
            ConfigError::BadVersion(0x2650)
        );
    }
}
