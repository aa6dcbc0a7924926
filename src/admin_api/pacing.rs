//! Client-side pacing so normal operation never meets a 429 (spec §5, keycard.md §6).
//!
//! Two token buckets on the injected clock: one for every Admin request (100/min) and one for
//! invite creation only (1,200/h); an invite create takes a token from both. Every attempt,
//! retries included, takes tokens before it is sent.
//!
//! Why not simply a bucket of `budget` tokens refilled at `budget / window`? Such a bucket
//! allows a full burst followed by a full window of refill, i.e. up to twice the budget in one
//! window, which a fixed- or sliding-window server would answer with 429. Here the refill rate
//! is `(budget - burst) / window`, so any interval of length `window` sees at most
//! `burst + rate * window = budget` requests. That bound holds against token-bucket,
//! fixed-window and sliding-window servers alike; `budget` is the org limit times a safety
//! fraction, leaving room for other clients of the same org.
//!
//! Waiting callers reserve their slot up front and then sleep until it, so concurrent callers
//! queue fairly without polling.

use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::error::AdminApiError;
use crate::clock::Clock;

/// A rate limit as published by the API.
#[derive(Debug, Clone, PartialEq)]
pub struct RateLimit {
    /// Requests allowed per `per`.
    pub requests: u32,
    pub per: Duration,
    /// Requests that may go out back to back from a rested bucket. Smaller bursts leave a
    /// higher steady rate (`budget - burst` per window).
    pub burst: u32,
}

/// Pacing settings. `None` in the client config disables pacing (tests of retry behaviour).
#[derive(Debug, Clone, PartialEq)]
pub struct PacingConfig {
    /// All Admin endpoints together (default 100 per minute).
    pub general: RateLimit,
    /// Invite creation on top of `general` (default 1,200 per hour).
    pub invites: RateLimit,
    /// Share of each published limit this client allows itself, in `(0, 1]`.
    pub safety_fraction: f64,
}

impl Default for PacingConfig {
    fn default() -> Self {
        Self {
            general: RateLimit {
                requests: 100,
                per: Duration::from_secs(60),
                burst: 10,
            },
            invites: RateLimit {
                requests: 1200,
                per: Duration::from_secs(3600),
                burst: 20,
            },
            safety_fraction: 0.9,
        }
    }
}

/// Which budgets a request draws on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Budget {
    General,
    InviteCreate,
}

/// A token bucket in its exact integer form (GCRA / virtual scheduling): `interval` is the
/// time one token takes to refill, `tolerance` how far ahead of schedule a caller may go
/// (`(burst - 1) * interval`), and `tat` the theoretical arrival time of the next request.
/// Nanosecond arithmetic keeps waits exact, which the tests rely on.
#[derive(Debug)]
struct Bucket {
    interval: chrono::Duration,
    tolerance: chrono::Duration,
    tat: Option<DateTime<Utc>>,
    /// Set from a 429's `retry-after`: nobody sends on this budget before then.
    closed_until: Option<DateTime<Utc>>,
}

impl Bucket {
    fn new(limit: &RateLimit, safety_fraction: f64, name: &str) -> Result<Self, AdminApiError> {
        if !(safety_fraction > 0.0 && safety_fraction <= 1.0) {
            return Err(AdminApiError::Config(format!(
                "pacing safety_fraction must be in (0, 1], got {safety_fraction}"
            )));
        }
        // Truncation is the conservative direction here.
        let budget = (f64::from(limit.requests) * safety_fraction).floor() as u64;
        let burst = u64::from(limit.burst);
        if limit.per.is_zero() || burst < 1 || burst >= budget {
            return Err(AdminApiError::Config(format!(
                "{name} pacing needs per > 0 and 1 <= burst < requests * safety_fraction \
                 (requests {}, burst {}, safety {safety_fraction})",
                limit.requests, limit.burst
            )));
        }
        // Round the interval up so the refill rate never exceeds (budget - burst) / per.
        let per_nanos = limit.per.as_nanos();
        let refills = u128::from(budget - burst);
        let interval_nanos = i64::try_from(per_nanos.div_ceil(refills))
            .map_err(|_| AdminApiError::Config(format!("{name} pacing window is too long")))?;
        let interval = chrono::Duration::nanoseconds(interval_nanos);
        let tolerance = chrono::Duration::nanoseconds(
            interval_nanos.saturating_mul(i64::try_from(burst - 1).unwrap_or(i64::MAX)),
        );
        Ok(Self {
            interval,
            tolerance,
            tat: None,
            closed_until: None,
        })
    }

