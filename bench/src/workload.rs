//! The workloads (what the clients do) and the figures of one trial.

use crate::cli::Args;
use crate::client::LatencyTrial;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Workload {
    Oneshot1,
    OneshotN,
    PingPong,
    Pipelined,
}

impl Workload {
    pub fn parse(s: &str) -> Option<Workload> {
        Some(match s {
            "oneshot_1" => Workload::Oneshot1,
            "oneshot_n" => Workload::OneshotN,
            "pingpong" => Workload::PingPong,
            "pipelined" => Workload::Pipelined,
            _ => return None,
        })
    }
    pub fn key(self, a: &Args) -> String {
        match self {
            Workload::Oneshot1 => "oneshot_1".into(),
            Workload::OneshotN => format!("oneshot_{}", a.clients),
            Workload::PingPong => "persist_pingpong".into(),
            Workload::Pipelined => format!("persist_pipelined_{}", a.window),
        }
    }
    pub fn title(self, a: &Args) -> String {
        match self {
            Workload::Oneshot1 => "One-shot RPC (REQUEST_FED_INFO → RESPONSE_FED_INFO), 1 client".into(),
            Workload::OneshotN => format!("One-shot RPC (REQUEST_FED_INFO → RESPONSE_FED_INFO), {} concurrent clients", a.clients),
            Workload::PingPong => "Persistent federation connection, ping-pong (CTLD_MULT_MSG/SIB_MSG → RESPONSE_CTLD_MULT_MSG)".into(),
            Workload::Pipelined => format!("Persistent federation connection, pipelined ({} frames in flight)", a.window),
        }
    }
}

/// One trial's figures.
#[derive(Clone, Debug)]
pub struct Trial {
    pub rep: usize,
    pub ops: u64,
    pub errors: u64,
    pub elapsed_s: f64,
    pub rate: f64,
    pub mb_s: f64,
    pub p50_us: f64,
    pub p99_us: f64,
    /// Proxy CPU seconds per 1000 operations (NaN for direct).
    pub proxy_cpu_ms_per_kop: f64,
}

pub fn to_trial(rep: usize, t: &LatencyTrial, latency: bool, cpu: f64) -> Trial {
    let (p50, p99) = if latency {
        (t.pct_us(50.0), t.pct_us(99.0))
    } else {
        (f64::NAN, f64::NAN)
    };
    Trial {
        rep,
        ops: t.ops(),
        errors: t.errors,
        elapsed_s: t.elapsed.as_secs_f64(),
        rate: t.rate(),
        mb_s: t.mb_s(),
        p50_us: p50,
        p99_us: p99,
        proxy_cpu_ms_per_kop: cpu * 1e6 / t.ops().max(1) as f64,
    }
}
