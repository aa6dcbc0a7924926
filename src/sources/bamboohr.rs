//! BambooHR webhooks (inbound-sources §5.1).
//!
//! * `X-BambooHR-Signature` = lower-case hex HMAC-SHA256, keyed by the webhook's private key
//!   (its text, not hex-decoded), over the raw body immediately followed by
//!   `X-BambooHR-Timestamp` (Unix seconds); the timestamp must be within `tolerance_secs`.
//! * Field-based payloads (`{"employees":[{"id","action","changedFields","fields":{...}}]}`)
//!   carry the monitored fields' values: each employee becomes one event, classified by the
//!   fields that changed: Employment Status / Status decide departure, leave, return and
//!   rehire; anything else is an update (department, title, ... are what rules read).
//! * Event-based payloads (`{"type":"employee.updated","data":{"employeeId",...}}`) carry
//!   ids and changed field names only: notices.
//! * No delivery id: the dedupe key is the body's hash (plus the employee id in a batch).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use super::payload::{self, body_key, key};
use super::signing::{
    Algorithm, Encoding, KeyEncoding, KeyRing, check_window, decode_signature, header,
    parse_timestamp, required_header,
};
use super::{AuthError, Delivery, Outcome, PayloadError, Rejection};
use super::{Kind, Source};
use crate::ingest::{
    Attr, Completeness, EventKind, LifecycleEvent, Origin, PersonAttributes, Record,
};
use crate::settings::ConfigError;

pub const SIGNATURE_HEADER: &str = "x-bamboohr-signature";
pub const TIMESTAMP_HEADER: &str = "x-bamboohr-timestamp";
/// Sent when the webhook was created with `includeCompanyDomain`.
pub const COMPANY_HEADER: &str = "company-domain";

/// Canonical names accepted as keys of `fields`, with BambooHR's standard field names.
pub const DEFAULT_FIELDS: [(&str, &str); 14] = [
    ("employee_number", "Employee #"),
    ("email", "Work Email"),
    ("first_name", "First name"),
    ("last_name", "Last name"),
    ("preferred_name", "Preferred name"),
    ("department", "Department"),
    ("division", "Division"),
    ("title", "Job Title"),
    ("location", "Location"),
    ("reports_to", "Reporting to"),
    ("employment_status", "Employment Status"),
    ("employment_status_date", "Employment Status: Date"),
    ("status", "Status"),
    ("hire_date", "Hire Date"),
];

/// Validated `[[sources]]` options of a `bamboohr` source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// Canonical name -> BambooHR field name, lower-cased for matching.
    fields: BTreeMap<&'static str, String>,
    /// Lower-cased Employment Status values meaning the person left.
    terminated: Vec<String>,
    /// Lower-cased Employment Status values meaning a leave (`None`: contains "leave").
    leave: Option<Vec<String>>,
}

impl Settings {
    pub fn from_config(raw: &Options, key: &str) -> Result<Self, ConfigError> {
        let mut fields: BTreeMap<&'static str, String> = DEFAULT_FIELDS
            .iter()
            .map(|(k, v)| (*k, v.to_lowercase()))
            .collect();
        for (name, field) in raw.fields.iter().flatten() {
            let Some((canonical, _)) = DEFAULT_FIELDS.iter().find(|(k, _)| k == name) else {
                let known: Vec<&str> = DEFAULT_FIELDS.iter().map(|(k, _)| *k).collect();
                return Err(ConfigError::invalid(
                    format!("{key}.fields.{name}"),
                    format!("unknown attribute; use one of {}", known.join(", ")),
                ));
            };
            if field.trim().is_empty() {
                return Err(ConfigError::invalid(
                    format!("{key}.fields.{name}"),
                    "give the BambooHR field name (or alias) as it appears in payloads",
                ));
            }
            fields.insert(canonical, field.trim().to_lowercase());
        }
        let lower =
            |v: &Option<Vec<String>>, name: &str| -> Result<Option<Vec<String>>, ConfigError> {
                match v {
                    None => Ok(None),
                    Some(list) if list.iter().any(|s| s.trim().is_empty()) || list.is_empty() => {
                        Err(ConfigError::invalid(
                            format!("{key}.{name}"),
                            "list at least one non-empty Employment Status value",
                        ))
                    }
                    Some(list) => Ok(Some(list.iter().map(|s| s.trim().to_lowercase()).collect())),
                }
            };
        Ok(Self {
            fields,
            terminated: lower(&raw.terminated_statuses, "terminated_statuses")?
                .unwrap_or_else(|| vec!["terminated".to_owned()]),
            leave: lower(&raw.leave_statuses, "leave_statuses")?,
        })
    }

