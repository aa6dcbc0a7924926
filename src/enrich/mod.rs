//! Enrichment: whole people from thin notices (issue 16).
//!
//! Gusto and HiBob v2 notices carry only an id, Okta's `user.account.update_profile` names a
//! user but not their department, Graph change notifications carry only an id, BambooHR's
//! event webhooks list changed field names. For a source with `[sources.api]` and
//! `enrich = true` (the default), Keycard reads the person's current record through the
//! sender's API ([`SenderClient::get`]) before such an event is applied.
//!
//! # Where the state lives
//!
//! Nothing is read while the sender waits: the delivery is journaled and acknowledged as
//! before (status `received`, completeness `notice` or `partial`). Then, all in the journal:
//!
//! 1. **Parking.** The event loop, before applying, parks the thin events of enriching
//!    sources as `awaiting_enrichment` and queues one `enrichments` row per person
//!    (`Tx::park_thin_events`). A person's later events wait behind a parked one, so events
//!    still apply in source order.
//! 2. **Reading.** The enrichment loop ([`Enricher::run`]) claims a due row with a lease (SKIP
//!    LOCKED on PostgreSQL, as every queue; several replicas read different people), reads the
//!    record once, outside any transaction, and in one transaction writes what it read into
//!    *every* event waiting for that person and makes them `received` again.
//! 3. **Applying.** The event loop applies them like any other event, in source order.
//!
//! # Failures
//!
//! A failed read is never dropped: the row keeps `attempts`, `last_error` and
//! `next_attempt_at`, and each waiting event's `status_reason` says the same, so the events
//! listing, the person's timeline and the people views show it. The next attempt backs off
//! exponentially from `reconciler.retry_base_secs` (at most an hour), or waits exactly what a
//! rate limit asked: the client already waits through short 429s itself (`Retry-After`
//! honoured, pacing within the vendor's published limits) and returns
//! `RateLimited { retry_after }` for long ones, which becomes the next attempt's time. A 404
//! (the sender deleted the record) ends the wait: the event applies as notified, saying so.
//! So does a failed read when a departure in force is waiting: its kind and its person need
//! no read, and a leaver's access must not outlast an outage of the sender's API.
//!
//! # Idempotence
//!
//! The record may have changed again since the notice; the read is the state at its fetch
//! time, and the newest read wins:
//! - The waiting event's place in its person's history moves up to the fetch time
//!   (`order_key`), so an event that happened before the read cannot be applied over it.
//! - The kind is what the record's employment status says for the person as the journal
//!   knows them ([`map::kind_after_read`]): a hire notice for someone terminated before the
//!   read is a departure; a departure notice for someone active again is an update. A change
//!   announced for later keeps the notice's kind (the sender's record is not there yet).
//! - Several notices waiting for one person share one read; the first applies it, the
//!   others find nothing to apply and are journaled `no_change` with that reason. So a
//!   record changed three times before the read is applied once, in its newest state; a
//!   later notice of a change already read is `no_change` too.

pub mod map;

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use tokio::sync::Notify;

use crate::clock::SharedClock;
use crate::config::Config;
use crate::journal::{EnrichmentRow, Journal, JournalError, PersonStatus};
use crate::sender_api::{SenderApiError, SenderClient};
use crate::sources::DeactivateMeans;

/// Longest wait between two failed reads of one record.
const MAX_BACKOFF_SECS: i64 = 3600;

/// A source whose notices are enriched.
#[derive(Debug, Clone)]
struct Reader {
    client: SenderClient,
    deactivate: DeactivateMeans,
}

/// How one claimed read ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The record was read and written into this many waiting events.
    Enriched { events: usize },
    /// The sender has no such record: the events apply as notified.
    NotFound { events: usize },
    /// The read failed; it is due again at this time.
    Failed {
        error: String,
        next_attempt_at: DateTime<Utc>,
    },
    /// The read failed but a departure was waiting: it was applied as notified.
    Released { events: usize, error: String },
    /// Another worker took the read over (the lease lapsed mid-read): nothing written.
    LeaseLost,
}

/// The enrichment loop's knobs.
#[derive(Debug, Clone)]
pub struct EnrichSettings {
    pub owner: String,
    pub lease: Duration,
    pub retry_base: Duration,
    pub idle_poll: std::time::Duration,
}

