//! The best-practice reports (`keycard report NAME`, `GET /api/v1/reports/NAME`): who has
//! what and why, drift, members nobody manages, invites, unused workspaces, API keys. Each
//! is read from the organization mirror and the journal, and says when the mirror was read.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Map, Value, json};

use super::AdoptionError;
use super::snapshot::{Snapshot, person_of};
use crate::admin_api::{ApiKeyStatus, InviteStatus};
use crate::executor::Worker;
use crate::journal::{JournalFilter, PersonStatus};

/// The report names, in the order `keycard report --help` lists them.
pub const NAMES: &[&str] = &[
    "access",
    "drift",
    "unmanaged",
    "invites",
    "workspaces",
    "keys",
];

/// What a report needs besides the journal: the planning worker (rules, policy, whether
/// the organization can be read) and the hygiene thresholds.
#[derive(Debug, Clone)]
pub struct ReportContext {
    pub worker: Worker,
    pub hygiene: super::HygieneConfig,
}

/// A report: rows with named columns, and when the mirror they came from was read.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Report {
    pub report: &'static str,
    pub generated_at: DateTime<Utc>,
    /// When the organization mirror this report read was last refreshed whole (`None`: never).
    pub mirror_refreshed_at: Option<DateTime<Utc>>,
    pub notes: Vec<String>,
    pub columns: Vec<&'static str>,
    /// One object per row, keyed by `columns`.
    #[schema(value_type = Vec<Object>)]
    pub rows: Vec<Map<String, Value>>,
}

