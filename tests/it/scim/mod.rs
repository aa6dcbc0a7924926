//! SCIM provisioning end to end: Okta- and Entra-shaped request sequences over loopback
//! HTTP into `/scim/v2/{source}`, the journal (a fresh PostgreSQL database, and again a fresh
//! SQLite file), the worker, and the Admin API simulator as the organization.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failure should stop the test loudly

use crate::harness;

mod auth;
mod cut;
mod import;

use auth::every_scim_route_and_method_needs_this_sources_token;
use import::import_from_a_connected_scim_source_writes_nothing_to_the_organization;

use cut::{
    a_create_cut_at_any_await_point_is_whole_or_absent,
    a_deactivation_cut_at_any_await_point_is_journaled_or_not_stored,
    a_delete_cut_at_any_await_point_is_journaled_or_not_done,
    idp_retries_after_client_timeouts_leave_nothing_unjournaled,
};
use harness::{Harness, TestDb, seed};
use keycard::journal::JournalFilter;
use serde_json::{Value, json};

pub const TOKEN: &str = "scim-test-token-0123456789abcdef";
const ENT: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

fn config(token_file: &std::path::Path) -> String {
    format!(
        r#"
[[sources]]
name = "okta"
kind = "scim"
token_file = "{tf}"

[[sources]]
name = "entra"
kind = "scim"
token_file = "{tf}"
deactivate_means = "departure"

[server]
listen = "127.0.0.1:0"

[admin_api]
admin_key_env = "ADMIN_KEY"

[reconciler]
invite_poll_secs = 60

[[rules]]
name = "engineering"
when = 'person.department == "Engineering"'
org_role = "developer"
workspaces = {{ "Engineering" = "workspace_developer" }}

[[rules]]
name = "eng-group"
when = '"eng" in person.groups'
workspaces = {{ "Sandbox" = "workspace_user" }}

[default]
org_role = "user"
"#,
        tf = token_file.display()
    )
}

pub struct Scim {
    pub h: Harness,
    _dir: tempfile::TempDir,
}

impl Scim {
    async fn start(db: TestDb) -> Self {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
        let tf = dir.path().join("token");
        std::fs::write(&tf, TOKEN).unwrap_or_else(|e| panic!("token: {e}"));
        let h = Harness::start_with(db, &config(&tf), seed()).await;
        Self { h, _dir: dir }
    }

    pub async fn call(
        &self,
        source: &str,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        self.call_with(source, method, path, body, TOKEN, &[]).await
    }

    async fn call_with(
        &self,
        source: &str,
        method: &str,
        path: &str,
        body: Option<Value>,
        token: &str,
        headers: &[(&str, &str)],
    ) -> (u16, Value) {
        let url = format!("{}/scim/v2/{source}{path}", self.h.base);
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap_or_default();
        let mut req = self
            .h
            .http
            .request(method, url)
            .header("authorization", format!("Bearer {token}"));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(b) = body {
            req = req
                .header("content-type", "application/scim+json")
                .body(b.to_string());
        }
        let resp = req.send().await.unwrap_or_else(|e| panic!("request: {e}"));
        let status = resp.status().as_u16();
        if status >= 400 {
            let ct = resp
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned();
            assert_eq!(ct, "application/scim+json", "errors are SCIM errors");
        }
        let body = resp.json::<Value>().await.unwrap_or(Value::Null);
        if status >= 400 {
            assert_eq!(
                body["schemas"],
                json!(["urn:ietf:params:scim:api:messages:2.0:Error"]),
                "{body}"
            );
            assert_eq!(body["status"], json!(status.to_string()), "{body}");
        }
        (status, body)
    }

    async fn kinds(&self, person: &str) -> Vec<String> {
        let mut rows = self
            .h
            .db()
            .await
            .list_events(&JournalFilter {
                person: Some(person.to_owned()),
                limit: 100,
                ..Default::default()
            })
            .await
            .unwrap_or_else(|e| panic!("journal: {e}"))
            .data;
        rows.reverse();
        rows.into_iter().map(|e| e.kind.to_string()).collect()
    }

    async fn status(&self, person: &str) -> String {
        self.h
            .db()
            .await
            .find_person(person)
            .await
            .ok()
            .flatten()
            .map(|p| p.status.to_string())
            .unwrap_or_default()
    }

