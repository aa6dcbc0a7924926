//! What every client must do against its simulator, checked for all five senders: read the
//! whole directory across page boundaries, refuse a bad credential without leaking it, wait
//! exactly what a 429 asks, retry 5xx with backoff, and return the newest record.

use std::time::Duration;

use keycard::sender_api::*;
use keycard::sender_sim::Fault;
use serde_json::json;

use super::common::*;

/// How many list calls a 2,500-person directory with 10 terminated takes, per kind.
fn expected_pages(kind: SenderKind) -> usize {
    match kind {
        // per=100: 25 pages.
        SenderKind::Gusto => 25,
        // One answer, no pagination.
        SenderKind::HiBob => 1,
        // limit=200: 2,490 listed users in 13 pages, then the deprovisioned pass (1 page).
        SenderKind::Okta => 14,
        // $top=999: 3 pages.
        SenderKind::Graph => 3,
        // page[limit]=1000: 3 pages.
        SenderKind::BambooHr => 3,
    }
}

#[tokio::test]
async fn every_client_reads_a_2500_person_directory_across_pages() {
    for kind in SenderKind::ALL {
        let s = start(kind, json!({ "generate": 2500 })).await;
        let ids: Vec<String> = s.sim().people().iter().map(|p| p.id.clone()).collect();
        for id in ids.iter().step_by(250) {
            s.sim()
                .terminate(id, None)
                .unwrap_or_else(|e| panic!("{kind}: {e}"));
        }
        let dir = client(&s)
            .list_all()
            .await
            .unwrap_or_else(|e| panic!("{kind}: {e}"));
        assert_eq!(dir.len(), 2500, "{kind}");
        let mut seen: Vec<&str> = dir
            .records
            .iter()
            .map(|r| r.source_person_id.as_str())
            .collect();
        seen.sort_unstable();
        seen.dedup();
        assert_eq!(seen.len(), 2500, "{kind}: duplicates across pages");
        let terminated = dir
            .records
            .iter()
            .filter(|r| r.status == EmploymentStatus::Terminated)
            .count();
        assert_eq!(terminated, 10, "{kind}");
        assert!(
            dir.records.iter().all(|r| r
                .email
                .as_deref()
                .is_some_and(|e| e.ends_with("@acme.test"))),
            "{kind}: every record has its work email"
        );
        let calls = s.statuses(list_route(kind));
        assert_eq!(calls.len(), expected_pages(kind), "{kind}: {calls:?}");
        assert!(calls.iter().all(|c| *c == 200), "{kind}: {calls:?}");
        assert_eq!(dir.pages as usize, expected_pages(kind), "{kind}");
    }
}

#[tokio::test]
async fn every_client_reports_a_refused_credential_without_the_secret() {
    for kind in SenderKind::ALL {
        let s = start(kind, json!({ "generate": 1 })).await;
        let id = s.sim().people()[0].id.clone();
        let wrong = if kind == SenderKind::HiBob {
            "SERVICE-USER-SIM:TOPSECRET-wrong-token"
        } else {
            "TOPSECRET-wrong-token"
        };
        let err = client_with(&s, Some(wrong), false)
            .get(&id)
            .await
            .err()
            .unwrap_or_else(|| panic!("{kind}: a wrong credential was accepted"));
        assert!(
            matches!(
                err,
                SenderApiError::Unauthorized {
                    status: 401,
                    attempts: 1,
                    ..
                }
            ),
            "{kind}: {err:?}"
        );
        assert!(!err.is_retryable(), "{kind}");
        let text = format!("{err} {err:?}");
        assert!(!text.contains("TOPSECRET"), "{kind}: {text}");
        // Not retried: one call, refused.
        assert_eq!(s.statuses(get_route(kind)), [401], "{kind}");
        assert_eq!(s.sim().calls()[0].authorized, Some(false), "{kind}");
    }
}

#[tokio::test]
async fn every_client_waits_exactly_what_a_429_asks() {
    for kind in SenderKind::ALL {
        let s = start(kind, json!({ "generate": 1 })).await;
        let id = s.sim().people()[0].id.clone();
        s.sim()
            .inject(Fault {
                route: get_route(kind).into(),
                status: Some(429),
                count: 2,
                retry_after: Some(7),
                delay_ms: None,
            })
            .unwrap_or_else(|e| panic!("{kind}: {e}"));
        let record = client(&s)
            .get(&id)
            .await
            .unwrap_or_else(|e| panic!("{kind}: {e}"));
        assert_eq!(record.source_person_id, id, "{kind}");
        // Each vendor announces the wait its own way (Retry-After, X-Rate-Limit-Reset,
        // X-RateLimit-Reset); the client waits exactly that, twice.
        assert_eq!(s.slept(), [Duration::from_secs(7); 2], "{kind}");
        assert_eq!(s.statuses(get_route(kind)), [429, 429, 200], "{kind}");
        assert_eq!(
            record.fetched_at,
            t0() + chrono::Duration::seconds(14),
            "{kind}"
        );
    }
}

#[tokio::test]
async fn a_429_asking_longer_than_allowed_is_returned_for_rescheduling() {
    for kind in SenderKind::ALL {
        let s = start(kind, json!({ "generate": 1 })).await;
        let id = s.sim().people()[0].id.clone();
        s.sim()
            .inject(Fault {
                route: "*".into(),
                status: Some(429),
                count: 1,
                retry_after: Some(600),
                delay_ms: None,
            })
            .unwrap_or_else(|e| panic!("{kind}: {e}"));
        let err = client(&s).get(&id).await.err();
        assert!(
            matches!(
                err,
                Some(SenderApiError::RateLimited { retry_after: Some(d), attempts: 1, .. })
                    if d == Duration::from_secs(600)
            ),
            "{kind}: {err:?}"
        );
        assert!(s.slept().is_empty(), "{kind}");
    }
}

