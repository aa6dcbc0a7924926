//! Group commit for the inbox.
//!
//! Every acknowledged delivery must be committed first, and with `synchronous_commit = on`
//! each commit waits for a WAL flush. Committing deliveries one transaction each makes the
//! flush, the statement round trip and the per-transaction work in PostgreSQL the cost of every
//! delivery. The writer instead lets deliveries that arrive while earlier ones are being
//! committed share the next statement ([`Tx::record_events`](super::Tx::record_events)): at most `max_in_flight`
//! batches are being written at once; when all are busy, deliveries queue and the next batch
//! takes everything queued (up to [`MAX_BATCH`]). A lone delivery on an idle service is written
//! at once, so batching adds no wait of its own.
//!
//! Guarantees are those of [`Tx::record_event`](super::Tx::record_event): a caller hears back only after its
//! event is committed (or known to be a duplicate), and dedupe is by (source, dedupe key). If a
//! batch fails, each of its deliveries is retried on its own so that one bad row cannot fail
//! the others — unless the journal itself is unreachable.
//!
//! **Outages fail fast.** A write that finds the journal unreachable waits out the pool's
//! acquire timeout once; from then on the journal is *known down*: every delivery is answered
//! `Unavailable` (503, the sender retries) at once, without queueing for a connection, and one
//! background probe per [`PROBE_INTERVAL`] checks whether it is back. A failed batch is not
//! retried delivery by delivery when the cause is the outage (that multiplied the wait: ~8.8 s
//! per delivery before).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::{Semaphore, mpsc, oneshot};

use super::{Journal, JournalError, JournalResult, Recorded};
use crate::ingest::LifecycleEvent;

/// Most deliveries committed by one statement.
pub(super) const MAX_BATCH: usize = 64;
/// How often the background probe tries the journal while it is known down.
pub(super) const PROBE_INTERVAL: Duration = Duration::from_millis(250);

/// Whether the journal is known to be unreachable, and whether a probe is running.
#[derive(Debug, Default)]
struct Outage {
    down: AtomicBool,
    probing: AtomicBool,
}

impl Outage {
    fn is_down(&self) -> bool {
        self.down.load(Ordering::Acquire)
    }

    /// Marks the journal down and starts the one probe that brings it back up.
    fn went_down(self: &Arc<Self>, journal: &Journal) {
        self.down.store(true, Ordering::Release);
        if self.probing.swap(true, Ordering::AcqRel) {
            return;
        }
        tracing::error!("journal unreachable: answering deliveries 503 until it is back");
        let outage = self.clone();
        let journal = journal.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(PROBE_INTERVAL).await;
                if journal.conn().await.is_ok() {
                    outage.down.store(false, Ordering::Release);
                    outage.probing.store(false, Ordering::Release);
                    tracing::warn!("journal reachable again");
                    return;
                }
            }
        });
    }
}

/// Errors that say the journal cannot be reached at all (as opposed to a statement that
/// failed on one row, which the per-delivery retry isolates).
fn unreachable(err: &sqlx::Error) -> bool {
    matches!(
        err,
        sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::WorkerCrashed
    )
}

fn known_down() -> JournalError {
    JournalError::Unavailable(sqlx::Error::PoolTimedOut)
}

struct Pending {
    event: LifecycleEvent,
    signature_key: Option<usize>,
    reply: oneshot::Sender<JournalResult<Recorded>>,
}

/// Handle to the inbox writer task (cheap to clone). The task stops once every handle is gone.
#[derive(Debug, Clone)]
pub struct EventWriter {
    tx: mpsc::Sender<Pending>,
    outage: Arc<Outage>,
}

impl std::fmt::Debug for Pending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pending").finish_non_exhaustive()
    }
}

impl EventWriter {
    /// Starts the writer on the current tokio runtime, writing at most `max_in_flight` batches
    /// at once (each holds one pool connection while it is written).
    pub fn spawn(journal: Journal, max_in_flight: usize) -> Self {
        let max_in_flight = max_in_flight.max(1);
        // Bounded: when PostgreSQL falls behind, handlers wait here rather than pile up memory.
        let (tx, rx) = mpsc::channel(MAX_BATCH * max_in_flight * 4);
        let outage = Arc::new(Outage::default());
        tokio::spawn(run(journal, rx, max_in_flight, outage.clone()));
        Self { tx, outage }
    }

