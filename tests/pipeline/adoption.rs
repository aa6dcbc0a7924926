//! Bringing an existing organization under Keycard: the staff import, observe mode and the
//! people listing.

use std::io::Write as _;

use keycard::admin_sim::Seed;
use keycard::adoption::cli::{ImportArgs, run_import};
use keycard::adoption::import::ImportReport;
use keycard::adoption::progress::Silent;
use keycard::journal::{ActionStatus, JournalFilter};
use serde_json::{Value, json};

use super::harness::*;

/// An organization that already has `members` people, admins aside.
pub fn existing_org(members: usize) -> Seed {
    let mut users = vec![
        json!({ "email": "root@acme.test", "name": "Root", "role": "admin" }),
        json!({ "email": "boss@acme.test", "name": "Boss", "role": "admin" }),
    ];
    users.extend((0..members).map(
        |i| json!({ "email": format!("staff{i:04}@acme.test"), "name": "Staff", "role": "user" }),
    ));
    serde_json::from_value(json!({
        "admin_keys": [ADMIN_KEY],
        "users": users,
        "workspaces": [
            { "name": "Engineering" }, { "name": "Sandbox" }, { "name": "Sales" }, { "name": "Research" }
        ]
    }))
    .unwrap_or_else(|e| panic!("seed: {e}"))
}

/// A staff CSV of `rows` people (`staff0000@…`), the first `members` of whom are members.
pub fn staff_csv(rows: usize) -> String {
    let mut out = String::from("employee_id,email,name,department,groups,level\n");
    for i in 0..rows {
        let dept = if i % 2 == 0 { "Engineering" } else { "Sales" };
        out.push_str(&format!(
            "E{i:04},Staff{i:04}@acme.test,Person {i},{dept},eng;all,L{}\n",
            i % 5
        ));
    }
    out
}

pub async fn import(h: &Harness, csv: &str, check: bool) -> ImportReport {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("staff.csv");
    std::fs::File::create(&path)
        .and_then(|mut f| f.write_all(csv.as_bytes()))
        .unwrap();
    let args = ImportArgs {
        csv: Some(path),
        scim: None,
        source: Some("hr".into()),
        check,
        json: false,
        config: keycard::cli::ConfigArg { config: None },
    };
    run_import(&h.config, &h.journal, h.clock.clone(), &args, &mut Silent)
        .await
        .unwrap_or_else(|e| panic!("import: {e}"))
}

fn writes(h: &Harness) -> Vec<String> {
    h.sim
        .sim
        .calls()
        .iter()
        .filter(|c| c.method != "GET")
        .map(|c| format!("{} {}", c.method, c.path))
        .collect()
}

/// 1,000 rows, five of them bad: each bad row is reported by its line, every good row is a
/// person (members linked by exact address), nothing of a bad row is written, and nothing
/// is sent to the organization but reads. The same file again changes nothing.
pub async fn import_a_thousand_rows_with_bad_ones(db: TestDb) {
    let h = Harness::start_with(db, RULES, existing_org(300)).await;
    let mut lines: Vec<String> = staff_csv(1_000).lines().map(str::to_owned).collect();
    // Line numbers are 1-based with the header on line 1: data row i is on line i + 2.
    lines[11] = "E0010,not-an-address,Person 10,Sales,,L1".into(); // line 12
    lines[101] = ",nobody@acme.test,No Id,Sales,,L1".into(); // line 102
    lines[201] = "E0003,dup@acme.test,Dup,Sales,,L1".into(); // line 202: id of line 5
    lines[301] = "E0300,too,few".into(); // line 302
    lines[401] = "E0400,Staff0401@acme.test,Twice,Sales,,L1".into(); // line 402: line 403's address
    let csv = lines.join("\n") + "\n";
    let report = import(&h, &csv, false).await;
    let bad: Vec<u64> = report.errors.iter().map(|e| e.line).collect();
    assert_eq!(bad, vec![12, 102, 202, 302, 403], "{:#?}", report.errors);
    assert!(
        report.errors[0].error.contains("person.email"),
        "{:?}",
        report.errors[0]
    );
    assert!(
        report.errors[4].error.contains("line 402"),
        "{:?}",
        report.errors[4]
    );
    assert_eq!(report.rows, 1_000);
    assert_eq!(report.created, 995);
    // staff0000..0299 are members; rows 10, 100 and 200 (bad) are not imported, so not linked.
    assert_eq!(report.linked, 297);
    assert!(report.written && report.mirror_refreshed_at.is_some());
    assert!(writes(&h).is_empty(), "import wrote: {:?}", writes(&h));

    let mut conn = h.db().await;
    let people = conn.all_people().await.unwrap();
    assert_eq!(people.len(), 995);
    for id in ["E0010", "E0300", "E0401"] {
        assert!(
            !people.iter().any(|p| p.source_person_id == id),
            "{id} half-written"
        );
    }
    let e2 = people
        .iter()
        .find(|p| p.source_person_id == "E0002")
        .unwrap();
    assert_eq!(e2.email.as_deref(), Some("Staff0002@acme.test"));
    assert_eq!(e2.attributes["department"], "Engineering");
    assert_eq!(e2.attributes["groups"], json!(["eng", "all"]));
    assert_eq!(e2.attributes["attributes"]["level"], "L2");
    assert!(
        e2.anthropic_user_id.is_some(),
        "a member is linked by exact address"
    );
    assert!(
        people
            .iter()
            .filter(|p| p.anthropic_user_id.is_some())
            .all(|p| p.status == keycard::journal::PersonStatus::Active)
    );
    drop(conn);

    let again = import(&h, &csv, false).await;
    assert_eq!((again.created, again.updated, again.unchanged), (0, 0, 995));
    assert_eq!(again.linked, 0);
    assert_eq!(h.db().await.all_people().await.unwrap().len(), 995);

    // --check writes nothing.
    let before = h.event_count().await;
    let checked = import(&h, &staff_csv(1_200), true).await;
    assert!(!checked.written && checked.errors.is_empty());
    assert_eq!(h.event_count().await, before);
}

