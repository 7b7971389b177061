//! `GET /metrics`: Prometheus text format (version 0.0.4). Names in `docs/api.md`.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use crate::inference::EngineStats;

/// Upper bounds (seconds) of the latency histograms' buckets.
pub const LATENCY_BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// A histogram of durations with [`LATENCY_BUCKETS`].
#[derive(Debug, Default)]
pub struct Histogram {
    buckets: [AtomicU64; LATENCY_BUCKETS.len()],
    count: AtomicU64,
    sum_micros: AtomicU64,
}

impl Histogram {
    pub fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        for (bound, bucket) in LATENCY_BUCKETS.iter().zip(self.buckets.iter()) {
            if secs <= *bound {
                bucket.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        let micros = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        self.sum_micros.fetch_add(micros, Ordering::Relaxed);
    }

    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    fn render(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} histogram");
        for (bound, bucket) in LATENCY_BUCKETS.iter().zip(self.buckets.iter()) {
            let _ = writeln!(
                out,
                "{name}_bucket{{le=\"{bound}\"}} {}",
                bucket.load(Ordering::Relaxed)
            );
        }
        let count = self.count();
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {count}");
        #[allow(clippy::cast_precision_loss)]
        let sum = self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "{name}_sum {sum}");
        let _ = writeln!(out, "{name}_count {count}");
    }
}

/// The codes of the refusals counted by `cocoon_sealed_requests_refused_total{reason}` before a
/// sealed body opened (docs/hpke.md), always rendered; other codes of such refusals (e.g.
/// `model_loading`, `body_timeout`) appear once seen.
pub const SEALED_REFUSAL_REASONS: [&str; 10] = [
    "sealed_headers_invalid",
    "sealed_body_malformed",
    "sealed_body_unsupported",
    "sealed_body_decrypt_failed",
    "request_timestamp_out_of_window",
    "request_replayed",
    "request_too_large",
    "replay_cache_full",
    "encryption_required",
    "encryption_unavailable",
];

/// The API's own counters (the engine's come from [`EngineStats`]).
#[derive(Debug, Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(&'static str, u16), u64>>,
    pub prompt_tokens: AtomicU64,
    pub completion_tokens: AtomicU64,
    pub time_to_first_token: Histogram,
    pub inter_token_latency: Histogram,
    pub request_duration: Histogram,
    /// Sealed (HPKE) requests whose body opened.
    pub sealed_requests: AtomicU64,
    sealed_refused: Mutex<BTreeMap<&'static str, u64>>,
}

impl Metrics {
    /// Counts one response of `route` with `status`.
    pub fn request(&self, route: &'static str, status: u16) {
        if let Ok(mut map) = self.requests.lock() {
            let n = map.entry((route, status)).or_insert(0);
            *n = n.saturating_add(1);
        }
    }

    /// Responses of `route` with `status` so far.
    pub fn requests(&self, route: &'static str, status: u16) -> u64 {
        self.requests
            .lock()
            .ok()
            .and_then(|m| m.get(&(route, status)).copied())
            .unwrap_or(0)
    }

