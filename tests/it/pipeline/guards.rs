//! Issue 15, "tests that guard the promises": deliberate one-line breakages that used to
//! survive the whole suite.

use serde_json::json;

use super::harness::*;

fn manual_with(actions: &[keycard::journal::ActionRow], needle: &str) -> usize {
    actions
        .iter()
        .filter(|a| a.status.as_str() == "needs_manual_action" && a.reason.contains(needle))
        .count()
}

/// `safety.protected_emails` end to end: listed, non-admin people depart and nothing
/// destructive reaches the organization; each departure is one note for a human. Also when
/// HR has changed the address while the account keeps the protected one, and with the list
/// entry in another case.
pub async fn protected_people_are_never_offboarded_by_automation(db: TestDb) {
    let toml = format!(
        "{RULES}\n[safety]\nprotected_emails = [\"VIP@Acme.TEST\", \"Keeper@ACME.test\"]\n"
    );
    let h = Harness::start_with(db, &toml, seed()).await;
    for (email, name) in [("vip@acme.test", "Vip"), ("keeper@acme.test", "Keeper")] {
        let user = h.sim.sim.add_user(email, name, "user");
        let uid = user["id"].as_str().unwrap_or_default().to_owned();
        h.sim
            .sim
            .add_api_key(&format!("{name}-ci"), None, Some(&uid));
    }
    for (id, email) in [("P1", "vip@acme.test"), ("P2", "keeper@acme.test")] {
        let (status, body) = h
            .deliver(&format!("hire_{id}"), hire(id, email, "Engineering", t0()))
            .await;
        assert_eq!(status, 202, "{body}");
    }
    h.settle().await;

    // HR changes the keeper's address; the account keeps the protected one.
    h.advance(10);
    let (status, _) = h
        .deliver(
            "move_P2",
            event(
                "person.updated",
                "P2",
                h.clock_now(),
                json!({ "email": "keeper.renamed@acme.test" }),
            ),
        )
        .await;
    assert_eq!(status, 202);
    h.settle().await;

    let before: Vec<usize> = [
        manual_with(&h.actions("P1").await, "protected_emails"),
        manual_with(&h.actions("P2").await, "protected_emails"),
    ]
    .to_vec();
    h.advance(10);
    for id in ["P1", "P2"] {
        let (status, _) = h
            .deliver(
                &format!("leave_{id}"),
                event("person.departed", id, h.clock_now(), json!({})),
            )
            .await;
        assert_eq!(status, 202);
    }
    h.settle().await;
    h.advance(3600);
    h.settle().await;

    for route in [
        "users.delete",
        "api_keys.update",
        "workspace_members.delete",
        "users.update",
        "invites.create",
    ] {
        assert_eq!(h.calls(route), 0, "{route} reached the organization");
    }
    assert!(h.user("vip@acme.test").is_some());
    assert!(h.user("keeper@acme.test").is_some());
    let keys = h.state()["api_keys"].clone();
    assert!(
        keys.as_array()
            .is_some_and(|k| k.iter().all(|k| k["status"] == "active")),
        "{keys}"
    );
    for (i, id) in ["P1", "P2"].into_iter().enumerate() {
        let actions = h.actions(id).await;
        assert_eq!(
            manual_with(&actions, "protected_emails"),
            before[i] + 1,
            "{id}: one note for the departure: {actions:#?}"
        );
    }
}

/// A worker loses its job lease in the middle of a plan: while its first call is under way
/// the clock passes the lease and a second worker claims the person. The first finishes that
/// call, sees the lease is gone and makes no further call; the second carries on from the
/// next step. Every step reaches the organization exactly once.
pub async fn a_worker_that_lost_its_lease_mid_plan_makes_no_further_call(db: TestDb) {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};

    let h = Harness::start(db).await;
    let (status, _) = h
        .deliver(
            "hire_L1",
            hire("L1", "lease@acme.test", "Engineering", t0()),
        )
        .await;
    assert_eq!(status, 202);
    h.settle().await;
    h.sim
        .sim
        .accept_invite_for("lease@acme.test")
        .unwrap_or_else(|e| panic!("accept: {e}"));
    h.advance(61);
    h.settle().await;
    let uid = h
        .user("lease@acme.test")
        .and_then(|u| u["id"].as_str().map(str::to_owned))
        .unwrap_or_else(|| panic!("joined"));
    h.sim.sim.add_api_key("lease-ci", None, Some(&uid));

    h.advance(10);
    let (status, _) = h
        .deliver(
            "leave_L1",
            event("person.departed", "L1", h.clock_now(), json!({})),
        )
        .await;
    assert_eq!(status, 202);
    let destructive = |h: &Harness| {
        [
            h.calls("api_keys.update"),
            h.calls("workspace_members.delete"),
            h.calls("users.delete"),
        ]
    };
    assert_eq!(destructive(&h), [0, 0, 0]);

    // Worker A: inside its first call, the lease lapses and worker B claims the person.
    let b = h.worker.clone().with_owner_suffix(2);
    let claimed = Arc::new(Mutex::new(None));
    let first = Arc::new(AtomicBool::new(true));
    let (clock, b_claims, slot, once) =
        (h.clock.clone(), b.clone(), claimed.clone(), first.clone());
    let a = h
        .worker
        .clone()
        .with_owner_suffix(1)
        .with_before_call(Arc::new(move |_| {
            let (clock, b, slot, once) =
                (clock.clone(), b_claims.clone(), slot.clone(), once.clone());
            Box::pin(async move {
                if once.swap(false, Ordering::SeqCst) {
                    clock.advance(std::time::Duration::from_secs(121));
                    let job = b.claim().await.unwrap_or_else(|e| panic!("claim: {e}"));
                    *slot.lock().unwrap_or_else(|e| e.into_inner()) = job;
                }
            })
        }));
    a.run_until_idle()
        .await
        .unwrap_or_else(|e| panic!("A: {e}"));
    let job = claimed
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .take()
        .unwrap_or_else(|| panic!("B could not claim the person once A's lease lapsed"));
    let after_a: usize = destructive(&h).iter().sum();
    assert_eq!(
        after_a, 1,
        "A made exactly its one call in flight, then stopped"
    );

    // B carries on from the next step.
    b.run_job(&job).await.unwrap_or_else(|e| panic!("B: {e}"));
    h.settle().await;
    assert_eq!(
        destructive(&h),
        [1, 2, 1],
        "each step of the offboarding exactly once (key, two memberships, member)"
    );
    assert!(h.user("lease@acme.test").is_none());
}