fn row(columns: &[&'static str], values: Vec<Value>) -> Map<String, Value> {
    columns
        .iter()
        .map(|c| (*c).to_owned())
        .zip(values)
        .collect()
}

fn days(from: DateTime<Utc>, to: DateTime<Utc>) -> i64 {
    (to - from).num_days()
}

/// Builds report `name` as of now.
pub async fn build(ctx: &ReportContext, name: &str) -> Result<Report, AdoptionError> {
    let journal = ctx.worker.journal();
    let now = ctx.worker.now();
    let refreshed = journal
        .conn()
        .await?
        .mirror_reads()
        .await?
        .into_iter()
        .find(|r| r.part == crate::mirror::FULL)
        .and_then(|r| r.refreshed_at);
    let snapshot = Snapshot::load(journal).await?;
    let (report, columns, rows, mut notes): (&'static str, Vec<&'static str>, _, Vec<String>) =
        match name {
            "access" => access(&snapshot),
            "drift" => drift(ctx).await?,
            "unmanaged" => unmanaged(ctx, &snapshot, now),
            "invites" => invites(ctx, &snapshot, now),
            "workspaces" => workspaces(ctx, &snapshot),
            "keys" => keys(ctx, &snapshot, now),
            other => {
                return Err(AdoptionError::Input(format!(
                    "no report '{other}': one of {}",
                    NAMES.join(", ")
                )));
            }
        };
    if refreshed.is_none() {
        notes.insert(
            0,
            "the organization has never been read into the mirror: this report shows nothing of it yet".into(),
        );
    }
    notes.extend(super::limits::notes(journal).await?);
    Ok(Report {
        report,
        generated_at: now,
        mirror_refreshed_at: refreshed,
        notes,
        columns,
        rows,
    })
}

type Built = (
    &'static str,
    Vec<&'static str>,
    Vec<Map<String, Value>>,
    Vec<String>,
);

/// Who has which organization role and workspace roles, and the rule that explains it.
fn access(s: &Snapshot) -> Built {
    let cols = vec![
        "email",
        "user_id",
        "org_role",
        "workspaces",
        "person",
        "person_status",
        "org_role_rule",
        "workspace_rules",
    ];
    let owners = s.owners();
    let names = s.workspace_names();
    let mut by_user: HashMap<&str, Vec<String>> = HashMap::new();
    for m in &s.members {
        let ws = names.get(m.workspace_id.as_str()).copied().unwrap_or("?");
        by_user
            .entry(m.user_id.as_str())
            .or_default()
            .push(format!("{ws}:{}", m.workspace_role.as_str()));
    }
    let mut rows = Vec::new();
    for u in &s.users {
        let person = person_of(&owners, u);
        let desired = person.and_then(|p| p.desired.as_ref());
        let ws_rules: Vec<String> = desired
            .and_then(|d| d.get("workspaces"))
            .and_then(Value::as_object)
            .map(|m| {
                m.iter()
                    .map(|(ws, v)| format!("{ws}:{}", v["rule"].as_str().unwrap_or("")))
                    .collect()
            })
            .unwrap_or_default();
        let mut ws = by_user.remove(u.id.as_str()).unwrap_or_default();
        ws.sort();
        rows.push(row(
            &cols,
            vec![
                json!(u.email),
                json!(u.id),
                json!(u.role.as_str()),
                json!(ws.join("; ")),
                json!(person.map(|p| format!("{}/{}", p.source, p.source_person_id))),
                json!(person.map(|p| p.status.as_str())),
                json!(
                    desired
                        .and_then(|d| d["org_role_rule"].as_str())
                        .or(person.is_none().then_some("(no person: unmanaged)"))
                ),
                json!(ws_rules.join("; ")),
            ],
        ));
    }
    (
        "access",
        cols,
        rows,
        vec![
            "rules as last evaluated for each person (keycard plan --all shows what they give now)"
                .into(),
        ],
    )
}

/// Where the organization differs from the rules, and what Keycard did about it.
async fn drift(ctx: &ReportContext) -> Result<Built, AdoptionError> {
    let cols = vec![
        "person",
        "email",
        "change",
        "kind",
        "rule",
        "reason",
        "keycard_status",
        "keycard_outcome",
    ];
    let everyone = ctx.worker.plan_everyone().await?;
    let mut rows = Vec::new();
    for (person, plan) in &everyone.plans {
        let steps: Vec<_> = plan
            .steps
            .iter()
            .filter(|p| {
                p.step.is_call() || matches!(p.step, crate::planner::Step::ManualAction { .. })
            })
            .collect();
        if steps.is_empty() {
            continue;
        }
        let filter = JournalFilter {
            person: Some(person.id.to_string()),
            limit: 200,
            ..JournalFilter::default()
        };
        let actions = ctx
            .worker
            .journal()
            .conn()
            .await?
            .list_actions(&filter)
            .await?
            .data;
        for p in steps {
            let (kind, params) = (p.step.kind(), p.step.params());
            let did = actions
                .iter()
                .find(|a| a.kind == kind && a.params == params);
            rows.push(row(
                &cols,
                vec![
                    json!(format!("{}/{}", person.source, person.source_person_id)),
                    json!(person.email),
                    json!(p.step.describe()),
                    json!(kind.as_str()),
                    json!(p.rule),
                    json!(p.hold.clone().unwrap_or_else(|| p.reason.clone())),
                    json!(did.map_or("not yet planned by a reconcile run", |a| a.status.as_str())),
                    json!(did.and_then(|a| a.outcome.clone().or_else(|| a.error.clone()))),
                ],
            ));
        }
    }
    Ok(("drift", cols, rows, Vec::new()))
}

fn unmanaged(ctx: &ReportContext, s: &Snapshot, now: DateTime<Utc>) -> Built {
    let cols = vec!["kind", "id", "email", "role", "since", "age_days", "action"];
    let policy = ctx.worker.settings().unmanaged;
    let rows = super::unmanaged::find(s, &ctx.worker.settings().policy, now)
        .into_iter()
        .map(|u| {
            let action = match (&u.never_removed, policy, u.removal_queued) {
                (Some(why), _, _) => format!("never removed: {why}"),
                (None, _, true) => "removal queued (through the removal cap)".to_owned(),
                (None, super::UnmanagedPolicy::Remove, false) => {
                    "to be removed after the next read of the organization".to_owned()
                }
                (None, super::UnmanagedPolicy::Report, false) => {
                    "reported only ([unmanaged] policy = \"report\")".to_owned()
                }
            };
            row(
                &cols,
                vec![
                    json!(u.kind),
                    json!(u.id),
                    json!(u.email),
                    json!(u.role),
                    json!(u.since),
                    json!(days(u.since, now)),
                    json!(action),
                ],
            )
        })
        .collect();
    (
        "unmanaged",
        cols,
        rows,
        vec![format!(
            "[unmanaged] policy = \"{}\"",
            match policy {
                super::UnmanagedPolicy::Report => "report",
                super::UnmanagedPolicy::Remove => "remove",
            }
        )],
    )
}

/// Pending, expired and accepted invites with their age.
fn invites(ctx: &ReportContext, s: &Snapshot, now: DateTime<Utc>) -> Built {
    let cols = vec![
        "email",
        "id",
        "role",
        "status",
        "invited_at",
        "age_days",
        "expires_at",
        "person",
        "cleanup",
    ];
    let owners = s.owners();
    let after = i64::from(ctx.hygiene.expired_invite_days);
    let mut rows = Vec::new();
    let mut stale = 0;
    for i in &s.invites {
        let status = match i.status {
            InviteStatus::Pending if i.expires_at <= now => "expired",
            ref other => other.as_str(),
        };
        let person = owners.1.get(&crate::journal::fold_email(&i.email));
        let cleanup = if status == "expired" && days(i.expires_at, now) > after {
            stale += 1;
            format!(
                "expired {} days ago (over hygiene.expired_invite_days = {after}); the Admin API deletes only pending invites, so it stays listed",
                days(i.expires_at, now)
            )
        } else if status == "pending" && person.is_none() {
            "pending for no person: see the unmanaged report".to_owned()
        } else {
            String::new()
        };
        rows.push(row(
            &cols,
            vec![
                json!(i.email),
                json!(i.id),
                json!(i.role.as_str()),
                json!(status),
                json!(i.invited_at),
                json!(days(i.invited_at, now)),
                json!(i.expires_at),
                json!(person.map(|p| format!("{}/{}", p.source, p.source_person_id))),
                json!(cleanup),
            ],
        ));
    }
    rows.sort_by_key(|r| std::cmp::Reverse(r["age_days"].as_i64().unwrap_or(0)));
    (
        "invites",
        cols,
        rows,
        vec![format!(
            "{stale} expired invite(s) older than {after} days cannot be deleted through the Admin API (only pending invites can be withdrawn)"
        )],
    )
}

/// Workspaces with their members and active keys; unused ones are never archived automatically.
fn workspaces(ctx: &ReportContext, s: &Snapshot) -> Built {
    let cols = vec![
        "name",
        "id",
        "members",
        "active_keys",
        "unused",
        "managed_by_rules",
        "note",
    ];
    let managed = ctx.worker.managed_workspaces();
    let archiving = super::archive::queued(s);
    let policy = ctx.worker.settings().archive_unused_after_days;
    let mut unused_count = 0;
    let rows = s
        .workspace_usage()
        .into_iter()
        .map(|u| {
            let (w, m, k) = (u.workspace, u.members, u.active_keys);
            let unused = u.unused();
            unused_count += usize::from(unused);
            let note = match (unused, policy) {
                (false, _) => String::new(),
                _ if managed.contains(&w.name) => {
                    "no members and no active keys, but a rule grants it: kept".to_owned()
                }
                (true, None) => "no members and no active keys: archive it in the Console if it is not needed (hygiene.archive_unused_workspaces is off)".to_owned(),
                (true, Some(_)) if archiving.contains(w.id.as_str()) => {
                    "being archived (hygiene.archive_unused_workspaces), through the removal cap".to_owned()
                }
                (true, Some(days)) => format!(
                    "archived once unused and older than {days} days (hygiene.unused_workspace_days)"
                ),
            };
            row(
                &cols,
                vec![
                    json!(w.name),
                    json!(w.id),
                    json!(m),
                    json!(k),
                    json!(unused),
                    json!(managed.contains(&w.name)),
                    json!(note),
                ],
            )
        })
        .collect();
    (
        "workspaces",
        cols,
        rows,
        vec![format!("{unused_count} unused workspace(s)")],
    )
}

/// Active API keys by age and creator: keys of departed or unknown creators, keys due for
/// rotation.
fn keys(ctx: &ReportContext, s: &Snapshot, now: DateTime<Utc>) -> Built {
    let cols = vec![
        "id",
        "name",
        "workspace",
        "created_at",
        "age_days",
        "creator",
        "creator_email",
        "creator_state",
        "rotation_due",
    ];
    let owners = s.owners();
    let names = s.workspace_names();
    let users: HashMap<&str, &crate::admin_api::User> =
        s.users.iter().map(|u| (u.id.as_str(), u)).collect();
    let rotate = i64::from(ctx.hygiene.key_rotation_days);
    let mut by_state: BTreeMap<&'static str, usize> = BTreeMap::new();
    let mut rows: Vec<Map<String, Value>> = Vec::new();
    for k in s.keys.iter().filter(|k| k.status == ApiKeyStatus::Active) {
        let creator = k.created_by_user();
        let member = creator.and_then(|c| users.get(c).copied());
        let person = creator.and_then(|c| owners.0.get(c).copied());
        let state: &'static str = match (&k.created_by, member, person) {
            (None, _, _) => "none recorded",
            (Some(c), _, _) if c.kind != crate::admin_api::ActorType::User => "service account",
            (_, _, Some(p)) if p.status == PersonStatus::Departed => "departed person",
            (_, None, _) => "unknown: not a member",
            (_, Some(u), None) if person_of(&owners, u).is_none() => "member no person names",
            _ => "current person",
        };
        *by_state.entry(state).or_default() += 1;
        let age = days(k.created_at, now);
        rows.push(row(
            &cols,
            vec![
                json!(k.id),
                json!(k.name),
                json!(k.workspace().map(|w| names.get(w).copied().unwrap_or(w))),
                json!(k.created_at),
                json!(age),
                json!(creator),
                json!(member.map(|u| u.email.clone())),
                json!(state),
                json!(age > rotate),
            ],
        ));
    }
    rows.sort_by_key(|r| std::cmp::Reverse(r["age_days"].as_i64().unwrap_or(0)));
    let due = rows
        .iter()
        .filter(|r| r["rotation_due"] == json!(true))
        .count();
    let mut notes = vec![format!(
        "{due} active key(s) older than hygiene.key_rotation_days = {rotate}"
    )];
    notes.extend(by_state.iter().map(|(s, n)| format!("created by {s}: {n}")));
    ("keys", cols, rows, notes)
}

