//! `/metrics` over loopback HTTP: the exposition passes `promtool check metrics` (HELP and
//! TYPE on every family), Admin API latency is by route and status, 429s and retries are
//! counted, and held / failed / manual are what waits *now*, not everything ever.

use keycard::admin_sim::Fault;
use serde_json::json;

use super::harness::*;

async fn scrape(h: &Harness) -> String {
    let resp = h
        .http
        .get(format!("{}/metrics", h.base))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(resp.status().as_u16(), 200);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    let text = resp.text().await.unwrap();
    promtool(&text);
    text
}

/// `promtool check metrics` (Debian package `prometheus`; scripts/test installs it).
fn promtool(text: &str) {
    use std::io::Write;
    let mut child = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("promtool is needed for this test (apt-get install prometheus): {e}")
        });
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics: {}{}\n{text}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The value of one sample (its name with labels, exactly as exposed).
fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no sample {series} in\n{text}"))
        .parse()
        .unwrap()
}

pub async fn metrics_pass_promtool_and_say_what_waits_now(db: TestDb) {
    let toml = format!("{RULES}\n[safety]\nmax_removals_per_hour = 1\n");
    let h = Harness::start_with(db, &toml, seed()).await;
    let text = scrape(&h).await;
    assert!(text.contains("keycard_build_info{"), "{text}");
    assert_eq!(sample(&text, "keycard_journal_up"), 1.0);
    assert!(
        text.contains("keycard_mirror_age_seconds NaN"),
        "never read yet"
    );

    // One 429 on the invite: counted, retried, and the invite goes out.
    h.inject(Fault {
        route: "invites.create".into(),
        status: 429,
        count: 1,
        apply: false,
        retry_after: Some(1),
    });
    h.deliver("m1", hire("M1", "m1@acme.test", "Sales", t0()))
        .await;
    h.settle().await;
    let text = scrape(&h).await;
    let invites = "/v1/organizations/invites";
    assert_eq!(
        sample(
            &text,
            &format!("keycard_admin_api_rate_limited_total{{route=\"{invites}\"}}")
        ),
        1.0
    );
    assert_eq!(
        sample(
            &text,
            &format!("keycard_admin_api_retries_total{{route=\"{invites}\",status=\"429\"}}")
        ),
        1.0
    );
    assert_eq!(
        sample(
            &text,
            &format!(
                "keycard_admin_api_request_duration_seconds_count{{method=\"POST\",route=\"{invites}\",status=\"200\"}}"
            )
        ),
        1.0
    );
    assert_eq!(
        sample(
            &text,
            "keycard_ingest_duration_seconds_count{status=\"202\"}"
        ),
        1.0
    );
    assert_eq!(
        sample(
            &text,
            "keycard_deliveries_total{outcome=\"accepted\",reason=\"\"}"
        ),
        1.0
    );
    assert_eq!(
        sample(&text, "keycard_admin_credential{state=\"accepted\"}"),
        1.0
    );
    assert_eq!(
        sample(&text, "keycard_admin_credential{state=\"rejected\"}"),
        0.0
    );
    assert!(sample(&text, "keycard_mirror_age_seconds") >= 0.0);

    // A removal fails for good, then succeeds at the recheck: failed now 1, then 0, while
    // the all-time count keeps it.
    h.sim
        .sim
        .accept_invite_for("m1@acme.test")
        .unwrap_or_else(|e| panic!("{e}"));
    h.advance(61);
    h.settle().await;
    h.inject(Fault {
        route: "users.delete".into(),
        status: 500,
        count: 1000,
        apply: false,
        retry_after: None,
    });
    h.advance(10);
    h.deliver(
        "leave_M1",
        event("person.departed", "M1", h.clock_now(), json!({})),
    )
    .await;
    h.settle().await;
    for _ in 0..6 {
        h.advance(600);
        h.settle().await;
    }
    let text = scrape(&h).await;
    assert_eq!(
        sample(&text, "keycard_actions_current{state=\"failed\"}"),
        1.0
    );
    h.sim.sim.clear_faults();
    h.advance(3600);
    h.settle().await;
    let text = scrape(&h).await;
    assert_eq!(
        sample(&text, "keycard_actions_current{state=\"failed\"}"),
        0.0,
        "a failure later overcome is not current"
    );
    assert!(sample(&text, "keycard_actions{status=\"failed\"}") >= 1.0);

    // An admin's address: a manual action now, none once resolved.
    h.deliver("m2", hire("M2", "boss@acme.test", "Sales", h.clock_now()))
        .await;
    h.settle().await;
    let text = scrape(&h).await;
    assert_eq!(
        sample(&text, "keycard_actions_current{state=\"manual\"}"),
        1.0
    );
    let note = h
        .actions("M2")
        .await
        .into_iter()
        .find(|a| a.status.as_str() == "needs_manual_action")
        .unwrap();
    let resp = h
        .http
        .post(format!("{}/api/v1/actions/{}/resolve", h.base, note.id))
        .bearer_auth(OPS_TOKEN)
        .json(&json!({"reason": "Boss keeps admin"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let text = scrape(&h).await;
    assert_eq!(
        sample(&text, "keycard_actions_current{state=\"manual\"}"),
        0.0
    );
    assert_eq!(sample(&text, "keycard_queue_depth{queue=\"jobs\"}"), 0.0);
    assert_eq!(
        sample(&text, "keycard_queue_oldest_age_seconds{queue=\"events\"}"),
        0.0
    );
}
