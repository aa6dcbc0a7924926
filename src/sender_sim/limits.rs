//! Server-side rate limits as the vendors describe them: a fixed per-minute window (Okta) or a
//! rolling window (Gusto: "200 requests within a given 60 second timeframe"). Refused
//! requests do not count. Time is the simulator's clock.

use std::collections::VecDeque;

use chrono::{DateTime, Duration, DurationRound, Utc};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(super) enum WindowStyle {
    /// Windows aligned on multiples of the length (Okta's per-minute buckets).
    Fixed,
    /// Any span of the window's length (Gusto, Graph, HiBob, BambooHR as modelled).
    Rolling,
}

/// One budget's setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitSetting {
    pub limit: u32,
    pub window_secs: u64,
}

/// What a response reports about the window (for the vendors' rate-limit headers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct WindowStatus {
    pub limit: u32,
    pub remaining: u32,
    pub reset_at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub(super) struct Window {
    setting: LimitSetting,
    style: WindowStyle,
    hits: VecDeque<DateTime<Utc>>,
}

impl Window {
    pub(super) fn new(setting: LimitSetting, style: WindowStyle) -> Self {
        Self {
            setting,
            style,
            hits: VecDeque::new(),
        }
    }

    fn length(&self) -> Duration {
        Duration::seconds(i64::try_from(self.setting.window_secs.max(1)).unwrap_or(i64::MAX))
    }

    /// Start of the window `now` falls in, and when it resets.
    fn bounds(&self, now: DateTime<Utc>) -> (DateTime<Utc>, DateTime<Utc>) {
        let length = self.length();
        match self.style {
            WindowStyle::Fixed => {
                let start = now.duration_trunc(length).unwrap_or(now);
                (start, start + length)
            }
            WindowStyle::Rolling => {
                let start = now - length;
                let reset = self
                    .hits
                    .iter()
                    .find(|t| **t > start)
                    .map_or(now, |oldest| *oldest + length);
                (start, reset)
            }
        }
    }

    fn prune(&mut self, now: DateTime<Utc>) {
        let (start, _) = self.bounds(now);
        let fixed = self.style == WindowStyle::Fixed;
        while let Some(first) = self.hits.front() {
            let expired = if fixed {
                *first < start
            } else {
                *first <= start
            };
            // A clock moved backwards makes hits from the "future": forget them too.
            if expired || *first > now {
                self.hits.pop_front();
            } else {
                break;
            }
        }
    }

    /// Counts a request, or refuses it with the window's state (`remaining` 0).
    pub(super) fn take(&mut self, now: DateTime<Utc>) -> Result<WindowStatus, WindowStatus> {
        self.prune(now);
        let used = u32::try_from(self.hits.len()).unwrap_or(u32::MAX);
        if used >= self.setting.limit {
            let (_, reset_at) = self.bounds(now);
            return Err(WindowStatus {
                limit: self.setting.limit,
                remaining: 0,
                reset_at,
            });
        }
        self.hits.push_back(now);
        let (_, reset_at) = self.bounds(now);
        Ok(WindowStatus {
            limit: self.setting.limit,
            remaining: self.setting.limit - used - 1,
            reset_at,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_default()
    }

    #[test]
    fn rolling_window_reopens_when_the_oldest_request_ages_out() {
        let mut w = Window::new(
            LimitSetting {
                limit: 2,
                window_secs: 60,
            },
            WindowStyle::Rolling,
        );
        assert!(w.take(at("2026-11-28T10:00:00Z")).is_ok());
        let second = w.take(at("2026-11-28T10:00:20Z"));
        assert_eq!(second.map(|s| s.remaining), Ok(0));
        let refused = w.take(at("2026-11-28T10:00:30Z"));
        assert_eq!(
            refused.err().map(|s| s.reset_at),
            Some(at("2026-11-28T10:01:00Z"))
        );
        assert!(w.take(at("2026-11-28T10:01:00Z")).is_ok());
        assert!(w.take(at("2026-11-28T10:01:10Z")).is_err());
    }

    #[test]
    fn fixed_window_resets_on_the_minute() {
        let mut w = Window::new(
            LimitSetting {
                limit: 1,
                window_secs: 60,
            },
            WindowStyle::Fixed,
        );
        assert!(w.take(at("2026-11-28T10:00:59Z")).is_ok());
        let refused = w.take(at("2026-11-28T10:00:59.500Z"));
        assert_eq!(
            refused.err().map(|s| s.reset_at),
            Some(at("2026-11-28T10:01:00Z"))
        );
        assert!(w.take(at("2026-11-28T10:01:00Z")).is_ok());
    }
}
