//! generic-hmac: GitHub style (`X-Hub-Signature-256: sha256=<hex>` over the body) and Stripe
//! style (`Stripe-Signature: t=...,v1=...` over `t.body`), with a JSON-pointer mapping.

use keycard::config::{Config, RawConfig};
use keycard::ingest::{Attr, Completeness, EventKind};
use keycard::sources::{Outcome, Rejection};
use serde_json::{Value, json};
use sqlx::PgPool;

use super::common::*;
use super::harness::{Harness, seed, t0};

fn github_signature(body: &[u8], secret: &str) -> String {
    format!(
        "sha256={}",
        hex::encode(hmac_sha256(secret.as_bytes(), &[body]))
    )
}

fn github(body: &[u8], delivery: &str) -> Result<Outcome, Rejection> {
    let pairs = vec![
        (
            "x-hub-signature-256",
            github_signature(body, secret("GITHUB_SECRET")),
        ),
        ("x-github-delivery", delivery.to_owned()),
    ];
    receive(&adapter("inhouse"), "inhouse", &pairs, body, t0())
}

fn stripe_signature(body: &[u8], secret: &str, ts: i64) -> String {
    let ts = ts.to_string();
    let tag = hex::encode(hmac_sha256(secret.as_bytes(), &[ts.as_bytes(), b".", body]));
    format!("t={ts},v1={tag}")
}

fn stripe_with(body: &[u8], header: String) -> Result<Outcome, Rejection> {
    receive(
        &adapter("stripeish"),
        "stripeish",
        &[("stripe-signature", header)],
        body,
        t0(),
    )
}

#[test]
fn every_mapped_type_becomes_its_kind() {
    for (file, kind) in [
        ("hired", EventKind::Hired),
        ("updated", EventKind::Updated),
        ("departed", EventKind::Departed),
        ("leave_started", EventKind::LeaveStarted),
        ("leave_ended", EventKind::LeaveEnded),
        ("rehired", EventKind::Rehired),
        ("cancelled", EventKind::ChangeCancelled),
    ] {
        let event = one_event(github(
            &fixture(&format!("generic-hmac/{file}.json")),
            "d-1",
        ));
        assert_eq!(event.kind, kind, "{file}");
        assert_eq!(event.person.id.as_str(), "HR-1001");
        assert_ne!(
            event.dedupe_key.delivery_id, "d-1",
            "the unsigned delivery header is never the key"
        );
        assert_eq!(
            event
                .sender_event_id
                .as_deref()
                .map(|i| i.starts_with("evt-")),
            Some(true)
        );
    }
}

#[test]
fn an_unsigned_delivery_header_never_makes_a_replay_new() {
    let body = fixture("generic-hmac/hired.json");
    let first = one_event(github(&body, "d-1"));
    let replay = one_event(github(&body, "d-replayed"));
    assert_eq!(first.dedupe_key, replay.dedupe_key);
    assert_eq!(
        first.dedupe_key.delivery_id, "evt-0001",
        "the signed event id"
    );

    // With no event id mapped, the signed body's hash is the key.
    let config = load(
        r#"
header = "X-Hub-Signature-256"
prefix = "sha256="
id_header = "X-GitHub-Delivery"
[sources.mapping]
event_type = "/action"
person_id = "/employee/id"
types = { "employee.hired" = "hired" }
"#,
    )
    .expect("loads");
    let bare = adapter_from(&config, "x");
    let keys: Vec<_> = ["d-1", "d-2"]
        .iter()
        .map(|id| {
            let pairs = vec![
                (
                    "x-hub-signature-256",
                    github_signature(&body, secret("GITHUB_SECRET")),
                ),
                ("x-github-delivery", (*id).to_owned()),
            ];
            one_event(receive(&bare, "x", &pairs, &body, t0())).dedupe_key
        })
        .collect();
    assert_eq!(keys[0], keys[1]);
    assert!(keys[0].delivery_id.starts_with("sha256:"), "{keys:?}");
}

