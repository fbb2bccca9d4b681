//! Calls, errors and latency per tool and tenant, kept in memory. A snapshot is what an
//! exporter (Prometheus, CloudWatch EMF) renders.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use serde::Serialize;

/// Upper bounds of the latency buckets, in microseconds (the last bucket is unbounded).
pub const BUCKETS_US: [u64; 12] = [
    100,
    250,
    500,
    1_000,
    2_500,
    5_000,
    10_000,
    25_000,
    100_000,
    1_000_000,
    10_000_000,
    u64::MAX,
];

/// One tool's figures for one tenant.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ToolMetrics {
    pub tool: String,
    pub tenant: String,
    pub calls: u64,
    pub errors: u64,
    /// Calls per latency bucket (see [`BUCKETS_US`]), not cumulative.
    pub latency_buckets: Vec<u64>,
    pub latency_sum_us: u64,
    pub latency_max_us: u64,
}

impl ToolMetrics {
    pub fn mean_latency_us(&self) -> f64 {
        if self.calls == 0 {
            0.0
        } else {
            self.latency_sum_us as f64 / self.calls as f64
        }
    }
}

/// Every tool's figures, ordered by tool then tenant.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct MetricsSnapshot {
    pub tools: Vec<ToolMetrics>,
}

impl MetricsSnapshot {
    pub fn get(&self, tool: &str, tenant: &str) -> Option<&ToolMetrics> {
        self.tools
            .iter()
            .find(|m| m.tool == tool && m.tenant == tenant)
    }
}

#[derive(Default)]
pub(crate) struct Metrics {
    by_tool: Mutex<BTreeMap<(String, String), ToolMetrics>>,
}

impl Metrics {
    pub fn record(&self, tool: &str, tenant: &str, latency: Duration, ok: bool) {
        let us = latency.as_micros().min(u64::MAX as u128) as u64;
        let mut m = self.by_tool.lock().unwrap();
        let e = m
            .entry((tool.to_owned(), tenant.to_owned()))
            .or_insert_with(|| ToolMetrics {
                tool: tool.to_owned(),
                tenant: tenant.to_owned(),
                latency_buckets: vec![0; BUCKETS_US.len()],
                ..Default::default()
            });
        e.calls += 1;
        if !ok {
            e.errors += 1;
        }
        let b = BUCKETS_US.iter().position(|&b| us <= b).unwrap_or(0);
        e.latency_buckets[b] += 1;
        e.latency_sum_us += us;
        e.latency_max_us = e.latency_max_us.max(us);
    }

    pub fn snapshot(&self) -> MetricsSnapshot {
        MetricsSnapshot {
            tools: self.by_tool.lock().unwrap().values().cloned().collect(),
        }
    }
}
