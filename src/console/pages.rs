//! The console's pages (maud templates over journal reads).

use axum::Extension;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use maud::{DOCTYPE, Markup, html};
use serde::Deserialize;
use serde_json::Value;

use super::Signed;
use crate::journal::{ActionRow, ActionStatus, JournalError, JournalFilter};
use crate::state::AppState;

type Page = Result<Markup, (StatusCode, Markup)>;

fn fail(e: JournalError) -> (StatusCode, Markup) {
    let status = match e {
        JournalError::NotFound(_) => StatusCode::NOT_FOUND,
        JournalError::InvalidQuery(_) => StatusCode::BAD_REQUEST,
        _ => StatusCode::SERVICE_UNAVAILABLE,
    };
    (status, error_page(&e.to_string()))
}

pub(super) fn error_page(message: &str) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" { head { meta charset="utf-8"; title { "Keycard" } link rel="stylesheet" href="/console/static/console.css"; }
            body { main { div.notice.bad { (message) } a href="/console" { "Back to the overview" } } } }
    }
}

fn when(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%SZ").to_string()
}

fn when_opt(t: Option<DateTime<Utc>>) -> String {
    t.map_or_else(|| "—".into(), when)
}

/// The page frame: navigation, who is signed in, sign-out.
fn layout(who: &Signed, active: &str, title: &str, body: Markup) -> Markup {
    let nav = [
        ("overview", "/console", "Overview"),
        ("people", "/console/people", "People"),
        ("actions", "/console/actions", "Actions"),
        ("held", "/console/held", "Held"),
        ("manual", "/console/manual", "Manual"),
        ("alerts", "/console/alerts", "Alerts"),
    ];
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Keycard" }
                link rel="stylesheet" href="/console/static/console.css";
                script src="/console/static/console.js" defer {}
            }
            body {
                header {
                    span.brand { "Keycard" }
                    nav { @for (key, href, label) in nav {
                        a href=(href) class=@if key == active { "on" } { (label) }
                    } }
                    span.who { "Signed in as " strong #who { (who.name) } " (" (who.role) ") "
                        form method="post" action="/console/logout" { button.plain type="submit" { "Sign out" } } }
                }
                main { h1 { (title) } (body) }
            }
        }
    }
}

pub(super) fn login(next: &str, error: Option<&str>) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head { meta charset="utf-8"; title { "Sign in · Keycard" } link rel="stylesheet" href="/console/static/console.css"; }
            body { div.login {
                h1 { "Keycard console" }
                @if let Some(e) = error { div.notice.bad #login-error { (e) } }
                form method="post" action="/console/login" {
                    input type="hidden" name="next" value=(next);
                    label for="token" { "Operator token" }
                    input #token type="password" name="token" autocomplete="current-password" required autofocus;
                    button #sign-in type="submit" { "Sign in" }
                }
                p.muted { "Use the token your operator entry names in the Keycard config." }
            } }
        }
    }
}

fn status(s: impl std::fmt::Display) -> Markup {
    let s = s.to_string();
    html! { span class={ "status " (s) } { (s) } }
}

fn person_link(a: &ActionRow) -> Markup {
    let label = a
        .person_email
        .clone()
        .or_else(|| a.person_source_id.clone())
        .unwrap_or_else(|| a.person_id.to_string());
    html! { a href={ "/console/people/" (a.person_id) } { (label) } }
}

fn actions_table(rows: &[ActionRow], select: bool) -> Markup {
    html! {
        table.actions {
            thead { tr {
                @if select { th { input type="checkbox" data-select-all title="Select all"; } }
                th { "When" } th { "Person" } th { "Action" } th { "Status" } th { "Why" } th { "Outcome" }
            } }
            tbody { @for a in rows { tr data-action=(a.id) {
                @if select { td { input type="checkbox" name="id" value=(a.id) form="bulk"; } }
                td.mono { (when(a.updated_at)) }
                td { (person_link(a)) }
                td { (a.kind) br; span.mono.muted { (a.params) } }
                td { (status(a.status)) @if a.attempts > 0 { br; span.muted { (a.attempts) " attempt(s)" } } }
                td { (a.reason) @if let Some(r) = &a.rule { br; span.muted { "rule " (r) } } }
                td { (a.error.as_deref().or(a.outcome.as_deref()).unwrap_or("")) @if let Some(rid) = &a.request_id { br; span.mono.muted { (rid) } } }
            } } }
        }
        @if rows.is_empty() { p.muted { "None." } }
    }
}

