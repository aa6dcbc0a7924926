//! Client-side pacing so normal operation never meets a 429 (spec §5, docs/spec/keycard.md §6).
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

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;

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
                burst: 60,
            },
            // The whole configured budget: `requests_per_minute` / `invites_per_hour` are what
            // Keycard may use, so room for other clients of the organization is made there.
            safety_fraction: 1.0,
        }
    }
}

/// Which budgets a request draws on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Budget {
    General,
    InviteCreate,
}

impl Budget {
    fn bucket(self) -> &'static str {
        match self {
            Self::General => "general",
            Self::InviteCreate => "invites",
        }
    }
}

/// How urgent the work a request serves is. When the budget is short, a request only takes
/// a slot that comes soon enough for its urgency and leaves later ones to more urgent work:
/// leavers before movers before joiners before background reads (the drift check, the
/// mirror).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RequestPriority {
    Leaver,
    Mover,
    Joiner,
    Background,
}

impl RequestPriority {
    /// How far ahead a request of this urgency may book a slot.
    fn max_wait(self) -> Option<chrono::Duration> {
        match self {
            Self::Leaver => None,
            Self::Mover => Some(chrono::Duration::seconds(120)),
            Self::Joiner => Some(chrono::Duration::seconds(60)),
            Self::Background => Some(chrono::Duration::seconds(20)),
        }
    }
}

tokio::task_local! {
    static PRIORITY: RequestPriority;
}

/// Runs `work` with its Admin API requests at `priority`. Requests made outside any
/// priority (a CLI command, a test) wait for their slot however far ahead it is.
pub async fn with_priority<F: Future>(priority: RequestPriority, work: F) -> F::Output {
    PRIORITY.scope(priority, work).await
}

fn current_max_wait() -> Option<chrono::Duration> {
    PRIORITY.try_with(|p| p.max_wait()).ok().flatten()
}

/// The state of one bucket, wherever it is kept.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BucketState {
    /// Theoretical arrival time of the next request (GCRA).
    pub tat: Option<DateTime<Utc>>,
    /// Set from a 429's `retry-after`: nobody sends on this bucket before then.
    pub closed_until: Option<DateTime<Utc>>,
    /// After a 429: the bucket refills at half its rate until then.
    pub slow_until: Option<DateTime<Utc>>,
}

/// A token bucket in its exact integer form (GCRA / virtual scheduling): `interval` is the
/// time one token takes to refill, `tolerance` how far ahead of schedule a caller may go
/// (`(burst - 1) * interval`). Nanosecond arithmetic keeps waits exact, which the tests
/// rely on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BucketRule {
    pub interval: chrono::Duration,
    pub tolerance: chrono::Duration,
}

impl BucketRule {
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
        Ok(Self {
            interval: chrono::Duration::nanoseconds(interval_nanos),
            tolerance: chrono::Duration::nanoseconds(
                interval_nanos.saturating_mul(i64::try_from(burst - 1).unwrap_or(i64::MAX)),
            ),
        })
    }

    /// Takes the next slot for a request arriving at `now`: when it may be sent and the
    /// bucket's state after. `None` when that slot lies further ahead than `max_wait` (it
    /// is left to more urgent work; the state is unchanged).
    pub fn reserve(
        &self,
        state: &BucketState,
        now: DateTime<Utc>,
        max_wait: Option<chrono::Duration>,
    ) -> Option<(DateTime<Utc>, BucketState)> {
        let slow = state.slow_until.is_some_and(|until| now < until);
        let interval = if slow {
            self.interval * 2
        } else {
            self.interval
        };
        let mut send_at = now;
        if let Some(tat) = state.tat {
            send_at = send_at.max(tat.checked_sub_signed(self.tolerance).unwrap_or(tat));
        }
        if let Some(closed) = state.closed_until {
            send_at = send_at.max(closed);
        }
        if max_wait.is_some_and(|max| send_at - now > max) {
            return None;
        }
        let base = state.tat.map_or(send_at, |tat| tat.max(send_at));
        // Saturate instead of panicking on absurd configurations or clocks.
        let tat = base
            .checked_add_signed(interval)
            .unwrap_or(DateTime::<Utc>::MAX_UTC);
        Some((
            send_at,
            BucketState {
                tat: Some(tat),
                ..*state
            },
        ))
    }
}

/// Where the buckets are kept: in this process ([`LocalBudget`]), or in a place every
/// process of the organization shares (Keycard's journal on PostgreSQL), so that several
/// replicas together stay within the organization's one budget.
pub trait BudgetStore: Send + Sync + std::fmt::Debug {
    /// Atomically takes a slot from the named bucket (see [`BucketRule::reserve`]).
    fn reserve<'a>(
        &'a self,
        bucket: &'static str,
        rule: BucketRule,
        now: DateTime<Utc>,
        max_wait: Option<chrono::Duration>,
    ) -> BoxFuture<'a, Result<Option<DateTime<Utc>>, String>>;

    /// After a 429: closes the bucket until `closed_until` and halves its rate until
    /// `slow_until`, for every process that shares it.
    fn throttle<'a>(
        &'a self,
        bucket: &'static str,
        closed_until: DateTime<Utc>,
        slow_until: DateTime<Utc>,
    ) -> BoxFuture<'a, Result<(), String>>;
}

