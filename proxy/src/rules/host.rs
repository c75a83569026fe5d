//! Running commands and reading the live rules of this host's network namespace.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::Stdio;

use thiserror::Error;

use super::command::Command;

#[derive(Debug, Error)]
pub enum HostError {
    #[error("`{cmd}` could not start: {err} (is the package that ships {prog} installed?)")]
    Spawn {
        cmd: String,
        prog: String,
        err: std::io::Error,
    },
    #[error("`{cmd}` failed ({status}): {stderr}")]
    Failed {
        cmd: String,
        status: String,
        stderr: String,
    },
    #[error(
        "group {0:?} does not exist: create it (groupadd --system {0}) or set rules.exempt_group"
    )]
    NoGroup(String),
}

/// Where a program is, also for users whose PATH lacks the sbin folders.
pub fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"].map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// Runs a command; its stdout on success.
pub fn run(cmd: &Command) -> Result<String, HostError> {
    let prog = &cmd.argv[0];
    let exe = find_program(prog).unwrap_or_else(|| PathBuf::from(prog));
    let mut child = std::process::Command::new(exe)
        .args(&cmd.argv[1..])
        .stdin(if cmd.stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|err| HostError::Spawn {
            cmd: cmd.argv.join(" "),
            prog: prog.clone(),
            err,
        })?;
    if let (Some(text), Some(mut stdin)) = (&cmd.stdin, child.stdin.take()) {
        // a failed write shows up as the command's own error below
        let _ = stdin.write_all(text.as_bytes());
    }
    let out = child.wait_with_output().map_err(|err| HostError::Spawn {
        cmd: cmd.argv.join(" "),
        prog: prog.clone(),
        err,
    })?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(HostError::Failed {
            cmd: cmd.argv.join(" "),
            status: out.status.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        })
    }
}

/// The numeric gid of a group name (a number is taken as it is).
pub fn group_id(group: &str) -> Result<u32, HostError> {
    if let Ok(n) = group.parse::<u32>() {
        return Ok(n);
    }
    let cname = std::ffi::CString::new(group).map_err(|_| HostError::NoGroup(group.into()))?;
    let mut grp: libc::group = unsafe { std::mem::zeroed() };
    let mut buf = vec![0 as libc::c_char; 16384];
    let mut result: *mut libc::group = std::ptr::null_mut();
    // SAFETY: every pointer refers to live, correctly sized memory for the call.
    let rc = unsafe {
        libc::getgrnam_r(
            cname.as_ptr(),
            &mut grp,
            buf.as_mut_ptr(),
            buf.len(),
            &mut result,
        )
    };
    if rc != 0 || result.is_null() {
        return Err(HostError::NoGroup(group.into()));
    }
    Ok(grp.gr_gid)
}

/// One program's `*-save` output, by table. Reading it creates nothing (unlike
/// `iptables-legacy -t nat -S`, which instantiates the table).
#[derive(Debug, Default, Clone)]
pub struct IptLive {
    pub tables: BTreeMap<String, Vec<String>>,
}

impl IptLive {
    pub fn parse(save: &str) -> IptLive {
        let mut tables: BTreeMap<String, Vec<String>> = BTreeMap::new();
        let mut cur: Option<String> = None;
        for l in save.lines() {
            if let Some(t) = l.strip_prefix('*') {
                cur = Some(t.to_string());
                tables.entry(t.to_string()).or_default();
            } else if l == "COMMIT" {
                cur = None;
            } else if let Some(t) = &cur {
                if l.starts_with('-') || l.starts_with(':') {
                    tables
                        .get_mut(t)
                        .expect("entry made above")
                        .push(l.to_string());
                }
            }
        }
        IptLive { tables }
    }

    /// Reads `PROG-save`; `None` when the program is not installed.
    pub fn read(prog: &str) -> Result<Option<IptLive>, HostError> {
        let save = format!("{prog}-save");
        if find_program(&save).is_none() {
            return Ok(None);
        }
        run(&Command::new([save])).map(|s| Some(IptLive::parse(&s)))
    }

