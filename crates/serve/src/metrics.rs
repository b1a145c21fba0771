//! Counters and gauges, rendered in the Prometheus text format
//! (`GET /metrics`).

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// Upper bounds (seconds) of the inference-time histogram's buckets.
pub const SECONDS_BUCKETS: [f64; 12] = [
    0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 900.0,
];

/// The service's metrics.
#[derive(Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(String, String, u16), u64>>,
    /// Jobs waiting in this server's queue.
    pub jobs_queued: AtomicU64,
    /// Jobs running on this server.
    pub jobs_running: AtomicU64,
    /// Jobs accepted by this server.
    pub jobs_accepted: AtomicU64,
    /// Jobs finished by this server.
    pub jobs_done: AtomicU64,
    /// Jobs failed on this server.
    pub jobs_failed: AtomicU64,
    /// Jobs taken over from a stopped worker (or this one before a restart).
    pub jobs_recovered: AtomicU64,
    /// Submissions refused because the queue was full.
    pub jobs_rejected_busy: AtomicU64,
    /// Ciphertext bootstraps done.
    pub bootstraps: AtomicU64,
    /// Key uploads accepted.
    pub key_uploads: AtomicU64,
    /// Key uploads refused.
    pub key_uploads_refused: AtomicU64,
    /// Bytes of keys accepted.
    pub key_bytes_uploaded: AtomicU64,
    /// Key loads from the store (cache misses).
    pub key_loads: AtomicU64,
    seconds: Mutex<Histogram>,
}

#[derive(Default)]
struct Histogram {
    counts: [u64; SECONDS_BUCKETS.len()],
    sum: f64,
    count: u64,
}

impl Metrics {
    /// Counts one answered request.
    pub fn request(&self, method: &str, route: &str, status: u16) {
        let mut m = self.requests.lock().unwrap_or_else(|p| p.into_inner());
        *m.entry((method.to_string(), route.to_string(), status))
            .or_default() += 1;
    }

    /// Records one inference's seconds.
    pub fn inference_seconds(&self, s: f64) {
        let mut h = self.seconds.lock().unwrap_or_else(|p| p.into_inner());
        for (i, &b) in SECONDS_BUCKETS.iter().enumerate() {
            if s <= b {
                h.counts[i] += 1;
            }
        }
        h.sum += s;
        h.count += 1;
    }

    /// The Prometheus text exposition; `key_bytes_held` and `keys_held` are
    /// the key cache's.
    pub fn render(&self, key_bytes_held: u64, keys_held: usize) -> String {
        let mut o = String::new();
        let g = |o: &mut String, name: &str, kind: &str, help: &str, v: u64| {
            let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {v}");
        };
        let ld = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let _ = writeln!(
            o,
            "# HELP residue_requests_total HTTP requests answered.\n# TYPE residue_requests_total counter"
        );
        for ((m, r, s), n) in self
            .requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
        {
            let _ = writeln!(
                o,
                "residue_requests_total{{method=\"{m}\",route=\"{}\",status=\"{s}\"}} {n}",
                r.replace('\\', "\\\\").replace('"', "\\\"")
            );
        }
        g(
            &mut o,
            "residue_jobs_queued",
            "gauge",
            "Jobs waiting in this server's queue.",
            ld(&self.jobs_queued),
        );
        g(
            &mut o,
            "residue_jobs_running",
            "gauge",
            "Jobs running on this server.",
            ld(&self.jobs_running),
        );
        g(
            &mut o,
            "residue_jobs_accepted_total",
            "counter",
            "Jobs accepted.",
            ld(&self.jobs_accepted),
        );
        g(
            &mut o,
            "residue_jobs_done_total",
            "counter",
            "Jobs finished.",
            ld(&self.jobs_done),
        );
        g(
            &mut o,
            "residue_jobs_failed_total",
            "counter",
            "Jobs failed.",
            ld(&self.jobs_failed),
        );
        g(
            &mut o,
            "residue_jobs_recovered_total",
            "counter",
            "Jobs taken over after a worker stopped.",
            ld(&self.jobs_recovered),
        );
        g(
            &mut o,
            "residue_jobs_rejected_busy_total",
            "counter",
            "Submissions refused with 429 (queue full).",
            ld(&self.jobs_rejected_busy),
        );
        g(
            &mut o,
            "residue_bootstraps_total",
            "counter",
            "Ciphertext bootstraps done.",
            ld(&self.bootstraps),
        );
        g(
            &mut o,
            "residue_key_uploads_total",
            "counter",
            "Key uploads accepted.",
            ld(&self.key_uploads),
        );
        g(
            &mut o,
            "residue_key_uploads_refused_total",
            "counter",
            "Key uploads refused.",
            ld(&self.key_uploads_refused),
        );
        g(
            &mut o,
            "residue_key_bytes_uploaded_total",
            "counter",
            "Bytes of keys accepted.",
            ld(&self.key_bytes_uploaded),
        );
        g(
            &mut o,
            "residue_key_loads_total",
            "counter",
            "Keys loaded from the store (cache misses).",
            ld(&self.key_loads),
        );
        g(
            &mut o,
            "residue_key_bytes_held",
            "gauge",
            "Bytes of evaluation keys held in memory.",
            key_bytes_held,
        );
        g(
            &mut o,
            "residue_keys_held",
            "gauge",
            "Evaluation key sets held in memory.",
            keys_held as u64,
        );
        let h = self.seconds.lock().unwrap_or_else(|p| p.into_inner());
        let _ = writeln!(
            o,
            "# HELP residue_inference_seconds Seconds per encrypted inference.\n# TYPE residue_inference_seconds histogram"
        );
        for (i, b) in SECONDS_BUCKETS.iter().enumerate() {
            let _ = writeln!(
                o,
                "residue_inference_seconds_bucket{{le=\"{b}\"}} {}",
                h.counts[i]
            );
        }
        let _ = writeln!(
            o,
            "residue_inference_seconds_bucket{{le=\"+Inf\"}} {}",
            h.count
        );
        let _ = writeln!(o, "residue_inference_seconds_sum {}", h.sum);
        let _ = writeln!(o, "residue_inference_seconds_count {}", h.count);
        o
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_prometheus_text() {
        let m = Metrics::default();
        m.request("GET", "/health", 200);
        m.inference_seconds(0.3);
        m.inference_seconds(7.0);
        let t = m.render(123, 1);
        assert!(
            t.contains("residue_requests_total{method=\"GET\",route=\"/health\",status=\"200\"} 1")
        );
        assert!(t.contains("residue_inference_seconds_bucket{le=\"0.5\"} 1"));
        assert!(t.contains("residue_inference_seconds_bucket{le=\"10\"} 2"));
        assert!(t.contains("residue_inference_seconds_count 2"));
        assert!(t.contains("residue_key_bytes_held 123"));
        for l in t.lines() {
            assert!(l.starts_with('#') || l.split(' ').count() == 2, "{l}");
        }
    }
}
