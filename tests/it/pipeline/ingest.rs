//! Deliveries that must be refused: the right 4xx, a problem+json body, and no event.

use super::harness::*;
use serde_json::json;
use sqlx::PgPool;

fn body() -> Vec<u8> {
    hire("E1", "ada@acme.test", "Engineering", t0())
        .to_string()
        .into_bytes()
}

async fn refused(
    h: &Harness,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    want: u16,
    code: &str,
) {
    let (status, problem) = h.post_raw(&headers, body).await;
    assert_eq!(status, want, "{problem}");
    assert_eq!(problem["status"], want);
    assert_eq!(problem["code"], code, "{problem}");
    let text = problem.to_string();
    assert!(!text.contains("whsec_"), "no secret in answers");
    assert_eq!(
        h.event_count().await,
        0,
        "a refused delivery records no event"
    );
}

fn set(headers: &mut [(String, String)], name: &str, value: &str) {
    for (k, v) in headers.iter_mut() {
        if k == name {
            *v = value.to_owned();
        }
    }
}

#[sqlx::test(migrations = "./migrations/postgres")]
async fn bad_signatures_and_timestamps_are_401(pool: PgPool) {
    let h = Harness::start(pool).await;
    let b = body();

    let mut tampered = h.signed("m1", &b, SECRET, 0);
    set(
        &mut tampered,
        "webhook-signature",
        "v1,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
    );
    refused(&h, tampered, b.clone(), 401, "signature_mismatch").await;

    let wrong = h.signed(
        "m1",
        &b,
        "whsec_dGhpcyBpcyBub3QgdGhlIHJpZ2h0IHNlY3JldA==",
        0,
    );
    refused(&h, wrong, b.clone(), 401, "signature_mismatch").await;

    let stale = h.signed("m1", &b, SECRET, -301);
    refused(&h, stale, b.clone(), 401, "timestamp_too_old").await;

    let future = h.signed("m1", &b, SECRET, 301);
    refused(&h, future, b.clone(), 401, "timestamp_in_future").await;

    let mut missing = h.signed("m1", &b, SECRET, 0);
    missing.retain(|(k, _)| k != "webhook-signature");
    refused(&h, missing, b.clone(), 401, "missing_header").await;

    // One byte of the body changed after signing.
    let headers = h.signed("m1", &b, SECRET, 0);
    let mut changed = b.clone();
    if let Some(last) = changed.iter().rposition(|c| *c == b'g') {
        changed[last] = b'G';
    }
    refused(&h, headers, changed, 401, "signature_mismatch").await;
}

#[sqlx::test(migrations = "./migrations/postgres")]
async fn the_previous_secret_still_verifies_during_rotation(pool: PgPool) {
    let h = Harness::start(pool).await;
    let b = body();
    let headers = h.signed("m1", &b, OLD_SECRET, 0);
    let (status, _) = h.post_raw(&headers, b).await;
    assert_eq!(status, 202);
    let events = h
        .db()
        .await
        .list_events(&keycard::journal::JournalFilter {
            limit: 5,
            ..Default::default()
        })
        .await;
    let events = events.unwrap_or_else(|e| panic!("{e}")).data;
    assert_eq!(
        events[0].signature_key,
        Some(1),
        "journal records which secret matched"
    );
}