#[test]
fn the_mapping_fills_every_configured_field() {
    let event = one_event(github(&fixture("generic-hmac/hired.json"), "d-1"));
    let p = &event.person;
    assert_eq!(p.email.value().map(|e| e.as_str()), Some("linus@acme.test"));
    assert_eq!(p.name, Attr::Value("Linus Torvalds".into()));
    assert_eq!(p.department, Attr::Value("Engineering".into()));
    assert_eq!(p.title, Attr::Value("Kernel Engineer".into()));
    assert_eq!(p.division, Attr::Value("Platform".into()));
    assert_eq!(p.cost_center, Attr::Value("CC-42".into()));
    assert_eq!(p.location, Attr::Value("Portland".into()));
    assert_eq!(p.worker_type, Attr::Value("employee".into()));
    assert_eq!(
        p.manager_email.value().map(|e| e.as_str()),
        Some("grace@acme.test")
    );
    assert_eq!(
        p.groups,
        Attr::Value(vec!["kernel".into(), "ml-research".into()])
    );
    assert_eq!(
        p.attributes.value().and_then(|a| a.get("level")),
        Some(&json!("L7"))
    );
    assert_eq!(event.completeness, Completeness::Full);
    assert_eq!(event.sender_event_id.as_deref(), Some("evt-0001"));
    assert_eq!(event.occurred_at.to_rfc3339(), "2026-11-28T09:58:00+00:00");

    // A partial update: what is sent replaces, null clears, the rest stays absent.
    let moved = one_event(github(&fixture("generic-hmac/updated.json"), "d-2"));
    assert_eq!(moved.person.department, Attr::Value("Sales".into()));
    assert_eq!(moved.person.title, Attr::Null);
    assert!(moved.person.email.is_absent());
    assert_eq!(moved.completeness, Completeness::Partial);

    // Only the id: a notice.
    let left = one_event(github(&fixture("generic-hmac/departed.json"), "d-3"));
    assert_eq!(left.completeness, Completeness::Notice);
    assert!(!left.is_scheduled());
    let later = one_event(github(
        &fixture("generic-hmac/departed_scheduled.json"),
        "d-4",
    ));
    assert!(later.is_scheduled());
    assert_eq!(later.effective_at.to_rfc3339(), "2026-12-05T00:00:00+00:00");
}

#[test]
fn unlisted_and_ignore_mapped_types_are_ignored() {
    let unknown = one_ignored(github(&fixture("generic-hmac/unknown_type.json"), "d-9"));
    assert!(
        unknown.reason.contains("not in mapping.types"),
        "{}",
        unknown.reason
    );
    assert_eq!(unknown.event_type.as_deref(), Some("payroll.run"));
    let ignored = one_ignored(github(&fixture("generic-hmac/ignored_type.json"), "d-10"));
    assert!(ignored.reason.contains("mapped to ignore"));
    assert_eq!(ignored.person_id.as_deref(), Some("HR-1001"));
}

#[test]
fn without_a_delivery_header_the_event_id_is_the_key() {
    let body = fixture("generic-hmac/hired.json");
    let pairs = vec![(
        "x-hub-signature-256",
        github_signature(&body, secret("GITHUB_SECRET")),
    )];
    let event = one_event(receive(&adapter("inhouse"), "inhouse", &pairs, &body, t0()));
    assert_eq!(event.dedupe_key.delivery_id, "evt-0001");
}

#[test]
fn github_style_signature_failures() {
    let body = fixture("generic-hmac/hired.json");
    let key = secret("GITHUB_SECRET");
    let a = adapter("inhouse");
    let code = |sig: Option<String>, body: &[u8]| {
        let pairs: Vec<(&str, String)> = sig
            .map(|s| vec![("x-hub-signature-256", s)])
            .unwrap_or_default();
        let (code, message) = refused(receive(&a, "inhouse", &pairs, body, t0()));
        assert!(!message.contains(key));
        code
    };
    let good = github_signature(&body, key);
    assert_eq!(code(None, &body), "missing_header");
    // Legacy sha1= or no prefix at all.
    let sha1ish = good.replace("sha256=", "sha1=");
    assert_eq!(code(Some(sha1ish), &body), "malformed_signature");
    assert_eq!(
        code(Some(good.replace("sha256=", "")), &body),
        "malformed_signature"
    );
    assert_eq!(
        code(Some(good[..good.len() - 2].to_owned()), &body),
        "malformed_signature"
    );
    // HMAC-SHA512 under the sha256= prefix.
    let sha512 = format!(
        "sha256={}",
        hex::encode(hmac_sha512(key.as_bytes(), &[&body]))
    );
    assert_eq!(code(Some(sha512), &body), "malformed_signature");
    assert_eq!(
        code(Some(github_signature(&body, "some other secret")), &body),
        "signature_mismatch"
    );
    assert_eq!(
        code(Some(good.clone()), &one_byte_changed(&body)),
        "signature_mismatch"
    );
    let (key_index, _) = accepted(receive(
        &a,
        "inhouse",
        &[(
            "x-hub-signature-256",
            github_signature(&body, secret("GITHUB_OLD_SECRET")),
        )],
        &body,
        t0(),
    ));
    assert_eq!(key_index, 1);
}

