//! The adoption routes of the ops API (`/api/v1`, behind the ops token): people listed
//! with filters and cursor paging.

use axum::Router;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;

use crate::http::ops::query_problem;
use crate::http::{AppState, Problem};
use crate::journal::PeopleFilter;

/// Registered under `/api/v1` by `crate::http::router`.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/people", get(people))
        .route("/reports/{name}", get(report))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeopleParams {
    status: Option<String>,
    source: Option<String>,
    email: Option<String>,
    linked: Option<bool>,
    q: Option<String>,
    cursor: Option<String>,
    limit: Option<i64>,
}

/// `GET /api/v1/people?status=&source=&email=&linked=&q=&limit=&cursor=`: people, oldest
/// first, `next_cursor` while there are more.
async fn people(
    State(app): State<AppState>,
    params: Result<Query<PeopleParams>, QueryRejection>,
) -> Result<Response, Problem> {
    let Query(p) = params.map_err(query_problem)?;
    let filter = PeopleFilter {
        status: p.status,
        source: p.source,
        email: p.email,
        linked: p.linked,
        q: p.q,
        cursor: p.cursor,
        limit: p.limit.unwrap_or(50),
    };
    let page = app.journal.conn().await?.list_people(&filter).await?;
    Ok(axum::Json(page).into_response())
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportParams {
    /// `json` (default) or `csv`.
    format: Option<String>,
}

/// `GET /api/v1/reports/{name}?format=json|csv`: a best-practice report, with when the
/// organization mirror it read was refreshed (in the body, and in
/// `x-keycard-mirror-refreshed-at`).
async fn report(
    State(app): State<AppState>,
    Path(name): Path<String>,
    params: Result<Query<ReportParams>, QueryRejection>,
) -> Result<Response, Problem> {
    let Query(p) = params.map_err(query_problem)?;
    if !super::reports::NAMES.contains(&name.as_str()) {
        return Err(Problem::not_found(format!(
            "no report '{name}': one of {}",
            super::reports::NAMES.join(", ")
        )));
    }
    let csv = match p.format.as_deref() {
        None | Some("json") => false,
        Some("csv") => true,
        Some(other) => {
            return Err(Problem::new(
                axum::http::StatusCode::BAD_REQUEST,
                "Invalid query",
                Some("invalid_query"),
                format!("format '{other}' is not json or csv"),
            ));
        }
    };
    let report = super::reports::build(&app.reports, &name)
        .await
        .map_err(problem)?;
    let refreshed = report
        .mirror_refreshed_at
        .map_or_else(|| "never".to_owned(), |t| t.to_rfc3339());
    let mut response = if csv {
        let body = super::reports::csv(&report).map_err(problem)?;
        (
            [(axum::http::header::CONTENT_TYPE, "text/csv; charset=utf-8")],
            body,
        )
            .into_response()
    } else {
        axum::Json(report).into_response()
    };
    if let Ok(v) = axum::http::HeaderValue::from_str(&refreshed) {
        response
            .headers_mut()
            .insert("x-keycard-mirror-refreshed-at", v);
    }
    Ok(response)
}

fn problem(e: super::AdoptionError) -> Problem {
    match e {
        super::AdoptionError::Journal(e) => e.into(),
        other => {
            tracing::warn!(error = %other, "report failed");
            Problem::internal("the report could not be built")
        }
    }
}
