//! Enrichment end to end: a sender simulator (`keycard::sender_sim`) sends its thin notices
//! over loopback to Keycard, Keycard reads the record back from the simulator's API, and the
//! Admin API simulator is the organization. One `ManualClock` drives all of them.

use std::sync::Arc;

use keycard::clock::ManualClock;
use keycard::enrich::{Enricher, Outcome};
use keycard::journal::{EventRow, JournalFilter};
use keycard::sender_api::SenderKind;
use keycard::sender_sim::{
    Action, Fault, NoticeRequest, PersonInput, RunningSenderSim, SenderSim, default_tenant,
};
use serde_json::json;

use crate::harness::*;

struct Setup {
    h: Harness,
    sim: RunningSenderSim,
    enricher: Enricher,
    source: &'static str,
}

fn source_toml(kind: SenderKind, url: &str) -> String {
    let (name, secret, token, extra) = match kind {
        SenderKind::Gusto => (
            "gusto",
            "SIM_GUSTO_SECRET",
            "SIM_GUSTO_TOKEN",
            format!("tenant = \"{}\"", default_tenant(kind)),
        ),
        SenderKind::HiBob => (
            "bob",
            "SIM_HIBOB_SECRET",
            "SIM_HIBOB_TOKEN",
            format!(
                "tenant = \"{}\"\nclient_id = \"SERVICE-USER-SIM\"",
                default_tenant(kind)
            ),
        ),
        SenderKind::Okta => (
            "okta",
            "SIM_OKTA_SECRET",
            "SIM_OKTA_TOKEN",
            format!("tenant = \"{url}\""),
        ),
        other => panic!("no enrichment test source for {other}"),
    };
    format!(
        "[[sources]]\nname = \"{name}\"\nkind = \"{}\"\nsecret_env = \"{secret}\"\n\n\
         [sources.api]\n{extra}\ntoken_env = \"{token}\"\nbase_url = \"{url}\"\n\n",
        kind.as_str()
    )
}

async fn start(db: TestDb, kind: SenderKind) -> Setup {
    start_with(db, kind, RULES).await
}

async fn start_with(db: TestDb, kind: SenderKind, rules: &str) -> Setup {
    let clock = Arc::new(ManualClock::new(t0()));
    let sim = SenderSim::new(
        kind,
        serde_json::from_value(json!({})).unwrap_or_else(|e| panic!("{e}")),
        clock.clone(),
    )
    .unwrap_or_else(|e| panic!("sim: {e}"))
    .spawn(([127, 0, 0, 1], 0).into())
    .await
    .unwrap_or_else(|e| panic!("spawn: {e}"));
    let toml = format!("{}{rules}", source_toml(kind, &sim.base_url()));
    let h = Harness::start_on(db, &toml, seed(), clock.clone()).await;
    let enricher = Enricher::from_config(
        &h.config,
        h.journal.clone(),
        clock.clone(),
        "test-enricher".into(),
    )
    .unwrap_or_else(|e| panic!("enricher: {e}"));
    let source = match kind {
        SenderKind::Gusto => "gusto",
        SenderKind::HiBob => "bob",
        _ => "okta",
    };
    assert_eq!(enricher.sources(), [source]);
    // The organization is read once before anything is planned.
    h.settle().await;
    Setup {
        h,
        sim,
        enricher,
        source,
    }
}

impl Setup {
    fn add(&self, email: &str, department: &str) -> String {
        self.sim
            .sim
            .add_person(PersonInput {
                first_name: Some("Grace".into()),
                last_name: Some("Hopper".into()),
                work_email: Some(email.into()),
                department: Some(department.into()),
                ..Default::default()
            })
            .unwrap_or_else(|e| panic!("{e}"))
            .id
    }

    /// The simulator sends its notice(s) for `action` to Keycard; each is acknowledged.
    async fn notify(&self, id: &str, action: Action) {
        let url = format!("{}/webhooks/{}", self.h.base, self.source);
        let sent = self
            .sim
            .sim
            .notify(NoticeRequest::new(id, action).to(url))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(!sent.is_empty());
        for d in &sent {
            assert!(d.ok(), "not acknowledged: {d:?}");
        }
    }

