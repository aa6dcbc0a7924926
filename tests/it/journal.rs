//! The journal's test suite, run unchanged against both backends: PostgreSQL (a fresh
//! database per test, `#[sqlx::test]`) and the embedded SQLite file (a fresh temp dir).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failure should stop the test loudly

use chrono::{DateTime, Duration, Utc};
use keycard::ingest::{DedupeKey, LifecycleEvent, NativeEvent};
use keycard::journal::{EventStatus, Journal, JournalFilter, PersonStatus};
use serde_json::json;
use sqlx::PgPool;

/// Runs one journal test body against PostgreSQL and against SQLite.
macro_rules! both_backends {
    ($name:ident) => {
        mod $name {
            use super::*;

            #[sqlx::test(migrations = false)]
            async fn postgres(pool: PgPool) -> anyhow::Result<()> {
                let journal = Journal::from_pool(pool);
                journal.migrate().await?;
                super::$name(journal).await
            }

            #[tokio::test]
            async fn sqlite() -> anyhow::Result<()> {
                let dir = tempfile::tempdir()?;
                let url = format!("sqlite://{}", dir.path().join("journal.db").display());
                let journal = Journal::connect(&url, 1).await?;
                journal.migrate().await?;
                super::$name(journal).await
            }
        }
    };
}

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

both_backends!(redelivery_is_a_duplicate_and_writes_nothing);
async fn redelivery_is_a_duplicate_and_writes_nothing(journal: Journal) -> anyhow::Result<()> {
    let first = journal
        .conn()
        .await?
        .record_event(&hire("msg_1", "2026-11-28T10:00:00Z"), Some(0))
        .await?;
    let again = journal
        .conn()
        .await?
        .record_event(&hire("msg_1", "2026-11-28T10:00:00Z"), Some(0))
        .await?;
    assert!(!first.duplicate);
    assert!(again.duplicate);
    assert_eq!(first.event_id, again.event_id);
    let page = journal
        .conn()
        .await?
        .list_events(&JournalFilter {
            limit: 10,
            ..Default::default()
        })
        .await?;
    assert_eq!(page.data.len(), 1);
    Ok(())
}

both_backends!(older_event_after_departure_is_stale);
async fn older_event_after_departure_is_stale(journal: Journal) -> anyhow::Result<()> {
    let now = t("2026-11-28T12:00:00Z");
    journal
        .conn()
        .await?
        .record_event(&hire("m1", "2026-11-28T10:00:00Z"), Some(0))
        .await?;
    let depart = event(
        "m3",
        json!({ "type": "person.departed", "occurred_at": "2026-11-28T11:00:00Z", "person": { "id": "E1" } }),
        now,
    );
    journal.conn().await?.record_event(&depart, Some(0)).await?;
    journal.conn().await?.apply_pending_events(now, 100).await?;
    // An update that happened before the departure arrives late.
    let late = event(
        "m2",
        json!({ "type": "person.updated", "occurred_at": "2026-11-28T10:30:00Z",
                "person": { "id": "E1", "department": "Sales" } }),
        now,
    );
    journal.conn().await?.record_event(&late, Some(0)).await?;
    let applied = journal.conn().await?.apply_pending_events(now, 100).await?;
    assert_eq!(applied.len(), 1);
    assert_eq!(applied[0].status, EventStatus::Stale);
    let person = journal
        .conn()
        .await?
        .find_person("E1")
        .await?
        .ok_or_else(|| anyhow::anyhow!("no person"))?;
    assert_eq!(person.status, PersonStatus::Departed);
    assert_eq!(person.attributes["department"], "Eng");
    Ok(())
}

