//! `keycard import`: the current staff, from a CSV file or from a SCIM source already
//! connected, into the journal as people — without a single Admin API write.
//!
//! Each row becomes a lifecycle event of the source the HR feed will use (so later
//! webhooks update the same people), deduplicated on its content: importing the same file
//! twice changes nothing. Every good row is committed in **one** transaction with the
//! people it creates and their account links, so an import is whole or absent; a bad row
//! is reported with its line number and left out. Existing members are linked by their
//! exact (case-folded) address, never by the API's looser matching.

use std::collections::{HashMap, HashSet};
use std::io::Read;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Map, Value, json};

use super::AdoptionError;
use super::progress::Progress;
use crate::ingest::{DedupeKey, EventKind, LifecycleEvent, NativeEvent, sha256_hex};
use crate::journal::{Journal, ObjectKind, PersonRow, PersonStatus, Tx, fold_email};

/// Columns with a meaning; any other column becomes `person.attributes.<column>`.
const ID: &[&str] = &["id", "employee_id", "person_id"];
const EMAIL: &[&str] = &["email", "work_email"];
/// The free-text fields of the native person (`name` .. `manager_email`).
fn is_field(header: &str) -> bool {
    crate::rules::PERSON_FIELDS[2..10].contains(&header)
}
const GROUPS: &str = "groups";
const STATUS: &str = "status";

/// A row that cannot be imported, by its line in the file.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RowError {
    pub line: u64,
    pub id: Option<String>,
    pub error: String,
}

/// What an import did (or, with `--check`, would do).
#[derive(Debug, Clone, Default, Serialize)]
pub struct ImportReport {
    pub source: String,
    /// Data rows read (the header excluded).
    pub rows: u64,
    pub created: u64,
    pub updated: u64,
    /// Rows already imported exactly so (an earlier import of the same data).
    pub unchanged: u64,
    /// People linked to an existing member by exact address.
    pub linked: u64,
    pub errors: Vec<RowError>,
    /// `false` with `--check`: nothing was written.
    pub written: bool,
    /// When the organization mirror used for linking was read whole (`None`: never, so
    /// nobody was linked; the first reconcile links them).
    pub mirror_refreshed_at: Option<DateTime<Utc>>,
}

/// One person as a row describes them.
#[derive(Debug, Clone)]
pub struct StaffRow {
    pub line: u64,
    pub id: String,
    pub person: Map<String, Value>,
    pub status: PersonStatus,
}

fn pick(headers: &[String], names: &[&str]) -> Option<usize> {
    headers.iter().position(|h| names.contains(&h.as_str()))
}