    async fn events(&self) -> Vec<EventRow> {
        let filter = JournalFilter {
            limit: 1000,
            ..Default::default()
        };
        let mut rows = async { self.h.journal.conn().await?.list_events(&filter).await }
            .await
            .unwrap_or_else(|e| panic!("journal: {e}"))
            .data;
        rows.retain(|e| e.source == self.source);
        rows.sort_by_key(|e| (e.received_at, e.id));
        rows
    }

    async fn statuses(&self) -> Vec<String> {
        self.events()
            .await
            .iter()
            .map(|e| e.status.as_str().to_owned())
            .collect()
    }

    /// Applies what is due, does the reads that are due, and applies what they filled in.
    async fn enrich_and_settle(&self) -> usize {
        self.h.settle().await;
        let reads = self
            .enricher
            .run_until_idle()
            .await
            .unwrap_or_else(|e| panic!("enrich: {e}"));
        self.h.settle().await;
        reads
    }

    fn reads(&self) -> usize {
        let route = match self.sim.sim.kind() {
            SenderKind::HiBob => "people.read",
            SenderKind::Okta => "users.get",
            _ => "employees.get",
        };
        self.sim
            .sim
            .calls()
            .iter()
            .filter(|c| c.route == Some(route) && c.status == 200)
            .count()
    }

    async fn join(&self, id: &str, email: &str, action: Action) -> String {
        self.notify(id, action).await;
        assert_eq!(self.enrich_and_settle().await, 1);
        self.h
            .sim
            .sim
            .accept_invite_for(email)
            .unwrap_or_else(|e| panic!("accept: {e}"));
        self.h.advance(61);
        self.h.settle().await;
        self.h
            .user(email)
            .and_then(|u| u["id"].as_str().map(str::to_owned))
            .unwrap_or_else(|| panic!("{email} did not join"))
    }
}

pub async fn a_gusto_hire_without_email_is_invited_after_enrichment(db: TestDb) {
    let s = start(db, SenderKind::Gusto).await;
    let id = s.add("grace@acme.test", "Engineering");
    s.notify(&id, Action::Joined).await;

    // Acknowledged and journaled; nothing read yet, and the event waits for the read.
    s.h.settle().await;
    let events = s.events().await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].status.as_str(), "awaiting_enrichment");
    assert_eq!(events[0].email, None, "Gusto's notice names no email");
    assert_eq!(s.reads(), 0);
    assert!(s.h.invites("grace@acme.test").is_empty());

    assert_eq!(s.enrich_and_settle().await, 1);
    let invites = s.h.invites("grace@acme.test");
    assert_eq!(invites.len(), 1, "{invites:?}");
    assert_eq!(invites[0]["role"], "developer");
    let ev = &s.events().await[0];
    assert_eq!(ev.status.as_str(), "applied");
    assert_eq!(ev.email.as_deref(), Some("grace@acme.test"));
    assert_eq!(ev.completeness, "full");
    let enrichment = &ev.payload["enrichment"];
    assert_eq!(enrichment["notice_completeness"], "notice");
    assert!(enrichment["fetched_at"].is_string(), "{enrichment}");
    assert!(
        enrichment["from"]
            .as_str()
            .is_some_and(|f| f.starts_with("gusto")),
        "{enrichment}"
    );

    // Accepted, then terminated at Gusto: the notices name only the id again.
    s.h.sim
        .sim
        .accept_invite_for("grace@acme.test")
        .unwrap_or_else(|e| panic!("{e}"));
    s.h.advance(61);
    s.h.settle().await;
    assert!(s.h.user("grace@acme.test").is_some());
    s.sim
        .sim
        .terminate(&id, None)
        .unwrap_or_else(|e| panic!("{e}"));
    s.notify(&id, Action::Terminated).await;
    assert_eq!(s.enrich_and_settle().await, 1);
    assert!(
        s.h.user("grace@acme.test").is_none(),
        "offboarded: {:?}",
        s.statuses().await
    );
}