both_backends!(scheduled_event_waits_until_effective);
async fn scheduled_event_waits_until_effective(journal: Journal) -> anyhow::Result<()> {
    let now = t("2026-11-28T10:00:00Z");
    journal
        .conn()
        .await?
        .record_event(&hire("m1", "2026-11-28T09:00:00Z"), Some(0))
        .await?;
    let leave = event(
        "m2",
        json!({ "type": "person.departed", "occurred_at": "2026-11-28T09:30:00Z",
                "effective_at": "2026-12-01T00:00:00Z", "person": { "id": "E1" } }),
        now,
    );
    journal.conn().await?.record_event(&leave, Some(0)).await?;
    let applied = journal.conn().await?.apply_pending_events(now, 100).await?;
    assert_eq!(
        applied
            .iter()
            .map(|a| a.status.as_str())
            .collect::<Vec<_>>(),
        vec!["applied", "scheduled"]
    );
    let person = journal
        .conn()
        .await?
        .find_person("E1")
        .await?
        .ok_or_else(|| anyhow::anyhow!("no person"))?;
    assert_eq!(person.status, PersonStatus::Active);
    // Three days later it takes effect.
    let later = now + Duration::days(3);
    let applied = journal
        .conn()
        .await?
        .apply_pending_events(later, 100)
        .await?;
    assert_eq!(applied.len(), 1);
    assert_eq!(applied[0].status, EventStatus::Applied);
    let person = journal
        .conn()
        .await?
        .find_person("E1")
        .await?
        .ok_or_else(|| anyhow::anyhow!("no person"))?;
    assert_eq!(person.status, PersonStatus::Departed);
    Ok(())
}

both_backends!(jobs_are_claimed_once_until_the_lease_expires);
async fn jobs_are_claimed_once_until_the_lease_expires(journal: Journal) -> anyhow::Result<()> {
    let now = t("2026-11-28T10:00:00Z");
    journal
        .conn()
        .await?
        .record_event(&hire("m1", "2026-11-28T10:00:00Z"), Some(0))
        .await?;
    journal.conn().await?.apply_pending_events(now, 100).await?;
    let lease = Duration::seconds(60);
    let a = journal
        .conn()
        .await?
        .claim_job(now, "worker-a", lease)
        .await?;
    let b = journal
        .conn()
        .await?
        .claim_job(now, "worker-b", lease)
        .await?;
    assert!(a.is_some());
    assert!(b.is_none(), "a leased job must not be claimed twice");
    let c = journal
        .conn()
        .await?
        .claim_job(now + Duration::seconds(61), "worker-b", lease)
        .await?;
    assert!(c.is_some(), "an expired lease is taken over");
    Ok(())
}