#[sqlx::test(migrations = "./migrations/postgres")]
async fn malformed_payloads_are_400(pool: PgPool) {
    let h = Harness::start(pool).await;
    let bad_json = b"{\"type\": \"person.hired\", ".to_vec();
    refused(
        &h,
        h.signed("m1", &bad_json, SECRET, 0),
        bad_json,
        400,
        "invalid_payload",
    )
    .await;

    let no_id = json!({ "type": "person.hired", "person": { "email": "a@acme.test" } })
        .to_string()
        .into_bytes();
    let (status, problem) = h.post_raw(&h.signed("m2", &no_id, SECRET, 0), no_id).await;
    assert_eq!(status, 400);
    assert!(
        problem["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("person.id"),
        "{problem}"
    );

    let unknown = json!({ "type": "person.fired", "person": { "id": "E1" } })
        .to_string()
        .into_bytes();
    refused(
        &h,
        h.signed("m3", &unknown, SECRET, 0),
        unknown,
        400,
        "invalid_payload",
    )
    .await;

    // PostgreSQL cannot store U+0000: without a check this delivery would be answered 503
    // on every retry, forever. It is a 400 naming the cause instead.
    let nul = br#"{"type":"person.hired","person":{"id":"E1","email":"a@acme.test","attributes":{"note":"a\u0000b"}}}"#.to_vec();
    let (status, problem) = h
        .post_raw(&h.signed("m4", &nul, SECRET, 0), nul.clone())
        .await;
    assert_eq!(status, 400, "{problem}");
    assert_eq!(problem["code"], "invalid_payload");
    assert!(
        problem["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("NUL"),
        "{problem}"
    );
    // ...but only once the signature holds: a forged one is still a 401.
    let (status, _) = h
        .post_raw(
            &h.signed("m5", &nul, "whsec_dGhpcyBpcyBub3QgdGhlIHNlY3JldA==", 0),
            nul,
        )
        .await;
    assert_eq!(status, 401);
    assert_eq!(h.event_count().await, 0);
}

#[sqlx::test(migrations = "./migrations/postgres")]
async fn size_type_and_source_checks(pool: PgPool) {
    let h = Harness::start(pool).await;
    let huge = json!({ "type": "person.hired", "person": { "id": "E1", "email": "a@acme.test", "name": "x".repeat(70_000) } })
        .to_string()
        .into_bytes();
    refused(
        &h,
        h.signed("m1", &huge, SECRET, 0),
        huge,
        413,
        "payload_too_large",
    )
    .await;

    let b = body();
    let mut as_text = h.signed("m2", &b, SECRET, 0);
    set(&mut as_text, "content-type", "text/plain");
    refused(&h, as_text, b.clone(), 415, "unsupported_media_type").await;

    let resp = h
        .http
        .post(format!("{}/webhooks/nope", h.base))
        .header("content-type", "application/json")
        .body(b)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(resp.status().as_u16(), 404);
    assert_eq!(
        resp.headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("application/problem+json")
    );
}

#[sqlx::test(migrations = "./migrations/postgres")]
async fn a_wrong_method_is_problem_json(pool: PgPool) {
    let h = Harness::start(pool).await;
    for (method, path) in [
        ("PUT", "/webhooks/hr"),
        ("GET", "/webhooks/hr"),
        ("POST", "/api/v1/events"),
    ] {
        let resp = h
            .http
            .request(
                reqwest::Method::from_bytes(method.as_bytes()).unwrap_or_default(),
                format!("{}{path}", h.base),
            )
            .bearer_auth(OPS_TOKEN)
            .send()
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(resp.status().as_u16(), 405, "{method} {path}");
        // RFC 9110 §15.5.6: a 405 names the methods that are allowed.
        let allow = resp
            .headers()
            .get("allow")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let expected = if path.starts_with("/webhooks/") {
            "POST"
        } else {
            "GET"
        };
        assert!(allow.contains(expected), "{method} {path}: Allow {allow:?}");
        assert_eq!(
            resp.headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok()),
            Some("application/problem+json"),
            "{method} {path}"
        );
        let problem: serde_json::Value = resp.json().await.unwrap_or_default();
        assert_eq!(problem["code"], "method_not_allowed", "{problem}");
    }
}

#[sqlx::test(migrations = "./migrations/postgres")]
async fn journal_unreachable_is_503(pool: PgPool) {
    let h = Harness::start(pool.clone()).await;
    pool.close().await;
    let b = body();
    let (status, problem) = h.post_raw(&h.signed("m1", &b, SECRET, 0), b).await;
    assert_eq!(status, 503, "{problem}");
    assert_eq!(problem["code"], "journal_unavailable");
}

#[sqlx::test(migrations = "./migrations/postgres")]
async fn ops_api_needs_the_token(pool: PgPool) {
    let h = Harness::start(pool).await;
    h.deliver("m1", hire("E1", "ada@acme.test", "Sales", t0()))
        .await;
    h.settle().await;
    let url = format!("{}/api/v1/actions?person=E1", h.base);
    let anon = h
        .http
        .get(&url)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(anon.status().as_u16(), 401);
    let ok = h
        .http
        .get(&url)
        .bearer_auth(OPS_TOKEN)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(ok.status().as_u16(), 200);
    let page: serde_json::Value = ok.json().await.unwrap_or_default();
    assert_eq!(page["data"][0]["kind"], "wait_for_acceptance");
    let person = h
        .http
        .get(format!("{}/api/v1/people/E1", h.base))
        .bearer_auth(OPS_TOKEN)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let person: serde_json::Value = person.json().await.unwrap_or_default();
    assert_eq!(person["desired"]["org_role"], "user");
    assert_eq!(person["events"].as_array().map(Vec::len), Some(1));
    assert_eq!(person["actions"][0]["person_email"], "ada@acme.test");

    // The person filter takes an email address too.
    let get = |query: &str| {
        let req = h
            .http
            .get(format!("{}/api/v1/{query}", h.base))
            .bearer_auth(OPS_TOKEN);
        async move {
            let resp = req.send().await.unwrap_or_else(|e| panic!("{e}"));
            let status = resp.status().as_u16();
            let ct = resp
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned();
            let body: serde_json::Value = resp.json().await.unwrap_or_default();
            (status, ct, body)
        }
    };
    let (status, _, page) = get("actions?person=ADA@acme.test").await;
    assert_eq!(status, 200);
    assert_eq!(page["data"].as_array().map(Vec::len), Some(2), "{page}");
    let (_, _, page) = get("events?person=ada@acme.test").await;
    assert_eq!(page["data"].as_array().map(Vec::len), Some(1), "{page}");

    // Filters that can never match are refused with the valid values, not answered empty.
    for (query, needle) in [
        ("events?status=bogus", "applied"),
        ("actions?status=bogus", "needs_manual_action"),
        ("events?kind=bogus", "hired"),
        ("actions?kind=bogus", "create_invite"),
        ("events?cursor=garbage", "malformed"),
        ("actions?cursor=garbage", "malformed"),
        // Well formed, but naming no row: refused, not an empty (or complete) page.
        ("actions?cursor=OTk5OTk5OQ", "does not point"),
        (
            "events?cursor=MjAyNi0wMS0wMVQwMDowMDowMCswMDowMHwwMDAwMDAwMC0wMDAwLTAwMDAtMDAwMC0wMDAwMDAwMDAwMDA",
            "does not point",
        ),
        ("events?limit=0", "limit"),
        ("events?since=yesterday", "RFC 3339"),
    ] {
        let (status, ct, problem) = get(query).await;
        assert_eq!(
            (status, ct.as_str(), &problem["code"]),
            (
                400,
                "application/problem+json",
                &serde_json::json!("invalid_query")
            ),
            "{query}: {problem}"
        );
        assert!(
            problem["detail"]
                .as_str()
                .unwrap_or_default()
                .contains(needle),
            "{query}: {problem}"
        );
    }
}
