//! The fuzz targets' bodies (FUZZING.md): each feeds untrusted bytes to a parser the way a
//! request would, and fails only by panicking (the lint wall forbids panics outside tests,
//! so any panic here is a bug) or by a sanitizer report.
//!
//! Vendor payloads are signed here with the adapters' own `sign` helpers and a fixed secret,
//! so the fuzzer's bytes get past authentication into the mappings; `signature_headers`
//! instead fuzzes the headers themselves.

use std::sync::OnceLock;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Request};
use chrono::{DateTime, Utc};
use keycard::config::{Config, RawConfig};
use keycard::ingest::{DedupeKey, NativeEvent};
use keycard::sources::{Adapter, Delivery};
use tower::ServiceExt as _;

/// Every webhook kind, with secrets the signers below use.
const SOURCES: &str = r#"
[[sources]]
name = "hr"
kind = "keycard"
secret_env = "HR_SECRET"

[[sources]]
name = "bamboo"
kind = "bamboohr"
secret_env = "HR_TEXT_SECRET"

[[sources]]
name = "bob"
kind = "hibob"
secret_env = "HR_TEXT_SECRET"

[[sources]]
name = "okta"
kind = "okta"
secret_env = "OKTA_SECRET"

[[sources]]
name = "gusto"
kind = "gusto"
secret_env = "HR_TEXT_SECRET"

[[sources]]
name = "github"
kind = "generic-hmac"
secret_env = "HR_TEXT_SECRET"
header = "X-Hub-Signature-256"
prefix = "sha256="
id_header = "X-GitHub-Delivery"

[sources.mapping]
event_type = "/action"
event_id = "/event_id"
occurred_at = "/occurred_at"
effective_at = "/effective_date"
person_id = "/employee/id"
email = "/employee/work_email"
name = "/employee/full_name"
department = "/employee/department"
manager_email = "/employee/manager/email"
groups = "/employee/groups"
attributes = { level = "/employee/level" }

[sources.mapping.types]
"employee.hired" = "hired"
"employee.left" = "departed"
"employee.changed" = "updated"
"employee.termination_cancelled" = "change_cancelled"
"employee.birthday" = "ignore"

[[sources]]
name = "stripeish"
kind = "generic-hmac"
style = "stripe"
secret_env = "STRIPE_SECRET"

[sources.mapping]
event_type = "/type"
event_id = "/id"
occurred_at = "/created"
effective_at = "/data/object/effective_date"
person_id = "/data/object/id"
email = "/data/object/email"

[sources.mapping.types]
"employee.hired" = "hired"
"employee.terminated" = "departed"

[[sources]]
name = "idp"
kind = "scim"
token_env = "SCIM_TOKEN"

[[server.operators]]
name = "fuzz"
role = "operator"
token_env = "OPS_TOKEN"
"#;

const HR_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const TEXT_SECRET: &str = "fuzz-text-secret-0123456789abcdef";
const OKTA_SECRET: &str = "Bearer okta-fuzz-secret-0123456789";
const STRIPE_SECRET: &str = "whsec_fuzz_stripe_style_secret_0001";
const OPS_TOKEN: &str = "ops-fuzz-token-0123456789abcdef";

fn env(name: &str) -> Option<String> {
    let value = match name {
        "HR_SECRET" => HR_SECRET,
        "HR_TEXT_SECRET" => TEXT_SECRET,
        "OKTA_SECRET" => OKTA_SECRET,
        "STRIPE_SECRET" => STRIPE_SECRET,
        "SCIM_TOKEN" | "OPS_TOKEN" => OPS_TOKEN,
        _ => return None,
    };
    Some(value.to_owned())
}

fn config() -> &'static Config {
    static CONFIG: OnceLock<Config> = OnceLock::new();
    CONFIG.get_or_init(|| {
        let mut raw: RawConfig = toml::from_str(SOURCES).unwrap_or_else(|e| panic!("toml: {e}"));
        raw.server.listen = "127.0.0.1:0"
            .parse()
            .unwrap_or_else(|e| panic!("listen: {e}"));
        raw.admin_api.base_url = "http://127.0.0.1:9".into();
        raw.admin_api.dry_run = true;
        Config::from_raw(raw, env).unwrap_or_else(|e| panic!("config: {e}"))
    })
}

fn adapter(name: &str) -> &'static Adapter {
    config()
        .sources
        .get(name)
        .and_then(|s| s.adapter.as_ref())
        .unwrap_or_else(|| panic!("no adapter {name}"))
}

fn now() -> DateTime<Utc> {
    DateTime::from_timestamp(1_795_000_000, 0).unwrap_or_default()
}

fn headers(pairs: &[(&str, String)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        // A value the HTTP layer could not have received is skipped, as hyper would refuse it.
        if let (Ok(n), Ok(v)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_bytes(value.as_bytes()),
        ) {
            map.append(n, v);
        }
    }
    map
}

