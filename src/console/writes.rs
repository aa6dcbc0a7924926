//! The console's writes: release held actions, resolve manual ones — each with the
//! operator's name and a required reason, journaled.

use axum::Extension;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use uuid::Uuid;

use super::Signed;
use super::auth::same_origin;
use crate::state::AppState;

/// The form's fields: every `id` (bulk select) and the text field `field`.
fn parse(body: &[u8], field: &str) -> (Vec<Uuid>, String) {
    let mut ids = Vec::new();
    let mut text = String::new();
    for (k, v) in url::form_urlencoded::parse(body) {
        if k == "id" {
            if let Ok(id) = Uuid::parse_str(&v) {
                ids.push(id);
            }
        } else if k == field {
            text = v.trim().to_owned();
        }
    }
    (ids, text)
}

fn back(page: &str, key: &str, message: &str) -> Response {
    let q = url::form_urlencoded::Serializer::new(String::new())
        .append_pair(key, message)
        .finish();
    Redirect::to(&format!("/console/{page}?{q}")).into_response()
}

fn refuse(who: &Signed, headers: &HeaderMap, page: &str) -> Option<Response> {
    if !same_origin(headers) {
        return Some(back(
            page,
            "error",
            "refused: the form did not come from this console",
        ));
    }
    if !who.can_write() {
        return Some(back(
            page,
            "error",
            "your role is viewer: releasing and resolving need operator",
        ));
    }
    None
}

/// `POST /console/held/release`: releases every selected held action with the reason.
pub(super) async fn release(
    State(app): State<AppState>,
    Extension(who): Extension<Signed>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if let Some(r) = refuse(&who, &headers, "held") {
        return r;
    }
    let (ids, reason) = parse(&body, "reason");
    if reason.chars().count() < 3 {
        return back("held", "error", "a reason is required to release");
    }
    if ids.is_empty() {
        return back("held", "error", "select at least one action");
    }
    let now = app.clock.now();
    let mut released = 0;
    let mut problems = Vec::new();
    for id in &ids {
        let done = async {
            let write = who.write(&reason)?;
            let mut tx = app.journal.begin().await?;
            let row = tx.release_by_operator(*id, &write, now).await?;
            tx.commit().await?;
            Ok::<_, crate::journal::JournalError>(row)
        }
        .await;
        match done {
            Ok(row) => {
                released += 1;
                tracing::warn!(action = %id, person = %row.person_id, operator = %who.name, reason = %reason, "held action released in the console");
            }
            Err(e) => problems.push(e.to_string()),
        }
    }
    if released > 0 {
        app.notify.notify_one();
    }
    if problems.is_empty() {
        back("held", "ok", &format!("released {released} action(s)"))
    } else {
        back(
            "held",
            "error",
            &format!("released {released}; {}", problems.join("; ")),
        )
    }
}

/// `POST /console/manual/resolve`: marks every selected manual action as dealt with, with
/// the note (journaled with the operator's name on the operator log).
pub(super) async fn resolve(
    State(app): State<AppState>,
    Extension(who): Extension<Signed>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if let Some(r) = refuse(&who, &headers, "manual") {
        return r;
    }
    let (ids, note) = parse(&body, "note");
    if note.chars().count() < 3 {
        return back("manual", "error", "a note is required to resolve");
    }
    if ids.is_empty() {
        return back("manual", "error", "select at least one action");
    }
    let now = app.clock.now();
    let mut resolved = 0;
    let mut problems = Vec::new();
    for id in &ids {
        let done = async {
            let write = who.write(&note)?;
            let mut tx = app.journal.begin().await?;
            let row = tx.resolve_by_operator(*id, &write, now).await?;
            tx.commit().await?;
            Ok::<_, crate::journal::JournalError>(row)
        }
        .await;
        match done {
            Ok(row) => {
                resolved += 1;
                tracing::info!(action = %id, person = %row.person_id, operator = %who.name, "manual action resolved in the console");
            }
            Err(e) => problems.push(e.to_string()),
        }
    }
    if problems.is_empty() {
        back("manual", "ok", &format!("resolved {resolved} action(s)"))
    } else {
        back(
            "manual",
            "error",
            &format!("resolved {resolved}; {}", problems.join("; ")),
        )
    }
}
