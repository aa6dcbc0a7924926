//! The lifecycle pipeline end to end: signed deliveries over loopback HTTP, the journal on
//! a fresh PostgreSQL database per test, the Admin API simulator as the organization.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failure should stop the test loudly

mod adoption;
mod alerts;
mod credential;
mod enrich;
mod export;
mod guards;
mod hardening;
use crate::harness;
mod ingest;
mod metrics;
mod openapi;
mod operators;
mod org;
mod pull;
mod retention;

use adoption::{
    a_workspace_archived_by_hand_before_a_retry_is_not_archived_again,
    an_organization_on_aws_degrades_to_manual_notes_and_retries_nothing,
    an_organization_without_workspaces_is_read_and_reported, import_a_thousand_rows_with_bad_ones,
    observe_mode_writes_nothing, people_are_listed_with_filters_and_cursors,
    plan_all_matches_what_serve_then_does, reports_read_a_seeded_organization,
    unmanaged_members_are_reported_and_removed_within_the_cap,
    unused_workspaces_are_archived_through_the_cap_when_the_config_says_so,
};
use alerts::{
    a_held_removal_alerts_every_target_once,
    alerts_give_up_after_max_attempts_and_respect_the_rate_limit,
};
use credential::a_rejected_credential_stops_writes_until_a_probe_succeeds;
use enrich::{
    a_departure_does_not_wait_for_a_sender_outage,
    a_departure_with_no_account_is_journaled_as_no_change,
    a_failed_read_is_visible_and_retried_until_it_completes,
    a_gusto_hire_without_email_is_invited_after_enrichment,
    a_hibob_v2_termination_removes_the_member, a_parked_notice_wakes_the_enrichment_loop,
    a_record_changed_twice_more_before_the_read_applies_once,
    an_okta_profile_update_changes_the_workspace, enrichment_waits_out_a_429_storm_and_completes,
};
use export::journal_exports_are_fit_for_audit;
use guards::{
    a_worker_that_lost_its_lease_mid_plan_makes_no_further_call,
    protected_people_are_never_offboarded_by_automation,
};
use harness::*;
use keycard::admin_sim::Fault;
use metrics::metrics_pass_promtool_and_say_what_waits_now;
use openapi::the_openapi_document_describes_every_route;
use operators::{
    a_sign_in_proxy_names_the_operator,
    link_and_sync_are_journaled_and_sync_reads_the_organization,
    manual_actions_are_resolved_with_a_note, named_operators_release_with_a_reason_on_the_record,
    the_cli_releases_several_actions_with_a_reason,
};
use org::{
    a_failed_read_before_a_removal_waits_the_retry_base,
    a_member_made_admin_by_hand_is_seen_before_a_removal,
    an_acceptance_between_full_reads_costs_one_read, an_operator_asks_for_a_full_read_now,
    the_mirror_reads_members_across_page_boundaries,
};
use pull::{
    a_lost_termination_and_a_silent_hire_are_repaired_by_the_next_pull,
    a_pull_during_a_429_storm_completes,
    an_empty_directory_departs_nobody_until_an_operator_releases_it,
    an_operator_merges_two_people_and_it_is_journaled,
    correlation_by_email_makes_hr_and_okta_one_person, departures_beyond_the_cap_are_held,
    two_replicas_pull_once_and_a_request_pulls_now,
};
use retention::{
    retention_off_never_runs, retention_removes_old_bodies_and_redacts_long_departed_people,
    retention_with_body_removal_off_still_redacts,
    retention_with_redaction_off_still_removes_bodies,
};
use serde_json::json;

async fn hire_invite_acceptance_then_memberships(db: TestDb) {
    let h = Harness::start(db).await;
    let (status, body) = h
        .deliver("msg_hire", hire("E1", "ada@acme.test", "Engineering", t0()))
        .await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["duplicate"], false);
    h.settle().await;

    let invites = h.invites("ada@acme.test");
    assert_eq!(invites.len(), 1);
    assert_eq!(invites[0]["role"], "developer");
    assert_eq!(invites[0]["status"], "pending");
    assert!(h.user("ada@acme.test").is_none());
    let actions = h.actions("E1").await;
    let kinds: Vec<(&str, &str)> = actions
        .iter()
        .map(|a| (a.kind.as_str(), a.status.as_str()))
        .collect();
    assert_eq!(
        kinds,
        vec![
            ("create_invite", "succeeded"),
            ("wait_for_acceptance", "waiting")
        ]
    );
    assert!(
        actions[0]
            .request_id
            .as_deref()
            .is_some_and(|r| r.starts_with("req_"))
    );
    assert_eq!(actions[0].response_status, Some(200));

    // Nothing happens until the invite is accepted, however often we poll.
    h.advance(61);
    h.settle().await;
    assert_eq!(h.calls("invites.create"), 1);

    h.sim
        .sim
        .accept_invite_for("ada@acme.test")
        .unwrap_or_else(|e| panic!("accept: {e}"));
    h.advance(61);
    h.settle().await;
    let user = h
        .user("ada@acme.test")
        .unwrap_or_else(|| panic!("user missing"));
    let uid = user["id"].as_str().unwrap_or_default();
    assert_eq!(
        h.memberships(uid),
        vec![
            ("Engineering".to_owned(), "workspace_developer".to_owned()),
            ("Sandbox".to_owned(), "workspace_user".to_owned()),
        ]
    );
    let actions = h.actions("E1").await;
    assert!(
        actions
            .iter()
            .any(|a| a.kind.as_str() == "wait_for_acceptance" && a.status.as_str() == "succeeded")
    );
    assert_eq!(
        actions
            .iter()
            .filter(
                |a| a.kind.as_str() == "add_workspace_member" && a.status.as_str() == "succeeded"
            )
            .count(),
        2
    );
    // Converged: another pass does nothing.
    let before = h.sim.sim.calls().len();
    h.advance(3600);
    h.settle().await;
    assert_eq!(
        h.sim.sim.calls().len(),
        before,
        "a converged person causes no calls"
    );
}

