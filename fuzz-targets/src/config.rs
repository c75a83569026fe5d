//! The `fedproxy run` configuration parser, including the legacy peer table.

use fedproxy::run::config::Config;
use flurm::PeerTable;

/// Input: the text of a configuration file (invalid UTF-8 is read lossily).
pub fn parse(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let Ok(cfg) = Config::from_toml(&text) else {
        return;
    };
    let listeners = cfg.listeners();
    assert!(!listeners.is_empty(), "a valid config has a listener");
    let legacy = cfg.legacy.clone().unwrap_or_default();
    let _ = PeerTable::new(&cfg.peers, &legacy);
    let _ = (cfg.relay.connect_timeout(), cfg.relay.drain_timeout());
}