/// Reads a staff CSV (header row first). Rows that cannot be a person are returned as
/// errors with their line number; a repeated id or address is an error on its second line.
pub fn read_csv(mut reader: impl Read) -> Result<(Vec<StaffRow>, Vec<RowError>), AdoptionError> {
    let mut text = String::new();
    reader
        .read_to_string(&mut text)
        .map_err(|e| AdoptionError::Input(format!("not readable as UTF-8 text: {e}")))?;
    let mut lines = LineCounter::new(&text);
    let mut csv = csv::ReaderBuilder::new()
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let headers: Vec<String> = csv
        .headers()
        .map_err(|e| AdoptionError::Input(format!("line 1: {e}")))?
        .iter()
        .map(|h| h.trim().trim_start_matches('\u{feff}').to_ascii_lowercase())
        .collect();
    let id_col = pick(&headers, ID).ok_or_else(|| {
        AdoptionError::Input("line 1: the header has no id column (id or employee_id)".into())
    })?;
    let email_col = pick(&headers, EMAIL).ok_or_else(|| {
        AdoptionError::Input("line 1: the header has no email column (email or work_email)".into())
    })?;
    let mut rows = Vec::new();
    let mut errors = Vec::new();
    let mut ids: HashMap<String, u64> = HashMap::new();
    let mut emails: HashMap<String, u64> = HashMap::new();
    for record in csv.records() {
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                let line = e.position().map_or(0, |p| lines.line_at(p.byte()));
                errors.push(RowError {
                    line,
                    id: None,
                    error: format!("not readable as CSV: {e}"),
                });
                continue;
            }
        };
        let line = record.position().map_or(0, |p| lines.line_at(p.byte()));
        let id = record.get(id_col).unwrap_or_default().to_owned();
        let fail = |error: String| RowError {
            line,
            id: (!id.is_empty()).then(|| id.clone()),
            error,
        };
        if record.len() != headers.len() {
            errors.push(fail(format!(
                "has {} fields, the header has {}",
                record.len(),
                headers.len()
            )));
            continue;
        }
        let mut person = Map::new();
        let mut attributes = Map::new();
        let mut status = PersonStatus::Active;
        let mut bad = None;
        for (i, (header, value)) in headers.iter().zip(record.iter()).enumerate() {
            if value.is_empty() {
                continue;
            }
            if i == id_col {
                person.insert("id".into(), json!(value));
            } else if i == email_col {
                person.insert("email".into(), json!(value));
            } else if is_field(header) {
                person.insert(header.clone(), json!(value));
            } else if header == GROUPS {
                let groups: Vec<&str> = value
                    .split([';', '|'])
                    .map(str::trim)
                    .filter(|g| !g.is_empty())
                    .collect();
                person.insert("groups".into(), json!(groups));
            } else if header == STATUS {
                match value.to_ascii_lowercase().as_str() {
                    "active" => status = PersonStatus::Active,
                    "on_leave" | "leave" => status = PersonStatus::OnLeave,
                    "departed" | "terminated" => status = PersonStatus::Departed,
                    other => {
                        bad = Some(format!(
                            "status '{other}' is not one of: active, on_leave, departed"
                        ));
                    }
                }
            } else if !header.is_empty() {
                attributes.insert(header.clone(), json!(value));
            }
        }
        if let Some(error) = bad {
            errors.push(fail(error));
            continue;
        }
        if id.is_empty() {
            errors.push(fail("id is empty".into()));
            continue;
        }
        if !attributes.is_empty() {
            person.insert("attributes".into(), Value::Object(attributes));
        }
        if let Some(first) = ids.get(&id) {
            errors.push(fail(format!("id {id} is already on line {first}")));
            continue;
        }
        if let Some(email) = person.get("email").and_then(Value::as_str) {
            let key = fold_email(email);
            if let Some(first) = emails.get(&key) {
                errors.push(fail(format!(
                    "address {email} is already on line {first} (one address, one person)"
                )));
                continue;
            }
            emails.insert(key, line);
        }
        ids.insert(id.clone(), line);
        rows.push(StaffRow {
            line,
            id,
            person,
            status,
        });
    }
    Ok((rows, errors))
}

/// The line a record starts on. The CSV reader places a record after blank lines at the
/// first of them; people count lines from the record's own text.
struct LineCounter<'a> {
    text: &'a [u8],
    at: usize,
    line: u64,
}

impl<'a> LineCounter<'a> {
    fn new(text: &'a str) -> Self {
        Self {
            text: text.as_bytes(),
            at: 0,
            line: 1,
        }
    }

    /// Offsets only grow, so counting is linear over the file.
    fn line_at(&mut self, byte: u64) -> u64 {
        let mut start = usize::try_from(byte)
            .unwrap_or(usize::MAX)
            .min(self.text.len());
        while start < self.text.len() && matches!(self.text[start], b'\n' | b'\r') {
            start += 1;
        }
        if start >= self.at {
            self.line += self.text[self.at..start]
                .iter()
                .filter(|b| **b == b'\n')
                .count() as u64;
            self.at = start;
        }
        self.line
    }
}

/// The event that brings a person from what the journal knows to what the row says.
fn kind_for(known: Option<PersonStatus>, wanted: PersonStatus) -> EventKind {
    match (wanted, known) {
        (PersonStatus::Departed, _) => EventKind::Departed,
        (PersonStatus::OnLeave, _) => EventKind::LeaveStarted,
        (_, None | Some(PersonStatus::New)) => EventKind::Hired,
        (_, Some(PersonStatus::Departed)) => EventKind::Rehired,
        (_, Some(PersonStatus::OnLeave)) => EventKind::LeaveEnded,
        (_, Some(PersonStatus::Active)) => EventKind::Updated,
    }
}

