//! Retry, pacing, error mapping and bad responses, against a scripted loopback server. All
//! waits go through `ManualClock`, so the tests are instant and assert the exact waits.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failure should stop the test loudly

use crate::common;

use std::time::Duration;

use common::*;
use keycard::admin_api::{
    AdminApiError, CreateInvite, DecodeErrorKind, ErrorCode, ErrorType, ListUsers, OrgRole,
    PacingConfig, RateLimit, RetryPolicy, TransportErrorKind,
};
use keycard::clock::Clock;
use serde_json::json;

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

#[tokio::test]
async fn rate_limited_call_waits_exactly_retry_after() {
    let server = ScriptServer::start(vec![
        Canned::error(429, "rate_limit_error", None).header("retry-after", "2"),
        Canned::ok(user_json("user_1")).header("request-id", "req_second"),
    ])
    .await;
    let clock = manual_clock();
    let reply = client(&server, &clock).get_user("user_1").await.unwrap();
    assert_eq!(reply.value.id, "user_1");
    assert_eq!(reply.meta.attempts, 2);
    assert_eq!(reply.meta.request_id.as_deref(), Some("req_second"));
    assert_eq!(reply.meta.waited, secs(2.0));
    assert_eq!(clock.slept(), [secs(2.0)]);
}

#[tokio::test]
async fn retry_after_ms_is_preferred() {
    let server = ScriptServer::start(vec![
        Canned::error(429, "rate_limit_error", None)
            .header("retry-after", "2")
            .header("retry-after-ms", "1250"),
        Canned::ok(user_json("user_1")),
    ])
    .await;
    let clock = manual_clock();
    client(&server, &clock).get_user("user_1").await.unwrap();
    assert_eq!(clock.slept(), [secs(1.25)]);
}

#[tokio::test]
async fn server_errors_back_off_exponentially() {
    let server = ScriptServer::start(vec![
        Canned::error(500, "api_error", None),
        Canned::error(502, "api_error", None),
        Canned::error(504, "timeout_error", None),
        Canned::error(529, "overloaded_error", None),
        Canned::ok(user_json("user_1")),
    ])
    .await;
    let clock = manual_clock();
    let retry = RetryPolicy {
        max_attempts: 5,
        ..exact_retry()
    };
    let reply = client_with(&server, &clock, retry, None)
        .get_user("user_1")
        .await
        .unwrap();
    assert_eq!(reply.meta.attempts, 5);
    assert_eq!(clock.slept(), [secs(0.5), secs(1.0), secs(2.0), secs(4.0)]);
    assert_eq!(reply.meta.waited, secs(7.5));
}

#[tokio::test]
async fn gives_up_after_max_attempts_with_the_last_error() {
    let server = ScriptServer::start(vec![
        Canned::error(529, "overloaded_error", None),
        Canned::error(529, "overloaded_error", None),
        Canned::error(529, "overloaded_error", None),
        Canned::error(529, "overloaded_error", None).header("request-id", "req_last"),
    ])
    .await;
    let clock = manual_clock();
    let err = client(&server, &clock)
        .get_user("user_1")
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(529));
    assert_eq!(err.error_type(), Some(&ErrorType::OverloadedError));
    assert_eq!(err.attempts(), 4);
    assert_eq!(err.request_id(), Some("req_last"));
    assert!(
        err.is_retryable(),
        "still transient: the caller may reschedule"
    );
    assert_eq!(clock.slept(), [secs(0.5), secs(1.0), secs(2.0)]);
    assert_eq!(server.requests().len(), 4);
}

#[tokio::test]
async fn concurrent_membership_change_is_retried() {
    let server = ScriptServer::start(vec![
        Canned::error(409, "conflict_error", Some("concurrent_membership_change")),
        Canned::ok(json!({"id": "user_1", "type": "user_deleted"})),
    ])
    .await;
    let clock = manual_clock();
    let reply = client(&server, &clock).remove_user("user_1").await.unwrap();
    assert_eq!(reply.value.id, "user_1");
    assert_eq!(reply.meta.attempts, 2);
    assert_eq!(clock.slept(), [secs(0.5)]);
    let methods: Vec<_> = server.requests().iter().map(|r| r.method.clone()).collect();
    assert_eq!(methods, ["DELETE", "DELETE"]);
}

