//! The loader's tests. The pure half: mirror rows and journal people into `Facts`, then
//! `inputs` for one person. The queries that fill `Facts` (`loaders` below): against an
//! in-memory SQLite journal, and through every pipeline test in `tests/it`.

use chrono::TimeZone as _;
use serde_json::{Value, json};

use super::*;
use crate::journal::EmailChange;
use crate::rules::RuleConfig;

fn at(secs: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_800_000_000 + secs, 0)
        .single()
        .unwrap_or_default()
}

fn row(kind: &str, id: &str, user_id: Option<&str>, data: Value) -> MirrorRow {
    MirrorRow {
        kind: kind.to_owned(),
        id: id.to_owned(),
        email_key: None,
        user_id: user_id.map(str::to_owned),
        workspace_id: None,
        status: None,
        data,
        seen_at: at(0),
        gone: false,
    }
}

fn user(id: &str, email: &str) -> MirrorRow {
    row(
        "user",
        id,
        None,
        json!({
            "id": id, "type": "user", "email": email, "name": "x", "role": "user", "added_at": at(0),
        }),
    )
}

fn invite(id: &str, email: &str, status: &str, invited: i64, expires: i64) -> MirrorRow {
    row(
        "invite",
        id,
        None,
        json!({
            "id": id, "type": "invite", "email": email, "role": "user", "status": status,
            "invited_at": at(invited), "expires_at": at(expires), "accepted_at": null,
            "rbac_group_ids": [],
        }),
    )
}

fn member_of(user_id: &str, ws: &str) -> MirrorRow {
    row(
        "workspace_member",
        &format!("{ws}:{user_id}"),
        Some(user_id),
        json!({
            "type": "workspace_member", "user_id": user_id, "workspace_id": ws,
            "workspace_role": "workspace_user",
        }),
    )
}

fn key(id: &str, user_id: &str, ws: &str, status: &str) -> MirrorRow {
    row(
        "api_key",
        id,
        Some(user_id),
        json!({
            "id": id, "type": "api_key", "name": id, "created_at": at(0), "status": status,
            "created_by": { "id": user_id, "type": "user" }, "workspace_id": ws,
        }),
    )
}

fn workspace(id: &str, name: &str, archived: bool) -> MirrorRow {
    row(
        "workspace",
        id,
        None,
        json!({
            "id": id, "type": "workspace", "name": name, "created_at": at(0),
            "archived_at": if archived { json!(at(1)) } else { Value::Null },
        }),
    )
}

fn person(id: u128, status: PersonStatus, email: Option<&str>) -> PersonRow {
    PersonRow {
        id: Uuid::from_u128(id),
        source: "hr".to_owned(),
        source_person_id: format!("E{id}"),
        email: email.map(str::to_owned),
        email_history: sqlx::types::Json(
            email
                .map(|e| EmailChange {
                    email: e.to_owned(),
                    since: at(0),
                    event_id: Uuid::nil(),
                })
                .into_iter()
                .collect(),
        ),
        attributes: json!({ "department": "Engineering" }),
        status,
        last_order_key: None,
        last_event_id: None,
        anthropic_user_id: None,
        desired: None,
        created_at: at(id as i64),
        updated_at: at(0),
    }
}

fn rules() -> RuleSet {
    RuleSet::compile(
        &[RuleConfig {
            name: "eng".to_owned(),
            when: r#"person.department == "Engineering""#.to_owned(),
            org_role: Some("developer".to_owned()),
            workspaces: BTreeMap::from([("Eng".to_owned(), "workspace_user".to_owned())]),
            priority: 0,
        }],
        None,
    )
    .unwrap_or_else(|e| panic!("rules: {e:?}"))
}