    /// Whether the journal is known to be unreachable right now (deliveries written another
    /// way, e.g. batches, answer 503 at once too).
    pub fn journal_known_down(&self) -> bool {
        self.outage.is_down()
    }

    /// Commits a verified delivery's event, like [`Tx::record_event`](super::Tx::record_event).
    pub async fn record(
        &self,
        event: LifecycleEvent,
        signature_key: Option<usize>,
    ) -> JournalResult<Recorded> {
        if self.outage.is_down() {
            return Err(known_down());
        }
        let (reply, answer) = oneshot::channel();
        let pending = Pending {
            event,
            signature_key,
            reply,
        };
        // The writer only goes away with the last handle or a panic: either way the journal
        // cannot take the event now, and the sender should retry.
        self.tx
            .send(pending)
            .await
            .map_err(|_| JournalError::Unavailable(sqlx::Error::PoolClosed))?;
        answer
            .await
            .map_err(|_| JournalError::Unavailable(sqlx::Error::PoolClosed))?
    }
}

async fn run(
    journal: Journal,
    mut rx: mpsc::Receiver<Pending>,
    max_in_flight: usize,
    outage: Arc<Outage>,
) {
    let slots = Arc::new(Semaphore::new(max_in_flight));
    loop {
        // A free slot first: while every slot is busy, deliveries queue in the channel and the
        // next batch takes all of them.
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let mut batch = Vec::new();
        if rx.recv_many(&mut batch, MAX_BATCH).await == 0 {
            return;
        }
        let journal = journal.clone();
        let outage = outage.clone();
        tokio::spawn(async move {
            write(&journal, batch, &outage).await;
            drop(slot);
        });
    }
}

async fn write(journal: &Journal, batch: Vec<Pending>, outage: &Arc<Outage>) {
    // Queued while another batch found the journal down: answer without waiting again.
    if outage.is_down() {
        for pending in batch {
            let _ = pending.reply.send(Err(known_down()));
        }
        return;
    }
    let events: Vec<(&LifecycleEvent, Option<usize>)> =
        batch.iter().map(|p| (&p.event, p.signature_key)).collect();
    let result = match journal.conn().await {
        Ok(mut conn) => conn.record_events(&events).await,
        Err(e) => Err(e),
    };
    drop(events);
    match result {
        Ok(recorded) => {
            for (pending, recorded) in batch.into_iter().zip(recorded) {
                // A caller that went away (client disconnected) needs no answer: its event is
                // committed and its sender's retry will be a duplicate.
                let _ = pending.reply.send(Ok(recorded));
            }
        }
        // The journal itself is unreachable: retrying each delivery would wait again for
        // each. Known down from here until the probe reaches it.
        Err(JournalError::Unavailable(err)) if unreachable(&err) => {
            tracing::error!(error = %err, deliveries = batch.len(), "journal unreachable");
            outage.went_down(journal);
            let mut batch = batch.into_iter();
            if let Some(first) = batch.next() {
                let _ = first.reply.send(Err(JournalError::Unavailable(err)));
            }
            for pending in batch {
                let _ = pending.reply.send(Err(known_down()));
            }
        }
        Err(err) if batch.len() == 1 => {
            if let Some(pending) = batch.into_iter().next() {
                let _ = pending.reply.send(Err(err));
            }
        }
        Err(err) => {
            tracing::warn!(error = %err, deliveries = batch.len(), "batched journal write failed; writing each delivery on its own");
            futures::future::join_all(batch.into_iter().map(|pending| async move {
                let result = match journal.conn().await {
                    Ok(mut conn) => {
                        conn.record_event(&pending.event, pending.signature_key)
                            .await
                    }
                    Err(e) => Err(e),
                };
                let _ = pending.reply.send(result);
            }))
            .await;
        }
    }
}
