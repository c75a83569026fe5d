//! Config → rule set: the pure part of `fedproxy rules`. No command runs here;
//! the backends ([`super::iptables`], [`super::nft`]) render this set.
//!
//! The model (README, "Deploying beside a head node"):
//! * nat PREROUTING: TCP to the slurmctld port from other hosts → inbound listener;
//! * nat OUTPUT: the proxy's own sockets (its primary group) are left alone; TCP
//!   to the slurmctld port on a local address (clients, slurmd) → inbound
//!   listener; TCP to the slurmctld port elsewhere (slurmctld to its siblings) →
//!   outbound listener;
//! * transparent inbound: the proxy's upstream connections to slurmctld get a
//!   connection mark, slurmctld's replies on them a packet mark, and an `ip rule`
//!   sends marked packets to a table whose only route is `local 0.0.0.0/0 dev lo`,
//!   so they reach the proxy's IP_TRANSPARENT socket instead of the network.

use std::net::SocketAddr;

use thiserror::Error;

use super::config::RulesConfig;
use crate::run::config::{Config, ListenerKind};

/// Why a configuration gives no usable rule set.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum SpecError {
    #[error("no [inbound] or [outbound] listener: there is nothing to redirect to ([[route]]s need no rules)")]
    NoInterceptingListener,
    #[error("{key} = {addr}: a redirect needs a fixed port, not port 0")]
    PortZero { key: &'static str, addr: SocketAddr },
    #[error("rules.exempt_group = {0:?}: expected a group name (letters, digits, '_', '-', not starting with a digit or '-') or a numeric gid")]
    BadGroup(String),
    #[error("rules.mark = {0:#x}: expected one bit (0x1, 0x2, 0x4, ...)")]
    BadMark(u32),
    #[error("rules.route_table = {0}: expected 1 ..= 252 or 256 ..= 4294967294 (253-255 are the kernel's default, main and local tables)")]
    BadTable(u32),
    #[error("rules.slurmctld_port = 0 is not a port")]
    BadPort,
}

/// Netfilter table of a rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Table {
    Nat,
    Mangle,
}

/// The built-in hook a chain of ours is attached to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Hook {
    Prerouting,
    Output,
}

/// One of our chains: (table, hook).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Chain {
    pub table: Table,
    pub hook: Hook,
}

impl Chain {
    pub const NAT_PREROUTING: Chain = Chain {
        table: Table::Nat,
        hook: Hook::Prerouting,
    };
    pub const NAT_OUTPUT: Chain = Chain {
        table: Table::Nat,
        hook: Hook::Output,
    };
    pub const MANGLE_OUTPUT: Chain = Chain {
        table: Table::Mangle,
        hook: Hook::Output,
    };
    /// Every chain fedproxy may create, in the order they are applied.
    pub const ALL: [Chain; 3] = [
        Chain::NAT_PREROUTING,
        Chain::NAT_OUTPUT,
        Chain::MANGLE_OUTPUT,
    ];
}

/// Which IP families a rule applies to: the listener's address decides
/// (a 0.0.0.0 listener cannot take redirected IPv6 connections).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Families {
    Ipv4,
    Both,
}

/// A packet match. Several in one rule are ANDed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Match {
    TcpDport(u16),
    TcpSport(u16),
    /// The socket's owner has this primary group (output hooks only).
    OwnerGroup(String),
    /// The destination is an address of this host.
    DstLocal,
    /// The connection mark has all bits of this mask.
    ConnMark(u32),
}

/// What a matching packet gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Leave the rest of our chain (the packet continues unchanged).
    Return,
    /// DNAT to this port on the receiving address (REDIRECT).
    Redirect(u16),
    /// Set these bits in the connection mark.
    SetConnMark(u32),
    /// Set these bits in the packet mark (re-routes the packet).
    SetMark(u32),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub chain: Chain,
    pub families: Families,
    pub matches: Vec<Match>,
    pub action: Action,
    /// Says why the rule exists; every rule has one (`fedproxy: ...`).
    pub comment: String,
}

