//! Keeping a whole organization correct within its Admin API budget: the organization
//! mirror (read in pages, kept by Keycard's own writes, checked before a destructive write),
//! one budget shared by several processes, and events applied whatever the job backlog.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use keycard::admin_api::{
    AdminClient, AdminClientConfig, Credential, PacingConfig, RateLimit, RetryPolicy,
};
use keycard::admin_sim::{Seed, Simulator};
use keycard::app::Application;
use keycard::budget::SharedBudget;
use keycard::clock::{Clock, OffsetClock, SystemClock};
use keycard::journal::{EventStatus, Journal, ObjectKind, Priority};
use serde_json::json;
use tokio::sync::Notify;

use super::harness::*;

fn users(n: usize) -> Vec<serde_json::Value> {
    (0..n)
        .map(|i| json!({ "email": format!("member{i:05}@acme.test"), "name": "Member", "role": "user" }))
        .collect()
}

/// Hires one person, lets them accept their invite, and has Keycard notice it (one poll of
/// the newest members later); their user id.
async fn hired_and_accepted(h: &Harness, id: &str, email: &str, dept: &str) -> String {
    h.deliver("h1", hire(id, email, dept, t0())).await;
    h.settle().await;
    h.sim
        .sim
        .accept_invite_for(email)
        .unwrap_or_else(|e| panic!("{e}"));
    h.advance(61);
    h.settle().await;
    h.user(email)
        .and_then(|u| u["id"].as_str().map(str::to_owned))
        .unwrap_or_default()
}

fn seed_with(extra_users: Vec<serde_json::Value>) -> Seed {
    let mut all = vec![
        json!({ "email": "root@acme.test", "name": "Root", "role": "admin" }),
        json!({ "email": "boss@acme.test", "name": "Boss", "role": "admin" }),
    ];
    all.extend(extra_users);
    serde_json::from_value(json!({
        "admin_keys": [ADMIN_KEY],
        "users": all,
        "workspaces": [
            { "name": "Engineering" }, { "name": "Sandbox" }, { "name": "Sales" }, { "name": "Research" }
        ]
    }))
    .unwrap_or_else(|e| panic!("seed: {e}"))
}

/// 2,500 members are read in three pages of at most 1,000; a member removed by hand is gone
/// from the mirror after the next full read.
pub async fn the_mirror_reads_members_across_page_boundaries(db: TestDb) {
    let h = Harness::start_with(db, RULES, seed_with(users(2_498))).await;
    h.settle().await;
    let mut conn = h.db().await;
    let mut all = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = conn
            .mirror_all(ObjectKind::User, after.as_deref(), 1000)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let Some(last) = page.last().map(|r| r.id.clone()) else {
            break;
        };
        all.extend(page);
        after = Some(last);
    }
    assert_eq!(all.len(), 2_500);
    assert_eq!(h.calls("users.list"), 3, "2,500 members in pages of 1,000");
    let reads = conn.mirror_reads().await.unwrap_or_else(|e| panic!("{e}"));
    let full = reads.iter().find(|r| r.part == "full");
    assert!(full.is_some_and(|r| r.refreshed_at.is_some() && r.objects >= 2_500));
    // The embedded journal has one connection: give it back before the worker runs.
    drop(conn);

    // A member removed in the Console: the next full read leaves them out.
    let gone = all[7].id.clone();
    let resp = h
        .http
        .delete(format!(
            "{}/v1/organizations/users/{gone}",
            h.sim.base_url()
        ))
        .header("x-api-key", ADMIN_KEY)
        .header("anthropic-version", "2023-06-01")
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(resp.status().is_success());
    h.advance(86_401);
    h.settle().await;
    let mut conn = h.db().await;
    assert!(
        conn.mirror_get(ObjectKind::User, &gone)
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .is_none()
    );
    assert_eq!(h.calls("users.list"), 6);
}

