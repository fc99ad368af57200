//! `GET /metrics`: counters and one histogram in the Prometheus text format (0.0.4), so the
//! platform can alert on the tool itself. Label values are config names or fixed words; nothing
//! a caller sends becomes a label (an unknown trigger name is counted as `(unknown)`).

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

/// Upper bounds, in seconds, of the vendor call latency buckets.
const BUCKETS: [f64; 11] = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];

#[derive(Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

#[derive(Default)]
struct Inner {
    flips: BTreeMap<String, u64>,
    trigger_calls: BTreeMap<(String, String), u64>,
    vendor_calls: BTreeMap<(String, String), Histogram>,
    env_up: BTreeMap<String, bool>,
}

#[derive(Default)]
pub struct Metrics {
    inner: Mutex<Inner>,
}

impl Metrics {
    fn with(&self, f: impl FnOnce(&mut Inner)) {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut inner);
    }

    /// A flip transaction finished (or was refused before it started) with `result`.
    pub fn flip(&self, result: &str) {
        self.with(|m| *m.flips.entry(result.to_string()).or_default() += 1);
    }

    pub fn trigger_call(&self, trigger: &str, result: &str) {
        self.with(|m| {
            *m.trigger_calls
                .entry((trigger.to_string(), result.to_string()))
                .or_default() += 1;
        });
    }

    /// One call to a vendor (`call`: list, read, flip) in `env`, however it ended.
    pub fn vendor_call(&self, env: &str, call: &str, took: Duration) {
        let seconds = took.as_secs_f64();
        self.with(|m| {
            let histogram = m
                .vendor_calls
                .entry((env.to_string(), call.to_string()))
                .or_default();
            for (bound, count) in BUCKETS.iter().zip(histogram.counts.iter_mut()) {
                if seconds <= *bound {
                    *count += 1;
                }
            }
            histogram.count += 1;
            histogram.sum += seconds;
        });
    }

    pub fn env_up(&self, env: &str, up: bool) {
        self.with(|m| {
            m.env_up.insert(env.to_string(), up);
        });
    }

    /// The exposition text.
    pub fn render(&self) -> String {
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = String::new();
        out.push_str("# HELP killswitch_flips_total Flip transactions by result.\n");
        out.push_str("# TYPE killswitch_flips_total counter\n");
        for (result, count) in &inner.flips {
            out.push_str(&format!(
                "killswitch_flips_total{{result=\"{}\"}} {count}\n",
                label(result)
            ));
        }
        out.push_str(
            "# HELP killswitch_trigger_calls_total Calls to /hooks/<trigger> by result.\n",
        );
        out.push_str("# TYPE killswitch_trigger_calls_total counter\n");
        for ((trigger, result), count) in &inner.trigger_calls {
            out.push_str(&format!(
                "killswitch_trigger_calls_total{{trigger=\"{}\",result=\"{}\"}} {count}\n",
                label(trigger),
                label(result)
            ));
        }
        out.push_str(
            "# HELP killswitch_vendor_call_duration_seconds Calls to the flag vendors (list, read, flip).\n",
        );
        out.push_str("# TYPE killswitch_vendor_call_duration_seconds histogram\n");
        for ((env, call), histogram) in &inner.vendor_calls {
            let labels = format!("env=\"{}\",call=\"{}\"", label(env), label(call));
            for (bound, count) in BUCKETS.iter().zip(histogram.counts.iter()) {
                out.push_str(&format!(
                    "killswitch_vendor_call_duration_seconds_bucket{{{labels},le=\"{bound}\"}} {count}\n"
                ));
            }
            out.push_str(&format!(
                "killswitch_vendor_call_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}\n",
                histogram.count
            ));
            out.push_str(&format!(
                "killswitch_vendor_call_duration_seconds_sum{{{labels}}} {}\n",
                histogram.sum
            ));
            out.push_str(&format!(
                "killswitch_vendor_call_duration_seconds_count{{{labels}}} {}\n",
                histogram.count
            ));
        }
        out.push_str("# HELP killswitch_environment_up Whether the last read of the environment succeeded.\n");
        out.push_str("# TYPE killswitch_environment_up gauge\n");
        for (env, up) in &inner.env_up {
            out.push_str(&format!(
                "killswitch_environment_up{{env=\"{}\"}} {}\n",
                label(env),
                u8::from(*up)
            ));
        }
        out
    }
}

/// A label value escaped as the text format requires (backslash, quote, newline).
fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_cumulative_buckets() {
        let metrics = Metrics::default();
        metrics.flip("applied");
        metrics.flip("applied");
        metrics.trigger_call("checkout", "unauthorized");
        metrics.vendor_call("prod", "flip", Duration::from_millis(30));
        metrics.vendor_call("prod", "flip", Duration::from_secs(3));
        metrics.env_up("prod", true);
        let text = metrics.render();
        assert!(
            text.contains("killswitch_flips_total{result=\"applied\"} 2\n"),
            "{text}"
        );
        assert!(text.contains(
            "killswitch_trigger_calls_total{trigger=\"checkout\",result=\"unauthorized\"} 1\n"
        ));
        assert!(text.contains(
            "killswitch_vendor_call_duration_seconds_bucket{env=\"prod\",call=\"flip\",le=\"0.025\"} 0\n"
        ));
        assert!(text.contains(
            "killswitch_vendor_call_duration_seconds_bucket{env=\"prod\",call=\"flip\",le=\"0.05\"} 1\n"
        ));
        assert!(text.contains(
            "killswitch_vendor_call_duration_seconds_bucket{env=\"prod\",call=\"flip\",le=\"+Inf\"} 2\n"
        ));
        assert!(text.contains("killswitch_environment_up{env=\"prod\"} 1\n"));
        assert_eq!(label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