both_backends!(actions_lifecycle_and_paging);
async fn actions_lifecycle_and_paging(journal: Journal) -> anyhow::Result<()> {
    use keycard::journal::{ActionKind, ActionResult, ActionStatus, NewAction};
    let now = t("2026-11-28T10:00:00Z");
    journal
        .conn()
        .await?
        .record_event(&hire("m1", "2026-11-28T10:00:00Z"), Some(0))
        .await?;
    journal.conn().await?.apply_pending_events(now, 100).await?;
    let person = journal
        .conn()
        .await?
        .find_person("E1")
        .await?
        .ok_or_else(|| anyhow::anyhow!("no person"))?;
    assert_eq!(
        journal
            .conn()
            .await?
            .find_person("ada@example.com")
            .await?
            .map(|p| p.id),
        Some(person.id)
    );
    let mut ids = Vec::new();
    for i in 0..5 {
        let id = journal
            .conn()
            .await?
            .insert_action(
                &NewAction {
                    person_id: person.id,
                    event_id: None,
                    kind: ActionKind::CreateInvite,
                    params: json!({ "n": i }),
                    rule: Some("r".into()),
                    reason: "test".into(),
                    status: ActionStatus::Pending,
                },
                now,
            )
            .await?
            .id;
        ids.push(id);
    }
    journal
        .conn()
        .await?
        .start_action(
            ids[0],
            "w",
            now + Duration::seconds(60),
            &json!({ "method": "POST" }),
            now,
        )
        .await?;
    journal
        .conn()
        .await?
        .finish_action(
            ids[0],
            &ActionResult {
                status: ActionStatus::Succeeded,
                response_status: Some(200),
                request_id: Some("req_1".into()),
                outcome: Some("ok".into()),
                error: None,
                next_attempt_at: None,
            },
            now,
        )
        .await?;
    journal
        .conn()
        .await?
        .supersede_actions(&ids[1..3], now)
        .await?;
    let unfinished = journal.conn().await?.unfinished_actions(person.id).await?;
    assert_eq!(
        unfinished.iter().map(|a| a.id).collect::<Vec<_>>(),
        ids[3..].to_vec()
    );
    let done = journal.conn().await?.action(ids[0]).await?;
    assert_eq!(
        (
            done.status.as_str(),
            done.attempts,
            done.request_id.as_deref()
        ),
        ("succeeded", 1, Some("req_1"))
    );
    assert!(
        journal
            .conn()
            .await?
            .has_action(
                person.id,
                ActionKind::CreateInvite,
                &json!({ "n": 0 }),
                ActionStatus::Succeeded
            )
            .await?
    );
    assert!(
        !journal
            .conn()
            .await?
            .has_action(
                person.id,
                ActionKind::CreateInvite,
                &json!({ "n": 0 }),
                ActionStatus::Failed
            )
            .await?
    );

    // Cursor paging, newest first, across pages, with filters.
    let mut seen = Vec::new();
    let mut cursor = None;
    loop {
        let page = journal
            .conn()
            .await?
            .list_actions(&JournalFilter {
                person: Some("E1".into()),
                limit: 2,
                cursor: cursor.clone(),
                ..Default::default()
            })
            .await?;
        seen.extend(page.data.iter().map(|a| a.id));
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    let mut expected = ids.clone();
    expected.reverse();
    assert_eq!(seen, expected);
    let superseded = journal
        .conn()
        .await?
        .list_actions(&JournalFilter {
            status: Some("superseded".into()),
            limit: 10,
            ..Default::default()
        })
        .await?;
    assert_eq!(superseded.data.len(), 2);
    assert_eq!(
        superseded.data[0].person_email.as_deref(),
        Some("ada@example.com")
    );

    // The person filter takes Keycard's own person id as well as the source's.
    let by_uuid = JournalFilter {
        person: Some(person.id.to_string()),
        limit: 10,
        ..Default::default()
    };
    assert_eq!(
        journal
            .conn()
            .await?
            .list_actions(&by_uuid)
            .await?
            .data
            .len(),
        5
    );
    let events = journal.conn().await?.list_events(&by_uuid).await?;
    assert_eq!(events.data.len(), 1);
    assert_eq!(events.data[0].person_id, Some(person.id));
    let by_email = JournalFilter {
        person: Some("ADA@example.com".into()),
        limit: 10,
        ..Default::default()
    };
    assert_eq!(
        journal
            .conn()
            .await?
            .list_actions(&by_email)
            .await?
            .data
            .len(),
        5
    );
    assert_eq!(
        journal
            .conn()
            .await?
            .list_events(&by_email)
            .await?
            .data
            .len(),
        1
    );
    let bad_cursor = JournalFilter {
        cursor: Some("not a cursor".into()),
        limit: 10,
        ..Default::default()
    };
    assert!(matches!(
        journal.conn().await?.list_events(&bad_cursor).await,
        Err(keycard::journal::JournalError::InvalidQuery(_))
    ));
    let nobody = JournalFilter {
        person: Some(uuid::Uuid::now_v7().to_string()),
        limit: 10,
        ..Default::default()
    };
    assert!(
        journal
            .conn()
            .await?
            .list_actions(&nobody)
            .await?
            .data
            .is_empty()
    );
    assert!(
        journal
            .conn()
            .await?
            .list_events(&nobody)
            .await?
            .data
            .is_empty()
    );
    Ok(())
}

#[tokio::test]
async fn sqlite_refuses_a_second_process_a_read_only_file_and_a_newer_schema() -> anyhow::Result<()>
{
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("journal.db");
    let url = format!("sqlite://{}", path.display());
    let first = Journal::connect(&url, 1).await?;
    first.migrate().await?;
    let second = Journal::connect(&url, 1).await;
    let err = second.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(err.contains("in use by another keycard process"), "{err}");
    drop(first);

    // A journal from the future: an applied migration this build does not know.
    let journal = Journal::connect(&url, 1).await?;
    journal.migrate().await?;
    drop(journal);
    {
        use sqlx::Connection;
        let mut conn = sqlx::SqliteConnection::connect(&url).await?;
        sqlx::query("INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) VALUES (29991231000000, 'future', 1, x'00', 0)")
            .execute(&mut conn)
            .await?;
        conn.close().await?;
    }
    let journal = Journal::connect(&url, 1).await?;
    let err = journal
        .migrate()
        .await
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(err.contains("newer Keycard"), "{err}");
    drop(journal);

    let mut perms = std::fs::metadata(&path)?.permissions();
    perms.set_readonly(true);
    std::fs::set_permissions(&path, perms)?;
    let err = Journal::connect(&url, 1)
        .await
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(err.contains("read-only"), "{err}");
    Ok(())
}

both_backends!(batched_writes_dedupe_each_delivery);
async fn batched_writes_dedupe_each_delivery(journal: Journal) -> anyhow::Result<()> {
    let earlier = hire("m0", "2026-11-28T09:00:00Z");
    let first = journal
        .conn()
        .await?
        .record_event(&earlier, Some(0))
        .await?;
    let a = hire("m1", "2026-11-28T10:00:00Z");
    let b = hire("m2", "2026-11-28T10:01:00Z");
    // m0 was committed before, m1 comes twice in the same batch.
    let batch = [
        (&a, Some(0)),
        (&b, Some(1)),
        (&earlier, Some(0)),
        (&a, Some(0)),
    ];
    let out = journal.conn().await?.record_events(&batch).await?;
    assert_eq!(
        out.iter().map(|r| r.duplicate).collect::<Vec<_>>(),
        vec![false, false, true, true]
    );
    assert_eq!(out[2].event_id, first.event_id);
    assert_eq!(out[3].event_id, out[0].event_id);
    let page = journal
        .conn()
        .await?
        .list_events(&JournalFilter {
            limit: 10,
            ..Default::default()
        })
        .await?;
    assert_eq!(page.data.len(), 3, "one row per delivery id");
    let b_row = page
        .data
        .iter()
        .find(|e| e.dedupe_key == "m2")
        .ok_or_else(|| anyhow::anyhow!("m2"))?;
    assert_eq!(b_row.signature_key, Some(1));
    Ok(())
}

fn hire_of(delivery: &str, person: &str) -> LifecycleEvent {
    event(
        delivery,
        json!({ "type": "person.hired", "occurred_at": "2026-11-28T10:00:00Z",
                "person": { "id": person, "email": format!("{person}@example.com") } }),
        t("2026-11-28T10:00:00Z"),
    )
}

both_backends!(writer_answers_each_of_many_concurrent_deliveries);
async fn writer_answers_each_of_many_concurrent_deliveries(journal: Journal) -> anyhow::Result<()> {
    use keycard::journal::EventWriter;
    // d0 is committed before; 101 deliveries then arrive at once: d0..d79 and redeliveries
    // of d1..d21, so batches mix new rows, duplicates within a batch and across batches.
    let before = journal
        .conn()
        .await?
        .record_event(&hire_of("d0", "P0"), Some(0))
        .await?;
    let writer = EventWriter::spawn(journal.clone(), 2);
    let mut sends = Vec::new();
    for n in (0..80).chain(1..22) {
        let writer = writer.clone();
        let delivery = format!("d{n}");
        sends.push(tokio::spawn(async move {
            let recorded = writer
                .record(hire_of(&delivery, &format!("P{n}")), Some(0))
                .await;
            (delivery, recorded)
        }));
    }
    assert_eq!(sends.len(), 101);
    let mut answers: std::collections::BTreeMap<String, Vec<keycard::journal::Recorded>> =
        Default::default();
    for send in sends {
        let (delivery, recorded) = send.await?;
        answers.entry(delivery).or_default().push(recorded?);
    }
    assert_eq!(answers.len(), 80);
    for (delivery, got) in &answers {
        // One event id per delivery, whoever asked; exactly one caller wrote it, except d0.
        assert!(
            got.iter().all(|r| r.event_id == got[0].event_id),
            "{delivery}"
        );
        let fresh = got.iter().filter(|r| !r.duplicate).count();
        if delivery == "d0" {
            assert_eq!((fresh, got[0].event_id), (0, before.event_id));
        } else {
            assert_eq!(fresh, 1, "{delivery}: {got:?}");
        }
    }
    let page = journal
        .conn()
        .await?
        .list_events(&JournalFilter {
            limit: 500,
            ..Default::default()
        })
        .await?;
    assert_eq!(page.data.len(), 80, "one row per delivery id");
    Ok(())
}

/// PostgreSQL refuses U+0000 in text and jsonb. The ingest edge refuses such bodies with a
/// 400; should one reach the journal anyway, the error must say "cannot store" (a 4xx at the
/// edge), not "unavailable" (a 503 the sender would retry forever), and must not fail the
/// deliveries it was batched with.
#[sqlx::test(migrations = false)]
async fn postgres_refuses_nul_as_unstorable_without_failing_its_batch(
    pool: PgPool,
) -> anyhow::Result<()> {
    use keycard::journal::{EventWriter, JournalError};
    let journal = Journal::from_pool(pool);
    journal.migrate().await?;
    let bad = event(
        "bad",
        json!({ "type": "person.hired", "occurred_at": "2026-11-28T10:00:00Z",
                "person": { "id": "E1", "email": "ada@example.com", "attributes": { "note": "a\u{0}b" } } }),
        t("2026-11-28T10:00:00Z"),
    );
    match journal.conn().await?.record_event(&bad, Some(0)).await {
        Err(JournalError::Unstorable(detail)) => {
            assert!(detail.contains("22P05"), "{detail}");
            assert!(!detail.contains("note"), "no data in the error: {detail}");
        }
        other => panic!("expected Unstorable, got {other:?}"),
    }

    let writer = EventWriter::spawn(journal.clone(), 1);
    let mut sends = Vec::new();
    for n in 0..20 {
        let writer = writer.clone();
        let event = if n == 7 {
            bad.clone()
        } else {
            hire_of(&format!("g{n}"), &format!("P{n}"))
        };
        sends.push(tokio::spawn(
            async move { writer.record(event, Some(0)).await },
        ));
    }
    let mut ok = 0;
    for (n, send) in sends.into_iter().enumerate() {
        match send.await? {
            Ok(r) => {
                assert!(!r.duplicate);
                ok += 1;
            }
            Err(JournalError::Unstorable(_)) if n == 7 => {}
            Err(other) => panic!("delivery {n}: {other:?}"),
        }
    }
    assert_eq!(ok, 19);
    Ok(())
}

both_backends!(non_ascii_addresses_match_whatever_their_case);
async fn non_ascii_addresses_match_whatever_their_case(journal: Journal) -> anyhow::Result<()> {
    let now = t("2026-11-28T10:00:00Z");
    let hire = event(
        "u1",
        json!({ "type": "person.hired", "occurred_at": "2026-11-28T10:00:00Z",
                "person": { "id": "E9", "email": "ÉLODIE.Çelik@Example.com" } }),
        now,
    );
    journal.conn().await?.record_event(&hire, Some(0)).await?;
    journal.conn().await?.apply_pending_events(now, 10).await?;
    let mut conn = journal.conn().await?;
    let found = conn.find_person("élodie.çelik@example.com").await?;
    assert_eq!(found.map(|p| p.source_person_id), Some("E9".to_owned()));
    let by_email = JournalFilter {
        email: Some("Élodie.çelik@EXAMPLE.com".into()),
        limit: 10,
        ..Default::default()
    };
    assert_eq!(conn.list_events(&by_email).await?.data.len(), 1);
    let person = conn
        .find_person("E9")
        .await?
        .ok_or_else(|| anyhow::anyhow!("no person"))?;
    let others = conn
        .emails_held_by_others(uuid::Uuid::now_v7(), &["élodie.çelik@EXAMPLE.COM".into()])
        .await?;
    assert_eq!(others, vec!["élodie.çelik@example.com".to_owned()]);
    assert!(
        conn.address_holder("ÉLODIE.ÇELIK@example.com", uuid::Uuid::now_v7())
            .await?
            .is_some_and(|p| p.id == person.id)
    );
    Ok(())
}

/// A clean close folds the write-ahead log into `journal.db`: the file alone, copied away
/// (a backup, a support bundle), holds every committed event.
#[tokio::test]
async fn a_closed_sqlite_journal_is_complete_in_its_one_file() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("journal.db");
    let journal = Journal::connect(&format!("sqlite://{}", path.display()), 1).await?;
    journal.migrate().await?;
    for n in 0..25 {
        journal
            .conn()
            .await?
            .record_event(&hire_of(&format!("c{n}"), &format!("P{n}")), Some(0))
            .await?;
    }
    journal.close().await;
    let copy = tempfile::tempdir()?;
    std::fs::copy(&path, copy.path().join("journal.db"))?;
    let url = format!("sqlite://{}", copy.path().join("journal.db").display());
    let reopened = Journal::connect(&url, 1).await?;
    let page = reopened
        .conn()
        .await?
        .list_events(&JournalFilter {
            limit: 100,
            ..Default::default()
        })
        .await?;
    assert_eq!(
        page.data.len(),
        25,
        "every committed event is in journal.db"
    );
    Ok(())
}