    fn is_terminated(&self, status: &str) -> bool {
        self.terminated.contains(&status.trim().to_lowercase())
    }

    fn is_leave(&self, status: &str) -> bool {
        let status = status.trim().to_lowercase();
        match &self.leave {
            Some(list) => list.contains(&status),
            None => status.contains("leave"),
        }
    }
}

impl Default for Settings {
    fn default() -> Self {
        // Defaults cannot fail to validate.
        Self::from_config(&Options::default(), "sources[0]").unwrap_or(Self {
            fields: BTreeMap::new(),
            terminated: Vec::new(),
            leave: None,
        })
    }
}

#[derive(Debug, Clone)]
pub struct BambooHr {
    keys: KeyRing,
    tolerance: std::time::Duration,
    settings: Settings,
    /// How the payload's date-only dates are read (the source's or organization's zone).
    dates: super::dates::LocalDates,
}

impl BambooHr {
    pub fn build(source: &Source, settings: &Settings) -> Result<Self, ConfigError> {
        let keys = KeyRing::new(Algorithm::Sha256, &source.secrets, KeyEncoding::Raw)
            .map_err(|(i, e)| source.secret_error(i, e))?;
        Ok(Self {
            keys,
            tolerance: source.tolerance,
            settings: settings.clone(),
            dates: source.dates,
        })
    }

    /// Checks the signature over `body ‖ timestamp`, then the timestamp window.
    pub fn verify(&self, d: &Delivery<'_>) -> Result<usize, AuthError> {
        let signature = required_header(d.headers, SIGNATURE_HEADER)?;
        let timestamp = required_header(d.headers, TIMESTAMP_HEADER)?;
        let tag = decode_signature(
            SIGNATURE_HEADER,
            signature,
            None,
            Encoding::Hex,
            Algorithm::Sha256,
        )?;
        let index = self
            .keys
            .find(&[d.body, timestamp.as_bytes()], &[tag])
            .ok_or(AuthError::SignatureMismatch)?;
        let ts = parse_timestamp(TIMESTAMP_HEADER, timestamp)?;
        check_window(ts, d.received_at, self.tolerance)?;
        Ok(index)
    }

    pub fn receive(&self, d: &Delivery<'_>) -> Result<Outcome, Rejection> {
        let key_index = self.verify(d)?;
        let tenant = header(d.headers, COMPANY_HEADER)
            .ok()
            .flatten()
            .map(str::to_owned);
        let doc = payload::object(d.body)?;
        let records = if doc.contains_key("employees") {
            self.field_based(d, &doc, tenant)?
        } else {
            vec![self.event_based(d, &doc, tenant)?]
        };
        Ok(Outcome::Accepted { key_index, records })
    }

    /// `{"type": "employee.updated", "timestamp": ..., "data": {"companyId", "employeeId", "changedFields"}}`
    fn event_based(
        &self,
        d: &Delivery<'_>,
        doc: &Map<String, Value>,
        tenant: Option<String>,
    ) -> Result<Record, PayloadError> {
        let event_type = payload::required_str(doc.get("type"), "type")?;
        let occurred_at = doc
            .get("timestamp")
            .and_then(payload::instant)
            .unwrap_or(d.received_at);
        let dedupe = key(d.source, body_key(d.body));
        let data = match doc.get("data") {
            Some(Value::Object(data)) => Some(data),
            None | Some(Value::Null) => None,
            Some(other) => {
                return Err(PayloadError::new(
                    "data",
                    format!("expected an object, got {}", payload::json_type(other)),
                ));
            }
        };
        let kind = match event_type {
            "employee.created" => EventKind::Hired,
            "employee.updated" | "employee.update" => EventKind::Updated,
            "employee.deleted" => {
                let id = data
                    .and_then(|m| payload::id_text(m.get("employeeId"), "data.employeeId").ok());
                return Ok(payload::ignored(
                    dedupe,
                    Some(event_type),
                    id,
                    occurred_at,
                    d.received_at,
                    d.body,
                    "record deleted in BambooHR: not a departure (terminations arrive as status changes)",
                )
                .into());
            }
            other => {
                return Ok(payload::ignored(
                    dedupe,
                    Some(other),
                    None,
                    occurred_at,
                    d.received_at,
                    d.body,
                    format!(
                        "BambooHR event type {:?} is not mapped",
                        payload::truncate(other)
                    ),
                )
                .into());
            }
        };
        let data = data.ok_or_else(|| PayloadError::missing("data"))?;
        let id = payload::person_id(data.get("employeeId"), "data.employeeId")?;
        let mut event = LifecycleEvent::new(
            dedupe,
            kind,
            payload::person(id),
            occurred_at,
            d.received_at.min(occurred_at),
            d.received_at,
            d.body,
        );
        event.completeness = Completeness::Notice;
        let mut origin = Origin::new(event_type);
        origin.tenant = tenant.or_else(|| {
            data.get("companyId")
                .and_then(|v| payload::id_text(Some(v), "data.companyId").ok())
        });
        origin.changed_fields = string_list(data.get("changedFields"));
        event.origin = Some(origin);
        Ok(event.into())
    }