    /// Counts one sealed request whose body opened.
    pub fn sealed_opened(&self) {
        self.sealed_requests.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts one refusal before a sealed body opened (or of a plaintext body that had to be
    /// sealed), by its error code.
    pub fn sealed_refused(&self, reason: &'static str) {
        if let Ok(mut map) = self.sealed_refused.lock() {
            let n = map.entry(reason).or_insert(0);
            *n = n.saturating_add(1);
        }
    }

    /// Refusals with `reason` so far.
    pub fn sealed_refusals(&self, reason: &str) -> u64 {
        self.sealed_refused
            .lock()
            .ok()
            .and_then(|m| m.get(reason).copied())
            .unwrap_or(0)
    }

    pub fn tokens(&self, prompt: usize, completion: usize) {
        let n = |v: usize| u64::try_from(v).unwrap_or(u64::MAX);
        self.prompt_tokens.fetch_add(n(prompt), Ordering::Relaxed);
        self.completion_tokens
            .fetch_add(n(completion), Ordering::Relaxed);
    }

    /// The exposition text; `engine` is `None` while the model loads.
    pub fn render(&self, engine: Option<&EngineStats>, model_loaded: bool) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# HELP cocoon_requests_total HTTP responses of the API by route and status code.\n# TYPE cocoon_requests_total counter"
        );
        if let Ok(map) = self.requests.lock() {
            for ((route, status), n) in map.iter() {
                let _ = writeln!(
                    out,
                    "cocoon_requests_total{{route=\"{route}\",status=\"{status}\"}} {n}"
                );
            }
        }
        counter(
            &mut out,
            "cocoon_prompt_tokens_total",
            "Prompt tokens of completed generations.",
            self.prompt_tokens.load(Ordering::Relaxed),
        );
        counter(
            &mut out,
            "cocoon_completion_tokens_total",
            "Tokens generated by completed generations.",
            self.completion_tokens.load(Ordering::Relaxed),
        );
        self.time_to_first_token.render(
            &mut out,
            "cocoon_time_to_first_token_seconds",
            "From the request's arrival to its first generated token.",
        );
        self.inter_token_latency.render(
            &mut out,
            "cocoon_inter_token_latency_seconds",
            "Between consecutive generated tokens of a request.",
        );
        self.request_duration.render(
            &mut out,
            "cocoon_request_duration_seconds",
            "From a generation request's arrival to its last token.",
        );
        counter(
            &mut out,
            "cocoon_sealed_requests_total",
            "HPKE-sealed requests whose body opened.",
            self.sealed_requests.load(Ordering::Relaxed),
        );
        let _ = writeln!(
            out,
            "# HELP cocoon_sealed_requests_refused_total Requests refused before a sealed body opened (or plaintext refused in required mode), by error code.\n# TYPE cocoon_sealed_requests_refused_total counter"
        );
        if let Ok(map) = self.sealed_refused.lock() {
            let mut reasons: BTreeMap<&str, u64> =
                SEALED_REFUSAL_REASONS.iter().map(|r| (*r, 0)).collect();
            for (reason, n) in map.iter() {
                reasons.insert(reason, *n);
            }
            for (reason, n) in reasons {
                let _ = writeln!(
                    out,
                    "cocoon_sealed_requests_refused_total{{reason=\"{reason}\"}} {n}"
                );
            }
        }
        gauge(
            &mut out,
            "cocoon_model_loaded",
            "1 when the model is loaded and serving.",
            u64::from(model_loaded),
        );
        if let Some(s) = engine {
            let n = |v: usize| u64::try_from(v).unwrap_or(u64::MAX);
            gauge(
                &mut out,
                "cocoon_queue_depth",
                "Requests waiting for a sequence slot.",
                n(s.queue_depth),
            );
            gauge(
                &mut out,
                "cocoon_active_sequences",
                "Sequences being decoded.",
                n(s.active_sequences),
            );
            gauge(
                &mut out,
                "cocoon_batch_size",
                "Rows of the last batched decode step.",
                n(s.last_batch_size),
            );
            gauge(
                &mut out,
                "cocoon_max_sequences",
                "Configured limit of concurrent sequences.",
                n(s.max_sequences),
            );
            gauge(
                &mut out,
                "cocoon_queue_capacity",
                "Configured queue capacity.",
                n(s.queue_capacity),
            );
            counter(
                &mut out,
                "cocoon_engine_requests_rejected_total",
                "Requests refused because the queue was full.",
                s.requests_rejected_queue_full,
            );
            let _ = writeln!(
                out,
                "# HELP cocoon_engine_finished_total Generations ended, by reason.\n# TYPE cocoon_engine_finished_total counter"
            );
            for (reason, v) in [
                ("stop", s.finished_stop),
                ("length", s.finished_length),
                ("cancelled", s.finished_cancelled),
                ("deadline", s.finished_deadline),
                ("error", s.finished_error),
            ] {
                let _ = writeln!(
                    out,
                    "cocoon_engine_finished_total{{reason=\"{reason}\"}} {v}"
                );
            }
            counter(
                &mut out,
                "cocoon_engine_decode_steps_total",
                "Batched decode steps run.",
                s.decode_steps,
            );
            counter(
                &mut out,
                "cocoon_engine_prefill_runs_total",
                "Prefill runs.",
                s.prefill_runs,
            );
        }
        out
    }
}

fn counter(out: &mut String, name: &str, help: &str, value: u64) {
    let _ = writeln!(
        out,
        "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}"
    );
}

fn gauge(out: &mut String, name: &str, help: &str, value: u64) {
    let _ = writeln!(
        out,
        "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}"
    );
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative() {
        let h = Histogram::default();
        h.observe(Duration::from_millis(3));
        h.observe(Duration::from_millis(40));
        let mut out = String::new();
        h.render(&mut out, "x", "help");
        assert!(out.contains("x_bucket{le=\"0.0025\"} 0\n"));
        assert!(out.contains("x_bucket{le=\"0.005\"} 1\n"));
        assert!(out.contains("x_bucket{le=\"0.05\"} 2\n"));
        assert!(out.contains("x_bucket{le=\"+Inf\"} 2\n"));
        assert!(out.contains("x_sum 0.043\n"));
        assert!(out.contains("x_count 2\n"));
    }

    #[test]
    fn requests_are_counted_by_route_and_status() {
        let m = Metrics::default();
        m.request("/v1/models", 200);
        m.request("/v1/models", 200);
        m.request("/v1/completions", 429);
        let text = m.render(None, false);
        assert!(text.contains("cocoon_requests_total{route=\"/v1/models\",status=\"200\"} 2\n"));
        assert!(
            text.contains("cocoon_requests_total{route=\"/v1/completions\",status=\"429\"} 1\n")
        );
        assert!(text.contains("cocoon_model_loaded 0\n"));
    }

    #[test]
    fn sealed_refusals_are_counted_by_reason_and_every_reason_is_rendered() {
        let m = Metrics::default();
        m.sealed_opened();
        m.sealed_refused("request_replayed");
        m.sealed_refused("request_replayed");
        m.sealed_refused("model_loading");
        let text = m.render(None, false);
        assert!(text.contains("cocoon_sealed_requests_total 1\n"));
        assert!(
            text.contains("cocoon_sealed_requests_refused_total{reason=\"request_replayed\"} 2\n")
        );
        assert!(text.contains("cocoon_sealed_requests_refused_total{reason=\"model_loading\"} 1\n"));
        for reason in SEALED_REFUSAL_REASONS {
            assert!(text.contains(&format!(
                "cocoon_sealed_requests_refused_total{{reason=\"{reason}\"}} "
            )));
        }
        assert_eq!(m.sealed_refusals("request_replayed"), 2);
        assert_eq!(m.sealed_refusals("sealed_body_malformed"), 0);
    }
}
