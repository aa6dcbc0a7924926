//! Issue 15, "tests that guard the promises": the SCIM bearer check on every route and
//! method, not just `GET /Users`. No token, a wrong token and another SCIM source's token are
//! each 401, and nothing is journaled or stored.

use serde_json::{Value, json};

use super::harness::{Harness, TestDb, seed};
use super::{TOKEN, config, okta_user};

const ENTRA_TOKEN: &str = "entra-has-its-own-token-fedcba9876543210";

pub async fn every_scim_route_and_method_needs_this_sources_token(db: TestDb) {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let okta_file = dir.path().join("okta-token");
    let entra_file = dir.path().join("entra-token");
    std::fs::write(&okta_file, TOKEN).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(&entra_file, ENTRA_TOKEN).unwrap_or_else(|e| panic!("{e}"));
    // The shared config, with entra given a token of its own.
    let text = config(&okta_file);
    let shown = okta_file.display().to_string();
    let at = text.rfind(&shown).unwrap_or_else(|| panic!("token_file"));
    let text = format!(
        "{}{}{}",
        &text[..at],
        entra_file.display(),
        &text[at + shown.len()..]
    );
    let h = Harness::start_with(db, &text, seed()).await;

    let send = |method: &str, path: &str, token: Option<&str>, body: Option<Value>| {
        let mut req = h
            .http
            .request(
                reqwest::Method::from_bytes(method.as_bytes()).unwrap_or_default(),
                format!("{}/scim/v2/okta{path}", h.base),
            )
            .header("content-type", "application/scim+json");
        if let Some(t) = token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        if let Some(b) = body {
            req = req.body(b.to_string());
        }
        async move {
            let resp = req.send().await.unwrap_or_else(|e| panic!("{e}"));
            (
                resp.status().as_u16(),
                resp.json::<Value>().await.unwrap_or(Value::Null),
            )
        }
    };

    // Real resources to aim at, made with the right token.
    let (st, user) = send(
        "POST",
        "/Users",
        Some(TOKEN),
        Some(okta_user("held@acme.test", "Engineering", true)),
    )
    .await;
    assert_eq!(st, 201, "{user}");
    let uid = user["id"].as_str().unwrap_or_default().to_owned();
    let (st, group) = send(
        "POST",
        "/Groups",
        Some(TOKEN),
        Some(json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "eng", "members": []})),
    )
    .await;
    assert_eq!(st, 201, "{group}");
    let gid = group["id"].as_str().unwrap_or_default().to_owned();
    let events_before = h.event_count().await;

    // Behind a TLS-terminating proxy, the resource's location says https; only http and
    // https are taken from X-Forwarded-Proto, anything else is http.
    for (proto, scheme) in [
        (None, "http"),
        (Some("https"), "https"),
        (Some("http"), "http"),
        (Some("gopher"), "http"),
    ] {
        let mut req = h
            .http
            .get(format!("{}/scim/v2/okta/Users/{uid}", h.base))
            .header("authorization", format!("Bearer {TOKEN}"));
        if let Some(p) = proto {
            req = req.header("x-forwarded-proto", p);
        }
        let got: Value = req
            .send()
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .json()
            .await
            .unwrap_or(Value::Null);
        let location = got["meta"]["location"].as_str().unwrap_or_default();
        assert!(
            location.starts_with(&format!("{scheme}://"))
                && location.ends_with(&format!("/scim/v2/okta/Users/{uid}")),
            "{proto:?}: {got}"
        );
    }

    let deactivate = json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{ "op": "replace", "value": { "active": false } }]
    });
    let search = json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
        "filter": "userName eq \"held@acme.test\""
    });
    let new_user = okta_user("intruder@acme.test", "Engineering", true);
    let new_group =
        json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "x"});
    let table: Vec<(&str, String, Option<Value>)> = vec![
        ("GET", "/ServiceProviderConfig".into(), None),
        ("GET", "/Schemas".into(), None),
        (
            "GET",
            "/Schemas/urn:ietf:params:scim:schemas:core:2.0:User".into(),
            None,
        ),
        ("GET", "/ResourceTypes".into(), None),
        ("GET", "/ResourceTypes/User".into(), None),
        ("GET", "/Users".into(), None),
        ("POST", "/Users".into(), Some(new_user.clone())),
        ("POST", "/Users/.search".into(), Some(search.clone())),
        ("POST", "/Groups/.search".into(), Some(search.clone())),
        ("POST", "/.search".into(), Some(search)),
        ("GET", format!("/Users/{uid}"), None),
        (
            "PUT",
            format!("/Users/{uid}"),
            Some(okta_user("held@acme.test", "Sales", false)),
        ),
        ("PATCH", format!("/Users/{uid}"), Some(deactivate.clone())),
        ("DELETE", format!("/Users/{uid}"), None),
        ("GET", "/Groups".into(), None),
        ("POST", "/Groups".into(), Some(new_group.clone())),
        ("GET", format!("/Groups/{gid}"), None),
        ("PUT", format!("/Groups/{gid}"), Some(new_group)),
        (
            "PATCH",
            format!("/Groups/{gid}"),
            Some(json!({
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [{ "op": "add", "path": "members", "value": [{ "value": uid }] }]
            })),
        ),
        ("DELETE", format!("/Groups/{gid}"), None),
    ];
    for (method, path, body) in &table {
        for (label, token) in [
            ("no token", None),
            ("a wrong token", Some("not-the-token")),
            ("entra's token", Some(ENTRA_TOKEN)),
        ] {
            let (st, answer) = send(method, path, token, body.clone()).await;
            assert_eq!(st, 401, "{method} {path} with {label}: {answer}");
            assert_eq!(
                answer["schemas"],
                json!(["urn:ietf:params:scim:api:messages:2.0:Error"]),
                "{method} {path} with {label}"
            );
        }
    }
    assert_eq!(
        h.event_count().await,
        events_before,
        "nothing was journaled"
    );
    // And nothing was stored: the user and group are as they were.
    let (st, still) = send("GET", &format!("/Users/{uid}"), Some(TOKEN), None).await;
    assert_eq!((st, &still["active"]), (200, &json!(true)), "{still}");
    let (st, users) = send("GET", "/Users", Some(TOKEN), None).await;
    assert_eq!((st, &users["totalResults"]), (200, &json!(1)), "{users}");
    let (st, _) = send("GET", &format!("/Groups/{gid}"), Some(TOKEN), None).await;
    assert_eq!(st, 200);
}