pub(super) async fn overview(
    State(app): State<AppState>,
    Extension(who): Extension<Signed>,
) -> Page {
    let now = app.clock.now();
    let mut c = app.journal.conn().await.map_err(fail)?;
    let o = c.console_overview(now).await.map_err(fail)?;
    let alerts = c.recent_notifications(8).await.map_err(fail)?;
    let info = &app.console;
    let mirror_age = o.mirror_oldest.map(|t| now - t);
    let credential = if !info.has_credential {
        ("warn", "none configured: dry run".to_owned())
    } else if let Some(at) = o
        .credential_rejected_at
        .filter(|t| now - *t < chrono::Duration::hours(24))
    {
        ("bad", format!("rejected at {}", when(at)))
    } else if info.dry_run {
        ("warn", "configured; admin_api.dry_run = true".to_owned())
    } else {
        ("ok", "accepted".to_owned())
    };
    let card = |class: &str, n: String, label: &str, href: &str| {
        html! {
            a.card class=(class) href=(href) style="text-decoration:none;color:inherit" { div.n { (n) } div.l { (label) } }
        }
    };
    let tone = |n: i64, bad: &'static str| if n > 0 { bad } else { "ok" };
    Ok(layout(
        &who,
        "overview",
        "Overview",
        html! {
            @if info.dry_run { div.notice { "Dry run: actions are planned and journaled, nothing is changed in the organization." } }
            @if let Some(msg) = &o.credential_rejected {
                @if credential.0 == "bad" { div.notice.bad { (msg) } }
            }
            div.cards #overview {
                (card(tone(o.held, "warn"), o.held.to_string(), "held for an operator", "/console/held"))
                (card(tone(o.failed_24h, "bad"), o.failed_24h.to_string(), "failed in the last 24 h", "/console/actions?status=failed"))
                (card(tone(o.manual_open, "warn"), o.manual_open.to_string(), "need a human", "/console/manual"))
                (card("", o.due_now.to_string(), &format!("people due now ({} queued)", o.queued_people), "/console/actions?status=pending"))
                (card("", o.running.to_string(), "actions running", "/console/actions?status=running"))
                (card("", o.pending_events.to_string(), &format!("events not applied yet ({} scheduled)", o.scheduled_events), "/console/actions"))
                (card(match mirror_age { Some(a) if a < chrono::Duration::hours(25) => "ok", _ => "warn" },
                      mirror_age.map_or_else(|| "never".into(), |a| format!("{} min", a.num_minutes())),
                      &format!("mirror age (last read {})", when_opt(o.mirror_newest)), "/console"))
                (card(credential.0, credential.1.clone(), "Admin API credential", "/console/alerts"))
            }
            h2 { "Recent alerts" }
            (alerts_table(&alerts))
        },
    ))
}

