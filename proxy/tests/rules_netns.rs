//! `fedproxy rules` for real, in network namespaces made by this test (one per
//! backend, deleted afterwards): apply, idempotent re-apply, status in sync,
//! status detecting a rule deleted by hand, repair, remove restoring the exact
//! ruleset (iptables-legacy-save, iptables-nft-save, nft list ruleset, ip rule,
//! every routing table), and `plan`'s output run by a shell giving the same
//! rules as `apply`. Needs root, iproute2, iptables and nftables; without them
//! the test is skipped, except under CI=true where it fails.

use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_fedproxy");

/// A network namespace of this test; deleted on drop.
struct Netns(String);

impl Netns {
    fn new(tag: &str) -> Option<Netns> {
        let name = format!("ops-rules-{tag}-{}", std::process::id());
        let ok = Command::new("ip")
            .args(["netns", "add", &name])
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false);
        ok.then_some(Netns(name))
    }

    fn run(&self, argv: &[&str]) -> Output {
        Command::new("ip")
            .args(["netns", "exec", &self.0])
            .args(argv)
            .output()
            .expect("ip netns exec")
    }

    fn sh(&self, script: &str) -> Output {
        self.run(&["sh", "-c", script])
    }

    fn ok(&self, argv: &[&str]) -> String {
        let o = self.run(argv);
        assert!(o.status.success(), "{argv:?}: {}", text(&o));
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    /// Everything a rule change could touch, without comment/timestamp lines.
    fn snapshot(&self) -> String {
        let o = self.sh(
            "iptables-legacy-save; ip6tables-legacy-save; iptables-nft-save; ip6tables-nft-save; \
             nft list ruleset; ip -4 rule show; ip -4 route show table all",
        );
        String::from_utf8_lossy(&o.stdout)
            .lines()
            .filter(|l| !l.starts_with('#'))
            .collect::<Vec<_>>()
            .join("\n")
    }

    fn rules(&self, action: &str, cfg: &str, backend: &str) -> Output {
        self.run(&[BIN, "rules", action, "--config", cfg, "--backend", backend])
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).output();
    }
}

fn text(o: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn prerequisites() -> bool {
    let have = |p: &str| {
        ["/usr/sbin/", "/sbin/", "/usr/bin/"]
            .iter()
            .any(|d| std::path::Path::new(&format!("{d}{p}")).exists())
    };
    let missing: Vec<&str> = ["ip", "iptables-legacy", "iptables-nft", "nft"]
        .into_iter()
        .filter(|p| !have(p))
        .collect();
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    if root && missing.is_empty() {
        return true;
    }
    let why = format!("needs root ({root}) and {missing:?}");
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("rules_netns cannot run under CI=true: {why}");
    }
    eprintln!("SKIP: rules_netns {why}");
    false
}

fn config(dir: &std::path::Path, tag: &str) -> String {
    let p = dir.join(format!("fedproxy-rules-{tag}-{}.toml", std::process::id()));
    // transparent mode: nat, mangle and the policy route all take part
    std::fs::write(
        &p,
        "[inbound]\nupstream = \"10.0.0.1:6817\"\ntransparent = true\n[outbound]\n\
         [rules]\nexempt_group = \"root\"\n",
    )
    .unwrap();
    p.to_string_lossy().into_owned()
}

/// Deletes the loop exemption rule by hand, the way an admin would.
fn delete_one_rule(ns: &Netns, backend: &str) {
    if backend == "nft" {
        let listing = ns.ok(&[
            "nft",
            "-a",
            "list",
            "chain",
            "inet",
            "fedproxy",
            "nat_output",
        ]);
        let handle = listing
            .lines()
            .find(|l| l.contains("no loops"))
            .and_then(|l| l.rsplit("# handle ").next())
            .expect("exemption rule listed with its handle")
            .trim()
            .to_string();
        ns.ok(&[
            "nft",
            "delete",
            "rule",
            "inet",
            "fedproxy",
            "nat_output",
            "handle",
            &handle,
        ]);
    } else {
        ns.ok(&[backend, "-t", "nat", "-D", "FEDPROXY_OUTPUT", "1"]);
    }
}

