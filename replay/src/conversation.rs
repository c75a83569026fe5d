//! `fedproxy replay --conversation`: one line per message, connections labelled
//! with the cluster names learned from PERSIST_INIT (name + SlurmctldPort).

use std::collections::BTreeMap;
use std::fmt::Write;

use slurm_codec::conn::ConnKind;
use slurm_codec::frame::Frame;
use slurm_codec::msg::Message;
use slurm_codec::Direction;

use super::decode::ReplayedConnection;

/// Who listens on which port, learned from federation PERSIST_INITs.
#[derive(Default, Debug)]
pub struct Peers {
    by_port: BTreeMap<u16, String>,
}

impl Peers {
    pub fn learn(conns: &[ReplayedConnection]) -> Peers {
        let mut p = Peers::default();
        p.add(conns);
        p
    }

    /// Adds what a capture's PERSIST_INITs say (several files of one site can be
    /// combined: a file without the handshake borrows the names from another).
    pub fn add(&mut self, conns: &[ReplayedConnection]) {
        let p = self;
        for c in conns {
            if let (ConnKind::FedPersist, Some(init)) = (c.kind, &c.persist_init) {
                if let Some(name) = init.cluster_name.text() {
                    p.by_port.insert(init.port, name);
                }
            }
            // RESPONSE_FED_INFO names every cluster with its SlurmctldPort.
            for f in &c.frames {
                if let Some(Message::FedInfoResponse(r)) = f.frame.message() {
                    let clusters = r
                        .federation
                        .iter()
                        .filter_map(|f| f.cluster_list.0.as_ref())
                        .flatten()
                        .flatten();
                    for cl in clusters {
                        if let (Some(name), Ok(port)) =
                            (cl.name.text(), u16::try_from(cl.control_port))
                        {
                            p.by_port.entry(port).or_insert(name);
                        }
                    }
                }
            }
        }
    }

    fn server(&self, c: &ReplayedConnection) -> String {
        self.by_port
            .get(&c.server.port())
            .cloned()
            .unwrap_or_else(|| c.server.to_string())
    }

    fn client(&self, c: &ReplayedConnection) -> String {
        match c.kind {
            ConnKind::FedPersist => {
                let name = c
                    .persist_init
                    .as_ref()
                    .and_then(|i| i.cluster_name.text())
                    .or_else(|| {
                        // Handshake not captured: the one other cluster, if the pair is known.
                        let server = self.by_port.get(&c.server.port())?;
                        let others: Vec<_> =
                            self.by_port.values().filter(|n| *n != server).collect();
                        (others.len() == 1).then(|| others[0].clone())
                    });
                format!("{}(fed persist)", name.unwrap_or_else(|| "ctld".into()))
            }
            ConnKind::DbdPersist => "slurmctld(dbd persist)".into(),
            _ => format!("client:{}", c.client.port()),
        }
    }
}

/// Options for the view.
#[derive(Default, Clone, Copy)]
pub struct ConversationFilter {
    /// Only controller ↔ controller federation connections.
    pub peers_only: bool,
}

/// Renders the conversation of a capture, messages in capture order.
pub fn render(
    file: &str,
    conns: &[ReplayedConnection],
    peers: &Peers,
    filter: ConversationFilter,
) -> String {
    let t0 = conns
        .iter()
        .map(|c| c.first_ts)
        .fold(f64::INFINITY, f64::min);
    let mut lines: Vec<(f64, usize, String)> = Vec::new();
    for c in conns {
        if filter.peers_only && c.kind != ConnKind::FedPersist {
            continue;
        }
        let (client, server) = (peers.client(c), peers.server(c));
        for (i, f) in c.frames.iter().enumerate() {
            let (from, to) = match f.dir {
                Direction::ClientToServer => (&client, &server),
                Direction::ServerToClient => (&server, &client),
            };
            let text = format!(
                "{:>9.3}s  #{:<3} {from} -> {to}  {}",
                f.ts - t0,
                c.id,
                describe(&f.frame)
            );
            lines.push((f.ts, c.id * 100_000 + i, text));
        }
        for e in &c.errors {
            let text = format!(
                "{:>9.3}s  #{:<3} decode error: {}",
                e.ts - t0,
                c.id,
                e.error
            );
            lines.push((e.ts, c.id * 100_000 + 99_999, text));
        }
    }
    lines.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    let mut s = String::new();
    let _ = writeln!(s, "== {file}");
    for (_, _, l) in lines {
        let _ = writeln!(s, "{l}");
    }
    s
}

/// One message in a few words: the typed summary when modelled, else the name.
pub fn describe(frame: &Frame) -> String {
    let name = frame.msg_type().display_in(frame.namespace());
    match frame.message() {
        Some(m) => m.summary(),
        None => name,
    }
}
