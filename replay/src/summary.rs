//! The human summary of `fedproxy replay`: connections, frames by framing,
//! per-msg-type counts per direction, exactness, errors with connection and offset.

use std::collections::BTreeMap;
use std::fmt::Write;

use slurm_codec::frame::FramingKind;
use slurm_codec::Direction;

use super::decode::ReplayedConnection;

/// Totals over one or more captures.
#[derive(Default, Debug, Clone)]
pub struct Totals {
    pub connections: usize,
    pub frames: usize,
    pub exact: usize,
    pub errors: usize,
    pub oversized: usize,
    pub by_framing: BTreeMap<&'static str, usize>,
    /// (number, name) → [c2s, s2c]
    pub by_type: BTreeMap<(u16, String), [usize; 2]>,
    pub resynced_bytes: usize,
    pub missing_bytes: u64,
    pub incomplete_bytes: usize,
    pub reoriented: usize,
    pub http: usize,
}

impl Totals {
    pub fn add(&mut self, conns: &[ReplayedConnection]) {
        self.connections += conns.len();
        for c in conns {
            self.errors += c.errors.len();
            self.oversized += c.oversized.len();
            self.resynced_bytes += c.resynced_bytes;
            self.missing_bytes += c.missing_bytes;
            self.incomplete_bytes += c.incomplete_bytes;
            self.reoriented += usize::from(c.reoriented);
            self.http += usize::from(c.http_request.is_some());
            for f in &c.frames {
                self.frames += 1;
                self.exact += usize::from(f.exact);
                *self
                    .by_framing
                    .entry(f.frame.framing_kind().as_str())
                    .or_default() += 1;
                let t = f.frame.msg_type();
                let key = (t.0, t.display_in(f.frame.namespace()));
                self.by_type.entry(key).or_default()[f.dir.index()] += 1;
            }
        }
    }

    /// Top-level msg-type counts, both directions together.
    pub fn type_counts(&self) -> BTreeMap<u16, usize> {
        let mut m = BTreeMap::new();
        for ((n, _), [a, b]) in &self.by_type {
            *m.entry(*n).or_default() += a + b;
        }
        m
    }

    pub fn ok(&self) -> bool {
        self.errors == 0 && self.exact == self.frames
    }
}

pub fn render(file: &str, conns: &[ReplayedConnection]) -> String {
    let mut t = Totals::default();
    t.add(conns);
    let mut s = String::new();
    let framing: Vec<String> = [FramingKind::Normal, FramingKind::Persist, FramingKind::Dbd]
        .iter()
        .map(|k| {
            format!(
                "{} {}",
                k.as_str(),
                t.by_framing.get(k.as_str()).copied().unwrap_or(0)
            )
        })
        .collect();
    let _ = writeln!(
        s,
        "{file}: {} TCP connections, {} frames ({}), {}/{} byte-exact, {} errors",
        t.connections,
        t.frames,
        framing.join(", "),
        t.exact,
        t.frames,
        t.errors
    );
    let mut notes = Vec::new();
    if t.reoriented > 0 {
        notes.push(format!(
            "{} connections without SYN oriented from content",
            t.reoriented
        ));
    }
    if t.resynced_bytes > 0 {
        notes.push(format!(
            "{} bytes skipped to the first frame boundary",
            t.resynced_bytes
        ));
    }
    if t.missing_bytes > 0 {
        notes.push(format!(
            "{} bytes missing from the capture",
            t.missing_bytes
        ));
    }
    if t.incomplete_bytes > 0 {
        notes.push(format!(
            "{} bytes of frames cut off by the end of the capture",
            t.incomplete_bytes
        ));
    }
    if t.http > 0 {
        notes.push(format!(
            "{} HTTP connections passed through (not Slurm)",
            t.http
        ));
    }
    if t.oversized > 0 {
        notes.push(format!("{} oversized frames", t.oversized));
    }
    if !notes.is_empty() {
        let _ = writeln!(s, "  note: {}", notes.join("; "));
    }
    let width = t
        .by_type
        .keys()
        .map(|(_, n)| n.len())
        .max()
        .unwrap_or(8)
        .max(8);
    let _ = writeln!(
        s,
        "  {:>5} {:<width$} {:>5} {:>5}",
        "type", "name", "c2s", "s2c"
    );
    for ((n, name), [a, b]) in &t.by_type {
        let _ = writeln!(s, "  {n:>5} {name:<width$} {a:>5} {b:>5}");
    }
    for c in conns {
        if let Some(line) = &c.http_request {
            let _ = writeln!(
                s,
                "  http: conn {} ({} -> {}): {line:?}",
                c.id, c.client, c.server
            );
        }
        for e in &c.errors {
            let _ = writeln!(
                s,
                "  error: conn {} {} ({} -> {}) {} at stream offset {} (frame offset {}): {}: {}",
                c.id,
                e.dir.as_str(),
                c.client,
                c.server,
                dir_word(e.dir),
                e.stream_offset,
                e.error.offset,
                e.error.reason(),
                e.error.kind
            );
        }
        for f in c.frames.iter().filter(|f| !f.exact) {
            let _ = writeln!(
                s,
                "  not exact: conn {} {} frame at stream offset {} ({})",
                c.id,
                f.dir.as_str(),
                f.stream_offset,
                f.frame.msg_type().display_in(f.frame.namespace())
            );
        }
    }
    s
}

fn dir_word(d: Direction) -> &'static str {
    match d {
        Direction::ClientToServer => "request side",
        Direction::ServerToClient => "reply side",
    }
}
