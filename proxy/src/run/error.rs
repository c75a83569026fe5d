//! Why the daemon cannot start: a listener that cannot be bound, or a
//! configuration the proxy cannot run with. Every message names the config key.

use std::io;
use std::net::SocketAddr;

use super::config::ConfigError;

/// A listening socket that cannot be bound (`key` is the config key, e.g.
/// `route[0].listen`), with what to do about the common causes.
#[derive(Debug, thiserror::Error)]
pub enum BindError {
    #[error(
        "cannot listen on {key} = {addr}: {source} (another process — an old fedproxy? — is listening there)"
    )]
    InUse {
        key: String,
        addr: SocketAddr,
        source: io::Error,
    },
    #[error(
        "cannot listen on {key} = {addr}: {source} (no interface of this host has that address)"
    )]
    NotLocal {
        key: String,
        addr: SocketAddr,
        source: io::Error,
    },
    #[error(
        "cannot listen on {key} = {addr}: {source} (ports below 1024 need root or CAP_NET_BIND_SERVICE)"
    )]
    Privileged {
        key: String,
        addr: SocketAddr,
        source: io::Error,
    },
    #[error("cannot listen on {key} = {addr}: {source}")]
    Other {
        key: String,
        addr: SocketAddr,
        source: io::Error,
    },
}

impl BindError {
    /// Sorts `source` into the causes that have a hint.
    pub fn new(key: &str, addr: SocketAddr, source: io::Error) -> BindError {
        let key = key.to_string();
        match source.kind() {
            io::ErrorKind::AddrInUse => BindError::InUse { key, addr, source },
            io::ErrorKind::AddrNotAvailable => BindError::NotLocal { key, addr, source },
            io::ErrorKind::PermissionDenied => BindError::Privileged { key, addr, source },
            _ => BindError::Other { key, addr, source },
        }
    }
}

/// Why [`super::Proxy::start`] failed.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Bind(#[from] BindError),
    #[error("{key}: cannot read the bound address: {source}")]
    LocalAddr { key: String, source: io::Error },
    #[error(transparent)]
    Legacy(#[from] flurm::LegacyError),
    #[error("relay.worker_threads: cannot start the relay threads: {0}")]
    Workers(io::Error),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bind_errors_name_the_key_and_the_way_out() {
        let addr: SocketAddr = "127.0.0.1:80".parse().unwrap();
        let in_use = BindError::new("route[0].listen", addr, io::ErrorKind::AddrInUse.into());
        assert!(matches!(in_use, BindError::InUse { .. }));
        let m = in_use.to_string();
        assert!(
            m.starts_with("cannot listen on route[0].listen = 127.0.0.1:80: ")
                && m.ends_with("(another process — an old fedproxy? — is listening there)"),
            "{m}"
        );
        let denied = BindError::new("admin.listen", addr, io::ErrorKind::PermissionDenied.into());
        assert!(
            denied.to_string().contains("CAP_NET_BIND_SERVICE"),
            "{denied}"
        );
        let other = BindError::new("admin.listen", addr, io::ErrorKind::Other.into());
        assert!(matches!(other, BindError::Other { .. }));
        let start = StartError::from(other);
        assert!(start
            .to_string()
            .starts_with("cannot listen on admin.listen"));
    }
}
