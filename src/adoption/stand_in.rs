//! Stand-in people: what a policy takes on (a member no person names, an unused workspace)
//! becomes a departed person of the policy's own source, so the one planner, the removal
//! cap, holds, releases and the journal treat it like any leaver.

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::AdoptionError;
use crate::ingest::{DedupeKey, NativeEvent};
use crate::journal::Journal;

/// One thing to take on: its delivery id (the dedupe key, so taking it on twice is a
/// duplicate) and the native `person.departed` body that stands for it.
pub(crate) struct Departure {
    pub delivery_id: String,
    pub body: Value,
}

/// Journals every departure of `source` and applies them, in one transaction with their
/// jobs. Returns how many were recorded.
pub(crate) async fn record(
    journal: &Journal,
    source: &str,
    departures: Vec<Departure>,
    now: DateTime<Utc>,
) -> Result<usize, AdoptionError> {
    let mut events = Vec::new();
    for d in departures {
        let bytes = d.body.to_string().into_bytes();
        match NativeEvent::parse(&bytes) {
            Ok(event) => events.push(event.into_lifecycle(
                DedupeKey {
                    source: source.to_owned(),
                    delivery_id: d.delivery_id,
                },
                now,
                &bytes,
            )),
            Err(e) => {
                tracing::warn!(source, id = %d.delivery_id, error = %e, "cannot be taken on");
            }
        }
    }
    if events.is_empty() {
        return Ok(0);
    }
    let mut tx = journal.begin().await?;
    let batch: Vec<_> = events.iter().map(|e| (e, None)).collect();
    tx.record_events(&batch).await?;
    while !tx.apply_pending_events(now, 500).await?.is_empty() {}
    tx.commit().await?;
    Ok(events.len())
}