/// An organization with Eng (managed), Old (archived) and Misc, one member in Eng with
/// an active and an inactive key, invites in every state for bo@x.com.
fn facts() -> Facts {
    let mut f = Facts {
        now: Some(at(100)),
        organization_known: true,
        cap: 3,
        ..Facts::default()
    };
    f.add_mirror(&[
        workspace("wrkspc_eng", "Eng", false),
        workspace("wrkspc_old", "Old", true),
        workspace("wrkspc_misc", "Misc", false),
        user("user_1", "Ada@X.com"),
        // The same account read twice (pages overlapping) is one account.
        user("user_1", "ada@x.com"),
        member_of("user_1", "wrkspc_eng"),
        member_of("user_1", "wrkspc_eng"),
        member_of("user_1", "wrkspc_misc"),
        key("key_live", "user_1", "wrkspc_eng", "active"),
        key("key_off", "user_1", "wrkspc_eng", "inactive"),
        key("key_off2", "user_1", "wrkspc_eng", "inactive"),
        invite("inv_old", "bo@x.com", "pending", 0, 200),
        invite("inv_new", "BO@x.com", "pending", 10, 200),
        invite("inv_new", "bo@x.com", "pending", 10, 200),
        invite("inv_expired", "bo@x.com", "pending", 20, 50),
        invite("inv_done", "bo@x.com", "accepted", 30, 200),
        row("something_else", "x", None, json!({})),
    ]);
    f
}

#[test]
fn the_mirror_is_read_into_workspaces_accounts_memberships_and_keys() {
    let f = facts();
    assert_eq!(
        f.workspace_ids(),
        &BTreeMap::from([
            ("Eng".to_owned(), "wrkspc_eng".to_owned()),
            ("Misc".to_owned(), "wrkspc_misc".to_owned()),
        ]),
        "archived workspaces are not there to be granted"
    );
    assert_eq!(f.users_by_email.get("ada@x.com").map(Vec::len), Some(1));
    assert_eq!(
        f.memberships
            .get("user_1")
            .into_iter()
            .flatten()
            .map(|m| m.workspace_id.as_str())
            .collect::<Vec<_>>(),
        ["wrkspc_eng", "wrkspc_misc"],
        "a membership read twice is one membership"
    );
    assert_eq!(f.keys.get("user_1").map(Vec::len), Some(3));
    assert_eq!(f.invites_by_email.get("bo@x.com").map(Vec::len), Some(4));
    let eng = f.workspace_use("wrkspc_eng", &BTreeMap::new());
    assert_eq!(
        (eng.members, eng.active_keys),
        (1, 1),
        "only active keys count"
    );
    let old = f.workspace_use("wrkspc_old", &BTreeMap::new());
    assert!(old.archived && old.name.as_deref() == Some("Old"));
    assert!(!eng.named_by_rules);
    // Named by id (the rules' name may differ from the organization's now) or by name.
    let named = BTreeMap::from([("Eng (old name)".to_owned(), Some("wrkspc_eng".to_owned()))]);
    assert!(f.workspace_use("wrkspc_eng", &named).named_by_rules);
    let by_name = BTreeMap::from([("Old".to_owned(), None)]);
    assert!(f.workspace_use("wrkspc_old", &by_name).named_by_rules);
}

#[test]
fn the_newest_live_pending_invite_is_the_one_observed() {
    let f = facts();
    let i = inputs(
        &person(2, PersonStatus::Active, Some("Bo@X.com")),
        &f,
        &rules(),
    );
    assert_eq!(
        i.observed.pending_invite.map(|i| i.id).as_deref(),
        Some("inv_new")
    );
    assert_eq!(i.observed.member, None);
    // At the instant it expires, an invite is no longer pending.
    let mut f = facts();
    f.now = Some(at(200));
    let i = inputs(
        &person(2, PersonStatus::Active, Some("bo@x.com")),
        &f,
        &rules(),
    );
    assert_eq!(i.observed.pending_invite, None);
    // Without a clock nothing is known to be pending.
    f.now = None;
    let i = inputs(
        &person(2, PersonStatus::Active, Some("bo@x.com")),
        &f,
        &rules(),
    );
    assert_eq!(i.observed.pending_invite, None);
}