fn exercise(backend: &str, prepare: &str) {
    let dir = std::env::temp_dir();
    let cfg = config(&dir, backend);
    let ns = Netns::new(backend).expect("ip netns add");
    if !prepare.is_empty() {
        let o = ns.sh(prepare);
        assert!(o.status.success(), "prepare: {}", text(&o));
    }
    let before = ns.snapshot();

    let o = ns.rules("status", &cfg, backend);
    assert_eq!(
        o.status.code(),
        Some(1),
        "status before apply: {}",
        text(&o)
    );

    let o = ns.rules("apply", &cfg, backend);
    assert!(o.status.success(), "apply: {}", text(&o));
    let applied = ns.snapshot();
    assert_ne!(applied, before);
    let o = ns.rules("status", &cfg, backend);
    assert!(o.status.success(), "status after apply: {}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("in sync"),
        "{}",
        text(&o)
    );

    // idempotent: a second apply changes nothing
    let o = ns.rules("apply", &cfg, backend);
    assert!(o.status.success(), "apply again: {}", text(&o));
    assert_eq!(ns.snapshot(), applied, "a second apply changed the ruleset");

    // drift: a rule deleted by hand
    delete_one_rule(&ns, backend);
    let o = ns.rules("status", &cfg, backend);
    assert_eq!(
        o.status.code(),
        Some(1),
        "status after a manual delete: {}",
        text(&o)
    );
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("drift:") && out.contains("no loops"),
        "{}",
        text(&o)
    );
    // apply repairs it
    let o = ns.rules("apply", &cfg, backend);
    assert!(o.status.success(), "repairing apply: {}", text(&o));
    assert!(ns.rules("status", &cfg, backend).status.success());

    let o = ns.rules("remove", &cfg, backend);
    assert!(o.status.success(), "remove: {}", text(&o));
    assert_eq!(ns.snapshot(), before, "remove did not restore the ruleset");

    // plan prints what apply runs: its output, run by a shell, is in sync
    let plan = ns.rules("plan", &cfg, backend);
    assert!(plan.status.success(), "plan: {}", text(&plan));
    let o = ns.sh(&String::from_utf8_lossy(&plan.stdout));
    assert!(o.status.success(), "running the plan: {}", text(&o));
    let o = ns.rules("status", &cfg, backend);
    assert!(
        o.status.success(),
        "status after running the plan: {}",
        text(&o)
    );
    assert_eq!(
        ns.snapshot(),
        applied,
        "the plan's rules differ from apply's"
    );
    assert!(ns.rules("remove", &cfg, backend).status.success());
    assert_eq!(ns.snapshot(), before);
    let _ = std::fs::remove_file(cfg);
}

// iptables-legacy tables cannot be deleted once used, so the namespace starts
// with a host firewall in nat and mangle (as a real host has): the test shows
// those rules survive untouched.
#[test]
fn iptables_legacy_apply_status_remove() {
    if prerequisites() {
        exercise(
            "iptables-legacy",
            "iptables-legacy -t nat -A POSTROUTING -o lo -m comment --comment host -j ACCEPT && \
             iptables-legacy -t mangle -A OUTPUT -p udp -j ACCEPT",
        );
    }
}

// the shim on a namespace with no tables at all: remove deletes the tables apply made
#[test]
fn iptables_nft_apply_status_remove() {
    if prerequisites() {
        exercise("iptables-nft", "");
    }
}

// native nftables beside a host table of its own
#[test]
fn nft_apply_status_remove() {
    if prerequisites() {
        exercise(
            "nft",
            "nft add table inet filter && \
             nft add chain inet filter input '{ type filter hook input priority 0; policy accept; }' && \
             nft add rule inet filter input tcp dport 22 accept",
        );
    }
}
