//! plan, apply, remove, status: the rule set against the live host.

use super::backend::Backend;
use super::command::{split_words, Command};
use super::host::{self, HostError, IptLive};
use super::iptables::{self, Programs};
use super::nft;
use super::policy;
use super::spec::{Chain, RuleSet};

/// Everything `apply` runs on a host without rules of ours, in order. The
/// group stays a name (iptables and nft resolve it when applied), so the plan
/// is the same on every host.
pub fn plan(set: &RuleSet, backend: Backend) -> Vec<Command> {
    let mut out = match backend {
        Backend::Iptables(p) => iptables::apply_commands(set, p),
        Backend::Nft => vec![nft::apply_command(set, None)],
    };
    if let Some(pr) = &set.policy_route {
        out.extend(policy::apply_commands(pr));
    }
    out
}

/// The commands that take away every rule of ours that is present now, of
/// either backend, plus the policy route of `mark`/`table`.
pub fn removal(set: &RuleSet) -> Result<Vec<Command>, HostError> {
    let mut out = Vec::new();
    for progs in installed_variants() {
        for prog in [progs.v4, progs.v6] {
            let Some(live) = IptLive::read(prog)? else {
                continue;
            };
            for chain in Chain::ALL {
                let table = iptables::table_name(chain.table);
                let name = iptables::chain_name(chain);
                for (_, line) in live.jumps(table, iptables::base_chain(chain.hook), name) {
                    let mut words = split_words(line);
                    words[0] = "-D".into();
                    out.push(iptables::ipt(prog, chain.table, words));
                }
                if live.chain_exists(table, name) {
                    out.push(iptables::ipt(prog, chain.table, ["-F".into(), name.into()]));
                    out.push(iptables::ipt(prog, chain.table, ["-X".into(), name.into()]));
                }
            }
            // The shim's tables, unlike legacy ones, can be deleted: one that held
            // our chains and nothing else was made by `apply`; leave no trace.
            if progs == Programs::NFT_SHIM {
                let family = if prog == progs.v4 { "ip" } else { "ip6" };
                for table in ["nat", "mangle"] {
                    if live.has_table(table) && only_ours(&live, table) {
                        out.push(Command::new(["nft", "delete", "table", family, table]));
                    }
                }
            }
        }
    }
    if host::nft_table()?.is_some() {
        out.push(nft::remove_command());
    }
    let rules = host::run(&Command::new(["ip", "-4", "rule", "show"]))?;
    for l in policy::our_rule_lines(&rules, set.mark, set.route_table) {
        if let Some(prio) = policy::line_priority(&l) {
            out.push(policy::delete_rule_command(set.mark, set.route_table, prio));
        }
    }
    let routes = host::run(&Command::new([
        "ip".to_string(),
        "-4".into(),
        "route".into(),
        "show".into(),
        "table".into(),
        set.route_table.to_string(),
    ]))
    .unwrap_or_default();
    if policy::has_local_route(&routes) {
        out.push(policy::delete_route_command(set.route_table));
    }
    Ok(out)
}

/// The iptables variants to look for leftovers in: legacy and the nft shim
/// where both exist (Debian), else the plain `iptables`.
fn installed_variants() -> Vec<Programs> {
    let v: Vec<Programs> = [Programs::LEGACY, Programs::NFT_SHIM]
        .into_iter()
        .filter(|p| host::find_program(&Programs::save(p.v4)).is_some())
        .collect();
    if v.is_empty() {
        vec![Programs::DEFAULT]
    } else {
        v
    }
}

/// What differs between the live host and the rule set (empty = in sync).
pub fn drift(set: &RuleSet, backend: Backend, group: &str) -> Result<Vec<String>, HostError> {
    let mut d = Vec::new();
    match backend {
        Backend::Iptables(progs) => {
            iptables_drift(set, progs, &mut d)?;
            if host::nft_table()?.is_some() {
                d.push("table inet fedproxy (the nft backend's rules) is present too".into());
            }
        }
        Backend::Nft => {
            let want = nft::table_text(set, Some(host::group_id(group)?));
            match host::nft_table()? {
                None => d.push("table inet fedproxy is missing".into()),
                Some(live) => {
                    let norm = |s: &str| -> Vec<String> {
                        s.lines()
                            .map(|l| l.trim_end().to_string())
                            .filter(|l| !l.is_empty())
                            .collect()
                    };
                    let (w, l) = (norm(&want), norm(&live));
                    for x in w.iter().filter(|x| !l.contains(x)) {
                        d.push(format!("missing in table inet fedproxy: {}", x.trim()));
                    }
                    for x in l.iter().filter(|x| !w.contains(x)) {
                        d.push(format!(
                            "not from the config, in table inet fedproxy: {}",
                            x.trim()
                        ));
                    }
                    if d.is_empty() && w != l {
                        d.push("table inet fedproxy has the right lines in another order".into());
                    }
                }
            }
            for progs in installed_variants() {
                if let Some(live) = IptLive::read(progs.v4)? {
                    if live.any_fedproxy_chain() {
                        d.push(format!(
                            "FEDPROXY_* chains (the iptables backend's rules) are present in {}",
                            progs.v4
                        ));
                    }
                }
            }
        }
    }
    let rules = host::run(&Command::new(["ip", "-4", "rule", "show"]))?;
    let ours = policy::our_rule_lines(&rules, set.mark, set.route_table);
    let routes = host::run(&Command::new([
        "ip".to_string(),
        "-4".into(),
        "route".into(),
        "show".into(),
        "table".into(),
        set.route_table.to_string(),
    ]))
    .unwrap_or_default();
    let route = policy::has_local_route(&routes);
    match &set.policy_route {
        Some(pr) => {
            if ours.len() != 1 {
                d.push(format!(
                    "expected one `ip rule` fwmark {:#x}/{:#x} lookup {}, found {}",
                    pr.mark,
                    pr.mark,
                    pr.table,
                    ours.len()
                ));
            }
            if !route {
                d.push(format!(
                    "route `local 0.0.0.0/0 dev lo` missing in table {}",
                    pr.table
                ));
            }
        }
        None => {
            if !ours.is_empty() || route {
                d.push(format!(
                    "transparent mode is off but its policy routing (table {}) is present",
                    set.route_table
                ));
            }
        }
    }
    Ok(d)
}

