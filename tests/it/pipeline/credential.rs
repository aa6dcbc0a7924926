//! A rejected credential is loud: `/readyz` degraded with the reason, one
//! `credential.rejected` notice, no Admin API work scheduled — only a probe at its interval —
//! until the credential works again; then the work it held up runs at once.

use serde_json::Value;

use super::harness::*;

fn calls_since(h: &Harness, from: usize) -> Vec<(String, u16)> {
    h.sim.sim.calls()[from..]
        .iter()
        .map(|c| (c.route.unwrap_or("?").to_owned(), c.status))
        .collect()
}

async fn readyz(h: &Harness, query: &str) -> (u16, Value) {
    let resp = h
        .http
        .get(format!("{}/readyz{query}", h.base))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    (
        resp.status().as_u16(),
        resp.json().await.unwrap_or_default(),
    )
}

pub async fn a_rejected_credential_stops_writes_until_a_probe_succeeds(db: TestDb) {
    let toml = RULES.replace(
        "[admin_api]\nadmin_key_env = \"ADMIN_KEY\"",
        "[admin_api]\nadmin_key_env = \"ADMIN_KEY\"\ncredential_probe_secs = 60",
    );
    let h = Harness::start_with(db, &toml, seed()).await;
    h.deliver("m1", hire("E1", "one@acme.test", "Sales", t0()))
        .await;
    h.settle().await;
    assert_eq!(h.invites("one@acme.test").len(), 1);
    let (status, ready) = readyz(&h, "").await;
    assert_eq!((status, ready["status"].as_str()), (200, Some("ready")));
    assert_eq!(ready["credential"]["state"], "accepted", "{ready}");

    // The key is revoked in the Console.
    h.sim.sim.set_admin_keys(&["sk-ant-admin01-some-other-key"]);
    h.deliver("m2", hire("E2", "two@acme.test", "Sales", h.clock_now()))
        .await;
    h.settle().await;
    let notice = h.notices.lock().unwrap().try_recv().unwrap();
    match &notice {
        keycard::notify::Notice::CredentialRejected { status, reason, .. } => {
            assert_eq!(*status, 401);
            assert!(reason.contains("invalid x-api-key"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        serde_json::to_value(&notice).unwrap()["type"],
        "credential.rejected"
    );
    let (status, ready) = readyz(&h, "").await;
    assert_eq!(status, 200, "still takes deliveries");
    assert_eq!(ready["status"], "degraded", "{ready}");
    assert!(
        ready["reasons"][0]
            .as_str()
            .unwrap()
            .contains("invalid x-api-key"),
        "{ready}"
    );
    assert_eq!(ready["credential"]["state"], "rejected");
    let (status, _) = readyz(&h, "?strict=true").await;
    assert_eq!(status, 503);

    // New work waits; no call is made, not even a probe, until the probe is due.
    let before = h.sim.sim.calls().len();
    h.deliver("m3", hire("E3", "three@acme.test", "Sales", h.clock_now()))
        .await;
    h.settle().await;
    h.advance(30);
    h.settle().await;
    assert_eq!(calls_since(&h, before), vec![], "nothing while rejected");
    h.advance(31);
    h.settle().await;
    assert_eq!(
        calls_since(&h, before),
        vec![("users.list".to_owned(), 401)],
        "one probe a minute, not a retry loop"
    );
    assert!(
        h.notices.lock().unwrap().try_recv().is_err(),
        "one notice per rejection"
    );

    // The key works again: the next probe restores it, and the held-up work runs at once.
    h.sim.sim.set_admin_keys(&[ADMIN_KEY]);
    h.advance(61);
    h.settle().await;
    assert!(matches!(
        h.notices.lock().unwrap().try_recv(),
        Ok(keycard::notify::Notice::CredentialRestored { .. })
    ));
    assert_eq!(
        h.invites("two@acme.test").len(),
        1,
        "the failed invite is sent"
    );
    assert_eq!(
        h.invites("three@acme.test").len(),
        1,
        "the waiting hire is done"
    );
    let (_, ready) = readyz(&h, "").await;
    assert_eq!(ready["status"], "ready", "{ready}");
}
