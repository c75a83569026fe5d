//! The iptables backend: rendering a [`RuleSet`] as iptables commands. Works
//! with iptables-legacy and with the iptables-nft shim (the same commands);
//! `ip6tables` gets the rules whose listener is IPv6.
//!
//! Our rules live in chains of our own (`FEDPROXY_*`), reached by one jump rule
//! inserted first in the built-in chain; removing them is deleting the jumps
//! and the chains, which leaves every other rule as it was.

use super::command::Command;
use super::spec::{Action, Chain, Families, Hook, Match, Rule, RuleSet, Table};

/// Which iptables programs to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Programs {
    pub v4: &'static str,
    pub v6: &'static str,
}

impl Programs {
    /// The host's `iptables` (whichever the alternatives system points at).
    pub const DEFAULT: Programs = Programs {
        v4: "iptables",
        v6: "ip6tables",
    };
    pub const LEGACY: Programs = Programs {
        v4: "iptables-legacy",
        v6: "ip6tables-legacy",
    };
    pub const NFT_SHIM: Programs = Programs {
        v4: "iptables-nft",
        v6: "ip6tables-nft",
    };

    /// `iptables-save` and friends.
    pub fn save(prog: &str) -> String {
        format!("{prog}-save")
    }
}

pub fn table_name(t: Table) -> &'static str {
    match t {
        Table::Nat => "nat",
        Table::Mangle => "mangle",
    }
}

pub fn base_chain(h: Hook) -> &'static str {
    match h {
        Hook::Prerouting => "PREROUTING",
        Hook::Output => "OUTPUT",
    }
}

pub fn chain_name(c: Chain) -> &'static str {
    match (c.table, c.hook) {
        (Table::Nat, Hook::Prerouting) => "FEDPROXY_PREROUTING",
        (Table::Nat, Hook::Output) => "FEDPROXY_OUTPUT",
        (Table::Mangle, Hook::Output) => "FEDPROXY_MANGLE_OUTPUT",
        (Table::Mangle, Hook::Prerouting) => "FEDPROXY_MANGLE_PREROUTING",
    }
}

/// The comment of the jump rule into one of our chains.
pub fn jump_comment(c: Chain) -> String {
    format!("fedproxy: jump to {}", chain_name(c))
}

fn hex(m: u32) -> String {
    format!("{m:#x}/{m:#x}")
}

/// The words after `-A CHAIN` of one rule.
pub fn rule_args(r: &Rule) -> Vec<String> {
    let mut a: Vec<String> = Vec::new();
    for m in &r.matches {
        match m {
            Match::TcpDport(p) => {
                a.extend(["-p".into(), "tcp".into(), "--dport".into(), p.to_string()])
            }
            Match::TcpSport(p) => {
                a.extend(["-p".into(), "tcp".into(), "--sport".into(), p.to_string()])
            }
            Match::OwnerGroup(g) => {
                a.extend(["-m".into(), "owner".into(), "--gid-owner".into(), g.clone()])
            }
            Match::DstLocal => a.extend([
                "-m".into(),
                "addrtype".into(),
                "--dst-type".into(),
                "LOCAL".into(),
            ]),
            Match::ConnMark(m) => {
                a.extend(["-m".into(), "connmark".into(), "--mark".into(), hex(*m)])
            }
        }
    }
    a.extend([
        "-m".into(),
        "comment".into(),
        "--comment".into(),
        r.comment.clone(),
    ]);
    match &r.action {
        Action::Return => a.extend(["-j".into(), "RETURN".into()]),
        Action::Redirect(p) => a.extend([
            "-j".into(),
            "REDIRECT".into(),
            "--to-ports".into(),
            p.to_string(),
        ]),
        Action::SetConnMark(m) => a.extend([
            "-j".into(),
            "CONNMARK".into(),
            "--set-xmark".into(),
            hex(*m),
        ]),
        Action::SetMark(m) => a.extend(["-j".into(), "MARK".into(), "--set-xmark".into(), hex(*m)]),
    }
    a
}

/// The words after `-I BASE 1` of the jump into `c`.
pub fn jump_args(c: Chain) -> Vec<String> {
    vec![
        "-m".into(),
        "comment".into(),
        "--comment".into(),
        jump_comment(c),
        "-j".into(),
        chain_name(c).into(),
    ]
}

/// `PROG -w 5 -t TABLE ARGS...`
pub fn ipt(prog: &str, t: Table, args: impl IntoIterator<Item = String>) -> Command {
    let mut argv: Vec<String> = vec![
        prog.into(),
        "-w".into(),
        "5".into(),
        "-t".into(),
        table_name(t).into(),
    ];
    argv.extend(args);
    Command::new(argv)
}

/// The rules of `chain` one family program gets.
pub fn rules_for(set: &RuleSet, chain: Chain, v6: bool) -> Vec<&Rule> {
    set.chain(chain)
        .filter(|r| !v6 || r.families == Families::Both)
        .collect()
}