#[test]
fn an_account_is_found_by_link_or_address_with_its_managed_memberships() {
    let f = facts();
    // By address (any case): memberships in managed workspaces only; keys only when
    // the person is leaving.
    let i = inputs(
        &person(1, PersonStatus::Active, Some("ADA@x.com")),
        &f,
        &rules(),
    );
    assert_eq!(
        i.observed.member.as_ref().map(|m| m.id.as_str()),
        Some("user_1")
    );
    assert_eq!(
        i.observed.memberships.keys().collect::<Vec<_>>(),
        ["wrkspc_eng"]
    );
    assert!(i.observed.api_keys.is_empty());
    assert_eq!(i.managed.get("Eng"), Some(&Some("wrkspc_eng".to_owned())));

    // By link, after the address changed at the source; leaving: active keys read.
    let mut p = person(1, PersonStatus::Departed, Some("ada.new@x.com"));
    p.anthropic_user_id = Some("user_1".to_owned());
    let i = inputs(&p, &f, &rules());
    assert_eq!(
        i.observed.member.as_ref().map(|m| m.id.as_str()),
        Some("user_1")
    );
    assert_eq!(
        i.observed
            .api_keys
            .iter()
            .map(|k| k.id.as_str())
            .collect::<Vec<_>>(),
        ["key_live"]
    );

    // A leaver whose linked account is gone is not matched to whoever has the address.
    let mut p = person(1, PersonStatus::Departed, Some("ada@x.com"));
    p.anthropic_user_id = Some("user_gone".to_owned());
    assert_eq!(inputs(&p, &f, &rules()).observed.member, None);
    // An active person whose link is stale is matched by address again.
    let mut p = person(1, PersonStatus::Active, Some("ada@x.com"));
    p.anthropic_user_id = Some("user_gone".to_owned());
    assert!(inputs(&p, &f, &rules()).observed.member.is_some());
}

#[test]
fn an_earlier_address_finds_the_account_and_its_stale_invites() {
    let f = facts();
    let mut p = person(1, PersonStatus::Active, Some("ada.new@x.com"));
    p.email_history.0.insert(
        0,
        EmailChange {
            email: "ada@x.com".to_owned(),
            since: at(0),
            event_id: Uuid::nil(),
        },
    );
    let i = inputs(&p, &f, &rules());
    assert_eq!(
        i.observed.member.as_ref().map(|m| m.id.as_str()),
        Some("user_1")
    );

    let mut p = person(2, PersonStatus::Active, Some("bo.new@x.com"));
    p.email_history.0.insert(
        0,
        EmailChange {
            email: "bo@x.com".to_owned(),
            since: at(0),
            event_id: Uuid::nil(),
        },
    );
    let i = inputs(&p, &f, &rules());
    assert_eq!(
        i.observed
            .stale_invites
            .iter()
            .map(|i| i.id.as_str())
            .collect::<Vec<_>>(),
        ["inv_new"]
    );
}

#[test]
fn without_a_credential_nothing_is_observed_and_every_workspace_is_assumed() {
    let mut f = facts();
    f.organization_known = false;
    let i = inputs(
        &person(1, PersonStatus::Active, Some("ada@x.com")),
        &f,
        &rules(),
    );
    assert_eq!(i.observed.member, None);
    assert_eq!(i.observed.pending_invite, None);
    assert_eq!(i.managed.get("Eng"), Some(&Some("<Eng>".to_owned())));
}

#[test]
fn holders_and_linked_people_come_from_the_journal() {
    let mut f = facts();
    let first = person(7, PersonStatus::Active, Some("ada@x.com"));
    let gone = person(3, PersonStatus::Departed, Some("ada@x.com"));
    let fresh = person(4, PersonStatus::New, Some("ada@x.com"));
    let mut owner = person(5, PersonStatus::Active, Some("other@x.com"));
    owner.anthropic_user_id = Some("user_1".to_owned());
    f.add_holders(vec![
        first.clone(),
        fresh,
        person(6, PersonStatus::Active, None),
    ]);
    f.add_linked(vec![owner.clone(), person(8, PersonStatus::Active, None)]);

    let me = person(9, PersonStatus::Active, Some("Ada@x.com"));
    let i = inputs(&me, &f, &rules());
    assert_eq!(i.address_holder.map(|p| p.id), Some(first.id));
    assert_eq!(i.account_owner.map(|p| p.id), Some(owner.id));
    assert_eq!(i.cap.cap, 3);

    // Someone departed holding the address too takes nothing from anyone.
    let mut only_gone = facts();
    only_gone.add_holders(vec![gone]);
    let i = inputs(&me, &only_gone, &rules());
    assert!(i.address_holder.is_none());
    let leaver = person(10, PersonStatus::Departed, Some("ada@x.com"));
    let i = inputs(&leaver, &only_gone, &rules());
    assert_eq!(i.person.email.as_deref(), Some("ada@x.com"));

    // A leaver whose address is now someone else's does not look anything up by it.
    let leaver = person(10, PersonStatus::Departed, Some("ada@x.com"));
    let i = inputs(&leaver, &f, &rules());
    assert_eq!(i.person.email, None);
    assert!(i.person.email_history.0.is_empty());
    assert_eq!(i.observed.member, None);
}

