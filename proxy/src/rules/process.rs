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
        assert!(check(&[p.clone()], "fedproxy", 998, true).is_empty());
        let wrong_group = check(&[p.clone()], "fedproxy", 999, false);
        assert_eq!(wrong_group.len(), 1);
        assert!(wrong_group[0].contains("primary group 998"));
        let no_cap = ProxyProcess { cap_eff: 0, ..p };
        assert!(check(&[no_cap.clone()], "fedproxy", 998, false).is_empty());
        assert!(check(&[no_cap], "fedproxy", 998, true)[0].contains("CAP_NET_ADMIN"));
    }
}
