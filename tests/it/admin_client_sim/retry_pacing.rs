//! Retries (§4.2, §14) and client-side pacing (§5) against the simulator's real rate limits.
//! Client and simulator share one `ManualClock`: every wait the client takes moves the
//! simulator's time by exactly that much, so the simulator's buckets see the client's real
//! request schedule.

use std::time::Duration;

use anyhow::Context;
use chrono::{DateTime, Utc};
use keycard::admin_api::*;
use keycard::admin_sim::{CallRecord, Fault};
use keycard::clock::Clock;
use serde_json::json;

use crate::common::sim::{api_failure, console};
use crate::common::{exact_retry, t0};

fn at(call: &CallRecord) -> anyhow::Result<DateTime<Utc>> {
    Ok(DateTime::parse_from_rfc3339(&call.at)
        .with_context(|| format!("call time {}", call.at))?
        .with_timezone(&Utc))
}

/// The most calls that fall in any half-open window `[t, t + window)`.
fn max_in_window(calls: &[CallRecord], window: chrono::Duration) -> anyhow::Result<usize> {
    let times = calls.iter().map(at).collect::<anyhow::Result<Vec<_>>>()?;
    Ok(times
        .iter()
        .map(|start| {
            times
                .iter()
                .filter(|t| **t >= *start && **t < *start + window)
                .count()
        })
        .max()
        .unwrap_or(0))
}

#[tokio::test]
async fn rate_limited_call_waits_exactly_retry_after() -> anyhow::Result<()> {
    let s = console().await?;
    s.inject_fault(Fault {
        route: "users.list".into(),
        status: 429,
        count: 1,
        apply: false,
        retry_after: Some(7),
    })?;
    // The default client: real pacing, which must add nothing to the server's ask.
    let reply = s.client.list_users(&ListUsers::new()).await?;
    assert_eq!(reply.value.data.len(), 1);
    assert_eq!(reply.meta.attempts, 2);
    assert_eq!(reply.meta.waited, Duration::from_secs(7));
    assert_eq!(s.clock.slept(), [Duration::from_secs(7)]);
    let calls = s.calls_for("users.list");
    let statuses: Vec<(u16, Option<&str>)> =
        calls.iter().map(|c| (c.status, c.error_type)).collect();
    assert_eq!(statuses, [(429, Some("rate_limit_error")), (200, None)]);
    assert_eq!(
        at(&calls[1])? - at(&calls[0])?,
        chrono::Duration::seconds(7)
    );
    Ok(())
}

#[tokio::test]
async fn retry_after_beyond_the_maximum_is_returned_not_waited() -> anyhow::Result<()> {
    let s = console().await?;
    s.inject_fault(Fault {
        route: "*".into(),
        status: 429,
        count: 1,
        apply: false,
        retry_after: Some(120),
    })?;
    let err = api_failure(s.client.get_organization().await)?;
    assert_eq!(err.status, 429);
    assert_eq!(err.error_type, Some(ErrorType::RateLimitError));
    assert_eq!(err.retry_after, Some(Duration::from_secs(120)));
    assert_eq!(err.attempts, 1);
    assert!(err.is_retryable(), "the caller may reschedule");
    assert!(s.clock.slept().is_empty());
    Ok(())
}

#[tokio::test]
async fn server_errors_are_retried_then_succeed() -> anyhow::Result<()> {
    let s = console().await?;
    let client = s.unpaced(exact_retry())?;
    let dev = s.add_user("dev@acme.test", "developer");

    s.inject("users.get", 500, 2)?;
    let reply = client.get_user(&dev).await?;
    assert_eq!(reply.meta.attempts, 3);
    assert_eq!(
        s.clock.slept(),
        [Duration::from_millis(500), Duration::from_secs(1)]
    );
    let log: Vec<(u16, Option<&str>)> = s
        .calls_for("users.get")
        .iter()
        .map(|c| (c.status, c.error_type))
        .collect();
    assert_eq!(
        log,
        [
            (500, Some("api_error")),
            (500, Some("api_error")),
            (200, None)
        ]
    );

    // 529 on a mutation: the identical request goes again and is applied once.
    s.sim.clear_calls();
    s.inject("users.update", 529, 1)?;
    let updated = client.update_user_role(&dev, &OrgRole::Billing).await?;
    assert_eq!(updated.meta.attempts, 2);
    assert_eq!(updated.value.role, OrgRole::Billing);
    let log: Vec<(u16, Option<&str>)> = s
        .calls_for("users.update")
        .iter()
        .map(|c| (c.status, c.error_type))
        .collect();
    assert_eq!(log, [(529, Some("overloaded_error")), (200, None)]);
    assert_eq!(client.get_user(&dev).await?.value.role, OrgRole::Billing);

    // Past the policy the last error comes back, typed.
    s.inject("users.get", 529, 4)?;
    let err = api_failure(client.get_user(&dev).await)?;
    assert_eq!((err.status, err.attempts), (529, 4));
    assert_eq!(err.error_type, Some(ErrorType::OverloadedError));
    Ok(())
}

