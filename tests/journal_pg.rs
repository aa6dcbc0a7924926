//! The journal against real PostgreSQL: a fresh database per test (`#[sqlx::test]`).

use chrono::{DateTime, Duration, Utc};
use keycard::ingest::{DedupeKey, LifecycleEvent, NativeEvent};
use keycard::journal::{Journal, JournalFilter};
use serde_json::json;
use sqlx::PgPool;

fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_default()
}

fn event(delivery: &str, body: serde_json::Value, received: DateTime<Utc>) -> LifecycleEvent {
    let bytes = body.to_string().into_bytes();
    NativeEvent::parse(&bytes)
        .map(|e| {
            e.into_lifecycle(
                DedupeKey {
                    source: "hr".into(),
                    delivery_id: delivery.into(),
                },
                received,
                &bytes,
            )
        })
        .unwrap_or_else(|e| panic!("fixture does not parse: {e}"))
}

fn hire(delivery: &str, at: &str) -> LifecycleEvent {
    event(
        delivery,
        json!({ "type": "person.hired", "occurred_at": at,
                "person": { "id": "E1", "email": "ada@example.com", "department": "Eng" } }),
        t(at),
    )
}

#[sqlx::test(migrations = "./migrations/postgres")]
async fn redelivery_is_a_duplicate_and_writes_nothing(pool: PgPool) -> anyhow::Result<()> {
    let journal = Journal::from_pool(pool);
    let first = journal
        .record_event(&hire("msg_1", "2026-11-28T10:00:00Z"), Some(0))
        .await?;
    let again = journal
        .record_event(&hire("msg_1", "2026-11-28T10:00:00Z"), Some(0))
        .await?;
    assert!(!first.duplicate);
    assert!(again.duplicate);
    assert_eq!(first.event_id, again.event_id);
    let page = journal
        .list_events(&JournalFilter {
            limit: 10,
            ..Default::default()
        })
        .await?;
    assert_eq!(page.data.len(), 1);
    Ok(())
}

#[sqlx::test(migrations = "./migrations/postgres")]
async fn older_event_after_departure_is_stale(pool: PgPool) -> anyhow::Result<()> {
    let journal = Journal::from_pool(pool);
    let now = t("2026-11-28T12:00:00Z");
    journal
        .record_event(&hire("m1", "2026-11-28T10:00:00Z"), Some(0))
        .await?;
    let depart = event(
        "m3",
        json!({ "type": "person.departed", "occurred_at": "2026-11-28T11:00:00Z", "person": { "id": "E1" } }),
        now,
    );
    journal.record_event(&depart, Some(0)).await?;
    journal.apply_pending_events(now, 100).await?;
    // An update that happened before the departure arrives late.
    let late = event(
        "m2",
        json!({ "type": "person.updated", "occurred_at": "2026-11-28T10:30:00Z",
                "person": { "id": "E1", "department": "Sales" } }),
        now,
    );
    journal.record_event(&late, Some(0)).await?;
    let applied = journal.apply_pending_events(now, 100).await?;
    assert_eq!(applied.len(), 1);
    assert_eq!(applied[0].status, "stale");
    let person = journal
        .find_person("E1")
        .await?
        .ok_or_else(|| anyhow::anyhow!("no person"))?;
    assert_eq!(person.status, "departed");
    assert_eq!(person.attributes["department"], "Eng");
    Ok(())
}

#[sqlx::test(migrations = "./migrations/postgres")]
async fn scheduled_event_waits_until_effective(pool: PgPool) -> anyhow::Result<()> {
    let journal = Journal::from_pool(pool);
    let now = t("2026-11-28T10:00:00Z");
    journal
        .record_event(&hire("m1", "2026-11-28T09:00:00Z"), Some(0))
        .await?;
    let leave = event(
        "m2",
        json!({ "type": "person.departed", "occurred_at": "2026-11-28T09:30:00Z",
                "effective_at": "2026-12-01T00:00:00Z", "person": { "id": "E1" } }),
        now,
    );
    journal.record_event(&leave, Some(0)).await?;
    let applied = journal.apply_pending_events(now, 100).await?;
    assert_eq!(
        applied
            .iter()
            .map(|a| a.status.as_str())
            .collect::<Vec<_>>(),
        vec!["applied", "scheduled"]
    );
    let person = journal
        .find_person("E1")
        .await?
        .ok_or_else(|| anyhow::anyhow!("no person"))?;
    assert_eq!(person.status, "active");
    // Three days later it takes effect.
    let later = now + Duration::days(3);
    let applied = journal.apply_pending_events(later, 100).await?;
    assert_eq!(applied.len(), 1);
    assert_eq!(applied[0].status, "applied");
    let person = journal
        .find_person("E1")
        .await?
        .ok_or_else(|| anyhow::anyhow!("no person"))?;
    assert_eq!(person.status, "departed");
    Ok(())
}

#[sqlx::test(migrations = "./migrations/postgres")]
async fn jobs_are_claimed_once_until_the_lease_expires(pool: PgPool) -> anyhow::Result<()> {
    let journal = Journal::from_pool(pool);
    let now = t("2026-11-28T10:00:00Z");
    journal
        .record_event(&hire("m1", "2026-11-28T10:00:00Z"), Some(0))
        .await?;
    journal.apply_pending_events(now, 100).await?;
    let lease = Duration::seconds(60);
    let a = journal.claim_job(now, "worker-a", lease).await?;
    let b = journal.claim_job(now, "worker-b", lease).await?;
    assert!(a.is_some());
    assert!(b.is_none(), "a leased job must not be claimed twice");
    let c = journal
        .claim_job(now + Duration::seconds(61), "worker-b", lease)
        .await?;
    assert!(c.is_some(), "an expired lease is taken over");
    Ok(())
}
