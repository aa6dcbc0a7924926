//! The injected clock. Domain code never reads the wall clock directly, so tests can
//! move time (invite expiry, backoff, pacing, replay windows) without sleeping.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use chrono::{DateTime, Utc};

/// A boxed future returned by [`Clock::sleep`]; boxed so the trait stays object-safe.
pub type SleepFuture<'a> = Pin<Box<dyn Future<Output = ()> + Send + 'a>>;

/// Source of "now" and of waiting.
pub trait Clock: Send + Sync + std::fmt::Debug {
    fn now(&self) -> DateTime<Utc>;
    fn sleep(&self, duration: Duration) -> SleepFuture<'_>;
}

/// Shared handle used throughout the crate.
pub type SharedClock = Arc<dyn Clock>;

/// A clock that tests, demos and the simulator's control API can move.
pub trait AdjustableClock: Clock {
    fn advance_by(&self, by: chrono::Duration);
    fn set_to(&self, to: DateTime<Utc>);
}

/// The real clock: wall time and tokio timers.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }

    fn sleep(&self, duration: Duration) -> SleepFuture<'_> {
        Box::pin(tokio::time::sleep(duration))
    }
}

/// Wall time shifted by an adjustable offset: the simulator's clock, which tests and demos
/// move forward ("22 days later") while it keeps ticking in real time.
#[derive(Debug, Default)]
pub struct OffsetClock {
    offset: Mutex<chrono::Duration>,
}

impl OffsetClock {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn advance(&self, by: chrono::Duration) {
        let mut offset = self.offset.lock().unwrap_or_else(PoisonError::into_inner);
        *offset += by;
    }

    /// Moves the clock so that `now()` reads `to` at this instant.
    pub fn set(&self, to: DateTime<Utc>) {
        let mut offset = self.offset.lock().unwrap_or_else(PoisonError::into_inner);
        *offset = to - Utc::now();
    }

    pub fn offset(&self) -> chrono::Duration {
        *self.offset.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl AdjustableClock for OffsetClock {
    fn advance_by(&self, by: chrono::Duration) {
        self.advance(by);
    }

    fn set_to(&self, to: DateTime<Utc>) {
        self.set(to);
    }
}

impl Clock for OffsetClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now() + self.offset()
    }

    fn sleep(&self, duration: Duration) -> SleepFuture<'_> {
        Box::pin(tokio::time::sleep(duration))
    }
}

/// A fully manual clock for tests: time moves only when told to, and `sleep` returns at
/// once after advancing time by the requested amount (recording it), so code that waits
/// for backoff or pacing runs instantly yet observes the time it asked for.
#[derive(Debug)]
pub struct ManualClock {
    inner: Mutex<ManualState>,
}

#[derive(Debug)]
struct ManualState {
    now: DateTime<Utc>,
    slept: Vec<Duration>,
}

impl ManualClock {
    pub fn new(start: DateTime<Utc>) -> Self {
        Self {
            inner: Mutex::new(ManualState {
                now: start,
                slept: Vec::new(),
            }),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, ManualState> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn advance(&self, by: Duration) {
        let mut state = self.state();
        state.now += chrono::Duration::from_std(by).unwrap_or(chrono::Duration::MAX);
    }

    pub fn set(&self, to: DateTime<Utc>) {
        self.state().now = to;
    }

    /// Every duration passed to `sleep`, in order.
    pub fn slept(&self) -> Vec<Duration> {
        self.state().slept.clone()
    }

    /// Sum of all sleeps so far.
    pub fn total_slept(&self) -> Duration {
        self.state().slept.iter().sum()
    }
}

impl AdjustableClock for ManualClock {
    fn advance_by(&self, by: chrono::Duration) {
        self.state().now += by;
    }

    fn set_to(&self, to: DateTime<Utc>) {
        self.set(to);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        self.state().now
    }

    fn sleep(&self, duration: Duration) -> SleepFuture<'_> {
        {
            let mut state = self.state();
            state.slept.push(duration);
            state.now += chrono::Duration::from_std(duration).unwrap_or(chrono::Duration::MAX);
        }
        // Yield so other tasks run, as a real sleep would allow.
        Box::pin(tokio::task::yield_now())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn manual_clock_sleep_advances_time_and_records() {
        let start = DateTime::parse_from_rfc3339("2026-11-28T10:00:00Z")
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_default();
        let clock = ManualClock::new(start);
        clock.sleep(Duration::from_secs(3)).await;
        clock.sleep(Duration::from_millis(500)).await;
        assert_eq!(clock.now() - start, chrono::Duration::milliseconds(3500));
        assert_eq!(clock.slept().len(), 2);
        assert_eq!(clock.total_slept(), Duration::from_millis(3500));
    }

    #[test]
    fn offset_clock_moves_forward() {
        let clock = OffsetClock::new();
        let before = clock.now();
        clock.advance(chrono::Duration::days(22));
        assert!(clock.now() - before >= chrono::Duration::days(22));
    }
}