#[tokio::test]
async fn a_final_400_is_sent_once() -> anyhow::Result<()> {
    let s = console().await?;
    let dev = s.add_user("dev@acme.test", "developer");
    let err = api_failure(s.client.update_user_role(&dev, &OrgRole::Admin).await)?;
    assert_eq!(err.status, 400);
    assert_eq!(err.attempts, 1);
    assert_eq!(s.calls_for("users.update").len(), 1);
    assert!(s.clock.slept().is_empty());
    assert_eq!(s.clock.now(), t0(), "no time spent waiting");
    Ok(())
}

#[tokio::test]
async fn the_simulator_enforces_100_per_minute_without_pacing() -> anyhow::Result<()> {
    // Control for the pacing test below: an unpaced burst does hit the limit.
    let s = console().await?;
    let burst = s.unpaced(RetryPolicy::none())?;
    for _ in 0..100 {
        burst.get_organization().await?;
    }
    let err = api_failure(burst.get_organization().await)?;
    assert_eq!(err.status, 429);
    assert_eq!(err.error_type, Some(ErrorType::RateLimitError));
    assert_eq!(err.retry_after, Some(Duration::from_secs(1)));
    // A retrying client waits out exactly what the server asks and gets through.
    let retrying = s.unpaced(exact_retry())?;
    let reply = retrying.get_organization().await?;
    assert_eq!(reply.meta.attempts, 2);
    assert_eq!(s.clock.slept(), [Duration::from_secs(1)]);
    Ok(())
}

#[tokio::test]
async fn default_pacing_keeps_250_calls_under_the_real_budget() -> anyhow::Result<()> {
    let s = console().await?;
    assert_eq!(s.sim.settings().rate_limit_per_minute, 100);
    let dev = s.add_user("dev@acme.test", "developer");
    for n in 0..250 {
        match n % 3 {
            0 => drop(s.client.get_organization().await?),
            1 => drop(s.client.list_users(&ListUsers::new().limit(5)).await?),
            _ => drop(s.client.get_user(&dev).await?),
        }
    }
    let calls = s.sim.calls();
    assert_eq!(calls.len(), 250);
    let limited = calls.iter().filter(|c| c.status == 429).count();
    assert_eq!(
        limited, 0,
        "pacing must keep the simulator from ever answering 429"
    );
    assert!(calls.iter().all(|c| c.status == 200));
    // 250 calls at 90/min after a burst of 10 take well over two minutes of shared-clock
    // time, and no 60-second window holds more than the budget of 100.
    let elapsed = s.clock.now() - t0();
    assert!(elapsed >= chrono::Duration::seconds(120), "{elapsed}");
    assert!(s.clock.total_slept() >= Duration::from_secs(120));
    assert!(max_in_window(&calls, chrono::Duration::seconds(60))? <= 100);
    Ok(())
}

fn invite_pacing(per_hour: u32) -> PacingConfig {
    PacingConfig {
        invites: RateLimit {
            requests: per_hour,
            per: Duration::from_secs(3600),
            burst: 3,
        },
        safety_fraction: 0.9,
        ..PacingConfig::default()
    }
}

