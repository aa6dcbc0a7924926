//! The OpenAPI 3.1 description of Keycard's own HTTP surface, generated from the handlers'
//! `#[utoipa::path]` annotations and the types they answer with: the ops API (`/api/v1`),
//! the webhook endpoints, health and metrics. Served at [`PATH`] without a token (it holds
//! no data). SCIM is described by its own discovery endpoints (RFC 7644 §4), the console is
//! HTML: neither is here.
//!
//! What every ops operation shares (the bearer scheme; 401 with `WWW-Authenticate`, 403,
//! 500, 503 as problem+json) is added once by [`Shared`] rather than repeated on each handler.

use std::sync::LazyLock;

use axum::response::{IntoResponse, Response};
use utoipa::OpenApi;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{
    Content, HeaderBuilder, Ref, RefOr, ResponseBuilder, Type,
    schema::{ObjectBuilder, Schema},
};

use super::problem::{BEARER_CHALLENGE, INVALID_TOKEN_CHALLENGE, Problem};

/// Where the document is served.
pub const PATH: &str = "/api/v1/openapi.json";

/// The media type of every error.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// The name of the ops API's security scheme in the document.
pub const BEARER: &str = "bearer";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Keycard",
        description = "Joiner / mover / leaver automation for the Claude Platform: the operators' journal API (`/api/v1`), the webhook endpoints HR systems and identity providers deliver to, health and metrics. Every error is an RFC 9457 problem (`application/problem+json`) whose `type` is `https://keycard.dev/problems/<code>`.",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    paths(
        super::ops::events,
        super::ops::event,
        super::ops::actions,
        super::ops::person,
        super::writes::release_bulk,
        super::writes::release,
        super::writes::resolve,
        super::writes::link,
        super::writes::sync,
        super::writes::operator_log,
        super::writes::me,
        crate::adoption::http::people,
        crate::adoption::http::report,
        super::webhooks::receive,
        super::webhooks::handshake,
        super::healthz,
        super::readyz,
        super::metrics,
        document,
    ),
    components(schemas(
        Problem,
        crate::adoption::http::ReportName,
        crate::adoption::http::ReportFormat,
    )),
    modifiers(&Shared),
    tags(
        (name = "journal", description = "Events and actions as the journal keeps them"),
        (name = "people", description = "People, their desired access and timeline"),
        (name = "operators", description = "Writes by named operators (each journaled with the operator's name and reason), and the operator log"),
        (name = "reports", description = "Best-practice reports over the organization mirror"),
        (name = "webhooks", description = "Deliveries from HR systems and identity providers"),
        (name = "health", description = "Liveness, readiness and metrics"),
        (name = "meta", description = "This document"),
    ),
)]
pub struct ApiDoc;

/// Built once: the document is the same for the life of the process.
static DOCUMENT: LazyLock<utoipa::openapi::OpenApi> = LazyLock::new(ApiDoc::openapi);

/// The document as served.
pub fn document_value() -> &'static utoipa::openapi::OpenApi {
    &DOCUMENT
}

/// `GET /api/v1/openapi.json`.
#[utoipa::path(
    get,
    path = "/api/v1/openapi.json",
    tag = "meta",
    security(()),
    responses((status = 200, description = "This OpenAPI 3.1 document", body = Object))
)]
pub async fn document() -> Response {
    axum::Json(document_value()).into_response()
}

/// The bearer scheme and the responses every ops operation shares.
struct Shared;

fn problem_response(description: &str) -> ResponseBuilder {
    ResponseBuilder::new().description(description).content(
        PROBLEM_JSON,
        Content::new(Some(Ref::from_schema_name("Problem"))),
    )
}

fn string_header(description: &str) -> utoipa::openapi::Header {
    HeaderBuilder::new()
        .schema(Some(Schema::Object(
            ObjectBuilder::new().schema_type(Type::String).build(),
        )))
        .description(Some(description))
        .build()
}

