//! Client-side pacing: one token bucket per rate-limit budget of a sender's API (Gusto has one
//! per OAuth grant; HiBob one per endpoint; ...), on the injected clock, so normal operation
//! stays within the published limits and never meets a 429.
//!
//! Each bucket is the exact integer form of a token bucket (GCRA): a request may go out when
//! the theoretical arrival time minus the burst tolerance has passed. The refill rate is
//! `(budget - burst) / window`, so any window sees at most `burst + rate * window = budget`
//! requests, which holds against the fixed-window (Okta), rolling-window (Gusto) and
//! token-bucket servers alike; `budget` is the published limit times a safety fraction.

use std::collections::BTreeMap;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::clock::Clock;

/// A limit as the sender publishes it.
#[derive(Debug, Clone, PartialEq)]
pub struct RateLimit {
    pub requests: u32,
    pub per: Duration,
    /// Requests that may go back to back from a rested bucket.
    pub burst: u32,
}

impl RateLimit {
    pub fn per_minute(requests: u32, burst: u32) -> Self {
        Self {
            requests,
            per: Duration::from_secs(60),
            burst,
        }
    }
}

/// The budgets of one client, by name, plus the share of each limit it allows itself.
#[derive(Debug, Clone, PartialEq)]
pub struct PacingConfig {
    pub budgets: BTreeMap<&'static str, RateLimit>,
    /// In `(0, 1]`: leaves room for other clients of the same account.
    pub safety_fraction: f64,
}

impl PacingConfig {
    pub fn single(name: &'static str, limit: RateLimit) -> Self {
        Self {
            budgets: BTreeMap::from([(name, limit)]),
            safety_fraction: 0.9,
        }
    }

    pub fn with(mut self, name: &'static str, limit: RateLimit) -> Self {
        self.budgets.insert(name, limit);
        self
    }
}

#[derive(Debug)]
struct Bucket {
    interval: chrono::Duration,
    tolerance: chrono::Duration,
    tat: Option<DateTime<Utc>>,
    /// Nobody sends on this budget before this instant (set from a 429 or an exhausted
    /// window announced by the server).
    closed_until: Option<DateTime<Utc>>,
}

impl Bucket {
    fn new(name: &str, limit: &RateLimit, safety: f64) -> Result<Self, String> {
        if !(safety > 0.0 && safety <= 1.0) {
            return Err(format!(
                "pacing safety_fraction must be in (0, 1], got {safety}"
            ));
        }
        // Truncation is the conservative direction.
        let budget = (f64::from(limit.requests) * safety).floor() as u64;
        let burst = u64::from(limit.burst);
        if limit.per.is_zero() || burst < 1 || burst >= budget {
            return Err(format!(
                "{name} pacing needs per > 0 and 1 <= burst < requests * safety_fraction \
                 (requests {}, burst {}, safety {safety})",
                limit.requests, limit.burst
            ));
        }
        let interval_nanos =
            i64::try_from(limit.per.as_nanos().div_ceil(u128::from(budget - burst)))
                .map_err(|_| format!("{name} pacing window is too long"))?;
        Ok(Self {
            interval: chrono::Duration::nanoseconds(interval_nanos),
            tolerance: chrono::Duration::nanoseconds(
                interval_nanos.saturating_mul(i64::try_from(burst - 1).unwrap_or(i64::MAX)),
            ),
            tat: None,
            closed_until: None,
        })
    }

    fn reserve(&mut self, now: DateTime<Utc>) -> Duration {
        let mut send_at = now;
        if let Some(tat) = self.tat {
            send_at = send_at.max(tat.checked_sub_signed(self.tolerance).unwrap_or(tat));
        }
        if let Some(closed) = self.closed_until {
            send_at = send_at.max(closed);
        }
        let base = self.tat.map_or(send_at, |tat| tat.max(send_at));
        self.tat = Some(
            base.checked_add_signed(self.interval)
                .unwrap_or(DateTime::<Utc>::MAX_UTC),
        );
        (send_at - now).to_std().unwrap_or(Duration::ZERO)
    }
}

/// Shared by every clone of one client.
#[derive(Debug)]
pub(crate) struct Pacer {
    buckets: Mutex<BTreeMap<&'static str, Bucket>>,
}

