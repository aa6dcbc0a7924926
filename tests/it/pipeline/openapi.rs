//! The OpenAPI document as a live server serves it: OpenAPI 3.1 that parses as a whole,
//! every reference resolving, every route of the ops API documented with exactly the
//! methods the router answers (a route or a method added without its `#[utoipa::path]`
//! fails here), the shared errors and the bearer scheme on every ops operation, and the
//! problems the server really answers shaped as the document says.

use serde_json::Value;

use super::harness::*;

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

/// Every `$ref` in `node`.
fn refs<'a>(node: &'a Value, out: &mut Vec<&'a str>) {
    match node {
        Value::Object(map) => {
            for (k, v) in map {
                match (k.as_str(), v) {
                    ("$ref", Value::String(r)) => out.push(r),
                    _ => refs(v, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| refs(v, out)),
        _ => {}
    }
}

/// The JSON pointer `#/a/b` resolved in `doc`.
fn resolve<'a>(doc: &'a Value, reference: &str) -> Option<&'a Value> {
    doc.pointer(reference.strip_prefix('#')?)
        .filter(|v| !v.is_null())
}

/// A problem answered by the live server: problem+json, and a `type` spelt from its code.
async fn problem(resp: reqwest::Response) -> (u16, reqwest::header::HeaderMap, Value) {
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    assert_eq!(
        headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default(),
        "application/problem+json"
    );
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["status"], status, "{body}");
    let slug = body["code"]
        .as_str()
        .unwrap_or_else(|| body["title"].as_str().unwrap())
        .to_lowercase()
        .replace(['_', ' '], "-");
    assert_eq!(
        body["type"],
        format!("https://keycard.dev/problems/{slug}"),
        "{body}"
    );
    (status, headers, body)
}