#[test]
fn stripe_style_signature_failures() {
    let body = fixture("generic-hmac/stripe_terminated.json");
    let key = secret("STRIPE_SECRET");
    let now = t0().timestamp();
    let event = one_event(stripe_with(&body, stripe_signature(&body, key, now)));
    assert_eq!(event.kind, EventKind::Departed);
    assert_eq!(event.dedupe_key.delivery_id, "evt_1QxTermination0001");
    assert_eq!(event.person.id.as_str(), "HR-2002");
    assert_eq!(event.occurred_at.timestamp(), 1_795_859_880);

    let code = |header: String, body: &[u8]| refused(stripe_with(body, header)).0;
    assert_eq!(
        refused(receive(
            &adapter("stripeish"),
            "stripeish",
            &[],
            &body,
            t0()
        ))
        .0,
        "missing_header"
    );
    assert_eq!(
        code(stripe_signature(&body, key, now - 301), &body),
        "timestamp_too_old"
    );
    assert_eq!(
        code(stripe_signature(&body, key, now + 301), &body),
        "timestamp_in_future"
    );
    assert_eq!(
        code(stripe_signature(&body, "whsec_wrong", now), &body),
        "signature_mismatch"
    );
    assert_eq!(
        code(stripe_signature(&body, key, now), &one_byte_changed(&body)),
        "signature_mismatch"
    );
    // The timestamp is part of what is signed.
    let moved =
        stripe_signature(&body, key, now).replace(&format!("t={now}"), &format!("t={}", now + 1));
    assert_eq!(code(moved, &body), "signature_mismatch");
    let good = stripe_signature(&body, key, now);
    let tag = good.split("v1=").nth(1).unwrap_or_default().to_owned();
    assert_eq!(
        code(format!("v1={tag}"), &body),
        "malformed_signature",
        "no t="
    );
    assert_eq!(
        code(format!("t={now},v0={tag}"), &body),
        "malformed_signature",
        "v0 only"
    );
    assert_eq!(
        code(format!("t={now},v1={}", &tag[..60]), &body),
        "malformed_signature"
    );
    assert_eq!(
        code(format!("t={now};v1={tag}"), &body),
        "malformed_signature"
    );
    // While a secret is rolled both signatures are sent; either key verifies.
    let old = stripe_signature(&body, secret("STRIPE_OLD_SECRET"), now);
    let old_tag = old.split("v1=").nth(1).unwrap_or_default();
    let both = format!("t={now},v1={old_tag},v1={tag},v0=ignored");
    assert!(stripe_with(&body, both).is_ok());
    let (key_index, _) = accepted(stripe_with(&body, old));
    assert_eq!(key_index, 1);
}

#[test]
fn payloads_with_missing_extra_or_null_fields() {
    let missing = br#"{"action":"employee.left","employee":{}}"#;
    assert_eq!(refused(github(missing, "m")).1, "/employee/id: missing");
    let null_id = br#"{"action":"employee.left","employee":{"id":null}}"#;
    assert_eq!(refused(github(null_id, "m")).0, "invalid_payload");
    let no_type = br#"{"employee":{"id":"HR-1"}}"#;
    assert_eq!(refused(github(no_type, "m")).1, "/action: missing");
    let bad_email = br#"{"action":"employee.hired","employee":{"id":"HR-1","work_email":"linus"}}"#;
    assert!(
        refused(github(bad_email, "m"))
            .1
            .starts_with("/employee/work_email:")
    );
    let bad_groups = br#"{"action":"employee.changed","employee":{"id":"HR-1","groups":"kernel"}}"#;
    assert!(
        refused(github(bad_groups, "m"))
            .1
            .starts_with("/employee/groups:")
    );
    let bad_time =
        br#"{"action":"employee.changed","occurred_at":"soon","employee":{"id":"HR-1"}}"#;
    assert!(
        refused(github(bad_time, "m"))
            .1
            .starts_with("/occurred_at:")
    );
    assert_eq!(refused(github(b"not json", "m")).0, "invalid_payload");
    // Extra fields are fine; nulls clear mapped attributes, null times mean "now".
    let extra = br#"{"action":"employee.changed","occurred_at":null,"whatever":[1],"employee":{"id":42,"department":null,"groups":null,"work_email":null,"nickname":"L"}}"#;
    let event = one_event(github(extra, "m"));
    assert_eq!(event.person.id.as_str(), "42");
    assert_eq!(event.person.department, Attr::Null);
    assert_eq!(event.person.groups, Attr::Null);
    assert_eq!(event.person.email, Attr::Null);
    assert_eq!(event.occurred_at, t0());
}

