//! Named operators over loopback HTTP: who may read and who may write, every write
//! journaled with the operator's name and reason, bulk release over HTTP and the CLI,
//! resolving manual actions, a sync on request, a sign-in proxy's identity header.

use serde_json::{Value, json};

use super::harness::*;

/// The pipeline config with two named operators (alice writes, viktor reads), the older
/// ops token, a removal cap of one, and loopback as a trusted sign-in proxy.
fn operators_toml() -> String {
    RULES.replace(
        "max_body_bytes = 65536",
        r#"max_body_bytes = 65536

[[server.operators]]
name = "alice"
role = "operator"
token_env = "ALICE_TOKEN"

[[server.operators]]
name = "viktor"
role = "viewer"
token_env = "VIKTOR_TOKEN"

[[server.operators]]
name = "pat@acme.test"
role = "operator"

[server.auth_proxy]
header = "X-Forwarded-Email"
trusted_proxies = ["127.0.0.1/32", "::1"]
"#,
    ) + "\n[safety]\nmax_removals_per_hour = 1\n"
}

async fn post(h: &Harness, token: &str, path: &str, body: Value) -> (u16, Value) {
    let resp = h
        .http
        .post(format!("{}/api/v1/{path}", h.base))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

async fn get(h: &Harness, token: &str, path: &str) -> (u16, Value) {
    let resp = h
        .http
        .get(format!("{}/api/v1/{path}", h.base))
        .bearer_auth(token)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// Three leavers under a cap of one: two removals held.
async fn two_held(h: &Harness) -> Vec<String> {
    for (id, email) in [
        ("C1", "c1@acme.test"),
        ("C2", "c2@acme.test"),
        ("C3", "c3@acme.test"),
    ] {
        super::joined(h, id, email, "Sales").await;
    }
    h.advance(10);
    for id in ["C1", "C2", "C3"] {
        h.deliver(
            &format!("leave_{id}"),
            event("person.departed", id, h.clock_now(), json!({})),
        )
        .await;
    }
    h.settle().await;
    let mut held = Vec::new();
    for id in ["C1", "C2", "C3"] {
        held.extend(
            h.actions(id)
                .await
                .into_iter()
                .filter(|a| a.status.as_str() == "held")
                .map(|a| a.id.to_string()),
        );
    }
    assert_eq!(held.len(), 2, "{held:?}");
    held
}

pub async fn named_operators_release_with_a_reason_on_the_record(db: TestDb) {
    let h = Harness::start_with(db, &operators_toml(), seed()).await;
    let held = two_held(&h).await;

    // Who is signed in.
    let (status, me) = get(&h, ALICE_TOKEN, "me").await;
    assert_eq!(status, 200);
    assert_eq!(
        me,
        json!({"name": "alice", "role": "operator", "via": "token", "can_write": true})
    );
    let (_, me) = get(&h, OPS_TOKEN, "me").await;
    assert_eq!(
        me["name"], "ops",
        "the older ops token is the operator 'ops'"
    );

    // A viewer reads, and may not write.
    let (status, _) = get(&h, VIKTOR_TOKEN, "actions?status=held").await;
    assert_eq!(status, 200);
    let (status, problem) = post(
        &h,
        VIKTOR_TOKEN,
        &format!("actions/{}/release", held[0]),
        json!({"reason": "looks fine"}),
    )
    .await;
    assert_eq!(status, 403, "{problem}");
    assert_eq!(problem["code"], "role_viewer");
    // An unknown token is refused, with a challenge (RFC 9110: every 401 has one) and a
    // problem type spelled like every other.
    let resp = h
        .http
        .get(format!("{}/api/v1/me", h.base))
        .bearer_auth("not-a-token-of-anyone")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 401);
    assert_eq!(
        resp.headers()["www-authenticate"],
        r#"Bearer realm="keycard", error="invalid_token""#
    );
    let problem: Value = resp.json().await.unwrap();
    assert_eq!(
        problem["type"],
        "https://keycard.dev/problems/invalid-token"
    );
    let resp = h
        .http
        .get(format!("{}/api/v1/me", h.base))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 401);
    assert!(resp.headers().contains_key("www-authenticate"));
    // A forged delivery's 401 has one too.
    let body = hire("F1", "f@acme.test", "Sales", t0())
        .to_string()
        .into_bytes();
    let headers = h.signed("forged", &body, OLD_SECRET.replace('M', "N").as_str(), 0);
    let mut req = h
        .http
        .post(format!("{}/webhooks/hr", h.base))
        .header("content-type", "application/json")
        .body(body);
    for (k, v) in &headers {
        req = req.header(k.as_str(), v.as_str());
    }
    let resp = req.send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 401);
    assert_eq!(
        resp.headers()["www-authenticate"],
        r#"Signature realm="keycard-webhooks""#
    );

    // A reason is required.
    let (status, problem) = post(
        &h,
        ALICE_TOKEN,
        &format!("actions/{}/release", held[0]),
        json!({"reason": "   "}),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(problem["code"], "reason_required", "{problem}");
    let resp = h
        .http
        .post(format!("{}/api/v1/actions/{}/release", h.base, held[0]))
        .bearer_auth(ALICE_TOKEN)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(resp.status().as_u16(), 400, "no body, no reason");

    // Bulk: both held actions, plus one that is not held and one that does not exist.
    let succeeded = h
        .actions("C1")
        .await
        .into_iter()
        .find(|a| a.status.as_str() == "succeeded")
        .map(|a| a.id.to_string())
        .unwrap_or_default();
    let (status, answer) = post(
        &h,
        ALICE_TOKEN,
        "actions/release",
        json!({
            "ids": [held[0], held[1], succeeded, "not-an-id"],
            "reason": "HR confirmed the three departures (ticket HR-1234)"
        }),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    let released: Vec<&str> = answer["released"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(released, vec![held[0].as_str(), held[1].as_str()]);
    let refused = answer["refused"].as_array().unwrap();
    assert_eq!(refused.len(), 2, "{answer}");
    assert_eq!(refused[0]["status"], 409);
    assert_eq!(refused[1]["status"], 404);
    assert_eq!(
        answer["released"][0]["outcome"],
        "released by alice: HR confirmed the three departures (ticket HR-1234)"
    );

    // On the record, with who and why.
    let (status, log) = get(&h, VIKTOR_TOKEN, "operator-log?verb=release").await;
    assert_eq!(status, 200);
    let rows = log["data"].as_array().unwrap();
    assert_eq!(rows.len(), 2, "{log}");
    for row in rows {
        assert_eq!(row["operator"], "alice");
        assert_eq!(row["via"], "token");
        assert_eq!(
            row["reason"],
            "HR confirmed the three departures (ticket HR-1234)"
        );
        assert_eq!(row["target_kind"], "action");
        assert!(released.contains(&row["target"].as_str().unwrap()));
    }
    h.settle().await;
    assert_eq!(h.calls("users.delete"), 3, "the released removals ran");
}

pub async fn manual_actions_are_resolved_with_a_note(db: TestDb) {
    let h = Harness::start_with(db, &operators_toml(), seed()).await;
    // An admin's address: a note for a human, never a change.
    h.deliver("m1", hire("E7", "boss@acme.test", "Engineering", t0()))
        .await;
    h.settle().await;
    let note = h
        .actions("E7")
        .await
        .into_iter()
        .find(|a| a.status.as_str() == "needs_manual_action")
        .unwrap_or_else(|| panic!("no manual action"));
    let path = format!("actions/{}/resolve", note.id);
    let (status, _) = post(&h, VIKTOR_TOKEN, &path, json!({"reason": "done"})).await;
    assert_eq!(status, 403);
    let (status, row) = post(
        &h,
        ALICE_TOKEN,
        &path,
        json!({"note": "boss@ keeps admin; access granted by hand"}),
    )
    .await;
    assert_eq!(status, 200, "{row}");
    assert_eq!(row["resolved_by"], "alice");
    assert_eq!(
        row["resolution"],
        "boss@ keeps admin; access granted by hand"
    );
    assert_eq!(
        row["status"], "needs_manual_action",
        "the note stays a note"
    );
    let (status, again) = post(&h, ALICE_TOKEN, &path, json!({"reason": "again"})).await;
    assert_eq!(status, 409, "{again}");
    assert!(
        again["detail"]
            .as_str()
            .unwrap()
            .contains("already resolved by alice")
    );
    // A later reconcile does not write the same note again.
    h.advance(7200);
    h.settle().await;
    let notes = h
        .actions("E7")
        .await
        .into_iter()
        .filter(|a| a.status.as_str() == "needs_manual_action")
        .count();
    assert_eq!(notes, 1);
    // Only a manual action can be resolved.
    let (status, _) = post(
        &h,
        ALICE_TOKEN,
        &format!("actions/{}/resolve", uuid::Uuid::now_v7()),
        json!({"reason": "x"}),
    )
    .await;
    assert_eq!(status, 404);
    let (_, log) = get(&h, ALICE_TOKEN, &format!("operator-log?target={}", note.id)).await;
    assert_eq!(log["data"][0]["verb"], "resolve", "{log}");
}

pub async fn link_and_sync_are_journaled_and_sync_reads_the_organization(db: TestDb) {
    let h = Harness::start_with(db, &operators_toml(), seed()).await;
    let uid = super::joined(&h, "L1", "lin@acme.test", "Sales").await;
    let (status, answer) = post(
        &h,
        ALICE_TOKEN,
        "people/L1/link",
        json!({"user_id": uid, "reason": "confirmed by the service desk"}),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    let (status, _) = post(&h, ALICE_TOKEN, "people/L1/link", json!({"user_id": uid})).await;
    assert_eq!(status, 400, "a link needs a reason too");

    let lists_before = h.calls("users.list");
    h.advance(5);
    let (status, answer) = post(&h, ALICE_TOKEN, "sync", json!({"reason": "Console change"})).await;
    assert_eq!(status, 202, "{answer}");
    h.settle().await;
    assert!(
        h.calls("users.list") > lists_before,
        "a requested sync reads the organization"
    );
    let after = h.calls("users.list");
    h.advance(5);
    h.settle().await;
    assert!(
        h.calls("users.list") - after <= 1,
        "once: a sync satisfied is not read again (at most the new-members poll)"
    );

    let (_, log) = get(&h, ALICE_TOKEN, "operator-log").await;
    let verbs: Vec<&str> = log["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["verb"].as_str().unwrap())
        .collect();
    assert_eq!(verbs, vec!["sync", "link"], "{log}");
    assert_eq!(log["data"][1]["detail"]["user_id"], json!(uid));
    let (status, _) = get(&h, ALICE_TOKEN, "operator-log?verb=delete").await;
    assert_eq!(status, 400);
}

pub async fn a_sign_in_proxy_names_the_operator(db: TestDb) {
    let h = Harness::start_with(db, &operators_toml(), seed()).await;
    let me = |who: &'static str| {
        h.http
            .get(format!("{}/api/v1/me", h.base))
            .header("x-forwarded-email", who)
            .send()
    };
    let resp = me("Pat@acme.test").await.unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["name"], "pat@acme.test");
    assert_eq!(body["via"], "proxy");
    let resp = me("mallory@acme.test").await.unwrap();
    assert_eq!(
        resp.status().as_u16(),
        403,
        "no operator entry, no default role"
    );
    // A token beats the header: the request is the token's operator.
    let resp = h
        .http
        .get(format!("{}/api/v1/me", h.base))
        .header("x-forwarded-email", "pat@acme.test")
        .bearer_auth(VIKTOR_TOKEN)
        .send()
        .await
        .unwrap();
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["name"], "viktor");
}

pub async fn the_cli_releases_several_actions_with_a_reason(db: TestDb) {
    let h = Harness::start_with(db, &operators_toml(), seed()).await;
    let held = two_held(&h).await;
    let base = h.base.clone();
    let run = move |args: Vec<String>, token: &'static str| {
        let base = base.clone();
        tokio::task::spawn_blocking(move || {
            std::process::Command::new(env!("CARGO_BIN_EXE_keycard"))
                .args(&args)
                .env("KEYCARD_URL", base)
                .env("KEYCARD_TOKEN", token)
                .env_remove("KEYCARD_OPS_TOKEN")
                .output()
                .unwrap()
        })
    };
    let mut args = vec!["release".to_owned()];
    args.extend(held.iter().cloned());
    let out = run(args.clone(), ALICE_TOKEN).await.unwrap();
    assert!(!out.status.success(), "no reason, no release");
    assert!(String::from_utf8_lossy(&out.stderr).contains("--reason"));
    args.extend(["--reason".into(), "checked with HR".into()]);
    let out = run(args.clone(), VIKTOR_TOKEN).await.unwrap();
    assert!(!out.status.success(), "a viewer cannot release");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("403"),
        "{out:?}"
    );
    let out = run(args.clone(), ALICE_TOKEN).await.unwrap();
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    for id in &held {
        assert!(stdout.contains(&format!("released {id}")), "{stdout}");
    }
    // A second time: nothing is held any more, and the command says so and fails.
    let out = run(args, ALICE_TOKEN).await.unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not held"),
        "{out:?}"
    );
    for id in &held {
        let row = h.db().await.action(id.parse().unwrap()).await.unwrap();
        assert_eq!(
            row.outcome.as_deref(),
            Some("released by alice: checked with HR")
        );
    }
}