#[test]
fn keys_are_read_for_anyone_losing_access_and_stand_ins_get_their_workspace() {
    let f = facts();
    // Active, but no rule grants a role: leaving, so the keys are read.
    let mut p = person(1, PersonStatus::Active, Some("ada@x.com"));
    p.attributes = json!({ "department": "Sales" });
    let i = inputs(&p, &f, &rules());
    assert_eq!(i.observed.api_keys.len(), 1);
    assert!(i.workspace.is_none());

    let mut ws = person(11, PersonStatus::Departed, None);
    ws.source = crate::planner::WORKSPACE_STAND_IN.to_owned();
    ws.source_person_id = "wrkspc_old".to_owned();
    let i = inputs(&ws, &f, &rules());
    assert_eq!(
        i.workspace.map(|w| (w.name, w.archived)),
        Some((Some("Old".to_owned()), true))
    );
}

#[test]
fn every_address_a_person_had_is_looked_up_once() {
    let mut p = person(1, PersonStatus::Active, Some("Ada@x.com"));
    p.email_history.0.push(EmailChange {
        email: "old@x.com".to_owned(),
        since: at(1),
        event_id: Uuid::nil(),
    });
    assert_eq!(all_addresses(&p), ["ada@x.com", "old@x.com"]);
}

/// The loaders themselves, against a real (in-memory SQLite) journal: what
/// `Facts::for_person` and `Facts::for_everyone` read must give the same inputs as the
/// rows put there, and each other.
mod loaders {
    use super::*;
    use crate::journal::{ActionKind, ActionStatus, Journal, LimitRow, MirrorObject, Tx};

    /// A test row as the mirror's refresh would store it: decoded into its Admin API
    /// type, then through the same `crate::mirror` conversion the refresh uses.
    fn object(r: &MirrorRow) -> MirrorObject {
        use crate::mirror::{
            invite_object, key_object, member_object, user_object, workspace_object,
        };
        fn typed<T: serde::de::DeserializeOwned>(r: &MirrorRow) -> T {
            serde_json::from_value(r.data.clone())
                .unwrap_or_else(|e| panic!("{} {}: {e}", r.kind, r.id))
        }
        match r.kind.as_str() {
            "user" => user_object(&typed(r)),
            "invite" => invite_object(&typed(r)),
            "workspace" => workspace_object(&typed(r)),
            "workspace_member" => member_object(&typed(r)),
            _ => key_object(&typed(r)),
        }
    }

    async fn put_person(tx: &mut Tx, p: &PersonRow) {
        tx.insert_person(p).await.unwrap();
    }

