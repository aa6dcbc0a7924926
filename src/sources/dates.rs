//! Date-only HR dates in the organization's time zone.
//!
//! BambooHR, HiBob and generic sources send hire and termination *dates*, not instants. A
//! date means a day where the people work, so it is read in the organization's zone
//! (top-level `timezone`, or the source's own `sources[].timezone`) at a time of day:
//! access begins at `dates.start_time` (default 06:00) on a start date and ends at
//! `dates.end_time` (default 18:00) on a termination date, the last day worked. Read at
//! 00:00 UTC instead, a US termination dated D took effect on the afternoon of D-1.
//!
//! The zone database is compiled in (chrono-tz, already a dependency through `cel`), so the
//! result does not depend on the host's `/usr/share/zoneinfo`.
//!
//! Daylight-saving changes, as RFC 5545 resolves them: a local time skipped by a
//! spring-forward gap (02:30 in New York on its change day) is read with the offset before
//! the gap, i.e. as the wall clock shows it an hour later (03:30); a local time that occurs
//! twice in a fall-back fold is the first occurrence.

use chrono::{
    DateTime, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, TimeDelta, TimeZone, Utc,
};
use chrono_tz::Tz;

use crate::ingest::EventKind;
use crate::settings::ConfigError;

/// The default zone: UTC, which is what Keycard did before zones were configurable.
pub const DEFAULT_TIMEZONE: &str = "UTC";
/// The default local time at which a date-only start (hire, return, move) takes effect.
pub const DEFAULT_START_TIME: &str = "06:00";
/// The default local time at which a date-only end (termination) takes effect.
pub const DEFAULT_END_TIME: &str = "18:00";

/// How a source reads date-only dates: a zone and the local times of a start and an end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalDates {
    pub zone: Tz,
    pub start: NaiveTime,
    pub end: NaiveTime,
}

impl Default for LocalDates {
    fn default() -> Self {
        Self {
            zone: Tz::UTC,
            start: NaiveTime::from_hms_opt(6, 0, 0).unwrap_or(NaiveTime::MIN),
            end: NaiveTime::from_hms_opt(18, 0, 0).unwrap_or(NaiveTime::MIN),
        }
    }
}

impl LocalDates {
    /// From the configured texts; every error names `key_*` and the fix.
    pub fn parse(
        zone: (&str, &str),
        start: (&str, &str),
        end: (&str, &str),
    ) -> Result<Self, ConfigError> {
        Ok(Self {
            zone: parse_zone(zone.0, zone.1)?,
            start: parse_time(start.0, start.1)?,
            end: parse_time(end.0, end.1)?,
        })
    }

    /// The same times in another zone (a source's own `timezone`).
    pub fn in_zone(self, zone: Tz) -> Self {
        Self { zone, ..self }
    }

    /// The instant a change of `kind` dated `date` takes effect: a departure at the end of
    /// that (last) day, anything else at its start.
    pub fn instant(&self, kind: EventKind, date: NaiveDate) -> DateTime<Utc> {
        let time = match kind {
            EventKind::Departed => self.end,
            _ => self.start,
        };
        local_instant(self.zone, date.and_time(time))
    }

    /// When a change of `kind` dated `date` takes effect: scheduled at [`Self::instant`] when
    /// that is still ahead of `received_at`; otherwise in force at `occurred_at` (never later
    /// than its receipt). No date: in force as the sender said.
    pub fn effective(
        &self,
        kind: EventKind,
        date: Option<NaiveDate>,
        occurred_at: DateTime<Utc>,
        received_at: DateTime<Utc>,
    ) -> DateTime<Utc> {
        match date.map(|d| self.instant(kind, d)) {
            Some(at) if at > received_at => at,
            _ => occurred_at.min(received_at),
        }
    }
}

/// `local` in `zone` as an instant: a skipped time with the offset before the gap, a
/// repeated time at its first occurrence.
fn local_instant(zone: Tz, local: NaiveDateTime) -> DateTime<Utc> {
    match zone.from_local_datetime(&local) {
        LocalResult::Single(t) => t.to_utc(),
        LocalResult::Ambiguous(first, second) => first.to_utc().min(second.to_utc()),
        LocalResult::None => {
            // In a gap: the offset in force a day earlier is the one before the gap (no zone
            // changes its offset twice within a day).
            let probe = local.and_utc() - TimeDelta::days(1);
            let before = zone.offset_from_utc_datetime(&probe.naive_utc());
            let offset = chrono::Offset::fix(&before);
            (local - TimeDelta::seconds(i64::from(offset.local_minus_utc()))).and_utc()
        }
    }
}

/// An IANA zone name (`America/New_York`, `Europe/Berlin`, `UTC`).
pub fn parse_zone(key: &str, text: &str) -> Result<Tz, ConfigError> {
    text.trim().parse::<Tz>().map_err(|_| {
        ConfigError::invalid(
            key,
            format!(
                "'{text}' is not an IANA time zone name; use one such as America/New_York, Europe/Berlin or UTC (the TZ identifier column of the tz database)"
            ),
        )
    })
}

