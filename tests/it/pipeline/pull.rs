//! Scheduled full pull and correlation (issue 16 items 3 and 5), end to end: a sender's
//! simulator on loopback as the directory, Keycard's journal (PostgreSQL and SQLite), the
//! worker, and the Admin API simulator as the organization.

use std::sync::Arc;

use keycard::clock::ManualClock;
use keycard::journal::{JournalFilter, OperatorWrite};
use keycard::pull::{PullReport, Puller};
use keycard::sender_api::SenderKind;
use keycard::sender_sim::{
    Action, Fault, NoticeRequest, RunningSenderSim, SenderSim, default_credential, default_tenant,
};
use serde_json::{Value, json};

use super::harness::*;

/// A sender simulator of `kind` on loopback, with `people`.
async fn sender(kind: SenderKind, people: Value, webhook: Option<Value>) -> RunningSenderSim {
    let mut seed = json!({ "people": people });
    if let Some(w) = webhook {
        seed["webhook"] = w;
    }
    let seed = serde_json::from_value(seed).unwrap_or_else(|e| panic!("seed: {e}"));
    let clock = Arc::new(ManualClock::new(t0()));
    SenderSim::new(kind, seed, clock)
        .unwrap_or_else(|e| panic!("sim: {e}"))
        .spawn(([127, 0, 0, 1], 0).into())
        .await
        .unwrap_or_else(|e| panic!("spawn: {e}"))
}

/// The pipeline's rules plus a Gusto source read from `sim`, pulled hourly.
fn gusto_config(sim: &RunningSenderSim, token: &tempfile::NamedTempFile, extra: &str) -> String {
    format!(
        "{RULES}\n{extra}\n[[sources]]\nname = \"gusto\"\nkind = \"gusto\"\nsecret_env = \"GUSTO_SECRET\"\n\n[sources.api]\ntenant = \"{}\"\ntoken_file = \"{}\"\nbase_url = \"{}\"\npull_interval_secs = 3600\n",
        default_tenant(SenderKind::Gusto),
        token.path().display(),
        sim.base_url(),
    )
}

fn token_file(kind: SenderKind) -> tempfile::NamedTempFile {
    let f = tempfile::NamedTempFile::new().unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(f.path(), default_credential(kind)).unwrap_or_else(|e| panic!("{e}"));
    f
}

fn puller(h: &Harness) -> Puller {
    Puller::from_config(&h.config, h.journal.clone(), h.clock.clone(), "test".into())
}

/// The scheduled pulls that were due, each of which must have succeeded.
async fn due(p: &Puller) -> Vec<PullReport> {
    p.run_due()
        .await
        .into_iter()
        .map(|r| r.unwrap_or_else(|e| panic!("pull: {e}")))
        .collect()
}

async fn accept(h: &Harness, email: &str) {
    h.sim
        .sim
        .accept_invite_for(email)
        .unwrap_or_else(|e| panic!("accept: {e}"));
    h.advance(61);
    h.settle().await;
    assert!(h.user(email).is_some(), "{email} did not join");
}

fn person(id: &str, first: &str, email: &str, dept: &str) -> Value {
    json!({ "id": id, "first_name": first, "last_name": "Test", "work_email": email,
            "department": dept, "status": "active" })
}

async fn events_of(h: &Harness, person: &str) -> Vec<keycard::journal::EventRow> {
    h.db()
        .await
        .list_events(&JournalFilter {
            person: Some(person.into()),
            limit: 50,
            ..Default::default()
        })
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .data
}