    /// Takes one token and returns how long to wait before sending.
    fn reserve(&mut self, now: DateTime<Utc>) -> Duration {
        let mut send_at = now;
        if let Some(tat) = self.tat {
            send_at = send_at.max(tat.checked_sub_signed(self.tolerance).unwrap_or(tat));
        }
        if let Some(closed) = self.closed_until {
            send_at = send_at.max(closed);
        }
        let base = self.tat.map_or(send_at, |tat| tat.max(send_at));
        // Saturate instead of panicking on absurd configurations or clocks.
        self.tat = Some(
            base.checked_add_signed(self.interval)
                .unwrap_or(DateTime::<Utc>::MAX_UTC),
        );
        (send_at - now).to_std().unwrap_or(Duration::ZERO)
    }

    fn close_until(&mut self, until: DateTime<Utc>) {
        if self.closed_until.is_none_or(|c| until > c) {
            self.closed_until = Some(until);
        }
    }
}

#[derive(Debug)]
struct Buckets {
    general: Bucket,
    invites: Bucket,
}

/// Shared by every clone of one client.
#[derive(Debug)]
pub(crate) struct Pacer {
    buckets: Mutex<Buckets>,
}

impl Pacer {
    pub(crate) fn new(config: &PacingConfig) -> Result<Self, AdminApiError> {
        Ok(Self {
            buckets: Mutex::new(Buckets {
                general: Bucket::new(&config.general, config.safety_fraction, "general")?,
                invites: Bucket::new(&config.invites, config.safety_fraction, "invite")?,
            }),
        })
    }

    fn with<R>(&self, f: impl FnOnce(&mut Buckets) -> R) -> R {
        let mut guard = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        f(&mut guard)
    }

    /// Waits (through the clock) until the request may be sent; returns the time waited.
    ///
    /// The invite bucket is settled first and the general one only afterwards, so a long
    /// invite wait does not hold a general token that other calls could use meanwhile.
    pub(crate) async fn acquire(&self, clock: &dyn Clock, budget: Budget) -> Duration {
        let mut waited = Duration::ZERO;
        if budget == Budget::InviteCreate {
            let wait = self.with(|b| b.invites.reserve(clock.now()));
            if !wait.is_zero() {
                clock.sleep(wait).await;
                waited += wait;
            }
        }
        let wait = self.with(|b| b.general.reserve(clock.now()));
        if !wait.is_zero() {
            clock.sleep(wait).await;
            waited += wait;
        }
        waited
    }

