//! `keycard import --scim`: a journal started after the IdP had already pushed its Users
//! takes them from the SCIM store — people created with the right status, existing members
//! linked by exact address — without a single Admin API write; a second import changes
//! nothing.

use keycard::adoption::cli::{ImportArgs, run_import};
use keycard::adoption::progress::Silent;
use keycard::clock::Clock as _;
use keycard::journal::{PersonStatus, ScimRecord};
use serde_json::json;

use super::harness::{Harness, TestDb, seed};
use super::{config, okta_user};

fn args(scim: &str, check: bool) -> ImportArgs {
    ImportArgs {
        csv: None,
        scim: Some(scim.into()),
        source: None,
        check,
        json: false,
        config: keycard::cli::ConfigArg { config: None },
    }
}

fn writes(h: &Harness) -> usize {
    h.sim
        .sim
        .calls()
        .iter()
        .filter(|c| c.method != "GET")
        .count()
}

pub async fn import_from_a_connected_scim_source_writes_nothing_to_the_organization(db: TestDb) {
    let dir = tempfile::tempdir().unwrap();
    let tf = dir.path().join("token");
    std::fs::write(&tf, super::TOKEN).unwrap();
    let mut seed = seed();
    seed.users.push(
        serde_json::from_value(json!({ "email": "ada@acme.test", "name": "Ada", "role": "user" }))
            .unwrap(),
    );
    let h = Harness::start_with(db, &config(&tf), seed).await;
    h.settle().await;
    let before = writes(&h);

    // What the IdP pushed before this journal existed: stored Users, no people.
    let now = h.clock.now();
    let users = [
        ("u-ada", "ada@acme.test", "Engineering", true),
        ("u-bob", "bob@acme.test", "Sales", true),
        ("u-cy", "cy@acme.test", "Sales", false),
    ];
    let mut tx = h.journal.begin().await.unwrap();
    for (id, email, dept, active) in users {
        let mut resource = okta_user(email, dept, active);
        resource["id"] = json!(id);
        tx.scim_create(
            &ScimRecord {
                source: "entra".into(),
                resource_type: "User".into(),
                id: id.into(),
                name: email.into(),
                external_id: None,
                resource,
                version: 1,
                created_at: now,
                updated_at: now,
            },
            None,
        )
        .await
        .unwrap();
    }
    tx.commit().await.unwrap();

    let checked = run_import(
        &h.config,
        &h.journal,
        h.clock.clone(),
        &args("entra", true),
        &mut Silent,
    )
    .await
    .unwrap();
    assert_eq!((checked.rows, checked.written), (3, false), "{checked:?}");
    assert!(
        h.db().await.all_people().await.unwrap().is_empty(),
        "--check writes nothing"
    );

    let report = run_import(
        &h.config,
        &h.journal,
        h.clock.clone(),
        &args("entra", false),
        &mut Silent,
    )
    .await
    .unwrap();
    assert_eq!(
        (report.rows, report.created, report.linked),
        (3, 3, 1),
        "{report:?}"
    );
    assert!(report.errors.is_empty(), "{report:?}");
    let people = h.db().await.all_people().await.unwrap();
    let status = |email: &str| {
        people
            .iter()
            .find(|p| p.email.as_deref() == Some(email))
            .map(|p| (p.source.clone(), p.status, p.anthropic_user_id.is_some()))
    };
    assert_eq!(
        status("ada@acme.test"),
        Some(("entra".into(), PersonStatus::Active, true))
    );
    assert_eq!(
        status("bob@acme.test"),
        Some(("entra".into(), PersonStatus::Active, false))
    );
    // This source says `active: false` means a departure.
    assert_eq!(
        status("cy@acme.test"),
        Some(("entra".into(), PersonStatus::Departed, false))
    );
    assert_eq!(
        writes(&h),
        before,
        "the import itself writes nothing to the organization"
    );

    let again = run_import(
        &h.config,
        &h.journal,
        h.clock.clone(),
        &args("entra", false),
        &mut Silent,
    )
    .await
    .unwrap();
    assert_eq!(
        (again.created, again.updated, again.unchanged),
        (0, 0, 3),
        "{again:?}"
    );

    // Only SCIM sources can be imported from, by name.
    for name in ["nope", "hr"] {
        let err = run_import(
            &h.config,
            &h.journal,
            h.clock.clone(),
            &args(name, true),
            &mut Silent,
        )
        .await
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
        assert!(
            err.contains(&format!("no SCIM source named '{name}'")),
            "{err}"
        );
    }
}