    pub fn has_table(&self, table: &str) -> bool {
        self.tables.contains_key(table)
    }

    pub fn chain_exists(&self, table: &str, chain: &str) -> bool {
        let head = format!(":{chain} ");
        self.tables
            .get(table)
            .is_some_and(|ls| ls.iter().any(|l| l.starts_with(&head)))
    }

    /// The `-A CHAIN ...` lines of a chain, in order.
    pub fn rules(&self, table: &str, chain: &str) -> Vec<&str> {
        let head = format!("-A {chain} ");
        self.tables
            .get(table)
            .map(|ls| {
                ls.iter()
                    .filter(|l| l.starts_with(&head))
                    .map(String::as_str)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Rules of `base` that jump to `chain`, with their 1-based position.
    pub fn jumps(&self, table: &str, base: &str, chain: &str) -> Vec<(usize, &str)> {
        let tail = format!("-j {chain}");
        self.rules(table, base)
            .into_iter()
            .enumerate()
            .filter(|(_, l)| l.ends_with(&tail))
            .map(|(i, l)| (i + 1, l))
            .collect()
    }

    /// Whether any chain of ours is present.
    pub fn any_fedproxy_chain(&self) -> bool {
        self.tables
            .values()
            .flatten()
            .any(|l| l.starts_with(":FEDPROXY_"))
    }
}

/// The live `table inet fedproxy`, if nft is installed and the table exists.
pub fn nft_table() -> Result<Option<String>, HostError> {
    if find_program("nft").is_none() {
        return Ok(None);
    }
    let tables = run(&Command::new(["nft", "list", "tables"]))?;
    if !tables.lines().any(|l| l.trim() == "table inet fedproxy") {
        return Ok(None);
    }
    run(&Command::new(["nft", "list", "table", "inet", "fedproxy"])).map(Some)
}

/// `nft list tables`, or None without nft.
pub fn nft_tables() -> Result<Option<Vec<String>>, HostError> {
    if find_program("nft").is_none() {
        return Ok(None);
    }
    let t = run(&Command::new(["nft", "list", "tables"]))?;
    Ok(Some(
        t.lines()
            .filter_map(|l| l.trim().strip_prefix("table ").map(str::to_string))
            .collect(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn save_output_is_read_by_table_and_chain() {
        let save = "# Generated by iptables-save\n*mangle\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n*nat\n:PREROUTING ACCEPT [0:0]\n:OUTPUT ACCEPT [3:180]\n:FEDPROXY_OUTPUT - [0:0]\n-A OUTPUT -j DOCKER\n-A OUTPUT -m comment --comment \"fedproxy: jump to FEDPROXY_OUTPUT\" -j FEDPROXY_OUTPUT\n-A FEDPROXY_OUTPUT -m owner --gid-owner 998 -j RETURN\nCOMMIT\n";
        let l = IptLive::parse(save);
        assert!(l.has_table("mangle") && l.has_table("nat") && !l.has_table("filter"));
        assert!(l.chain_exists("nat", "FEDPROXY_OUTPUT"));
        assert!(!l.chain_exists("nat", "FEDPROXY_PREROUTING"));
        assert_eq!(l.rules("nat", "FEDPROXY_OUTPUT").len(), 1);
        assert_eq!(l.jumps("nat", "OUTPUT", "FEDPROXY_OUTPUT")[0].0, 2);
        assert!(l.any_fedproxy_chain());
    }

    #[test]
    fn groups_resolve_by_name_and_number() {
        assert_eq!(group_id("root").unwrap(), 0);
        assert_eq!(group_id("4242").unwrap(), 4242);
        assert!(matches!(
            group_id("no-such-group-fp"),
            Err(HostError::NoGroup(_))
        ));
    }
}
