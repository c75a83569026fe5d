//! Transparent mode's policy routing: `ip rule` for the mark and the one local
//! route of its table. Backend-independent (routing is not netfilter).

use super::command::Command;
use super::spec::PolicyRoute;

fn fwmark(mark: u32) -> String {
    format!("{mark:#x}/{mark:#x}")
}

pub fn apply_commands(p: &PolicyRoute) -> Vec<Command> {
    vec![
        Command::new([
            "ip".to_string(),
            "-4".into(),
            "rule".into(),
            "add".into(),
            "fwmark".into(),
            fwmark(p.mark),
            "lookup".into(),
            p.table.to_string(),
            "pref".into(),
            p.priority.to_string(),
        ]),
        route_command("replace", p.table),
    ]
}

fn route_command(verb: &str, table: u32) -> Command {
    Command::new([
        "ip".to_string(),
        "-4".into(),
        "route".into(),
        verb.into(),
        "local".into(),
        "0.0.0.0/0".into(),
        "dev".into(),
        "lo".into(),
        "table".into(),
        table.to_string(),
    ])
}

/// `ip -4 rule show` lines that are our rule, e.g.
/// `100:`, a tab, then `from all fwmark 0x1/0x1 lookup 16817`.
pub fn our_rule_lines(rule_show: &str, mark: u32, table: u32) -> Vec<String> {
    let want = format!("fwmark {} lookup {table}", fwmark(mark));
    rule_show
        .lines()
        .filter(|l| l.trim_end().ends_with(&want))
        .map(|l| l.to_string())
        .collect()
}

/// The priority of an `ip rule show` line.
pub fn line_priority(line: &str) -> Option<u32> {
    line.split(':').next()?.trim().parse().ok()
}

pub fn delete_rule_command(mark: u32, table: u32, priority: u32) -> Command {
    Command::new([
        "ip".to_string(),
        "-4".into(),
        "rule".into(),
        "del".into(),
        "fwmark".into(),
        fwmark(mark),
        "lookup".into(),
        table.to_string(),
        "pref".into(),
        priority.to_string(),
    ])
}

/// Is our route in `ip -4 route show table N` output (`local default dev lo scope host`)?
pub fn has_local_route(route_show: &str) -> bool {
    route_show
        .lines()
        .any(|l| l.starts_with("local default dev lo"))
}

pub fn delete_route_command(table: u32) -> Command {
    route_command("del", table)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_and_parsing() {
        let p = PolicyRoute {
            mark: 2,
            table: 16817,
            priority: 100,
        };
        let c: Vec<String> = apply_commands(&p).iter().map(|c| c.to_string()).collect();
        assert_eq!(
            c,
            [
                "ip -4 rule add fwmark 0x2/0x2 lookup 16817 pref 100",
                "ip -4 route replace local 0.0.0.0/0 dev lo table 16817"
            ]
        );
        let show = "0:\tfrom all lookup local\n100:\tfrom all fwmark 0x2/0x2 lookup 16817 \n32766:\tfrom all lookup main\n";
        let ours = our_rule_lines(show, 2, 16817);
        assert_eq!(ours.len(), 1);
        assert_eq!(line_priority(&ours[0]), Some(100));
        assert!(our_rule_lines(show, 1, 16817).is_empty());
        assert!(has_local_route("local default dev lo scope host \n"));
        assert!(!has_local_route(""));
    }
}
