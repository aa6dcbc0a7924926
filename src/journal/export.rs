//! Journal exports fit for an audit (`keycard journal --format csv|json|jsonl`): one flat
//! record per action or event with its ids, RFC 3339 UTC timestamps to the microsecond,
//! what was done (`kind`), to what (`target`) and why (`reason`) in separate columns; CSV
//! written by the `csv` crate (quoting done right) with every text cell guarded against
//! spreadsheet formula injection; JSON as an array or JSON Lines, streamed page by page.

use std::io::Write;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;

use super::types::{ActionRow, EventRow};

/// RFC 3339 in UTC with microseconds, e.g. `2026-12-01T09:00:00.123456Z`.
pub fn timestamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

fn opt_ts(t: Option<DateTime<Utc>>) -> String {
    t.map(timestamp).unwrap_or_default()
}

/// A text cell a spreadsheet would run as a formula (`=`, `+`, `-`, `@`, tab, carriage
/// return first) is prefixed with `'` (OWASP's CSV injection advice), so it shows as text.
pub fn guard(cell: &str) -> String {
    if cell.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{cell}")
    } else {
        cell.to_owned()
    }
}

/// What an action was done to: the workspace, invite, user, API key or role in its
/// parameters, as `name=value` pairs (the full parameters are in `params`).
fn target(params: &Value) -> String {
    let Some(map) = params.as_object() else {
        return String::new();
    };
    map.iter()
        .filter(|(k, _)| *k != "reason")
        .map(|(k, v)| match v {
            Value::String(s) => format!("{k}={s}"),
            other => format!("{k}={other}"),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// A flat record: its column names and its cells (text guarded), in one order.
pub trait Record: Serialize {
    const HEADER: &'static [&'static str];
    fn cells(&self) -> Vec<String>;
}

/// A cell of a CSV row.
trait Cell {
    fn cell(&self) -> String;
}

impl Cell for String {
    fn cell(&self) -> String {
        guard(self)
    }
}

impl Cell for Uuid {
    fn cell(&self) -> String {
        self.to_string()
    }
}

impl Cell for i64 {
    fn cell(&self) -> String {
        self.to_string()
    }
}

impl Cell for i32 {
    fn cell(&self) -> String {
        self.to_string()
    }
}

/// Declares a record struct with its header and cells in field order.
macro_rules! record {
    ($(#[$meta:meta])* pub struct $name:ident { $(pub $field:ident: $ty:ty,)* }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Default, Serialize)]
        pub struct $name { $(pub $field: $ty,)* }

        impl Record for $name {
            const HEADER: &'static [&'static str] = &[$(stringify!($field)),*];
            fn cells(&self) -> Vec<String> {
                vec![$(Cell::cell(&self.$field)),*]
            }
        }
    };
}

record! {
    /// One action, flat.
    pub struct ActionRecord {
    pub id: Uuid,
    pub seq: i64,
    pub created_at: String,
    pub updated_at: String,
    pub started_at: String,
    pub finished_at: String,
    pub person_id: Uuid,
    pub person_source_id: String,
    pub person_email: String,
    pub event_id: String,
    pub kind: String,
    pub target: String,
    pub status: String,
    pub rule: String,
    pub reason: String,
    pub attempts: i32,
    pub http_status: String,
    pub request_id: String,
    pub outcome: String,
    pub error: String,
    pub resolved_at: String,
    pub resolved_by: String,
    pub resolution: String,
    pub params: String,
    }
}

impl From<&ActionRow> for ActionRecord {
    fn from(a: &ActionRow) -> Self {
        // A manual action's own reason is in its parameters.
        let reason = a
            .params
            .get("reason")
            .and_then(Value::as_str)
            .map_or_else(|| a.reason.clone(), |r| format!("{}: {r}", a.reason));
        Self {
            id: a.id,
            seq: a.seq,
            created_at: timestamp(a.created_at),
            updated_at: timestamp(a.updated_at),
            started_at: opt_ts(a.started_at),
            finished_at: opt_ts(a.finished_at),
            person_id: a.person_id,
            person_source_id: a.person_source_id.clone().unwrap_or_default(),
            person_email: a.person_email.clone().unwrap_or_default(),
            event_id: a.event_id.map(|e| e.to_string()).unwrap_or_default(),
            kind: a.kind.to_string(),
            target: target(&a.params),
            status: a.status.to_string(),
            rule: a.rule.clone().unwrap_or_default(),
            reason,
            attempts: a.attempts,
            http_status: a.response_status.map(|s| s.to_string()).unwrap_or_default(),
            request_id: a.request_id.clone().unwrap_or_default(),
            outcome: a.outcome.clone().unwrap_or_default(),
            error: a.error.clone().unwrap_or_default(),
            resolved_at: opt_ts(a.resolved_at),
            resolved_by: a.resolved_by.clone().unwrap_or_default(),
            resolution: a.resolution.clone().unwrap_or_default(),
            params: a.params.to_string(),
        }
    }
}

record! {
    /// One event, flat.
    pub struct EventRecord {
    pub id: Uuid,
    pub received_at: String,
    pub occurred_at: String,
    pub effective_at: String,
    pub processed_at: String,
    pub source: String,
    pub delivery_id: String,
    pub kind: String,
    pub source_event_type: String,
    pub person_source_id: String,
    pub person_id: String,
    pub email: String,
    pub status: String,
    pub reason: String,
    pub body_sha256: String,
    }
}

impl From<&EventRow> for EventRecord {
    fn from(e: &EventRow) -> Self {
        Self {
            id: e.id,
            received_at: timestamp(e.received_at),
            occurred_at: timestamp(e.occurred_at),
            effective_at: opt_ts(e.effective_at),
            processed_at: opt_ts(e.processed_at),
            source: e.source.clone(),
            delivery_id: e.dedupe_key.clone(),
            kind: e.kind.to_string(),
            source_event_type: e.source_event_type.clone().unwrap_or_default(),
            person_source_id: e.person_source_id.clone().unwrap_or_default(),
            person_id: e.person_id.map(|p| p.to_string()).unwrap_or_default(),
            email: e.email.clone().unwrap_or_default(),
            status: e.status.to_string(),
            reason: e.status_reason.clone().unwrap_or_default(),
            body_sha256: e.body_sha256.clone(),
        }
    }
}

/// How an export is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    Csv,
    /// One JSON array.
    Json,
    /// One JSON object per line.
    JsonLines,
}

/// Writes records as they come, page after page: the header (CSV) or `[` (JSON) first,
/// then each page, then [`Exporter::finish`].
pub struct Exporter<W: Write> {
    format: ExportFormat,
    csv: Option<csv::Writer<W>>,
    raw: Option<W>,
    first: bool,
}

/// An export could not be written (a closed pipe, a full disk).
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Csv(#[from] csv::Error),
    #[error("{0}")]
    Json(#[from] serde_json::Error),
}

impl<W: Write> Exporter<W> {
    pub fn new(out: W, format: ExportFormat) -> Self {
        match format {
            ExportFormat::Csv => Self {
                format,
                csv: Some(csv::WriterBuilder::new().has_headers(true).from_writer(out)),
                raw: None,
                first: true,
            },
            _ => Self {
                format,
                csv: None,
                raw: Some(out),
                first: true,
            },
        }
    }

    /// Writes records (guarded, for CSV), then flushes: each page reaches the reader as
    /// soon as it is read.
    pub fn write<R: Record>(&mut self, records: &[R]) -> Result<(), ExportError> {
        if let Some(w) = &mut self.csv {
            if self.first {
                w.write_record(R::HEADER)?;
                self.first = false;
            }
            for r in records {
                w.write_record(r.cells())?;
            }
            w.flush()?;
            return Ok(());
        }
        if let Some(w) = &mut self.raw {
            for r in records {
                match self.format {
                    ExportFormat::JsonLines => {
                        serde_json::to_writer(&mut *w, r)?;
                        w.write_all(b"\n")?;
                    }
                    _ => {
                        w.write_all(if self.first { b"[\n" } else { b",\n" })?;
                        serde_json::to_writer(&mut *w, r)?;
                    }
                }
                self.first = false;
            }
            w.flush()?;
        }
        Ok(())
    }

    /// Closes the export (`]` for JSON; a header-only CSV when there were no records).
    pub fn finish<R: Record>(mut self) -> Result<(), ExportError> {
        if let Some(mut w) = self.csv.take() {
            if self.first {
                // No rows: still say which columns an export has.
                w.write_record(R::HEADER)?;
            }
            w.flush()?;
        }
        if let Some(mut w) = self.raw.take() {
            if self.format == ExportFormat::Json {
                w.write_all(if self.first { b"[]\n" } else { b"\n]\n" })?;
            }
            w.flush()?;
        }
        Ok(())
    }
}

/// A time bound as operators write it: RFC 3339 (`2026-12-01T09:00:00Z`), a date
/// (`2026-12-01`, midnight UTC), or a duration back from `now` (`24h`, `7d`, `90m`).
pub fn parse_time(text: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, String> {
    let text = text.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Ok(t.with_timezone(&Utc));
    }
    if let Ok(d) = chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
        && let Some(t) = d.and_hms_opt(0, 0, 0)
    {
        return Ok(t.and_utc());
    }
    if let Ok(d) = humantime::parse_duration(text)
        && let Ok(d) = chrono::Duration::from_std(d)
        && let Some(t) = now.checked_sub_signed(d)
    {
        return Ok(t);
    }
    Err(format!(
        "'{text}' is not a time: use RFC 3339 (2026-12-01T09:00:00Z), a date (2026-12-01) or a duration back from now (24h, 7d)"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formulas_are_defused_and_text_is_kept() {
        assert_eq!(guard("=HYPERLINK(\"x\")"), "'=HYPERLINK(\"x\")");
        assert_eq!(guard("+1"), "'+1");
        assert_eq!(guard("-2"), "'-2");
        assert_eq!(guard("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(guard("\tx"), "'\tx");
        assert_eq!(guard("ada@example.com"), "ada@example.com");
    }

    #[test]
    fn times_as_operators_write_them() {
        let now = DateTime::parse_from_rfc3339("2026-12-04T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(
            timestamp(parse_time("24h", now).unwrap()),
            "2026-12-03T12:00:00.000000Z"
        );
        assert_eq!(
            timestamp(parse_time("7d", now).unwrap()),
            "2026-11-27T12:00:00.000000Z"
        );
        assert_eq!(
            timestamp(parse_time("2026-12-01", now).unwrap()),
            "2026-12-01T00:00:00.000000Z"
        );
        assert_eq!(
            timestamp(parse_time("2026-12-01T10:00:00.5+01:00", now).unwrap()),
            "2026-12-01T09:00:00.500000Z"
        );
        assert!(
            parse_time("yesterday", now)
                .unwrap_err()
                .contains("RFC 3339")
        );
    }

    #[test]
    fn csv_quotes_and_guards_every_text_cell() {
        let mut out = Vec::new();
        let mut e = Exporter::new(&mut out, ExportFormat::Csv);
        let r = EventRecord {
            email: "=cmd|' /C calc'!A0".into(),
            reason: "line one\nline \"two\", three".into(),
            ..EventRecord::default()
        };
        e.write(&[r]).unwrap();
        e.finish::<EventRecord>().unwrap();
        let text = String::from_utf8(out).unwrap();
        let mut reader = csv::Reader::from_reader(text.as_bytes());
        let headers = reader.headers().unwrap().clone();
        let row = reader.records().next().unwrap().unwrap();
        let cell = |name: &str| row[headers.iter().position(|h| h == name).unwrap()].to_owned();
        assert_eq!(cell("email"), "'=cmd|' /C calc'!A0");
        assert_eq!(cell("reason"), "line one\nline \"two\", three");
    }
}
