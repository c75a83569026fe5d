//! `[rules]`: what `fedproxy rules` needs beyond the listeners. Every key has a
//! default, so a file without the section generates the documented rules.

use serde::Deserialize;

/// `[rules]` of the configuration file.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RulesConfig {
    /// The port slurmctld listens on (SlurmctldPort). Default: the port of
    /// `inbound.upstream`, else 6817.
    pub slurmctld_port: Option<u16>,
    /// The proxy's primary group: its own connections (the ones to slurmctld and
    /// to the siblings) match `owner --gid-owner` and are not redirected.
    #[serde(default = "default_exempt_group")]
    pub exempt_group: String,
    /// Transparent mode: the packet/connection mark of the proxy's upstream
    /// connections (one bit) and the routing table that delivers slurmctld's
    /// replies to them back to the proxy.
    #[serde(default = "default_mark")]
    pub mark: u32,
    #[serde(default = "default_route_table")]
    pub route_table: u32,
    /// Priority of the `ip rule` that selects `route_table`.
    #[serde(default = "default_rule_priority")]
    pub rule_priority: u32,
}

fn default_exempt_group() -> String {
    "fedproxy".into()
}
fn default_mark() -> u32 {
    0x1
}
fn default_route_table() -> u32 {
    16817
}
fn default_rule_priority() -> u32 {
    100
}

impl Default for RulesConfig {
    fn default() -> Self {
        RulesConfig {
            slurmctld_port: None,
            exempt_group: default_exempt_group(),
            mark: default_mark(),
            route_table: default_route_table(),
            rule_priority: default_rule_priority(),
        }
    }
}
