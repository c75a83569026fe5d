//! The `fedproxy run` configuration file (TOML). Every key is documented in
//! `fedproxy.example.toml` at the repository root; unknown keys are errors.
//!
//! A missing `[inbound]` / `[outbound]` section disables that listener; a present
//! but empty one takes the defaults. `[[route]]` entries are static
//! `listen -> upstream` relays (no iptables needed). At least one listener is required.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

/// The whole file.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub admin: AdminConfig,
    pub inbound: Option<InboundConfig>,
    pub outbound: Option<OutboundConfig>,
    #[serde(default, rename = "route")]
    pub routes: Vec<RouteConfig>,
    #[serde(default)]
    pub relay: RelayConfig,
    /// `[legacy]`: legacy FLURM interop settings (README.md, "Legacy FLURM peers").
    #[serde(default)]
    pub legacy: Option<flurm::LegacyConfig>,
    /// `[[peer]]`: per-peer dialect (README.md, "Legacy FLURM peers").
    #[serde(default, rename = "peer")]
    pub peers: Vec<flurm::PeerConfig>,
    /// `[rules]`: inputs of `fedproxy rules` beyond the listeners.
    #[serde(default)]
    pub rules: crate::rules::RulesConfig,
}

/// `[admin]`: the HTTP server with `/metrics`, `/live`, `/ready`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminConfig {
    #[serde(default = "default_admin_listen")]
    pub listen: SocketAddr,
    /// Serve clients whose address is not loopback (default: close them).
    #[serde(default)]
    pub allow_remote: bool,
}

/// `[inbound]`: connections redirected from port 6817 to the local slurmctld.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InboundConfig {
    #[serde(default = "default_inbound_listen")]
    pub listen: SocketAddr,
    #[serde(default = "default_inbound_upstream")]
    pub upstream: SocketAddr,
    /// Connect to the upstream from the client's own address (IP_TRANSPARENT;
    /// needs CAP_NET_ADMIN and policy routing so replies come back to the proxy).
    #[serde(default)]
    pub transparent: bool,
}

/// `[outbound]`: the local slurmctld's own connections; destination from SO_ORIGINAL_DST.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutboundConfig {
    #[serde(default = "default_outbound_listen")]
    pub listen: SocketAddr,
}

/// `[[route]]`: a static relay.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    pub listen: SocketAddr,
    pub upstream: SocketAddr,
    /// The `listener` label value; default `route-<index>` (0-based).
    pub name: Option<String>,
}

/// `[relay]`: per-connection behaviour.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RelayConfig {
    #[serde(default = "default_connect_timeout_ms")]
    pub connect_timeout_ms: u64,
    #[serde(default = "default_drain_timeout_ms")]
    pub drain_timeout_ms: u64,
    #[serde(default = "default_max_observed_frame")]
    pub max_observed_frame: usize,
    /// Total bytes all decoders may hold in partial frames; past it a direction
    /// is relayed unobserved (bounded memory under hostile input).
    #[serde(default = "default_observe_budget")]
    pub observe_budget: usize,
    /// A partial frame that waits longer than this for its next byte makes its
    /// direction relayed unobserved (its buffer freed); 0 = no limit.
    #[serde(default = "default_partial_idle_secs")]
    pub partial_idle_secs: u64,
    /// Read buffer per direction, allocated only while bytes are moving.
    #[serde(default = "default_buffer_size")]
    pub buffer_size: usize,
    /// Decode traffic (metrics by message type); false = byte relay only.
    #[serde(default = "default_true")]
    pub observe: bool,
    /// TCP keepalive idle time on both sockets of a relayed connection; 0 = off.
    /// Not an idle timeout: it only detects peers that are gone.
    #[serde(default = "default_keepalive_secs")]
    pub keepalive_secs: u64,
    /// Threads relaying connections; 0 = one per CPU core.
    #[serde(default)]
    pub worker_threads: usize,
    /// While the upstream of the inbound listener or a route refuses connects,
    /// close that listener (clients get ECONNREFUSED and fail over, as Slurm's
    /// do to a backup controller); reopen it when the upstream accepts again.
    #[serde(default = "default_true")]
    pub follow_upstream: bool,
}