    /// Accepts the pending invite and lets the worker converge.
    async fn join(&self, email: &str) -> String {
        self.h.settle().await;
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

pub fn okta_user(user_name: &str, dept: &str, active: bool) -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", ENT],
        "userName": user_name,
        "name": { "givenName": "Test", "familyName": "User" },
        "emails": [{ "primary": true, "value": user_name, "type": "work" }],
        "displayName": "Test User", "locale": "en-US",
        "externalId": "00ujl29u0le5T6Aj10h7",
        "groups": [], "password": "1mz050nq", "active": active,
        ENT: { "department": dept }
    })
}

async fn okta_create_move_group_push_deactivate_reactivate(db: TestDb) {
    let s = Scim::start(db).await;
    let email = "test.user@acme.test";

    // Assign: look up by userName (no match), then create.
    let (st, list) = s
        .call(
            "okta",
            "GET",
            "/Users?filter=userName%20eq%20%22test.user%40acme.test%22&startIndex=1&count=100",
            None,
        )
        .await;
    assert_eq!((st, list["totalResults"].clone()), (200, json!(0)));
    let (st, user) = s
        .call(
            "okta",
            "POST",
            "/Users",
            Some(okta_user(email, "Sales", true)),
        )
        .await;
    assert_eq!(st, 201, "{user}");
    assert!(user.get("password").is_none(), "password is never stored");
    assert_eq!(user["meta"]["version"], "W/\"1\"");
    let id = user["id"].as_str().unwrap_or_default().to_owned();
    let uid = s.join(email).await;
    assert_eq!(
        s.h.user(email).map(|u| u["role"].clone()),
        Some(json!("user"))
    );

    // Profile push, AIW style: full PUT moving to Engineering.
    let (st, moved) = s
        .call(
            "okta",
            "PUT",
            &format!("/Users/{id}"),
            Some(okta_user(email, "Engineering", true)),
        )
        .await;
    assert_eq!(st, 200, "{moved}");
    assert_eq!(moved["meta"]["version"], "W/\"2\"");
    s.h.settle().await;
    assert_eq!(
        s.h.user(email).map(|u| u["role"].clone()),
        Some(json!("developer"))
    );
    assert_eq!(
        s.h.memberships(&uid),
        vec![("Engineering".to_owned(), "workspace_developer".to_owned())]
    );

    // Group push: create empty, look up by name, add the member.
    let (st, group) = s
        .call("okta", "POST", "/Groups", Some(json!({ "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "eng", "members": [] })))
        .await;
    assert_eq!(st, 201, "{group}");
    let gid = group["id"].as_str().unwrap_or_default().to_owned();
    let (_, found) = s
        .call(
            "okta",
            "GET",
            "/Groups?filter=displayName%20eq%20%22eng%22&startIndex=1&count=100",
            None,
        )
        .await;
    assert_eq!(found["Resources"][0]["id"], json!(gid));
    let (st, _) = s
        .call(
            "okta",
            "PATCH",
            &format!("/Groups/{gid}"),
            Some(json!({
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [
                    { "op": "replace", "value": { "id": gid, "displayName": "eng" } },
                    { "op": "add", "path": "members", "value": [{ "value": id, "display": email }] }
                ]
            })),
        )
        .await;
    assert_eq!(st, 200);
    s.h.settle().await;
    assert_eq!(
        s.h.memberships(&uid),
        vec![
            ("Engineering".to_owned(), "workspace_developer".to_owned()),
            ("Sandbox".to_owned(), "workspace_user".to_owned()),
        ]
    );
    let (_, read) = s.call("okta", "GET", &format!("/Users/{id}"), None).await;
    assert_eq!(read["groups"][0]["display"], "eng");

    // Remove from the group (RFC filter path).
    let (st, _) = s
        .call(
            "okta",
            "PATCH",
            &format!("/Groups/{gid}"),
            Some(json!({
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [{ "op": "remove", "path": format!("members[value eq \"{id}\"]") }]
            })),
        )
        .await;
    assert_eq!(st, 200);
    s.h.settle().await;
    assert_eq!(
        s.h.memberships(&uid),
        vec![("Engineering".to_owned(), "workspace_developer".to_owned())]
    );

    // Deactivate (OIN: path-less replace) → suspend (okta's deactivate_means default).
    let deactivate = |active: bool| {
        json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{ "op": "replace", "value": { "active": active } }]
        })
    };
    let (st, off) = s
        .call(
            "okta",
            "PATCH",
            &format!("/Users/{id}"),
            Some(deactivate(false)),
        )
        .await;
    assert_eq!((st, off["active"].clone()), (200, json!(false)));
    s.h.settle().await;
    assert_eq!(s.status(&id).await, "on_leave");

    // Reactivate → leave ended.
    let (st, _) = s
        .call(
            "okta",
            "PATCH",
            &format!("/Users/{id}"),
            Some(deactivate(true)),
        )
        .await;
    assert_eq!(st, 200);
    s.h.settle().await;
    assert_eq!(s.status(&id).await, "active");

    assert_eq!(
        s.kinds(&id).await,
        vec![
            "hired",
            "updated",
            "updated",
            "updated",
            "leave_started",
            "leave_ended"
        ]
    );
    let events =
        s.h.db()
            .await
            .list_events(&JournalFilter {
                person: Some(id.clone()),
                limit: 100,
                ..Default::default()
            })
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .data;
    assert!(
        events.iter().all(|e| e.status.as_str() == "applied"),
        "{events:?}"
    );
    assert!(
        events
            .iter()
            .any(|e| e.payload["unknown_fields"]["scim"]["canonical"] == "suspend")
    );
}

fn entra_user(upn: &str, nickname: &str, dept: &str) -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", ENT],
        "externalId": nickname,
        "userName": upn,
        "active": true,
        "emails": [{ "primary": true, "type": "work", "value": upn }],
        "meta": { "resourceType": "User" },
        "name": { "formatted": "Entra Person", "familyName": "Person", "givenName": "Entra" },
        "roles": [],
        ENT: { "department": dept, "employeeNumber": "E-1" }
    })
}

