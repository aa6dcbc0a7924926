//! A delivery from each sender through the HTTP server, the journal, the worker and the Admin
//! API simulator: invites and removals happen exactly as for native events.

use serde_json::{Value, json};
use sqlx::PgPool;

use super::common::*;
use super::harness::{Harness, seed, t0};

fn json_ct() -> (String, String) {
    ("content-type".into(), "application/json".into())
}

async fn post(
    h: &Harness,
    source: &str,
    mut headers: Vec<(String, String)>,
    body: Vec<u8>,
) -> Value {
    headers.push(json_ct());
    let (status, answer) = h.post_to(source, &headers, body).await;
    assert!(
        status == 200 || status == 202,
        "{source}: {status} {answer}"
    );
    answer
}

async fn accept_and_settle(h: &Harness, email: &str) -> String {
    h.settle().await;
    let invites = h.invites(email);
    assert_eq!(invites.len(), 1, "{email}: {invites:?}");
    assert_eq!(invites[0]["status"], "pending");
    h.sim
        .sim
        .accept_invite_for(email)
        .unwrap_or_else(|e| panic!("accept: {e}"));
    h.advance(61);
    h.settle().await;
    h.user(email)
        .and_then(|u| u["id"].as_str().map(str::to_owned))
        .unwrap_or_else(|| panic!("{email} did not join"))
}

fn bamboo(body: &[u8], h: &Harness) -> Vec<(String, String)> {
    use keycard::clock::Clock;
    let ts = h.clock.now().timestamp().to_string();
    let sig = hex::encode(hmac_sha256(
        secret("BAMBOO_SECRET").as_bytes(),
        &[body, ts.as_bytes()],
    ));
    vec![
        ("x-bamboohr-signature".into(), sig),
        ("x-bamboohr-timestamp".into(), ts),
    ]
}

#[sqlx::test(migrations = "./migrations/postgres")]
async fn bamboohr_hire_move_and_termination(pool: PgPool) {
    let h = Harness::start_with(pool, &toml(), seed()).await;
    let body = fixture("bamboohr/field_created.json");
    post(&h, "bamboo", bamboo(&body, &h), body).await;
    let uid = accept_and_settle(&h, "tefi.adams@acme.test").await;
    assert_eq!(h.invites("tefi.adams@acme.test")[0]["role"], "developer");
    assert_eq!(
        h.memberships(&uid),
        vec![
            ("Engineering".to_owned(), "workspace_developer".to_owned()),
            ("Sandbox".to_owned(), "workspace_user".to_owned()),
        ]
    );

    h.advance(10);
    let moved = String::from_utf8(fixture("bamboohr/field_role_change.json"))
        .unwrap_or_default()
        .replace("2026-11-28T09:58:00+0000", "2026-11-28T10:01:10+0000")
        .into_bytes();
    post(&h, "bamboo", bamboo(&moved, &h), moved).await;
    h.settle().await;
    assert_eq!(
        h.memberships(&uid),
        vec![("Sales".to_owned(), "workspace_user".to_owned())]
    );

    h.advance(10);
    let left = String::from_utf8(fixture("bamboohr/field_terminated.json"))
        .unwrap_or_default()
        .replace("2026-11-28T09:58:00+0000", "2026-11-28T10:01:20+0000")
        .into_bytes();
    post(&h, "bamboo", bamboo(&left, &h), left).await;
    h.settle().await;
    assert!(
        h.user("tefi.adams@acme.test").is_none(),
        "removed from the organization"
    );
    let person = h
        .db()
        .await
        .find_person("5")
        .await
        .ok()
        .flatten()
        .unwrap_or_else(|| panic!("person"));
    assert_eq!(
        (person.source.as_str(), person.status.as_str()),
        ("bamboo", "departed")
    );
}

#[sqlx::test(migrations = "./migrations/postgres")]
async fn hibob_v1_hire_then_v2_departure(pool: PgPool) {
    let h = Harness::start_with(pool, &toml(), seed()).await;
    let sign = |body: &[u8]| {
        vec![(
            "bob-signature".to_owned(),
            b64(&hmac_sha512(secret("HIBOB_SECRET").as_bytes(), &[body])),
        )]
    };
    let joined = fixture("hibob/v1_joined.json");
    post(&h, "bob", sign(&joined), joined).await;
    let uid = accept_and_settle(&h, "marie.curie@acme.test").await;
    assert!(!h.memberships(&uid).is_empty());

    // Thin v2 notices act on the person known by the same HiBob id.
    h.advance(10);
    let left = String::from_utf8(fixture("hibob/v2_left.json"))
        .unwrap_or_default()
        .replace("2026-11-28T09:58:00.000451", "2026-11-28T10:01:10")
        .into_bytes();
    post(&h, "bob", sign(&left), left).await;
    h.settle().await;
    assert!(h.user("marie.curie@acme.test").is_none());
    // HiBob also sends employee.inactivated for a termination: it does not revive anyone.
    let inactivated = String::from_utf8(fixture("hibob/v2_inactivated.json"))
        .unwrap_or_default()
        .replace("2026-11-28T09:58:00.000977", "2026-11-28T10:01:11")
        .into_bytes();
    post(&h, "bob", sign(&inactivated), inactivated).await;
    h.settle().await;
    let person = h
        .db()
        .await
        .find_person("3332883854254932743")
        .await
        .ok()
        .flatten()
        .unwrap_or_else(|| panic!("person"));
    assert_eq!(person.status.as_str(), "departed");
    assert_eq!(h.calls("invites.create"), 1);
}