/// `mode = "observe"`: an imported organization is read, planned and journaled, and the
/// simulator's call log shows nothing but reads.
pub async fn observe_mode_writes_nothing(db: TestDb) {
    let config = format!("mode = \"observe\"\n{RULES}");
    let h = Harness::start_with(db, &config, existing_org(20)).await;
    assert!(h.worker.settings().dry_run);
    // 40 people: 20 members (some of whom the rules move), 20 who would be invited.
    import(&h, &staff_csv(40), false).await;
    h.settle().await;
    assert!(
        writes(&h).is_empty(),
        "observe mode wrote: {:?}",
        writes(&h)
    );
    assert!(h.calls("users.list") >= 1);
    let actions = {
        let filter = JournalFilter {
            limit: 1000,
            ..Default::default()
        };
        h.db().await.list_actions(&filter).await.unwrap().data
    };
    let invites = actions
        .iter()
        .filter(|a| a.kind.as_str() == "create_invite")
        .count();
    assert_eq!(invites, 20, "every joiner planned and journaled");
    assert!(
        actions
            .iter()
            .filter(|a| a.kind.as_str() != "needs_manual_action"
                && a.kind.as_str() != "wait_for_acceptance")
            .all(|a| a.status == ActionStatus::DryRun),
        "{:?}",
        actions
            .iter()
            .map(|a| (a.kind, a.status))
            .collect::<Vec<_>>()
    );
}

async fn get(h: &Harness, path: &str) -> (u16, Value, String) {
    let resp = h
        .http
        .get(format!("{}{path}", h.base))
        .bearer_auth(OPS_TOKEN)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let ct = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    (status, resp.json().await.unwrap_or(Value::Null), ct)
}

/// `GET /api/v1/people`: filters, and cursor paging that visits everyone once.
pub async fn people_are_listed_with_filters_and_cursors(db: TestDb) {
    let h = Harness::start_with(db, RULES, existing_org(30)).await;
    import(&h, &staff_csv(120), false).await;
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/people?limit=50&cursor={c}"),
            None => "/api/v1/people?limit=50".to_owned(),
        };
        let (status, page, _) = get(&h, &path).await;
        assert_eq!(status, 200, "{page}");
        for p in page["data"].as_array().unwrap() {
            seen.push(p["source_person_id"].as_str().unwrap().to_owned());
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    let mut unique = seen.clone();
    unique.sort();
    unique.dedup();
    assert_eq!((seen.len(), unique.len()), (120, 120));

    let (_, linked, _) = get(&h, "/api/v1/people?linked=true&limit=1000").await;
    assert_eq!(linked["data"].as_array().unwrap().len(), 30);
    let (_, one, _) = get(&h, "/api/v1/people?email=STAFF0007@acme.test").await;
    assert_eq!(one["data"][0]["source_person_id"], "E0007");
    let (_, some, _) = get(&h, "/api/v1/people?q=staff001&source=hr").await;
    assert_eq!(some["data"].as_array().unwrap().len(), 10);
    let (status, problem, ct) = get(&h, "/api/v1/people?status=gone").await;
    assert_eq!(status, 400);
    assert_eq!(ct, "application/problem+json");
    assert!(problem["detail"].as_str().unwrap().contains("active"));
    let (status, _, _) = get(&h, "/api/v1/people?cursor=%%%").await;
    assert_eq!(status, 400);
}