#[tokio::test]
async fn change_outcome_unknown_sends_the_same_request_again() {
    let server = ScriptServer::start(vec![
        Canned::error(503, "api_error", Some("change_outcome_unknown")).header("retry-after", "3"),
        Canned::ok(invite_json("invite_1")),
    ])
    .await;
    let clock = manual_clock();
    let reply = client(&server, &clock)
        .create_invite(&CreateInvite::new("new@example.com", OrgRole::Developer))
        .await
        .unwrap();
    assert_eq!(reply.value.id, "invite_1");
    assert_eq!(clock.slept(), [secs(3.0)]);
    let requests = server.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[0].path, requests[1].path);
    assert_eq!(requests[0].body, requests[1].body);
    assert_eq!(
        requests[0].json(),
        json!({"email": "new@example.com", "role": "developer"})
    );
}

#[tokio::test]
async fn retry_after_above_the_maximum_gives_up_at_once() {
    let server = ScriptServer::start(vec![
        Canned::error(429, "rate_limit_error", None).header("retry-after", "3600"),
    ])
    .await;
    let clock = manual_clock();
    let err = client(&server, &clock)
        .create_invite(&CreateInvite::new("a@example.com", OrgRole::User))
        .await
        .unwrap_err();
    assert!(err.is_rate_limited());
    assert_eq!(err.attempts(), 1);
    assert_eq!(err.api().and_then(|a| a.retry_after), Some(secs(3600.0)));
    assert!(clock.slept().is_empty());
    assert_eq!(server.requests().len(), 1);
}

#[tokio::test]
async fn final_client_errors_are_not_retried_and_are_typed() {
    let cases = [
        (
            400,
            "invalid_request_error",
            Some("already_member"),
            Some(ErrorCode::AlreadyMember),
        ),
        (
            400,
            "invalid_request_error",
            Some("invite_already_exists"),
            Some(ErrorCode::InviteAlreadyExists),
        ),
        (
            400,
            "invalid_request_error",
            Some("org_member_limit_exceeded"),
            Some(ErrorCode::OrgMemberLimitExceeded),
        ),
        (
            400,
            "invalid_request_error",
            Some("organization_not_enrolled_in_beta"),
            Some(ErrorCode::OrganizationNotEnrolledInBeta),
        ),
        (
            400,
            "invalid_request_error",
            Some("brand_new_code"),
            Some(ErrorCode::Other("brand_new_code".into())),
        ),
        (401, "authentication_error", None, None),
        (403, "permission_error", None, None),
        (404, "not_found_error", None, None),
        (413, "request_too_large", None, None),
    ];
    for (status, error_type, code, expected_code) in cases {
        let server = ScriptServer::start(vec![Canned::error(status, error_type, code)]).await;
        let clock = manual_clock();
        let err = client(&server, &clock)
            .create_invite(&CreateInvite::new("a@example.com", OrgRole::User))
            .await
            .unwrap_err();
        assert_eq!(err.status(), Some(status));
        assert_eq!(err.error_type(), Some(&ErrorType::from(error_type)));
        assert_eq!(err.error_code(), expected_code.as_ref());
        assert_eq!(err.attempts(), 1, "{status} {code:?}");
        assert!(!err.is_retryable());
        assert!(clock.slept().is_empty());
        assert_eq!(err.is_not_found(), status == 404);
        assert_eq!(err.is_auth_error(), status == 401 || status == 403);
        assert_eq!(
            err.suggests_reread(),
            matches!(code, Some("already_member" | "invite_already_exists"))
        );
        // The test server always sends a request-id header; it wins over the body's.
        assert_eq!(err.request_id(), Some("req_test_1"));
    }
}

#[tokio::test]
async fn request_id_falls_back_to_the_error_body() {
    // An empty header value counts as absent.
    let server = ScriptServer::start(vec![
        Canned::error(404, "not_found_error", None).header("request-id", ""),
    ])
    .await;
    let clock = manual_clock();
    let err = client(&server, &clock)
        .get_invite("invite_x")
        .await
        .unwrap_err();
    assert_eq!(err.request_id(), Some("req_body_404"));
    assert!(err.is_not_found());
    assert!(err.to_string().contains("req_body_404"));
}