impl utoipa::Modify for Shared {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.security_schemes.insert(
            BEARER.to_owned(),
            RefOr::T(SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "A named operator's token (`[[server.operators]]`, or the older `server.ops_token`). Behind a trusted sign-in proxy (`[server.auth_proxy]`) the proxy's identity header signs the request in instead. Reads need any role; writes (POST) need the `operator` role.",
                    ))
                    .build(),
            )),
        );
        let shared = [
            (
                "Unauthorized",
                problem_response(
                    "No token (`missing-token`), a token no operator has (`invalid-token`), or no operator is configured (`ops-api-disabled`)",
                )
                .header(
                    "WWW-Authenticate",
                    string_header(&format!(
                        "`{BEARER_CHALLENGE}`, or `{INVALID_TOKEN_CHALLENGE}` for a wrong token (RFC 6750)"
                    )),
                ),
            ),
            (
                "Forbidden",
                problem_response(
                    "A viewer attempted a write (`role-viewer`), or a sign-in proxy named nobody configured (`unknown-operator`)",
                ),
            ),
            (
                "Unavailable",
                problem_response("The journal cannot be reached: retry (`journal-unavailable`)")
                    .header("Retry-After", string_header("Seconds to wait")),
            ),
            (
                "InternalError",
                problem_response("An unexpected failure (`internal-error`)"),
            ),
        ];
        for (name, response) in shared {
            components
                .responses
                .insert(name.to_owned(), RefOr::T(response.build()));
        }
        // `/events` and `/actions` share one filter struct; each takes its own statuses and
        // kinds, so the document names the right enum for each (a value outside it is a 400).
        let typed = [
            ("/api/v1/events", "EventStatus", "EventKind"),
            ("/api/v1/actions", "ActionStatus", "ActionKind"),
        ];
        for (path, status, kind) in typed {
            let Some(operation) = doc.paths.paths.get_mut(path).and_then(|i| i.get.as_mut()) else {
                continue;
            };
            for parameter in operation.parameters.iter_mut().flatten() {
                if let RefOr::T(parameter) = parameter {
                    let schema = match parameter.name.as_str() {
                        "status" => status,
                        "kind" => kind,
                        _ => continue,
                    };
                    parameter.schema = Some(RefOr::Ref(Ref::from_schema_name(schema)));
                }
            }
        }
        let shared_by_status = [
            ("401", "Unauthorized"),
            ("403", "Forbidden"),
            ("500", "InternalError"),
            ("503", "Unavailable"),
        ];
        for (path, item) in doc.paths.paths.iter_mut() {
            if !path.starts_with("/api/v1/") || path == PATH {
                continue;
            }
            for operation in [&mut item.get, &mut item.post].into_iter().flatten() {
                operation.security =
                    Some(vec![SecurityRequirement::new(BEARER, Vec::<String>::new())]);
                for (status, name) in shared_by_status {
                    operation
                        .responses
                        .responses
                        .entry(status.to_owned())
                        .or_insert_with(|| RefOr::Ref(Ref::from_response_name(name)));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every ops route the router serves is in the document, and nothing else is under
    /// `/api/v1` (the live test checks the methods over HTTP).
    #[test]
    fn every_ops_route_is_documented() {
        let doc = document_value();
        let mut documented: Vec<String> = doc
            .paths
            .paths
            .keys()
            .filter(|p| p.starts_with("/api/v1/") && p.as_str() != PATH)
            .cloned()
            .collect();
        let mut served: Vec<String> = super::super::ops_api_paths()
            .into_iter()
            .map(|p| format!("/api/v1{p}"))
            .collect();
        documented.sort();
        served.sort();
        assert_eq!(documented, served);
    }

    #[test]
    fn events_and_actions_take_their_own_statuses_and_kinds() {
        let doc = serde_json::to_value(document_value()).unwrap();
        for (path, status, kind) in [
            ("/api/v1/events", "EventStatus", "EventKind"),
            ("/api/v1/actions", "ActionStatus", "ActionKind"),
        ] {
            let params = doc["paths"][path]["get"]["parameters"].as_array().unwrap();
            let schema = |name: &str| {
                params.iter().find(|p| p["name"] == name).unwrap()["schema"]["$ref"].clone()
            };
            assert_eq!(schema("status"), format!("#/components/schemas/{status}"));
            assert_eq!(schema("kind"), format!("#/components/schemas/{kind}"));
            assert!(doc["components"]["schemas"][status]["enum"].is_array());
            assert!(doc["components"]["schemas"][kind]["enum"].is_array());
        }
    }

    #[test]
    fn the_report_names_are_the_reports() {
        let doc = serde_json::to_value(document_value()).unwrap();
        let names = &doc["components"]["schemas"]["ReportName"]["enum"];
        assert_eq!(
            names,
            &serde_json::json!(crate::adoption::reports::NAMES),
            "ReportName (adoption/http.rs) must list reports::NAMES"
        );
    }

    #[test]
    fn the_document_is_openapi_3_1_with_the_bearer_scheme() {
        let doc = serde_json::to_value(document_value()).unwrap();
        assert_eq!(doc["openapi"], "3.1.0");
        assert_eq!(
            doc["components"]["securitySchemes"][BEARER]["scheme"],
            "bearer"
        );
        let unauthorized = &doc["components"]["responses"]["Unauthorized"];
        assert!(unauthorized["headers"]["WWW-Authenticate"].is_object());
        assert!(unauthorized["content"][PROBLEM_JSON].is_object());
    }
}
