//! Console sign-in: an operator token exchanged for a journaled session cookie.

use axum::extract::{Form, Request, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::pages;
use crate::state::AppState;

pub(super) const COOKIE: &str = "keycard_console";
/// How long a console session lasts.
const SESSION_HOURS: i64 = 8;

/// The signed-in operator (in the request's extensions).
#[derive(Debug, Clone)]
pub(crate) struct Signed {
    pub name: String,
    pub role: String,
}

impl Signed {
    pub(crate) fn can_write(&self) -> bool {
        self.role == "operator"
    }

    /// The journal record of a write by this operator from the console (the reason checked).
    pub(crate) fn write(
        &self,
        reason: &str,
    ) -> crate::journal::JournalResult<crate::journal::OperatorWrite> {
        crate::journal::OperatorWrite::new(self.name.clone(), "console", reason)
    }
}

fn session_id(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v.to_owned())
        .filter(|v| !v.is_empty())
}

fn digest(id: &str) -> String {
    hex::encode(Sha256::digest(id.as_bytes()))
}

/// Lets a request in with a live session; otherwise to the sign-in page.
pub(super) async fn require_session(
    State(app): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let signed = match session_id(request.headers()) {
        Some(id) => match app.journal.conn().await {
            Ok(mut c) => c
                .console_session(&digest(&id), app.clock.now())
                .await
                .ok()
                .flatten(),
            Err(e) => return pages::error_page(&e.to_string()).into_response(),
        },
        None => None,
    };
    let Some(s) = signed else {
        // The full path: inside the nested router the URI lacks the `/console` prefix.
        let next_url = request
            .extensions()
            .get::<axum::extract::OriginalUri>()
            .map_or_else(|| request.uri(), |o| &o.0)
            .path_and_query()
            .map(|p| p.as_str().to_owned())
            .unwrap_or_default();
        let target = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("next", &next_url)
            .finish();
        return Redirect::to(&format!("/console/login?{target}")).into_response();
    };
    request.extensions_mut().insert(Signed {
        name: s.operator,
        role: s.role,
    });
    next.run(request).await
}

#[derive(Debug, Deserialize)]
pub(super) struct LoginQuery {
    next: Option<String>,
}

pub(super) async fn login_page(
    axum::extract::Query(q): axum::extract::Query<LoginQuery>,
) -> Response {
    pages::login(q.next.as_deref().unwrap_or("/console"), None).into_response()
}

#[derive(Debug, Deserialize)]
pub(super) struct LoginForm {
    token: String,
    next: Option<String>,
}

/// Who a token belongs to (name, role), if anyone: the configured operators
/// (`[[server.operators]]`, or `ops_token_env` as the operator `ops`).
fn operator_for(app: &AppState, token: &str) -> Option<(String, String)> {
    let mut headers = HeaderMap::new();
    headers.insert(
        header::AUTHORIZATION,
        HeaderValue::from_str(&format!("Bearer {token}")).ok()?,
    );
    let who = app.operators.authenticate(&headers, None).ok()?;
    Some((who.name, who.role.as_str().to_owned()))
}

/// Only a path inside the console: never an open redirect.
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n) if n.starts_with("/console") && !n.contains("//") && !n.contains('\\') => {
            n.to_owned()
        }
        _ => "/console".into(),
    }
}

pub(super) async fn login(
    State(app): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    let next = safe_next(form.next.as_deref());
    let Some((name, role)) = operator_for(&app, form.token.trim()) else {
        tracing::warn!("console sign-in refused: unknown token");
        return (
            axum::http::StatusCode::UNAUTHORIZED,
            pages::login(&next, Some("That token is not an operator's token.")),
        )
            .into_response();
    };
    let bytes: [u8; 32] = std::array::from_fn(|_| rand::random::<u8>());
    let id = URL_SAFE_NO_PAD.encode(bytes);
    let now = app.clock.now();
    let created = async {
        let mut c = app.journal.conn().await?;
        c.create_console_session(
            &digest(&id),
            &name,
            &role,
            now,
            now + chrono::Duration::hours(SESSION_HOURS),
        )
        .await
    }
    .await;
    if let Err(e) = created {
        return pages::error_page(&e.to_string()).into_response();
    }
    tracing::info!(operator = %name, "console sign-in");
    let secure = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("https"));
    let cookie = format!(
        "{COOKIE}={id}; Path=/console; HttpOnly; SameSite=Strict; Max-Age={}{}",
        SESSION_HOURS * 3600,
        if secure { "; Secure" } else { "" }
    );
    let mut resp = Redirect::to(&next).into_response();
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        resp.headers_mut().insert(header::SET_COOKIE, v);
    }
    resp
}

pub(super) async fn logout(State(app): State<AppState>, headers: HeaderMap) -> Response {
    if let Some(id) = session_id(&headers)
        && let Ok(mut c) = app.journal.conn().await
    {
        let _ = c.end_console_session(&digest(&id)).await;
    }
    let mut resp = Redirect::to("/console/login").into_response();
    resp.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static(
            "keycard_console=; Path=/console; HttpOnly; SameSite=Strict; Max-Age=0",
        ),
    );
    resp
}

/// A write must come from a console page of this host: a cross-site form is refused.
pub(super) fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        // Browsers send Origin on every POST; a client that does not is not a browser
        // carrying someone's cookie across sites (SameSite=Strict covers old browsers).
        return true;
    };
    let host = headers
        .get("x-forwarded-host")
        .or_else(|| headers.get(header::HOST))
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    url::Url::parse(origin)
        .ok()
        .and_then(|u| {
            u.host_str().map(|h| match u.port() {
                Some(p) => format!("{h}:{p}"),
                None => h.to_owned(),
            })
        })
        .is_some_and(|o| o == host)
}

#[cfg(test)]
mod tests {
    use super::safe_next;

    #[test]
    fn next_stays_inside_the_console() {
        assert_eq!(safe_next(Some("/console/held")), "/console/held");
        assert_eq!(safe_next(Some("https://evil.example")), "/console");
        assert_eq!(safe_next(Some("/console//evil.example")), "/console");
        assert_eq!(safe_next(None), "/console");
    }
}