    /// Ada is linked to her account (Eng member, one active key); Bo has a pending
    /// invite; Cy departed but her account is still there; Di holds Cy's old address;
    /// the Eng workspace has a stand-in; another member of Eng is nobody Keycard knows.
    async fn seeded() -> (Journal, Vec<PersonRow>) {
        let journal = Journal::empty().await.unwrap();
        let mut ada = person(1, PersonStatus::Active, Some("ada@x.com"));
        ada.anthropic_user_id = Some("user_ada".to_owned());
        let bo = person(2, PersonStatus::Active, Some("bo@x.com"));
        let cy = person(3, PersonStatus::Departed, Some("cy@x.com"));
        let di = person(4, PersonStatus::Active, Some("CY@x.com"));
        let mut stand_in = person(5, PersonStatus::Active, None);
        stand_in.source = crate::planner::WORKSPACE_STAND_IN.to_owned();
        stand_in.source_person_id = "wrkspc_eng".to_owned();
        let people = vec![ada, bo, cy, di, stand_in];
        let mut tx = journal.begin().await.unwrap();
        for p in &people {
            put_person(&mut tx, p).await;
        }
        let rows = [
            workspace("wrkspc_eng", "Eng", false),
            workspace("wrkspc_old", "Old", true),
            user("user_ada", "ada@x.com"),
            user("user_cy", "cy@x.com"),
            user("user_zed", "zed@x.com"),
            invite("invite_bo", "bo@x.com", "pending", 10, 10_000),
            member_of("user_ada", "wrkspc_eng"),
            member_of("user_zed", "wrkspc_eng"),
            key("key_ada", "user_ada", "wrkspc_eng", "active"),
            key("key_zed", "user_zed", "wrkspc_eng", "active"),
        ];
        let objects: Vec<MirrorObject> = rows.iter().map(object).collect();
        tx.mirror_put(&objects, at(0)).await.unwrap();
        tx.record_limit(&LimitRow {
            feature: "rbac_groups".to_owned(),
            reason: "not on this plan".to_owned(),
            http_status: Some(403),
            request_id: None,
            detected_at: at(0),
        })
        .await
        .unwrap();
        // The removal cap's hour (now is at(100)): Cy lost her account half an hour ago,
        // Bo a key two hours ago; Di was released by an operator (not run yet); Ada's
        // release ran half an hour ago and was found unneeded, Bo's two hours ago.
        let half_hour_ago = at(100 - 1800);
        let two_hours_ago = at(100 - 7200);
        for (who, kind, status, started, updated, outcome) in [
            (
                3,
                ActionKind::RemoveUser,
                ActionStatus::Succeeded,
                Some(half_hour_ago),
                half_hour_ago,
                None,
            ),
            (
                2,
                ActionKind::DeactivateApiKey,
                ActionStatus::Succeeded,
                Some(two_hours_ago),
                two_hours_ago,
                None,
            ),
            (
                4,
                ActionKind::RemoveUser,
                ActionStatus::Released,
                None,
                half_hour_ago,
                None,
            ),
            (
                1,
                ActionKind::RemoveUser,
                ActionStatus::Superseded,
                None,
                half_hour_ago,
                Some("released, then not needed"),
            ),
            (
                2,
                ActionKind::RemoveUser,
                ActionStatus::Superseded,
                None,
                two_hours_ago,
                Some("released, then not needed"),
            ),
        ] {
            tx.put_action_as(
                Uuid::from_u128(who),
                kind,
                status,
                started,
                updated,
                outcome,
            )
            .await
            .unwrap();
        }
        tx.commit().await.unwrap();
        (journal, people)
    }

    async fn one(journal: &Journal, p: &PersonRow, known: bool) -> Inputs {
        let mut tx = journal.begin().await.unwrap();
        let facts = Facts::for_person(&mut tx, p, known, 3, at(100))
            .await
            .unwrap();
        inputs(p, &facts, &rules())
    }

    /// What the planner decides on, as text: equal inputs plan alike.
    fn seen(i: &Inputs) -> String {
        format!(
            "member {:?} invite {:?} memberships {:?} keys {:?} holder {:?} owner {:?} managed {:?} cap {:?} workspace {:?} unsupported {:?} email {:?} unfinished {:?}",
            i.observed.member.as_ref().map(|m| &m.id),
            i.observed.pending_invite.as_ref().map(|v| &v.id),
            i.observed.memberships,
            i.observed
                .api_keys
                .iter()
                .map(|k| &k.id)
                .collect::<Vec<_>>(),
            i.address_holder.as_ref().map(|p| p.id),
            i.account_owner.as_ref().map(|p| p.id),
            i.managed,
            (i.cap.cap, i.cap.others_this_hour, i.cap.already_admitted),
            i.workspace,
            i.unsupported,
            i.person.email,
            i.unfinished
                .iter()
                .map(|a| (a.kind, a.status))
                .collect::<Vec<_>>(),
        )
    }

    fn cap(i: &Inputs) -> (u32, i64, bool) {
        (i.cap.cap, i.cap.others_this_hour, i.cap.already_admitted)
    }