/// Between full reads, an acceptance is noticed by one read of the newest members, however
/// many invites are pending, and the person gets their memberships.
pub async fn an_acceptance_between_full_reads_costs_one_read(db: TestDb) {
    let h = Harness::start(db).await;
    for i in 0..30 {
        h.deliver(
            &format!("h{i}"),
            hire(
                &format!("P{i}"),
                &format!("p{i}@acme.test"),
                "Engineering",
                t0(),
            ),
        )
        .await;
    }
    h.settle().await;
    assert_eq!(h.calls("invites.create"), 30);
    let lists_before = h.calls("users.list");
    h.sim
        .sim
        .accept_invite_for("p7@acme.test")
        .unwrap_or_else(|e| panic!("{e}"));
    h.advance(61);
    h.settle().await;
    assert_eq!(
        h.calls("users.list") - lists_before,
        1,
        "one read of the newest members noticed the acceptance"
    );
    let uid = h
        .user("p7@acme.test")
        .and_then(|u| u["id"].as_str().map(str::to_owned))
        .unwrap_or_default();
    assert_eq!(
        h.memberships(&uid),
        vec![
            ("Engineering".to_owned(), "workspace_developer".to_owned()),
            ("Sandbox".to_owned(), "workspace_user".to_owned())
        ]
    );
    // The other 29 pending invitees cost nothing: no per-person reads.
    assert_eq!(
        h.calls("invites.list"),
        1,
        "only the full read lists invites"
    );
    assert_eq!(h.calls("users.get"), 0);
    assert_eq!(h.calls("workspace_members.get"), 0);
}

/// A member made an administrator in the Console after the last full read is not removed:
/// before taking access away, Keycard reads the member again when the mirror's copy is
/// older than `verify_after_secs`, and plans again from what it finds.
pub async fn a_member_made_admin_by_hand_is_seen_before_a_removal(db: TestDb) {
    let h = Harness::start(db).await;
    let uid = hired_and_accepted(&h, "A1", "alice@acme.test", "Sales").await;
    assert_eq!(h.memberships(&uid).len(), 1);

    // In the Console, someone makes her an admin; the mirror still says `user`.
    assert!(h.sim.sim.set_user_role(&uid, "admin"));
    h.advance(600);
    h.deliver(
        "l1",
        event("person.departed", "A1", h.clock_now(), json!({})),
    )
    .await;
    h.settle().await;

    assert!(
        h.user("alice@acme.test").is_some(),
        "an admin is never removed"
    );
    assert_eq!(h.calls("users.delete"), 0);
    assert_eq!(h.calls("workspace_members.delete"), 0);
    assert!(h.calls("users.get") >= 1, "the member was read again first");
    let actions = h.actions("A1").await;
    assert!(
        actions
            .iter()
            .any(|a| a.status.as_str() == "needs_manual_action" && a.reason.contains("admin")),
        "{actions:?}"
    );
}

/// The read before a removal fails: the removal waits `retry_base_secs` and then goes
/// through; it is not retried at once in a loop (only a process that is stopping leaves its
/// work due at once, for the next process).
pub async fn a_failed_read_before_a_removal_waits_the_retry_base(db: TestDb) {
    let h = Harness::start(db).await;
    let uid = hired_and_accepted(&h, "F1", "fay@acme.test", "Sales").await;
    assert!(!uid.is_empty());
    h.advance(600);
    h.inject(keycard::admin_sim::Fault {
        route: "users.get".into(),
        status: 500,
        // Each of the client's four tries of the one read.
        count: 4,
        apply: false,
        retry_after: None,
    });
    // Every read, the refused ones included (`calls` counts successes).
    let before = h.requests("users.get");
    h.deliver(
        "f1",
        event("person.departed", "F1", h.clock_now(), json!({})),
    )
    .await;
    h.settle().await;
    assert_eq!(
        h.requests("users.get") - before,
        4,
        "one read (four tries), then a wait"
    );
    assert!(
        h.user("fay@acme.test").is_some(),
        "removed without its read"
    );
    assert_eq!(h.calls("users.delete"), 0);

    h.advance(11);
    h.settle().await;
    assert!(h.user("fay@acme.test").is_none(), "removed after the wait");
}

