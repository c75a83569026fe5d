//! Which backend writes the rules, and why (`status` prints the reason).

use super::host::{self, HostError, IptLive};
use super::iptables::Programs;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BackendArg {
    /// The host's `iptables` (legacy or the nft shim, whichever it is).
    Iptables,
    /// `iptables-legacy` explicitly.
    IptablesLegacy,
    /// `iptables-nft` (the shim) explicitly.
    IptablesNft,
    /// Native nftables: `table inet fedproxy`.
    Nft,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Iptables(Programs),
    Nft,
}

impl Backend {
    pub fn from_arg(a: BackendArg) -> Backend {
        match a {
            BackendArg::Iptables => Backend::Iptables(Programs::DEFAULT),
            BackendArg::IptablesLegacy => Backend::Iptables(Programs::LEGACY),
            BackendArg::IptablesNft => Backend::Iptables(Programs::NFT_SHIM),
            BackendArg::Nft => Backend::Nft,
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Backend::Iptables(p) => p.v4,
            Backend::Nft => "nft",
        }
    }
}

/// The backend and the sentence that explains the choice.
#[derive(Debug, Clone)]
pub struct Choice {
    pub backend: Backend,
    pub reason: String,
}

/// Tables the iptables-nft shim creates; any other table is the host's own
/// native nftables firewall.
fn is_iptables_nft_table(t: &str) -> bool {
    let mut w = t.split_whitespace();
    let (Some(family), Some(name)) = (w.next(), w.next()) else {
        return false;
    };
    matches!(family, "ip" | "ip6" | "arp" | "bridge")
        && matches!(
            name,
            "filter" | "nat" | "mangle" | "raw" | "security" | "broute"
        )
}

/// Picks the backend for this host:
/// 1. rules of ours already in place keep their backend (remove/status must see them);
/// 2. a native nftables ruleset (a table the iptables shim did not make) → nft,
///    so the rules sit beside the host's firewall in the same framework;
/// 3. an `iptables` program → iptables (legacy or shim, as the host has it);
/// 4. nft alone → nft.
pub fn detect() -> Result<Choice, HostError> {
    let nft_tables = host::nft_tables()?;
    let has_iptables = host::find_program("iptables").is_some();
    if let Some(t) = &nft_tables {
        if t.iter().any(|t| t == "inet fedproxy") {
            return Ok(Choice {
                backend: Backend::Nft,
                reason: "table inet fedproxy (rules of the nft backend) is present".into(),
            });
        }
    }
    if has_iptables {
        if let Some(live) = IptLive::read("iptables")? {
            if live.any_fedproxy_chain() {
                return Ok(Choice {
                    backend: Backend::Iptables(Programs::DEFAULT),
                    reason: "FEDPROXY_* chains (rules of the iptables backend) are present".into(),
                });
            }
        }
    }
    if let Some(t) = &nft_tables {
        if let Some(native) = t.iter().find(|t| !is_iptables_nft_table(t)) {
            return Ok(Choice {
                backend: Backend::Nft,
                reason: format!(
                    "the host's firewall is native nftables (table {native}); the rules go into their own table beside it"
                ),
            });
        }
    }
    if has_iptables {
        let version =
            host::run(&super::command::Command::new(["iptables", "-V"])).unwrap_or_default();
        let kind = if version.contains("legacy") {
            "iptables-legacy"
        } else if version.contains("nf_tables") {
            "the iptables-nft shim"
        } else {
            "iptables"
        };
        return Ok(Choice {
            backend: Backend::Iptables(Programs::DEFAULT),
            reason: format!(
                "no native nftables table in use and `iptables` is {kind} ({})",
                version.trim()
            ),
        });
    }
    if nft_tables.is_some() {
        return Ok(Choice {
            backend: Backend::Nft,
            reason: "nft is installed and iptables is not".into(),
        });
    }
    Err(HostError::Spawn {
        cmd: "iptables / nft".into(),
        prog: "iptables or nftables".into(),
        err: std::io::Error::new(
            std::io::ErrorKind::NotFound,
            "neither iptables nor nft found",
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shim_tables_are_told_from_native_ones() {
        assert!(is_iptables_nft_table("ip nat"));
        assert!(is_iptables_nft_table("ip6 filter"));
        assert!(!is_iptables_nft_table("inet filter"));
        assert!(!is_iptables_nft_table("ip firewalld"));
        assert!(!is_iptables_nft_table("inet fedproxy"));
    }
}