#[sqlx::test(migrations = "./migrations/postgres")]
async fn okta_batch_hires_and_groups_then_deactivation(pool: PgPool) {
    let text = format!(
        "{}\n[[rules]]\nname = \"research\"\nwhen = '\"ml-research\" in person.groups'\norg_role = \"developer\"\nworkspaces = {{ \"Research\" = \"workspace_developer\" }}\n",
        toml()
    );
    let h = Harness::start_with(pool, &text, seed()).await;
    let auth = || vec![("authorization".to_owned(), secret("OKTA_SECRET").to_owned())];
    let answer = post(&h, "okta", auth(), fixture("okta/batch.json")).await;
    assert_eq!(answer["events"].as_array().map(Vec::len), Some(5));
    let uid = accept_and_settle(&h, "ada.lovelace@acme.test").await;
    // The group delta from group.user_membership.add reached the rules.
    assert!(
        h.memberships(&uid)
            .contains(&("Research".to_owned(), "workspace_developer".to_owned())),
        "{:?}",
        h.memberships(&uid)
    );
    let person = h
        .db()
        .await
        .find_person("00u1ada0000000000001")
        .await
        .ok()
        .flatten()
        .unwrap_or_else(|| panic!("person"));
    assert_eq!(person.attributes["groups"], json!(["ml-research"]));
    // The staged-account announcement was fulfilled by the activation.
    let events = h
        .db()
        .await
        .list_events(&keycard::journal::JournalFilter {
            person: Some("00u1ada0000000000001".into()),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .data;
    assert!(
        events.iter().all(|e| e.status.as_str() == "applied"),
        "{events:#?}"
    );
    assert!(events.iter().all(|e| e.completeness == "partial"));

    h.advance(10);
    let deactivate = String::from_utf8(fixture("okta/single_event.template.json"))
        .unwrap_or_default()
        .replace("__TYPE__", "user.lifecycle.deactivate")
        .replace("__UUID__", "9f0e-deactivate")
        .replace("__BATCH__", "b-2")
        .replace("00u3m90rxKjGQ0G6L1d6", "00u1ada0000000000001")
        .replace("john.doe@acme.test", "ada.lovelace@acme.test")
        .replace("2026-11-28T09:58:00.862Z", "2026-11-28T10:01:10.000Z")
        .into_bytes();
    post(&h, "okta", auth(), deactivate).await;
    h.settle().await;
    assert!(h.user("ada.lovelace@acme.test").is_none());
}

#[sqlx::test(migrations = "./migrations/postgres")]
async fn gusto_notices_reach_the_journal_and_the_planner(pool: PgPool) {
    let h = Harness::start_with(pool, &toml(), seed()).await;
    let sign = |body: &[u8]| {
        vec![(
            "x-gusto-signature".to_owned(),
            hex::encode(hmac_sha256(secret("GUSTO_SECRET").as_bytes(), &[body])),
        )]
    };
    let body = fixture("gusto/employee_onboarded.json");
    post(&h, "gusto", sign(&body), body).await;
    h.settle().await;
    // Gusto names no email: the planner says so instead of guessing, and calls nothing.
    let actions = h.actions("bcfc9744-0ab3-4ef3-ab0d-e728255d659c").await;
    assert!(
        actions
            .iter()
            .any(|a| a.status.as_str() == "needs_manual_action" && a.reason.contains("email")),
        "{actions:#?}"
    );
    assert_eq!(h.calls("invites.create"), 0);
    let body = fixture("gusto/employee_terminated_effective.json");
    post(&h, "gusto", sign(&body), body).await;
    h.settle().await;
    let person = h
        .db()
        .await
        .find_person("bcfc9744-0ab3-4ef3-ab0d-e728255d659c")
        .await
        .ok()
        .flatten()
        .unwrap_or_else(|| panic!("person"));
    assert_eq!(person.status.as_str(), "departed");
}

#[sqlx::test(migrations = "./migrations/postgres")]
async fn generic_github_style_hire_and_stripe_style_departure(pool: PgPool) {
    let h = Harness::start_with(pool, &toml(), seed()).await;
    let body = fixture("generic-hmac/hired.json");
    let sig = format!(
        "sha256={}",
        hex::encode(hmac_sha256(secret("GITHUB_SECRET").as_bytes(), &[&body]))
    );
    post(
        &h,
        "inhouse",
        vec![
            ("x-hub-signature-256".into(), sig),
            ("x-github-delivery".into(), "d-hire-1".into()),
        ],
        body,
    )
    .await;
    let uid = accept_and_settle(&h, "linus@acme.test").await;
    assert_eq!(
        h.memberships(&uid),
        vec![
            ("Engineering".to_owned(), "workspace_developer".to_owned()),
            ("Sandbox".to_owned(), "workspace_user".to_owned()),
        ]
    );

    // A Stripe-style sender for another person: hire, then termination.
    use keycard::clock::Clock;
    let stripe = |body: &[u8], h: &Harness| {
        let ts = h.clock.now().timestamp().to_string();
        let tag = hex::encode(hmac_sha256(
            secret("STRIPE_SECRET").as_bytes(),
            &[ts.as_bytes(), b".", body],
        ));
        vec![("stripe-signature".to_owned(), format!("t={ts},v1={tag}"))]
    };
    let hire = fixture("generic-hmac/stripe_hired.json");
    post(&h, "stripeish", stripe(&hire, &h), hire).await;
    accept_and_settle(&h, "ken@acme.test").await;
    h.advance(10);
    let left = String::from_utf8(fixture("generic-hmac/stripe_terminated.json"))
        .unwrap_or_default()
        .replace("1795859880", &(h.clock.now().timestamp()).to_string())
        .into_bytes();
    post(&h, "stripeish", stripe(&left, &h), left).await;
    h.settle().await;
    assert!(h.user("ken@acme.test").is_none());
    assert!(
        h.user("linus@acme.test").is_some(),
        "the other person is untouched"
    );
    let _ = t0();
}

/// Issue 15 defect 1: a GitHub-style source signs the body only. A captured hire, resent after
/// the departure under a fresh (unsigned) `X-GitHub-Delivery`, must be a duplicate that moves
/// nobody back — even where the mapping names no event id and no occurrence time.
#[sqlx::test(migrations = "./migrations/postgres")]
async fn a_replayed_generic_body_never_moves_a_leaver_back(pool: PgPool) {
    let bare = r#"
[[sources]]
name = "bare"
kind = "generic-hmac"
secret_env = "GITHUB_SECRET"
header = "X-Hub-Signature-256"
prefix = "sha256="
id_header = "X-GitHub-Delivery"

[sources.mapping]
event_type = "/action"
person_id = "/employee/id"
email = "/employee/work_email"
department = "/employee/department"

[sources.mapping.types]
"employee.hired" = "hired"
"employee.left" = "departed"
"#;
    let h = Harness::start_with(pool, &format!("{}\n{bare}", toml()), seed()).await;
    let signed = |body: &[u8], delivery: &str| {
        vec![
            (
                "x-hub-signature-256".to_owned(),
                format!(
                    "sha256={}",
                    hex::encode(hmac_sha256(secret("GITHUB_SECRET").as_bytes(), &[body]))
                ),
            ),
            ("x-github-delivery".to_owned(), delivery.to_owned()),
        ]
    };
    let hire = br#"{"action":"employee.hired","employee":{"id":"R-1","work_email":"replay@acme.test","department":"Engineering"}}"#.to_vec();
    let left = br#"{"action":"employee.left","employee":{"id":"R-1"}}"#.to_vec();
    post(&h, "bare", signed(&hire, "d-1"), hire.clone()).await;
    accept_and_settle(&h, "replay@acme.test").await;
    h.advance(60);
    post(&h, "bare", signed(&left, "d-2"), left).await;
    h.settle().await;
    assert!(
        h.user("replay@acme.test").is_none(),
        "the leaver is removed"
    );
    let invites_before = h.calls("invites.create");

    h.advance(3600);
    let answer = post(&h, "bare", signed(&hire, "d-3-forged"), hire).await;
    assert_eq!(answer["duplicate"], true, "{answer}");
    h.settle().await;
    assert_eq!(h.calls("invites.create"), invites_before, "no new invite");
    let person = h
        .db()
        .await
        .find_person("R-1")
        .await
        .ok()
        .flatten()
        .unwrap_or_else(|| panic!("person"));
    assert_eq!(person.status.as_str(), "departed");
}
