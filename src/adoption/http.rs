//! The adoption routes of the ops API (`/api/v1`, behind the ops token): people listed
//! with filters and cursor paging.

use axum::Router;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;

use crate::http::ops::query_problem;
use crate::http::{AppState, Problem};
use crate::journal::PeopleFilter;

/// Registered under `/api/v1` by `crate::http::router`.
pub fn routes() -> Router<AppState> {
    Router::new().route("/people", get(people))
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