#[tokio::test]
async fn non_json_gateway_error_is_retried_then_surfaced_with_a_snippet() {
    let html = "<html><body>502 Bad Gateway</body></html>";
    let server = ScriptServer::start(vec![
        Canned::raw(502, html).header("content-type", "text/html"),
        Canned::raw(502, html).header("content-type", "text/html"),
    ])
    .await;
    let clock = manual_clock();
    let retry = RetryPolicy {
        max_attempts: 2,
        ..exact_retry()
    };
    let err = client_with(&server, &clock, retry, None)
        .get_workspace("wrkspc_1")
        .await
        .unwrap_err();
    let api = err.api().expect("an API error");
    assert_eq!(api.status, 502);
    assert_eq!(api.error_type, None);
    assert_eq!(api.body_snippet.as_deref(), Some(html));
    assert_eq!(api.attempts, 2);
    assert_eq!(clock.slept(), [secs(0.5)]);
}

#[tokio::test]
async fn empty_error_body_maps_by_status() {
    let server = ScriptServer::start(vec![Canned::raw(500, ""), Canned::raw(403, "")]).await;
    let clock = manual_clock();
    let err = client(&server, &clock)
        .get_organization()
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(403));
    assert_eq!(
        err.api().map(|a| a.message.as_str()),
        Some("empty error body")
    );
    assert_eq!(err.attempts(), 2);
}

#[tokio::test]
async fn truncated_json_on_a_read_is_read_again() {
    let server = ScriptServer::start(vec![
        Canned::raw(200, r#"{"id":"user_1","type":"user","ema"#),
        Canned::ok(user_json("user_1")),
    ])
    .await;
    let clock = manual_clock();
    let reply = client(&server, &clock).get_user("user_1").await.unwrap();
    assert_eq!(reply.meta.attempts, 2);
    assert_eq!(clock.slept(), [secs(0.5)]);
}

#[tokio::test]
async fn truncated_json_on_a_mutation_is_not_repeated() {
    let server = ScriptServer::start(vec![Canned::raw(200, r#"{"id":"user_1","ro"#)]).await;
    let clock = manual_clock();
    let err = client(&server, &clock)
        .update_user_role("user_1", &OrgRole::Developer)
        .await
        .unwrap_err();
    match &err {
        AdminApiError::Decode {
            status,
            kind,
            request_id,
            snippet,
            attempts,
            ..
        } => {
            assert_eq!(*status, 200);
            assert_eq!(*kind, DecodeErrorKind::Truncated);
            assert_eq!(request_id.as_deref(), Some("req_test_1"));
            assert_eq!(snippet, r#"{"id":"user_1","ro"#);
            assert_eq!(*attempts, 1);
        }
        other => panic!("expected Decode, got {other:?}"),
    }
    assert!(err.outcome_unknown());
    assert_eq!(server.requests().len(), 1);
    assert!(clock.slept().is_empty());
}

#[tokio::test]
async fn wrong_shapes_are_decode_errors_and_not_retried() {
    for body in [
        json!({"id": "user_1"}),
        json!([]),
        json!({"id": "user_1", "email": "e", "name": "n", "role": 7, "added_at": "2026-01-01T00:00:00Z"}),
        json!({"id": "user_1", "email": "e", "name": "n", "role": "user", "added_at": "yesterday"}),
    ] {
        let server = ScriptServer::start(vec![Canned::ok(body.clone())]).await;
        let clock = manual_clock();
        let err = client(&server, &clock)
            .get_user("user_1")
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                AdminApiError::Decode {
                    kind: DecodeErrorKind::UnexpectedShape,
                    attempts: 1,
                    ..
                }
            ),
            "{body}: {err:?}"
        );
        assert!(!err.is_retryable());
    }
    // A list envelope without `data`.
    let server = ScriptServer::start(vec![Canned::ok(json!({"has_more": false}))]).await;
    let clock = manual_clock();
    let err = client(&server, &clock)
        .list_users(&ListUsers::new())
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        AdminApiError::Decode {
            kind: DecodeErrorKind::UnexpectedShape,
            ..
        }
    ));
}

#[tokio::test]
async fn empty_and_non_json_success_bodies() {
    let server = ScriptServer::start(vec![
        Canned::raw(200, ""),
        Canned::raw(200, ""),
        Canned::raw(200, "OK"),
    ])
    .await;
    let clock = manual_clock();
    let retry = RetryPolicy {
        max_attempts: 2,
        ..exact_retry()
    };
    let c = client_with(&server, &clock, retry, None);
    let err = c.get_api_key("apikey_1").await.unwrap_err();
    assert!(matches!(
        err,
        AdminApiError::Decode {
            kind: DecodeErrorKind::Empty,
            attempts: 2,
            ..
        }
    ));
    let err = c.get_api_key("apikey_1").await.unwrap_err();
    assert!(matches!(
        err,
        AdminApiError::Decode {
            kind: DecodeErrorKind::NotJson,
            attempts: 1,
            ..
        }
    ));
}

#[tokio::test]
async fn redirects_are_not_followed() {
    let server = ScriptServer::start(vec![
        Canned::raw(302, "").header("location", "http://127.0.0.1:9/steal"),
    ])
    .await;
    let clock = manual_clock();
    let err = client(&server, &clock)
        .get_organization()
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(302));
    assert_eq!(err.attempts(), 1);
}

