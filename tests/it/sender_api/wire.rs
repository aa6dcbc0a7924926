//! Per-sender behaviour the matrix does not cover: the simulators' real rate-limit windows
//! and headers on the wire, paging details, slow answers, and the CLI.

use std::time::Duration;

use keycard::sender_api::*;
use keycard::sender_sim::{Fault, default_credential};
use serde_json::{Value, json};

use super::common::*;

fn raw() -> reqwest::Client {
    reqwest::Client::new()
}

#[tokio::test]
async fn gusto_rolling_window_429_carries_retry_after_and_the_client_waits_it_out() {
    let s = start(
        SenderKind::Gusto,
        json!({ "generate": 1, "settings": { "rate_limits": { "api": { "limit": 5, "window_secs": 60 } } } }),
    )
    .await;
    let id = s.sim().people()[0].id.clone();
    let token = default_credential(SenderKind::Gusto);
    // On the wire: every answer reports the window; the refusal says how long to wait.
    let ok = raw()
        .get(format!("{}/v1/employees/{id}", s.url()))
        .bearer_auth(token)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(ok.headers()["x-ratelimit-limit"], "5");
    assert_eq!(ok.headers()["x-ratelimit-remaining"], "4");
    assert_eq!(
        ok.headers()["x-ratelimit-reset"],
        "2026-11-28T10:01:00.000Z"
    );
    s.clock.advance(Duration::from_secs(20));
    let c = client(&s);
    for _ in 0..5 {
        c.get(&id).await.unwrap_or_else(|e| panic!("{e}"));
    }
    // One call at t0 and four at t0+20 s fill the window; the fifth client call is refused
    // until the first leaves the rolling window at t0+60 s: a wait of exactly 40 s.
    assert_eq!(
        s.statuses("employees.get"),
        [200, 200, 200, 200, 200, 429, 200]
    );
    assert_eq!(s.slept(), [Duration::from_secs(40)]);
    // Now (t0+60 s) the window is full again until the t0+20 s calls age out.
    let refused = raw()
        .get(format!("{}/v1/employees/{id}", s.url()))
        .bearer_auth(token)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(refused.status(), 429);
    assert_eq!(refused.headers()["retry-after"], "20");
    assert_eq!(refused.headers()["x-ratelimit-remaining"], "0");
    let body: Value = refused.json().await.unwrap_or_default();
    assert_eq!(body["errors"][0]["category"], "rate_limited");
}

#[tokio::test]
async fn okta_fixed_window_is_announced_and_a_paced_client_stops_before_the_429() {
    let s = start(
        SenderKind::Okta,
        json!({ "generate": 1, "settings": { "rate_limits": { "users": { "limit": 3, "window_secs": 60 } } } }),
    )
    .await;
    let id = s.sim().people()[0].id.clone();
    s.clock.advance(Duration::from_secs(30));
    // Unpaced: the fourth call in the minute is refused with E0000047 and the window's
    // reset (the next minute boundary) in X-Rate-Limit-Reset; the client waits exactly 30 s.
    let c = client(&s);
    for _ in 0..4 {
        c.get(&id).await.unwrap_or_else(|e| panic!("{e}"));
    }
    assert_eq!(s.statuses("users.get"), [200, 200, 200, 429, 200]);
    assert_eq!(s.slept(), [Duration::from_secs(30)]);
    let token = format!("SSWS {}", default_credential(SenderKind::Okta));
    for _ in 0..2 {
        let _ = raw()
            .get(format!("{}/api/v1/users/{id}", s.url()))
            .header("authorization", &token)
            .send()
            .await;
    }
    let refused = raw()
        .get(format!("{}/api/v1/users/{id}", s.url()))
        .header("authorization", &token)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(refused.status(), 429);
    assert_eq!(refused.headers()["x-rate-limit-remaining"], "0");
    let reset = (t0() + chrono::Duration::seconds(120))
        .timestamp()
        .to_string();
    assert_eq!(refused.headers()["x-rate-limit-reset"], reset.as_str());
    assert!(refused.headers().get("retry-after").is_none());
    let body: Value = refused.json().await.unwrap_or_default();
    assert_eq!(body["errorCode"], "E0000047");

    // Paced: the answer announcing "remaining 0" closes the budget until the reset, so the
    // next call waits instead of earning a 429.
    let s = start(
        SenderKind::Okta,
        json!({ "generate": 1, "settings": { "rate_limits": { "users": { "limit": 3, "window_secs": 60 } } } }),
    )
    .await;
    s.clock.advance(Duration::from_secs(30));
    let paced = client_with(&s, None, true);
    for _ in 0..5 {
        paced.get(&id).await.unwrap_or_else(|e| panic!("{e}"));
    }
    assert_eq!(s.statuses("users.get"), [200; 5]);
    assert_eq!(s.slept(), [Duration::from_secs(30)]);
}