/// A termination and a hire that no webhook announced are repaired by the next pull; a
/// re-run pull journals nothing; a pull that is not due does not run.
pub async fn a_lost_termination_and_a_silent_hire_are_repaired_by_the_next_pull(db: TestDb) {
    let sim = sender(
        SenderKind::Gusto,
        json!([
            person("g-ada", "Ada", "ada@acme.test", "Engineering"),
            person("g-bob", "Bob", "bob@acme.test", "Sales"),
        ]),
        None,
    )
    .await;
    let token = token_file(SenderKind::Gusto);
    let h = Harness::start_with(db, &gusto_config(&sim, &token, ""), seed()).await;
    let p = puller(&h);

    // First pull: Keycard knows nobody, so both are hires.
    let first = due(&p).await;
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].counts.hired, 2, "{:?}", first[0]);
    h.settle().await;
    assert_eq!(h.invites("ada@acme.test").len(), 1);
    accept(&h, "ada@acme.test").await;
    let events = events_of(&h, "g-ada").await;
    assert_eq!(events[0].source_event_type.as_deref(), Some("pull"));
    assert_eq!(events[0].completeness, "full");
    assert!(events[0].dedupe_key.starts_with("pull:g-ada:hired:"));

    // Not due again within the interval.
    h.advance(600);
    assert!(due(&p).await.is_empty());

    // Ada leaves and Cy joins in Gusto; no notice is sent.
    sim.sim
        .terminate("g-ada", None)
        .unwrap_or_else(|e| panic!("{e}"));
    sim.sim
        .add_person(
            serde_json::from_value(person("g-cy", "Cy", "cy@acme.test", "Engineering"))
                .unwrap_or_else(|e| panic!("{e}")),
        )
        .unwrap_or_else(|e| panic!("{e}"));
    h.advance(3600);
    let second = due(&p).await;
    assert_eq!(second.len(), 1);
    let c = second[0].counts;
    assert_eq!(
        (c.hired, c.departed, c.changed, c.held),
        (1, 1, 0, 0),
        "{:?}",
        second[0]
    );
    h.settle().await;
    assert_eq!(
        h.invites("cy@acme.test").len(),
        1,
        "the silent hire was not invited"
    );
    // Her termination is dated today, her last day: it takes effect at `dates.end_time`
    // (18:00, in UTC here), as a webhook's date would, not at the read.
    assert!(
        h.user("ada@acme.test").is_some(),
        "removed before her last day ended"
    );
    let departure = events_of(&h, "g-ada")
        .await
        .into_iter()
        .find(|e| e.kind == keycard::journal::EventKind::Departed)
        .unwrap_or_else(|| panic!("no departure journaled"));
    let end_of_day = h
        .clock_now()
        .date_naive()
        .and_hms_opt(18, 0, 0)
        .unwrap_or_else(|| panic!("18:00"))
        .and_utc();
    assert_eq!(departure.effective_at, Some(end_of_day));
    let wait = (end_of_day - h.clock_now()).num_seconds();
    assert!(wait > 0);
    h.advance(u64::try_from(wait).unwrap_or_default());
    h.settle().await;
    assert!(
        h.user("ada@acme.test").is_none(),
        "the leaver's member was not removed"
    );
    let ada = h
        .db()
        .await
        .find_person("g-ada")
        .await
        .ok()
        .flatten()
        .unwrap_or_else(|| panic!("ada"));
    assert_eq!(ada.status.as_str(), "departed");

    // A re-run changes nothing.
    let before = h.event_count().await;
    h.advance(3600);
    let third = due(&p).await;
    let c = third[0].counts;
    assert_eq!(
        (c.hired, c.departed, c.changed, c.held),
        (0, 0, 0, 0),
        "{:?}",
        third[0]
    );
    assert_eq!(h.event_count().await, before);
    // Every run is journaled with its counts.
    let runs = h
        .db()
        .await
        .pull_runs(Some("gusto"), 10)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(runs.len(), 3);
    assert!(runs.iter().all(|r| r.status == "done" && r.records >= 2));
    assert_eq!(runs[1].departed, 1);
}

