//! The adoption routes of the ops API (`/api/v1`, behind the ops token): people listed
//! with filters and cursor paging.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get};
use serde::Deserialize;
use utoipa::IntoParams;

use crate::http::ops::query_problem;
use crate::http::{AppState, Problem};
use crate::journal::{Page, PeopleFilter, PersonRow, PersonStatus};

/// Registered under `/api/v1` by `crate::http::router` (paths and their handlers).
pub fn routes() -> Vec<(&'static str, MethodRouter<AppState>)> {
    vec![("/people", get(people)), ("/reports/{name}", get(report))]
}

/// The filters of the people list (all optional, combined with AND).
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PeopleParams {
    /// The person's status.
    #[param(value_type = Option<PersonStatus>)]
    status: Option<String>,
    /// A configured source's name.
    source: Option<String>,
    /// An email address (compared case-insensitively).
    email: Option<String>,
    /// Only people linked (`true`) or not linked (`false`) to an Admin API user.
    linked: Option<bool>,
    /// Text found in the email address, name or source id.
    q: Option<String>,
    /// `next_cursor` of the previous page, unchanged.
    cursor: Option<String>,
    /// Page size, 1 to 1000 (default 50).
    #[param(minimum = 1, maximum = 1000, default = 50)]
    limit: Option<i64>,
}

/// `GET /api/v1/people?status=&source=&email=&linked=&q=&limit=&cursor=`: people, oldest
/// first, `next_cursor` while there are more.
#[utoipa::path(
    get,
    path = "/api/v1/people",
    tag = "people",
    params(PeopleParams),
    responses(
        (status = 200, description = "A page of people, oldest first", body = Page<PersonRow>),
        (status = 400, description = "A filter, cursor or limit is not valid", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn people(
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

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ReportParams {
    /// `json` (default) or `csv`.
    #[param(value_type = Option<ReportFormat>)]
    format: Option<String>,
}

/// The reports (`reports::NAMES`; a test keeps the two lists the same).
#[derive(Debug, utoipa::ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)] // documents the accepted values of `name`
pub enum ReportName {
    Access,
    Drift,
    Unmanaged,
    Invites,
    Workspaces,
    Keys,
}

/// The formats a report is served in.
#[derive(Debug, utoipa::ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)] // documents the accepted values of `format`
pub enum ReportFormat {
    Json,
    Csv,
}

/// `GET /api/v1/reports/{name}?format=json|csv`: a best-practice report, with when the
/// organization mirror it read was refreshed (in the body, and in
/// `x-keycard-mirror-refreshed-at`).
#[utoipa::path(
    get,
    path = "/api/v1/reports/{name}",
    tag = "reports",
    params(
        ("name" = ReportName, Path, description = "The report"),
        ReportParams,
    ),
    responses(
        (status = 200, description = "The report",
            headers(("x-keycard-mirror-refreshed-at" = String, description = "When the organization mirror the report read was refreshed (RFC 3339), or `never`")),
            content(
                (super::reports::Report = "application/json"),
                (String = "text/csv"),
            )),
        (status = 400, description = "`format` is not json or csv", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such report", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn report(
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