pub async fn the_openapi_document_describes_every_route(db: TestDb) {
    let h = Harness::start(db).await;
    // Readable without a token: it holds no data.
    let resp = h
        .http
        .get(format!("{}/api/v1/openapi.json", h.base))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    let doc: Value = resp.json().await.unwrap();
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1."),
        "{}",
        doc["openapi"]
    );
    // The fixed fields OpenAPI 3.1 requires (the full meta-schema check is schemathesis's,
    // in scripts/test), unique operation ids, and every reference resolving.
    assert!(doc["info"]["title"].is_string() && doc["info"]["version"].is_string());
    let mut operation_ids = std::collections::BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        assert!(path.starts_with('/'), "{path}");
        for (method, operation) in item.as_object().unwrap() {
            let id = operation["operationId"].as_str().unwrap();
            assert!(
                operation_ids.insert(id),
                "{method} {path}: operationId {id} twice"
            );
            let responses = operation["responses"].as_object().unwrap();
            assert!(!responses.is_empty(), "{method} {path}");
            for (status, response) in responses {
                assert!(
                    response["description"].is_string() || response["$ref"].is_string(),
                    "{method} {path} {status}"
                );
            }
            for p in operation["parameters"].as_array().into_iter().flatten() {
                assert!(["path", "query", "header"].contains(&p["in"].as_str().unwrap()));
                assert!(p["schema"].is_object(), "{method} {path} {p}");
                if p["in"] == "path" {
                    assert_eq!(p["required"], true);
                    assert!(path.contains(&format!("{{{}}}", p["name"].as_str().unwrap())));
                }
            }
        }
    }
    let mut all = Vec::new();
    refs(&doc, &mut all);
    assert!(!all.is_empty());
    for r in &all {
        assert!(resolve(&doc, r).is_some(), "dangling $ref {r}");
    }

    let paths = doc["paths"].as_object().unwrap();
    let served: Vec<String> = keycard::http::ops_api_paths()
        .into_iter()
        .map(|p| format!("/api/v1{p}"))
        .collect();
    assert!(served.len() >= 13, "{served:?}");
    for path in &served {
        assert!(
            paths.contains_key(path),
            "{path} is served but not documented"
        );
    }
    for path in paths.keys().filter(|p| p.starts_with("/api/v1/")) {
        assert!(
            served.contains(path) || path == "/api/v1/openapi.json",
            "{path} is documented but not served"
        );
    }
    for path in [
        "/webhooks/{source}",
        "/healthz",
        "/readyz",
        "/metrics",
        "/api/v1/openapi.json",
    ] {
        assert!(paths.contains_key(path), "{path} is not documented");
    }
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["type"],
        "http"
    );
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );

    // The methods: each documented one is routed (anything but 405), each other one is 405.
    for path in &served {
        let item = &paths[path];
        let url = format!(
            "{}{}",
            h.base,
            path.replace("{id}", "0190a4c5-0000-7000-8000-000000000000")
                .replace("{name}", "access")
        );
        for method in METHODS {
            let resp = h
                .http
                .request(method.to_uppercase().parse().unwrap(), &url)
                .bearer_auth(OPS_TOKEN)
                .send()
                .await
                .unwrap();
            let status = resp.status().as_u16();
            let operation = &item[method];
            if operation.is_object() {
                assert_ne!(status, 405, "{method} {path} is documented but not routed");
                assert_eq!(operation["security"][0]["bearer"], Value::Array(vec![]));
                let unauthorized = &operation["responses"]["401"];
                let unauthorized = match unauthorized["$ref"].as_str() {
                    Some(r) => resolve(&doc, r).unwrap(),
                    None => unauthorized,
                };
                assert!(
                    unauthorized["headers"]["WWW-Authenticate"].is_object(),
                    "{method} {path}: 401 without WWW-Authenticate"
                );
                assert!(unauthorized["content"]["application/problem+json"].is_object());
                assert!(
                    operation["responses"]
                        .as_object()
                        .unwrap()
                        .keys()
                        .any(|s| s.starts_with('2')),
                    "{method} {path} documents no success"
                );
            } else {
                assert_eq!(status, 405, "{method} {path} is routed but not documented");
            }
        }
    }

    // What the server answers is what the document says: a 401 with its challenge, a
    // refused filter, an unknown route, all problem+json with a consistent type.
    let resp = h
        .http
        .get(format!("{}/api/v1/actions", h.base))
        .send()
        .await
        .unwrap();
    let (status, headers, _) = problem(resp).await;
    assert_eq!(status, 401);
    assert_eq!(headers["www-authenticate"], r#"Bearer realm="keycard""#);
    let resp = h
        .http
        .get(format!("{}/api/v1/actions", h.base))
        .bearer_auth("not-a-token")
        .send()
        .await
        .unwrap();
    let (status, headers, body) = problem(resp).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (401, Some("invalid_token"))
    );
    assert!(
        headers["www-authenticate"]
            .to_str()
            .unwrap()
            .contains(r#"error="invalid_token""#)
    );
    let resp = h
        .http
        .get(format!("{}/api/v1/actions?limit=0", h.base))
        .bearer_auth(OPS_TOKEN)
        .send()
        .await
        .unwrap();
    let (status, _, body) = problem(resp).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("invalid_query"))
    );
    let resp = h
        .http
        .post(format!("{}/api/v1/sync", h.base))
        .bearer_auth(OPS_TOKEN)
        .body("{}")
        .send()
        .await
        .unwrap();
    let (status, _, body) = problem(resp).await;
    assert_eq!((status, body["code"].as_str()), (400, Some("invalid_body")));
    assert_eq!(body["title"], "Invalid request body");
    let resp = h
        .http
        .get(format!("{}/api/v1/no-such-route", h.base))
        .bearer_auth(OPS_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(problem(resp).await.0, 404);
    let resp = h
        .http
        .post(format!("{}/webhooks/no-such-source", h.base))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(problem(resp).await.0, 404);
}