/// An empty directory departs nobody: every departure is held, visible, and applied only
/// when an operator releases the run.
pub async fn an_empty_directory_departs_nobody_until_an_operator_releases_it(db: TestDb) {
    let sim = sender(
        SenderKind::Gusto,
        json!([
            person("g-1", "Ann", "ann@acme.test", "Sales"),
            person("g-2", "Ben", "ben@acme.test", "Sales"),
            person("g-3", "Cat", "cat@acme.test", "Sales"),
        ]),
        None,
    )
    .await;
    let token = token_file(SenderKind::Gusto);
    let h = Harness::start_with(db, &gusto_config(&sim, &token, ""), seed()).await;
    let p = puller(&h);
    assert_eq!(due(&p).await[0].counts.hired, 3);
    h.settle().await;
    for e in ["ann@acme.test", "ben@acme.test", "cat@acme.test"] {
        accept(&h, e).await;
    }

    // A broken export: the directory is empty.
    for id in ["g-1", "g-2", "g-3"] {
        sim.sim.delete_person(id).unwrap_or_else(|e| panic!("{e}"));
    }
    h.advance(3600);
    let run = due(&p).await.remove(0);
    assert_eq!((run.counts.departed, run.counts.held), (0, 3), "{run:?}");
    assert!(
        run.held_because
            .as_deref()
            .is_some_and(|w| w.contains("min_directory_percent")),
        "{run:?}"
    );
    h.settle().await;
    for e in ["ann@acme.test", "ben@acme.test", "cat@acme.test"] {
        assert!(h.user(e).is_some(), "{e} was removed by an empty directory");
    }
    let held = events_of(&h, "g-1").await;
    assert!(held.iter().any(|e| e.status.as_str() == "held"), "{held:?}");
    let row = h
        .db()
        .await
        .pull_run(run.run_id)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((row.status.as_str(), row.held), ("held", 3));

    // Pulled again while held: nothing new is journaled.
    let before = h.event_count().await;
    h.advance(3600);
    let again = due(&p).await.remove(0);
    assert_eq!(again.counts.held, 0, "{again:?}");
    assert_eq!(h.event_count().await, before);

    // The operator checks and releases: the departures apply, removals under the cap.
    let who = OperatorWrite::new("alice", "test", "Gusto confirms the three left")
        .unwrap_or_else(|e| panic!("{e}"));
    let mut tx = h.journal.begin().await.unwrap_or_else(|e| panic!("{e}"));
    let released = tx
        .release_pull_run(run.run_id, &who, keycard::clock::Clock::now(&*h.clock))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    tx.commit().await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(released, 3);
    h.settle().await;
    for e in ["ann@acme.test", "ben@acme.test", "cat@acme.test"] {
        assert!(h.user(e).is_none(), "{e} stayed after the release");
    }
    let log = h
        .db()
        .await
        .list_operator_log(&keycard::journal::OperatorLogFilter {
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        log.data
            .iter()
            .any(|l| l.target_kind == "pull_run" && l.operator == "alice"),
        "{:?}",
        log.data
    );
}

/// Departures beyond the removal cap are held too, even from a believable directory.
pub async fn departures_beyond_the_cap_are_held(db: TestDb) {
    let people: Vec<Value> = (1..=5)
        .map(|i| person(&format!("g-{i}"), "P", &format!("p{i}@acme.test"), "Sales"))
        .collect();
    let sim = sender(SenderKind::Gusto, json!(people), None).await;
    let token = token_file(SenderKind::Gusto);
    let text = gusto_config(&sim, &token, "").replace(
        "[reconciler]",
        "[safety]\nmax_removals_per_hour = 2\n\n[reconciler]",
    );
    let h = Harness::start_with(db, &text, seed()).await;
    let p = puller(&h);
    assert_eq!(due(&p).await[0].counts.hired, 5);
    h.settle().await;
    for i in 1..=3 {
        sim.sim
            .terminate(&format!("g-{i}"), None)
            .unwrap_or_else(|e| panic!("{e}"));
    }
    h.advance(3600);
    let run = due(&p).await.remove(0);
    assert_eq!((run.counts.departed, run.counts.held), (0, 3), "{run:?}");
    assert!(
        run.held_because
            .as_deref()
            .is_some_and(|w| w.contains("max_removals_per_hour")),
        "{run:?}"
    );
}

/// A pull through a 429 storm waits as told and completes.
pub async fn a_pull_during_a_429_storm_completes(db: TestDb) {
    let sim = sender(
        SenderKind::Gusto,
        json!([person("g-ada", "Ada", "ada@acme.test", "Engineering")]),
        None,
    )
    .await;
    let token = token_file(SenderKind::Gusto);
    let h = Harness::start_with(db, &gusto_config(&sim, &token, ""), seed()).await;
    sim.sim
        .inject(Fault {
            route: "*".into(),
            status: Some(429),
            count: 5,
            retry_after: Some(30),
            delay_ms: None,
        })
        .unwrap_or_else(|e| panic!("{e}"));
    let slept_before = h.clock.slept().len();
    let run = due(&puller(&h)).await.remove(0);
    assert_eq!(run.counts.hired, 1, "{run:?}");
    let waits = h.clock.slept()[slept_before..]
        .iter()
        .filter(|d| d.as_secs() == 30)
        .count();
    assert_eq!(waits, 5, "each 429 waits its Retry-After");
    h.settle().await;
    assert_eq!(h.invites("ada@acme.test").len(), 1);
}

const OKTA_SOURCE: &str =
    "\n[[sources]]\nname = \"okta\"\nkind = \"okta\"\nsecret_env = \"OKTA_SECRET\"\n";

/// With `[correlation] by = "work_email"`, the HR feed's and Okta's records of Ada are one
/// person: the link is journaled, Okta's events apply to her, and Okta's deactivation
/// offboards the one member.
pub async fn correlation_by_email_makes_hr_and_okta_one_person(db: TestDb) {
    let okta = sender(
        SenderKind::Okta,
        json!([person("00uada", "Ada", "ada@acme.test", "Engineering")]),
        Some(json!({ "secret": "Bearer okta-event-hook-secret-0001" })),
    )
    .await;
    let text = format!("{RULES}\n[correlation]\nby = \"work_email\"\n{OKTA_SOURCE}");
    let h = Harness::start_with(db, &text, seed()).await;
    let (status, body) = h
        .deliver("msg_hire", hire("E1", "ada@acme.test", "Engineering", t0()))
        .await;
    assert_eq!(status, 202, "{body}");
    h.settle().await;
    accept(&h, "ada@acme.test").await;

    let target = Some(format!("{}/webhooks/okta", h.base));
    h.advance(10);
    let mut joined = NoticeRequest::new("00uada", Action::Joined);
    joined.target = target.clone();
    okta.sim
        .notify(joined)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    h.settle().await;

    let mut db = h.db().await;
    let hr = db
        .find_person("E1")
        .await
        .ok()
        .flatten()
        .unwrap_or_else(|| panic!("E1"));
    let via_okta = db
        .person_of_feed("okta", "00uada")
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .unwrap_or_else(|| panic!("okta id resolves to no one"));
    assert_eq!(via_okta.id, hr.id, "two people for one human");
    let links = db.links_of(hr.id).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(links.len(), 1);
    assert_eq!(links[0].linked_by, "correlation");
    assert!(links[0].reason.contains("ada@acme.test"), "{:?}", links[0]);
    let everyone = db.all_people().await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(everyone.len(), 1, "{everyone:?}");
    drop(db);
    assert_eq!(h.invites("ada@acme.test").len(), 1, "a second invite");

    // Okta's deactivation applies to the one person, in order after the HR hire.
    h.advance(10);
    okta.sim
        .terminate("00uada", None)
        .unwrap_or_else(|e| panic!("{e}"));
    let mut gone = NoticeRequest::new("00uada", Action::Terminated);
    gone.target = target;
    okta.sim
        .notify(gone)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    h.settle().await;
    assert!(
        h.user("ada@acme.test").is_none(),
        "Okta's deactivation did not offboard"
    );
}

/// Two people an operator knows to be one are merged: the record is on the operator log, and
/// the second feed's events apply to the one person from then on.
pub async fn an_operator_merges_two_people_and_it_is_journaled(db: TestDb) {
    let text = format!("{RULES}\n{OKTA_SOURCE}");
    let okta = sender(
        SenderKind::Okta,
        json!([person("00uada", "Ada", "ada.l@acme.test", "Engineering")]),
        Some(json!({ "secret": "Bearer okta-event-hook-secret-0001" })),
    )
    .await;
    let h = Harness::start_with(db, &text, seed()).await;
    h.deliver("msg_hire", hire("E1", "ada@acme.test", "Engineering", t0()))
        .await;
    let target = Some(format!("{}/webhooks/okta", h.base));
    let mut joined = NoticeRequest::new("00uada", Action::Joined);
    joined.target = target.clone();
    h.advance(5);
    okta.sim
        .notify(joined)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    h.settle().await;
    let mut db = h.db().await;
    assert_eq!(db.all_people().await.unwrap_or_default().len(), 2);
    drop(db);

    // Through the ops API, as an operator.
    let resp = h
        .http
        .post(format!("{}/api/v1/people/E1/merge", h.base))
        .bearer_auth(OPS_TOKEN)
        .json(&json!({ "other": "00uada", "reason": "same human: Okta login is her alias" }))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let status = resp.status().as_u16();
    let body: Value = resp.json().await.unwrap_or(Value::Null);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["links"][0]["source_person_id"], "00uada");

    let mut db = h.db().await;
    let people = db.all_people().await.unwrap_or_default();
    assert_eq!(people.len(), 1, "{people:?}");
    let log = db
        .list_operator_log(&keycard::journal::OperatorLogFilter {
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let merge = log
        .data
        .iter()
        .find(|l| {
            l.target_kind == "person"
                && l.detail.as_ref().is_some_and(|d| d.get("merged").is_some())
        })
        .unwrap_or_else(|| panic!("no merge on the operator log: {:?}", log.data));
    assert_eq!(merge.reason, "same human: Okta login is her alias");
    drop(db);
    // The Okta feed's events now apply to E1.
    let events = events_of(&h, &people[0].id.to_string()).await;
    assert!(events.len() >= 2, "{events:?}");
    h.advance(10);
    let mut gone = NoticeRequest::new("00uada", Action::Terminated);
    gone.target = target;
    okta.sim
        .notify(gone)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    h.settle().await;
    let e1 = h
        .db()
        .await
        .find_person("E1")
        .await
        .ok()
        .flatten()
        .unwrap_or_else(|| panic!("E1"));
    assert_eq!(e1.status.as_str(), "departed");
}

/// Two replicas pull a source once per interval between them; a request (Graph's `missed`)
/// brings the next pull forward.
pub async fn two_replicas_pull_once_and_a_request_pulls_now(db: TestDb) {
    let sim = sender(
        SenderKind::Gusto,
        json!([person("g-ada", "Ada", "ada@acme.test", "Engineering")]),
        None,
    )
    .await;
    let token = token_file(SenderKind::Gusto);
    let h = Harness::start_with(db, &gusto_config(&sim, &token, ""), seed()).await;
    let a = Puller::from_config(&h.config, h.journal.clone(), h.clock.clone(), "a".into());
    let b = Puller::from_config(&h.config, h.journal.clone(), h.clock.clone(), "b".into());
    let (ra, rb) = tokio::join!(a.run_due(), b.run_due());
    assert_eq!(ra.len() + rb.len(), 1, "{ra:?} {rb:?}");
    h.advance(60);
    assert!(a.run_due().await.is_empty() && b.run_due().await.is_empty());
    keycard::pull::request_now(
        &h.journal,
        "gusto",
        "graph reported missed notifications",
        keycard::clock::Clock::now(&*h.clock),
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    h.advance(1);
    assert_eq!(b.run_due().await.len(), 1, "a requested pull did not run");
    assert!(a.run_due().await.is_empty(), "a request pulls once");
    let runs = h
        .db()
        .await
        .pull_runs(Some("gusto"), 10)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(runs.len(), 2);
}