/// The `ip rule` + local route of transparent mode (IPv4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyRoute {
    pub mark: u32,
    pub table: u32,
    pub priority: u32,
}

/// Everything `fedproxy rules apply` installs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleSet {
    pub rules: Vec<Rule>,
    pub policy_route: Option<PolicyRoute>,
    /// From the config, also when transparent mode is off: `remove` and
    /// `status` look for a policy route left by an earlier transparent config.
    pub mark: u32,
    pub route_table: u32,
    pub rule_priority: u32,
}

impl RuleSet {
    /// The rules of one chain, in order.
    pub fn chain(&self, chain: Chain) -> impl Iterator<Item = &Rule> {
        self.rules.iter().filter(move |r| r.chain == chain)
    }

    /// Our chains that have rules, in apply order.
    pub fn used_chains(&self) -> Vec<Chain> {
        Chain::ALL
            .into_iter()
            .filter(|c| self.chain(*c).next().is_some())
            .collect()
    }

    /// Whether any rule needs IPv6 too.
    pub fn has_ipv6(&self) -> bool {
        self.rules.iter().any(|r| r.families == Families::Both)
    }

    /// The rule set a configuration asks for.
    pub fn from_config(cfg: &Config, rc: &RulesConfig) -> Result<RuleSet, SpecError> {
        validate_group(&rc.exempt_group)?;
        if rc.mark.count_ones() != 1 {
            return Err(SpecError::BadMark(rc.mark));
        }
        if rc.route_table == 0
            || (253..=255).contains(&rc.route_table)
            || rc.route_table == u32::MAX
        {
            return Err(SpecError::BadTable(rc.route_table));
        }
        let mut inbound = None;
        let mut outbound = None;
        for l in cfg.listeners() {
            match l.kind {
                ListenerKind::Inbound {
                    upstream,
                    transparent,
                } => inbound = Some((l.listen, upstream, transparent)),
                ListenerKind::Outbound => outbound = Some(l.listen),
                ListenerKind::Route { .. } => {}
            }
        }
        if inbound.is_none() && outbound.is_none() {
            return Err(SpecError::NoInterceptingListener);
        }
        let ctld = match rc.slurmctld_port {
            Some(0) => return Err(SpecError::BadPort),
            Some(p) => p,
            None => inbound.map(|(_, up, _)| up.port()).unwrap_or(6817),
        };
        let families = |a: SocketAddr| {
            if a.is_ipv6() {
                Families::Both
            } else {
                Families::Ipv4
            }
        };
        let group = rc.exempt_group.clone();
        let mut rules = Vec::new();
        let mut policy_route = None;
        if let Some((listen, _, _)) = inbound {
            if listen.port() == 0 {
                return Err(SpecError::PortZero {
                    key: "inbound.listen",
                    addr: listen,
                });
            }
            rules.push(Rule {
                chain: Chain::NAT_PREROUTING,
                families: families(listen),
                matches: vec![Match::TcpDport(ctld)],
                action: Action::Redirect(listen.port()),
                comment: format!(
                    "fedproxy: slurmctld traffic from other hosts -> inbound listener :{}",
                    listen.port()
                ),
            });
        }
        rules.push(Rule {
            chain: Chain::NAT_OUTPUT,
            families: inbound
                .map(|i| families(i.0))
                .into_iter()
                .chain(outbound.map(families))
                .fold(Families::Ipv4, |a, f| if f == Families::Both { f } else { a }),
            matches: vec![Match::OwnerGroup(group.clone())],
            action: Action::Return,
            comment: format!(
                "fedproxy: the proxy's own connections (group {group}) are not redirected (no loops)"
            ),
        });
        if let Some((listen, _, _)) = inbound {
            rules.push(Rule {
                chain: Chain::NAT_OUTPUT,
                families: families(listen),
                matches: vec![Match::TcpDport(ctld), Match::DstLocal],
                action: Action::Redirect(listen.port()),
                comment: format!(
                    "fedproxy: local clients and slurmd -> inbound listener :{}",
                    listen.port()
                ),
            });
        }
        if let Some(listen) = outbound {
            if listen.port() == 0 {
                return Err(SpecError::PortZero {
                    key: "outbound.listen",
                    addr: listen,
                });
            }
            rules.push(Rule {
                chain: Chain::NAT_OUTPUT,
                families: families(listen),
                matches: vec![Match::TcpDport(ctld)],
                action: Action::Redirect(listen.port()),
                comment: format!(
                    "fedproxy: slurmctld to its siblings -> outbound listener :{} (SO_ORIGINAL_DST)",
                    listen.port()
                ),
            });
        }
        if let Some((_, _, true)) = inbound {
            let mark = rc.mark;
            rules.push(Rule {
                chain: Chain::MANGLE_OUTPUT,
                families: Families::Ipv4,
                matches: vec![
                    Match::TcpDport(ctld),
                    Match::OwnerGroup(group.clone()),
                    Match::DstLocal,
                ],
                action: Action::SetConnMark(mark),
                comment: "fedproxy: the proxy's transparent connections to slurmctld".into(),
            });
            rules.push(Rule {
                chain: Chain::MANGLE_OUTPUT,
                families: Families::Ipv4,
                matches: vec![Match::TcpSport(ctld), Match::ConnMark(mark)],
                action: Action::SetMark(mark),
                comment: format!(
                    "fedproxy: slurmctld's replies to them -> routing table {} (back to the proxy)",
                    rc.route_table
                ),
            });
            policy_route = Some(PolicyRoute {
                mark,
                table: rc.route_table,
                priority: rc.rule_priority,
            });
        }
        Ok(RuleSet {
            rules,
            policy_route,
            mark: rc.mark,
            route_table: rc.route_table,
            rule_priority: rc.rule_priority,
        })
    }
}