pub async fn a_hibob_v2_termination_removes_the_member(db: TestDb) {
    let s = start(db, SenderKind::HiBob).await;
    let id = s.add("ada@acme.test", "Sales");
    let user = s.join(&id, "ada@acme.test", Action::Joined).await;
    assert_eq!(
        s.h.memberships(&user),
        [("Sales".to_owned(), "workspace_user".to_owned())]
    );
    s.sim
        .sim
        .terminate(&id, None)
        .unwrap_or_else(|e| panic!("{e}"));
    s.notify(&id, Action::Terminated).await;
    let left = s.events().await;
    assert!(
        left.iter().any(|e| e.completeness == "notice"),
        "HiBob v2 notices are thin"
    );
    assert_eq!(s.enrich_and_settle().await, 1);
    // A termination dated today takes effect at the end of that day (`[dates] end_time`,
    // 18:00 in the organization's zone, UTC here).
    s.h.advance(8 * 3600);
    s.enrich_and_settle().await;
    assert!(s.h.user("ada@acme.test").is_none());
    let last = s.events().await.pop().unwrap_or_else(|| panic!("events"));
    assert_eq!(last.kind.as_str(), "departed");
    assert_eq!(last.status.as_str(), "applied");
}

pub async fn an_okta_profile_update_changes_the_workspace(db: TestDb) {
    let s = start(db, SenderKind::Okta).await;
    let id = s.add("lin@acme.test", "Sales");
    let user = s.join(&id, "lin@acme.test", Action::Joined).await;
    assert_eq!(
        s.h.memberships(&user),
        [("Sales".to_owned(), "workspace_user".to_owned())]
    );

    s.h.advance(10);
    s.sim
        .sim
        .update_person(&id, &json!({ "department": "Engineering" }))
        .unwrap_or_else(|e| panic!("{e}"));
    s.notify(&id, Action::Updated).await;
    let update = s.events().await.pop().unwrap_or_else(|| panic!("events"));
    assert_eq!(
        update.source_event_type.as_deref(),
        Some("user.account.update_profile")
    );
    assert_eq!(s.enrich_and_settle().await, 1);
    assert_eq!(
        s.h.memberships(&user),
        [
            ("Engineering".to_owned(), "workspace_developer".to_owned()),
            ("Sandbox".to_owned(), "workspace_user".to_owned()),
        ]
    );
    assert_eq!(
        s.h.user("lin@acme.test").map(|u| u["role"].clone()),
        Some(json!("developer"))
    );
}

pub async fn enrichment_waits_out_a_429_storm_and_completes(db: TestDb) {
    let s = start(db, SenderKind::Gusto).await;
    let id = s.add("storm@acme.test", "Sales");
    // Short waits: the client sits them out within one read (on the manual clock).
    s.sim
        .sim
        .inject(Fault {
            route: "employees.get".into(),
            status: Some(429),
            count: 3,
            retry_after: Some(20),
            delay_ms: None,
        })
        .unwrap_or_else(|e| panic!("{e}"));
    let before = s.h.clock.total_slept();
    s.notify(&id, Action::Joined).await;
    assert_eq!(s.enrich_and_settle().await, 1);
    assert!(
        s.h.clock.total_slept() - before >= std::time::Duration::from_secs(60),
        "waited what Gusto asked: {:?}",
        s.h.clock.slept()
    );
    assert_eq!(s.h.invites("storm@acme.test").len(), 1);

    // A wait longer than the client sits out: the read is rescheduled for exactly then.
    let id2 = s.add("storm2@acme.test", "Sales");
    s.sim
        .sim
        .inject(Fault {
            route: "employees.get".into(),
            status: Some(429),
            count: 1,
            retry_after: Some(900),
            delay_ms: None,
        })
        .unwrap_or_else(|e| panic!("{e}"));
    s.notify(&id2, Action::Joined).await;
    s.h.settle().await;
    let t = s.h.clock_now();
    let out = s
        .enricher
        .run_once()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    match out {
        Some(Outcome::Failed {
            next_attempt_at, ..
        }) => assert_eq!(next_attempt_at, t + chrono::Duration::seconds(900)),
        other => panic!("{other:?}"),
    }
    assert!(s.h.invites("storm2@acme.test").is_empty());
    assert_eq!(s.enrich_and_settle().await, 0, "not due yet");
    s.h.advance(900);
    assert_eq!(s.enrich_and_settle().await, 1);
    assert_eq!(s.h.invites("storm2@acme.test").len(), 1);
}

