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

async fn report(h: &Harness, name: &str) -> Value {
    let (status, body, ct) = get(h, &format!("/api/v1/reports/{name}")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(ct, "application/json");
    assert!(body["mirror_refreshed_at"].is_string(), "{body}");
    body
}

fn rows_where<'a>(report: &'a Value, column: &str, value: &str) -> Vec<&'a Value> {
    report["rows"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r[column] == value)
        .collect()
}

const UNMANAGED_REMOVE: &str = r#"
[unmanaged]
policy = "remove"

[safety]
max_removals_per_hour = 1
protected_emails = ["staff0004@acme.test"]
"#;

/// Members and an invite nobody names are reported; under `remove` the invite is withdrawn
/// and the members are removed one per hour (the cap), while admins and a protected
/// address are never touched.
pub async fn unmanaged_members_are_reported_and_removed_within_the_cap(db: TestDb) {
    let mut seed = existing_org(6);
    seed.invites =
        serde_json::from_value(json!([{ "email": "stranger@acme.test", "role": "user" }])).unwrap();
    let config = format!("{RULES}{UNMANAGED_REMOVE}");
    let h = Harness::start_with(db, &config, seed).await;
    import(&h, &staff_csv(2), false).await;
    h.settle().await;

    let before = report(&h, "unmanaged").await;
    let ids = |r: &Value| -> Vec<String> {
        r["rows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x["email"].as_str().unwrap().to_owned())
            .collect()
    };
    let mut listed = ids(&before);
    listed.sort();
    assert_eq!(
        listed,
        vec![
            "boss@acme.test",
            "root@acme.test",
            "staff0002@acme.test",
            "staff0003@acme.test",
            "staff0004@acme.test",
            "staff0005@acme.test",
            "stranger@acme.test"
        ]
    );
    let root = rows_where(&before, "email", "root@acme.test");
    assert!(
        root[0]["action"]
            .as_str()
            .unwrap()
            .starts_with("never removed: holds the organization role admin")
    );
    let protected = rows_where(&before, "email", "staff0004@acme.test");
    assert!(
        protected[0]["action"]
            .as_str()
            .unwrap()
            .contains("protected_emails")
    );

    // The policy acts after the next full read of the organization.
    h.advance(86_401);
    h.settle().await;
    let remaining: Vec<&str> = [
        "staff0002@acme.test",
        "staff0003@acme.test",
        "staff0005@acme.test",
    ]
    .into_iter()
    .filter(|e| h.user(e).is_some())
    .collect();
    assert_eq!(
        remaining.len(),
        2,
        "the cap lets one removal through this hour"
    );
    for kept in [
        "root@acme.test",
        "boss@acme.test",
        "staff0004@acme.test",
        "staff0000@acme.test",
        "staff0001@acme.test",
    ] {
        assert!(h.user(kept).is_some(), "{kept} was removed");
    }
    assert!(
        h.invites("stranger@acme.test")
            .iter()
            .all(|i| i["status"] != "pending")
    );
    let held = h
        .actions_since(0)
        .await
        .into_iter()
        .filter(|a| a.status == ActionStatus::Held)
        .count();
    assert_eq!(held, 2);
    let after = report(&h, "unmanaged").await;
    for email in remaining {
        let row = rows_where(&after, "email", email);
        assert_eq!(row[0]["action"], "removal queued (through the removal cap)");
    }
}

const HYGIENE: &str = r#"
[offboarding]
api_keys = "keep"
remove_user = true

[hygiene]
expired_invite_days = 30
key_rotation_days = 90
"#;

/// Every report against a seeded organization, in JSON and CSV.
pub async fn reports_read_a_seeded_organization(db: TestDb) {
    let mut seed = existing_org(6);
    seed.invites =
        serde_json::from_value(json!([{ "email": "stranger@acme.test", "role": "user" }])).unwrap();
    seed.api_keys = serde_json::from_value(json!([
        { "name": "ci", "workspace": "Engineering", "created_by": "staff0000@acme.test" },
        { "name": "=HYPERLINK(\"http://x\")", "created_by": "staff0003@acme.test" },
        { "name": "leaver's", "created_by": "staff0001@acme.test" },
        { "name": "legacy" }
    ]))
    .unwrap();
    let config = format!("{RULES}{HYGIENE}");
    let h = Harness::start_with(db, &config, seed).await;
    import(
        &h,
        "id,email,department,status\nE0000,staff0000@acme.test,Engineering,active\nE0001,staff0001@acme.test,Sales,departed\n",
        false,
    )
    .await;
    h.settle().await;
    h.advance(100 * 86_400);
    h.settle().await;

    let access = report(&h, "access").await;
    let ada = rows_where(&access, "email", "staff0000@acme.test")[0];
    assert_eq!(ada["org_role"], "developer");
    assert_eq!(ada["org_role_rule"], "engineering");
    assert_eq!(ada["person"], "hr/E0000");
    assert_eq!(
        ada["workspaces"],
        "Engineering:workspace_developer; Sandbox:workspace_user"
    );
    let stranger = rows_where(&access, "email", "staff0002@acme.test")[0];
    assert_eq!(stranger["org_role_rule"], "(no person: unmanaged)");
    assert!(
        rows_where(&access, "email", "staff0001@acme.test").is_empty(),
        "the leaver was removed"
    );

    let invites = report(&h, "invites").await;
    let old = rows_where(&invites, "email", "stranger@acme.test")[0];
    assert_eq!(old["status"], "expired");
    assert!(
        old["cleanup"]
            .as_str()
            .unwrap()
            .contains("only pending invites"),
        "{old}"
    );

    let workspaces = report(&h, "workspaces").await;
    assert_eq!(
        rows_where(&workspaces, "name", "Research")[0]["unused"],
        true
    );
    assert_eq!(
        rows_where(&workspaces, "name", "Engineering")[0]["unused"],
        false
    );

    let keys = report(&h, "keys").await;
    assert_eq!(
        rows_where(&keys, "name", "ci")[0]["creator_state"],
        "current person"
    );
    assert_eq!(
        rows_where(&keys, "name", "leaver's")[0]["creator_state"],
        "departed person"
    );
    assert_eq!(
        rows_where(&keys, "name", "legacy")[0]["creator_state"],
        "none recorded"
    );
    assert_eq!(
        rows_where(&keys, "name", "=HYPERLINK(\"http://x\")")[0]["creator_state"],
        "member no person names"
    );
    assert!(
        keys["rows"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["rotation_due"] == true)
    );

    // A membership removed by hand: the drift report shows it until Keycard restores it.
    let ada_id = h.user("staff0000@acme.test").unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    h.remove_member_by_hand("Sandbox", &ada_id).await;
    h.advance(86_401);
    h.worker.sweep().await.unwrap();
    let drift = report(&h, "drift").await;
    let rows = rows_where(&drift, "person", "hr/E0000");
    assert_eq!(rows.len(), 1, "{drift}");
    assert_eq!(rows[0]["change"], "add to Sandbox as workspace_user");
    h.settle().await;
    let drift = report(&h, "drift").await;
    assert!(
        rows_where(&drift, "person", "hr/E0000").is_empty(),
        "{drift}"
    );

    let unmanaged = report(&h, "unmanaged").await;
    assert_eq!(
        unmanaged["rows"].as_array().unwrap().len(),
        6,
        "{unmanaged}"
    );

    // CSV: the columns, when the mirror was read on every row, formulas defused.
    let resp = h
        .http
        .get(format!("{}/api/v1/reports/keys?format=csv", h.base))
        .bearer_auth(OPS_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.headers().contains_key("x-keycard-mirror-refreshed-at"));
    let text = resp.text().await.unwrap();
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let header: Vec<String> = reader
        .headers()
        .unwrap()
        .iter()
        .map(str::to_owned)
        .collect();
    assert_eq!(
        header.last().map(String::as_str),
        Some("mirror_refreshed_at")
    );
    let names: Vec<String> = reader.records().map(|r| r.unwrap()[1].to_owned()).collect();
    assert!(
        names.contains(&"'=HYPERLINK(\"http://x\")".to_owned()),
        "{names:?}"
    );
    let (status, problem, ct) = get(&h, "/api/v1/reports/nope").await;
    assert_eq!(
        (status, ct.as_str()),
        (404, "application/problem+json"),
        "{problem}"
    );
}

/// An organization whose platform has no workspaces or API keys (Claude Enterprise): the
/// read records what cannot be managed instead of failing, reports say so, and the lists
/// are not asked for again until the next full read.
pub async fn an_organization_without_workspaces_is_read_and_reported(db: TestDb) {
    let mut seed = existing_org(3);
    seed.organization = serde_json::from_value(json!({ "kind": "enterprise" })).unwrap();
    seed.workspaces = Vec::new();
    let h = Harness::start_with(db, RULES, seed).await;
    import(&h, &staff_csv(3), false).await;
    h.settle().await;
    let limits = h.db().await.org_limits().await.unwrap();
    let features: Vec<&str> = limits.iter().map(|l| l.feature.as_str()).collect();
    assert_eq!(features, vec!["api_keys", "workspaces"]);
    let lists = h.requests("workspaces.list");
    h.advance(3_600);
    h.settle().await;
    assert_eq!(
        h.requests("workspaces.list"),
        lists,
        "not asked again before the next full read"
    );
    let access = report(&h, "access").await;
    let notes = access["notes"].to_string();
    assert!(notes.contains("cannot manage workspaces"), "{notes}");
    assert!(notes.contains("cannot manage api_keys"), "{notes}");
}

/// Claude Platform on AWS has workspaces but no members, invites or keys (admin-api.md §9):
/// the read records what is missing, a joiner becomes one manual note instead of calls that
/// fail, and nothing is retried.
pub async fn an_organization_on_aws_degrades_to_manual_notes_and_retries_nothing(db: TestDb) {
    let mut seed = existing_org(0);
    seed.organization = serde_json::from_value(json!({ "kind": "aws" })).unwrap();
    let h = Harness::start_with(db, RULES, seed).await;
    h.settle().await;
    let limits = h.db().await.org_limits().await.unwrap();
    let features: Vec<&str> = limits.iter().map(|l| l.feature.as_str()).collect();
    assert_eq!(
        features,
        vec!["api_keys", "invites", "users", "workspace_members"]
    );

    let (status, body) = h
        .deliver(
            "msg_aws_hire",
            hire("E1", "ada@acme.test", "Engineering", t0()),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    h.settle().await;
    let actions = h.actions("E1").await;
    let manual: Vec<_> = actions
        .iter()
        .filter(|a| a.status == ActionStatus::NeedsManualAction)
        .collect();
    assert_eq!(manual.len(), 1, "{actions:?}");
    let note = manual[0].params.to_string();
    assert!(note.contains("invites endpoints"), "{note}");
    assert!(note.contains("invite ada@acme.test"), "{note}");
    assert_eq!(h.calls("invites.create"), 0, "no call that cannot succeed");

    let before = h.sim.sim.calls().len();
    h.advance(6 * 3_600);
    h.settle().await;
    let writes = h
        .sim
        .sim
        .calls()
        .iter()
        .skip(before)
        .filter(|c| c.method != "GET")
        .count();
    assert_eq!(writes, 0, "nothing retried");
    assert_eq!(h.actions("E1").await.len(), actions.len(), "no new actions");
    let access = report(&h, "access").await;
    let notes = access["notes"].to_string();
    assert!(notes.contains("cannot manage invites"), "{notes}");
}

/// `[hygiene] archive_unused_workspaces`: only workspaces with no members, no active keys and
/// no rule, older than `unused_workspace_days`, are archived — each through the removal cap,
/// the one beyond it held until an operator releases it.
pub async fn unused_workspaces_are_archived_through_the_cap_when_the_config_says_so(db: TestDb) {
    let config = format!(
        "{RULES}\n[hygiene]\narchive_unused_workspaces = true\nunused_workspace_days = 1\n\n[safety]\nmax_removals_per_hour = 1\n"
    );
    let seed: Seed = serde_json::from_value(json!({
        "admin_keys": [ADMIN_KEY],
        "users": [
            { "email": "root@acme.test", "name": "Root", "role": "admin" },
            { "email": "dev@acme.test", "name": "Dev", "role": "developer" }
        ],
        "workspaces": [
            { "name": "Engineering" }, { "name": "Sandbox" }, { "name": "Sales" },
            { "name": "Research" },
            { "name": "Old Data", "members": [ { "email": "dev@acme.test", "workspace_role": "workspace_user" } ] },
            { "name": "Legacy" }, { "name": "Scratch" }
        ],
        "api_keys": [ { "name": "ci", "workspace": "Research", "created_by": "dev@acme.test", "status": "active" } ]
    }))
    .unwrap();
    let h = Harness::start_with(db, &config, seed).await;
    let archived = |h: &Harness| -> Vec<String> {
        let mut names: Vec<String> = h.state()["workspaces"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|w| !w["archived_at"].is_null())
            .filter_map(|w| w["name"].as_str().map(str::to_owned))
            .collect();
        names.sort();
        names
    };

    h.settle().await;
    assert_eq!(
        h.calls("workspaces.archive"),
        0,
        "younger than a day: never unused yet"
    );

    h.advance(2 * 86_400);
    h.settle().await;
    let first = archived(&h);
    assert_eq!(
        first.len(),
        1,
        "the cap admits one archive an hour: {first:?}"
    );
    assert!(first[0] == "Legacy" || first[0] == "Scratch", "{first:?}");
    let conn_actions = h.actions_since(0).await;
    let archives: Vec<_> = conn_actions
        .iter()
        .filter(|a| a.kind.as_str() == "archive_workspace")
        .collect();
    assert_eq!(archives.len(), 2, "{archives:?}");
    let held: Vec<_> = archives
        .iter()
        .filter(|a| a.status == ActionStatus::Held)
        .collect();
    assert_eq!(held.len(), 1, "{archives:?}");
    let report = report(&h, "workspaces").await;
    assert!(report.to_string().contains("being archived"), "{report}");

    let resp = h
        .http
        .post(format!("{}/api/v1/actions/{}/release", h.base, held[0].id))
        .bearer_auth(OPS_TOKEN)
        .json(&json!({ "reason": "both are leftovers of the 2025 pilot" }))
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.status().as_u16(),
        200,
        "{}",
        resp.text().await.unwrap_or_default()
    );
    h.settle().await;
    assert_eq!(
        archived(&h),
        vec!["Legacy".to_owned(), "Scratch".to_owned()]
    );
    assert_eq!(h.calls("workspaces.archive"), 2, "each archived once");

    // Nothing else, ever: rule-named, used by a member or by a key.
    h.advance(3 * 86_400);
    h.settle().await;
    assert_eq!(h.calls("workspaces.archive"), 2);
}

/// An archive that failed is retried; a workspace archived by hand meanwhile is read again
/// before the retry (the mirror's copy is older than `verify_after_secs`) and not archived
/// twice.
pub async fn a_workspace_archived_by_hand_before_a_retry_is_not_archived_again(db: TestDb) {
    let config = format!(
        "{RULES}\n[hygiene]\narchive_unused_workspaces = true\nunused_workspace_days = 1\n"
    );
    let h = Harness::start_with(db, &config, seed()).await;
    h.settle().await;
    // Research is named by no rule and used by nobody. Its archive fails once (every
    // HTTP try of the first attempt).
    h.inject(keycard::admin_sim::Fault {
        route: "workspaces.archive".into(),
        status: 500,
        count: 4,
        apply: false,
        retry_after: None,
    });
    h.advance(2 * 86_400);
    h.settle().await;
    let archive = || async {
        h.actions_since(0)
            .await
            .into_iter()
            .filter(|a| a.kind.as_str() == "archive_workspace")
            .collect::<Vec<_>>()
    };
    let first = archive().await;
    assert_eq!(first.len(), 1, "{first:?}");
    assert_eq!(first[0].status, ActionStatus::Retrying, "{first:?}");
    let research = h.workspace_id("Research");
    h.by_hand(
        reqwest::Method::POST,
        &format!("/v1/organizations/workspaces/{research}/archive"),
        None,
    )
    .await;
    let archives = h.requests("workspaces.archive");
    h.advance(600);
    h.settle().await;
    assert_eq!(
        h.requests("workspaces.archive"),
        archives,
        "found archived, not archived again"
    );
    let after = archive().await;
    assert!(
        after.iter().all(|a| a.status != ActionStatus::Failed),
        "{after:?}"
    );
}
