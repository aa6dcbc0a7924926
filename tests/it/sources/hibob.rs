//! HiBob: `Bob-Signature` = base64 HMAC-SHA512 of the raw body; v2 notices, v1 legacy events.

use keycard::ingest::{Attr, Completeness, EventKind};
use keycard::sources::{Outcome, Rejection};
use serde_json::json;
use sqlx::PgPool;

use super::common::*;
use super::harness::{Harness, seed, t0};

const SOURCE: &str = "bob";

fn signature(body: &[u8], secret: &str) -> String {
    b64(&hmac_sha512(secret.as_bytes(), &[body]))
}

fn deliver_with(body: &[u8], sig: String) -> Result<Outcome, Rejection> {
    let pairs = vec![("bob-signature", sig)];
    receive(&adapter(SOURCE), SOURCE, &pairs, body, t0())
}

fn deliver(body: &[u8]) -> Result<Outcome, Rejection> {
    deliver_with(body, signature(body, secret("HIBOB_SECRET")))
}

#[test]
fn every_v2_event_type_maps_to_its_kind() {
    for (file, kind, undated) in [
        ("v2_created.json", EventKind::Hired, true),
        ("v2_joined.json", EventKind::Hired, false),
        ("v2_updated.json", EventKind::Updated, false),
        ("v2_left.json", EventKind::Departed, false),
        ("v2_access_revoked.json", EventKind::Departed, false),
        ("v2_inactivated.json", EventKind::LeaveStarted, false),
        ("v2_temporary_leave.json", EventKind::LeaveStarted, false),
        ("v2_activated.json", EventKind::LeaveEnded, false),
        ("v2_table_entry_created.json", EventKind::Updated, false),
    ] {
        let event = one_event(deliver(&fixture(&format!("hibob/{file}"))));
        assert_eq!(event.kind, kind, "{file}");
        assert_eq!(event.undated, undated, "{file}");
        assert_eq!(event.person.id.as_str(), "3332883854254932743", "{file}");
        // v2 is thin: nothing but the id is mapped, and it says so.
        assert_eq!(event.completeness, Completeness::Notice, "{file}");
        assert!(event.person.email.is_absent(), "{file}");
        let origin = event.origin.unwrap_or_else(|| panic!("{file}: origin"));
        assert_eq!(origin.tenant.as_deref(), Some("636192"), "{file}");
        assert!(
            origin.event_type.starts_with("employee.") || origin.event_type.starts_with("table.")
        );
    }
}

#[test]
fn effective_dates_are_kept() {
    let left = one_event(deliver(&fixture("hibob/v2_left.json")));
    assert_eq!(
        left.origin
            .as_ref()
            .and_then(|o| o.effective_date)
            .map(|d| d.to_string()),
        Some("2026-11-28".into())
    );
    // HiBob's zone-less triggeredAt is read as UTC.
    assert_eq!(
        left.occurred_at.to_rfc3339(),
        "2026-11-28T09:58:00.000451+00:00"
    );
    // A departure dated today takes effect at the end of that last day (dates.end_time).
    assert_eq!(left.effective_at.to_rfc3339(), "2026-11-28T18:00:00+00:00");

    // A work-table row dated ahead takes effect on that date.
    let table = one_event(deliver(&fixture("hibob/v2_table_entry_created.json")));
    assert!(table.is_scheduled());
    assert_eq!(table.effective_at.to_rfc3339(), "2026-12-15T06:00:00+00:00");
    assert_eq!(
        table.origin.map(|o| o.changed_fields),
        Some(vec!["table:work".to_owned()])
    );
    let updated = one_event(deliver(&fixture("hibob/v2_updated.json")));
    assert_eq!(
        updated.origin.map(|o| o.changed_fields),
        Some(vec![
            "/work/department".to_owned(),
            "/work/title".to_owned()
        ])
    );
}

#[test]
fn v1_payloads_carry_the_person() {
    let event = one_event(deliver(&fixture("hibob/v1_joined.json")));
    assert_eq!(event.kind, EventKind::Hired);
    assert_eq!(event.completeness, Completeness::Partial);
    let p = &event.person;
    assert_eq!(
        p.email.value().map(|e| e.as_str()),
        Some("marie.curie@acme.test")
    );
    assert_eq!(p.name, Attr::Value("Marie Curie".into()));
    assert_eq!(p.department, Attr::Value("Engineering".into()));
    assert_eq!(p.title, Attr::Value("Research Engineer".into()));
    assert_eq!(p.location, Attr::Value("Paris".into()));

    // Without a display name, the name is first name and surname; with only one, none.
    let body = String::from_utf8(fixture("hibob/v1_joined.json"))
        .unwrap_or_default()
        .replace("\"displayName\": \"Marie Curie\", ", "");
    let name_from = |body: String| one_event(deliver(body.as_bytes())).person.name;
    assert_eq!(name_from(body.clone()), Attr::Value("Marie Curie".into()));
    assert_eq!(
        name_from(body.replace("\"surname\": \"Curie\", ", "")),
        Attr::Absent
    );
}