/// A cell as text; a value a spreadsheet would run as a formula is quoted with `'`.
fn cell(v: &Value) -> String {
    let text = match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    if text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{text}")
    } else {
        text
    }
}

/// The report as CSV: its columns, then `mirror_refreshed_at` on every row.
pub fn csv(report: &Report) -> Result<String, AdoptionError> {
    let mut out = csv::Writer::from_writer(Vec::new());
    let err = |e: csv::Error| AdoptionError::Input(format!("writing CSV: {e}"));
    let mut header: Vec<&str> = report.columns.clone();
    header.push("mirror_refreshed_at");
    out.write_record(&header).map_err(err)?;
    let refreshed = report
        .mirror_refreshed_at
        .map(|t| t.to_rfc3339())
        .unwrap_or_default();
    for r in &report.rows {
        let mut cells: Vec<String> = report
            .columns
            .iter()
            .map(|c| cell(r.get(*c).unwrap_or(&Value::Null)))
            .collect();
        cells.push(refreshed.clone());
        out.write_record(&cells).map_err(err)?;
    }
    let bytes = out
        .into_inner()
        .map_err(|e| AdoptionError::Input(format!("writing CSV: {e}")))?;
    String::from_utf8(bytes).map_err(|e| AdoptionError::Input(e.to_string()))
}