fn iptables_drift(set: &RuleSet, progs: Programs, d: &mut Vec<String>) -> Result<(), HostError> {
    for (prog, v6) in [(progs.v4, false), (progs.v6, true)] {
        let live = match IptLive::read(prog)? {
            Some(l) => l,
            None if v6 && !set.has_ipv6() => continue,
            None => {
                d.push(format!("{prog}-save not found: cannot read the rules"));
                continue;
            }
        };
        for chain in Chain::ALL {
            let want = iptables::rules_for(set, chain, v6);
            let table = iptables::table_name(chain.table);
            let name = iptables::chain_name(chain);
            let base = iptables::base_chain(chain.hook);
            let exists = live.chain_exists(table, name);
            let jumps = live.jumps(table, base, name);
            if want.is_empty() {
                if exists || !jumps.is_empty() {
                    d.push(format!(
                        "{prog} {table} {name} is present but the config needs no rules there"
                    ));
                }
                continue;
            }
            if !exists {
                d.push(format!("{prog} {table} chain {name} is missing"));
            } else {
                let have = live.rules(table, name);
                let comments: Vec<String> = have.iter().map(|l| comment_of(l)).collect();
                let wanted: Vec<String> = want.iter().map(|r| r.comment.clone()).collect();
                if comments != wanted {
                    let before = d.len();
                    for w in wanted.iter().filter(|w| !comments.contains(w)) {
                        d.push(format!("{prog} {table} {name}: rule missing: {w}"));
                    }
                    for c in comments.iter().filter(|c| !wanted.contains(c)) {
                        d.push(format!(
                            "{prog} {table} {name}: rule not from the config: {c}"
                        ));
                    }
                    if d.len() == before {
                        d.push(format!("{prog} {table} {name}: rules out of order"));
                    }
                }
                for r in &want {
                    let check = iptables::ipt(
                        prog,
                        chain.table,
                        ["-C".into(), name.into()]
                            .into_iter()
                            .chain(iptables::rule_args(r)),
                    );
                    if comments.contains(&r.comment) && host::run(&check).is_err() {
                        d.push(format!(
                            "{prog} {table} {name}: rule differs from the config: {}",
                            r.comment
                        ));
                    }
                }
            }
            match jumps.as_slice() {
                [] => d.push(format!("{prog} {table} {base} has no jump to {name}")),
                [(1, _)] => {}
                [(n, _)] => d.push(format!(
                    "{prog} {table} {base}: the jump to {name} is rule {n}, not the first"
                )),
                many => d.push(format!(
                    "{prog} {table} {base} jumps to {name} {} times",
                    many.len()
                )),
            }
        }
    }
    Ok(())
}

/// Whether a table holds our chains and otherwise only empty built-in chains
/// with policy ACCEPT.
fn only_ours(live: &IptLive, table: &str) -> bool {
    let Some(lines) = live.tables.get(table) else {
        return false;
    };
    let ours = |l: &str| {
        l.starts_with(":FEDPROXY_")
            || l.starts_with("-A FEDPROXY_")
            || l.ends_with("-j FEDPROXY_PREROUTING")
            || l.ends_with("-j FEDPROXY_OUTPUT")
            || l.ends_with("-j FEDPROXY_MANGLE_OUTPUT")
    };
    lines.iter().any(|l| ours(l))
        && lines.iter().filter(|l| !ours(l)).all(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            l.starts_with(':') && w.get(1) == Some(&"ACCEPT")
        })
}

/// The `--comment` of an iptables-save line ("" without one).
fn comment_of(line: &str) -> String {
    let w = split_words(line);
    w.iter()
        .position(|x| x == "--comment")
        .and_then(|i| w.get(i + 1))
        .cloned()
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comments_are_read_from_save_lines() {
        assert_eq!(
            comment_of(
                r#"-A FEDPROXY_OUTPUT -m owner --gid-owner 0 -m comment --comment "fedproxy: a b" -j RETURN"#
            ),
            "fedproxy: a b"
        );
        assert_eq!(comment_of("-A OUTPUT -j X"), "");
    }

    #[test]
    fn a_table_is_only_ours_when_nothing_else_is_in_it() {
        let mine = IptLive::parse("*nat\n:PREROUTING ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:FEDPROXY_OUTPUT - [0:0]\n-A OUTPUT -m comment --comment \"fedproxy: jump to FEDPROXY_OUTPUT\" -j FEDPROXY_OUTPUT\n-A FEDPROXY_OUTPUT -j RETURN\nCOMMIT\n");
        assert!(only_ours(&mine, "nat"));
        let shared = IptLive::parse(
            "*nat\n:OUTPUT ACCEPT [0:0]\n:FEDPROXY_OUTPUT - [0:0]\n-A OUTPUT -j DOCKER\nCOMMIT\n",
        );
        assert!(!only_ours(&shared, "nat"));
        let dropping =
            IptLive::parse("*nat\n:OUTPUT DROP [0:0]\n:FEDPROXY_OUTPUT - [0:0]\nCOMMIT\n");
        assert!(!only_ours(&dropping, "nat"));
        let empty = IptLive::parse("*nat\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n");
        assert!(!only_ours(&empty, "nat"));
    }
}
