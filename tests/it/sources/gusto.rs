//! Gusto: verification-token handshake, `X-Gusto-Signature` = hex HMAC-SHA256(body), and
//! scheduled vs effective terminations and rehires with their cancellations.

use keycard::ingest::{Attr, Completeness, EventKind};
use keycard::sources::{Outcome, Rejection};
use serde_json::{Value, json};
use sqlx::PgPool;

use super::common::*;
use super::harness::{Harness, config, seed, t0};

const SOURCE: &str = "gusto";
const EMPLOYEE: &str = "bcfc9744-0ab3-4ef3-ab0d-e728255d659c";

fn signature(body: &[u8], token: &str) -> String {
    hex::encode(hmac_sha256(token.as_bytes(), &[body]))
}

fn deliver(body: &[u8]) -> Result<Outcome, Rejection> {
    let pairs = vec![("x-gusto-signature", signature(body, secret("GUSTO_SECRET")))];
    receive(&adapter(SOURCE), SOURCE, &pairs, body, t0())
}

#[test]
fn every_employee_event_maps_to_its_kind_and_phase() {
    for (file, kind, undated, cancels) in [
        ("employee_created", EventKind::Hired, true, None),
        ("employee_onboarded", EventKind::Hired, false, None),
        ("employee_updated", EventKind::Updated, false, None),
        ("employee_terminated", EventKind::Departed, true, None),
        (
            "employee_terminated_effective",
            EventKind::Departed,
            false,
            None,
        ),
        (
            "employee_termination_effective",
            EventKind::Departed,
            false,
            None,
        ),
        (
            "employee_termination_cancelled",
            EventKind::ChangeCancelled,
            false,
            Some(EventKind::Departed),
        ),
        ("employee_rehired", EventKind::Rehired, true, None),
        ("employee_rehire_effective", EventKind::Rehired, false, None),
        (
            "employee_rehire_cancelled",
            EventKind::ChangeCancelled,
            false,
            Some(EventKind::Rehired),
        ),
    ] {
        let body = fixture(&format!("gusto/{file}.json"));
        let doc: Value = serde_json::from_slice(&body).unwrap_or_default();
        let event = one_event(deliver(&body));
        assert_eq!(event.kind, kind, "{file}");
        assert_eq!(event.undated, undated, "{file}");
        assert_eq!(event.cancels, cancels, "{file}");
        assert_eq!(event.person.id.as_str(), EMPLOYEE, "{file}");
        assert_eq!(event.completeness, Completeness::Notice, "{file}");
        assert!(
            event.person.email.is_absent(),
            "{file}: thin, nothing invented"
        );
        assert_eq!(
            event.dedupe_key.delivery_id,
            doc["uuid"].as_str().unwrap_or_default()
        );
        assert_eq!(event.occurred_at.timestamp(), 1_795_859_880);
        assert_eq!(
            event.origin.and_then(|o| o.tenant).as_deref(),
            Some("5df911a0-e8e9-412d-8aaf-a46ad193dd96")
        );
    }
}

#[test]
fn contractors_are_mapped_with_their_worker_type() {
    let onboarded = one_event(deliver(&fixture("gusto/contractor_onboarded.json")));
    assert_eq!(onboarded.kind, EventKind::Hired);
    assert_eq!(
        onboarded.person.worker_type,
        Attr::Value("contractor".into())
    );
    let gone = one_event(deliver(&fixture("gusto/contractor_deactivated.json")));
    assert_eq!(gone.kind, EventKind::Departed);
    assert!(!gone.undated, "a deactivation takes effect when it is sent");
    // A reactivated contractor is rehired; Gusto sends it in the deactivation's shape.
    let body = String::from_utf8(fixture("gusto/contractor_deactivated.json"))
        .unwrap_or_default()
        .replace("contractor.deactivated", "contractor.reactivated")
        .into_bytes();
    let back = one_event(deliver(&body));
    assert_eq!((back.kind, back.undated), (EventKind::Rehired, false));
}

#[test]
fn deleted_onboarding_steps_and_other_types_are_ignored() {
    for file in [
        "employee_deleted",
        "employee_self_onboarding_completed",
        "payroll_submitted",
    ] {
        let notice = one_ignored(deliver(&fixture(&format!("gusto/{file}.json"))));
        // A deleted record says why it is no departure; the rest are simply not mapped.
        let why = if file == "employee_deleted" {
            "record deleted in Gusto: not a departure"
        } else {
            "Gusto event type is not mapped"
        };
        assert!(notice.reason.starts_with(why), "{file}: {}", notice.reason);
    }
}