fn load(extra: &str) -> Result<Config, String> {
    let text = format!(
        "[[sources]]\nname = \"x\"\nkind = \"generic-hmac\"\nsecret_env = \"GITHUB_SECRET\"\n{extra}"
    );
    let raw: RawConfig = toml::from_str(&text).map_err(|e| e.to_string())?;
    Config::from_raw(raw, |k| {
        (k == "GITHUB_SECRET").then(|| secret("GITHUB_SECRET").to_owned())
    })
    .map_err(|e| e.to_string())
}

#[test]
fn configuration_mistakes_are_named_at_load() {
    let mapping =
        "[sources.mapping]\nevent_type = \"/t\"\nperson_id = \"/id\"\ntypes = { a = \"hired\" }\n";
    assert!(load(&format!("header = \"X-Sig\"\n{mapping}")).is_ok());
    for (extra, want) in [
        (mapping.to_owned(), "sources[0].header:"),
        (format!("header = \"X-Sig\"\nsigned_content = \"{{timestamp}}.{{body}}\"\n{mapping}"), "sources[0].signed_content: uses {timestamp}"),
        (format!("header = \"X-Sig\"\nsigned_content = \"{{id}}\"\n{mapping}"), "sources[0].signed_content: must contain {body}"),
        (format!("header = \"bad header\"\n{mapping}"), "sources[0].header:"),
        (format!("style = \"stripe\"\nprefix = \"v1=\"\n{mapping}"), "sources[0].prefix:"),
        ("header = \"X-Sig\"\n".to_owned(), "sources[0].mapping:"),
        ("header = \"X-Sig\"\n[sources.mapping]\nevent_type = \"/t\"\ntypes = { a = \"hired\" }\n".to_owned(), "sources[0].mapping.person_id:"),
        ("header = \"X-Sig\"\n[sources.mapping]\nperson_id = \"/id\"\ntypes = { a = \"hired\" }\n".to_owned(), "sources[0].mapping.event_type:"),
        ("header = \"X-Sig\"\n[sources.mapping]\nevent_type = \"/t\"\nperson_id = \"id\"\ntypes = { a = \"hired\" }\n".to_owned(), "sources[0].mapping.person_id:"),
        ("header = \"X-Sig\"\n[sources.mapping]\nevent_type = \"/t\"\nperson_id = \"/id\"\ntypes = { a = \"fired\" }\n".to_owned(), "sources[0].mapping.types.\"a\":"),
        ("header = \"X-Sig\"\n[sources.mapping]\nevent_type = \"/t\"\nperson_id = \"/id\"\n".to_owned(), "sources[0].mapping.types:"),
        (format!("header = \"X-Sig\"\nheader_name = \"X\"\n{mapping}"), "sources[0].header_name: only applies to sources of kind okta"),
        (format!("header = \"X-Sig\"\nalgorithm = \"md5\"\n{mapping}"), "algorithm"),
    ] {
        let err = load(&extra).expect_err(&extra);
        assert!(err.contains(want), "{extra}\n=> {err}");
    }
}

#[sqlx::test(migrations = "./migrations/postgres")]
async fn unknown_types_are_acknowledged_and_journaled_as_ignored(pool: PgPool) {
    let h = Harness::start_with(pool, &toml(), seed()).await;
    let body = fixture("generic-hmac/unknown_type.json");
    let headers = vec![
        (
            "x-hub-signature-256".to_owned(),
            github_signature(&body, secret("GITHUB_SECRET")),
        ),
        (
            "x-github-delivery".to_owned(),
            "72d3162e-cc78-11e3-81ab-4c9367dc0958".to_owned(),
        ),
        ("content-type".to_owned(), "application/json".to_owned()),
    ];
    let (status, answer) = h.post_to("inhouse", &headers, body.clone()).await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(answer["events"][0]["status"], "ignored");
    let row = h
        .db()
        .await
        .event(
            uuid::Uuid::parse_str(answer["event_id"].as_str().unwrap_or_default())
                .unwrap_or_default(),
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        (row.kind.as_str(), row.status.as_str()),
        ("ignored", "ignored")
    );
    assert_eq!(row.source_event_type.as_deref(), Some("payroll.run"));
    assert_eq!(
        row.dedupe_key, "evt-0010",
        "the signed event id, not the header"
    );
    assert_eq!(row.signature_key, Some(0));
    // The same delivery again: a duplicate of the ignored record.
    let (_, again) = h.post_to("inhouse", &headers, body).await;
    assert_eq!(again["duplicate"], Value::Bool(true));
    h.settle().await;
    assert_eq!(h.event_count().await, 1);
}