impl Pacer {
    pub(crate) fn new(config: &PacingConfig) -> Result<Self, String> {
        let buckets = config
            .budgets
            .iter()
            .map(|(name, limit)| Ok((*name, Bucket::new(name, limit, config.safety_fraction)?)))
            .collect::<Result<BTreeMap<_, _>, String>>()?;
        Ok(Self {
            buckets: Mutex::new(buckets),
        })
    }

    /// Waits (through the clock) until a request on `budget` may go; returns the wait. A
    /// budget the config does not name is not paced.
    pub(crate) async fn acquire(&self, clock: &dyn Clock, budget: &str) -> Duration {
        let wait = {
            let mut buckets = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
            buckets
                .get_mut(budget)
                .map_or(Duration::ZERO, |b| b.reserve(clock.now()))
        };
        if !wait.is_zero() {
            clock.sleep(wait).await;
        }
        wait
    }

    /// Holds every caller of `budget` until `until` (after a 429 the client waits out, or a
    /// response announcing the window is spent).
    pub(crate) fn close_until(&self, budget: &str, until: DateTime<Utc>) {
        let mut buckets = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(bucket) = buckets.get_mut(budget)
            && bucket.closed_until.is_none_or(|c| until > c)
        {
            bucket.closed_until = Some(until);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    fn start() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-28T10:00:00Z")
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_default()
    }

    #[tokio::test]
    async fn stays_within_the_published_window() {
        // Gusto: 200 per rolling minute; safety 0.9 => budget 180, burst 10 => refill 170/min.
        let clock = ManualClock::new(start());
        let pacer = Pacer::new(&PacingConfig::single("api", RateLimit::per_minute(200, 10)))
            .unwrap_or_else(|e| panic!("{e}"));
        let mut sent = Vec::new();
        for _ in 0..600 {
            pacer.acquire(&clock, "api").await;
            sent.push(clock.now());
        }
        let window = chrono::Duration::seconds(60);
        let worst = sent
            .iter()
            .map(|&t| sent.iter().filter(|&&s| s >= t && s - t < window).count())
            .max()
            .unwrap_or(0);
        assert!(worst <= 180, "worst minute had {worst}");
        // Not needlessly slow either: 590 refills at 170/min.
        let total = (clock.now() - start()).num_milliseconds();
        let expected = 590.0 * 60_000.0 / 170.0;
        assert!(
            (total as f64 - expected).abs() < 600.0,
            "{total} vs {expected}"
        );
    }

    #[tokio::test]
    async fn budgets_are_independent_and_unknown_ones_unpaced() {
        let clock = ManualClock::new(start());
        let config = PacingConfig::single("search", RateLimit::per_minute(10, 1))
            .with("read", RateLimit::per_minute(100, 10));
        let pacer = Pacer::new(&config).unwrap_or_else(|e| panic!("{e}"));
        pacer.acquire(&clock, "search").await;
        pacer.acquire(&clock, "search").await;
        assert_eq!(clock.slept(), [Duration::from_secs(60) / 8]);
        for _ in 0..5 {
            pacer.acquire(&clock, "read").await;
            pacer.acquire(&clock, "other").await;
        }
        assert_eq!(clock.slept().len(), 1);
    }

    #[tokio::test]
    async fn closed_budget_holds_callers() {
        let clock = ManualClock::new(start());
        let pacer = Pacer::new(&PacingConfig::single("api", RateLimit::per_minute(200, 10)))
            .unwrap_or_else(|e| panic!("{e}"));
        pacer.close_until("api", start() + chrono::Duration::seconds(7));
        assert_eq!(pacer.acquire(&clock, "api").await, Duration::from_secs(7));
        assert_eq!(pacer.acquire(&clock, "api").await, Duration::ZERO);
    }

    #[test]
    fn rejects_unsafe_configs() {
        for (limit, safety) in [
            (RateLimit::per_minute(100, 0), 0.9),
            (RateLimit::per_minute(100, 90), 0.9),
            (RateLimit::per_minute(100, 10), 0.0),
            (RateLimit::per_minute(100, 10), f64::NAN),
            (
                RateLimit {
                    requests: 100,
                    per: Duration::ZERO,
                    burst: 1,
                },
                0.9,
            ),
        ] {
            let config = PacingConfig {
                budgets: BTreeMap::from([("api", limit)]),
                safety_fraction: safety,
            };
            assert!(Pacer::new(&config).is_err());
        }
    }
}