async fn entra_legacy_dialect_manager_departure_rehire_and_hard_delete(db: TestDb) {
    let s = Scim::start(db).await;
    // Test connection: a random non-existent user is a 200 empty ListResponse.
    let (st, probe) = s
        .call(
            "entra",
            "GET",
            "/Users?filter=userName%20eq%20%22a1b2c3d4%22",
            None,
        )
        .await;
    assert_eq!((st, probe["totalResults"].clone()), (200, json!(0)));

    let (st, boss) = s
        .call(
            "entra",
            "POST",
            "/Users",
            Some(entra_user("boss@acme.test", "boss", "Sales")),
        )
        .await;
    assert_eq!(st, 201, "{boss}");
    let boss_id = boss["id"].as_str().unwrap_or_default().to_owned();
    let (st, user) = s
        .call(
            "entra",
            "POST",
            "/Users",
            Some(entra_user("eve@acme.test", "eve", "Sales")),
        )
        .await;
    assert_eq!(st, 201, "{user}");
    let id = user["id"].as_str().unwrap_or_default().to_owned();
    s.join("eve@acme.test").await;

    let patch = |ops: Value| json!({ "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": ops });
    // Legacy dialect: capitalised ops, one op per attribute, bare manager id.
    let (st, changed) = s
        .call("entra", "PATCH", &format!("/Users/{id}"), Some(patch(json!([
            { "op": "Replace", "path": format!("{ENT}:department"), "value": "Engineering" },
            { "op": "Add", "path": format!("{ENT}:manager"), "value": boss_id },
            { "op": "Replace", "path": "emails[type eq \"work\"].value", "value": "eve@acme.test" },
        ]))))
        .await;
    assert_eq!(st, 200, "{changed}");
    assert_eq!(changed[ENT]["manager"]["value"], json!(boss_id));
    s.h.settle().await;
    assert_eq!(
        s.h.user("eve@acme.test").map(|u| u["role"].clone()),
        Some(json!("developer"))
    );
    let person =
        s.h.db()
            .await
            .find_person(&id)
            .await
            .ok()
            .flatten()
            .unwrap_or_else(|| panic!("person"));
    assert_eq!(person.attributes["manager_email"], "boss@acme.test");
    assert_eq!(person.attributes["department"], "Engineering");

    // aadOptscim062020 dialect: one path-less replace with dotted and URN keys.
    let (st, renamed) = s
        .call("entra", "PATCH", &format!("/Users/{id}"), Some(patch(json!([
            { "op": "replace", "value": { "name.givenName": "Evelyn", (format!("{ENT}:employeeNumber")): "E-2" } }
        ]))))
        .await;
    assert_eq!(st, 200);
    assert_eq!(renamed["name"]["givenName"], "Evelyn");
    assert_eq!(renamed[ENT]["employeeNumber"], "E-2");

    // Disable, legacy string boolean → departure (this source says so).
    let (st, _) = s
        .call(
            "entra",
            "PATCH",
            &format!("/Users/{id}"),
            Some(patch(
                json!([{ "op": "Replace", "path": "active", "value": "False" }]),
            )),
        )
        .await;
    assert_eq!(st, 200);
    s.h.settle().await;
    assert_eq!(s.status(&id).await, "departed");
    assert!(
        s.h.user("eve@acme.test").is_none(),
        "departed: removed from the org"
    );

    // Back again → rehire.
    let (st, _) = s
        .call(
            "entra",
            "PATCH",
            &format!("/Users/{id}"),
            Some(patch(
                json!([{ "op": "replace", "path": "active", "value": true }]),
            )),
        )
        .await;
    assert_eq!(st, 200);
    s.h.settle().await;
    assert_eq!(s.status(&id).await, "active");

    // Hard delete → purge.
    let (st, _) = s
        .call("entra", "DELETE", &format!("/Users/{id}"), None)
        .await;
    assert_eq!(st, 204);
    let (st, _) = s.call("entra", "GET", &format!("/Users/{id}"), None).await;
    assert_eq!(st, 404);
    s.h.settle().await;
    assert_eq!(s.status(&id).await, "departed");
    assert_eq!(
        s.kinds(&id).await,
        vec![
            "hired", "updated", "updated", "departed", "rehired", "departed"
        ]
    );

    // Sources are separate: the okta connection sees none of entra's users.
    let (_, other) = s.call("okta", "GET", "/Users", None).await;
    assert_eq!(other["totalResults"], 0);
}