#[tokio::test]
async fn okta_lists_leave_out_deprovisioned_users_unless_searched() {
    let s = start(SenderKind::Okta, json!({ "generate": 5 })).await;
    let ids: Vec<String> = s.sim().people().iter().map(|p| p.id.clone()).collect();
    s.sim()
        .terminate(&ids[1], None)
        .unwrap_or_else(|e| panic!("{e}"));
    let token = format!("SSWS {}", default_credential(SenderKind::Okta));
    let page = raw()
        .get(format!("{}/api/v1/users?limit=2", s.url()))
        .header("authorization", &token)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let links: Vec<String> = page
        .headers()
        .get_all("link")
        .iter()
        .filter_map(|v| v.to_str().ok().map(str::to_owned))
        .collect();
    assert_eq!(links.len(), 2, "{links:?}");
    assert!(links[1].ends_with("rel=\"next\"") && links[1].contains(&format!("after={}", ids[2])));
    let body: Vec<Value> = page.json().await.unwrap_or_default();
    let listed: Vec<&str> = body.iter().filter_map(|u| u["id"].as_str()).collect();
    assert_eq!(listed, [ids[0].as_str(), ids[2].as_str()]);
    let searched: Vec<Value> = raw()
        .get(with_query(
            &format!("{}/api/v1/users", s.url()),
            &[("search", "status eq \"DEPROVISIONED\"")],
        ))
        .header("authorization", &token)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .json()
        .await
        .unwrap_or_default();
    assert_eq!(searched.len(), 1);
    assert_eq!(searched[0]["status"], "DEPROVISIONED");
    let bad = raw()
        .get(with_query(
            &format!("{}/api/v1/users", s.url()),
            &[("search", "profile.department eq \"x\"")],
        ))
        .header("authorization", &token)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(bad.status(), 400);
}

#[tokio::test]
async fn hibob_search_returns_everyone_in_one_answer_with_show_inactive_and_filters() {
    let s = start(SenderKind::HiBob, json!({ "generate": 4 })).await;
    let people = s.sim().people();
    s.sim()
        .terminate(&people[0].id, None)
        .unwrap_or_else(|e| panic!("{e}"));
    let (user, token) = default_credential(SenderKind::HiBob)
        .split_once(':')
        .unwrap_or_default();
    let search = |body: Value| {
        raw()
            .post(format!("{}/v1/people/search", s.url()))
            .basic_auth(user, Some(token))
            .json(&body)
            .send()
    };
    let active: Value = search(json!({}))
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .json()
        .await
        .unwrap_or_default();
    assert_eq!(active["employees"].as_array().map(Vec::len), Some(3));
    // Default fields: root, about, employment, work; no internal.
    assert!(active["employees"][0].get("internal").is_none());
    let all: Value =
        search(json!({ "showInactive": true, "fields": ["root.id", "internal.status"] }))
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .json()
            .await
            .unwrap_or_default();
    assert_eq!(all["employees"].as_array().map(Vec::len), Some(4));
    assert_eq!(all["employees"][0]["/internal/status"]["value"], "Inactive");
    assert_eq!(all["employees"][0]["internal"]["status"], "Inactive");
    let email = people[2].work_email.clone().unwrap_or_default();
    let one: Value = search(json!({ "filters": [{ "fieldPath": "root.email", "operator": "equals", "values": [email] }] }))
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .json()
        .await
        .unwrap_or_default();
    assert_eq!(one["employees"][0]["id"], json!(people[2].id));
    let refused = search(json!({ "filters": [{ "fieldPath": "work.department", "operator": "equals", "values": ["x"] }] }))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(refused.status(), 400);
    // The search budget (50/min) is its own: a paced client keeps 60 pulls under it.
    let c = client_with(&s, None, true);
    for _ in 0..60 {
        c.list_all().await.unwrap_or_else(|e| panic!("{e}"));
    }
    let statuses = s.statuses("people.search");
    assert!(
        statuses.iter().all(|st| *st == 200 || *st == 400),
        "{statuses:?}"
    );
}