#[tokio::test]
async fn invite_pacing_matches_a_low_hourly_invite_limit() -> anyhow::Result<()> {
    let s = console().await?;
    s.settings(json!({"invite_limit_per_hour": 30}))?;
    let client = s.client(|c| c.pacing(Some(invite_pacing(30))))?;
    for n in 0..40 {
        let invite = client
            .create_invite(&CreateInvite::new(
                format!("hire{n}@acme.test"),
                OrgRole::User,
            ))
            .await?;
        assert_eq!(invite.meta.attempts, 1, "invite {n} was never refused");
    }
    let creates = s.calls_for("invites.create");
    assert_eq!(creates.len(), 40);
    assert!(creates.iter().all(|c| c.status == 200));
    assert!(max_in_window(&creates, chrono::Duration::hours(1))? <= 30);
    // 27/h budget with a burst of 3: the 40th invite goes out 37 * 150 s after the first.
    let span = at(&creates[39])? - at(&creates[0])?;
    assert_eq!(span, chrono::Duration::seconds(37 * 150));
    assert_eq!(s.state_list("invites").len(), 40);

    // Other calls are not held back by the invite budget.
    let before = s.clock.now();
    client.list_invites(&ListInvites::new()).await?;
    assert_eq!(s.clock.now(), before);
    Ok(())
}

#[tokio::test]
async fn default_invite_pacing_does_not_fit_a_lower_server_limit() -> anyhow::Result<()> {
    // Control for the test above: pacing tuned for 1,200/h meets the 30/h limit.
    let s = console().await?;
    s.settings(json!({"invite_limit_per_hour": 30}))?;
    let client = s.client(|c| c.retry(RetryPolicy::none()))?;
    for n in 0..30 {
        client
            .create_invite(&CreateInvite::new(
                format!("hire{n}@acme.test"),
                OrgRole::User,
            ))
            .await?;
    }
    let err = api_failure(
        client
            .create_invite(&CreateInvite::new("one.too.many@acme.test", OrgRole::User))
            .await,
    )?;
    assert_eq!(err.status, 429);
    assert_eq!(err.error_type, Some(ErrorType::RateLimitError));
    assert!(err.retry_after.is_some_and(|d| d > Duration::from_secs(60)));
    assert_eq!(s.state_list("invites").len(), 30);
    Ok(())
}

#[tokio::test]
async fn clones_share_one_pacer_under_concurrency() -> anyhow::Result<()> {
    let s = console().await?;
    let tasks: Vec<_> = (0..5)
        .map(|_| {
            let client = s.client.clone();
            tokio::spawn(async move {
                for _ in 0..50 {
                    client.get_organization().await?;
                }
                Ok::<_, AdminApiError>(())
            })
        })
        .collect();
    for task in tasks {
        task.await??;
    }
    let calls = s.sim.calls();
    assert_eq!(calls.len(), 250);
    assert!(
        calls.iter().all(|c| c.status == 200),
        "no 429 with one shared pacer"
    );
    // The default pacing uses the whole configured budget of 100 a minute.
    assert!(max_in_window(&calls, chrono::Duration::seconds(60))? <= 100);
    Ok(())
}

#[tokio::test]
async fn a_server_limit_below_the_pacing_is_absorbed_by_retry_after() -> anyhow::Result<()> {
    // The org's real limit is half what the client paces for: 429s happen, and each is waited
    // out exactly as asked, so every call still succeeds.
    let s = console().await?;
    s.settings(json!({"rate_limit_per_minute": 50}))?;
    for _ in 0..150 {
        let reply = s.client.get_organization().await?;
        assert!(reply.meta.attempts <= 2, "{:?}", reply.meta);
    }
    let calls = s.sim.calls();
    let limited = calls.iter().filter(|c| c.status == 429).count();
    assert!(limited > 0, "the lower limit was reached");
    assert_eq!(calls.len(), 150 + limited);
    // The server allows 50 at once plus 50/min: 150 calls need 2 minutes, and waiting out
    // each retry-after exactly costs next to nothing on top.
    let elapsed = s.clock.now() - t0();
    assert!(elapsed >= chrono::Duration::seconds(119), "{elapsed}");
    assert!(elapsed <= chrono::Duration::seconds(130), "{elapsed}");
    Ok(())
}
