//! Logging set-up (human-readable by default, JSON with `KEYCARD_LOG_FORMAT=json`) and the
//! delivery counters `/metrics` reports.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

use tracing_subscriber::EnvFilter;

pub fn init() {
    init_with_default("info");
}

/// Like `init`, with another default level when `KEYCARD_LOG` is unset.
pub fn init_with_default(level: &str) {
    let filter = EnvFilter::try_from_env("KEYCARD_LOG").unwrap_or_else(|_| EnvFilter::new(level));
    let json = std::env::var("KEYCARD_LOG_FORMAT").is_ok_and(|v| v == "json");
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // `try_init` so a second call (tests, demo) is harmless.
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

/// Counters exposed on `/metrics`.
#[derive(Debug, Default)]
pub struct Metrics {
    accepted: AtomicU64,
    duplicates: AtomicU64,
    ignored: AtomicU64,
    handshakes: AtomicU64,
    rejected: std::sync::Mutex<BTreeMap<&'static str, u64>>,
}

impl Metrics {
    pub fn accepted(&self) {
        self.accepted.fetch_add(1, Ordering::Relaxed);
    }

    pub fn duplicate(&self) {
        self.duplicates.fetch_add(1, Ordering::Relaxed);
    }

    pub fn ignored(&self) {
        self.ignored.fetch_add(1, Ordering::Relaxed);
    }

    pub fn handshake(&self) {
        self.handshakes.fetch_add(1, Ordering::Relaxed);
    }

    pub fn rejected(&self, reason: &'static str) {
        let mut map = self
            .rejected
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *map.entry(reason).or_default() += 1;
    }

    /// Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        out.push_str("# HELP keycard_deliveries_total Webhook deliveries by outcome.\n");
        out.push_str("# TYPE keycard_deliveries_total counter\n");
        out.push_str(&format!(
            "keycard_deliveries_total{{outcome=\"accepted\"}} {}\n",
            self.accepted.load(Ordering::Relaxed)
        ));
        out.push_str(&format!(
            "keycard_deliveries_total{{outcome=\"duplicate\"}} {}\n",
            self.duplicates.load(Ordering::Relaxed)
        ));
        out.push_str(&format!(
            "keycard_deliveries_total{{outcome=\"ignored\"}} {}\n",
            self.ignored.load(Ordering::Relaxed)
        ));
        out.push_str(&format!(
            "keycard_deliveries_total{{outcome=\"handshake\"}} {}\n",
            self.handshakes.load(Ordering::Relaxed)
        ));
        let map = self
            .rejected
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for (reason, n) in map.iter() {
            out.push_str(&format!(
                "keycard_deliveries_total{{outcome=\"rejected\",reason=\"{reason}\"}} {n}\n"
            ));
        }
        out
    }
}