#[tokio::test]
async fn bamboohr_cursors_fail_when_the_boundary_employee_is_gone_and_legacy_503_is_honoured() {
    let s = start(SenderKind::BambooHr, json!({ "generate": 5 })).await;
    let key = default_credential(SenderKind::BambooHr);
    let first: Value = raw()
        .get(format!(
            "{}/api/v1/employees?page[limit]=2&fields=workEmail",
            s.url()
        ))
        .basic_auth(key, Some("x"))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .json()
        .await
        .unwrap_or_default();
    assert_eq!(first["meta"]["total"], 5);
    assert_eq!(first["meta"]["page"]["limit"], 2);
    assert!(
        first["_links"]["next"]["href"]
            .as_str()
            .is_some_and(|h| h.contains("page%5Bafter%5D"))
    );
    let cursor = first["meta"]["page"]["nextCursor"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let boundary = first["data"][1]["employeeId"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    s.sim()
        .delete_person(&boundary)
        .unwrap_or_else(|e| panic!("{e}"));
    let stale = raw()
        .get(with_query(
            &format!("{}/api/v1/employees", s.url()),
            &[("page[limit]", "2"), ("page[after]", cursor.as_str())],
        ))
        .basic_auth(key, Some("x"))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(stale.status(), 400);
    let body: Value = stale.json().await.unwrap_or_default();
    assert_eq!(body["error"]["code"], "BadPage");
    // The legacy gateway path reads the same record.
    let id = s.sim().people()[0].id.clone();
    let legacy: Value = raw()
        .get(format!(
            "{}/api/gateway.php/acme/v1/employees/{id}?fields=workEmail,terminationDate",
            s.url()
        ))
        .basic_auth(key, Some("x"))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .json()
        .await
        .unwrap_or_default();
    assert_eq!(legacy["terminationDate"], "0000-00-00");
    assert_eq!(legacy["id"], json!(id));

    // Before 2026-09-16 BambooHR limited with 503 + Retry-After; the client waits it out.
    s.sim()
        .update_settings(&json!({ "legacy_503": true, "rate_limits": { "api": { "limit": 2, "window_secs": 60 } } }))
        .unwrap_or_else(|e| panic!("{e}"));
    let c = client(&s);
    for _ in 0..3 {
        c.get(&id).await.unwrap_or_else(|e| panic!("{e}"));
    }
    let statuses = s.statuses("employees.get");
    assert_eq!(&statuses[statuses.len() - 4..], [200, 200, 503, 200]);
    assert_eq!(s.slept(), [Duration::from_secs(60)]);
}

#[tokio::test]
async fn gusto_single_reads_resolve_the_managers_email_and_lists_do_it_from_the_directory() {
    let s = start(
        SenderKind::Gusto,
        json!({ "people": [
            { "id": "00000000-0000-4000-8000-0000000000b0", "first_name": "Big", "last_name": "Boss", "work_email": "boss@acme.test" },
            { "first_name": "Ada", "last_name": "L", "work_email": "ada@acme.test", "manager_id": "00000000-0000-4000-8000-0000000000b0" }
        ] }),
    )
    .await;
    let ada = s.sim().people()[1].id.clone();
    let c = client(&s);
    let r = c.get(&ada).await.unwrap_or_else(|e| panic!("{e}"));
    let manager = r.manager.clone().unwrap_or_default();
    assert_eq!(manager.email.as_deref(), Some("boss@acme.test"));
    assert_eq!(
        s.statuses("employees.get").len(),
        2,
        "one extra read for the manager"
    );
    let dir = c.list_all().await.unwrap_or_else(|e| panic!("{e}"));
    let listed = dir
        .records
        .iter()
        .find(|r| r.source_person_id == ada)
        .cloned();
    assert_eq!(
        listed
            .and_then(|r| r.manager)
            .and_then(|m| m.email)
            .as_deref(),
        Some("boss@acme.test")
    );
    assert_eq!(
        s.statuses("employees.get").len(),
        2,
        "no extra reads for a pull"
    );
}

#[tokio::test]
async fn a_slow_answer_times_out_and_is_retried() {
    let s = start(SenderKind::Gusto, json!({ "generate": 1 })).await;
    let id = s.sim().people()[0].id.clone();
    s.sim()
        .inject(Fault {
            route: "employees.get".into(),
            status: None,
            count: 1,
            retry_after: None,
            delay_ms: Some(1500),
        })
        .unwrap_or_else(|e| panic!("{e}"));
    let mut config = GustoConfig::new(
        keycard::sender_sim::default_tenant(SenderKind::Gusto),
        secret(default_credential(SenderKind::Gusto)),
    )
    .base_url(s.url());
    config.options.timeout = Duration::from_millis(300);
    config.options.retry = exact_retry();
    config.options.pacing = None;
    let c = GustoClient::new(config, s.clock.clone()).unwrap_or_else(|e| panic!("{e}"));
    let r = c.get_employee(&id).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(r.source_person_id, id);
    assert_eq!(s.slept(), [Duration::from_millis(500)]);
    // The abandoned call is logged as 499 (client closed) once the server notices; allow it
    // the moment that takes.
    for _ in 0..50 {
        if s.statuses("employees.get").len() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut statuses = s.statuses("employees.get");
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 499]);
    assert!(
        s.calls_for("employees.get")
            .iter()
            .any(|c| c.fault && c.status == 499)
    );
}

#[tokio::test]
async fn the_cli_serves_each_sender_on_the_port_it_prints() {
    use tokio::io::AsyncBufReadExt as _;
    for kind in SenderKind::ALL {
        let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_keycard"))
            .args([
                "sender-sim",
                "--kind",
                kind.as_str(),
                "--listen",
                "127.0.0.1:0",
            ])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn: {e}"));
        let stdout = child.stdout.take().unwrap_or_else(|| panic!("no stdout"));
        let mut line = String::new();
        tokio::time::timeout(
            Duration::from_secs(20),
            tokio::io::BufReader::new(stdout).read_line(&mut line),
        )
        .await
        .unwrap_or_else(|_| panic!("{kind}: no start line"))
        .unwrap_or_else(|e| panic!("{e}"));
        let prefix = format!("keycard sender-sim ({kind}) listening on ");
        let url = line
            .trim()
            .strip_prefix(&prefix)
            .unwrap_or_else(|| panic!("{kind}: {line:?}"))
            .to_owned();
        let generated: Value = raw()
            .post(format!("{url}/_sim/people/generate"))
            .json(&json!({ "count": 3 }))
            .send()
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .json()
            .await
            .unwrap_or_default();
        let id = generated["ids"][0].as_str().unwrap_or_default().to_owned();
        // A client of the default configuration reads the CLI simulator's directory.
        let dir = client_for(
            kind,
            &url,
            std::sync::Arc::new(keycard::clock::SystemClock),
            None,
            false,
        )
        .list_all()
        .await
        .unwrap_or_else(|e| panic!("{kind}: {e}"));
        assert_eq!(dir.len(), 3, "{kind}");
        let state: Value = raw()
            .get(format!("{url}/_sim/state"))
            .send()
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .json()
            .await
            .unwrap_or_default();
        assert_eq!(state["kind"], kind.as_str());
        assert_eq!(state["people"].as_array().map(Vec::len), Some(3), "{kind}");
        assert!(!id.is_empty(), "{kind}");
        let _ = child.kill().await;
    }
}