    #[tokio::test]
    async fn one_persons_facts_come_from_the_journal_and_the_mirror() {
        let (journal, people) = seeded().await;
        let ada = one(&journal, &people[0], true).await;
        assert_eq!(
            ada.observed.member.as_ref().map(|m| m.id.as_str()),
            Some("user_ada")
        );
        assert_eq!(
            ada.observed.memberships.keys().collect::<Vec<_>>(),
            ["wrkspc_eng"]
        );
        assert_eq!(ada.managed.get("Eng"), Some(&Some("wrkspc_eng".to_owned())));
        assert_eq!(
            ada.unsupported.get("rbac_groups").map(String::as_str),
            Some("not on this plan")
        );
        // Cy lost access this hour; Ada's release this hour admits her.
        assert_eq!(cap(&ada), (3, 1, true));
        assert!(ada.workspace.is_none());

        let bo = one(&journal, &people[1], true).await;
        assert_eq!(
            bo.observed.pending_invite.as_ref().map(|i| i.id.as_str()),
            Some("invite_bo")
        );
        assert!(bo.observed.member.is_none());

        // Cy departed; Di holds her address now: Cy keeps no claim to it.
        let cy = one(&journal, &people[2], true).await;
        assert_eq!(cy.person.email, None);
        let di = one(&journal, &people[3], true).await;
        assert!(di.address_holder.is_none());
        // Di is not linked to the account at her address, and nobody else is either.
        assert_eq!(
            di.observed.member.as_ref().map(|m| m.id.as_str()),
            Some("user_cy")
        );
        assert!(di.account_owner.is_none());

        // The stand-in sees every member and key of its workspace, not just "its own".
        let ws = one(&journal, &people[4], true).await;
        let used = ws.workspace.unwrap();
        assert_eq!(
            (used.id.as_str(), used.name.as_deref(), used.archived),
            ("wrkspc_eng", Some("Eng"), false)
        );
        assert_eq!((used.members, used.active_keys), (2, 2));
        assert!(used.named_by_rules);

        // Without a credential nothing of the organization is read.
        let blind = one(&journal, &people[0], false).await;
        assert!(blind.observed.member.is_none());
        assert!(blind.observed.memberships.is_empty());
        assert!(blind.unsupported.is_empty());
        assert_eq!(blind.managed.get("Eng"), Some(&Some("<Eng>".to_owned())));
        let ws = one(&journal, &people[4], false).await;
        assert_eq!(
            ws.workspace.map(|w| (w.members, w.active_keys)),
            Some((0, 0))
        );
    }

    #[tokio::test]
    async fn everyones_facts_give_each_person_the_inputs_of_their_own() {
        let (journal, people) = seeded().await;
        for known in [true, false] {
            let mut tx = journal.begin().await.unwrap();
            let (facts, everyone) = Facts::for_everyone(&mut tx, known, 3, at(100))
                .await
                .unwrap();
            drop(tx);
            assert_eq!(everyone.len(), people.len());
            // Within the hour only Cy lost access; each person counts the others.
            let caps: Vec<_> = people
                .iter()
                .map(|p| cap(&inputs(p, &facts, &rules())))
                .collect();
            assert_eq!(
                caps,
                [
                    (3, 1, true),
                    (3, 1, false),
                    (3, 0, true),
                    (3, 1, true),
                    (3, 1, false)
                ],
                "Ada (released this hour), Bo (released two hours ago), Cy (losing access), Di (released), the stand-in"
            );
            for p in &people {
                let together = inputs(p, &facts, &rules());
                let alone = one(&journal, p, known).await;
                assert_eq!(
                    seen(&together),
                    seen(&alone),
                    "{} (known {known})",
                    p.source_person_id
                );
            }
        }
    }

    /// A person whose account is linked to someone else: both loaders find the owner.
    #[tokio::test]
    async fn an_account_linked_to_another_person_is_found_by_both_loaders() {
        let (journal, _) = seeded().await;
        let mut tx = journal.begin().await.unwrap();
        let mut eve = person(6, PersonStatus::Active, Some("ada@x.com"));
        eve.source = "okta".to_owned();
        put_person(&mut tx, &eve).await;
        tx.commit().await.unwrap();
        let alone = one(&journal, &eve, true).await;
        assert_eq!(
            alone.account_owner.as_ref().map(|p| p.id),
            Some(Uuid::from_u128(1))
        );
        let mut tx = journal.begin().await.unwrap();
        let (facts, _) = Facts::for_everyone(&mut tx, true, 3, at(100))
            .await
            .unwrap();
        let together = inputs(&eve, &facts, &rules());
        assert_eq!(seen(&together), seen(&alone));
    }
}