impl EnrichSettings {
    pub fn from_config(config: &Config, owner: String) -> Self {
        let r = &config.raw.reconciler;
        let secs = |s: u64| Duration::seconds(i64::try_from(s.min(86_400)).unwrap_or(60));
        Self {
            owner,
            // A read waits through 429s of up to two minutes: the lease outlasts that.
            lease: secs(r.lease_secs).max(Duration::minutes(5)),
            retry_base: secs(r.retry_base_secs.max(1)),
            idle_poll: std::time::Duration::from_millis(r.idle_poll_ms.max(10)),
        }
    }
}

/// Reads the current record of people whose thin notices wait for it. Cheap to clone.
#[derive(Clone)]
pub struct Enricher {
    journal: Journal,
    clock: SharedClock,
    readers: Arc<BTreeMap<String, Reader>>,
    settings: EnrichSettings,
    /// Wakes the event loop once read events are due again.
    applied: Option<Arc<Notify>>,
    /// Woken by the event loop when it parks events.
    wake: Arc<Notify>,
}

impl std::fmt::Debug for Enricher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Enricher")
            .field("sources", &self.sources())
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl Enricher {
    /// An enricher for every source with `[sources.api]` and `enrich = true`.
    pub fn from_config(
        config: &Config,
        journal: Journal,
        clock: SharedClock,
        owner: String,
    ) -> Result<Self, SenderApiError> {
        let mut readers = BTreeMap::new();
        for (name, source) in &config.sources {
            let Some(api) = source.api.as_ref().filter(|a| a.config.enrich) else {
                continue;
            };
            readers.insert(
                name.clone(),
                Reader {
                    client: api.client(clock.clone())?,
                    deactivate: source.deactivate_means,
                },
            );
        }
        Ok(Self {
            journal,
            clock,
            readers: Arc::new(readers),
            settings: EnrichSettings::from_config(config, owner),
            applied: None,
            wake: Arc::new(Notify::new()),
        })
    }

    /// Wakes `notify` (the event loop's) whenever read events are due again.
    pub fn waking(mut self, notify: Arc<Notify>) -> Self {
        self.applied = Some(notify);
        self
    }

    /// The sources whose notices are enriched.
    pub fn sources(&self) -> Vec<String> {
        self.readers.keys().cloned().collect()
    }

    /// Wake it (the event loop parked events).
    pub fn notifier(&self) -> Arc<Notify> {
        self.wake.clone()
    }

    /// Claims and does one due read; `None` when none is due.
    pub async fn run_once(&self) -> Result<Option<Outcome>, JournalError> {
        let now = self.clock.now();
        let sources = self.sources();
        let claimed = self
            .journal
            .conn()
            .await?
            .claim_enrichment(&sources, now, &self.settings.owner, self.settings.lease)
            .await?;
        let Some(row) = claimed else {
            return Ok(None);
        };
        let Some(reader) = self.readers.get(&row.source) else {
            return Ok(None);
        };
        // No journal connection is held across the read: the embedded journal has one.
        let read = reader.client.get(&row.source_person_id).await;
        let outcome = match read {
            Ok(record) => self.write_read(&row, reader, Ok(record)).await?,
            Err(SenderApiError::NotFound { .. }) => {
                let from = format!("{} GET (record not found)", reader.client.kind());
                self.write_read(&row, reader, Err(from)).await?
            }
            Err(e) => self.write_failure(&row, &e).await?,
        };
        match &outcome {
            Outcome::Enriched { .. } | Outcome::NotFound { .. } => {
                if let Some(n) = &self.applied {
                    n.notify_waiters();
                }
            }
            Outcome::Failed {
                error,
                next_attempt_at,
            } => tracing::warn!(
                source = %row.source, person = %row.source_person_id, %error,
                next_attempt_at = %next_attempt_at.to_rfc3339(),
                "reading the record for enrichment failed; will retry"
            ),
            Outcome::Released { error, .. } => tracing::warn!(
                source = %row.source, person = %row.source_person_id, %error,
                "reading the record failed; the departure waiting for it is applied as notified"
            ),
            Outcome::LeaseLost => {}
        }
        Ok(Some(outcome))
    }

    /// Does every read due now; returns how many were claimed.
    pub async fn run_until_idle(&self) -> Result<usize, JournalError> {
        let mut n = 0;
        while self.run_once().await?.is_some() {
            n += 1;
        }
        Ok(n)
    }

    /// The enrichment loop of `keycard serve`, until `shutdown` resolves.
    pub async fn run(&self, shutdown: impl std::future::Future<Output = ()>) {
        tokio::pin!(shutdown);
        loop {
            loop {
                match self.run_once().await {
                    Ok(Some(_)) => {}
                    Ok(None) => break,
                    Err(e) => {
                        tracing::warn!(error = %e, "enrichment: journal error; retrying");
                        break;
                    }
                }
            }
            tokio::select! {
                () = &mut shutdown => return,
                () = self.wake.notified() => {}
                () = tokio::time::sleep(self.settings.idle_poll) => {}
            }
        }
    }

    async fn write_read(
        &self,
        row: &EnrichmentRow,
        reader: &Reader,
        read: Result<crate::sender_api::SenderRecord, String>,
    ) -> Result<Outcome, JournalError> {
        let now = self.clock.now();
        let mut tx = self.journal.begin().await?;
        let waiting = tx
            .events_awaiting(&row.source, &row.source_person_id)
            .await?;
        let current = tx
            .person_by_source(&row.source, &row.source_person_id)
            .await?
            .map_or(PersonStatus::New, |p| p.status);
        let (enriched, fetched_at, from): (Vec<_>, _, _) = match &read {
            Ok(record) => (
                waiting
                    .iter()
                    .map(|ev| map::enrich_event(ev, record, current, reader.deactivate))
                    .collect(),
                record.fetched_at,
                record.from.clone(),
            ),
            Err(from) => (
                waiting
                    .iter()
                    .map(|ev| {
                        let note = format!(
                            "the sender has no record of this person (read at {}): applied as notified",
                            map::stamp(now)
                        );
                        map::as_notified(ev, "not_found", now, note)
                    })
                    .collect(),
                now,
                from.clone(),
            ),
        };
        let ours = tx
            .finish_enrichment(row, &self.settings.owner, &enriched, fetched_at, &from, now)
            .await?;
        if !ours {
            return Ok(Outcome::LeaseLost);
        }
        tx.commit().await?;
        let events = enriched.len();
        Ok(if read.is_ok() {
            Outcome::Enriched { events }
        } else {
            Outcome::NotFound { events }
        })
    }

    async fn write_failure(
        &self,
        row: &EnrichmentRow,
        error: &SenderApiError,
    ) -> Result<Outcome, JournalError> {
        let now = self.clock.now();
        let next_attempt_at = now + self.wait_after(row.attempts, error);
        let text = error.to_string();
        let mut tx = self.journal.begin().await?;
        let waiting = tx
            .events_awaiting(&row.source, &row.source_person_id)
            .await?;
        // A leaver's access must not outlast the sender's API: a departure in force is
        // applied as notified (its kind and person need no read), with what failed.
        let departure_due = waiting.iter().any(|ev| {
            ev.kind == crate::journal::EventKind::Departed
                && ev.effective_at.is_none_or(|t| t <= now)
        });
        if departure_due {
            let note = format!(
                "reading the record failed ({text}); a departure does not wait for the sender's API: applied as notified"
            );
            let released: Vec<_> = waiting
                .iter()
                .map(|ev| map::as_notified(ev, "failed", now, note.clone()))
                .collect();
            let from = format!("{} GET failed: departure applied as notified", row.source);
            if !tx
                .finish_enrichment(row, &self.settings.owner, &released, now, &from, now)
                .await?
            {
                return Ok(Outcome::LeaseLost);
            }
            tx.commit().await?;
            if let Some(n) = &self.applied {
                n.notify_waiters();
            }
            return Ok(Outcome::Released {
                events: released.len(),
                error: text,
            });
        }
        tx.enrichment_failed(row, &self.settings.owner, &text, next_attempt_at, now)
            .await?;
        tx.commit().await?;
        Ok(Outcome::Failed {
            error: text,
            next_attempt_at,
        })
    }

    /// How long after the `failures + 1`th failed read the next one is due: exactly what a
    /// rate limit asked for, otherwise an exponential backoff capped at an hour.
    fn wait_after(&self, failures: i32, error: &SenderApiError) -> Duration {
        if let SenderApiError::RateLimited {
            retry_after: Some(after),
            ..
        } = error
        {
            let ms = i64::try_from(after.as_millis()).unwrap_or(i64::MAX);
            return Duration::milliseconds(ms.clamp(1000, MAX_BACKOFF_SECS * 1000));
        }
        let factor = 1_i32 << failures.clamp(0, 12);
        (self.settings.retry_base * factor).min(Duration::seconds(MAX_BACKOFF_SECS))
    }
}