#[tokio::test]
async fn every_client_retries_server_errors_with_backoff() {
    for kind in SenderKind::ALL {
        let s = start(kind, json!({ "generate": 3 })).await;
        s.sim()
            .inject(Fault {
                route: list_route(kind).into(),
                status: Some(500),
                count: 2,
                retry_after: None,
                delay_ms: None,
            })
            .unwrap_or_else(|e| panic!("{kind}: {e}"));
        let dir = client(&s)
            .list_all()
            .await
            .unwrap_or_else(|e| panic!("{kind}: {e}"));
        assert_eq!(dir.len(), 3, "{kind}");
        assert_eq!(
            s.slept(),
            [Duration::from_millis(500), Duration::from_secs(1)],
            "{kind}"
        );
        let statuses = s.statuses(list_route(kind));
        assert_eq!(&statuses[..3], [500, 500, 200], "{kind}: {statuses:?}");

        // A server that stays down is reported after the allowed attempts.
        s.sim()
            .inject(Fault {
                route: get_route(kind).into(),
                status: Some(503),
                count: 10,
                retry_after: None,
                delay_ms: None,
            })
            .unwrap_or_else(|e| panic!("{kind}: {e}"));
        let id = s.sim().people()[0].id.clone();
        let err = client(&s).get(&id).await.err();
        assert!(
            matches!(
                err,
                Some(SenderApiError::Api {
                    status: 503,
                    attempts: 4,
                    ..
                })
            ),
            "{kind}: {err:?}"
        );
        assert!(err.is_some_and(|e| e.is_retryable()), "{kind}");
    }
}

#[tokio::test]
async fn a_record_changed_between_two_reads_reads_as_the_newest() {
    for kind in SenderKind::ALL {
        let s = start(
            kind,
            json!({ "people": [{ "first_name": "Ada", "last_name": "Lovelace",
                "work_email": "ada@acme.test", "department": "Research", "title": "Analyst" }] }),
        )
        .await;
        let id = s.sim().people()[0].id.clone();
        let c = client(&s);
        let first = c.get(&id).await.unwrap_or_else(|e| panic!("{kind}: {e}"));
        assert_eq!(first.department.as_deref(), Some("Research"), "{kind}");
        assert_eq!(first.status, EmploymentStatus::Active, "{kind}");
        // Changed twice more before the next read: the read sees the latest state.
        s.sim()
            .update_person(&id, &json!({ "department": "Engineering" }))
            .unwrap_or_else(|e| panic!("{kind}: {e}"));
        s.clock.advance(Duration::from_secs(60));
        s.sim()
            .update_person(&id, &json!({ "department": "Sales", "title": "Lead" }))
            .unwrap_or_else(|e| panic!("{kind}: {e}"));
        let second = c.get(&id).await.unwrap_or_else(|e| panic!("{kind}: {e}"));
        assert_eq!(second.department.as_deref(), Some("Sales"), "{kind}");
        assert_eq!(second.title.as_deref(), Some("Lead"), "{kind}");
        assert!(second.fetched_at > first.fetched_at, "{kind}");
        assert_eq!(second.email.as_deref(), Some("ada@acme.test"), "{kind}");
        assert_eq!(
            second.full_name().as_deref(),
            Some("Ada Lovelace"),
            "{kind}"
        );
        // A termination reads as one.
        s.sim()
            .terminate(&id, None)
            .unwrap_or_else(|e| panic!("{kind}: {e}"));
        let third = c.get(&id).await.unwrap_or_else(|e| panic!("{kind}: {e}"));
        assert_eq!(third.status, EmploymentStatus::Terminated, "{kind}");
        assert!(!third.active, "{kind}");
        // A deleted record is NotFound, not a transport error.
        s.sim()
            .delete_person(&id)
            .unwrap_or_else(|e| panic!("{kind}: {e}"));
        let err = c.get(&id).await.err();
        assert!(
            matches!(err, Some(SenderApiError::NotFound { .. })),
            "{kind}: {err:?}"
        );
    }
}

#[tokio::test]
async fn a_paced_client_never_meets_the_published_limit() {
    // Each simulator enforces the limit the vendor publishes (or the assumed one); the client's
    // default pacing keeps a burst of reads under it.
    for kind in SenderKind::ALL {
        let s = start(kind, json!({ "generate": 1 })).await;
        let id = s.sim().people()[0].id.clone();
        let c = client_with(&s, None, true);
        let n = match kind {
            SenderKind::HiBob => 150,
            _ => 300,
        };
        for _ in 0..n {
            c.get(&id).await.unwrap_or_else(|e| panic!("{kind}: {e}"));
        }
        let statuses = s.statuses(get_route(kind));
        assert_eq!(statuses.len(), n, "{kind}");
        assert!(statuses.iter().all(|s| *s == 200), "{kind}: a 429 was met");
        assert!(!s.slept().is_empty(), "{kind}: pacing never waited");
    }
}

#[tokio::test]
async fn a_429_storm_is_waited_through() {
    for kind in SenderKind::ALL {
        let s = start(kind, json!({ "generate": 1 })).await;
        let id = s.sim().people()[0].id.clone();
        s.sim()
            .inject(Fault {
                route: "*".into(),
                status: Some(429),
                count: 8,
                retry_after: Some(30),
                delay_ms: None,
            })
            .unwrap_or_else(|e| panic!("{kind}: {e}"));
        let record = client(&s)
            .get(&id)
            .await
            .unwrap_or_else(|e| panic!("{kind}: {e}"));
        assert_eq!(record.source_person_id, id);
        assert_eq!(s.slept(), [Duration::from_secs(30); 8], "{kind}");
    }
}