/// The report as text: when the mirror was read, notes, then the rows.
pub fn table(report: &Report) -> String {
    let mut out = format!(
        "report {}: organization mirror {}\n",
        report.report,
        report.mirror_refreshed_at.map_or_else(
            || "never read".to_owned(),
            |t| format!("read at {}", t.to_rfc3339())
        )
    );
    for n in &report.notes {
        out.push_str(&format!("note: {n}\n"));
    }
    for r in &report.rows {
        let line: Vec<String> = report
            .columns
            .iter()
            .map(|c| format!("{c}={}", cell(r.get(*c).unwrap_or(&Value::Null))))
            .collect();
        out.push_str(&line.join("  "));
        out.push('\n');
    }
    if report.rows.is_empty() {
        out.push_str("(no rows)\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formulas_are_defused_and_plain_text_is_not() {
        assert_eq!(cell(&json!("=SUM(A1)")), "'=SUM(A1)");
        assert_eq!(cell(&json!("+1")), "'+1");
        assert_eq!(cell(&json!("-1")), "'-1");
        assert_eq!(cell(&json!("@cmd")), "'@cmd");
        assert_eq!(cell(&json!("\tx")), "'\tx");
        assert_eq!(cell(&json!("ada@example.com")), "ada@example.com");
        assert_eq!(cell(&json!(42)), "42");
        assert_eq!(cell(&Value::Null), "");
    }
}
