//! What the client logs. Alone in its own test binary on purpose (every other integration
//! test is in `tests/it`): tracing caches callsite interest process-wide, so a scoped
//! subscriber in a binary whose other tests run on parallel threads can miss events. Being
//! its own crate, it can only reach the shared support code by path.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failure should stop the test loudly

#[path = "it/support/common/mod.rs"]
mod common;

use std::sync::{Arc, Mutex};

use common::*;
use keycard::admin_api::*;

/// A `MakeWriter` that appends to a shared buffer.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn logs_name_route_status_and_request_id_but_never_the_secret_or_email() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let server = ScriptServer::start(vec![
        Canned::error(429, "rate_limit_error", None)
            .header("retry-after", "1")
            .header("request-id", "req_limited"),
        Canned::ok(page_json(vec![user_json("user_1")], false, "id"))
            .header("request-id", "req_ok"),
        Canned::error(400, "invalid_request_error", Some("already_member"))
            .header("request-id", "req_bad"),
    ])
    .await;
    let clock = manual_clock();
    let c = client(&server, &clock);
    c.list_users(&ListUsers::new().email("secret.person@example.com"))
        .await
        .unwrap();
    let _ = c
        .create_invite(&CreateInvite::new(
            "secret.person@example.com",
            OrgRole::User,
        ))
        .await;

    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    for needle in [
        "req_limited",
        "req_ok",
        "req_bad",
        "/v1/organizations/users",
        "/v1/organizations/invites",
        "retrying",
        "attempt",
        "already_member",
    ] {
        assert!(logs.contains(needle), "missing {needle:?} in logs:\n{logs}");
    }
    assert!(!logs.contains("TOPSECRET"), "secret leaked:\n{logs}");
    assert!(!logs.contains("secret.person"), "email leaked:\n{logs}");
}
