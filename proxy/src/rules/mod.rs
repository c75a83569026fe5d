//! `fedproxy rules plan|apply|remove|status`: the interception rules generated
//! from the configuration file, so the config is the one source of truth.
//!
//! * [`config`] — the `[rules]` section (exempt group, mark, routing table);
//! * [`spec`] — config → rule set, pure (unit-tested without root);
//! * [`iptables`], [`nft`], [`policy`] — rendering the set as commands;
//! * [`backend`] — which backend, detected from the host, and why;
//! * [`host`] — running commands, reading the live rules;
//! * [`ops`] — plan/apply/remove/status against the live host;
//! * [`process`] — the running proxy's group and capability (status).

pub mod backend;
pub mod command;
pub mod config;
pub mod host;
pub mod iptables;
pub mod nft;
pub mod ops;
pub mod policy;
pub mod process;
pub mod spec;

use std::path::PathBuf;
use std::process::ExitCode;

pub use config::RulesConfig;

use backend::{Backend, BackendArg, Choice};
use spec::RuleSet;

#[derive(clap::Args, Debug)]
pub struct RulesArgs {
    #[command(subcommand)]
    pub action: RulesAction,
}

#[derive(clap::Subcommand, Debug)]
pub enum RulesAction {
    /// Print the commands (or the nft script) `apply` runs on a host without
    /// fedproxy rules. Needs no root.
    Plan(Common),
    /// Install the rules. Nothing changes when they are already in place; rules
    /// that drifted are removed first, then installed again.
    Apply(Common),
    /// Remove every fedproxy rule (either backend) and the policy route; the
    /// rest of the ruleset stays as it was.
    Remove(Common),
    /// Compare the live rules with the config; exit 1 on drift, 2 on error.
    Status(Common),
}

#[derive(clap::Args, Debug)]
pub struct Common {
    /// Configuration file (TOML), the one `fedproxy run` uses.
    #[arg(long, short)]
    pub config: PathBuf,
    /// Rule backend; default: detected from the host (`status` explains).
    #[arg(long, value_enum)]
    pub backend: Option<BackendArg>,
}

/// Exit code for drift (status) or a failed apply's re-check.
const DRIFT: u8 = 1;
const ERROR: u8 = 2;

pub fn main(args: RulesArgs) -> ExitCode {
    match dispatch(args) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("fedproxy rules: {e}");
            ExitCode::from(ERROR)
        }
    }
}

fn load(c: &Common) -> Result<(RuleSet, RulesConfig), String> {
    let cfg = crate::run::Config::load(&c.config).map_err(|e| e.to_string())?;
    let rc = cfg.rules.clone();
    let set = RuleSet::from_config(&cfg, &rc)
        .map_err(|e| format!("config file {}: {e}", c.config.display()))?;
    Ok((set, rc))
}

fn choose(c: &Common) -> Result<Choice, String> {
    match c.backend {
        Some(a) => Ok(Choice {
            backend: Backend::from_arg(a),
            reason: "chosen with --backend".into(),
        }),
        None => backend::detect().map_err(|e| e.to_string()),
    }
}

fn dispatch(args: RulesArgs) -> Result<u8, String> {
    match args.action {
        RulesAction::Plan(c) => {
            let (set, rc) = load(&c)?;
            let choice = match c.backend {
                Some(_) => choose(&c)?,
                // plan needs no root: without a readable host, iptables
                None => choose(&c).unwrap_or(Choice {
                    backend: Backend::Iptables(iptables::Programs::DEFAULT),
                    reason: "default".into(),
                }),
            };
            if host::group_id(&rc.exempt_group).is_err() {
                eprintln!(
                    "fedproxy rules: note: group {:?} does not exist here yet; apply needs it (the package creates it)",
                    rc.exempt_group
                );
            }
            println!(
                "# fedproxy rules plan --config {} --backend {}",
                c.config.display(),
                choice.backend.name()
            );
            for cmd in ops::plan(&set, choice.backend) {
                println!("{cmd}");
            }
            Ok(0)
        }
        RulesAction::Apply(c) => {
            let (set, rc) = load(&c)?;
            let choice = choose(&c)?;
            host::group_id(&rc.exempt_group).map_err(|e| e.to_string())?;
            let d =
                ops::drift(&set, choice.backend, &rc.exempt_group).map_err(|e| e.to_string())?;
            if d.is_empty() {
                eprintln!(
                    "fedproxy rules: already applied ({}), nothing to do",
                    choice.backend.name()
                );
                return Ok(0);
            }
            let mut cmds = ops::removal(&set).map_err(|e| e.to_string())?;
            cmds.extend(ops::plan(&set, choice.backend));
            for cmd in &cmds {
                eprintln!("+ {cmd}");
                if let Err(e) = host::run(cmd) {
                    // never leave half the rules: take away what was added
                    let undo = ops::removal(&set).map_err(|e| e.to_string())?;
                    for u in &undo {
                        let _ = host::run(u);
                    }
                    return Err(format!("{e}; the rules applied so far were removed again"));
                }
            }
            let d =
                ops::drift(&set, choice.backend, &rc.exempt_group).map_err(|e| e.to_string())?;
            if d.is_empty() {
                eprintln!("fedproxy rules: applied ({})", choice.backend.name());
                Ok(0)
            } else {
                for x in d {
                    println!("drift: {x}");
                }
                Ok(DRIFT)
            }
        }
        RulesAction::Remove(c) => {
            let (set, _) = load(&c)?;
            let cmds = ops::removal(&set).map_err(|e| e.to_string())?;
            if cmds.is_empty() {
                eprintln!("fedproxy rules: no fedproxy rules present");
            }
            for cmd in &cmds {
                eprintln!("+ {cmd}");
                host::run(cmd).map_err(|e| e.to_string())?;
            }
            Ok(0)
        }
        RulesAction::Status(c) => {
            let (set, rc) = load(&c)?;
            let choice = choose(&c)?;
            println!("backend: {} ({})", choice.backend.name(), choice.reason);
            let mut d =
                ops::drift(&set, choice.backend, &rc.exempt_group).map_err(|e| e.to_string())?;
            let transparent = set.policy_route.is_some();
            d.extend(process::problems(&rc.exempt_group, transparent));
            if d.is_empty() {
                println!(
                    "in sync: {} rules{}",
                    set.rules.len(),
                    if transparent {
                        " and the policy route"
                    } else {
                        ""
                    }
                );
                Ok(0)
            } else {
                for x in &d {
                    println!("drift: {x}");
                }
                Ok(DRIFT)
            }
        }
    }
}