fn receive(source: &str, pairs: &[(&str, String)], body: &[u8]) {
    let map = headers(pairs);
    let delivery = Delivery {
        source,
        headers: &map,
        body,
        received_at: now(),
    };
    let _ = adapter(source).receive(&delivery);
}

/// The native event: parse, then turn into the canonical event as the journal would.
pub fn native_event(data: &[u8]) {
    if let Ok(event) = NativeEvent::parse(data) {
        let key = DedupeKey {
            source: "hr".into(),
            delivery_id: "msg_fuzz".into(),
        };
        let canonical = event.into_lifecycle(key, now(), data);
        let _ = serde_json::to_vec(&canonical);
    }
    let _ = keycard::ingest::json_duplicate_key(data);
    let _ = keycard::ingest::json_contains_nul(data);
}

/// A vendor payload, correctly signed for the kind the first byte selects, through that
/// source's adapter (authentication, then the mapping).
pub fn vendor_payload(data: &[u8]) {
    let Some((&which, body)) = data.split_first() else {
        return;
    };
    let ts = now();
    match which % 7 {
        0 => {
            let Some((stamp, sig)) = keycard::sources::bamboohr::sign(TEXT_SECRET, body, ts) else {
                return;
            };
            receive(
                "bamboo",
                &[
                    ("x-bamboohr-signature", sig),
                    ("x-bamboohr-timestamp", stamp),
                ],
                body,
            );
        }
        1 => {
            let Some(sig) = keycard::sources::hibob::sign(TEXT_SECRET, body) else {
                return;
            };
            receive("bob", &[("bob-signature", sig)], body);
        }
        2 => receive("okta", &[("authorization", OKTA_SECRET.to_owned())], body),
        3 => {
            let Some(sig) = keycard::sources::gusto::sign(TEXT_SECRET, body) else {
                return;
            };
            receive("gusto", &[("x-gusto-signature", sig)], body);
        }
        4 => {
            let sig = hmac_hex(TEXT_SECRET.as_bytes(), &[body]);
            receive(
                "github",
                &[
                    ("x-hub-signature-256", format!("sha256={sig}")),
                    ("x-github-delivery", "d-1".to_owned()),
                ],
                body,
            );
        }
        5 => {
            let t = ts.timestamp().to_string();
            let sig = hmac_hex(STRIPE_SECRET.as_bytes(), &[t.as_bytes(), b".", body]);
            receive(
                "stripeish",
                &[("stripe-signature", format!("t={t},v1={sig}"))],
                body,
            );
        }
        _ => {
            use keycard::sources::standard_webhooks::{MessageId, WebhookSecret, sign};
            let (Ok(secret), Ok(id)) = (WebhookSecret::parse(HR_SECRET), MessageId::parse("msg_1"))
            else {
                return;
            };
            let sig = sign(&secret, &id, ts.timestamp(), body);
            receive(
                "hr",
                &[
                    ("webhook-id", "msg_1".to_owned()),
                    ("webhook-timestamp", ts.timestamp().to_string()),
                    ("webhook-signature", sig),
                ],
                body,
            );
        }
    }
}

fn hmac_hex(key: &[u8], parts: &[&[u8]]) -> String {
    use keycard::sources::signing::{Algorithm, HmacKey};
    HmacKey::new(Algorithm::Sha256, key)
        .map(|k| k.sign(parts).iter().map(|b| format!("{b:02x}")).collect())
        .unwrap_or_default()
}

/// Signature and id headers as attackers write them: the first byte picks the source, then
/// lines are header values (in the kind's header order) and the rest after a blank line is
/// the body. Nothing here is validly signed: the parsers of the headers are the target.
pub fn signature_headers(data: &[u8]) {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    let text = String::from_utf8_lossy(rest);
    let (head, body) = text.split_once("\n\n").unwrap_or((&text, ""));
    let mut values = head.split('\n').map(str::to_owned);
    let mut next = || values.next().unwrap_or_default();
    let (source, names): (&str, &[&str]) = match which % 7 {
        0 => (
            "hr",
            &["webhook-id", "webhook-timestamp", "webhook-signature"],
        ),
        1 => ("bamboo", &["x-bamboohr-signature", "x-bamboohr-timestamp"]),
        2 => ("bob", &["bob-signature"]),
        3 => ("okta", &["authorization"]),
        4 => ("gusto", &["x-gusto-signature"]),
        5 => ("github", &["x-hub-signature-256", "x-github-delivery"]),
        _ => ("stripeish", &["stripe-signature"]),
    };
    let pairs: Vec<(&str, String)> = names.iter().map(|n| (*n, next())).collect();
    receive(source, &pairs, body.as_bytes());
    // The same header texts through the Standard Webhooks parsers directly.
    use keycard::sources::standard_webhooks::{MessageId, WebhookSecret};
    let _ = WebhookSecret::parse(head);
    let _ = MessageId::parse(head);
}