/// A local time of day, `HH:MM` (24-hour).
pub fn parse_time(key: &str, text: &str) -> Result<NaiveTime, ConfigError> {
    NaiveTime::parse_from_str(text.trim(), "%H:%M").map_err(|_| {
        ConfigError::invalid(
            key,
            format!(
                "'{text}' is not a time of day; use HH:MM on a 24-hour clock, e.g. 06:00 or 18:00"
            ),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .map(|t| t.to_utc())
            .unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    fn day(text: &str) -> NaiveDate {
        NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    fn zone(name: &str) -> LocalDates {
        LocalDates::parse(
            ("timezone", name),
            ("dates.start_time", DEFAULT_START_TIME),
            ("dates.end_time", DEFAULT_END_TIME),
        )
        .unwrap_or_else(|e| panic!("{e}"))
    }

    fn at(dates: &LocalDates, kind: EventKind, date: &str) -> String {
        dates.instant(kind, day(date)).to_rfc3339()
    }

    #[test]
    fn new_york_across_spring_forward_and_fall_back() {
        let ny = zone("America/New_York");
        // 2027-03-14: clocks go 02:00 EST -> 03:00 EDT.
        assert_eq!(
            at(&ny, EventKind::Hired, "2027-03-13"),
            "2027-03-13T11:00:00+00:00"
        );
        assert_eq!(
            at(&ny, EventKind::Hired, "2027-03-14"),
            "2027-03-14T10:00:00+00:00"
        );
        assert_eq!(
            at(&ny, EventKind::Departed, "2027-03-13"),
            "2027-03-13T23:00:00+00:00"
        );
        assert_eq!(
            at(&ny, EventKind::Departed, "2027-03-14"),
            "2027-03-14T22:00:00+00:00"
        );
        // 2026-11-01: clocks go 02:00 EDT -> 01:00 EST.
        assert_eq!(
            at(&ny, EventKind::Departed, "2026-10-31"),
            "2026-10-31T22:00:00+00:00"
        );
        assert_eq!(
            at(&ny, EventKind::Departed, "2026-11-01"),
            "2026-11-01T23:00:00+00:00"
        );
        assert_eq!(
            at(&ny, EventKind::Hired, "2026-11-01"),
            "2026-11-01T11:00:00+00:00"
        );
    }

    #[test]
    fn a_local_time_that_does_not_exist_or_occurs_twice() {
        let ny = LocalDates::parse(
            ("timezone", "America/New_York"),
            ("dates.start_time", "02:30"),
            ("dates.end_time", "01:30"),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        // 02:30 on 2027-03-14 is skipped: read with EST (-05), i.e. 03:30 EDT.
        assert_eq!(
            at(&ny, EventKind::Hired, "2027-03-14"),
            "2027-03-14T07:30:00+00:00"
        );
        // 01:30 on 2026-11-01 happens twice: the first (EDT, -04).
        assert_eq!(
            at(&ny, EventKind::Departed, "2026-11-01"),
            "2026-11-01T05:30:00+00:00"
        );
        // An ordinary day for comparison.
        assert_eq!(
            at(&ny, EventKind::Hired, "2027-03-15"),
            "2027-03-15T06:30:00+00:00"
        );
    }

    #[test]
    fn berlin_and_auckland() {
        let berlin = zone("Europe/Berlin");
        // 2027-03-28: CET (+01) -> CEST (+02) at 02:00 local.
        assert_eq!(
            at(&berlin, EventKind::Hired, "2027-03-27"),
            "2027-03-27T05:00:00+00:00"
        );
        assert_eq!(
            at(&berlin, EventKind::Hired, "2027-03-28"),
            "2027-03-28T04:00:00+00:00"
        );
        assert_eq!(
            at(&berlin, EventKind::Departed, "2026-10-25"),
            "2026-10-25T17:00:00+00:00"
        );
        let auckland = zone("Pacific/Auckland");
        // Southern hemisphere: NZDT (+13) ends 2027-04-04, NZST (+12) ends 2026-09-27.
        assert_eq!(
            at(&auckland, EventKind::Departed, "2027-04-03"),
            "2027-04-03T05:00:00+00:00"
        );
        assert_eq!(
            at(&auckland, EventKind::Departed, "2027-04-04"),
            "2027-04-04T06:00:00+00:00"
        );
        assert_eq!(
            at(&auckland, EventKind::Hired, "2026-09-26"),
            "2026-09-25T18:00:00+00:00"
        );
        assert_eq!(
            at(&auckland, EventKind::Hired, "2026-09-27"),
            "2026-09-26T17:00:00+00:00"
        );
    }

    #[test]
    fn scheduled_only_while_ahead() {
        let ny = zone("America/New_York");
        let dated = Some(day("2026-12-01"));
        // Received the morning of the last day: removed that evening, not at once.
        let morning = utc("2026-12-01T14:00:00Z");
        assert_eq!(
            ny.effective(EventKind::Departed, dated, morning, morning),
            utc("2026-12-01T23:00:00Z")
        );
        // The start time has passed: in force now.
        assert_eq!(
            ny.effective(EventKind::Hired, dated, morning, morning),
            morning
        );
        let late = utc("2026-12-02T00:00:00Z");
        assert_eq!(ny.effective(EventKind::Departed, dated, late, late), late);
        // Received at the very instant it takes effect: not ahead, so in force as sent.
        let evening = utc("2026-12-01T23:00:00Z");
        assert_eq!(
            ny.effective(EventKind::Departed, dated, morning, evening),
            morning
        );
        assert_eq!(
            ny.effective(EventKind::Departed, None, morning, late),
            morning
        );
    }

    #[test]
    fn unknown_zones_and_times_are_refused_with_the_key() {
        let err = parse_zone("sources[1].timezone", "America/Nowhere").unwrap_err();
        assert_eq!(err.key(), Some("sources[1].timezone"));
        assert!(err.to_string().contains("America/New_York"), "{err}");
        assert!(parse_zone("timezone", "EST5").is_err());
        let err = parse_time("dates.end_time", "6pm").unwrap_err();
        assert_eq!(err.key(), Some("dates.end_time"));
        assert!(parse_time("dates.end_time", "24:00").is_err());
        assert!(parse_time("dates.end_time", "18:00").is_ok());
    }
}