/// A change made by hand in the Console is put right as soon as an operator asks for a full
/// read (`POST /api/v1/sync`, the CLI's `keycard sync`), not a day later when the drift
/// check is due; only the ops token may ask.
pub async fn an_operator_asks_for_a_full_read_now(db: TestDb) {
    let h = Harness::start(db).await;
    let uid = hired_and_accepted(&h, "E1", "ada@acme.test", "Engineering").await;
    assert_eq!(h.memberships(&uid).len(), 2);

    h.remove_member_by_hand("Engineering", &uid).await;
    h.advance(60);
    h.settle().await;
    assert_eq!(
        h.memberships(&uid).len(),
        1,
        "not noticed before the daily read"
    );
    let lists = h.calls("users.list");

    let url = format!("{}/api/v1/sync", h.base);
    let reason = json!({ "reason": "a membership was removed in the Console" });
    let anonymous = h
        .http
        .post(&url)
        .json(&reason)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(anonymous.status().as_u16(), 401);
    let resp = h
        .http
        .post(&url)
        .bearer_auth(OPS_TOKEN)
        .json(&reason)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(resp.status().as_u16(), 202);

    h.settle().await;
    assert_eq!(h.calls("users.list") - lists, 1, "one full read, one page");
    assert_eq!(
        h.memberships(&uid),
        vec![
            ("Engineering".to_owned(), "workspace_developer".to_owned()),
            ("Sandbox".to_owned(), "workspace_user".to_owned())
        ],
        "the membership removed by hand is back"
    );

    // The command-line path reads and compares in one go, and reports what it did.
    let sync = || async {
        h.worker
            .sync()
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .unwrap_or_else(|| panic!("no other process holds the read"))
    };
    let done = sync().await;
    assert_eq!(done.read.users, 3);
    // One page each of members, invites, workspaces and keys, and of each of the four
    // workspaces' members.
    assert_eq!(done.read.pages, 8, "{done:?}");
    assert_eq!(done.drift.queued, 0, "nothing drifted: {done:?}");
    assert_eq!(done.drift.linked, 0, "Ada is linked already: {done:?}");
    // A membership removed by hand again: the comparison queues Ada, and counts her.
    // (Boxed, as below: the test's future would outgrow the test thread's stack.)
    Box::pin(async {
        h.remove_member_by_hand("Sandbox", &uid).await;
        let done = sync().await;
        assert_eq!(done.drift.queued, 1, "{done:?}");
        h.settle().await;
        assert_eq!(h.memberships(&uid).len(), 2, "put right again");
    })
    .await;

    // A record that lost its link (an import, a restore) whose account already has what it
    // should: the comparison links it, a journal write and no call, and counts it.
    h.db.raw(
        "UPDATE people SET anthropic_user_id = NULL",
        "UPDATE people SET anthropic_user_id = NULL",
    )
    .await;
    let before = h.sim.sim.calls().len();
    let drift = h
        .worker
        .drift_check()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        (drift.people, drift.linked, drift.queued),
        (1, 1, 0),
        "{drift:?}"
    );
    assert_eq!(h.sim.sim.calls().len(), before, "no call");
    let ada = h
        .db()
        .await
        .person_by_source("hr", "E1")
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .unwrap_or_else(|| panic!("E1"));
    assert_eq!(ada.anthropic_user_id.as_deref(), Some(uid.as_str()));

    // `keycard run --once` reports the work it did: a late event (older than the last one
    // applied) is applied as stale, one unit, and then nothing is left.
    let (status, _) = h
        .deliver(
            "m-E1-late",
            event(
                "person.updated",
                "E1",
                t0() - chrono::Duration::days(1),
                json!({ "department": "Sales" }),
            ),
        )
        .await;
    assert_eq!(status, 202);
    let run_once = || async {
        h.worker
            .run_until_idle()
            .await
            .unwrap_or_else(|e| panic!("{e}"))
    };
    let done = run_once().await;
    assert_eq!(done, 1);
    let idle = run_once().await;
    assert_eq!(idle, 0);

    // More than one batch (200) of due events that queue no job: one call applies them all.
    Box::pin(async {
        for n in 0..201 {
            let (status, _) = h
                .deliver(
                    &format!("m-E1-stale-{n}"),
                    event(
                        "person.updated",
                        "E1",
                        t0() - chrono::Duration::days(2),
                        json!({ "department": format!("Stale {n}") }),
                    ),
                )
                .await;
            assert_eq!(status, 202);
        }
        let done = run_once().await;
        assert_eq!(done, 201);

        // A change with something to do: one event applied and one reconcile run.
        let (status, _) = h
            .deliver(
                "m-E1-moves",
                event(
                    "person.updated",
                    "E1",
                    h.clock_now(),
                    json!({ "department": "Sales" }),
                ),
            )
            .await;
        assert_eq!(status, 202);
        let done = run_once().await;
        assert_eq!(done, 2);
    })
    .await;
}

fn client_on(sim_url: &str, budget: Option<SharedBudget>, per_minute: u32) -> AdminClient {
    let mut cfg = AdminClientConfig::new(Credential::admin_key(ADMIN_KEY))
        .base_url(sim_url.to_owned())
        .retry(RetryPolicy {
            max_attempts: 6,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(2),
            jitter: 0.0,
            max_retry_after: Duration::from_secs(30),
        })
        .pacing(Some(PacingConfig {
            general: RateLimit {
                requests: per_minute,
                per: Duration::from_secs(60),
                burst: 2,
            },
            ..PacingConfig::default()
        }));
    if let Some(budget) = budget {
        cfg = cfg.budget_store(Arc::new(budget));
    }
    AdminClient::with_clock(cfg, Arc::new(SystemClock)).unwrap_or_else(|e| panic!("{e}"))
}

