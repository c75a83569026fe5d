//! SIGHUP: apply a changed configuration file to the running proxy, never
//! dropping an open connection.
//!
//! * Relay settings, `[[peer]]` and `[legacy]` apply to connections accepted
//!   from then on (open ones keep the settings they started with).
//! * A listener is matched by its label (`inbound`, `outbound`, a route's name):
//!   same address = same socket, new settings; a changed address = bound anew and
//!   the old socket closed; a new one starts listening; a removed one stops
//!   accepting while its open connections keep relaying.
//! * Everything that can fail (validation, libmunge, binding) happens first: an
//!   invalid file, or an address that cannot be bound, changes nothing.
//! * `[admin]` and `relay.worker_threads` are fixed at start: a change is logged
//!   as needing a restart. The interception rules are not touched (`fedproxy
//!   rules apply` re-applies them).

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tracing::{error, info, warn};

use super::config::Config;
use super::error::StartError;
use super::listener::{self, ListenerCtx};
use super::{spawn_listener, Proxy};

/// What a successful reload changed (listener labels).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ReloadSummary {
    pub added: Vec<String>,
    pub rebound: Vec<String>,
    pub removed: Vec<String>,
}

impl Proxy {
    /// SIGHUP: reads `path` and applies it; an invalid file keeps the running
    /// configuration. Counted in `fedproxy_config_reloads_total{result}`.
    pub async fn reload_from(&mut self, path: &Path) {
        let result = match Config::load(path) {
            Ok(cfg) => self.reload(cfg).await,
            Err(e) => Err(e.into()),
        };
        let metrics = self.metrics.clone();
        match result {
            Ok(s) => {
                metrics.config_reloads.with_label_values(&["ok"]).inc();
                info!(config = %path.display(), added = ?s.added, rebound = ?s.rebound, removed = ?s.removed,
                    "SIGHUP: configuration reloaded");
            }
            Err(e) => {
                metrics.config_reloads.with_label_values(&["invalid"]).inc();
                error!(config = %path.display(), error = %e,
                    "SIGHUP: the configuration file is invalid; the running configuration stays");
            }
        }
    }

    /// Applies `cfg` to the running proxy (see the module documentation).
    /// Returns once removed listeners have closed their sockets.
    pub async fn reload(&mut self, cfg: Config) -> Result<ReloadSummary, StartError> {
        cfg.validate()?;
        let old = self.live.current();
        let legacy = flurm::LegacyRuntime::from_config(
            cfg.legacy.as_ref(),
            &cfg.peers,
            old.metrics.legacy.clone(),
            old.metrics.probes.clone(),
        )?;
        // Bind what is new before changing anything: a failure changes nothing.
        let mut kept = Vec::new();
        let mut fresh = Vec::new();
        for spec in cfg.listeners() {
            let same = self
                .running
                .iter()
                .position(|r| r.spec.name == spec.name && r.spec.listen == spec.listen);
            match same {
                Some(i) => kept.push((i, spec)),
                None => {
                    let b = listener::bind_sockets(
                        spec.listen,
                        &spec.key,
                        self.workers.len(),
                        cfg.relay.keepalive_secs,
                    )?;
                    fresh.push((spec, b));
                }
            }
        }

        self.log_what_needs_a_restart(&cfg);
        crate::observe_budget::ObserveBudget::global().set_limit(cfg.relay.observe_budget);
        let mut own: Vec<SocketAddr> = kept
            .iter()
            .map(|(i, _)| self.running[*i].addr)
            .chain(fresh.iter().map(|f| f.1.addr))
            .collect();
        own.push(self.admin_addr);
        old.guard.set_listeners(own);
        let state = Arc::new(old.reloaded(cfg.relay.clone(), legacy));
        let metrics = state.metrics.clone();
        self.live.replace(state);

        let mut summary = ReloadSummary::default();
        let mut previous: Vec<_> = std::mem::take(&mut self.running)
            .into_iter()
            .map(Some)
            .collect();
        for (i, spec) in kept {
            if let Some(mut r) = previous[i].take() {
                // Always sent: it also wakes the loop to read the new relay settings.
                r.ctx
                    .send_replace(Arc::new(ListenerCtx::new(spec.clone(), &metrics)));
                r.spec = spec;
                self.running.push(r);
            }
        }
        for r in previous.into_iter().flatten() {
            // Dropping the sender stops the accept loop; its connections go on.
            drop(r.ctx);
            if tokio::time::timeout(Duration::from_secs(5), r.task)
                .await
                .is_err()
            {
                warn!(listener = %r.spec.name, "the accept loop did not stop within 5 s");
            }
            info!(listener = %r.spec.name, addr = %r.addr, "stopped listening (configuration reloaded)");
            summary.removed.push(r.spec.name);
        }
        for (spec, b) in fresh {
            if let Some(i) = summary.removed.iter().position(|n| *n == spec.name) {
                summary.removed.remove(i);
                summary.rebound.push(spec.name.clone());
            } else {
                summary.added.push(spec.name.clone());
            }
            let r = spawn_listener(spec, b, &self.live, &self.workers);
            self.running.push(r);
        }
        self.listeners = self
            .running
            .iter()
            .map(|r| (r.spec.name.clone(), r.addr))
            .collect();
        let intercepted_moved = summary
            .rebound
            .iter()
            .chain(&summary.added)
            .chain(&summary.removed)
            .any(|n| n == "inbound" || n == "outbound");
        if intercepted_moved || cfg.rules != self.config.rules {
            warn!(
                "SIGHUP: the interception rules are not changed by a reload; \
                   run `fedproxy rules apply` (or restart fedproxy) to apply them"
            );
        }
        self.config = cfg;
        Ok(summary)
    }

    /// Settings fixed at start: a change is logged, not applied.
    fn log_what_needs_a_restart(&self, cfg: &Config) {
        let old = &self.config;
        let mut changed = Vec::new();
        if cfg.admin.listen != old.admin.listen {
            changed.push("admin.listen");
        }
        if cfg.admin.allow_remote != old.admin.allow_remote {
            changed.push("admin.allow_remote");
        }
        if cfg.relay.worker_threads != old.relay.worker_threads {
            changed.push("relay.worker_threads");
        }
        for setting in changed {
            warn!(
                setting,
                "SIGHUP: this setting changed but needs a restart; the running value stays"
            );
        }
    }
}