/// Rows as events of `source`, validated exactly as a webhook of the native format is.
pub fn events_for(
    rows: &[StaffRow],
    source: &str,
    known: &HashMap<String, PersonStatus>,
    now: DateTime<Utc>,
) -> (Vec<LifecycleEvent>, Vec<RowError>) {
    let mut events = Vec::with_capacity(rows.len());
    let mut errors = Vec::new();
    for row in rows {
        let was = known.get(&row.id).copied();
        let kind = kind_for(was, row.status);
        // Where the person stands only matters to the key when it differs from the row (a
        // leaver imported as active again is a rehire, not a repeat of the first import).
        let from = was
            .filter(|w| *w != row.status && *w != PersonStatus::New)
            .map_or("", PersonStatus::as_str);
        let body = json!({
            "type": kind.native_type(),
            "occurred_at": now.to_rfc3339(),
            "person": row.person,
        });
        let bytes = body.to_string().into_bytes();
        match NativeEvent::parse(&bytes) {
            Ok(event) => {
                // The content, not the time, names the delivery: the same row imported again
                // is a duplicate and changes nothing.
                let content =
                    json!({ "status": row.status.as_str(), "from": from, "person": row.person });
                let digest = sha256_hex(content.to_string().as_bytes());
                events.push(event.into_lifecycle(
                    DedupeKey {
                        source: source.to_owned(),
                        delivery_id: format!("import-{}", &digest[..32]),
                    },
                    now,
                    &bytes,
                ));
            }
            Err(e) => errors.push(RowError {
                line: row.line,
                id: Some(row.id.clone()),
                error: format!("{}: {}", e.field(), e.problem()),
            }),
        }
    }
    (events, errors)
}

/// What the journal knows of a source's people: id -> status.
pub async fn known_people(
    tx: &mut Tx,
    source: &str,
) -> Result<HashMap<String, PersonStatus>, AdoptionError> {
    Ok(tx
        .all_people()
        .await?
        .into_iter()
        .filter(|p| p.source == source)
        .map(|p| (p.source_person_id, p.status))
        .collect())
}

/// Commits the events, applies them to their people and links existing members, all in
/// one transaction. Writes nothing to the organization.
pub async fn commit(
    journal: &Journal,
    events: &[LifecycleEvent],
    now: DateTime<Utc>,
    report: &mut ImportReport,
    progress: &mut dyn Progress,
) -> Result<(), AdoptionError> {
    let mut tx = journal.begin().await?;
    let before: HashSet<String> = known_people(&mut tx, &report.source)
        .await?
        .into_keys()
        .collect();
    progress.start("importing", events.len() as u64);
    for chunk in events.chunks(500) {
        let batch: Vec<(&LifecycleEvent, Option<usize>)> =
            chunk.iter().map(|e| (e, None)).collect();
        for (event, recorded) in chunk.iter().zip(tx.record_events(&batch).await?) {
            if recorded.duplicate {
                report.unchanged += 1;
            } else if before.contains(event.person.id.as_str()) {
                report.updated += 1;
            } else {
                report.created += 1;
            }
        }
        progress.advance(chunk.len() as u64);
    }
    while !tx.apply_pending_events(now, 500).await?.is_empty() {}
    let ids: HashSet<&str> = events.iter().map(|e| e.person.id.as_str()).collect();
    let people: Vec<PersonRow> = tx
        .all_people()
        .await?
        .into_iter()
        .filter(|p| p.source == report.source && ids.contains(p.source_person_id.as_str()))
        .collect();
    report.linked = link_by_exact_address(&mut tx, &people, now).await?;
    tx.commit().await?;
    progress.finish();
    report.written = true;
    Ok(())
}