/// Three processes, one budget: each paces through the journal's shared buckets, so
/// together they stay within what the organization allows (the simulator's limit is the
/// configured budget). The control run, each process pacing alone, meets 429s.
#[sqlx::test(migrations = false)]
async fn three_processes_share_one_budget(pool: sqlx::PgPool) {
    let journal = Journal::from_pool(pool);
    journal.migrate().await.unwrap_or_else(|e| panic!("{e}"));
    let per_minute = 240;
    let clock = Arc::new(OffsetClock::new());
    let sim = Simulator::new(seed_with(Vec::new()), clock)
        .unwrap_or_else(|e| panic!("{e}"))
        .spawn(([127, 0, 0, 1], 0).into())
        .await
        .unwrap_or_else(|e| panic!("{e}"));

    // Leaves the simulator's bucket (capacity = the budget) nearly empty, as after a busy
    // minute, so whatever the processes send on top must fit the refill.
    let drain = |sim_url: String| async move {
        let unpaced = AdminClient::with_clock(
            AdminClientConfig::new(Credential::admin_key(ADMIN_KEY))
                .base_url(sim_url)
                .retry(RetryPolicy::none())
                .pacing(None),
            Arc::new(SystemClock),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        while unpaced.get_organization().await.is_ok() {}
        // A few tokens come back: enough for one burst of two.
        tokio::time::sleep(Duration::from_millis(800)).await;
    };
    let run = |clients: Vec<AdminClient>| async move {
        let tasks: Vec<_> = clients
            .into_iter()
            .map(|c| {
                tokio::spawn(async move {
                    for _ in 0..8 {
                        c.get_organization().await.unwrap_or_else(|e| panic!("{e}"));
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap_or_else(|e| panic!("{e}"));
        }
    };
    let limited = |sim: &keycard::admin_sim::RunningSim, from: usize| {
        sim.sim.calls()[from..]
            .iter()
            .filter(|c| c.status == 429)
            .count()
    };

    sim.sim
        .update_settings(&json!({ "rate_limit_per_minute": per_minute }))
        .unwrap_or_else(|e| panic!("{e}"));
    drain(sim.base_url()).await;
    let from = sim.sim.calls().len();
    run((0..3)
        .map(|_| {
            client_on(
                &sim.base_url(),
                Some(SharedBudget::new(journal.clone())),
                per_minute,
            )
        })
        .collect())
    .await;
    assert_eq!(limited(&sim, from), 0, "one shared budget: no 429");
    assert_eq!(sim.sim.calls().len() - from, 24);

    // Control: the same three, each with its own budget, overrun the organization's.
    sim.sim
        .update_settings(&json!({ "rate_limit_per_minute": per_minute }))
        .unwrap_or_else(|e| panic!("{e}"));
    drain(sim.base_url()).await;
    let from = sim.sim.calls().len();
    run((0..3)
        .map(|_| client_on(&sim.base_url(), None, per_minute))
        .collect())
    .await;
    assert!(limited(&sim, from) > 0, "three separate budgets meet 429s");
}

/// While every job loop is stuck in a slow Admin API call, a departure delivered now is
/// still applied, and its job is the first claimed when a loop is free.
#[sqlx::test(migrations = false)]
async fn departures_are_applied_while_jobs_are_stuck(pool: sqlx::PgPool) {
    let clock = Arc::new(keycard::clock::ManualClock::new(t0()));
    let sim = Simulator::new(
        seed_with(vec![
            json!({ "email": "leaver@acme.test", "name": "Leaver", "role": "user" }),
        ]),
        clock.clone(),
    )
    .unwrap_or_else(|e| panic!("{e}"))
    .spawn(([127, 0, 0, 1], 0).into())
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    // One job loop, polling often: the test is about what that one loop cannot block.
    let toml = RULES.replace(
        "[reconciler]\n",
        "[reconciler]\nworkers = 1\nidle_poll_ms = 20\n",
    );
    let config = config(&toml, &sim.base_url());
    let journal = Journal::from_pool(pool);
    let app = Application::build_with_journal(config, clock.clone(), journal.clone())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let gate_open = Arc::new(AtomicBool::new(true));
    let opened = Arc::new(Notify::new());
    let (g, o) = (gate_open.clone(), opened.clone());
    let app = app.with_before_call(Arc::new(move |_| {
        let (g, o) = (g.clone(), o.clone());
        Box::pin(async move {
            while !g.load(Ordering::SeqCst) {
                o.notified().await;
            }
        })
    }));
    let base = format!(
        "http://{}",
        app.local_addr().unwrap_or_else(|e| panic!("{e}"))
    );
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run(async move {
        let _ = stop_rx.await;
    }));
    let http = reqwest::Client::new();
    let send = |id: String, body: serde_json::Value| {
        let (http, base, clock) = (http.clone(), base.clone(), clock.clone());
        async move {
            let body = body.to_string().into_bytes();
            let secret = keycard::sources::standard_webhooks::WebhookSecret::parse(SECRET)
                .unwrap_or_else(|e| panic!("{e}"));
            let mid = keycard::sources::standard_webhooks::MessageId::parse(&id)
                .unwrap_or_else(|e| panic!("{e}"));
            let ts = clock.now().timestamp();
            let sig = keycard::sources::standard_webhooks::sign(&secret, &mid, ts, &body);
            let resp = http
                .post(format!("{base}/webhooks/hr"))
                .header("webhook-id", id)
                .header("webhook-timestamp", ts.to_string())
                .header("webhook-signature", sig)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(resp.status().as_u16(), 202);
        }
    };
    let wait_for =
        |what: &'static str,
         check: Box<dyn Fn() -> futures::future::BoxFuture<'static, bool> + Send>| async move {
            for _ in 0..500 {
                if check().await {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            panic!("never happened: {what}");
        };

    // The leaver is a member already: linked at their hire.
    send("h0".into(), hire("L0", "leaver@acme.test", "Sales", t0())).await;
    let j = journal.clone();
    wait_for(
        "the leaver linked",
        Box::new(move || {
            let j = j.clone();
            Box::pin(async move {
                let Ok(mut c) = j.conn().await else {
                    return false;
                };
                c.find_person("L0")
                    .await
                    .ok()
                    .flatten()
                    .is_some_and(|p| p.anthropic_user_id.is_some())
            })
        }),
    )
    .await;

    // Every call now hangs: the one job loop gets stuck in the first joiner's invite.
    gate_open.store(false, Ordering::SeqCst);
    for i in 0..5 {
        send(
            format!("j{i}"),
            hire(&format!("J{i}"), &format!("j{i}@acme.test"), "Sales", t0()),
        )
        .await;
    }
    let s = sim.sim.clone();
    let stuck_before = sim.sim.calls().len();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(s.calls().len(), stuck_before, "the job loop is stuck");

    send("l0".into(), event("person.departed", "L0", t0(), json!({}))).await;
    let j = journal.clone();
    wait_for(
        "the departure applied while the job loop is stuck",
        Box::new(move || {
            let j = j.clone();
            Box::pin(async move {
                let Ok(mut c) = j.conn().await else {
                    return false;
                };
                let Ok(page) = c
                    .list_events(&keycard::journal::JournalFilter {
                        person: Some("L0".into()),
                        limit: 10,
                        ..Default::default()
                    })
                    .await
                else {
                    return false;
                };
                page.data
                    .iter()
                    .any(|e| e.kind.as_str() == "departed" && e.status == EventStatus::Applied)
            })
        }),
    )
    .await;
    let leaver_job = sqlx::query_scalar::<_, i32>(
        "SELECT j.priority FROM reconcile_jobs j JOIN people p ON p.id = j.person_id
         WHERE p.source_person_id = 'L0'",
    )
    .fetch_one(journal.pg_pool().unwrap_or_else(|| panic!("postgres")))
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(leaver_job, Priority::Leaver as i32);

    // Free the loop: the leaver goes before the four joiners still queued.
    gate_open.store(true, Ordering::SeqCst);
    opened.notify_waiters();
    let s = sim.sim.clone();
    wait_for(
        "the leaver removed",
        Box::new(move || {
            let s = s.clone();
            Box::pin(async move { s.calls().iter().any(|c| c.route == Some("users.delete")) })
        }),
    )
    .await;
    let writes: Vec<&str> = sim
        .sim
        .calls()
        .iter()
        .filter(|c| c.status < 300 && c.method != "GET")
        .filter_map(|c| c.route)
        .filter(|r| *r == "users.delete" || *r == "invites.create")
        .collect();
    let removal = writes.iter().position(|r| *r == "users.delete");
    assert!(
        removal.is_some_and(|at| at <= 1),
        "the leaver before the queued joiners: {writes:?}"
    );
    let _ = stop_tx.send(());
    let _ = server.await;
}