    /// After a 429 that the client will wait out: hold every caller of that budget until
    /// `until`, so concurrent work does not keep hitting the limit.
    pub(crate) fn close_until(&self, budget: Budget, until: DateTime<Utc>) {
        self.with(|b| match budget {
            Budget::General => b.general.close_until(until),
            Budget::InviteCreate => b.invites.close_until(until),
        });
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

    fn config(general: (u32, u64, u32), invites: (u32, u64, u32), safety: f64) -> PacingConfig {
        PacingConfig {
            general: RateLimit {
                requests: general.0,
                per: Duration::from_secs(general.1),
                burst: general.2,
            },
            invites: RateLimit {
                requests: invites.0,
                per: Duration::from_secs(invites.1),
                burst: invites.2,
            },
            safety_fraction: safety,
        }
    }

    /// Sends `n` requests as fast as the pacer allows and returns their send times.
    async fn drive(
        pacer: &Pacer,
        clock: &ManualClock,
        n: usize,
        budget: Budget,
    ) -> Vec<DateTime<Utc>> {
        let mut sent = Vec::with_capacity(n);
        for _ in 0..n {
            pacer.acquire(clock, budget).await;
            sent.push(clock.now());
        }
        sent
    }

    fn max_in_window(sent: &[DateTime<Utc>], window: Duration) -> usize {
        let window = chrono::Duration::from_std(window).unwrap_or(chrono::Duration::MAX);
        sent.iter()
            .map(|&t| sent.iter().filter(|&&s| s >= t && s - t < window).count())
            .max()
            .unwrap_or(0)
    }

    #[tokio::test]
    async fn burst_then_steady_rate() {
        // Budget 10/min (safety 1.0), burst 4 => refill 6 per minute = one every 10 s.
        let clock = ManualClock::new(start());
        let pacer = Pacer::new(&config((10, 60, 4), (1200, 3600, 20), 1.0)).unwrap();
        drive(&pacer, &clock, 6, Budget::General).await;
        assert_eq!(
            clock.slept(),
            vec![Duration::from_secs(10), Duration::from_secs(10)]
        );
    }

    #[tokio::test]
    async fn default_config_never_exceeds_the_org_limit_in_any_minute() {
        let clock = ManualClock::new(start());
        let pacer = Pacer::new(&PacingConfig::default()).unwrap();
        let sent = drive(&pacer, &clock, 400, Budget::General).await;
        let worst = max_in_window(&sent, Duration::from_secs(60));
        assert!(worst <= 90, "worst minute had {worst} requests");
        // ...and it is not needlessly slow: 80/min steady after the burst of 10.
        let total = clock.now() - start();
        assert_eq!(total, chrono::Duration::milliseconds(390 * 750));
    }

    #[tokio::test]
    async fn idle_time_refills_only_up_to_the_burst() {
        let clock = ManualClock::new(start());
        let pacer = Pacer::new(&config((10, 60, 4), (1200, 3600, 20), 1.0)).unwrap();
        clock.advance(Duration::from_secs(3600));
        drive(&pacer, &clock, 4, Budget::General).await;
        assert!(clock.slept().is_empty());
        drive(&pacer, &clock, 1, Budget::General).await;
        assert_eq!(clock.slept(), vec![Duration::from_secs(10)]);
    }

    #[tokio::test]
    async fn invites_draw_on_both_budgets() {
        // Invites: 5/h, burst 1 => one every 15 min. General: roomy.
        let clock = ManualClock::new(start());
        let pacer = Pacer::new(&config((100, 60, 10), (5, 3600, 1), 1.0)).unwrap();
        let sent = drive(&pacer, &clock, 3, Budget::InviteCreate).await;
        assert_eq!(
            clock.slept(),
            vec![Duration::from_secs(900), Duration::from_secs(900)]
        );
        assert!(max_in_window(&sent, Duration::from_secs(3600)) <= 5);
        // Other calls are not held back by the invite budget...
        drive(&pacer, &clock, 5, Budget::General).await;
        assert_eq!(clock.slept().len(), 2);
    }

    #[tokio::test]
    async fn general_budget_also_limits_invites() {
        let clock = ManualClock::new(start());
        let pacer = Pacer::new(&config((10, 60, 4), (1200, 3600, 20), 1.0)).unwrap();
        drive(&pacer, &clock, 4, Budget::General).await;
        drive(&pacer, &clock, 1, Budget::InviteCreate).await;
        assert_eq!(clock.slept(), vec![Duration::from_secs(10)]);
    }

    #[tokio::test]
    async fn safety_fraction_shrinks_the_budget() {
        // 100 * 0.5 = 50/min, burst 5 => 45/min refill.
        let clock = ManualClock::new(start());
        let pacer = Pacer::new(&config((100, 60, 5), (1200, 3600, 20), 0.5)).unwrap();
        let sent = drive(&pacer, &clock, 200, Budget::General).await;
        assert!(max_in_window(&sent, Duration::from_secs(60)) <= 50);
    }

    #[tokio::test]
    async fn closed_bucket_holds_callers_until_the_given_time() {
        let clock = ManualClock::new(start());
        let pacer = Pacer::new(&PacingConfig::default()).unwrap();
        pacer.close_until(Budget::General, start() + chrono::Duration::seconds(5));
        drive(&pacer, &clock, 2, Budget::General).await;
        assert_eq!(clock.slept(), vec![Duration::from_secs(5)]);
    }

    #[tokio::test]
    async fn clock_going_backwards_does_not_mint_tokens() {
        let clock = ManualClock::new(start());
        let pacer = Pacer::new(&config((10, 60, 4), (1200, 3600, 20), 1.0)).unwrap();
        drive(&pacer, &clock, 4, Budget::General).await;
        clock.set(start() - chrono::Duration::hours(1));
        let waited = pacer.acquire(&clock, Budget::General).await;
        assert!(waited >= Duration::from_secs(10));
    }

    #[test]
    fn rejects_unsafe_configs() {
        for bad in [
            config((100, 60, 0), (1200, 3600, 20), 0.9),
            config((100, 60, 90), (1200, 3600, 20), 0.9),
            config((100, 0, 10), (1200, 3600, 20), 0.9),
            config((100, 60, 10), (1200, 3600, 20), 0.0),
            config((100, 60, 10), (1200, 3600, 20), 1.5),
            config((100, 60, 10), (1200, 3600, 20), f64::NAN),
            config((100, u64::MAX, 10), (1200, 3600, 20), 0.9),
        ] {
            assert!(
                matches!(Pacer::new(&bad), Err(AdminApiError::Config(_))),
                "{bad:?}"
            );
        }
    }
}