/// A name that is safe unquoted in iptables arguments, nft scripts and shells.
fn validate_group(g: &str) -> Result<(), SpecError> {
    let numeric = !g.is_empty() && g.len() <= 10 && g.bytes().all(|b| b.is_ascii_digit());
    let name = !g.is_empty()
        && g.len() <= 32
        && g.bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && g.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if numeric || name {
        Ok(())
    } else {
        Err(SpecError::BadGroup(g.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(toml: &str) -> Result<RuleSet, SpecError> {
        let cfg = Config::from_toml(toml).unwrap();
        RuleSet::from_config(&cfg, &RulesConfig::default())
    }

    #[test]
    fn default_listeners_give_the_documented_nat_rules() {
        let s = set("[inbound]\n[outbound]\n").unwrap();
        assert_eq!(
            s.used_chains(),
            vec![Chain::NAT_PREROUTING, Chain::NAT_OUTPUT]
        );
        let pre: Vec<_> = s.chain(Chain::NAT_PREROUTING).collect();
        assert_eq!(pre.len(), 1);
        assert_eq!(pre[0].matches, vec![Match::TcpDport(6817)]);
        assert_eq!(pre[0].action, Action::Redirect(16817));
        let out: Vec<_> = s.chain(Chain::NAT_OUTPUT).collect();
        assert_eq!(out.len(), 3);
        // the exemption comes first, or the proxy's own connections loop
        assert_eq!(out[0].matches, vec![Match::OwnerGroup("fedproxy".into())]);
        assert_eq!(out[0].action, Action::Return);
        assert_eq!(out[1].matches, vec![Match::TcpDport(6817), Match::DstLocal]);
        assert_eq!(out[1].action, Action::Redirect(16817));
        assert_eq!(out[2].action, Action::Redirect(16818));
        assert!(s.policy_route.is_none());
        assert!(s.rules.iter().all(|r| r.comment.starts_with("fedproxy: ")));
        assert!(!s.has_ipv6());
    }

    #[test]
    fn ports_come_from_the_config() {
        let s = set("[inbound]\nlisten = \"0.0.0.0:20001\"\nupstream = \"127.0.0.1:7817\"\n[outbound]\nlisten = \"0.0.0.0:20002\"\n").unwrap();
        let r: Vec<_> = s.rules.iter().map(|r| (&r.matches, &r.action)).collect();
        assert_eq!(
            r[0],
            (&vec![Match::TcpDport(7817)], &Action::Redirect(20001))
        );
        assert_eq!(*r[3].1, Action::Redirect(20002));
    }

    #[test]
    fn only_the_configured_listeners_get_rules() {
        let s = set("[outbound]\n").unwrap();
        assert_eq!(s.used_chains(), vec![Chain::NAT_OUTPUT]);
        assert_eq!(s.rules.len(), 2);
        let s = set("[inbound]\n").unwrap();
        assert_eq!(
            s.used_chains(),
            vec![Chain::NAT_PREROUTING, Chain::NAT_OUTPUT]
        );
        assert_eq!(s.rules.len(), 3);
        let e = set("[[route]]\nlisten = \"127.0.0.1:7001\"\nupstream = \"127.0.0.1:6817\"\n")
            .unwrap_err();
        assert_eq!(e, SpecError::NoInterceptingListener);
    }

    #[test]
    fn transparent_mode_adds_marks_and_the_policy_route() {
        let s = set("[inbound]\nupstream = \"10.0.0.1:6817\"\ntransparent = true\n[outbound]\n")
            .unwrap();
        let m: Vec<_> = s.chain(Chain::MANGLE_OUTPUT).collect();
        assert_eq!(m.len(), 2);
        assert_eq!(m[0].action, Action::SetConnMark(1));
        assert!(m[0].matches.contains(&Match::OwnerGroup("fedproxy".into())));
        assert_eq!(
            m[1].matches,
            vec![Match::TcpSport(6817), Match::ConnMark(1)]
        );
        assert_eq!(m[1].action, Action::SetMark(1));
        assert_eq!(
            s.policy_route,
            Some(PolicyRoute {
                mark: 1,
                table: 16817,
                priority: 100
            })
        );
    }

    #[test]
    fn ipv6_listeners_cover_both_families() {
        let s = set("[inbound]\nlisten = \"[::]:16817\"\n[outbound]\n").unwrap();
        assert_eq!(s.rules[0].families, Families::Both);
        assert_eq!(s.rules[1].families, Families::Both);
        assert_eq!(s.rules[3].families, Families::Ipv4);
        assert!(s.has_ipv6());
    }

    #[test]
    fn bad_values_are_refused() {
        let cfg = Config::from_toml("[inbound]\n[outbound]\n").unwrap();
        let with = |f: &dyn Fn(&mut RulesConfig)| {
            let mut rc = RulesConfig::default();
            f(&mut rc);
            RuleSet::from_config(&cfg, &rc)
        };
        assert_eq!(with(&|r| r.mark = 3).unwrap_err(), SpecError::BadMark(3));
        assert_eq!(with(&|r| r.mark = 0).unwrap_err(), SpecError::BadMark(0));
        assert_eq!(
            with(&|r| r.route_table = 254).unwrap_err(),
            SpecError::BadTable(254)
        );
        assert_eq!(
            with(&|r| r.slurmctld_port = Some(0)).unwrap_err(),
            SpecError::BadPort
        );
        for g in ["", "1a", "-x", "a b", "x\"y", "grp;rm"] {
            assert!(with(&|r| r.exempt_group = g.into()).is_err(), "{g:?}");
        }
        for g in ["fedproxy", "slurm_fp", "_x", "997"] {
            assert!(with(&|r| r.exempt_group = g.into()).is_ok(), "{g:?}");
        }
        let cfg0 = Config::from_toml("[inbound]\nlisten = \"0.0.0.0:0\"\n").unwrap();
        assert!(matches!(
            RuleSet::from_config(&cfg0, &RulesConfig::default()),
            Err(SpecError::PortZero {
                key: "inbound.listen",
                ..
            })
        ));
    }
}