const CANDIDATE: &str = r#"
[[rules]]
name = "engineering"
when = 'person.department == "Engineering"'
org_role = "developer"
workspaces = { "Engineering" = "workspace_developer" }

[[rules]]
name = "sales"
when = 'person.department == "Sales"'
org_role = "developer"
workspaces = { "Sales" = "workspace_user", "Sandbox" = "workspace_user" }

[default]
org_role = "user"

[safety]
max_removals_per_hour = 4
"#;

/// `keycard plan --all` for a rule change, then `serve` with that config: person by person,
/// serve journals exactly the calls the preview listed, and the removal cap holds as many
/// people as the preview said it would.
pub async fn plan_all_matches_what_serve_then_does(db: TestDb) {
    let h = Harness::start_with(db, RULES, existing_org(20)).await;
    import(&h, &staff_csv(40), false).await;
    h.settle().await;
    let rules_start = RULES.find("[[rules]]").unwrap();
    let candidate_text = format!("{}{CANDIDATE}", &RULES[..rules_start]);
    let candidate = config(&candidate_text, &h.sim.base_url());

    let calls_before = h.sim.sim.calls().len();
    let preview = keycard::adoption::cli::run_plan_all(&candidate, &h.journal, h.clock.clone())
        .await
        .unwrap();
    assert_eq!(
        h.sim.sim.calls().len(),
        calls_before,
        "plan --all reads the mirror only"
    );
    assert!(preview.mirror_refreshed_at.is_some());
    assert_eq!(preview.people, 40);
    // 10 engineers lose Sandbox; 10 sales members change role and gain Sandbox; 10 sales
    // invitees get their invite re-sent with the new role.
    assert_eq!(preview.counts.get("remove_workspace_member"), Some(&10));
    assert_eq!(preview.counts.get("update_user_role"), Some(&10));
    assert_eq!(preview.counts.get("add_workspace_member"), Some(&10));
    assert_eq!(preview.counts.get("withdraw_invite"), Some(&10));
    assert_eq!(preview.counts.get("create_invite"), Some(&10));
    assert_eq!(preview.per_rule["sales"].get("update_user_role"), Some(&10));
    assert_eq!(preview.cap.people_losing_access, 10);
    assert_eq!(preview.cap.would_hold, 6);
    assert!(preview.exceeds_cap());
    let table = keycard::adoption::preview::table(&preview);
    assert!(table.contains("HOLD 6"), "{table}");

    let last_seq = h
        .actions_since(0)
        .await
        .iter()
        .map(|a| a.seq)
        .max()
        .unwrap_or(0);
    let app = keycard::app::Application::build_with_journal(
        candidate.clone(),
        h.clock.clone(),
        h.journal.clone(),
    )
    .await
    .unwrap();
    let serve = app.worker().clone();
    serve.drift_check().await.unwrap();
    serve.run_until_idle().await.unwrap();
    let done = h.actions_since(last_seq).await;

    let mut held = 0;
    for change in &preview.changes {
        let mut want: Vec<(String, Value)> = change
            .steps
            .iter()
            .filter(|p| p.step.is_call())
            .map(|p| (p.step.kind().as_str().to_owned(), p.step.params()))
            .collect();
        let mut got: Vec<(String, Value)> = done
            .iter()
            .filter(|a| a.person_id == change.person_id)
            .filter(|a| {
                !matches!(
                    a.kind.as_str(),
                    "needs_manual_action" | "wait_for_acceptance"
                )
            })
            .map(|a| (a.kind.as_str().to_owned(), a.params.clone()))
            .collect();
        want.sort_by_key(|w| w.1.to_string());
        got.sort_by_key(|w| w.1.to_string());
        assert_eq!(got, want, "{}", change.source_person_id);
        held += usize::from(
            done.iter()
                .any(|a| a.person_id == change.person_id && a.status == ActionStatus::Held),
        );
    }
    let changed: Vec<uuid::Uuid> = preview.changes.iter().map(|c| c.person_id).collect();
    assert!(
        done.iter()
            .filter(|a| a.kind.as_str() != "wait_for_acceptance")
            .all(|a| changed.contains(&a.person_id)),
        "serve changed someone the preview did not list"
    );
    assert_eq!(held as u64, preview.cap.would_hold);
}