#[test]
fn legacy_api_versions_make_announcements_effective() {
    let text = format!(
        "{}\n[[sources]]\nname = \"gusto-old\"\nkind = \"gusto\"\nlegacy_events = true\nsecret_env = \"GUSTO_SECRET\"\n",
        toml()
    );
    let a = adapter_from(&config(&text, "http://127.0.0.1:9"), "gusto-old");
    let body = fixture("gusto/employee_terminated.json");
    let pairs = vec![(
        "x-gusto-signature",
        signature(&body, secret("GUSTO_SECRET")),
    )];
    let event = one_event(receive(&a, "gusto-old", &pairs, &body, t0()));
    assert_eq!(event.kind, EventKind::Departed);
    assert!(!event.undated);
}

#[test]
fn every_signature_failure_is_a_401() {
    let body = fixture("gusto/employee_terminated_effective.json");
    let token = secret("GUSTO_SECRET");
    let good = signature(&body, token);
    let a = adapter(SOURCE);
    let code = |sig: Option<String>, body: &[u8]| {
        let pairs: Vec<(&str, String)> = sig
            .map(|s| vec![("x-gusto-signature", s)])
            .unwrap_or_default();
        let (code, message) = refused(receive(&a, SOURCE, &pairs, body, t0()));
        assert!(!message.contains(token));
        code
    };
    assert_eq!(code(None, &body), "missing_header");
    assert_eq!(
        code(Some(format!("sha256={good}")), &body),
        "malformed_signature"
    );
    assert_eq!(
        code(Some(good[..40].to_owned()), &body),
        "malformed_signature"
    );
    assert_eq!(
        code(Some(b64(&hmac_sha256(token.as_bytes(), &[&body]))), &body),
        "malformed_signature",
        "base64 where hex is expected"
    );
    assert_eq!(
        code(
            Some(hex::encode(hmac_sha512(token.as_bytes(), &[&body]))),
            &body
        ),
        "malformed_signature",
        "SHA-512 where SHA-256 is expected"
    );
    assert_eq!(
        code(Some(signature(&body, "a-different-token")), &body),
        "signature_mismatch"
    );
    assert_eq!(
        code(Some(good.clone()), &one_byte_changed(&body)),
        "signature_mismatch"
    );
    // Upper-case hex is the same signature.
    assert!(
        receive(
            &a,
            SOURCE,
            &[("x-gusto-signature", good.to_uppercase())],
            &body,
            t0()
        )
        .is_ok()
    );
    let (key_index, _) = accepted(receive(
        &a,
        SOURCE,
        &[(
            "x-gusto-signature",
            signature(&body, secret("GUSTO_OLD_SECRET")),
        )],
        &body,
        t0(),
    ));
    assert_eq!(key_index, 1);
}

#[test]
fn payloads_with_missing_extra_or_null_fields() {
    let missing = br#"{"uuid":"u1","event_type":"employee.terminated_effective","entity_type":"Employee","timestamp":1795859880}"#;
    assert_eq!(refused(deliver(missing)).1, "entity_uuid: missing");
    let null = br#"{"uuid":"u1","event_type":"employee.terminated_effective","entity_type":"Employee","entity_uuid":null}"#;
    assert_eq!(refused(deliver(null)).0, "invalid_payload");
    let wrong_entity = br#"{"uuid":"u1","event_type":"employee.terminated_effective","entity_type":"BankAccount","entity_uuid":"x"}"#;
    assert!(refused(deliver(wrong_entity)).1.starts_with("entity_type:"));
    let no_type = br#"{"uuid":"u1","entity_type":"Employee","entity_uuid":"x"}"#;
    assert_eq!(refused(deliver(no_type)).1, "event_type: missing");
    // Extra and null optional fields: fine; no uuid -> the body's hash is the key.
    let extra = br#"{"event_type":"employee.onboarded","resource_type":"Company","resource_id":7756341741171842,"resource_uuid":null,"entity_type":"Employee","entity_id":7757869436426662,"entity_uuid":"e-1","timestamp":null,"references":{"x":"y"}}"#;
    let event = one_event(deliver(extra));
    assert_eq!(event.kind, EventKind::Hired);
    assert!(event.dedupe_key.delivery_id.starts_with("sha256:"));
    assert_eq!(event.occurred_at, t0());
    assert!(event.origin.and_then(|o| o.tenant).is_none());
}