/// Buckets kept in this process (one `keycard serve`, or the embedded journal).
#[derive(Debug, Default)]
pub struct LocalBudget {
    buckets: Mutex<HashMap<&'static str, BucketState>>,
}

impl LocalBudget {
    fn with<R>(&self, f: impl FnOnce(&mut HashMap<&'static str, BucketState>) -> R) -> R {
        let mut guard = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        f(&mut guard)
    }
}

impl BudgetStore for LocalBudget {
    fn reserve<'a>(
        &'a self,
        bucket: &'static str,
        rule: BucketRule,
        now: DateTime<Utc>,
        max_wait: Option<chrono::Duration>,
    ) -> BoxFuture<'a, Result<Option<DateTime<Utc>>, String>> {
        let out = self.with(|buckets| {
            let state = buckets.entry(bucket).or_default();
            rule.reserve(state, now, max_wait).map(|(at, next)| {
                *state = next;
                at
            })
        });
        Box::pin(std::future::ready(Ok(out)))
    }

    fn throttle<'a>(
        &'a self,
        bucket: &'static str,
        closed_until: DateTime<Utc>,
        slow_until: DateTime<Utc>,
    ) -> BoxFuture<'a, Result<(), String>> {
        self.with(|buckets| {
            let state = buckets.entry(bucket).or_default();
            state.closed_until = state.closed_until.max(Some(closed_until));
            state.slow_until = state.slow_until.max(Some(slow_until));
        });
        Box::pin(std::future::ready(Ok(())))
    }
}

/// Shared by every clone of one client.
#[derive(Debug)]
pub(crate) struct Pacer {
    general: BucketRule,
    invites: BucketRule,
    store: Arc<dyn BudgetStore>,
}

impl Pacer {
    pub(crate) fn new(
        config: &PacingConfig,
        store: Option<Arc<dyn BudgetStore>>,
    ) -> Result<Self, AdminApiError> {
        Ok(Self {
            general: BucketRule::new(&config.general, config.safety_fraction, "general")?,
            invites: BucketRule::new(&config.invites, config.safety_fraction, "invite")?,
            store: store.unwrap_or_else(|| Arc::new(LocalBudget::default())),
        })
    }

    /// Waits (through the clock) until the request may be sent; returns the time waited.
    ///
    /// The invite bucket is settled first and the general one only afterwards, so a long
    /// invite wait does not hold a general token that other calls could use meanwhile.
    pub(crate) async fn acquire(
        &self,
        clock: &dyn Clock,
        budget: Budget,
    ) -> Result<Duration, AdminApiError> {
        let mut waited = Duration::ZERO;
        if budget == Budget::InviteCreate {
            waited += self.take(clock, Budget::InviteCreate, self.invites).await?;
        }
        waited += self.take(clock, Budget::General, self.general).await?;
        Ok(waited)
    }

    async fn take(
        &self,
        clock: &dyn Clock,
        budget: Budget,
        rule: BucketRule,
    ) -> Result<Duration, AdminApiError> {
        let max_wait = current_max_wait();
        let mut waited = Duration::ZERO;
        loop {
            let now = clock.now();
            let slot = self
                .store
                .reserve(budget.bucket(), rule, now, max_wait)
                .await
                .map_err(AdminApiError::Budget)?;
            // No slot soon enough for this urgency: look again a little later, when more
            // urgent work may have taken what it needed.
            let wait = match slot {
                Some(at) => (at - now).to_std().unwrap_or(Duration::ZERO),
                None => max_wait
                    .and_then(|m| (m / 4).to_std().ok())
                    .unwrap_or(Duration::from_secs(1)),
            };
            if !wait.is_zero() {
                clock.sleep(wait).await;
                waited += wait;
            }
            if slot.is_some() {
                return Ok(waited);
            }
        }
    }

    /// After a 429 that the client will wait out: hold every caller of that budget until
    /// `until` and halve its rate for a window, so concurrent work (in every process that
    /// shares the store) does not keep hitting the limit.
    pub(crate) async fn throttle(&self, budget: Budget, now: DateTime<Utc>, until: DateTime<Utc>) {
        let window = match budget {
            Budget::General => chrono::Duration::minutes(1),
            Budget::InviteCreate => chrono::Duration::hours(1),
        };
        let slow_until = until.checked_add_signed(window).unwrap_or(until);
        if let Err(e) = self
            .store
            .throttle(budget.bucket(), until, slow_until)
            .await
        {
            tracing::warn!(error = %e, "could not share a rate-limit pause; pausing this call only");
        }
        let _ = now;
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
            pacer.acquire(clock, budget).await.unwrap();
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
        let pacer = Pacer::new(&config((10, 60, 4), (1200, 3600, 20), 1.0), None).unwrap();
        drive(&pacer, &clock, 6, Budget::General).await;
        assert_eq!(
            clock.slept(),
            vec![Duration::from_secs(10), Duration::from_secs(10)]
        );
    }

