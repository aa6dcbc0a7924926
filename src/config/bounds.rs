//! The documented bounds of every numeric setting (docs/config.md lists them; a test keeps
//! the two in step). A value outside its bounds is refused at load with the key, the range
//! and the reason, whether it came from the file or the environment: several of these
//! switch a protection off at one end (`lease_secs = 0`: every worker may take every job;
//! `tolerance_secs` unbounded: no replay window; `max_body_bytes = 0`: nothing is accepted).

use super::RawConfig;
use crate::settings::{Bound, ConfigError};

const fn bound(
    key: &'static str,
    min: u64,
    max: u64,
    off: Option<u64>,
    unit: &'static str,
    why: &'static str,
) -> Bound {
    Bound {
        key,
        min,
        max,
        off,
        unit,
        why,
    }
}

const MINUTE: u64 = 60;
const HOUR: u64 = 3600;
const DAY: u64 = 86_400;

/// The bounds of the top-level sections, in file order.
pub const TOP_LEVEL: &[Bound] = &[
    bound(
        "server.max_body_bytes",
        1024,
        16 * 1024 * 1024,
        None,
        "bytes",
        "below 1 KiB no real delivery fits; above 16 MiB one request can hold a worker's memory",
    ),
    bound(
        "server.shutdown_grace_secs",
        1,
        HOUR,
        None,
        "seconds",
        "0 abandons every in-flight call at each stop; keep it under the orchestrator's kill timeout",
    ),
    bound(
        "journal.max_connections",
        1,
        1000,
        None,
        "connections",
        "the pool needs one connection to work; PostgreSQL itself rarely allows more than a few hundred",
    ),
    bound(
        "admin_api.requests_per_minute",
        1,
        100_000,
        None,
        "requests per minute",
        "0 would stop every call; the Admin API's own limits are far below the maximum",
    ),
    bound(
        "admin_api.invites_per_hour",
        1,
        100_000,
        None,
        "invites per hour",
        "0 would stop every joiner; the Admin API's own limits are far below the maximum",
    ),
    bound(
        "safety.max_removals_per_hour",
        0,
        100_000,
        None,
        "people per hour",
        "0 holds every removal for an operator; the cap exists to stop a mass removal",
    ),
    bound(
        "reconciler.invite_poll_secs",
        1,
        DAY,
        None,
        "seconds",
        "pending invites are re-checked at least daily so an expired one is sent again",
    ),
    bound(
        "reconciler.max_attempts",
        1,
        100,
        None,
        "attempts",
        "an action needs one attempt to run; past 100 a failing action never settles",
    ),
    bound(
        "reconciler.retry_base_secs",
        1,
        DAY,
        None,
        "seconds",
        "0 retries a failing call in a tight loop against the Admin API",
    ),
    bound(
        "reconciler.lease_secs",
        1,
        HOUR,
        None,
        "seconds",
        "0 lets every worker take every job at once; it is renewed every third of its length, so a long lease only delays the takeover after a crash",
    ),
    bound(
        "reconciler.idle_poll_ms",
        10,
        MINUTE * 1000,
        None,
        "milliseconds",
        "below 10 ms idle workers spin on the journal; new work wakes them anyway",
    ),
    bound(
        "reconciler.workers",
        1,
        64,
        None,
        "worker loops",
        "0 would run no jobs (on SQLite one loop runs whatever this says)",
    ),
    bound(
        "reconciler.failure_recheck_secs",
        1,
        7 * DAY,
        None,
        "seconds",
        "a person whose action failed must be looked at again within a week",
    ),
    bound(
        "reconciler.drift_check_secs",
        MINUTE,
        30 * DAY,
        Some(0),
        "seconds",
        "reading the whole organization more often than every minute spends the Admin API budget on reads",
    ),
    bound(
        "reconciler.verify_after_secs",
        0,
        DAY,
        None,
        "seconds",
        "a mirror entry older than a day must be read again before a destructive write",
    ),
    bound(
        "retention.raw_body_days",
        1,
        36_500,
        Some(0),
        "days",
        "a body younger than a day may still be needed to answer a sender's question about a delivery; past 100 years there is no retention at all",
    ),
    bound(
        "retention.redact_departed_after_days",
        1,
        36_500,
        Some(0),
        "days",
        "redacting on the day of departure would lose what a rehire or a late correction needs; past 100 years there is no retention at all",
    ),
];

/// Every bound, the top-level ones and those of `[[sources]]`.
pub fn all() -> Vec<Bound> {
    let mut all = TOP_LEVEL.to_vec();
    all.push(crate::sources::config::TOLERANCE);
    all.push(crate::sources::api::PULL_INTERVAL);
    all
}

/// The value of a top-level key (`None`: unset, the default applies).
fn value(raw: &RawConfig, key: &str) -> Option<u64> {
    let r = &raw.reconciler;
    let wide = |v: usize| u64::try_from(v).unwrap_or(u64::MAX);
    Some(match key {
        "server.max_body_bytes" => wide(raw.server.max_body_bytes),
        "server.shutdown_grace_secs" => raw.server.shutdown_grace_secs,
        "journal.max_connections" => u64::from(raw.journal.max_connections?),
        "admin_api.requests_per_minute" => u64::from(raw.admin_api.requests_per_minute),
        "admin_api.invites_per_hour" => u64::from(raw.admin_api.invites_per_hour),
        "safety.max_removals_per_hour" => u64::from(raw.safety.max_removals_per_hour),
        "reconciler.invite_poll_secs" => r.invite_poll_secs,
        "reconciler.max_attempts" => u64::from(r.max_attempts),
        "reconciler.retry_base_secs" => r.retry_base_secs,
        "reconciler.lease_secs" => r.lease_secs,
        "reconciler.idle_poll_ms" => r.idle_poll_ms,
        "reconciler.workers" => wide(r.workers),
        "reconciler.failure_recheck_secs" => r.failure_recheck_secs,
        "reconciler.drift_check_secs" => r.drift_check_secs,
        "reconciler.verify_after_secs" => r.verify_after_secs,
        "retention.raw_body_days" => raw.retention.raw_body_days,
        "retention.redact_departed_after_days" => raw.retention.redact_departed_after_days,
        _ => return None,
    })
}

/// Checks every top-level bound (`[[sources]]` are checked where they are loaded).
pub fn check(raw: &RawConfig) -> Result<(), ConfigError> {
    for b in TOP_LEVEL {
        if let Some(v) = value(raw, b.key) {
            b.check(b.key, v)?;
        }
    }
    Ok(())
}

/// The bounds as the Markdown table of docs/config.md.
pub fn markdown_table() -> String {
    let mut out = String::from("| key | bounds | why |\n|---|---|---|\n");
    for b in all() {
        out.push_str(&format!("| `{}` | {} | {} |\n", b.key, b.range(), b.why));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_top_level_bound_reads_its_key_and_the_defaults_are_within() {
        let raw = RawConfig {
            journal: super::super::JournalConfig {
                max_connections: Some(10),
                ..Default::default()
            },
            ..Default::default()
        };
        for b in TOP_LEVEL {
            let v = value(&raw, b.key).unwrap_or_else(|| panic!("{} is not read", b.key));
            assert!(
                b.check(b.key, v).is_ok(),
                "default of {} out of bounds",
                b.key
            );
        }
        assert!(check(&RawConfig::default()).is_ok());
    }

    #[test]
    fn docs_list_every_bound() {
        let docs = include_str!("../../docs/config.md");
        assert!(
            docs.contains(&markdown_table()),
            "docs/config.md must contain this table (regenerate it):\n{}",
            markdown_table()
        );
    }
}