pub async fn a_record_changed_twice_more_before_the_read_applies_once(db: TestDb) {
    let s = start(db, SenderKind::Gusto).await;
    let id = s.add("twice@acme.test", "Engineering");
    let user = s.join(&id, "twice@acme.test", Action::Joined).await;
    let reads_before = s.reads();
    let before = s.events().await.len();

    // Three changes, three notices, before Keycard reads anything.
    for patch in [
        json!({ "title": "Staff Engineer" }),
        json!({ "title": "Principal Engineer" }),
        json!({ "department": "Sales" }),
    ] {
        s.h.advance(5);
        s.sim
            .sim
            .update_person(&id, &patch)
            .unwrap_or_else(|e| panic!("{e}"));
        s.notify(&id, Action::Updated).await;
    }
    assert_eq!(s.enrich_and_settle().await, 1, "one read for the person");
    assert_eq!(s.reads() - reads_before, 1);
    let statuses: Vec<String> = s.statuses().await.split_off(before);
    assert_eq!(statuses, ["applied", "no_change", "no_change"]);
    let events = s.events().await;
    assert!(
        events[before + 1]
            .status_reason
            .as_deref()
            .is_some_and(|r| r.contains("nothing to apply")),
        "{:?}",
        events[before + 1].status_reason
    );
    // The newest state, applied once.
    assert_eq!(
        s.h.user("twice@acme.test").map(|u| u["role"].clone()),
        Some(json!("user"))
    );
    assert_eq!(
        s.h.memberships(&user),
        [("Sales".to_owned(), "workspace_user".to_owned())]
    );
    let person =
        s.h.db()
            .await
            .person_by_source("gusto", &id)
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .unwrap_or_else(|| panic!("person"));
    assert_eq!(person.attributes["title"], "Principal Engineer");
    let role_changes =
        s.h.actions(&id)
            .await
            .iter()
            .filter(|a| a.kind.as_str() == "update_user_role")
            .count();
    assert_eq!(role_changes, 1);
}

pub async fn a_failed_read_is_visible_and_retried_until_it_completes(db: TestDb) {
    let s = start(db, SenderKind::Gusto).await;
    let id = s.add("down@acme.test", "Sales");
    s.sim
        .sim
        .inject(Fault {
            route: "employees.get".into(),
            status: Some(503),
            count: 1000,
            retry_after: None,
            delay_ms: None,
        })
        .unwrap_or_else(|e| panic!("{e}"));
    s.notify(&id, Action::Joined).await;
    assert_eq!(s.enrich_and_settle().await, 1);

    // In the journal: the event waits, saying why and until when; the person's read too.
    let ev = s.events().await.pop().unwrap_or_else(|| panic!("event"));
    assert_eq!(ev.status.as_str(), "awaiting_enrichment");
    let reason = ev.status_reason.unwrap_or_default();
    assert!(
        reason.contains("failed 1 time(s)")
            && reason.contains("503")
            && reason.contains("next attempt at"),
        "{reason}"
    );
    let row =
        s.h.db()
            .await
            .enrichment_of("gusto", &id)
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .unwrap_or_else(|| panic!("enrichment row"));
    assert_eq!(row.attempts, 1);
    assert!(row.last_error.is_some_and(|e| e.contains("503")));
    // Over the ops API as well.
    let listed: serde_json::Value =
        s.h.http
            .get(format!(
                "{}/api/v1/events?status=awaiting_enrichment",
                s.h.base
            ))
            .bearer_auth(OPS_TOKEN)
            .send()
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .json()
            .await
            .unwrap_or_else(|e| panic!("{e}"));
    assert!(listed.to_string().contains("next attempt at"), "{listed}");
    // And on the person's page: known from the notice on, the wait in their timeline.
    let person: serde_json::Value =
        s.h.http
            .get(format!("{}/api/v1/people/{id}", s.h.base))
            .bearer_auth(OPS_TOKEN)
            .send()
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .json()
            .await
            .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        person.to_string().contains("awaiting_enrichment")
            && person.to_string().contains("failed 1 time(s)"),
        "{person}"
    );

    // Still down at the next attempt: backed off further.
    let wait = (row.next_attempt_at - s.h.clock_now()).num_seconds() + 1;
    s.h.advance(u64::try_from(wait).unwrap_or(0));
    assert_eq!(s.enrich_and_settle().await, 1);
    let row2 =
        s.h.db()
            .await
            .enrichment_of("gusto", &id)
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .unwrap_or_else(|| panic!("enrichment row"));
    assert_eq!(row2.attempts, 2);
    assert!(row2.next_attempt_at - s.h.clock_now() > row.next_attempt_at - row.updated_at);
    assert!(s.h.invites("down@acme.test").is_empty());

    // The API is back: the next attempt completes and the hire goes ahead.
    s.sim.sim.clear_faults();
    s.h.advance(3600);
    assert_eq!(s.enrich_and_settle().await, 1);
    assert_eq!(s.h.invites("down@acme.test").len(), 1);
    assert_eq!(s.statuses().await, ["applied"]);
}