fn default_admin_listen() -> SocketAddr {
    "127.0.0.1:9817".parse().unwrap()
}
fn default_inbound_listen() -> SocketAddr {
    "0.0.0.0:16817".parse().unwrap()
}
fn default_inbound_upstream() -> SocketAddr {
    "127.0.0.1:6817".parse().unwrap()
}
fn default_outbound_listen() -> SocketAddr {
    "0.0.0.0:16818".parse().unwrap()
}
fn default_connect_timeout_ms() -> u64 {
    5000
}
fn default_drain_timeout_ms() -> u64 {
    10_000
}
fn default_max_observed_frame() -> usize {
    1 << 20
}
fn default_observe_budget() -> usize {
    crate::observe_budget::DEFAULT_BUDGET
}
fn default_partial_idle_secs() -> u64 {
    60
}
fn default_buffer_size() -> usize {
    16 * 1024
}
fn default_true() -> bool {
    true
}
fn default_keepalive_secs() -> u64 {
    60
}

impl Default for AdminConfig {
    fn default() -> Self {
        AdminConfig {
            listen: default_admin_listen(),
            allow_remote: false,
        }
    }
}

impl Default for InboundConfig {
    fn default() -> Self {
        InboundConfig {
            listen: default_inbound_listen(),
            upstream: default_inbound_upstream(),
            transparent: false,
        }
    }
}

impl Default for OutboundConfig {
    fn default() -> Self {
        OutboundConfig {
            listen: default_outbound_listen(),
        }
    }
}

impl Default for RelayConfig {
    fn default() -> Self {
        RelayConfig {
            connect_timeout_ms: default_connect_timeout_ms(),
            drain_timeout_ms: default_drain_timeout_ms(),
            max_observed_frame: default_max_observed_frame(),
            observe_budget: default_observe_budget(),
            partial_idle_secs: default_partial_idle_secs(),
            buffer_size: default_buffer_size(),
            observe: true,
            keepalive_secs: default_keepalive_secs(),
            worker_threads: 0,
            follow_upstream: true,
        }
    }
}

impl RelayConfig {
    pub fn connect_timeout(&self) -> Duration {
        Duration::from_millis(self.connect_timeout_ms)
    }
    /// `relay.partial_idle_secs`; `None` = no limit.
    pub fn partial_idle(&self) -> Option<Duration> {
        (self.partial_idle_secs > 0).then(|| Duration::from_secs(self.partial_idle_secs))
    }
    pub fn drain_timeout(&self) -> Duration {
        Duration::from_millis(self.drain_timeout_ms)
    }
}

/// Linux's limit for TCP_KEEPIDLE (a larger value is refused by setsockopt).
pub const MAX_KEEPALIVE_SECS: u64 = 32767;
/// More relay threads than this buy nothing on a head node.
pub const MAX_WORKER_THREADS: usize = 1024;

/// A configuration problem; each message names the key it concerns.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {}: {error}", path.display())]
    Read { path: PathBuf, error: String },
    #[error("config file {}: {error}", path.display())]
    InFile {
        path: PathBuf,
        error: Box<ConfigError>,
    },
    /// TOML syntax, an unknown key, a value of the wrong type (toml's message).
    #[error("{0}")]
    Parse(String),
    #[error("no listener configured: add [inbound], [outbound] or at least one [[route]]")]
    NoListener,
    #[error(
        "inbound.transparent = true needs inbound.upstream on the head node's own address, not {0} \
         (the kernel does not route a non-local source address to loopback)"
    )]
    TransparentToLoopback(SocketAddr),
    #[error("relay.connect_timeout_ms must be > 0")]
    ZeroConnectTimeout,
    #[error("relay.buffer_size = {0} is out of range (1024 ..= 1048576)")]
    BufferSize(usize),
    #[error("relay.max_observed_frame = {0} is out of range (64 ..= 1073741824)")]
    MaxObservedFrame(usize),
    #[error("relay.keepalive_secs = {0} is over the kernel's limit of 32767 (TCP_KEEPIDLE)")]
    KeepaliveSecs(u64),
    #[error("relay.worker_threads = {0} is out of range (0 = one per CPU core, at most 1024)")]
    WorkerThreads(usize),
    /// `[[peer]]` / `[legacy]`: the checks the legacy peer table makes at start-up.
    #[error(transparent)]
    Peers(#[from] flurm::config::ConfigError),
    #[error("relay.observe_budget = {budget} is below relay.max_observed_frame = {frame} (one frame must fit)")]
    ObserveBudget { budget: usize, frame: usize },
    #[error("{key}: route name {name:?} must be 1-64 printable ASCII characters without spaces")]
    BadName { key: String, name: String },
    #[error("{first} and {second} share the listener name {name:?}; give routes distinct names")]
    DuplicateName {
        first: String,
        second: String,
        name: String,
    },
    #[error("{key} = {addr} is also {other}")]
    DuplicateAddress {
        key: String,
        addr: SocketAddr,
        other: String,
    },
    #[error("{key}: upstream {upstream} has port 0")]
    UpstreamPortZero { key: String, upstream: SocketAddr },
    #[error("{key} = {upstream} points at this proxy's own {other} (a relay loop)")]
    UpstreamIsProxy {
        key: String,
        upstream: SocketAddr,
        other: String,
    },
}