/// Links people without an account to the member with exactly their address, when no one
/// else is linked to that member and only one member has it. Returns how many.
pub async fn link_by_exact_address(
    tx: &mut Tx,
    people: &[PersonRow],
    now: DateTime<Utc>,
) -> Result<u64, AdoptionError> {
    let wanted: Vec<&PersonRow> = people
        .iter()
        .filter(|p| p.anthropic_user_id.is_none() && p.status != PersonStatus::Departed)
        .collect();
    let keys: Vec<String> = wanted
        .iter()
        .filter_map(|p| p.email.as_deref().map(fold_email))
        .collect();
    let mut members: HashMap<String, Vec<String>> = HashMap::new();
    for chunk in keys.chunks(500) {
        for row in tx.mirror_by_email(ObjectKind::User, chunk).await? {
            if let Some(key) = row.email_key {
                members.entry(key).or_default().push(row.id);
            }
        }
    }
    let candidates: Vec<String> = members.values().flatten().cloned().collect();
    let mut taken: HashSet<String> = HashSet::new();
    for chunk in candidates.chunks(500) {
        taken.extend(
            tx.people_linked_to(chunk)
                .await?
                .into_iter()
                .filter_map(|p| p.anthropic_user_id),
        );
    }
    let mut linked = 0;
    for person in wanted {
        let Some(key) = person.email.as_deref().map(fold_email) else {
            continue;
        };
        if let Some([user]) = members.get(&key).map(Vec::as_slice)
            && taken.insert(user.clone())
        {
            tx.link_user(person.id, Some(user), now).await?;
            linked += 1;
        }
    }
    Ok(linked)
}

/// The SCIM source's Users as events of that source: the people it provisioned, brought up
/// to date (a SCIM source normally does this itself as the IdP pushes; this is for a
/// journal that was started after the IdP had pushed).
pub async fn scim_events(
    tx: &mut Tx,
    source: &str,
    deactivate_means: crate::config::DeactivateMeans,
    now: DateTime<Utc>,
) -> Result<Vec<LifecycleEvent>, AdoptionError> {
    let known = known_people(tx, source).await?;
    let mut events = Vec::new();
    for record in tx.scim_list(source, "User").await? {
        let Some(user) = record.resource.as_object() else {
            continue;
        };
        let person = crate::scim::events::person(&record.id, Some(user), None, None)
            .map_err(|e| AdoptionError::Input(format!("SCIM user {}: {e:?}", record.id)))?;
        let active = crate::scim::resources::is_active(user);
        let wanted = match (active, deactivate_means) {
            (true, _) => PersonStatus::Active,
            (false, crate::config::DeactivateMeans::Suspend) => PersonStatus::OnLeave,
            (false, crate::config::DeactivateMeans::Departure) => PersonStatus::Departed,
        };
        let kind = kind_for(known.get(&record.id).copied(), wanted);
        let body = serde_json::to_vec(&record.resource).unwrap_or_default();
        let mut event = crate::scim::events::lifecycle_event(
            source, kind, "import", "import", person, now, &body,
        );
        event.dedupe_key.delivery_id = format!("import-scim-{}-v{}", record.id, record.version);
        events.push(event);
    }
    Ok(events)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_carry_their_line_and_a_header_needs_id_and_email() {
        let csv = "\u{feff}Employee_ID,Email,Department,Status,Team\nE1,a@x.test,Eng,,red\n\nE2,b@x.test,Eng,retired,\n\"E3\",\"c@x.test\",\"Sales, EMEA\",on_leave,\n";
        let (rows, errors) = read_csv(csv.as_bytes()).unwrap();
        assert_eq!(
            rows.iter()
                .map(|r| (r.line, r.id.as_str()))
                .collect::<Vec<_>>(),
            vec![(2, "E1"), (5, "E3")]
        );
        assert_eq!(rows[0].person["attributes"]["team"], "red");
        assert_eq!(rows[1].person["department"], "Sales, EMEA");
        assert_eq!(rows[1].status, PersonStatus::OnLeave);
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].line, 4);
        assert!(errors[0].error.contains("retired"));
        assert!(read_csv("name,email\nA,a@x.test\n".as_bytes()).is_err());
    }

    #[test]
    fn the_event_follows_what_the_journal_knows() {
        use PersonStatus::*;
        assert_eq!(kind_for(None, Active), EventKind::Hired);
        assert_eq!(kind_for(Some(Active), Active), EventKind::Updated);
        assert_eq!(kind_for(Some(Departed), Active), EventKind::Rehired);
        assert_eq!(kind_for(Some(OnLeave), Active), EventKind::LeaveEnded);
        assert_eq!(kind_for(Some(Active), Departed), EventKind::Departed);
        assert_eq!(kind_for(None, OnLeave), EventKind::LeaveStarted);
    }
}
