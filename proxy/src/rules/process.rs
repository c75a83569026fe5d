//! `status` also looks at the running proxy: a loop exemption by group only
//! works when the proxy's primary group is that group, and transparent mode
//! needs CAP_NET_ADMIN. Both mistakes pass start-up unnoticed otherwise.

use std::fs;

use super::host;

const CAP_NET_ADMIN: u32 = 12;

/// A `fedproxy run` process in this network namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyProcess {
    pub pid: u32,
    pub egid: u32,
    pub cap_eff: u64,
}

/// Reads `Gid:` (real, effective, ...) and `CapEff:` of /proc/PID/status.
pub fn parse_status(text: &str) -> Option<(u32, u64)> {
    let mut egid = None;
    let mut cap = None;
    for l in text.lines() {
        if let Some(v) = l.strip_prefix("Gid:") {
            egid = v.split_whitespace().nth(1).and_then(|x| x.parse().ok());
        } else if let Some(v) = l.strip_prefix("CapEff:") {
            cap = u64::from_str_radix(v.trim(), 16).ok();
        }
    }
    Some((egid?, cap?))
}

/// Every `fedproxy ... run` process sharing our network namespace.
pub fn running_proxies() -> Vec<ProxyProcess> {
    let my_ns = fs::read_link("/proc/self/ns/net").ok();
    let mut out = Vec::new();
    let Ok(dir) = fs::read_dir("/proc") else {
        return out;
    };
    for e in dir.flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(cmdline) = fs::read(format!("/proc/{pid}/cmdline")) else {
            continue;
        };
        let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
        let is_proxy = args.first().is_some_and(|a0| a0.ends_with(b"fedproxy"))
            && args.iter().any(|a| *a == b"run")
            && !args.iter().any(|a| *a == b"--check-config");
        if !is_proxy || fs::read_link(format!("/proc/{pid}/ns/net")).ok() != my_ns {
            continue;
        }
        if let Some((egid, cap_eff)) = fs::read_to_string(format!("/proc/{pid}/status"))
            .ok()
            .as_deref()
            .and_then(parse_status)
        {
            out.push(ProxyProcess { pid, egid, cap_eff });
        }
    }
    out
}

/// What is wrong with the running proxies for these rules.
pub fn problems(group: &str, transparent: bool) -> Vec<String> {
    let Ok(gid) = host::group_id(group) else {
        return vec![format!("group {group:?} does not exist")];
    };
    check(&running_proxies(), group, gid, transparent)
}