/// The commands that install `set` on a host that has none of our rules:
/// per chain, create it, fill it, then insert the jump (so no packet ever sees
/// a half-filled chain).
pub fn apply_commands(set: &RuleSet, progs: Programs) -> Vec<Command> {
    let mut out = Vec::new();
    for (prog, v6) in [(progs.v4, false), (progs.v6, true)] {
        if v6 && !set.has_ipv6() {
            continue;
        }
        for chain in Chain::ALL {
            let rules = rules_for(set, chain, v6);
            if rules.is_empty() {
                continue;
            }
            let name = chain_name(chain).to_string();
            out.push(ipt(prog, chain.table, ["-N".into(), name.clone()]));
            for r in rules {
                out.push(ipt(
                    prog,
                    chain.table,
                    ["-A".into(), name.clone()].into_iter().chain(rule_args(r)),
                ));
            }
            out.push(ipt(
                prog,
                chain.table,
                ["-I".into(), base_chain(chain.hook).into(), "1".into()]
                    .into_iter()
                    .chain(jump_args(chain)),
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::config::RulesConfig;
    use crate::run::config::Config;

    fn lines(toml: &str, progs: Programs) -> Vec<String> {
        let cfg = Config::from_toml(toml).unwrap();
        let set = RuleSet::from_config(&cfg, &RulesConfig::default()).unwrap();
        apply_commands(&set, progs)
            .iter()
            .map(|c| c.to_string())
            .collect()
    }

    #[test]
    fn nat_rules_render_as_documented() {
        let l = lines("[inbound]\n[outbound]\n", Programs::DEFAULT);
        assert_eq!(
            l,
            vec![
                "iptables -w 5 -t nat -N FEDPROXY_PREROUTING",
                "iptables -w 5 -t nat -A FEDPROXY_PREROUTING -p tcp --dport 6817 -m comment --comment 'fedproxy: slurmctld traffic from other hosts -> inbound listener :16817' -j REDIRECT --to-ports 16817",
                "iptables -w 5 -t nat -I PREROUTING 1 -m comment --comment 'fedproxy: jump to FEDPROXY_PREROUTING' -j FEDPROXY_PREROUTING",
                "iptables -w 5 -t nat -N FEDPROXY_OUTPUT",
                "iptables -w 5 -t nat -A FEDPROXY_OUTPUT -m owner --gid-owner fedproxy -m comment --comment 'fedproxy: the proxy'\\''s own connections (group fedproxy) are not redirected (no loops)' -j RETURN",
                "iptables -w 5 -t nat -A FEDPROXY_OUTPUT -p tcp --dport 6817 -m addrtype --dst-type LOCAL -m comment --comment 'fedproxy: local clients and slurmd -> inbound listener :16817' -j REDIRECT --to-ports 16817",
                "iptables -w 5 -t nat -A FEDPROXY_OUTPUT -p tcp --dport 6817 -m comment --comment 'fedproxy: slurmctld to its siblings -> outbound listener :16818 (SO_ORIGINAL_DST)' -j REDIRECT --to-ports 16818",
                "iptables -w 5 -t nat -I OUTPUT 1 -m comment --comment 'fedproxy: jump to FEDPROXY_OUTPUT' -j FEDPROXY_OUTPUT",
            ]
        );
    }

    #[test]
    fn transparent_mode_renders_the_mangle_chain() {
        let l = lines(
            "[inbound]\nupstream = \"10.0.0.1:6817\"\ntransparent = true\n",
            Programs::LEGACY,
        );
        let mangle: Vec<_> = l.iter().filter(|l| l.contains("-t mangle")).collect();
        assert_eq!(mangle.len(), 4, "{mangle:#?}");
        assert!(mangle[1].starts_with("iptables-legacy -w 5 -t mangle -A FEDPROXY_MANGLE_OUTPUT -p tcp --dport 6817 -m owner --gid-owner fedproxy -m addrtype --dst-type LOCAL"));
        assert!(mangle[1].ends_with("-j CONNMARK --set-xmark 0x1/0x1"));
        assert!(mangle[2].contains("-p tcp --sport 6817 -m connmark --mark 0x1/0x1"));
        assert!(mangle[2].ends_with("-j MARK --set-xmark 0x1/0x1"));
        assert!(mangle[3].ends_with("-I OUTPUT 1 -m comment --comment 'fedproxy: jump to FEDPROXY_MANGLE_OUTPUT' -j FEDPROXY_MANGLE_OUTPUT"));
    }

    #[test]
    fn ipv6_listeners_also_get_ip6tables_rules() {
        let l = lines(
            "[inbound]\nlisten = \"[::]:16817\"\n[outbound]\n",
            Programs::NFT_SHIM,
        );
        let v6: Vec<_> = l
            .iter()
            .filter(|l| l.starts_with("ip6tables-nft "))
            .collect();
        // inbound (PREROUTING + local) and the exemption; not the IPv4-only outbound
        assert_eq!(
            v6.iter().filter(|l| l.contains(" -A ")).count(),
            3,
            "{v6:#?}"
        );
        assert!(!v6.iter().any(|l| l.contains("16818")));
    }

    #[test]
    fn every_rule_has_a_comment() {
        for l in lines(
            "[inbound]\nupstream = \"10.0.0.1:6817\"\ntransparent = true\n[outbound]\n",
            Programs::DEFAULT,
        ) {
            assert!(
                l.contains(" -N ") || l.contains("--comment 'fedproxy: "),
                "{l}"
            );
        }
    }
}