#[test]
fn deleted_and_unknown_types_are_ignored() {
    let deleted = one_ignored(deliver(&fixture("hibob/v2_deleted.json")));
    assert_eq!(deleted.person_id.as_deref(), Some("3332883854254932799"));
    assert!(
        deleted
            .reason
            .starts_with("profile deleted in Bob: not a departure"),
        "{}",
        deleted.reason
    );
    let unknown = one_ignored(deliver(&fixture("hibob/v2_unknown.json")));
    assert_eq!(
        unknown.event_type.as_deref(),
        Some("timeoff.request.approved")
    );
}

#[test]
fn every_signature_failure_is_a_401() {
    let body = fixture("hibob/v2_left.json");
    let key = secret("HIBOB_SECRET");
    let good = signature(&body, key);
    let a = adapter(SOURCE);
    let code = |pairs: Vec<(&str, String)>, body: &[u8]| {
        let (code, message) = refused(receive(&a, SOURCE, &pairs, body, t0()));
        assert!(!message.contains(key));
        code
    };
    assert_eq!(code(vec![], &body), "missing_header");
    // Hex where base64 is expected (decodes to the wrong length), a prefix, a truncation.
    let hex_sig = hex::encode(hmac_sha512(key.as_bytes(), &[&body]));
    assert_eq!(
        code(vec![("bob-signature", hex_sig)], &body),
        "malformed_signature"
    );
    assert_eq!(
        code(vec![("bob-signature", format!("sha512={good}"))], &body),
        "malformed_signature"
    );
    assert_eq!(
        code(
            vec![("bob-signature", good[..good.len() - 8].to_owned())],
            &body
        ),
        "malformed_signature"
    );
    // HMAC-SHA256 instead of SHA-512.
    let sha256 = b64(&hmac_sha256(key.as_bytes(), &[&body]));
    assert_eq!(
        code(vec![("bob-signature", sha256)], &body),
        "malformed_signature"
    );
    assert_eq!(
        code(
            vec![("bob-signature", signature(&body, "some-other-secret"))],
            &body
        ),
        "signature_mismatch"
    );
    assert_eq!(
        code(
            vec![("bob-signature", good.clone())],
            &one_byte_changed(&body)
        ),
        "signature_mismatch"
    );
    // Two signature headers: ambiguous, refused.
    assert_eq!(
        code(
            vec![
                ("bob-signature", good.clone()),
                ("bob-signature", good.clone())
            ],
            &body
        ),
        "duplicate_header"
    );
    // Padding-free base64 is the same signature.
    let unpadded = good.trim_end_matches('=').to_owned();
    assert!(receive(&a, SOURCE, &[("bob-signature", unpadded)], &body, t0()).is_ok());
}

#[test]
fn the_previous_secret_still_verifies() {
    let body = fixture("hibob/v2_joined.json");
    let (key_index, _) = accepted(deliver_with(
        &body,
        signature(&body, secret("HIBOB_OLD_SECRET")),
    ));
    assert_eq!(key_index, 1);
}

#[test]
fn payloads_with_missing_extra_or_null_fields() {
    let missing = br#"{"companyId":1,"type":"employee.left","triggeredAt":"2026-11-28T09:58:00","version":"v2","data":{"effectiveDate":"2026-11-28"}}"#;
    assert_eq!(refused(deliver(missing)).1, "data.employeeId: missing");
    let null_id =
        br#"{"companyId":1,"type":"employee.left","version":"v2","data":{"employeeId":null}}"#;
    assert_eq!(refused(deliver(null_id)).0, "invalid_payload");
    let no_type = br#"{"companyId":1,"version":"v2","data":{"employeeId":"1"}}"#;
    assert_eq!(refused(deliver(no_type)).1, "type: missing");
    let no_data = br#"{"companyId":1,"type":"employee.left","version":"v2"}"#;
    assert_eq!(refused(deliver(no_data)).1, "data: missing");
    // Extra fields and nulls in optional places change nothing.
    let extra = br#"{"companyId":1,"type":"employee.left","triggeredBy":null,"triggeredAt":null,"version":"v2","future":{"a":1},"data":{"employeeId":"42","effectiveDate":null,"reason":"resigned"}}"#;
    let event = one_event(deliver(extra));
    assert_eq!(event.kind, EventKind::Departed);
    assert_eq!(event.person.id.as_str(), "42");
    assert_eq!(event.occurred_at, t0(), "no triggeredAt: receive time");
    assert!(event.origin.and_then(|o| o.effective_date).is_none());
}

#[sqlx::test(migrations = "./migrations/postgres")]
async fn a_replayed_delivery_is_a_duplicate(pool: PgPool) {
    let h = Harness::start_with(pool, &toml(), seed()).await;
    let body = fixture("hibob/v2_left.json");
    let pairs = vec![
        (
            "bob-signature".to_owned(),
            signature(&body, secret("HIBOB_SECRET")),
        ),
        ("content-type".to_owned(), "application/json".to_owned()),
    ];
    let (s1, b1) = h.post_to(SOURCE, &pairs, body.clone()).await;
    let (s2, b2) = h.post_to(SOURCE, &pairs, body).await;
    assert_eq!((s1, s2), (202, 202), "{b1} {b2}");
    assert_eq!(b2["duplicate"], json!(true));
    assert_eq!(b1["event_id"], b2["event_id"]);
    assert_eq!(h.event_count().await, 1);
}