    /// `{"employees": [{"id", "action", "timestamp", "changedFields", "fields": {...}}]}`
    fn field_based(
        &self,
        d: &Delivery<'_>,
        doc: &Map<String, Value>,
        tenant: Option<String>,
    ) -> Result<Vec<Record>, PayloadError> {
        let employees = match doc.get("employees") {
            Some(Value::Array(list)) => list,
            Some(other) => {
                return Err(PayloadError::new(
                    "employees",
                    format!("expected an array, got {}", payload::json_type(other)),
                ));
            }
            None => return Err(PayloadError::missing("employees")),
        };
        let body_id = body_key(d.body);
        let mut records = Vec::with_capacity(employees.len());
        for (i, entry) in employees.iter().enumerate() {
            let path = format!("employees[{i}]");
            let Value::Object(entry) = entry else {
                return Err(PayloadError::new(
                    path,
                    format!("expected an object, got {}", payload::json_type(entry)),
                ));
            };
            records.push(self.employee(d, entry, &path, &body_id, tenant.clone())?);
        }
        Ok(records)
    }

    fn employee(
        &self,
        d: &Delivery<'_>,
        entry: &Map<String, Value>,
        path: &str,
        body_id: &str,
        tenant: Option<String>,
    ) -> Result<Record, PayloadError> {
        let id = payload::person_id(entry.get("id"), &format!("{path}.id"))?;
        let dedupe = key(d.source, format!("{body_id}#{}", id.as_str()));
        let action = payload::opt_str(entry.get("action"))
            .unwrap_or("Updated")
            .to_ascii_lowercase();
        let event_type = format!("employee_with_fields.{action}");
        let occurred_at = entry
            .get("timestamp")
            .and_then(payload::instant)
            .unwrap_or(d.received_at);
        let fields: Map<String, Value> = match entry.get("fields") {
            Some(Value::Object(f)) => f
                .iter()
                .map(|(k, v)| (k.trim().to_lowercase(), v.clone()))
                .collect(),
            None | Some(Value::Null) => Map::new(),
            Some(other) => {
                return Err(PayloadError::new(
                    format!("{path}.fields"),
                    format!("expected an object, got {}", payload::json_type(other)),
                ));
            }
        };
        let changed = string_list(entry.get("changedFields"));
        let changed_lower: Vec<String> = changed.iter().map(|c| c.trim().to_lowercase()).collect();
        let field = |canonical: &str| -> Option<&Value> {
            let name = self.settings.fields.get(canonical)?;
            let raw = fields.get(name)?;
            // Values come as {"value": ...}; a bare value is accepted too.
            Some(match raw {
                Value::Object(o) => o.get("value").unwrap_or(&Value::Null),
                other => other,
            })
        };
        let did_change = |canonical: &str| -> bool {
            match self.settings.fields.get(canonical) {
                // Without changedFields every reported value counts as news.
                Some(name) if changed.is_empty() => fields.contains_key(name),
                Some(name) => changed_lower.contains(name),
                None => false,
            }
        };

        if action == "deleted" {
            return Ok(payload::ignored(
                dedupe,
                Some(&event_type),
                Some(id.as_str().to_owned()),
                occurred_at,
                d.received_at,
                d.body,
                "record deleted in BambooHR: not a departure (terminations arrive as status changes)",
            )
            .into());
        }

        let text = |canonical: &str| field(canonical).and_then(Value::as_str).map(str::trim);
        let date_of = |canonical: &str| field(canonical).and_then(payload::date);
        let emp_status = text("employment_status").filter(|s| !s.is_empty());
        let status = text("status").filter(|s| !s.is_empty());

        let (kind, date) = if action == "created" {
            (EventKind::Hired, date_of("hire_date"))
        } else if did_change("employment_status") || did_change("status") {
            let status_date = date_of("employment_status_date");
            match (emp_status, status) {
                (Some(e), _) if self.settings.is_terminated(e) => {
                    (EventKind::Departed, status_date)
                }
                (_, Some(s)) if s.eq_ignore_ascii_case("inactive") && did_change("status") => {
                    (EventKind::Departed, status_date)
                }
                (Some(e), _) if self.settings.is_leave(e) => (EventKind::LeaveStarted, status_date),
                (_, Some(s)) if s.eq_ignore_ascii_case("active") && did_change("status") => {
                    (EventKind::Rehired, date_of("hire_date").or(status_date))
                }
                (Some(_), _) if did_change("employment_status") => {
                    // An active-type status (Full-Time, ...) after a leave: the return. For
                    // someone already active this changes nothing.
                    (EventKind::LeaveEnded, status_date)
                }
                _ => (EventKind::Updated, None),
            }
        } else {
            (EventKind::Updated, None)
        };

        let mut person = PersonAttributes::new(id);
        // A reported field with a null value was cleared in BambooHR.
        let attr = |canonical: &str| -> Attr<String> { payload::text_attr(field(canonical), true) };
        person.department = attr("department");
        person.division = attr("division");
        person.title = attr("title");
        person.location = attr("location");
        person.email = match field("email") {
            None => Attr::Absent,
            Some(Value::Null) => Attr::Null,
            Some(v) => payload::email(v.as_str()).map_or(Attr::Absent, Attr::Value),
        };
        let first = text("first_name").filter(|s| !s.is_empty());
        let last = text("last_name").filter(|s| !s.is_empty());
        let preferred = text("preferred_name").filter(|s| !s.is_empty());
        let given = preferred.or(first);
        person.name = match (given, last) {
            (Some(g), Some(l)) => Attr::Value(format!("{g} {l}")),
            // Half a name would overwrite a whole one; leave it to a later full report.
            _ => Attr::Absent,
        };
        if let Some(number) =
            field("employee_number").and_then(|v| payload::id_text(Some(v), "").ok())
        {
            let mut attributes = Map::new();
            attributes.insert("employee_number".into(), Value::String(number));
            person.attributes = Attr::Value(attributes);
        }

        let mut event = LifecycleEvent::new(
            dedupe,
            kind,
            person,
            occurred_at,
            self.dates.effective(kind, date, occurred_at, d.received_at),
            d.received_at,
            d.body,
        );
        event.completeness = Completeness::Partial;
        let mut origin = Origin::new(event_type);
        origin.tenant = tenant;
        origin.changed_fields = changed;
        origin.effective_date = date;
        event.origin = Some(origin);
        Ok(event.into())
    }
}

