//! The sender-neutral result of a read: what the canonical lifecycle record (inbound-sources
//! §8.2) needs about a person, plus provenance (fetch time, endpoint) and the raw record.

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use serde_json::Value;

use super::SenderKind;

/// Where the person stands with the sender, normalised from each vendor's own fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EmploymentStatus {
    /// Known but not started yet (future hire date, Okta `STAGED`/`PROVISIONED`, Gusto not
    /// onboarded).
    Pending,
    Active,
    /// Temporary absence the sender models as such (HiBob leave, BambooHR leave statuses,
    /// Okta `SUSPENDED`).
    OnLeave,
    /// Access disabled without a stated employment reason (Graph `accountEnabled: false`
    /// with no leave date).
    Suspended,
    /// Employment ended (effective).
    Terminated,
    Unknown,
}

impl EmploymentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Active => "active",
            Self::OnLeave => "on_leave",
            Self::Suspended => "suspended",
            Self::Terminated => "terminated",
            Self::Unknown => "unknown",
        }
    }
}

/// A person's manager as the sender names them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ManagerRef {
    pub source_person_id: Option<String>,
    pub email: Option<String>,
    pub display_name: Option<String>,
}

/// One person as read from a sender's API. Absent fields are `None` ("not reported"), never
/// "cleared": the enrichment step decides what an absence means.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SenderRecord {
    pub sender: SenderKind,
    /// The sender's id for the person (Gusto uuid, HiBob employee id, Okta `00u…`, Graph
    /// object id, BambooHR employee id): what its notices carry.
    pub source_person_id: String,
    /// The sender-side tenant (Gusto company uuid, HiBob company id, Okta org, Entra tenant,
    /// BambooHR company domain), when configured or reported.
    pub tenant: Option<String>,
    /// Primary work email, lower-cased.
    pub email: Option<String>,
    /// A personal address the sender holds (Gusto `email`, BambooHR `homeEmail`); never used
    /// as the work identity, kept for correlation only.
    pub personal_email: Option<String>,
    /// Login / user principal name where the sender has one (Okta `login`, Graph UPN).
    pub username: Option<String>,
    pub employee_number: Option<String>,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    pub preferred_name: Option<String>,
    pub display_name: Option<String>,
    pub department: Option<String>,
    pub division: Option<String>,
    pub title: Option<String>,
    pub location: Option<String>,
    pub cost_center: Option<String>,
    pub organization: Option<String>,
    /// `employee`, `contractor`, ... where the sender says (free text as sent).
    pub worker_type: Option<String>,
    pub manager: Option<ManagerRef>,
    pub status: EmploymentStatus,
    /// The sender's own "active" flag (Gusto `!terminated`, HiBob `internal.status`, Okta
    /// status, Graph `accountEnabled`, BambooHR `status`).
    pub active: bool,
    pub hire_date: Option<NaiveDate>,
    /// Last day (or leave instant's date) when the sender reports one; may lie in the future
    /// for a scheduled departure.
    pub termination_date: Option<NaiveDate>,
    /// The sender's last-modified instant, when it reports one (ordering hint).
    pub source_updated_at: Option<DateTime<Utc>>,
    /// The sender's record version / etag, when it has one.
    pub version: Option<String>,
    /// When Keycard read it (injected clock): enrichment stamps events with this.
    pub fetched_at: DateTime<Utc>,
    /// Which endpoint produced it, e.g. `gusto GET /v1/employees/{id}`.
    pub from: String,
    /// The record exactly as the API returned it.
    pub raw: Value,
}

impl SenderRecord {
    pub(crate) fn new(
        sender: SenderKind,
        id: String,
        fetched_at: DateTime<Utc>,
        from: &str,
        raw: Value,
    ) -> Self {
        Self {
            sender,
            source_person_id: id,
            tenant: None,
            email: None,
            personal_email: None,
            username: None,
            employee_number: None,
            given_name: None,
            family_name: None,
            preferred_name: None,
            display_name: None,
            department: None,
            division: None,
            title: None,
            location: None,
            cost_center: None,
            organization: None,
            worker_type: None,
            manager: None,
            status: EmploymentStatus::Unknown,
            active: false,
            hire_date: None,
            termination_date: None,
            source_updated_at: None,
            version: None,
            fetched_at,
            from: format!("{sender} {from}"),
            raw,
        }
    }

    /// "Given Family", or the display name, or the email's local part.
    pub fn full_name(&self) -> Option<String> {
        let given = self.preferred_name.as_ref().or(self.given_name.as_ref());
        match (given, &self.family_name) {
            (Some(g), Some(f)) => Some(format!("{g} {f}")),
            _ => self.display_name.clone(),
        }
    }
}