pub async fn a_departure_with_no_account_is_journaled_as_no_change(db: TestDb) {
    let s = start(db, SenderKind::Gusto).await;
    let id = s.add("never@acme.test", "Sales");
    s.sim
        .sim
        .terminate(&id, None)
        .unwrap_or_else(|e| panic!("{e}"));
    s.notify(&id, Action::Terminated).await;
    assert_eq!(s.enrich_and_settle().await, 1);
    let last = s.events().await.pop().unwrap_or_else(|| panic!("events"));
    assert_eq!(last.kind.as_str(), "departed");
    assert_eq!(last.status.as_str(), "no_change");
    assert_eq!(
        last.status_reason.as_deref(),
        Some("departed, but had no account and no invite")
    );
}

pub async fn a_departure_does_not_wait_for_a_sender_outage(db: TestDb) {
    let s = start(db, SenderKind::HiBob).await;
    let id = s.add("leaver@acme.test", "Sales");
    s.join(&id, "leaver@acme.test", Action::Joined).await;
    s.sim
        .sim
        .terminate(&id, None)
        .unwrap_or_else(|e| panic!("{e}"));
    s.sim
        .sim
        .inject(Fault {
            route: "people.read".into(),
            status: Some(503),
            count: 1000,
            retry_after: None,
            delay_ms: None,
        })
        .unwrap_or_else(|e| panic!("{e}"));
    s.notify(&id, Action::Terminated).await;
    assert_eq!(s.enrich_and_settle().await, 1);
    // A termination dated today takes effect at the end of that day (`[dates] end_time`,
    // 18:00 in the organization's zone, UTC here).
    s.h.advance(8 * 3600);
    s.enrich_and_settle().await;
    assert!(s.h.user("leaver@acme.test").is_none(), "offboarded anyway");
    let last = s.events().await.pop().unwrap_or_else(|| panic!("events"));
    assert_eq!(last.kind.as_str(), "departed");
    assert_eq!(last.status.as_str(), "applied");
    let reason = last.status_reason.unwrap_or_default();
    assert!(
        reason.contains("reading the record failed") && reason.contains("503"),
        "{reason}"
    );
}

/// A thin notice parked for its read wakes the enrichment loop at once: with a one-minute
/// idle poll, the record is read as soon as the event is applied, not at the next poll.
pub async fn a_parked_notice_wakes_the_enrichment_loop(db: TestDb) {
    let rules = RULES.replace("[reconciler]\n", "[reconciler]\nidle_poll_ms = 60000\n");
    let s = start_with(db, SenderKind::Gusto, &rules).await;
    // The worker wakes this enricher (as `keycard serve` wires its own).
    let worker =
        s.h.worker
            .clone()
            .with_enrichment(vec!["gusto".into()], s.enricher.notifier());
    let stop = tokio_util::sync::CancellationToken::new();
    let enricher = s.enricher.clone();
    let until = stop.clone();
    let looping = tokio::spawn(async move { enricher.run(until.cancelled_owned()).await });
    // The loop's first pass finds nothing; it is now in its minute-long wait.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let id = s.add("wake@acme.test", "Engineering");
    s.notify(&id, Action::Joined).await;
    worker
        .apply_events()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    // Read when parked: well before the next poll, a minute away.
    let woken = crate::support::process::wait_for(
        "the record's read",
        std::time::Duration::from_secs(20),
        || s.reads() > 0,
    )
    .await;
    stop.cancel();
    let _ = looping.await;
    woken.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(s.reads(), 1, "one read");
}