fn alerts_table(rows: &[crate::journal::NotificationRow]) -> Markup {
    html! {
        table { thead { tr { th { "Raised" } th { "Kind" } th { "Subject" } } }
            tbody { @for n in rows { tr {
                td.mono { (when(n.created_at)) }
                td { (status(n.kind)) }
                td { @if let Some(p) = n.person_id { a href={ "/console/people/" (p) } { (n.subject) } } @else { (n.subject) } }
            } } } }
        @if rows.is_empty() { p.muted { "No alerts raised." } }
    }
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct SearchQuery {
    q: Option<String>,
}

pub(super) async fn people(
    State(app): State<AppState>,
    Extension(who): Extension<Signed>,
    Query(query): Query<SearchQuery>,
) -> Page {
    let q = query.q.unwrap_or_default();
    let found = if q.trim().is_empty() {
        Vec::new()
    } else {
        let mut c = app.journal.conn().await.map_err(fail)?;
        c.search_people(&q, 100).await.map_err(fail)?
    };
    Ok(layout(
        &who,
        "people",
        "People",
        html! {
            form.filters method="get" action="/console/people" {
                label { "Email, HR id or journal id" input #q type="search" name="q" value=(q) autofocus; }
                button #search type="submit" { "Search" }
            }
            @if !q.trim().is_empty() {
                table #results { thead { tr { th { "Person" } th { "Source" } th { "Status" } th { "Account" } th { "Updated" } } }
                    tbody { @for p in &found { tr {
                        td { a href={ "/console/people/" (p.id) } { (p.email.as_deref().unwrap_or("(no email)")) } br; span.mono.muted { (p.source_person_id) } }
                        td { (p.source) }
                        td { (status(p.status)) }
                        td.mono { (p.anthropic_user_id.as_deref().unwrap_or("—")) }
                        td.mono { (when(p.updated_at)) }
                    } } } }
                @if found.is_empty() { p.muted { "Nobody matches." } }
            }
        },
    ))
}

fn desired_view(desired: Option<&Value>) -> Markup {
    let Some(d) = desired else {
        return html! { p.muted { "Not evaluated yet." } };
    };
    let rules = d["explanation"]["rules"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    html! {
        dl.kv #desired {
            dt { "Organization role" } dd { (d["org_role"].as_str().unwrap_or("none")) @if let Some(r) = d["org_role_rule"].as_str() { span.muted { " from rule " (r) } } }
            @if let Some(ws) = d["workspaces"].as_object() {
                @for (name, w) in ws {
                    dt { "Workspace " (name) } dd { (w["role"].as_str().unwrap_or("")) @if let Some(r) = w["rule"].as_str() { span.muted { " from rule " (r) } } }
                }
            }
            dt { "Basis" } dd { (d["explanation"]["basis"].as_str().unwrap_or("")) }
            dt { "Evaluated" } dd.mono { (d["evaluated_at"].as_str().unwrap_or("")) }
        }
        @if !rules.is_empty() {
            h2 { "Rules" }
            table { thead { tr { th { "#" } th { "Rule" } th { "Outcome" } } }
                tbody { @for r in &rules { tr {
                    td { (r["index"]) } td { (r["name"].as_str().unwrap_or("")) }
                    td { (r["outcome"]["result"].as_str().unwrap_or("")) @if let Some(m) = r["outcome"]["message"].as_str() { ": " (m) } }
                } } } }
        }
    }
}

pub(super) async fn person(
    State(app): State<AppState>,
    Extension(who): Extension<Signed>,
    Path(key): Path<String>,
) -> Page {
    let mut c = app.journal.conn().await.map_err(fail)?;
    let p = c
        .find_person(&key)
        .await
        .map_err(fail)?
        .ok_or_else(|| fail(JournalError::NotFound(format!("person {key}"))))?;
    let (events, actions) = c.person_timeline(&p).await.map_err(fail)?;
    // One timeline, newest first: events and actions interleaved by time.
    enum Item<'a> {
        Event(&'a crate::journal::EventRow),
        Action(&'a ActionRow),
    }
    let mut items: Vec<(DateTime<Utc>, Item<'_>)> = events
        .iter()
        .map(|e| (e.received_at, Item::Event(e)))
        .chain(actions.iter().map(|a| (a.created_at, Item::Action(a))))
        .collect();
    items.sort_by_key(|i| std::cmp::Reverse(i.0));
    let title = p
        .email
        .clone()
        .unwrap_or_else(|| p.source_person_id.clone());
    Ok(layout(
        &who,
        "people",
        &title,
        html! {
            dl.kv #person {
                dt { "Journal id" } dd.mono { (p.id) }
                dt { "Source" } dd { (p.source) " · " span.mono { (p.source_person_id) } }
                dt { "Status" } dd { (status(p.status)) }
                dt { "Email" } dd { (p.email.as_deref().unwrap_or("—")) }
                @let previous = p.previous_emails();
                @if !previous.is_empty() { dt { "Earlier addresses" } dd { (previous.join(", ")) } }
                dt { "Linked account" } dd.mono { (p.anthropic_user_id.as_deref().unwrap_or("not linked")) }
                dt { "Attributes" } dd.mono { (p.attributes) }
            }
            h2 { "Desired access" }
            (desired_view(p.desired.as_ref()))
            h2 { "Timeline" }
            table #timeline { thead { tr { th { "When" } th { "What" } th { "Status" } th { "Detail" } } }
                tbody { @for (at, item) in &items { tr {
                    td.mono { (when(*at)) }
                    @match item {
                        Item::Event(e) => {
                            td { "event " strong { (e.kind) } br; span.muted { (e.source) @if let Some(t) = &e.source_event_type { " · " (t) } } }
                            td { (status(e.status)) }
                            td { (e.status_reason.as_deref().unwrap_or("")) br; span.mono.muted { (e.id) } }
                        }
                        Item::Action(a) => {
                            td { "action " strong { (a.kind) } br; span.mono.muted { (a.params) } }
                            td { (status(a.status)) }
                            td { (a.reason) @if let Some(x) = a.error.as_deref().or(a.outcome.as_deref()) { br; (x) } }
                        }
                    }
                } } } }
        },
    ))
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct ActionQuery {
    status: Option<String>,
    kind: Option<String>,
    person: Option<String>,
    since: Option<String>,
    cursor: Option<String>,
}

fn nonempty(v: Option<String>) -> Option<String> {
    v.filter(|s| !s.trim().is_empty())
}

pub(super) async fn actions(
    State(app): State<AppState>,
    Extension(who): Extension<Signed>,
    Query(q): Query<ActionQuery>,
) -> Page {
    let since = match nonempty(q.since.clone()) {
        Some(s) => Some(
            DateTime::parse_from_rfc3339(&s)
                .map(|t| t.with_timezone(&Utc))
                .or_else(|_| {
                    chrono::NaiveDate::parse_from_str(&s, "%Y-%m-%d")
                        .map(|d| d.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc())
                })
                .map_err(|_| {
                    fail(JournalError::InvalidQuery(format!(
                        "since: '{s}' is not a date (2026-12-01) or RFC 3339 time"
                    )))
                })?,
        ),
        None => None,
    };
    let filter = JournalFilter {
        person: nonempty(q.person.clone()),
        status: nonempty(q.status.clone()),
        kind: nonempty(q.kind.clone()),
        since,
        cursor: nonempty(q.cursor.clone()),
        limit: 100,
        ..JournalFilter::default()
    };
    let mut c = app.journal.conn().await.map_err(fail)?;
    let page = c.list_actions(&filter).await.map_err(fail)?;
    let statuses = ActionStatus::names();
    let kinds = crate::journal::ActionKind::names();
    let selected = |v: &Option<String>, x: &str| v.as_deref() == Some(x);
    let next = page.next_cursor.as_ref().map(|cur| {
        let mut s = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in [
            ("status", &q.status),
            ("kind", &q.kind),
            ("person", &q.person),
            ("since", &q.since),
        ] {
            if let Some(v) = v {
                s.append_pair(k, v);
            }
        }
        s.append_pair("cursor", cur);
        format!("/console/actions?{}", s.finish())
    });
    Ok(layout(
        &who,
        "actions",
        "Actions",
        html! {
            form.filters method="get" action="/console/actions" {
                label { "Status" select name="status" { option value="" { "any" } @for s in &statuses { option value=(s) selected[selected(&q.status, s)] { (s) } } } }
                label { "Kind" select name="kind" { option value="" { "any" } @for k in &kinds { option value=(k) selected[selected(&q.kind, k)] { (k) } } } }
                label { "Person (email, HR id)" input type="text" name="person" value=(q.person.clone().unwrap_or_default()); }
                label { "Since" input type="text" name="since" placeholder="2026-12-01" value=(q.since.clone().unwrap_or_default()); }
                button type="submit" { "Filter" }
            }
            (actions_table(&page.data, false))
            @if let Some(n) = next { p { a href=(n) { "Older →" } } }
        },
    ))
}

pub(super) async fn held(
    State(app): State<AppState>,
    Extension(who): Extension<Signed>,
    Query(flash): Query<Flash>,
) -> Page {
    let rows = list_status(&app, ActionStatus::Held).await?;
    Ok(layout(
        &who,
        "held",
        "Held actions",
        html! {
            (flash.render())
            p.muted { "The removal cap (safety.max_removals_per_hour) holds these until an operator releases them. A release is journaled with your name and reason." }
            @if who.can_write() && !rows.is_empty() {
                form.filters #bulk method="post" action="/console/held/release" {
                    label { "Reason (required)" input #reason type="text" name="reason" required minlength="3" size="50" placeholder="e.g. confirmed with HR: planned reorganisation"; }
                    button #release type="submit" { "Release selected" }
                }
            }
            (actions_table(&rows, who.can_write()))
        },
    ))
}

pub(super) async fn manual(
    State(app): State<AppState>,
    Extension(who): Extension<Signed>,
    Query(flash): Query<Flash>,
) -> Page {
    let mut rows = list_status(&app, ActionStatus::NeedsManualAction).await?;
    rows.retain(|a| a.resolved_at.is_none());
    Ok(layout(
        &who,
        "manual",
        "Manual actions",
        html! {
            (flash.render())
            p.muted { "Keycard will not do these itself (an admin or owner, a protected address, an account linked to someone else). Do what the note says, then mark it resolved with a note; it is journaled with your name." }
            @if who.can_write() && !rows.is_empty() {
                form.filters #bulk method="post" action="/console/manual/resolve" {
                    label { "Note (required)" input #note type="text" name="note" required minlength="3" size="50" placeholder="e.g. removed by hand in the Console, ticket IT-1234"; }
                    button #resolve type="submit" { "Mark selected resolved" }
                }
            }
            (actions_table(&rows, who.can_write()))
        },
    ))
}

async fn list_status(
    app: &AppState,
    s: ActionStatus,
) -> Result<Vec<ActionRow>, (StatusCode, Markup)> {
    let mut c = app.journal.conn().await.map_err(fail)?;
    let filter = JournalFilter {
        status: Some(s.as_str().to_owned()),
        limit: 500,
        ..JournalFilter::default()
    };
    Ok(c.list_actions(&filter).await.map_err(fail)?.data)
}

pub(super) async fn alerts(State(app): State<AppState>, Extension(who): Extension<Signed>) -> Page {
    let mut c = app.journal.conn().await.map_err(fail)?;
    let rows = c.recent_notifications(100).await.map_err(fail)?;
    let mut deliveries = Vec::new();
    for n in &rows {
        deliveries.push(c.deliveries_of(n.id).await.map_err(fail)?);
    }
    let targets = &app.console.alert_targets;
    Ok(layout(
        &who,
        "alerts",
        "Alerts",
        html! {
            p.muted { @if targets.is_empty() { "No [[notify.targets]] are configured: alerts are journaled here only." } @else { "Targets: " (targets.join(", ")) } }
            table #alerts { thead { tr { th { "Raised" } th { "Kind" } th { "Subject" } th { "Deliveries" } } }
                tbody { @for (n, ds) in rows.iter().zip(&deliveries) { tr {
                    td.mono { (when(n.created_at)) }
                    td { (status(n.kind)) }
                    td { @if let Some(p) = n.person_id { a href={ "/console/people/" (p) } { (n.subject) } } @else { (n.subject) } }
                    td { @for d in ds { div { (d.target) ": " (status(d.status)) " " span.muted { (d.attempts) " attempt(s)" @if let Some(e) = &d.last_error { " · " (e) } } } } }
                } } } }
            @if rows.is_empty() { p.muted { "No alerts raised." } }
        },
    ))
}

/// A message carried over a redirect after a write (`?ok=` / `?error=`).
#[derive(Debug, Default, Deserialize)]
pub(super) struct Flash {
    ok: Option<String>,
    error: Option<String>,
}

impl Flash {
    fn render(&self) -> Markup {
        html! {
            @if let Some(m) = &self.ok { div.notice #flash { (m) } }
            @if let Some(m) = &self.error { div.notice.bad #flash { (m) } }
        }
    }
}

impl IntoResponse for Flash {
    fn into_response(self) -> Response {
        self.render().into_response()
    }
}