    #[tokio::test]
    async fn default_config_never_exceeds_the_org_limit_in_any_minute() {
        let clock = ManualClock::new(start());
        let pacer = Pacer::new(&PacingConfig::default(), None).unwrap();
        let sent = drive(&pacer, &clock, 400, Budget::General).await;
        let worst = max_in_window(&sent, Duration::from_secs(60));
        // Never more than the configured 100 in any minute...
        assert!(worst <= 100, "worst minute had {worst} requests");
        // ...and not needlessly slow: 90/min steady (0.9 of the budget) after the burst of
        // 10.
        let total = clock.now() - start();
        assert_eq!(total, chrono::Duration::nanoseconds(390 * 666_666_667));
    }

    #[tokio::test]
    async fn idle_time_refills_only_up_to_the_burst() {
        let clock = ManualClock::new(start());
        let pacer = Pacer::new(&config((10, 60, 4), (1200, 3600, 20), 1.0), None).unwrap();
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
        let pacer = Pacer::new(&config((100, 60, 10), (5, 3600, 1), 1.0), None).unwrap();
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
        let pacer = Pacer::new(&config((10, 60, 4), (1200, 3600, 20), 1.0), None).unwrap();
        drive(&pacer, &clock, 4, Budget::General).await;
        drive(&pacer, &clock, 1, Budget::InviteCreate).await;
        assert_eq!(clock.slept(), vec![Duration::from_secs(10)]);
    }

    #[tokio::test]
    async fn safety_fraction_shrinks_the_budget() {
        // 100 * 0.5 = 50/min, burst 5 => 45/min refill.
        let clock = ManualClock::new(start());
        let pacer = Pacer::new(&config((100, 60, 5), (1200, 3600, 20), 0.5), None).unwrap();
        let sent = drive(&pacer, &clock, 200, Budget::General).await;
        assert!(max_in_window(&sent, Duration::from_secs(60)) <= 50);
    }

    #[tokio::test]
    async fn closed_bucket_holds_callers_until_the_given_time() {
        let clock = ManualClock::new(start());
        let pacer = Pacer::new(&PacingConfig::default(), None).unwrap();
        pacer
            .throttle(
                Budget::General,
                start(),
                start() + chrono::Duration::seconds(5),
            )
            .await;
        drive(&pacer, &clock, 2, Budget::General).await;
        assert_eq!(clock.slept(), vec![Duration::from_secs(5)]);
    }

    #[tokio::test]
    async fn clock_going_backwards_does_not_mint_tokens() {
        let clock = ManualClock::new(start());
        let pacer = Pacer::new(&config((10, 60, 4), (1200, 3600, 20), 1.0), None).unwrap();
        drive(&pacer, &clock, 4, Budget::General).await;
        clock.set(start() - chrono::Duration::hours(1));
        let waited = pacer.acquire(&clock, Budget::General).await.unwrap();
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
                matches!(Pacer::new(&bad, None), Err(AdminApiError::Config(_))),
                "{bad:?}"
            );
        }
    }

    #[tokio::test]
    async fn background_work_leaves_a_backed_up_budget_to_leavers() {
        // 10/min, burst 1: one slot every 6 s. Twenty leaver requests book the next two
        // minutes; a background read may not book that far ahead, so it waits until the
        // queue is short again instead of taking a slot from the next leaver.
        let clock = ManualClock::new(start());
        let pacer = Pacer::new(&config((11, 60, 1), (1200, 3600, 20), 1.0), None).unwrap();
        let state = pacer
            .store
            .reserve("general", pacer.general, start(), None)
            .await;
        assert_eq!(state, Ok(Some(start())));
        for _ in 0..20 {
            with_priority(RequestPriority::Leaver, async {
                let at = pacer
                    .store
                    .reserve("general", pacer.general, clock.now(), None)
                    .await;
                assert!(matches!(at, Ok(Some(_))));
            })
            .await;
        }
        let booked = pacer
            .store
            .reserve(
                "general",
                pacer.general,
                clock.now(),
                RequestPriority::Background.max_wait(),
            )
            .await;
        assert_eq!(booked, Ok(None), "too far ahead for background work");
        let leaver = pacer
            .store
            .reserve(
                "general",
                pacer.general,
                clock.now(),
                RequestPriority::Leaver.max_wait(),
            )
            .await;
        assert!(
            matches!(leaver, Ok(Some(_))),
            "leavers always get the next slot"
        );
    }

    #[tokio::test]
    async fn a_429_halves_the_rate_for_a_window() {
        // 10/min, burst 1 => one every 6 s; after a 429, one every 12 s for a minute.
        let clock = ManualClock::new(start());
        let pacer = Pacer::new(&config((11, 60, 1), (1200, 3600, 20), 1.0), None).unwrap();
        pacer
            .throttle(
                Budget::General,
                start(),
                start() + chrono::Duration::seconds(1),
            )
            .await;
        drive(&pacer, &clock, 3, Budget::General).await;
        assert_eq!(
            clock.slept(),
            vec![
                Duration::from_secs(1),
                Duration::from_secs(12),
                Duration::from_secs(12)
            ]
        );
    }
}