/// Issue 15 defect 2: an unauthenticated POST used to choose the secret (the first token was
/// written to the token file, the real one refused as "already stored"). Now nothing is kept
/// outside an operator-opened window, every token inside it is only a candidate, and the
/// operator confirms the real one.
#[test]
fn the_first_caller_never_chooses_the_gusto_secret() {
    use keycard::sources::gusto_token::{TokenStore, fingerprint};
    let dir = std::env::temp_dir().join(format!("kc-gusto-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
    let path = dir.join("gusto-token");
    let text = format!(
        "{}\n[[sources]]\nname = \"gusto-new\"\nkind = \"gusto\"\nverification_token_file = \"{}\"\n",
        toml(),
        path.display()
    );
    let a = adapter_from(&config(&text, "http://127.0.0.1:9"), "gusto-new");
    let real = fixture("gusto/verification_token.json");
    let forged = br#"{"verification_token":"attacker-token-0000","webhook_subscription_uuid":"x"}"#;

    // No window: refused, nothing kept.
    let (code, _) = refused(receive(&a, "gusto-new", &[], forged, t0()));
    assert!(code.contains("HandshakeClosed"), "{code}");
    let store = TokenStore::new(&path);
    assert!(store.candidates().unwrap_or_default().is_empty());
    assert!(!path.exists());

    // The operator opens a window; the attacker is first, the real token second.
    store
        .open_window(t0(), 10)
        .unwrap_or_else(|e| panic!("{e}"));
    for body in [&forged[..], &real[..]] {
        match receive(&a, "gusto-new", &[], body, t0()) {
            Ok(Outcome::Handshake(answer)) => {
                assert_eq!(answer["stored"], true);
                assert_eq!(answer["configured"], false);
                assert!(
                    !answer.to_string().contains("asd8f7g6"),
                    "the token is not echoed"
                );
            }
            other => panic!("{other:?}"),
        }
    }
    assert!(!path.exists(), "no handshake becomes the secret by itself");
    assert_eq!(store.candidates().unwrap_or_default().len(), 2);

    // The operator confirms the one Gusto shows.
    let real_token = "asd8f7g6h5j4k3l2qwe9r8t7y6u5i4o3";
    store
        .confirm(&fingerprint(real_token))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        std::fs::read_to_string(&path).unwrap_or_default().trim(),
        real_token
    );
    // Window closed again: a later forged handshake is refused.
    let (code, _) = refused(receive(&a, "gusto-new", &[], forged, t0()));
    assert!(code.contains("HandshakeClosed"), "{code}");
    // Until the token is configured, events are refused.
    let body = fixture("gusto/employee_onboarded.json");
    let pairs = vec![("x-gusto-signature", signature(&body, real_token))];
    assert_eq!(
        refused(receive(&a, "gusto-new", &pairs, &body, t0())).0,
        "source_not_verified"
    );
    let _ = std::fs::remove_dir_all(&dir);

    // Once configured, the same token signs events, and a repeated handshake is recognised.
    let configured = adapter(SOURCE);
    let again =
        json!({ "verification_token": secret("GUSTO_SECRET"), "webhook_subscription_uuid": "s" });
    match receive(&configured, SOURCE, &[], again.to_string().as_bytes(), t0()) {
        Ok(Outcome::Handshake(answer)) => assert_eq!(answer["configured"], true),
        other => panic!("{other:?}"),
    }
}

fn post_headers(body: &[u8]) -> Vec<(String, String)> {
    vec![
        (
            "x-gusto-signature".into(),
            signature(body, secret("GUSTO_SECRET")),
        ),
        ("content-type".into(), "application/json".into()),
    ]
}

async fn post(h: &Harness, file: &str) -> Value {
    let body = fixture(&format!("gusto/{file}.json"));
    let (status, answer) = h.post_to(SOURCE, &post_headers(&body), body).await;
    assert_eq!(status, 202, "{file}: {answer}");
    answer
}

async fn event_status(h: &Harness, answer: &Value) -> (String, Option<String>) {
    let id = answer["event_id"].as_str().unwrap_or_default();
    let row = h
        .db()
        .await
        .event(uuid::Uuid::parse_str(id).unwrap_or_default())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    (row.status.to_string(), row.status_reason)
}

#[sqlx::test(migrations = "./migrations/postgres")]
async fn a_scheduled_termination_is_cancelled_then_another_takes_effect(pool: PgPool) {
    let h = Harness::start_with(pool, &toml(), seed()).await;
    post(&h, "employee_onboarded").await;
    h.settle().await;

    // Announced without a date: scheduled, changes nothing.
    let announced = post(&h, "employee_terminated").await;
    h.settle().await;
    assert_eq!(event_status(&h, &announced).await.0, "scheduled");
    let person = h.db().await.find_person(EMPLOYEE).await.ok().flatten();
    assert_eq!(
        person.map(|p| p.status.to_string()),
        Some("active".to_owned())
    );

    // Withdrawn: the announcement is cancelled; a rehire announcement would not have been.
    let cancelled = post(&h, "employee_termination_cancelled").await;
    h.settle().await;
    assert_eq!(event_status(&h, &announced).await.0, "cancelled");
    assert_eq!(event_status(&h, &cancelled).await.0, "applied");

    // A new termination, then Gusto reports it in force: the person departs and the
    // announcement is fulfilled.
    let body = br#"{"uuid":"second-termination","event_type":"employee.terminated","resource_type":"Company","resource_uuid":"5df911a0-e8e9-412d-8aaf-a46ad193dd96","entity_type":"Employee","entity_uuid":"bcfc9744-0ab3-4ef3-ab0d-e728255d659c","timestamp":1795859890}"#;
    let (status, second) = h.post_to(SOURCE, &post_headers(body), body.to_vec()).await;
    assert_eq!(status, 202);
    h.advance(60);
    let effective = post(&h, "employee_terminated_effective").await;
    h.settle().await;
    // Gusto's notices carry no email and this source reads no API: the person was never
    // invited, so the departure took effect but had nothing to remove, and says so.
    assert_eq!(
        event_status(&h, &effective).await,
        (
            "no_change".to_owned(),
            Some("departed, but had no account and no invite".to_owned())
        )
    );
    let (status, reason) = event_status(&h, &second).await;
    assert_eq!(status, "applied");
    assert!(
        reason
            .unwrap_or_default()
            .starts_with("took effect with event")
    );
    let person = h.db().await.find_person(EMPLOYEE).await.ok().flatten();
    assert_eq!(
        person.map(|p| p.status.to_string()),
        Some("departed".to_owned())
    );

    // Replayed: a duplicate, nothing new.
    let replay = post(&h, "employee_terminated_effective").await;
    assert_eq!(replay["duplicate"], true);
}

#[sqlx::test(migrations = "./migrations/postgres")]
async fn the_handshake_over_http_journals_nothing(pool: PgPool) {
    let h = Harness::start_with(pool, &toml(), seed()).await;
    let body = json!({ "verification_token": secret("GUSTO_SECRET"), "webhook_subscription_uuid": "sub-1" });
    let (status, answer) = h
        .post_to(
            SOURCE,
            &[("content-type".into(), "application/json".into())],
            body.to_string().into_bytes(),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["handshake"], "verification_token");
    assert!(!answer.to_string().contains(secret("GUSTO_SECRET")));
    assert_eq!(h.event_count().await, 0);
}

/// A verification token is 1 to 512 printable characters without spaces: anything else is
/// refused before it could be kept or compared.
#[test]
fn a_verification_token_of_the_wrong_shape_is_refused() {
    let a = adapter(SOURCE);
    let handshake = |token: &str| {
        let body = json!({ "verification_token": token, "webhook_subscription_uuid": "s" });
        receive(&a, SOURCE, &[], body.to_string().as_bytes(), t0())
    };
    // Well formed but unknown, with nowhere to keep it: answered, not kept.
    match handshake(&"x".repeat(512)) {
        Ok(Outcome::Handshake(answer)) => {
            assert_eq!(
                (answer["stored"].as_bool(), answer["configured"].as_bool()),
                (Some(false), Some(false))
            );
        }
        other => panic!("{other:?}"),
    }
    let too_long = "x".repeat(513);
    for bad in [
        too_long.as_str(),
        "two words",
        "tab\there",
        "nul\u{0}",
        "line\n",
    ] {
        let (code, message) = refused(handshake(bad));
        assert_eq!(code, "invalid_payload", "{bad:?}");
        assert!(
            message.starts_with("verification_token: must be 1 to 512 printable characters"),
            "{bad:?}: {message}"
        );
    }
}
