//! The simulator's sender-neutral picture of a person, from which each vendor module renders
//! its own JSON, and the control API's create / change inputs.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::error::SimError;
use crate::sender_api::SenderKind;

/// Where the person stands. Scheduled changes (a future termination or start date) take
/// effect when the simulator clock reaches them ([`Person::status_at`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PersonStatus {
    Pending,
    Active,
    OnLeave,
    Suspended,
    Terminated,
}

impl PersonStatus {
    pub fn parse(text: &str) -> Option<Self> {
        serde_json::from_value(Value::String(text.to_owned())).ok()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Person {
    pub id: String,
    /// Creation order: list order and cursor position.
    pub seq: u64,
    pub first_name: String,
    pub last_name: String,
    pub preferred_name: Option<String>,
    pub work_email: Option<String>,
    pub personal_email: Option<String>,
    pub department: Option<String>,
    pub title: Option<String>,
    pub division: Option<String>,
    pub location: Option<String>,
    pub employee_number: Option<String>,
    /// The manager's id in this simulator.
    pub manager_id: Option<String>,
    pub worker_type: Option<String>,
    pub status: PersonStatus,
    pub hire_date: Option<NaiveDate>,
    pub termination_date: Option<NaiveDate>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Bumped on every change.
    pub version: u64,
    /// Control-API field names changed by the last change (BambooHR `changedFields`, HiBob
    /// `fieldIds`).
    pub changed: Vec<String>,
}

impl Person {
    /// The status in force at `now`: a termination dated today or earlier is effective, a
    /// pending hire whose start date has come is active.
    pub fn status_at(&self, now: DateTime<Utc>) -> PersonStatus {
        let today = now.date_naive();
        match self.status {
            PersonStatus::Active | PersonStatus::OnLeave | PersonStatus::Suspended
                if self.termination_date.is_some_and(|d| d <= today) =>
            {
                PersonStatus::Terminated
            }
            PersonStatus::Pending if self.hire_date.is_some_and(|d| d <= today) => {
                PersonStatus::Active
            }
            other => other,
        }
    }

    pub fn display_name(&self) -> String {
        let given = self.preferred_name.as_deref().unwrap_or(&self.first_name);
        format!("{given} {}", self.last_name)
    }

    /// The address the sender would show as the login (work email, else a made-up one).
    pub fn login(&self, domain: &str) -> String {
        self.work_email.clone().unwrap_or_else(|| {
            format!(
                "{}.{}.{}@{domain}",
                self.first_name.to_lowercase(),
                self.last_name.to_lowercase(),
                self.seq
            )
        })
    }
}

/// `POST /_sim/people`: every field optional; the simulator mints the rest.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PersonInput {
    pub id: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub preferred_name: Option<String>,
    pub work_email: Option<String>,
    pub personal_email: Option<String>,
    pub department: Option<String>,
    pub title: Option<String>,
    pub division: Option<String>,
    pub location: Option<String>,
    pub employee_number: Option<String>,
    pub manager_id: Option<String>,
    pub worker_type: Option<String>,
    pub status: Option<PersonStatus>,
    pub hire_date: Option<NaiveDate>,
    pub termination_date: Option<NaiveDate>,
}

/// Field names a change (`PATCH /_sim/people/{id}`) may carry.
pub(super) const PATCHABLE: &[&str] = &[
    "first_name",
    "last_name",
    "preferred_name",
    "work_email",
    "personal_email",
    "department",
    "title",
    "division",
    "location",
    "employee_number",
    "manager_id",
    "worker_type",
    "status",
    "hire_date",
    "termination_date",
];

/// A vendor-looking id for the `seq`-th person: deterministic, so runs are reproducible.
pub(super) fn mint_id(kind: SenderKind, seq: u64) -> String {
    match kind {
        SenderKind::Gusto => {
            uuid::Uuid::from_u128(0x6a7e_0000_0000_4000_8000_0000_0000_0000 | u128::from(seq))
                .hyphenated()
                .to_string()
        }
        SenderKind::HiBob => (3_332_883_800_000_000_000u64.saturating_add(seq)).to_string(),
        SenderKind::Okta => format!("00u{seq:017}"),
        SenderKind::Graph => {
            uuid::Uuid::from_u128(0x4f1c_0000_0000_4000_9000_0000_0000_0000 | u128::from(seq))
                .hyphenated()
                .to_string()
        }
        SenderKind::BambooHr => seq.to_string(),
    }
}

impl PersonInput {
    pub fn build(self, kind: SenderKind, seq: u64, now: DateTime<Utc>) -> Result<Person, SimError> {
        let id = match self.id {
            Some(id) if id.trim().is_empty() || id.contains('/') => {
                return Err(SimError::invalid(
                    "id: must be non-empty and contain no '/'",
                ));
            }
            Some(id) => id,
            None => mint_id(kind, seq),
        };
        let today = now.date_naive();
        let status = self.status.unwrap_or(match self.hire_date {
            Some(d) if d > today => PersonStatus::Pending,
            _ => PersonStatus::Active,
        });
        let person = Person {
            id,
            seq,
            first_name: self.first_name.unwrap_or_else(|| format!("Given{seq}")),
            last_name: self.last_name.unwrap_or_else(|| format!("Family{seq}")),
            preferred_name: self.preferred_name,
            work_email: self.work_email.map(|e| e.to_lowercase()),
            personal_email: self.personal_email,
            department: self.department,
            title: self.title,
            division: self.division,
            location: self.location,
            employee_number: self.employee_number.or_else(|| Some(format!("E{seq:05}"))),
            manager_id: self.manager_id,
            worker_type: self.worker_type,
            status,
            hire_date: self.hire_date.or(Some(today)),
            termination_date: self.termination_date,
            created_at: now,
            updated_at: now,
            version: 1,
            changed: Vec::new(),
        };
        check_email(person.work_email.as_deref())?;
        Ok(person)
    }
}

fn check_email(email: Option<&str>) -> Result<(), SimError> {
    match email {
        Some(e) if !e.contains('@') => Err(SimError::invalid(format!(
            "work_email: not an email address: {e}"
        ))),
        _ => Ok(()),
    }
}

fn opt_text(key: &str, value: &Value) -> Result<Option<String>, SimError> {
    match value {
        Value::Null => Ok(None),
        Value::String(s) if !s.trim().is_empty() => Ok(Some(s.trim().to_owned())),
        _ => Err(SimError::invalid(format!(
            "{key}: a non-empty string or null"
        ))),
    }
}

fn opt_date(key: &str, value: &Value) -> Result<Option<NaiveDate>, SimError> {
    match value {
        Value::Null => Ok(None),
        Value::String(s) => NaiveDate::parse_from_str(s, "%Y-%m-%d")
            .map(Some)
            .map_err(|_| SimError::invalid(format!("{key}: a YYYY-MM-DD date or null"))),
        _ => Err(SimError::invalid(format!(
            "{key}: a YYYY-MM-DD date or null"
        ))),
    }
}

impl Person {
    /// Applies a change object; `null` clears an optional field. Records what changed.
    pub fn apply(
        &mut self,
        patch: &Map<String, Value>,
        now: DateTime<Utc>,
    ) -> Result<(), SimError> {
        let mut next = self.clone();
        let mut changed = Vec::new();
        for (key, value) in patch {
            let before = serde_json::to_value(&next).unwrap_or(Value::Null);
            match key.as_str() {
                "first_name" | "last_name" => {
                    let text = opt_text(key, value)?
                        .ok_or_else(|| SimError::invalid(format!("{key}: cannot be cleared")))?;
                    if key == "first_name" {
                        next.first_name = text;
                    } else {
                        next.last_name = text;
                    }
                }
                "preferred_name" => next.preferred_name = opt_text(key, value)?,
                "work_email" => {
                    next.work_email = opt_text(key, value)?.map(|e| e.to_lowercase());
                    check_email(next.work_email.as_deref())?;
                }
                "personal_email" => next.personal_email = opt_text(key, value)?,
                "department" => next.department = opt_text(key, value)?,
                "title" => next.title = opt_text(key, value)?,
                "division" => next.division = opt_text(key, value)?,
                "location" => next.location = opt_text(key, value)?,
                "employee_number" => next.employee_number = opt_text(key, value)?,
                "manager_id" => next.manager_id = opt_text(key, value)?,
                "worker_type" => next.worker_type = opt_text(key, value)?,
                "status" => {
                    next.status =
                        value
                            .as_str()
                            .and_then(PersonStatus::parse)
                            .ok_or_else(|| {
                                SimError::invalid(
                                    "status: pending, active, on_leave, suspended or terminated",
                                )
                            })?;
                }
                "hire_date" => next.hire_date = opt_date(key, value)?,
                "termination_date" => next.termination_date = opt_date(key, value)?,
                other => {
                    return Err(SimError::invalid(format!(
                        "unknown field {other}; use {}",
                        PATCHABLE.join(", ")
                    )));
                }
            }
            if serde_json::to_value(&next).unwrap_or(Value::Null) != before {
                changed.push(key.clone());
            }
        }
        if !changed.is_empty() {
            next.version += 1;
            next.updated_at = now;
        }
        next.changed = changed;
        *self = next;
        Ok(())
    }
}

/// `YYYY-MM-DD` for JSON.
pub(super) fn day(d: Option<NaiveDate>) -> Value {
    d.map_or(Value::Null, |d| {
        Value::String(d.format("%Y-%m-%d").to_string())
    })
}

/// RFC 3339 with milliseconds and `Z`.
pub(super) fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-28T10:00:00Z")
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_default()
    }

    #[test]
    fn ids_look_like_the_vendors() {
        assert_eq!(mint_id(SenderKind::Okta, 42), "00u00000000000000042");
        assert_eq!(mint_id(SenderKind::Okta, 42).len(), 20);
        assert_eq!(mint_id(SenderKind::BambooHr, 7), "7");
        assert_eq!(mint_id(SenderKind::HiBob, 1), "3332883800000000001");
        assert!(uuid::Uuid::parse_str(&mint_id(SenderKind::Gusto, 3)).is_ok());
        assert_ne!(mint_id(SenderKind::Graph, 3), mint_id(SenderKind::Graph, 4));
    }

    #[test]
    fn changes_record_what_changed_and_bump_the_version() {
        let mut p = PersonInput::default()
            .build(SenderKind::Gusto, 1, now())
            .unwrap_or_else(|e| panic!("{e}"));
        let patch = json!({"department": "Sales", "title": null, "first_name": "Given1"});
        p.apply(patch.as_object().unwrap_or(&Map::new()), now())
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(p.changed, ["department"]);
        assert_eq!(p.version, 2);
        let bad = json!({"salary": 1});
        assert!(
            p.apply(bad.as_object().unwrap_or(&Map::new()), now())
                .is_err()
        );
        assert_eq!(p.version, 2);
    }

    #[test]
    fn scheduled_changes_take_effect_with_the_clock() {
        let mut p = PersonInput {
            termination_date: NaiveDate::from_ymd_opt(2026, 12, 1),
            ..PersonInput::default()
        }
        .build(SenderKind::Okta, 1, now())
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(p.status_at(now()), PersonStatus::Active);
        assert_eq!(
            p.status_at(now() + chrono::Duration::days(3)),
            PersonStatus::Terminated
        );
        p.status = PersonStatus::Pending;
        p.termination_date = None;
        p.hire_date = NaiveDate::from_ymd_opt(2026, 11, 30);
        assert_eq!(p.status_at(now()), PersonStatus::Pending);
        assert_eq!(
            p.status_at(now() + chrono::Duration::days(2)),
            PersonStatus::Active
        );
    }
}