async fn bad_requests_get_scim_errors_never_500(db: TestDb) {
    let s = Scim::start(db).await;
    let (st, _) = s
        .call_with("okta", "GET", "/Users", None, "wrong-token", &[])
        .await;
    assert_eq!(st, 401);
    let (st, _) = s.call_with("entra", "GET", "/Users", None, "", &[]).await;
    assert_eq!(st, 401);
    let (st, _) = s.call("nope", "GET", "/Users", None).await;
    assert_eq!(st, 404);

    let (st, user) = s
        .call(
            "okta",
            "POST",
            "/Users",
            Some(okta_user("dup@acme.test", "Sales", true)),
        )
        .await;
    assert_eq!(st, 201);
    let id = user["id"].as_str().unwrap_or_default().to_owned();
    let (st, body) = s
        .call(
            "okta",
            "POST",
            "/Users",
            Some(okta_user("DUP@acme.test", "Sales", true)),
        )
        .await;
    assert_eq!((st, body["scimType"].clone()), (409, json!("uniqueness")));

    for filter in [
        "userName%20eq",
        "userName%20xx%20%22a%22",
        "nope%20eq%20%22a%22",
        "(userName%20pr",
        "userName%20eq%20%22a%22%20and",
    ] {
        let (st, body) = s
            .call("okta", "GET", &format!("/Users?filter={filter}"), None)
            .await;
        assert_eq!(
            (st, body["scimType"].clone()),
            (400, json!("invalidFilter")),
            "{filter}: {body}"
        );
    }
    let (st, body) = s
        .call(
            "okta",
            "POST",
            "/Users",
            Some(json!({ "userName": "x@acme.test", "shoeSize": 9 })),
        )
        .await;
    assert_eq!(
        (st, body["scimType"].clone()),
        (400, json!("invalidValue")),
        "{body}"
    );
    let (st, body) = s
        .call("okta", "POST", "/Users", Some(json!({ "name": {} })))
        .await;
    assert_eq!(st, 400, "{body}");
    // U+0000 cannot be stored in PostgreSQL: a SCIM 400, not a 503 the IdP retries forever.
    let mut nul = okta_user("nul@acme.test", "Sales", true);
    nul["title"] = json!("Eng\u{0}ineer");
    let (st, body) = s.call("okta", "POST", "/Users", Some(nul)).await;
    assert_eq!(
        (st, body["scimType"].clone()),
        (400, json!("invalidValue")),
        "{body}"
    );
    let (st, body) = s
        .call(
            "okta",
            "PATCH",
            &format!("/Users/{id}"),
            Some(
                json!({ "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                         "Operations": [{ "op": "replace", "path": "title", "value": "\u{0}" }] }),
            ),
        )
        .await;
    assert_eq!(
        (st, body["scimType"].clone()),
        (400, json!("invalidValue")),
        "{body}"
    );

    let ops = |op: Value| json!({ "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [op] });
    for (op, scim_type) in [
        (
            json!({ "op": "replace", "path": "shoeSize", "value": 1 }),
            "invalidPath",
        ),
        (
            json!({ "op": "replace", "path": "emails[type eq", "value": 1 }),
            "invalidPath",
        ),
        (json!({ "op": "remove" }), "noTarget"),
        (
            json!({ "op": "frobnicate", "path": "title" }),
            "invalidSyntax",
        ),
    ] {
        let (st, body) = s
            .call(
                "okta",
                "PATCH",
                &format!("/Users/{id}"),
                Some(ops(op.clone())),
            )
            .await;
        assert_eq!(
            (st, body["scimType"].clone()),
            (400, json!(scim_type)),
            "{op}: {body}"
        );
    }
    let (st, _) = s
        .call(
            "okta",
            "PATCH",
            "/Users/does-not-exist",
            Some(ops(
                json!({ "op": "replace", "path": "title", "value": "x" }),
            )),
        )
        .await;
    assert_eq!(st, 404);

    // ETags: a stale If-Match is refused; a current one is accepted.
    let (st, _) = s
        .call_with(
            "okta",
            "PATCH",
            &format!("/Users/{id}"),
            Some(ops(
                json!({ "op": "replace", "path": "title", "value": "CTO" }),
            )),
            TOKEN,
            &[("if-match", "W/\"7\"")],
        )
        .await;
    assert_eq!(st, 412);
    let (st, body) = s
        .call_with(
            "okta",
            "PATCH",
            &format!("/Users/{id}"),
            Some(ops(
                json!({ "op": "replace", "path": "title", "value": "CTO" }),
            )),
            TOKEN,
            &[("if-match", "W/\"1\"")],
        )
        .await;
    assert_eq!(
        (st, body["meta"]["version"].clone()),
        (200, json!("W/\"2\""))
    );

    // Groups only take Users of this source as members.
    let (st, body) = s
        .call(
            "okta",
            "POST",
            "/Groups",
            Some(json!({ "displayName": "g", "members": [{ "value": "ghost" }] })),
        )
        .await;
    assert_eq!((st, body["scimType"].clone()), (400, json!("invalidValue")));
    let (st, _) = s
        .call_with(
            "okta",
            "POST",
            "/Users",
            None,
            TOKEN,
            &[("content-type", "application/json")],
        )
        .await;
    assert_eq!(st, 400);
}

/// A SCIM write whose change cannot be journaled must not stay stored: the IdP's retry
/// after the 503 would find it, never send the change again, and the hire would be lost.
async fn a_change_that_cannot_be_journaled_is_not_kept(db: TestDb) {
    let s = Scim::start(db).await;
    let fail_events = |on: bool| {
        let db = &s.h.db;
        async move {
            if on {
                db.raw(
                    "CREATE OR REPLACE FUNCTION fail_insert() RETURNS trigger AS $$
                     BEGIN RAISE EXCEPTION 'journal write fails (test)'; END $$ LANGUAGE plpgsql;
                     CREATE TRIGGER fail_events BEFORE INSERT ON events
                     FOR EACH ROW EXECUTE FUNCTION fail_insert();",
                    "CREATE TRIGGER fail_events BEFORE INSERT ON events
                     BEGIN SELECT RAISE(ABORT, 'journal write fails (test)'); END;",
                )
                .await
            } else {
                db.raw(
                    "DROP TRIGGER fail_events ON events;",
                    "DROP TRIGGER fail_events;",
                )
                .await
            }
        }
    };
    let email = "atomic@acme.test";
    let find = format!("/Users?filter=userName%20eq%20%22{email}%22");

    fail_events(true).await;
    let (st, _) = s
        .call(
            "okta",
            "POST",
            "/Users",
            Some(okta_user(email, "Sales", true)),
        )
        .await;
    assert_eq!(st, 503);
    let (_, list) = s.call("okta", "GET", &find, None).await;
    assert_eq!(list["totalResults"], 0, "the create was undone: {list}");

    // The IdP retries once the journal is back: the user and the hire both land.
    fail_events(false).await;
    let (st, user) = s
        .call(
            "okta",
            "POST",
            "/Users",
            Some(okta_user(email, "Sales", true)),
        )
        .await;
    assert_eq!(st, 201, "{user}");
    let id = user["id"].as_str().unwrap_or_default().to_owned();
    assert_eq!(s.kinds(email).await, vec!["hired"]);

    // A change whose event cannot be written is put back, so its retry is a change again.
    fail_events(true).await;
    let patch = json!({ "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                        "Operations": [{ "op": "replace", "path": "title", "value": "Director" }] });
    let (st, _) = s
        .call(
            "okta",
            "PATCH",
            &format!("/Users/{id}"),
            Some(patch.clone()),
        )
        .await;
    assert_eq!(st, 503);
    let (_, stored) = s.call("okta", "GET", &format!("/Users/{id}"), None).await;
    assert!(stored.get("title").is_none(), "{stored}");
    fail_events(false).await;
    let (st, stored) = s
        .call("okta", "PATCH", &format!("/Users/{id}"), Some(patch))
        .await;
    assert_eq!(
        (st, &stored["title"]),
        (200, &json!("Director")),
        "{stored}"
    );
    assert_eq!(
        s.kinds(email).await.len(),
        2,
        "the change was journaled on retry"
    );

    // A delete is journaled before the resource goes: no event, no delete.
    fail_events(true).await;
    let (st, _) = s
        .call("okta", "DELETE", &format!("/Users/{id}"), None)
        .await;
    assert_eq!(st, 503);
    let (st, _) = s.call("okta", "GET", &format!("/Users/{id}"), None).await;
    assert_eq!(st, 200, "still there for the retry");
    fail_events(false).await;

    // A Group deletion whose membership changes cannot be journaled brings the Group back.
    let (st, group) = s
        .call(
            "okta",
            "POST",
            "/Groups",
            Some(
                json!({ "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                         "displayName": "Atomic", "members": [{ "value": id }] }),
            ),
        )
        .await;
    assert_eq!(st, 201, "{group}");
    let gid = group["id"].as_str().unwrap_or_default().to_owned();
    fail_events(true).await;
    let (st, _) = s
        .call("okta", "DELETE", &format!("/Groups/{gid}"), None)
        .await;
    assert_eq!(st, 503);
    fail_events(false).await;
    let (st, group) = s.call("okta", "GET", &format!("/Groups/{gid}"), None).await;
    assert_eq!(st, 200, "{group}");
    assert_eq!(group["members"][0]["value"], json!(id), "{group}");
    let (st, _) = s
        .call("okta", "DELETE", &format!("/Groups/{gid}"), None)
        .await;
    assert_eq!(st, 204, "the retry deletes it");
}

on_both_backends!(
    every_scim_route_and_method_needs_this_sources_token,
    okta_create_move_group_push_deactivate_reactivate,
    entra_legacy_dialect_manager_departure_rehire_and_hard_delete,
    bad_requests_get_scim_errors_never_500,
    a_change_that_cannot_be_journaled_is_not_kept,
    a_create_cut_at_any_await_point_is_whole_or_absent,
    a_deactivation_cut_at_any_await_point_is_journaled_or_not_stored,
    a_delete_cut_at_any_await_point_is_journaled_or_not_done,
    idp_retries_after_client_timeouts_leave_nothing_unjournaled,
    import_from_a_connected_scim_source_writes_nothing_to_the_organization,
);