/// Where a listener comes from in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListenerKind {
    Inbound {
        upstream: SocketAddr,
        transparent: bool,
    },
    Outbound,
    Route {
        upstream: SocketAddr,
    },
}

/// One listener to bind, with its metric label and its config key (for messages).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenerSpec {
    /// `listener` label value: `inbound`, `outbound` or the route's name.
    pub name: String,
    /// The key that set the address, e.g. `route[1].listen` (for error messages).
    pub key: String,
    pub listen: SocketAddr,
    pub kind: ListenerKind,
}

/// toml's message, plus what "invalid socket address syntax" usually means.
fn explain_parse_error(e: &toml::de::Error) -> String {
    let msg = e.to_string().trim_end().to_string();
    if msg.contains("invalid socket address syntax") {
        format!(
            "{msg}\naddresses are IP:port, e.g. \"127.0.0.1:6817\" or \"[::1]:6817\"; \
             host names such as \"localhost\" are not resolved"
        )
    } else {
        msg
    }
}

impl Config {
    /// Parses and validates TOML text.
    pub fn from_toml(text: &str) -> Result<Config, ConfigError> {
        let cfg: Config =
            toml::from_str(text).map_err(|e| ConfigError::Parse(explain_parse_error(&e)))?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Reads, parses and validates a file; errors name the file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Read {
            path: path.to_path_buf(),
            error: e.to_string(),
        })?;
        Config::from_toml(&text).map_err(|e| ConfigError::InFile {
            path: path.to_path_buf(),
            error: Box::new(e),
        })
    }

    /// The listeners to bind, in a stable order: inbound, outbound, routes.
    pub fn listeners(&self) -> Vec<ListenerSpec> {
        let mut out = Vec::new();
        if let Some(i) = &self.inbound {
            out.push(ListenerSpec {
                name: "inbound".into(),
                key: "inbound.listen".into(),
                listen: i.listen,
                kind: ListenerKind::Inbound {
                    upstream: i.upstream,
                    transparent: i.transparent,
                },
            });
        }
        if let Some(o) = &self.outbound {
            out.push(ListenerSpec {
                name: "outbound".into(),
                key: "outbound.listen".into(),
                listen: o.listen,
                kind: ListenerKind::Outbound,
            });
        }
        for (i, r) in self.routes.iter().enumerate() {
            out.push(ListenerSpec {
                name: r.name.clone().unwrap_or_else(|| format!("route-{i}")),
                key: format!("route[{i}].listen"),
                listen: r.listen,
                kind: ListenerKind::Route {
                    upstream: r.upstream,
                },
            });
        }
        out
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        let listeners = self.listeners();
        if listeners.is_empty() {
            return Err(ConfigError::NoListener);
        }
        if let Some(i) = self
            .inbound
            .as_ref()
            .filter(|i| i.transparent && i.upstream.ip().is_loopback())
        {
            return Err(ConfigError::TransparentToLoopback(i.upstream));
        }
        let r = &self.relay;
        if r.connect_timeout_ms == 0 {
            return Err(ConfigError::ZeroConnectTimeout);
        }
        if !(1024..=1 << 20).contains(&r.buffer_size) {
            return Err(ConfigError::BufferSize(r.buffer_size));
        }
        if !(64..=1 << 30).contains(&r.max_observed_frame) {
            return Err(ConfigError::MaxObservedFrame(r.max_observed_frame));
        }
        if r.keepalive_secs > MAX_KEEPALIVE_SECS {
            return Err(ConfigError::KeepaliveSecs(r.keepalive_secs));
        }
        if r.worker_threads > MAX_WORKER_THREADS {
            return Err(ConfigError::WorkerThreads(r.worker_threads));
        }
        // The same peer-table checks as start-up (CIDRs, fed ids, the legacy
        // upstream version), for every peer, so --check-config agrees with run.
        flurm::PeerTable::new(&self.peers, &self.legacy.clone().unwrap_or_default())?;
        if r.observe_budget < r.max_observed_frame {
            return Err(ConfigError::ObserveBudget {
                budget: r.observe_budget,
                frame: r.max_observed_frame,
            });
        }
        let mut names: HashMap<&str, &str> = HashMap::new();
        let mut addrs: HashMap<SocketAddr, String> = HashMap::new();
        addrs.insert(self.admin.listen, "admin.listen".into());
        for l in &listeners {
            if l.name.is_empty()
                || l.name.len() > 64
                || !l.name.chars().all(|c| c.is_ascii_graphic())
            {
                return Err(ConfigError::BadName {
                    key: l.key.replace(".listen", ".name"),
                    name: l.name.clone(),
                });
            }
            if let Some(other) = names.insert(&l.name, &l.key) {
                return Err(ConfigError::DuplicateName {
                    first: other.to_string(),
                    second: l.key.clone(),
                    name: l.name.clone(),
                });
            }
            // Port 0 asks the OS for a free port: never a clash.
            if l.listen.port() != 0 {
                if let Some(other) = addrs.insert(l.listen, l.key.clone()) {
                    return Err(ConfigError::DuplicateAddress {
                        key: l.key.clone(),
                        addr: l.listen,
                        other,
                    });
                }
            }
        }
        for l in &listeners {
            let upstream = match l.kind {
                ListenerKind::Inbound { upstream, .. } | ListenerKind::Route { upstream } => {
                    upstream
                }
                ListenerKind::Outbound => continue,
            };
            if upstream.port() == 0 {
                return Err(ConfigError::UpstreamPortZero {
                    key: l.key.replace("listen", "upstream"),
                    upstream,
                });
            }
            if let Some(other) = addrs.get(&upstream) {
                return Err(ConfigError::UpstreamIsProxy {
                    key: l.key.replace("listen", "upstream"),
                    upstream,
                    other: other.clone(),
                });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn example_file_parses() {
        let text = include_str!("../../../fedproxy.example.toml");
        let cfg = Config::from_toml(text).unwrap();
        assert_eq!(cfg.admin.listen, "127.0.0.1:9817".parse().unwrap());
        assert!(!cfg.admin.allow_remote);
        assert_eq!(cfg.inbound, Some(InboundConfig::default()));
        assert_eq!(cfg.outbound, Some(OutboundConfig::default()));
        assert_eq!(cfg.relay, RelayConfig::default());
        assert!(
            cfg.routes.is_empty(),
            "no active test route in the shipped example"
        );
        assert_eq!(cfg.rules, crate::rules::RulesConfig::default());
    }

    #[test]
    fn what_start_up_rejects_the_check_rejects_too() {
        // Issue 10 item 4: each passed the check and failed at start.
        let route = "[[route]]\nlisten = \"127.0.0.1:7001\"\nupstream = \"127.0.0.1:6817\"\n";
        for (extra, says) in [
            (
                "[[peer]]\nmatch = \"10.0.0.0/33\"\ndialect = \"legacy-flurm\"\n",
                "10.0.0.0/33",
            ),
            (
                "[[peer]]\nmatch = \"10.0.0.7\"\ndialect = \"legacy-flurm\"\nfed_id = 99\n",
                "fed_id 99",
            ),
            ("[legacy]\nupstream_version = 0x1234\n", "0x1234"),
            // A slurm-dialect peer gets the same checks (no legacy peer needed).
            (
                "[[peer]]\nmatch = \"10.0.0.0/33\"\ndialect = \"slurm\"\n",
                "10.0.0.0/33",
            ),
            ("[relay]\nkeepalive_secs = 32768\n", "32767"),
            ("[relay]\nworker_threads = 100000\n", "worker_threads"),
        ] {
            let e = Config::from_toml(&format!("{route}{extra}")).unwrap_err();
            assert!(e.to_string().contains(says), "{extra}: {e}");
        }
        let ok = "[relay]\nkeepalive_secs = 32767\nworker_threads = 1024\n";
        Config::from_toml(&format!("{route}{ok}")).unwrap();
    }

    #[test]
    fn defaults_fill_empty_sections() {
        let cfg = Config::from_toml("[inbound]\n[outbound]\n").unwrap();
        assert_eq!(
            cfg.inbound.unwrap().upstream,
            "127.0.0.1:6817".parse().unwrap()
        );
        assert_eq!(
            cfg.outbound.unwrap().listen,
            "0.0.0.0:16818".parse().unwrap()
        );
        assert_eq!(cfg.relay.drain_timeout_ms, 10_000);
    }

    #[test]
    fn unknown_keys_are_errors_naming_the_key() {
        let e =
            Config::from_toml("[inbound]\nlisten = \"0.0.0.0:1\"\nupstrem = \"127.0.0.1:6817\"\n")
                .unwrap_err();
        assert!(e.to_string().contains("upstrem"), "{e}");
        let e = Config::from_toml("[[route]]\nlisten = \"127.0.0.1:1\"\nupstream = \"127.0.0.1:2\"\n[relay]\nidle_timeout_ms = 5\n")
            .unwrap_err();
        assert!(e.to_string().contains("idle_timeout_ms"), "{e}");
        let e = Config::from_toml("[inbound]\n[metrics]\n").unwrap_err();
        assert!(e.to_string().contains("metrics"), "{e}");
    }

    #[test]
    fn bad_values_are_explained() {
        let e = Config::from_toml("").unwrap_err();
        assert!(e.to_string().contains("no listener"), "{e}");
        let e = Config::from_toml("[inbound]\nlisten = \"localhost:1\"\n").unwrap_err();
        assert!(e.to_string().contains("listen"), "{e}");
        let e = Config::from_toml("[inbound]\nupstream = \"localhost:6817\"\n").unwrap_err();
        assert!(
            e.to_string()
                .contains("host names such as \"localhost\" are not resolved"),
            "{e}"
        );
        let e = Config::from_toml("[inbound]\nlisten = \"127.0.0.1:7000\"\n[[route]]\nlisten = \"127.0.0.1:7000\"\nupstream = \"127.0.0.1:6817\"\n")
            .unwrap_err();
        assert!(
            e.to_string().contains("route[0].listen") && e.to_string().contains("inbound.listen"),
            "{e}"
        );
        let e = Config::from_toml(
            "[[route]]\nlisten = \"127.0.0.1:7000\"\nupstream = \"127.0.0.1:7000\"\n",
        )
        .unwrap_err();
        assert!(
            e.to_string().contains("route[0].upstream") && e.to_string().contains("loop"),
            "{e}"
        );
        let e = Config::from_toml("[outbound]\n[relay]\nbuffer_size = 10\n").unwrap_err();
        assert!(e.to_string().contains("relay.buffer_size"), "{e}");
    }

    #[test]
    fn transparent_inbound_needs_a_non_loopback_upstream() {
        let bad = Config::from_toml("[inbound]\nlisten = \"0.0.0.0:16817\"\nupstream = \"127.0.0.1:6817\"\ntransparent = true\n");
        assert!(bad
            .unwrap_err()
            .to_string()
            .contains("head node's own address"));
        let ok = Config::from_toml("[inbound]\nlisten = \"0.0.0.0:16817\"\nupstream = \"10.0.0.1:6817\"\ntransparent = true\n");
        assert!(ok.is_ok());
    }
}