#[tokio::test]
async fn connection_refused_is_retried_then_a_transport_error() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let clock = manual_clock();
    let client = keycard::admin_api::AdminClient::with_clock(
        keycard::admin_api::AdminClientConfig::new(keycard::admin_api::Credential::admin_key(
            ADMIN_KEY,
        ))
        .base_url(format!("http://127.0.0.1:{port}"))
        .retry(RetryPolicy {
            max_attempts: 3,
            ..exact_retry()
        })
        .pacing(None),
        clock.clone(),
    )
    .unwrap();
    let err = client.get_organization().await.unwrap_err();
    assert!(
        matches!(
            err,
            AdminApiError::Transport {
                kind: TransportErrorKind::Connect,
                attempts: 3,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.is_retryable());
    assert!(!err.to_string().contains("TOPSECRET"));
    assert_eq!(clock.slept(), [secs(0.5), secs(1.0)]);
}

#[tokio::test]
async fn slow_server_times_out_per_attempt() {
    let server = ScriptServer::start(vec![
        Canned::ok(user_json("user_1")).delay(Duration::from_secs(3)),
        Canned::ok(user_json("user_1")).delay(Duration::from_secs(3)),
    ])
    .await;
    let clock = manual_clock();
    let client = keycard::admin_api::AdminClient::with_clock(
        keycard::admin_api::AdminClientConfig::new(keycard::admin_api::Credential::admin_key(
            ADMIN_KEY,
        ))
        .base_url(server.base_url.clone())
        .retry(RetryPolicy {
            max_attempts: 2,
            ..exact_retry()
        })
        .pacing(None)
        .timeout(Duration::from_millis(200)),
        clock.clone(),
    )
    .unwrap();
    let err = client.get_user("user_1").await.unwrap_err();
    assert!(
        matches!(
            err,
            AdminApiError::Transport {
                kind: TransportErrorKind::Timeout,
                attempts: 2,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.outcome_unknown());
}

#[tokio::test]
async fn refusal_of_a_resend_after_a_timed_out_mutation_says_reread() {
    // The first POST times out (it may have been applied); the resend is refused as a
    // duplicate. That refusal may be the echo of our own success.
    let server = ScriptServer::start(vec![
        Canned::ok(invite_json("invite_1")).delay(Duration::from_secs(3)),
        Canned::error(400, "invalid_request_error", None),
    ])
    .await;
    let clock = manual_clock();
    let client = keycard::admin_api::AdminClient::with_clock(
        keycard::admin_api::AdminClientConfig::new(keycard::admin_api::Credential::admin_key(
            ADMIN_KEY,
        ))
        .base_url(server.base_url.clone())
        .retry(exact_retry())
        .pacing(None)
        .timeout(Duration::from_millis(200)),
        clock.clone(),
    )
    .expect("client builds");
    let err = client
        .create_invite(&CreateInvite::new("new@example.com", OrgRole::User))
        .await
        .expect_err("the resend is refused");
    assert_eq!(err.status(), Some(400));
    assert_eq!(err.attempts(), 2);
    assert!(err.outcome_unknown());
    assert!(err.suggests_reread());
    assert!(!err.is_retryable());
}

#[tokio::test]
async fn connection_cut_mid_body_is_a_retryable_transport_error() {
    // Promise 500 bytes, send a few, hang up.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        while let Ok((mut socket, _)) = listener.accept().await {
            let mut buf = [0u8; 4096];
            let _ = socket.read(&mut buf).await;
            let _ = socket
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 500\r\nrequest-id: req_cut\r\n\r\n{\"id\":\"us")
                .await;
            let _ = socket.shutdown().await;
        }
    });
    let clock = manual_clock();
    let client = keycard::admin_api::AdminClient::with_clock(
        keycard::admin_api::AdminClientConfig::new(keycard::admin_api::Credential::admin_key(
            ADMIN_KEY,
        ))
        .base_url(format!("http://{addr}"))
        .retry(RetryPolicy {
            max_attempts: 2,
            ..exact_retry()
        })
        .pacing(None),
        clock.clone(),
    )
    .unwrap();
    let err = client.get_user("user_1").await.unwrap_err();
    match &err {
        AdminApiError::Transport {
            kind,
            attempts,
            message,
        } => {
            assert_eq!(*kind, TransportErrorKind::Body);
            assert_eq!(*attempts, 2);
            assert!(message.contains("req_cut"), "{message}");
        }
        other => panic!("expected Transport, got {other:?}"),
    }
    assert_eq!(clock.slept(), [secs(0.5)]);
}