fn string_list(value: Option<&Value>) -> Vec<String> {
    value
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect()
}

/// Signs a delivery as BambooHR does: `(X-BambooHR-Timestamp, X-BambooHR-Signature)`.
pub fn sign(private_key: &str, body: &[u8], timestamp: DateTime<Utc>) -> Option<(String, String)> {
    let ts = timestamp.timestamp().to_string();
    let key = super::signing::HmacKey::new(Algorithm::Sha256, private_key.as_bytes()).ok()?;
    let tag = key.sign(&[body, ts.as_bytes()]);
    Some((ts, hex::encode(tag)))
}

/// The `[[sources]]` keys of a `bamboohr` source, as written.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Options {
    /// Canonical attribute -> BambooHR field name (or alias) of field-based payloads.
    pub fields: Option<BTreeMap<String, String>>,
    /// Employment Status values meaning the person left (default `["Terminated"]`).
    pub terminated_statuses: Option<Vec<String>>,
    /// Employment Status values meaning a leave (default: any value containing "leave").
    pub leave_statuses: Option<Vec<String>>,
}

impl Kind for BambooHr {
    const NAME: &'static str = "bamboohr";
    const KEYS: &'static [&'static str] = &["fields", "terminated_statuses", "leave_statuses"];
    const SIGNED_TIMESTAMP: bool = true;

    fn build(source: &Source) -> Result<Self, ConfigError> {
        let settings = Settings::from_config(&source.options()?, &source.key)?;
        BambooHr::build(source, &settings)
    }

    fn receive(&self, delivery: &Delivery<'_>) -> Result<Outcome, Rejection> {
        BambooHr::receive(self, delivery)
    }
}
