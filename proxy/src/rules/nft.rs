//! The native nftables backend: one `table inet fedproxy` with chains of its own
//! (base chains on the nat and route hooks), a comment on every rule. The table
//! is ours alone, so removing the rules is deleting the table.
//!
//! The script is written in the form `nft list table inet fedproxy` prints
//! (numeric gid, marks as 0x%08x), so `status` compares the two line by line.

use super::command::Command;
use super::spec::{Action, Chain, Families, Hook, Match, Rule, RuleSet, Table};

pub const TABLE: &str = "inet fedproxy";

pub fn chain_name(c: Chain) -> &'static str {
    match (c.table, c.hook) {
        (Table::Nat, Hook::Prerouting) => "nat_prerouting",
        (Table::Nat, Hook::Output) => "nat_output",
        (Table::Mangle, Hook::Output) => "mangle_output",
        (Table::Mangle, Hook::Prerouting) => "mangle_prerouting",
    }
}

/// The base-chain declaration. Our nat chains run just before iptables' (-100),
/// and the route chain just before mangle (-150), so they see packets first.
fn chain_head(c: Chain) -> &'static str {
    match (c.table, c.hook) {
        (Table::Nat, Hook::Prerouting) => {
            "type nat hook prerouting priority dstnat - 10; policy accept;"
        }
        (Table::Nat, Hook::Output) => "type nat hook output priority -110; policy accept;",
        (Table::Mangle, Hook::Output) => {
            "type route hook output priority mangle - 10; policy accept;"
        }
        (Table::Mangle, Hook::Prerouting) => {
            "type filter hook prerouting priority mangle - 10; policy accept;"
        }
    }
}

fn mark(m: u32) -> String {
    format!("0x{m:08x}")
}

/// One rule line. `gid` is the exempt group's number when it is known (nft
/// lists groups by number; a name is resolved by nft itself when applied).
pub fn rule_line(r: &Rule, gid: Option<u32>) -> String {
    let mut w: Vec<String> = Vec::new();
    if r.families == Families::Ipv4 {
        w.push("meta nfproto ipv4".into());
    }
    for m in &r.matches {
        w.push(match m {
            Match::TcpDport(p) => format!("tcp dport {p}"),
            Match::TcpSport(p) => format!("tcp sport {p}"),
            Match::OwnerGroup(g) => match gid {
                Some(n) => format!("meta skgid {n}"),
                None => format!("meta skgid {g}"),
            },
            Match::DstLocal => "fib daddr type local".into(),
            Match::ConnMark(m) => format!("ct mark & {} == {}", mark(*m), mark(*m)),
        });
    }
    w.push(match &r.action {
        Action::Return => "return".into(),
        Action::Redirect(p) => format!("redirect to :{p}"),
        Action::SetConnMark(m) => format!("ct mark set ct mark | {}", mark(*m)),
        Action::SetMark(m) => format!("meta mark set meta mark | {}", mark(*m)),
    });
    w.push(format!("comment \"{}\"", r.comment.replace('"', "'")));
    w.join(" ")
}

/// The table as `nft list table inet fedproxy` shows it.
pub fn table_text(set: &RuleSet, gid: Option<u32>) -> String {
    let mut chains = Vec::new();
    for c in set.used_chains() {
        let mut s = format!("\tchain {} {{\n\t\t{}\n", chain_name(c), chain_head(c));
        for r in set.chain(c) {
            s.push_str(&format!("\t\t{}\n", rule_line(r, gid)));
        }
        s.push_str("\t}\n");
        chains.push(s);
    }
    format!("table {TABLE} {{\n{}}}\n", chains.join("\n"))
}

/// `nft -f -` with a script that replaces the table atomically: create it if
/// missing, delete it, define it (one transaction: never half applied).
pub fn apply_command(set: &RuleSet, gid: Option<u32>) -> Command {
    let script = format!(
        "add table {TABLE}\ndelete table {TABLE}\n{}",
        table_text(set, gid)
    );
    Command::new(["nft", "-f", "-"]).with_stdin(script)
}

pub fn remove_command() -> Command {
    Command::new(["nft", "delete", "table", "inet", "fedproxy"])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::config::RulesConfig;
    use crate::run::config::Config;

    fn set(toml: &str) -> RuleSet {
        RuleSet::from_config(&Config::from_toml(toml).unwrap(), &RulesConfig::default()).unwrap()
    }

    #[test]
    fn the_table_is_written_as_nft_lists_it() {
        let t = table_text(
            &set("[inbound]\nupstream = \"10.0.0.1:6817\"\ntransparent = true\n[outbound]\n"),
            Some(998),
        );
        assert_eq!(
            t,
            "table inet fedproxy {\n\
             \tchain nat_prerouting {\n\
             \t\ttype nat hook prerouting priority dstnat - 10; policy accept;\n\
             \t\tmeta nfproto ipv4 tcp dport 6817 redirect to :16817 comment \"fedproxy: slurmctld traffic from other hosts -> inbound listener :16817\"\n\
             \t}\n\
             \n\
             \tchain nat_output {\n\
             \t\ttype nat hook output priority -110; policy accept;\n\
             \t\tmeta nfproto ipv4 meta skgid 998 return comment \"fedproxy: the proxy's own connections (group fedproxy) are not redirected (no loops)\"\n\
             \t\tmeta nfproto ipv4 tcp dport 6817 fib daddr type local redirect to :16817 comment \"fedproxy: local clients and slurmd -> inbound listener :16817\"\n\
             \t\tmeta nfproto ipv4 tcp dport 6817 redirect to :16818 comment \"fedproxy: slurmctld to its siblings -> outbound listener :16818 (SO_ORIGINAL_DST)\"\n\
             \t}\n\
             \n\
             \tchain mangle_output {\n\
             \t\ttype route hook output priority mangle - 10; policy accept;\n\
             \t\tmeta nfproto ipv4 tcp dport 6817 meta skgid 998 fib daddr type local ct mark set ct mark | 0x00000001 comment \"fedproxy: the proxy's transparent connections to slurmctld\"\n\
             \t\tmeta nfproto ipv4 tcp sport 6817 ct mark & 0x00000001 == 0x00000001 meta mark set meta mark | 0x00000001 comment \"fedproxy: slurmctld's replies to them -> routing table 16817 (back to the proxy)\"\n\
             \t}\n\
             }\n"
        );
    }

    #[test]
    fn ipv6_listeners_drop_the_family_filter() {
        let t = table_text(&set("[inbound]\nlisten = \"[::]:16817\"\n"), None);
        assert!(t.contains("\t\ttcp dport 6817 redirect to :16817"), "{t}");
        assert!(t.contains("meta skgid fedproxy return"), "{t}");
    }

    #[test]
    fn apply_replaces_the_table_in_one_transaction() {
        let c = apply_command(&set("[outbound]\n"), Some(5));
        assert_eq!(c.argv, ["nft", "-f", "-"]);
        let s = c.stdin.unwrap();
        assert!(s.starts_with(
            "add table inet fedproxy\ndelete table inet fedproxy\ntable inet fedproxy {\n"
        ));
        assert!(!s.contains("nat_prerouting"));
    }
}