/// A SCIM filter for Users or Groups, then evaluated against a stored User.
pub fn scim_filter(data: &[u8]) {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    if let serde_json::Value::Object(user) = stored_user() {
        let _ = keycard::fuzzing::scim_filter(which % 2 == 0, text, &user);
    }
}

fn stored_user() -> serde_json::Value {
    serde_json::json!({
        "id": "u1", "userName": "ada@example.com", "active": true, "externalId": "E1",
        "name": { "givenName": "Ada", "familyName": "Lovelace" },
        "emails": [{ "value": "ada@example.com", "type": "work", "primary": true },
                   { "value": "ada@home.test", "type": "home" }],
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {
            "department": "Eng", "manager": { "value": "u0" } }
    })
}

/// A SCIM PATCH body applied to a stored User (or Group).
pub fn scim_patch(data: &[u8]) {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    let Ok(body) = serde_json::from_slice::<serde_json::Value>(rest) else {
        return;
    };
    let user = which % 2 == 0;
    let stored = if user {
        stored_user()
    } else {
        serde_json::json!({ "id": "g1", "displayName": "Eng",
            "members": [{ "value": "u1", "display": "Ada" }] })
    };
    if let serde_json::Value::Object(resource) = stored {
        let _ = keycard::fuzzing::scim_patch(user, &resource, &body);
    }
}

/// The ops API's listings with a fuzzed query string (filters, cursors, limits) and path
/// ids, through the real router on an in-memory SQLite journal holding a few events.
pub fn ops_query(data: &[u8]) {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    let query = percent_encode(rest);
    let uri = match which % 6 {
        0 => format!("/api/v1/events?{query}"),
        1 => format!("/api/v1/actions?{query}"),
        2 => format!("/api/v1/operator-log?{query}"),
        3 => format!("/api/v1/people/{query}"),
        4 => format!("/api/v1/events/{query}"),
        _ => format!("/scim/v2/idp/Users?{query}"),
    };
    let (runtime, router) = ops();
    let Ok(request) = Request::get(uri)
        .header("authorization", format!("Bearer {OPS_TOKEN}"))
        .body(Body::empty())
    else {
        return;
    };
    // The router's error type is Infallible: every query gets an answer, never a 5xx.
    let Ok(r) = runtime.block_on(router.clone().oneshot(request));
    assert!(!r.status().is_server_error(), "{} for a query", r.status());
}

/// Bytes as a query string: unreserved and the query's own delimiters as they are, anything
/// else %-escaped, so every byte reaches the decoder.
fn percent_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 3);
    for &b in bytes {
        if b.is_ascii_alphanumeric() || b"-._~=&+%:|".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn ops() -> &'static (tokio::runtime::Runtime, axum::Router) {
    static OPS: OnceLock<(tokio::runtime::Runtime, axum::Router)> = OnceLock::new();
    OPS.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap_or_else(|e| panic!("runtime: {e}"));
        let router = runtime.block_on(async {
            let clock: keycard::clock::SharedClock =
                std::sync::Arc::new(keycard::clock::ManualClock::new(now()));
            let journal = keycard::journal::Journal::empty()
                .await
                .unwrap_or_else(|e| panic!("journal: {e}"));
            let app =
                keycard::app::Application::build_with_journal(config().clone(), clock, journal)
                    .await
                    .unwrap_or_else(|e| panic!("app: {e}"));
            let router = app.router();
            seed_events(&router).await;
            router
        });
        (runtime, router)
    })
}

/// A few journaled events, so that cursors and filters select real rows.
async fn seed_events(router: &axum::Router) {
    use keycard::sources::standard_webhooks::{MessageId, WebhookSecret, sign};
    for i in 0..5 {
        let body = format!(
            r#"{{"type":"person.hired","id":"evt_{i}","person":{{"id":"E{i}","email":"p{i}@example.com","department":"Eng"}}}}"#
        );
        let (Ok(secret), Ok(id)) = (
            WebhookSecret::parse(HR_SECRET),
            MessageId::parse(&format!("msg_{i}")),
        ) else {
            continue;
        };
        let ts = now().timestamp();
        let sig = sign(&secret, &id, ts, body.as_bytes());
        let Ok(request) = Request::post("/webhooks/hr")
            .header("content-type", "application/json")
            .header("webhook-id", format!("msg_{i}"))
            .header("webhook-timestamp", ts.to_string())
            .header("webhook-signature", sig)
            .body(Body::from(body))
        else {
            continue;
        };
        let _ = router.clone().oneshot(request).await;
    }
}