/// A whole directory as read by one pull.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Directory {
    pub sender: SenderKind,
    pub records: Vec<SenderRecord>,
    /// HTTP pages read (successful list calls).
    pub pages: u32,
    /// When the first page was read.
    pub started_at: DateTime<Utc>,
    /// When the last page was read.
    pub finished_at: DateTime<Utc>,
}

impl Directory {
    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// Fills in manager emails from the directory itself (list endpoints often give only the
    /// manager's id), so a pull needs no extra call per person.
    pub(crate) fn resolve_managers(&mut self) {
        let by_id: std::collections::HashMap<String, (Option<String>, Option<String>)> = self
            .records
            .iter()
            .map(|r| (r.source_person_id.clone(), (r.email.clone(), r.full_name())))
            .collect();
        for record in &mut self.records {
            if let Some(manager) = &mut record.manager
                && let Some(id) = &manager.source_person_id
                && let Some((email, name)) = by_id.get(id)
            {
                if manager.email.is_none() {
                    manager.email = email.clone();
                }
                if manager.display_name.is_none() {
                    manager.display_name = name.clone();
                }
            }
        }
    }
}

// ------------------------------------------------------------------------------------------
// Tolerant readers shared by the vendor mappings: nothing a server sends can panic them.

/// A non-empty trimmed string at `key` (numbers are rendered as text: some vendors send ids
/// as numbers).
pub(crate) fn text(value: &Value, key: &str) -> Option<String> {
    value.get(key).and_then(as_text)
}

pub(crate) fn as_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => {
            let s = s.trim();
            (!s.is_empty()).then(|| s.to_owned())
        }
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// A lower-cased email, when the text looks like one.
pub(crate) fn email(text: Option<String>) -> Option<String> {
    text.filter(|t| {
        let mut parts = t.splitn(2, '@');
        matches!((parts.next(), parts.next()), (Some(l), Some(d)) if !l.is_empty() && d.contains('.'))
    })
    .map(|t| t.to_lowercase())
}

/// A calendar date from `YYYY-MM-DD` or the date part of an RFC 3339 instant. BambooHR's
/// `0000-00-00` ("no date") reads as `None`.
pub(crate) fn date(text: Option<String>) -> Option<NaiveDate> {
    let text = text?;
    if let Ok(d) = NaiveDate::parse_from_str(&text, "%Y-%m-%d") {
        return Some(d);
    }
    DateTime::parse_from_rfc3339(&text)
        .ok()
        .map(|t| t.with_timezone(&Utc).date_naive())
}

pub(crate) fn instant(text: Option<String>) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(&text?)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn readers_are_tolerant() {
        let v = json!({"a": " x ", "n": 42, "e": "", "b": true});
        assert_eq!(text(&v, "a").as_deref(), Some("x"));
        assert_eq!(text(&v, "n").as_deref(), Some("42"));
        assert_eq!(text(&v, "e"), None);
        assert_eq!(text(&v, "b"), None);
        assert_eq!(text(&v, "missing"), None);
        assert_eq!(
            email(Some("Ada@Acme.Test".into())).as_deref(),
            Some("ada@acme.test")
        );
        assert_eq!(email(Some("not-an-email".into())), None);
        assert_eq!(email(Some("@acme.test".into())), None);
        assert_eq!(
            date(Some("2026-03-01".into())),
            NaiveDate::from_ymd_opt(2026, 3, 1)
        );
        assert_eq!(
            date(Some("2026-03-01T23:00:00-05:00".into())),
            NaiveDate::from_ymd_opt(2026, 3, 2)
        );
        assert_eq!(date(Some("0000-00-00".into())), None);
        assert_eq!(date(Some("soon".into())), None);
    }

    #[test]
    fn directory_fills_manager_emails_from_itself() {
        let now = Utc::now();
        let mut boss = SenderRecord::new(SenderKind::Okta, "b".into(), now, "x", Value::Null);
        boss.email = Some("boss@acme.test".into());
        boss.given_name = Some("Big".into());
        boss.family_name = Some("Boss".into());
        let mut dev = SenderRecord::new(SenderKind::Okta, "d".into(), now, "x", Value::Null);
        dev.manager = Some(ManagerRef {
            source_person_id: Some("b".into()),
            ..ManagerRef::default()
        });
        let mut dir = Directory {
            sender: SenderKind::Okta,
            records: vec![dev, boss],
            pages: 1,
            started_at: now,
            finished_at: now,
        };
        dir.resolve_managers();
        let manager = dir.records[0].manager.clone().unwrap_or_default();
        assert_eq!(manager.email.as_deref(), Some("boss@acme.test"));
        assert_eq!(manager.display_name.as_deref(), Some("Big Boss"));
    }
}