// --- pacing --------------------------------------------------------------------------------

fn pacing(general: (u32, u64, u32), invites: (u32, u64, u32)) -> PacingConfig {
    PacingConfig {
        general: RateLimit {
            requests: general.0,
            per: Duration::from_secs(general.1),
            burst: general.2,
        },
        invites: RateLimit {
            requests: invites.0,
            per: Duration::from_secs(invites.1),
            burst: invites.2,
        },
        safety_fraction: 1.0,
    }
}

#[tokio::test]
async fn pacing_spreads_requests_within_the_budget() {
    let clock = manual_clock();
    let server = ScriptServer::start_with_clock(
        (0..12).map(|_| Canned::ok(user_json("user_1"))).collect(),
        clock.clone(),
    )
    .await;
    // 5 per minute, burst 1 => one request every 15 s.
    let c = client_with(
        &server,
        &clock,
        exact_retry(),
        Some(pacing((5, 60, 1), (1200, 3600, 20))),
    );
    for _ in 0..12 {
        c.get_user("user_1").await.unwrap();
    }
    assert_eq!(clock.slept(), vec![secs(15.0); 11]);
    let times: Vec<_> = server.requests().iter().filter_map(|r| r.at).collect();
    for window_start in &times {
        let in_window = times
            .iter()
            .filter(|t| **t >= *window_start && **t - *window_start < chrono::Duration::seconds(60))
            .count();
        assert!(in_window <= 5);
    }
}

#[tokio::test]
async fn retries_consume_pacing_budget() {
    let clock = manual_clock();
    let server = ScriptServer::start_with_clock(
        vec![
            Canned::error(500, "api_error", None),
            Canned::ok(user_json("user_1")),
        ],
        clock.clone(),
    )
    .await;
    let c = client_with(
        &server,
        &clock,
        exact_retry(),
        Some(pacing((5, 60, 1), (1200, 3600, 20))),
    );
    let reply = c.get_user("user_1").await.unwrap();
    // 0.5 s backoff, then the pacer holds the retry until its 15 s slot.
    assert_eq!(clock.slept(), [secs(0.5), secs(14.5)]);
    assert_eq!(reply.meta.waited, secs(15.0));
    let times: Vec<_> = server.requests().iter().filter_map(|r| r.at).collect();
    assert_eq!(times, [t0(), t0() + chrono::Duration::seconds(15)]);
}

#[tokio::test]
async fn invite_creation_has_its_own_hourly_budget() {
    let clock = manual_clock();
    let mut script = Vec::new();
    for i in 0..3 {
        script.push(Canned::ok(invite_json(&format!("invite_{i}"))));
        script.push(Canned::ok(user_json("user_1")));
    }
    let server = ScriptServer::start_with_clock(script, clock.clone()).await;
    // Invites: 3 per hour, burst 1 => one every 30 min. General: roomy.
    let c = client_with(
        &server,
        &clock,
        exact_retry(),
        Some(pacing((100, 60, 10), (3, 3600, 1))),
    );
    for _ in 0..3 {
        c.create_invite(&CreateInvite::new("a@example.com", OrgRole::User))
            .await
            .unwrap();
        c.get_user("user_1").await.unwrap();
    }
    // Only the invites waited; the reads in between did not.
    assert_eq!(clock.slept(), [secs(1800.0), secs(1800.0)]);
    assert_eq!(clock.now() - t0(), chrono::Duration::seconds(3600));
}

#[tokio::test]
async fn default_pacing_never_waits_for_light_traffic() {
    let clock = manual_clock();
    let server = ScriptServer::start(vec![Canned::ok(user_json("user_1")); 10]).await;
    let c = client_with(
        &server,
        &clock,
        exact_retry(),
        Some(PacingConfig::default()),
    );
    for _ in 0..10 {
        c.get_user("user_1").await.unwrap();
    }
    assert!(clock.slept().is_empty());
}