pub fn check(procs: &[ProxyProcess], group: &str, gid: u32, transparent: bool) -> Vec<String> {
    let mut out = Vec::new();
    for p in procs {
        if p.egid != gid {
            out.push(format!(
                "fedproxy (pid {}) runs with primary group {} but the rules exempt group {group} ({gid}): \
                 its own connections would be redirected back into it (start it with that group, e.g. Group= in the unit)",
                p.pid, p.egid
            ));
        }
        if transparent && p.cap_eff & (1 << CAP_NET_ADMIN) == 0 {
            out.push(format!(
                "fedproxy (pid {}) lacks CAP_NET_ADMIN, which transparent mode (IP_TRANSPARENT) needs: \
                 grant it (AmbientCapabilities=CAP_NET_ADMIN)",
                p.pid
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_fields_and_checks() {
        let s = "Name:\tfedproxy\nUid:\t0\t0\t0\t0\nGid:\t5\t998\t998\t998\nCapEff:\t0000000000001000\n";
        assert_eq!(parse_status(s), Some((998, 0x1000)));
        let p = ProxyProcess {
            pid: 7,
            egid: 998,
            cap_eff: 0x1000,
        };
        assert!(check(std::slice::from_ref(&p), "fedproxy", 998, true).is_empty());
        let wrong_group = check(std::slice::from_ref(&p), "fedproxy", 999, false);
        assert_eq!(wrong_group.len(), 1);
        assert!(wrong_group[0].contains("primary group 998"));
        let no_cap = ProxyProcess { cap_eff: 0, ..p };
        assert!(check(std::slice::from_ref(&no_cap), "fedproxy", 998, false).is_empty());
        assert!(check(&[no_cap], "fedproxy", 998, true)[0].contains("CAP_NET_ADMIN"));
    }
}

/// What is wrong with THIS process's identity for the configuration, for
/// `fedproxy run` (start-up and `--check-config`): `(errors, warnings)`.
/// * transparent inbound without CAP_NET_ADMIN cannot work at all: an error;
/// * a primary group other than `[rules] exempt_group` makes the proxy's own
///   connections loop through the rules, if the rules are `fedproxy rules`':
///   a warning (an admin checking the file as root is not the service).
pub fn self_problems(cfg: &crate::run::Config) -> (Vec<String>, Vec<String>) {
    let status = fs::read_to_string("/proc/self/status").unwrap_or_default();
    let Some((egid, cap_eff)) = parse_status(&status) else {
        return (Vec::new(), Vec::new());
    };
    identity_problems(
        cfg,
        egid,
        cap_eff,
        host::group_id(&cfg.rules.exempt_group).ok(),
    )
}

pub fn identity_problems(
    cfg: &crate::run::Config,
    egid: u32,
    cap_eff: u64,
    exempt_gid: Option<u32>,
) -> (Vec<String>, Vec<String>) {
    let mut errors = Vec::new();
    let mut warnings = Vec::new();
    if cfg.inbound.as_ref().is_some_and(|i| i.transparent) && cap_eff & (1 << CAP_NET_ADMIN) == 0 {
        errors.push(
            "inbound.transparent = true needs the capability CAP_NET_ADMIN (IP_TRANSPARENT), \
             which this process lacks: grant it (unit: AmbientCapabilities=CAP_NET_ADMIN and \
             CapabilityBoundingSet=CAP_NET_ADMIN; setpriv: --inh-caps=+net_admin --ambient-caps=+net_admin)"
                .to_string(),
        );
    }
    let intercepting = cfg.inbound.is_some() || cfg.outbound.is_some();
    let group = &cfg.rules.exempt_group;
    match exempt_gid {
        _ if !intercepting => {}
        None => warnings.push(format!(
            "group {group:?} ([rules] exempt_group) does not exist: `fedproxy rules` cannot exempt the proxy's connections"
        )),
        Some(g) if g != egid => warnings.push(format!(
            "this process's primary group is {egid}, but `fedproxy rules` exempts group {group} ({g}): \
             run the proxy with that primary group (unit: Group={group}; setpriv: --regid={group}), \
             or its own connections are redirected back into it"
        )),
        Some(_) => {}
    }
    (errors, warnings)
}

#[cfg(test)]
mod identity_tests {
    use super::*;
    use crate::run::Config;

    #[test]
    fn transparent_needs_the_capability_and_the_group_must_match() {
        let t = Config::from_toml("[inbound]\nupstream = \"10.0.0.1:6817\"\ntransparent = true\n")
            .unwrap();
        let (e, w) = identity_problems(&t, 998, 0, Some(998));
        assert_eq!(e.len(), 1);
        assert!(e[0].contains("CAP_NET_ADMIN"), "{e:?}");
        assert!(w.is_empty());
        let (e, w) = identity_problems(&t, 998, 1 << CAP_NET_ADMIN, Some(998));
        assert!(e.is_empty() && w.is_empty());
        let (e, w) = identity_problems(&t, 0, 1 << CAP_NET_ADMIN, Some(998));
        assert!(e.is_empty());
        assert!(
            w[0].contains("primary group is 0") && w[0].contains("fedproxy (998)"),
            "{w:?}"
        );
        let (_, w) = identity_problems(&t, 0, 1 << CAP_NET_ADMIN, None);
        assert!(w[0].contains("does not exist"), "{w:?}");
        // static routes alone need no rules, so no group
        let r = Config::from_toml(
            "[[route]]\nlisten = \"127.0.0.1:7001\"\nupstream = \"127.0.0.1:6817\"\n",
        )
        .unwrap();
        assert_eq!(identity_problems(&r, 0, 0, None), (vec![], vec![]));
    }
}