async fn joined(h: &Harness, id: &str, email: &str, dept: &str) -> String {
    let (status, _) = h
        .deliver(&format!("msg_{id}_hire"), hire(id, email, dept, t0()))
        .await;
    assert_eq!(status, 202);
    h.settle().await;
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

/// HR tells Keycard that `id` changed now (`person.updated` with `person`'s fields, or
/// `person.departed`), and the worker settles.
async fn told(h: &Harness, msg: &str, kind: &str, id: &str, person: serde_json::Value) {
    let (status, _) = h.deliver(msg, event(kind, id, h.clock_now(), person)).await;
    assert_eq!(status, 202);
    h.settle().await;
}

async fn mover_changes_role_and_managed_memberships_only(db: TestDb) {
    let h = Harness::start(db).await;
    let uid = joined(&h, "E2", "grace@acme.test", "Engineering").await;
    // Someone added Grace to Research by hand: no rule names it, so it is never touched.
    let research = h.workspace_id("Research");
    h.sim.sim.add_member(&research, &uid, "workspace_admin");

    h.advance(10);
    let move_to_sales = event(
        "person.updated",
        "E2",
        h.clock_now(),
        json!({ "department": "Sales" }),
    );
    let (status, _) = h.deliver("msg_E2_move", move_to_sales).await;
    assert_eq!(status, 202);
    h.settle().await;

    assert_eq!(
        h.user("grace@acme.test").map(|u| u["role"].clone()),
        Some(json!("user"))
    );
    assert_eq!(
        h.memberships(&uid),
        vec![
            ("Research".to_owned(), "workspace_admin".to_owned()),
            ("Sales".to_owned(), "workspace_user".to_owned()),
        ]
    );
}

async fn a_mover_already_in_a_workspace_is_read_back_not_failed(db: TestDb) {
    let h = Harness::start(db).await;
    // Someone already added each of them to Sales by hand, the mirror does not know yet:
    // Hedy with the role her rule gives, Ida as a developer.
    for (id, email, by_hand) in [
        ("E7", "hedy@acme.test", "workspace_user"),
        ("E8", "ida@acme.test", "workspace_developer"),
    ] {
        let uid = joined(&h, id, email, "Engineering").await;
        let sales = h.workspace_id("Sales");
        h.sim.sim.add_member(&sales, &uid, by_hand);
        let key_reads = h.requests("api_keys.list");
        let member_reads = h.requests("workspace_members.get");

        h.advance(10);
        told(
            &h,
            &format!("msg_{id}_move"),
            "person.updated",
            id,
            json!({ "department": "Sales" }),
        )
        .await;
        assert_eq!(
            h.memberships(&uid),
            vec![("Sales".to_owned(), "workspace_user".to_owned())],
            "{id}"
        );
        // Adding them to Sales was refused (400, no error code): one read of that
        // membership showed them there, and the rest of the move went on; a role other
        // than the rule's was planned again and set.
        assert_eq!(
            h.requests("workspace_members.get") - member_reads,
            1,
            "{id}"
        );
        let sales_add = h
            .actions(id)
            .await
            .into_iter()
            .find(|a| a.kind.as_str() == "add_workspace_member" && a.params["workspace"] == "Sales")
            .unwrap_or_else(|| panic!("no add to Sales"));
        assert_eq!(sales_add.status.as_str(), "succeeded", "{sales_add:?}");
        assert!(
            sales_add
                .outcome
                .as_deref()
                .is_some_and(|o| o.contains(&format!("already a member, as {by_hand}"))),
            "{sales_add:?}"
        );
        // Their keys were read only where they left a workspace (Engineering, Sandbox).
        assert_eq!(h.requests("api_keys.list") - key_reads, 2, "{id}");
    }
    assert_eq!(h.calls("workspace_members.update"), 1, "Ida's role only");
}

/// The API says an invite exists, yet reading the organization does not show it (here the
/// read itself keeps failing): the second such answer within the hour becomes a note for a
/// human instead of a loop of re-reads and re-sends.
async fn already_exists_again_without_a_trace_becomes_a_note_not_a_loop(db: TestDb) {
    let h = Harness::start(db).await;
    h.settle().await; // the first full read
    h.by_hand(
        reqwest::Method::POST,
        "/v1/organizations/invites",
        Some(json!({ "email": "ghost@acme.test", "role": "user" })),
    )
    .await;
    h.inject(Fault {
        route: "invites.list".into(),
        status: 500,
        count: 100_000,
        apply: false,
        retry_after: None,
    });
    h.deliver("g1", hire("X6", "ghost@acme.test", "Facilities", t0()))
        .await;
    h.settle().await;
    assert_eq!(
        h.requests("invites.create"),
        3,
        "the one by hand, then Keycard's twice"
    );
    let creates: Vec<_> = h
        .actions("X6")
        .await
        .into_iter()
        .filter(|a| a.kind.as_str() == "create_invite")
        .map(|a| a.status.as_str().to_owned())
        .collect();
    assert_eq!(creates, ["succeeded", "needs_manual_action"], "{creates:?}");
}

async fn a_membership_changed_by_hand_is_read_again_before_its_removal(db: TestDb) {
    let h = Harness::start(db).await;
    let uid = joined(&h, "E9", "joan@acme.test", "Engineering").await;
    // In the Console, her Sandbox role is raised; the mirror still has the old one.
    let sandbox = h.workspace_id("Sandbox");
    h.by_hand(
        reqwest::Method::POST,
        &format!("/v1/organizations/workspaces/{sandbox}/members/{uid}"),
        Some(json!({ "workspace_role": "workspace_developer" })),
    )
    .await;
    // Past verify_after_secs (300): the mirror's copies are read again before a removal.
    h.advance(600);
    let key_reads = h.requests("api_keys.list");
    told(
        &h,
        "msg_E9_move",
        "person.updated",
        "E9",
        json!({ "department": "Sales" }),
    )
    .await;
    assert_eq!(
        h.memberships(&uid),
        vec![("Sales".to_owned(), "workspace_user".to_owned())]
    );
    // The Sandbox membership was found changed: her part of the organization was read
    // again and the move planned anew. She keeps her access, so that re-read read no keys;
    // they were read once before each membership she left.
    assert!(
        h.actions("E9")
            .await
            .iter()
            .any(|a| a.kind.as_str() == "remove_workspace_member"
                && a.params["workspace"] == "Sandbox"
                && a.status.as_str() == "succeeded")
    );
    assert_eq!(h.requests("api_keys.list") - key_reads, 2);
}

/// A pending invite is followed to its expiry and sent again one second after it, not
/// before: a follow-up a second early would find it still pending, and come due again at
/// once.
async fn an_invite_is_sent_again_just_after_it_expires(db: TestDb) {
    let toml = RULES.replace("lease_secs = 120", "lease_secs = 120\ndrift_check_secs = 0");
    let h = Harness::start_with(db, &toml, seed()).await;
    h.deliver("m1", hire("X5", "exp@acme.test", "Facilities", t0()))
        .await;
    h.settle().await;
    let expires_at = h.invites("exp@acme.test")[0]["expires_at"]
        .as_str()
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .unwrap_or_else(|| panic!("no expiry"))
        .with_timezone(&chrono::Utc);
    let until = u64::try_from((expires_at - h.clock_now()).num_seconds()).unwrap_or(0);
    h.advance(until - 1);
    h.settle().await;
    assert_eq!(h.invites("exp@acme.test").len(), 1, "still pending");
    h.advance(1);
    h.settle().await;
    assert_eq!(
        h.invites("exp@acme.test").len(),
        1,
        "expired this very second"
    );
    h.advance(1);
    h.settle().await;
    assert_eq!(h.invites("exp@acme.test").len(), 2, "sent again");
}

async fn an_invite_sent_by_hand_is_read_and_followed(db: TestDb) {
    let h = Harness::start(db).await;
    h.settle().await; // the first full read
    // Before HR's record arrives, someone invites the new hire from the Console.
    h.by_hand(
        reqwest::Method::POST,
        "/v1/organizations/invites",
        Some(json!({ "email": "early@acme.test", "role": "user" })),
    )
    .await;
    let key_reads = h.requests("api_keys.list");
    h.deliver("m1", hire("X4", "early@acme.test", "Facilities", t0()))
        .await;
    h.settle().await;
    // Keycard's invite was answered invite_already_exists: the person's part of the
    // organization was read again and the invite by hand is followed, not sent twice.
    assert_eq!(h.invites("early@acme.test").len(), 1);
    assert_eq!(
        h.requests("invites.create"),
        2,
        "the one by hand, Keycard's refused"
    );
    let create = h
        .actions("X4")
        .await
        .into_iter()
        .find(|a| a.kind.as_str() == "create_invite")
        .unwrap_or_else(|| panic!("no create_invite"));
    assert!(
        create
            .outcome
            .as_deref()
            .is_some_and(|o| o.contains("invite_already_exists")),
        "{create:?}"
    );
    // Someone joining has no account and no keys to read.
    assert_eq!(h.requests("api_keys.list"), key_reads);
    // The invite is accepted: the person is found as a member.
    h.sim
        .sim
        .accept_invite_for("early@acme.test")
        .unwrap_or_else(|e| panic!("{e}"));
    h.advance(61);
    h.settle().await;
    assert!(h.user("early@acme.test").is_some());
    assert_eq!(h.requests("invites.create"), 2);
}

async fn leaver_keys_deactivated_memberships_and_member_removed(db: TestDb) {
    let h = Harness::start(db).await;
    let uid = joined(&h, "E3", "alan@acme.test", "Engineering").await;
    let eng = h.workspace_id("Engineering");
    let key = h.sim.sim.add_api_key("alan-ci", Some(&eng), Some(&uid));
    let other = h.sim.sim.add_api_key("someone-else", Some(&eng), None);

    h.advance(10);
    let (status, _) = h
        .deliver(
            "msg_E3_leave",
            event("person.departed", "E3", h.clock_now(), json!({})),
        )
        .await;
    assert_eq!(status, 202);
    h.settle().await;

    assert!(h.user("alan@acme.test").is_none(), "member removed");
    let keys = h.state()["api_keys"].clone();
    let status_of = |id: &serde_json::Value| {
        keys.as_array()
            .and_then(|k| k.iter().find(|k| k["id"] == *id))
            .map(|k| k["status"].clone())
    };
    assert_eq!(status_of(&key["id"]), Some(json!("inactive")));
    assert_eq!(
        status_of(&other["id"]),
        Some(json!("active")),
        "other people's keys untouched"
    );
    // The calls, in the order the organization received them: the keys go first, while the
    // member can still be identified as their creator.
    let writes: Vec<&str> = h
        .sim
        .sim
        .calls()
        .iter()
        .filter(|c| c.status < 300 && c.method != "GET")
        .filter_map(|c| c.route)
        .filter(|r| {
            [
                "api_keys.update",
                "workspace_members.delete",
                "users.delete",
            ]
            .contains(r)
        })
        .collect();
    assert_eq!(
        writes,
        [
            "api_keys.update",
            "workspace_members.delete",
            "workspace_members.delete",
            "users.delete"
        ],
        "{writes:?}"
    );
}

/// The journal's record of each request is the request the organization received: for
/// every action that reached the API, the same method and path under the same request id,
/// the body the step implies, and no credential.
async fn every_journaled_request_is_what_the_organization_received(db: TestDb) {
    let h = Harness::start(db).await;
    let uid = joined(&h, "J1", "audit@acme.test", "Engineering").await;
    let eng = h.workspace_id("Engineering");
    h.sim.sim.add_api_key("audit-ci", Some(&eng), Some(&uid));
    // The role update's first HTTP try fails; the client's retry gets it through.
    h.inject(Fault {
        route: "users.update".into(),
        status: 500,
        count: 1,
        apply: false,
        retry_after: None,
    });
    h.advance(10);
    told(
        &h,
        "move_J1",
        "person.updated",
        "J1",
        json!({ "department": "Sales" }),
    )
    .await;
    h.advance(10);
    told(&h, "leave_J1", "person.departed", "J1", json!({})).await;

    let calls = h.sim.sim.calls();
    let sent: Vec<_> = h
        .actions("J1")
        .await
        .into_iter()
        .filter(|a| a.request_id.is_some())
        .collect();
    let kinds: std::collections::BTreeSet<&str> = sent.iter().map(|a| a.kind.as_str()).collect();
    assert_eq!(
        kinds.into_iter().collect::<Vec<_>>(),
        [
            "add_workspace_member",
            "create_invite",
            "deactivate_api_key",
            "remove_user",
            "remove_workspace_member",
            "update_user_role"
        ]
    );
    for action in &sent {
        let request = action
            .request
            .clone()
            .unwrap_or_else(|| panic!("no request journaled: {action:?}"));
        let call = calls
            .iter()
            .find(|c| Some(&c.request_id) == action.request_id.as_ref())
            .unwrap_or_else(|| panic!("the organization has no request {action:?}"));
        assert_eq!(request["method"], call.method.as_str(), "{action:?}");
        assert_eq!(request["path"], call.path.as_str(), "{action:?}");
        let p = &action.params;
        let body = match action.kind.as_str() {
            "create_invite" => json!({ "email": p["email"], "role": p["role"] }),
            "update_user_role" => json!({ "role": p["to"] }),
            "add_workspace_member" => {
                json!({ "user_id": p["user_id"], "workspace_role": p["role"] })
            }
            "deactivate_api_key" => json!({ "status": "inactive" }),
            _ => serde_json::Value::Null,
        };
        assert_eq!(request["body"], body, "{action:?}");
        assert!(!request.to_string().contains("sk-ant"), "{request}");
        let outcome = action.outcome.as_deref().unwrap_or_default();
        if action.kind.as_str() == "update_user_role" {
            assert_eq!(
                outcome,
                "done after 1 attempt(s), the last in 2 HTTP requests"
            );
        } else {
            assert_eq!(outcome, "done after 1 attempt(s)", "{action:?}");
        }
    }
}

/// Before each destructive write, an object the mirror holds for longer than
/// `verify_after_secs` is read again: an API key deactivated by hand meanwhile is not
/// deactivated again, and a member made an admin with nothing but the membership itself to
/// remove first is not removed.
async fn keys_and_accounts_changed_by_hand_are_read_before_a_removal(db: TestDb) {
    let h = Harness::start(db).await;
    // An org role and no workspaces (the default rule): the account is the first thing to go.
    let kay = joined(&h, "V1", "kay@acme.test", "Facilities").await;
    let key = h.sim.sim.add_api_key("kay-ci", None, Some(&kay));
    let lin = joined(&h, "V2", "lin@acme.test", "Facilities").await;
    // The daily full read puts the key in the mirror, active.
    h.advance(90_000);
    h.settle().await;
    // Behind Keycard's back: Kay's key is deactivated, Lin is made an admin.
    let key_id = key["id"].as_str().unwrap_or_default().to_owned();
    h.by_hand(
        reqwest::Method::POST,
        &format!("/v1/organizations/api_keys/{key_id}"),
        Some(json!({ "status": "inactive" })),
    )
    .await;
    assert!(h.sim.sim.set_user_role(&lin, "admin"));
    let key_updates = h.requests("api_keys.update");
    h.advance(600);
    for id in ["V1", "V2"] {
        h.deliver(
            &format!("leave_{id}"),
            event("person.departed", id, h.clock_now(), json!({})),
        )
        .await;
    }
    h.settle().await;
    assert_eq!(
        h.requests("api_keys.update"),
        key_updates,
        "the key was found inactive"
    );
    assert!(h.user("kay@acme.test").is_none(), "Kay is removed");
    assert!(
        h.user("lin@acme.test").is_some(),
        "an admin is never removed"
    );
    assert_eq!(h.requests("users.delete"), 1, "Kay's removal only");
    let notes = h.actions("V2").await;
    assert!(
        notes
            .iter()
            .any(|a| a.status.as_str() == "needs_manual_action" && a.reason.contains("admin")),
        "{notes:?}"
    );
}

async fn departure_before_acceptance_withdraws_the_invite(db: TestDb) {
    let h = Harness::start(db).await;
    h.deliver("m1", hire("E4", "new@acme.test", "Sales", t0()))
        .await;
    h.settle().await;
    h.advance(10);
    h.deliver(
        "m2",
        event("person.departed", "E4", h.clock_now(), json!({})),
    )
    .await;
    h.settle().await;
    let invites = h.invites("new@acme.test");
    assert_eq!(invites.len(), 1);
    assert_eq!(invites[0]["status"], "deleted");
    assert!(h.user("new@acme.test").is_none());
}

async fn redelivery_causes_nothing_new(db: TestDb) {
    let h = Harness::start(db).await;
    let body = hire("E5", "dup@acme.test", "Sales", t0());
    let (s1, b1) = h.deliver("msg_same", body.clone()).await;
    h.settle().await;
    let (s2, b2) = h.deliver("msg_same", body).await;
    h.settle().await;
    assert_eq!((s1, s2), (202, 202));
    assert_eq!(b2["duplicate"], true);
    assert_eq!(b1["event_id"], b2["event_id"]);
    assert_eq!(h.event_count().await, 1);
    assert_eq!(h.calls("invites.create"), 1);

    // The same id over a different message is not a redelivery: refused, not dropped.
    let (s3, b3) = h
        .deliver(
            "msg_same",
            event("person.departed", "E5", h.clock_now(), json!({})),
        )
        .await;
    assert_eq!(s3, 409, "{b3}");
    assert_eq!(b3["code"], "webhook_id_reused");
    assert_eq!(h.event_count().await, 1);
}

async fn out_of_order_update_after_departure_stays_departed(db: TestDb) {
    let h = Harness::start(db).await;
    let t = t0();
    h.deliver("m1", hire("E6", "ooo@acme.test", "Engineering", t))
        .await;
    h.settle().await;
    h.deliver(
        "m3",
        event(
            "person.departed",
            "E6",
            t + chrono::Duration::minutes(30),
            json!({}),
        ),
    )
    .await;
    h.settle().await;
    // An update made before the departure arrives late.
    let late = event(
        "person.updated",
        "E6",
        t + chrono::Duration::minutes(10),
        json!({ "department": "Sales" }),
    );
    let (status, _) = h.deliver("m2", late).await;
    assert_eq!(status, 202);
    h.settle().await;
    let person = h
        .db()
        .await
        .find_person("E6")
        .await
        .ok()
        .flatten()
        .unwrap_or_else(|| panic!("person"));
    assert_eq!(person.status.as_str(), "departed");
    let events = h
        .db()
        .await
        .list_events(&keycard::journal::JournalFilter {
            person: Some("E6".into()),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        events
            .data
            .iter()
            .any(|e| e.dedupe_key == "m2" && e.status.as_str() == "stale")
    );
    // Invited then withdrawn; never re-invited by the late update.
    assert_eq!(h.calls("invites.create"), 1);
    assert!(
        h.invites("ooo@acme.test")
            .iter()
            .all(|i| i["status"] == "deleted")
    );
}

async fn an_admin_departing_needs_manual_action_and_nothing_is_removed(db: TestDb) {
    let h = Harness::start(db).await;
    h.deliver("m1", hire("E7", "boss@acme.test", "Engineering", t0()))
        .await;
    h.settle().await;
    h.advance(10);
    h.deliver(
        "m2",
        event("person.departed", "E7", h.clock_now(), json!({})),
    )
    .await;
    h.settle().await;
    assert!(h.user("boss@acme.test").is_some(), "admin still a member");
    let actions = h.actions("E7").await;
    assert!(
        actions
            .iter()
            .any(|a| a.status.as_str() == "needs_manual_action"),
        "{actions:?}"
    );
    assert!(
        actions
            .iter()
            .all(|a| a.status.as_str() != "succeeded" || a.kind.as_str() == "needs_manual_action")
    );
    assert_eq!(h.calls("users.delete"), 0);
    // Another run for them (a second notice of the departure) writes no second note.
    let notes = || async {
        h.actions("E7")
            .await
            .into_iter()
            .filter(|a| a.status.as_str() == "needs_manual_action")
            .count()
    };
    let before = notes().await;
    assert_eq!(before, 2, "one when hired, one when departed");
    h.advance(10);
    h.deliver(
        "m3",
        event("person.departed", "E7", h.clock_now(), json!({})),
    )
    .await;
    h.settle().await;
    assert_eq!(notes().await, before, "a note for a human is written once");
}

/// A member removed by hand since the last read: the role update finds no account (404). It
/// is not "already gone" (that is for removals): the action fails with the API's answer.
async fn a_role_update_for_an_account_removed_by_hand_fails_with_the_404(db: TestDb) {
    let h = Harness::start(db).await;
    let uid = joined(&h, "G1", "gone@acme.test", "Engineering").await;
    h.by_hand(
        reqwest::Method::DELETE,
        &format!("/v1/organizations/users/{uid}"),
        None,
    )
    .await;
    h.advance(10);
    told(
        &h,
        "move_G1",
        "person.updated",
        "G1",
        json!({ "department": "Sales" }),
    )
    .await;
    let update = h
        .actions("G1")
        .await
        .into_iter()
        .find(|a| a.kind.as_str() == "update_user_role")
        .unwrap_or_else(|| panic!("no role update"));
    assert_eq!(update.status.as_str(), "failed", "{update:?}");
    assert_eq!(update.response_status, Some(404), "{update:?}");
}

async fn injected_faults_converge_without_duplicate_invites(db: TestDb) {
    let h = Harness::start(db).await;
    for fault in [
        Fault {
            route: "invites.create".into(),
            status: 429,
            count: 1,
            apply: false,
            retry_after: Some(2),
        },
        Fault {
            route: "invites.create".into(),
            status: 500,
            count: 1,
            apply: false,
            retry_after: None,
        },
        Fault {
            route: "invites.create".into(),
            status: 503,
            count: 1,
            apply: true,
            retry_after: None,
        },
    ] {
        h.inject(fault);
    }
    h.deliver("m1", hire("E8", "flaky@acme.test", "Engineering", t0()))
        .await;
    h.settle().await;
    for _ in 0..5 {
        h.advance(120);
        h.settle().await;
    }
    let invites = h.invites("flaky@acme.test");
    assert_eq!(invites.len(), 1, "exactly one invite: {invites:?}");
    assert_eq!(invites[0]["status"], "pending");
    let actions = h.actions("E8").await;
    assert!(
        actions
            .iter()
            .any(|a| a.kind.as_str() == "create_invite" && a.status.as_str() == "succeeded"),
        "{actions:?}"
    );
}

async fn crash_between_commit_and_call_completes_once(db: TestDb) {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    let h = Harness::start(db).await;
    h.deliver("m1", hire("E9", "crash@acme.test", "Sales", t0()))
        .await;

    // First worker "dies" right after committing the action as running.
    let reached = Arc::new(AtomicBool::new(false));
    let flag = reached.clone();
    let doomed = h.worker.clone().with_before_call(Arc::new(move |_| {
        flag.store(true, Ordering::SeqCst);
        Box::pin(std::future::pending::<()>())
    }));
    let task = tokio::spawn(async move {
        let _ = doomed.run_until_idle().await;
    });
    for _ in 0..200 {
        if reached.load(Ordering::SeqCst) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert!(reached.load(Ordering::SeqCst), "worker reached the call");
    task.abort();
    let _ = task.await;
    assert_eq!(
        h.calls("invites.create"),
        0,
        "the crash happened before the call"
    );
    let running = h.actions("E9").await;
    assert!(
        running
            .iter()
            .any(|a| a.kind.as_str() == "create_invite" && a.status.as_str() == "running")
    );

    // A restarted worker takes over once the lease has expired.
    h.advance(121);
    h.settle().await;
    assert_eq!(h.calls("invites.create"), 1);
    let actions = h.actions("E9").await;
    let invite_actions: Vec<_> = actions
        .iter()
        .filter(|a| a.kind.as_str() == "create_invite")
        .collect();
    assert_eq!(
        invite_actions.len(),
        1,
        "the same action row completed: {actions:?}"
    );
    assert_eq!(invite_actions[0].status.as_str(), "succeeded");
    assert_eq!(invite_actions[0].attempts, 2);
    // The outcome agrees with the count (it used to say "done after 1 attempt(s)").
    assert_eq!(
        invite_actions[0].outcome.as_deref(),
        Some("done after 2 attempt(s)")
    );
}

async fn two_workers_never_run_an_action_twice(db: TestDb) {
    let h = Harness::start(db).await;
    for i in 0..20 {
        h.deliver(
            &format!("m{i}"),
            hire(&format!("P{i}"), &format!("p{i}@acme.test"), "Sales", t0()),
        )
        .await;
    }
    let a = h.worker.clone().with_owner_suffix(0);
    let b = h.worker.clone().with_owner_suffix(1);
    let (ra, rb) = tokio::join!(a.run_until_idle(), b.run_until_idle());
    ra.unwrap_or_else(|e| panic!("{e}"));
    rb.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(h.calls("invites.create"), 20);
    let failed: Vec<_> = h
        .sim
        .sim
        .calls()
        .into_iter()
        .filter(|c| c.status >= 400)
        .collect();
    assert!(
        failed.is_empty(),
        "no duplicate invite attempts: {failed:?}"
    );
}

impl Harness {
    pub fn clock_now(&self) -> chrono::DateTime<chrono::Utc> {
        use keycard::clock::Clock;
        self.clock.now()
    }
}

async fn removals_beyond_the_cap_wait_for_an_operator(db: TestDb) {
    let toml = format!("{RULES}\n[safety]\nmax_removals_per_hour = 1\n");
    let h = Harness::start_with(db, &toml, seed()).await;
    joined(&h, "C1", "c1@acme.test", "Sales").await;
    joined(&h, "C2", "c2@acme.test", "Sales").await;
    h.advance(10);
    for id in ["C1", "C2"] {
        let (status, _) = h
            .deliver(
                &format!("leave_{id}"),
                event("person.departed", id, h.clock_now(), json!({})),
            )
            .await;
        assert_eq!(status, 202);
    }
    h.settle().await;
    assert_eq!(
        h.calls("users.delete"),
        1,
        "only one removal within the hour"
    );
    // The cap counts people: the first leaver's whole offboarding ran (membership, then
    // member); the second leaver's first destructive step is held, and nothing after it ran.
    let held: Vec<_> = [h.actions("C1").await, h.actions("C2").await]
        .concat()
        .into_iter()
        .filter(|a| a.status.as_str() == "held")
        .collect();
    assert_eq!(held.len(), 1, "{held:?}");
    assert_eq!(held[0].kind.as_str(), "remove_workspace_member");
    assert!(
        held[0]
            .error
            .as_deref()
            .unwrap_or_default()
            .contains("max_removals_per_hour")
    );
    assert_eq!(h.calls("workspace_members.delete"), 1);
    let metrics = h
        .http
        .get(format!("{}/metrics", h.base))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .text()
        .await
        .unwrap_or_default();
    assert!(
        metrics.contains("keycard_actions{status=\"held\"} 1"),
        "an operator can alert on held actions: {metrics}"
    );

    // A hold is sticky: more passes, a new event for the person and the end of the hour do
    // not pile up rows or let the removal through; only an operator does.
    h.advance(60);
    h.settle().await;
    h.deliver(
        "leave_C2_again",
        event("person.departed", "C2", h.clock_now(), json!({})),
    )
    .await;
    h.advance(7200);
    h.settle().await;
    assert_eq!(h.calls("users.delete"), 1);
    assert_eq!(h.calls("workspace_members.delete"), 1);
    let c2 = h.actions("C2").await;
    assert_eq!(
        c2.iter()
            .filter(|a| a.status.as_str() == "held")
            .map(|a| a.id)
            .collect::<Vec<_>>(),
        vec![held[0].id],
        "{c2:?}"
    );

    let resp = h
        .http
        .post(format!("{}/api/v1/actions/{}/release", h.base, held[0].id))
        .bearer_auth(OPS_TOKEN)
        .json(&json!({ "reason": "the leaver list was checked with HR" }))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(resp.status().as_u16(), 200);
    let again = h
        .http
        .post(format!("{}/api/v1/actions/{}/release", h.base, held[0].id))
        .bearer_auth(OPS_TOKEN)
        .json(&json!({ "reason": "the leaver list was checked with HR" }))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(again.status().as_u16(), 409, "a second release says why");
    h.settle().await;
    assert_eq!(h.calls("users.delete"), 2, "the released removal ran");
    assert!(h.user("c1@acme.test").is_none() && h.user("c2@acme.test").is_none());
    let released = h
        .db()
        .await
        .action(held[0].id)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(released.status.as_str(), "succeeded");
}

async fn a_slow_call_keeps_its_lease(db: TestDb) {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};

    // A one-second lease, renewed every third of a second while the call is in flight.
    let toml = RULES.replace("lease_secs = 120", "lease_secs = 1");
    let h = Harness::start_with(db, &toml, seed()).await;
    h.deliver("m1", hire("S1", "slow@acme.test", "Sales", t0()))
        .await;

    // The call "takes" ten lease lengths: the clock jumps past the lease, then real time
    // passes for the heartbeat to renew. Meanwhile another worker tries to take the job.
    let intruder_got_it = Arc::new(Mutex::new(None::<bool>));
    let seen = intruder_got_it.clone();
    let journal = h.journal.clone();
    let clock = h.clock.clone();
    let once = Arc::new(AtomicBool::new(false));
    let slow = h.worker.clone().with_before_call(Arc::new(move |_| {
        let (seen, journal, clock, once) =
            (seen.clone(), journal.clone(), clock.clone(), once.clone());
        Box::pin(async move {
            if once.swap(true, Ordering::SeqCst) {
                return;
            }
            clock.advance(std::time::Duration::from_secs(10));
            tokio::time::sleep(std::time::Duration::from_millis(800)).await;
            use keycard::clock::Clock;
            let claim = async {
                journal
                    .conn()
                    .await?
                    .claim_job(clock.now(), "intruder", chrono::Duration::seconds(1))
                    .await
            }
            .await
            .unwrap_or_else(|e| panic!("{e}"));
            *seen.lock().unwrap_or_else(|e| e.into_inner()) = Some(claim.is_some());
        })
    }));
    slow.run_until_idle()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        *intruder_got_it.lock().unwrap_or_else(|e| e.into_inner()),
        Some(false),
        "the lease was renewed while the call ran"
    );
    assert_eq!(h.calls("invites.create"), 1);
}

async fn a_failed_action_is_rechecked_and_converges(db: TestDb) {
    let h = Harness::start(db).await;
    let user = joined(&h, "F1", "outage@acme.test", "Sales").await;
    // Every removal attempt fails until the outage ends.
    h.inject(Fault {
        route: "users.delete".into(),
        status: 500,
        count: 1000,
        apply: false,
        retry_after: None,
    });
    h.advance(10);
    h.deliver(
        "leave_F1",
        event("person.departed", "F1", h.clock_now(), json!({})),
    )
    .await;
    h.settle().await;
    // Retries back off from `retry_base_secs` (10 s here), doubling with each attempt.
    let removal = |actions: Vec<keycard::journal::ActionRow>| {
        actions
            .into_iter()
            .find(|a| a.kind.as_str() == "remove_user")
            .unwrap_or_else(|| panic!("no remove_user action"))
    };
    let first = removal(h.actions("F1").await);
    assert_eq!(
        (first.status.as_str(), first.attempts),
        ("retrying", 1),
        "{first:?}"
    );
    // (The journal keeps microseconds.)
    let micros = |t: Option<chrono::DateTime<chrono::Utc>>| t.map(|t| t.timestamp_micros());
    assert_eq!(
        micros(first.next_attempt_at),
        micros(Some(h.clock_now() + chrono::Duration::seconds(10)))
    );
    let key_reads = h.requests("api_keys.list");
    h.advance(10);
    h.settle().await;
    // The leaver's keys were read before the removal's first attempt; a retry of the same
    // removal does not read them again.
    assert_eq!(h.requests("api_keys.list"), key_reads);
    let second = removal(h.actions("F1").await);
    assert_eq!(second.attempts, 2, "{second:?}");
    assert_eq!(
        micros(second.next_attempt_at),
        micros(Some(h.clock_now() + chrono::Duration::seconds(20)))
    );
    for _ in 0..6 {
        h.advance(600);
        h.settle().await;
    }
    let actions = h.actions("F1").await;
    assert!(
        actions
            .iter()
            .any(|a| a.kind.as_str() == "remove_user" && a.status.as_str() == "failed"),
        "{actions:?}"
    );
    // The fourth attempt's own failure ends it (max_attempts = 4), with the API's answer on
    // the record: it is not left retrying for a fifth run to find it out of retries.
    let failed = removal(actions);
    assert_eq!(failed.attempts, 4, "{failed:?}");
    assert_eq!(failed.outcome, None, "{failed:?}");
    assert!(
        failed.error.as_deref().is_some_and(|e| e.contains("500")),
        "{failed:?}"
    );
    assert!(h.user("outage@acme.test").is_some());
    assert!(h.memberships(&user).is_empty(), "the steps before it ran");

    // The outage ends; without any new event the leaver is removed at the recheck.
    h.sim.sim.clear_faults();
    h.advance(3600);
    h.settle().await;
    assert!(h.user("outage@acme.test").is_none());
}

/// An action in flight is committed `running` under a lease of `lease_secs` from when it
/// started, in this worker's name: a worker that dies mid-call leaves it to another only
/// once that lease has run out.
async fn an_action_in_flight_is_leased_for_lease_secs(db: TestDb) {
    use std::sync::{Arc, Mutex};
    let h = Harness::start(db).await;
    h.deliver("l1", hire("L1", "lease@acme.test", "Sales", t0()))
        .await;
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (journal, record) = (h.journal.clone(), seen.clone());
    let worker = h.worker.clone().with_before_call(Arc::new(move |id| {
        let (journal, record) = (journal.clone(), record.clone());
        Box::pin(async move {
            let row = async { journal.conn().await?.action(id).await }
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            record.lock().unwrap_or_else(|e| e.into_inner()).push(row);
        })
    }));
    worker
        .run_until_idle()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let rows = seen.lock().unwrap_or_else(|e| e.into_inner()).clone();
    assert!(!rows.is_empty());
    for row in rows {
        assert_eq!(row.status.as_str(), "running", "{row:?}");
        assert_eq!(
            row.lease_owner.as_deref(),
            Some(h.worker.owner()),
            "{row:?}"
        );
        assert_eq!(
            row.lease_until.map(|t| t.timestamp()),
            Some((h.clock_now() + chrono::Duration::seconds(120)).timestamp()),
            "{row:?}"
        );
    }
}

/// Told to stop while reading an object again before a removal, the worker leaves the job
/// due at once for the next process (no backoff, nothing counted).
async fn a_stop_during_the_read_before_a_removal_leaves_the_job_due(db: TestDb) {
    let h = Harness::start(db).await;
    joined(&h, "Q1", "quit@acme.test", "Sales").await;
    // Past verify_after_secs: the membership is read again before its removal.
    h.advance(600);
    h.deliver(
        "leave_Q1",
        event("person.departed", "Q1", h.clock_now(), json!({})),
    )
    .await;
    h.worker
        .apply_events()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let job = h
        .claim_due()
        .await
        .unwrap_or_else(|| panic!("the departure queued no job"));
    h.worker.stopping().cancel();
    let before = h.requests("workspace_members.get");
    h.worker
        .run_job(&job)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(h.requests("workspace_members.get"), before, "nothing sent");
    let actions = h.actions("Q1").await;
    assert!(
        actions
            .iter()
            .all(|a| a.attempts == 0 || a.kind.as_str() != "remove_workspace_member"),
        "{actions:?}"
    );
    assert!(
        h.claim_due().await.is_some(),
        "due again at once, for the next process"
    );
}

async fn a_lasting_failure_is_rechecked_less_and_less_often(db: TestDb) {
    let h = Harness::start(db).await;
    joined(&h, "F2", "lasting@acme.test", "Sales").await;
    h.inject(Fault {
        route: "users.delete".into(),
        status: 500,
        count: 100_000,
        apply: false,
        retry_after: None,
    });
    h.advance(10);
    h.deliver(
        "leave_F2",
        event("person.departed", "F2", h.clock_now(), json!({})),
    )
    .await;
    // One failed action: four attempts, 10 s, 20 s and 40 s apart (retry_base_secs = 10).
    let fail_once = || async {
        h.settle().await;
        for wait in [10, 20, 40] {
            h.advance(wait);
            h.settle().await;
        }
    };
    // The removal actions: how many, and how many of them failed for good.
    let removals = || async {
        let all: Vec<_> = h
            .actions("F2")
            .await
            .into_iter()
            .filter(|a| a.kind.as_str() == "remove_user")
            .collect();
        let failed = all.iter().filter(|a| a.status.as_str() == "failed").count();
        (all.len(), failed)
    };
    fail_once().await;
    assert_eq!(removals().await, (1, 1));
    // The first failure is rechecked after failure_recheck_secs (3600, the default)...
    h.advance(3599);
    h.settle().await;
    assert_eq!(removals().await, (1, 1), "not before the hour");
    h.advance(1);
    fail_once().await;
    assert_eq!(
        removals().await,
        (2, 2),
        "a second action, failed the same way"
    );
    // ...the second one after twice that: a refusal that lasts costs fewer and fewer calls.
    h.advance(3600);
    h.settle().await;
    assert_eq!(
        removals().await,
        (2, 2),
        "the wait doubled after the second failure"
    );
    h.advance(3600);
    h.settle().await;
    assert_eq!(removals().await.0, 3, "rechecked after two hours");
}

async fn a_call_not_sent_because_the_process_stops_is_due_at_once_and_not_counted(db: TestDb) {
    let h = Harness::start(db).await;
    h.deliver("stop1", hire("S1", "stop@acme.test", "Sales", t0()))
        .await;
    // The process is told to stop just as its first call would go out.
    let stopping = h.worker.stopping();
    let stopper = h
        .worker
        .clone()
        .with_before_call(std::sync::Arc::new(move |_| {
            stopping.cancel();
            Box::pin(std::future::ready(()))
        }));
    stopper.sweep().await.unwrap_or_else(|e| panic!("{e}"));
    stopper
        .apply_events()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let job = stopper
        .claim()
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .unwrap_or_else(|| panic!("the hire queued no job"));
    let before = h.sim.sim.calls().len();
    stopper
        .run_job(&job)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(h.sim.sim.calls().len(), before, "nothing was sent");
    assert_eq!(h.requests("invites.create"), 0);
    // The action is left for the next process: due at once, the attempt it did not make not
    // counted against its max_attempts, and no backoff.
    let left: Vec<_> = h
        .actions("S1")
        .await
        .into_iter()
        .filter(|a| a.status.as_str() == "retrying")
        .collect();
    assert_eq!(left.len(), 1, "{left:?}");
    let micros = |t: Option<chrono::DateTime<chrono::Utc>>| t.map(|t| t.timestamp_micros());
    assert_eq!(left[0].attempts, 0, "{left:?}");
    assert_eq!(
        micros(left[0].next_attempt_at),
        micros(Some(h.clock_now())),
        "{left:?}"
    );
    // So is the person's job.
    assert!(h.claim_due().await.is_some(), "the job is due at once");
}

async fn a_failing_resend_of_an_expired_invite_waits_its_retry(db: TestDb) {
    // Without the daily sweep, so the mirror still holds the expired invite as pending.
    let toml = RULES.replace("lease_secs = 120", "lease_secs = 120\ndrift_check_secs = 0");
    let h = Harness::start_with(db, &toml, seed()).await;
    h.deliver("m1", hire("X2", "resend@acme.test", "Facilities", t0()))
        .await;
    h.settle().await;
    assert_eq!(h.calls("invites.create"), 1);
    // The invite expires unanswered and its re-send fails: the retry is 10 s away, and the
    // expired invite's time (past) must not replace it.
    h.inject(Fault {
        route: "invites.create".into(),
        status: 500,
        count: 100_000,
        apply: false,
        retry_after: None,
    });
    h.advance(22 * 86_400);
    h.settle().await;
    let resends = || async {
        h.actions("X2")
            .await
            .into_iter()
            .filter(|a| a.kind.as_str() == "create_invite")
            .skip(1) // the first invite, sent and expired
            .map(|a| (a.status.as_str().to_owned(), a.attempts))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        resends().await,
        [("retrying".to_owned(), 1)],
        "one attempt, then the retry's wait"
    );
    h.advance(10);
    h.settle().await;
    assert_eq!(resends().await, [("retrying".to_owned(), 2)]);
}

async fn a_withdrawn_invite_leaves_nothing_to_follow(db: TestDb) {
    let toml = RULES.replace("lease_secs = 120", "lease_secs = 120\ndrift_check_secs = 0");
    let h = Harness::start_with(db, &toml, seed()).await;
    h.deliver("m1", hire("X3", "gone@acme.test", "Facilities", t0()))
        .await;
    h.settle().await;
    // The first invite expires and is sent again; the mirror still lists the first as
    // pending (no full read since).
    h.advance(22 * 86_400);
    h.settle().await;
    assert_eq!(h.requests("invites.create"), 2);
    // The person leaves before accepting: the second invite is withdrawn.
    h.advance(10);
    h.deliver(
        "m2",
        event("person.departed", "X3", h.clock_now(), json!({})),
    )
    .await;
    h.settle().await;
    assert_eq!(h.requests("invites.delete"), 1);
    // Nothing is left to follow: the first invite's past expiry does not bring the job back
    // (the harness fails a job that keeps coming due without the clock moving).
    h.advance(30 * 86_400);
    h.settle().await;
    assert_eq!(h.requests("invites.create"), 2);
    assert_eq!(h.requests("invites.delete"), 1);
}

async fn an_account_is_never_acted_on_for_a_person_it_is_not_linked_to(db: TestDb) {
    let h = Harness::start(db).await;
    // R1 joins, departs and is removed; the address is rehired as R2, who joins.
    let first = joined(&h, "R1", "re@acme.test", "Sales").await;
    h.advance(10);
    h.deliver(
        "leave_R1",
        event("person.departed", "R1", h.clock_now(), json!({})),
    )
    .await;
    h.settle().await;
    assert!(h.user("re@acme.test").is_none());
    let second = joined(&h, "R2", "re@acme.test", "Engineering").await;
    assert_ne!(first, second);

    // A late event for R1 (or a drift check) must not offboard R2's account.
    h.advance(10);
    h.deliver(
        "late_R1",
        event("person.departed", "R1", h.clock_now(), json!({})),
    )
    .await;
    h.advance(90_000); // past the daily drift sweep too
    h.settle().await;
    assert!(h.user("re@acme.test").is_some(), "R2 keeps the account");
    assert_eq!(h.memberships(&second).len(), 2);

    // A second active record with the same address (the same human in two feeds) does not
    // take over the account either: it is a note for a person.
    h.deliver("twin", hire("R3", "re@acme.test", "Sales", h.clock_now()))
        .await;
    h.settle().await;
    let notes = h.actions("R3").await;
    assert!(
        notes
            .iter()
            .all(|a| a.kind.as_str() == "needs_manual_action"),
        "{notes:?}"
    );
    assert!(
        notes.iter().any(|a| a.params["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("belongs to person")),
        "{notes:?}"
    );
    let user = h.user("re@acme.test").unwrap_or_default();
    assert_eq!(user["role"], "developer", "R3's rules did not re-role R2");

    // An operator settles it: the account is R3's. R2 lets go of it, R3 converges on it.
    let resp = h
        .http
        .post(format!("{}/api/v1/people/R3/link", h.base))
        .bearer_auth(OPS_TOKEN)
        .json(&json!({ "user_id": second, "reason": "one human in two feeds: R3 is current" }))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(resp.status().as_u16(), 200);
    let answer: serde_json::Value = resp.json().await.unwrap_or_default();
    assert_eq!(
        answer["person"]["anthropic_user_id"],
        json!(second),
        "{answer}"
    );
    assert!(answer["moved_from"].is_string(), "{answer}");
    h.settle().await;
    let user = h.user("re@acme.test").unwrap_or_default();
    assert_eq!(user["role"], "user", "R3's rules (Sales) now apply: {user}");
    let bad = h
        .http
        .post(format!("{}/api/v1/people/R3/link", h.base))
        .bearer_auth(OPS_TOKEN)
        .body("{\"user\": 1}")
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(bad.status().as_u16(), 400);
}

async fn an_expired_invite_is_sent_again_even_without_workspaces(db: TestDb) {
    // Without the daily sweep: the invite follow-up alone must notice the expiry.
    let toml = RULES.replace("lease_secs = 120", "lease_secs = 120\ndrift_check_secs = 0");
    let h = Harness::start_with(db, &toml, seed()).await;
    // The default rule: an org role and no workspaces, so nothing waits on acceptance.
    h.deliver("m1", hire("X1", "late@acme.test", "Facilities", t0()))
        .await;
    h.settle().await;
    assert_eq!(h.invites("late@acme.test").len(), 1);
    // A follow-up finds the invite still pending and nothing else to do...
    h.advance(61);
    h.settle().await;
    assert_eq!(h.invites("late@acme.test").len(), 1);
    // ...and keeps following it until it is accepted or expires.
    h.advance(22 * 86_400);
    h.settle().await;
    let invites = h.invites("late@acme.test");
    let statuses: Vec<_> = invites.iter().map(|i| i["status"].clone()).collect();
    assert_eq!(
        statuses,
        vec![json!("expired"), json!("pending")],
        "{invites:?}"
    );
}

async fn drift_made_by_hand_is_undone_by_the_daily_check(db: TestDb) {
    let h = Harness::start(db).await;
    let user = joined(&h, "D1", "drift@acme.test", "Engineering").await;
    assert_eq!(h.memberships(&user).len(), 2);
    // Someone removes the membership in the Console.
    h.remove_member_by_hand("Sandbox", &user).await;
    assert_eq!(h.memberships(&user).len(), 1);
    h.advance(3600);
    h.settle().await;
    assert_eq!(h.memberships(&user).len(), 1, "no event, no sweep yet");
    // The sweep queues everyone across the next day, so it paces itself.
    h.advance(86_400);
    h.settle().await;
    h.advance(86_400);
    h.settle().await;
    assert_eq!(h.memberships(&user).len(), 2, "the drift check restored it");
}

async fn plan_uses_what_the_journal_knows_and_changes_nothing(db: TestDb) {
    use keycard::ingest::{DedupeKey, NativeEvent};
    let h = Harness::start(db).await;
    let user = joined(&h, "P1", "plan@acme.test", "Engineering").await;
    let cfg = config(RULES, &h.sim.base_url());
    let lifecycle = |body: serde_json::Value| {
        let bytes = body.to_string().into_bytes();
        NativeEvent::parse(&bytes)
            .map(|e| {
                e.into_lifecycle(
                    DedupeKey {
                        source: "hr".into(),
                        delivery_id: "plan".into(),
                    },
                    h.clock_now(),
                    &bytes,
                )
            })
            .unwrap_or_else(|e| panic!("{e}"))
    };
    let known = h
        .db()
        .await
        .person_by_source("hr", "P1")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(known.is_some());
    let before = h.sim.sim.calls().len();
    // `keycard plan` for one event under a configuration.
    let preview = async |cfg: &keycard::config::Config, ev: &keycard::ingest::LifecycleEvent| {
        keycard::app::preview(cfg, &h.journal, ev, known.as_ref(), h.clock.clone())
            .await
            .unwrap_or_else(|e| panic!("{e}"))
    };

    // A departure names only the id: the journal supplies the email and the linked account.
    let departure = lifecycle(json!({ "type": "person.departed", "person": { "id": "P1" } }));
    let out = preview(&cfg, &departure).await;
    assert!(out.contains("remove_user"), "{out}");
    assert!(out.contains("remove_workspace_member"), "{out}");
    assert!(out.contains(&format!("linked to {user}")), "{out}");
    assert!(
        out.contains("observed: {") && !out.contains("no Admin API credential"),
        "with a credential the plan shows what the mirror holds: {out}"
    );

    // Without a credential the organization is unknown, even to a journal whose mirror was
    // read: nothing to take away is assumed, and the preview says why.
    let without = RULES.replace("[admin_api]\nadmin_key_env = \"ADMIN_KEY\"\n", "");
    assert_ne!(without, RULES);
    let blind = config(&without, &h.sim.base_url());
    let out = preview(&blind, &departure).await;
    assert!(out.contains("no Admin API credential configured"), "{out}");
    assert!(!out.contains("remove_user"), "{out}");
    // `keycard plan --all` (everyone at once) too.
    for (cfg, organization_known) in [(&cfg, true), (&blind, false)] {
        let everyone = keycard::app::planning_worker(cfg, &h.journal, h.clock.clone())
            .unwrap_or_else(|e| panic!("{e}"))
            .plan_everyone()
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(everyone.organization_known, organization_known);
    }

    // A move reports only what changed; the rest comes from the journal.
    let mover = lifecycle(
        json!({ "type": "person.updated", "person": { "id": "P1", "department": "Sales" } }),
    );
    let out = preview(&cfg, &mover).await;
    assert!(out.contains("update_user_role"), "{out}");
    assert!(!out.contains("no email"), "{out}");

    // An event older than the last applied one would change nothing, and says so.
    let stale = lifecycle(
        json!({ "type": "person.departed", "occurred_at": "2020-01-01T00:00:00Z",
                                  "person": { "id": "P1" } }),
    );
    let out = preview(&cfg, &stale).await;
    assert!(out.contains("stale"), "{out}");
    assert!(!out.contains("remove_user"), "{out}");

    // Only reads: the organization is as it was.
    let writes: Vec<_> = h.sim.sim.calls()[before..]
        .iter()
        .filter(|c| c.method != "GET")
        .cloned()
        .collect();
    assert!(writes.is_empty(), "{writes:?}");
    assert!(h.user("plan@acme.test").is_some());
}

async fn an_email_change_before_acceptance_moves_the_invite(db: TestDb) {
    let h = Harness::start(db).await;
    h.deliver("m1", hire("M1", "old@acme.test", "Sales", t0()))
        .await;
    h.settle().await;
    assert_eq!(h.invites("old@acme.test").len(), 1);

    // HR corrects the address before the invite is accepted.
    h.advance(10);
    h.deliver(
        "m2",
        event(
            "person.updated",
            "M1",
            h.clock_now(),
            json!({ "email": "new@acme.test" }),
        ),
    )
    .await;
    h.settle().await;
    assert!(
        h.invites("old@acme.test")
            .iter()
            .all(|i| i["status"] != "pending"),
        "the invite to the old address is withdrawn: {:?}",
        h.invites("old@acme.test")
    );
    assert_eq!(h.invites("new@acme.test").len(), 1);

    // The address someone left can go to a new hire: that invite is theirs, not M1's.
    h.deliver("m3", hire("M2", "old@acme.test", "Sales", h.clock_now()))
        .await;
    h.settle().await;
    h.advance(10);
    h.deliver(
        "m4",
        event(
            "person.updated",
            "M1",
            h.clock_now(),
            json!({ "title": "AE" }),
        ),
    )
    .await;
    h.settle().await;
    let pending: Vec<_> = h
        .invites("old@acme.test")
        .into_iter()
        .filter(|i| i["status"] == "pending")
        .collect();
    assert_eq!(pending.len(), 1, "M2's invite stands");
}

async fn an_invite_accepted_under_the_old_address_is_still_found(db: TestDb) {
    let h = Harness::start(db).await;
    h.deliver("m1", hire("A1", "first@acme.test", "Sales", t0()))
        .await;
    h.settle().await;
    // Accepted, and the address changed at HR, before Keycard looked again.
    h.sim
        .sim
        .accept_invite_for("first@acme.test")
        .unwrap_or_else(|e| panic!("{e}"));
    h.advance(10);
    h.deliver(
        "m2",
        event(
            "person.updated",
            "A1",
            h.clock_now(),
            json!({ "email": "second@acme.test" }),
        ),
    )
    .await;
    h.settle().await;
    let user = h
        .user("first@acme.test")
        .and_then(|u| u["id"].as_str().map(str::to_owned))
        .unwrap_or_else(|| panic!("member"));
    assert!(
        h.invites("second@acme.test").is_empty(),
        "no second account"
    );
    assert_eq!(
        h.memberships(&user).len(),
        1,
        "memberships on the found account"
    );
    let person = h
        .db()
        .await
        .person_by_source("hr", "A1")
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .unwrap_or_else(|| panic!("person"));
    assert_eq!(person.anthropic_user_id.as_deref(), Some(user.as_str()));
}

async fn check_config_names_a_workspace_the_organization_lacks(db: TestDb) {
    let h = Harness::start(db).await;
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    // Async: the simulator answers on this test's own runtime.
    let run_with_key = |toml: String, admin_key: &'static str| {
        let path = dir.path().join("keycard.toml");
        std::fs::write(&path, toml).unwrap_or_else(|e| panic!("{e}"));
        tokio::process::Command::new(env!("CARGO_BIN_EXE_keycard"))
            .args(["check-config", "--config"])
            .arg(&path)
            .env("HR_SECRET", SECRET)
            .env("HR_OLD_SECRET", OLD_SECRET)
            .env("ADMIN_KEY", admin_key)
            .env("OPS_TOKEN", OPS_TOKEN)
            .env("KEYCARD_ADMIN_API_BASE_URL", h.sim.base_url())
            .env("KEYCARD_DATA_DIR", dir.path())
            .output()
    };
    let run = |toml: String| run_with_key(toml, ADMIN_KEY);
    let ok = run(RULES.to_owned())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let typo = run(RULES.replace(
        r#""Sales" = "workspace_user""#,
        r#""Salez" = "workspace_user""#,
    ))
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    let err = String::from_utf8_lossy(&typo.stderr);
    assert_eq!(typo.status.code(), Some(1), "{err}");
    assert!(
        err.contains("rule 'sales' names workspace 'Salez'") && err.contains("Sales"),
        "{err}"
    );
    // A refused credential is a config error, not "the API did not answer".
    let refused = run_with_key(RULES.to_owned(), "sk-ant-admin01-not-the-key")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let err = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(1), "{err}");
    assert!(err.contains("refused the configured credential"), "{err}");
    assert!(
        !err.contains("not-the-key"),
        "no secret in the message: {err}"
    );
}

async fn a_leavers_address_given_to_a_new_hire_is_the_new_hires(db: TestDb) {
    let h = Harness::start(db).await;
    // L1 leaves before accepting: the invite is withdrawn and nothing was ever linked.
    h.deliver("m1", hire("L1", "desk@acme.test", "Sales", t0()))
        .await;
    h.settle().await;
    h.advance(10);
    h.deliver(
        "m2",
        event("person.departed", "L1", h.clock_now(), json!({})),
    )
    .await;
    h.settle().await;
    // The address goes to L2.
    h.deliver("m3", hire("L2", "desk@acme.test", "Sales", h.clock_now()))
        .await;
    h.settle().await;
    let pending = |h: &Harness| {
        h.invites("desk@acme.test")
            .into_iter()
            .filter(|i| i["status"] == "pending")
            .count()
    };
    assert_eq!(pending(&h), 1);

    // Anything that reconciles L1 again (a late event, the daily sweep) leaves L2 alone,
    // before and after L2 accepts.
    h.advance(10);
    h.deliver(
        "m4",
        event(
            "person.departed",
            "L1",
            h.clock_now(),
            json!({ "title": "x" }),
        ),
    )
    .await;
    h.settle().await;
    assert_eq!(pending(&h), 1, "L2's invite stands");
    h.sim
        .sim
        .accept_invite_for("desk@acme.test")
        .unwrap_or_else(|e| panic!("{e}"));
    h.advance(3 * 86_400);
    h.settle().await;
    h.advance(86_400);
    h.settle().await;
    assert!(h.user("desk@acme.test").is_some(), "L2 keeps the account");
    let l1 = h.actions("L1").await;
    assert!(
        l1.iter()
            .filter(|a| a.status.as_str() == "succeeded")
            .all(
                |a| ["create_invite", "wait_for_acceptance", "withdraw_invite"]
                    .contains(&a.kind.as_str())
            ),
        "{l1:?}"
    );
    assert_eq!(
        l1.iter()
            .filter(|a| a.kind.as_str() == "withdraw_invite")
            .count(),
        1,
        "L1 withdrew only its own invite: {l1:?}"
    );
}

async fn two_active_records_with_one_address_do_not_fight_over_it(db: TestDb) {
    let h = Harness::start(db).await;
    h.deliver("m1", hire("T1", "same@acme.test", "Sales", t0()))
        .await;
    h.settle().await;
    h.deliver("m2", hire("T2", "same@acme.test", "Engineering", t0()))
        .await;
    h.settle().await;
    for _ in 0..5 {
        h.advance(61);
        h.settle().await;
    }
    let invites = h.invites("same@acme.test");
    assert_eq!(invites.len(), 1, "one invite, never withdrawn: {invites:?}");
    assert_eq!(invites[0]["role"], "user", "the first record's role");
    let t2 = h.actions("T2").await;
    assert!(
        t2.iter().all(|a| a.kind.as_str() == "needs_manual_action"),
        "{t2:?}"
    );

    // Events are found by the address too, scheduled ones included (not applied yet).
    let later = h.clock_now() + chrono::Duration::days(30);
    h.deliver(
        "m3",
        json!({ "type": "person.departed", "occurred_at": h.clock_now().to_rfc3339(),
                "effective_at": later.to_rfc3339(), "person": { "id": "T1" } }),
    )
    .await;
    h.settle().await;
    let events = h
        .db()
        .await
        .list_events(&keycard::journal::JournalFilter {
            person: Some("same@acme.test".into()),
            status: Some("scheduled".into()),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(events.data.len(), 1, "{:?}", events.data);
}

async fn a_release_holds_even_when_the_released_step_was_done_by_hand(db: TestDb) {
    let toml = format!("{RULES}\n[safety]\nmax_removals_per_hour = 1\n");
    let h = Harness::start_with(db, &toml, seed()).await;
    joined(&h, "C1", "c1@acme.test", "Sales").await;
    let c2 = joined(&h, "C2", "c2@acme.test", "Sales").await;
    h.advance(10);
    for id in ["C1", "C2"] {
        h.deliver(
            &format!("leave_{id}"),
            event("person.departed", id, h.clock_now(), json!({})),
        )
        .await;
    }
    h.settle().await;
    let held: Vec<_> = h
        .actions("C2")
        .await
        .into_iter()
        .filter(|a| a.status.as_str() == "held")
        .collect();
    assert_eq!(held.len(), 1, "{held:?}");

    // Someone removes the membership by hand, then releases the held step.
    h.remove_member_by_hand("Sales", &c2).await;
    let resp = h
        .http
        .post(format!("{}/api/v1/actions/{}/release", h.base, held[0].id))
        .bearer_auth(OPS_TOKEN)
        .json(&json!({ "reason": "the leaver list was checked with HR" }))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(resp.status().as_u16(), 200);
    h.settle().await;
    // The release admitted C2: the rest of the offboarding runs without a second release.
    assert!(
        h.user("c2@acme.test").is_none(),
        "{:?}",
        h.actions("C2").await
    );
    assert!(
        h.actions("C2")
            .await
            .iter()
            .all(|a| a.status.as_str() != "held"),
        "no second hold"
    );
}

on_both_backends!(
    a_lost_termination_and_a_silent_hire_are_repaired_by_the_next_pull,
    a_pull_during_a_429_storm_completes,
    an_empty_directory_departs_nobody_until_an_operator_releases_it,
    an_operator_merges_two_people_and_it_is_journaled,
    correlation_by_email_makes_hr_and_okta_one_person,
    departures_beyond_the_cap_are_held,
    two_replicas_pull_once_and_a_request_pulls_now,
    protected_people_are_never_offboarded_by_automation,
    a_worker_that_lost_its_lease_mid_plan_makes_no_further_call,
    import_a_thousand_rows_with_bad_ones,
    observe_mode_writes_nothing,
    people_are_listed_with_filters_and_cursors,
    plan_all_matches_what_serve_then_does,
    unmanaged_members_are_reported_and_removed_within_the_cap,
    reports_read_a_seeded_organization,
    an_organization_without_workspaces_is_read_and_reported,
    an_organization_on_aws_degrades_to_manual_notes_and_retries_nothing,
    unused_workspaces_are_archived_through_the_cap_when_the_config_says_so,
    a_workspace_archived_by_hand_before_a_retry_is_not_archived_again,
    hire_invite_acceptance_then_memberships,
    an_operator_asks_for_a_full_read_now,
    mover_changes_role_and_managed_memberships_only,
    a_mover_already_in_a_workspace_is_read_back_not_failed,
    an_invite_sent_by_hand_is_read_and_followed,
    a_membership_changed_by_hand_is_read_again_before_its_removal,
    already_exists_again_without_a_trace_becomes_a_note_not_a_loop,
    an_invite_is_sent_again_just_after_it_expires,
    leaver_keys_deactivated_memberships_and_member_removed,
    every_journaled_request_is_what_the_organization_received,
    keys_and_accounts_changed_by_hand_are_read_before_a_removal,
    departure_before_acceptance_withdraws_the_invite,
    redelivery_causes_nothing_new,
    out_of_order_update_after_departure_stays_departed,
    an_admin_departing_needs_manual_action_and_nothing_is_removed,
    a_role_update_for_an_account_removed_by_hand_fails_with_the_404,
    injected_faults_converge_without_duplicate_invites,
    crash_between_commit_and_call_completes_once,
    two_workers_never_run_an_action_twice,
    removals_beyond_the_cap_wait_for_an_operator,
    a_slow_call_keeps_its_lease,
    a_failed_action_is_rechecked_and_converges,
    a_lasting_failure_is_rechecked_less_and_less_often,
    an_action_in_flight_is_leased_for_lease_secs,
    a_stop_during_the_read_before_a_removal_leaves_the_job_due,
    a_call_not_sent_because_the_process_stops_is_due_at_once_and_not_counted,
    a_failing_resend_of_an_expired_invite_waits_its_retry,
    a_withdrawn_invite_leaves_nothing_to_follow,
    an_account_is_never_acted_on_for_a_person_it_is_not_linked_to,
    an_expired_invite_is_sent_again_even_without_workspaces,
    drift_made_by_hand_is_undone_by_the_daily_check,
    plan_uses_what_the_journal_knows_and_changes_nothing,
    an_email_change_before_acceptance_moves_the_invite,
    an_invite_accepted_under_the_old_address_is_still_found,
    check_config_names_a_workspace_the_organization_lacks,
    a_leavers_address_given_to_a_new_hire_is_the_new_hires,
    two_active_records_with_one_address_do_not_fight_over_it,
    a_release_holds_even_when_the_released_step_was_done_by_hand,
    the_mirror_reads_members_across_page_boundaries,
    an_acceptance_between_full_reads_costs_one_read,
    a_member_made_admin_by_hand_is_seen_before_a_removal,
    a_failed_read_before_a_removal_waits_the_retry_base,
    a_held_removal_alerts_every_target_once,
    alerts_give_up_after_max_attempts_and_respect_the_rate_limit,
    named_operators_release_with_a_reason_on_the_record,
    manual_actions_are_resolved_with_a_note,
    link_and_sync_are_journaled_and_sync_reads_the_organization,
    a_sign_in_proxy_names_the_operator,
    the_cli_releases_several_actions_with_a_reason,
    a_rejected_credential_stops_writes_until_a_probe_succeeds,
    metrics_pass_promtool_and_say_what_waits_now,
    journal_exports_are_fit_for_audit,
    the_openapi_document_describes_every_route,
    retention_removes_old_bodies_and_redacts_long_departed_people,
    retention_with_redaction_off_still_removes_bodies,
    retention_with_body_removal_off_still_redacts,
    retention_off_never_runs,
    a_gusto_hire_without_email_is_invited_after_enrichment,
    a_hibob_v2_termination_removes_the_member,
    an_okta_profile_update_changes_the_workspace,
    enrichment_waits_out_a_429_storm_and_completes,
    a_record_changed_twice_more_before_the_read_applies_once,
    a_failed_read_is_visible_and_retried_until_it_completes,
    a_departure_with_no_account_is_journaled_as_no_change,
    a_departure_does_not_wait_for_a_sender_outage,
    a_parked_notice_wakes_the_enrichment_loop,
);
