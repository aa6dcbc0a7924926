//! Bringing an existing organization under Keycard, and keeping it tidy: the staff import,
//! observe mode, the people listing, the preview of a rule change across everyone, members
//! nobody manages, the best-practice reports and what the Admin API cannot do for an
//! organization.
//!
//! Everything here reads the organization from the mirror (`crate::mirror`) and plans
//! through the one planner (`crate::planner`); the only Admin API calls are the reads that
//! fill a mirror that was never read.

pub mod archive;
pub mod cli;
mod config;
pub mod http;
pub mod import;
pub mod limits;
pub mod preview;
pub mod progress;
pub mod reports;
pub mod snapshot;
mod stand_in;
pub mod unmanaged;

pub use config::{HygieneConfig, Mode, UnmanagedConfig, UnmanagedPolicy};

use chrono::{DateTime, Utc};

use crate::admin_api::AdminClient;
use crate::clock::SharedClock;
use crate::journal::{Journal, JournalError};
use crate::mirror::MirrorError;

/// What adoption commands can fail on.
#[derive(Debug, thiserror::Error)]
pub enum AdoptionError {
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error(transparent)]
    Mirror(#[from] MirrorError),
    #[error("{0}")]
    Input(String),
    #[error("{0}")]
    Config(String),
}

/// When the organization mirror was last read whole; reads it first (GETs only) when it
/// never was and a client is given. `None`: the organization is unknown.
pub async fn mirror_refreshed_at(
    journal: &Journal,
    client: Option<&AdminClient>,
    clock: &SharedClock,
    owner: &str,
) -> Result<Option<DateTime<Utc>>, AdoptionError> {
    let last = |reads: Vec<crate::journal::MirrorRead>| {
        reads
            .into_iter()
            .find(|r| r.part == crate::mirror::FULL)
            .and_then(|r| r.refreshed_at)
    };
    let at = last(journal.conn().await?.mirror_reads().await?);
    if at.is_some() {
        return Ok(at);
    }
    let Some(client) = client else {
        return Ok(None);
    };
    crate::mirror::refresh(client, journal, clock, owner).await?;
    Ok(last(journal.conn().await?.mirror_reads().await?))
}

/// When `keycard serve` starts writing (`enforce`, no dry run), everyone is compared with the
/// mirror at once (journal only, no Admin API call), so what observe mode planned is done
/// now rather than at the next drift check.
pub async fn on_start(worker: &crate::executor::Worker) {
    if worker.settings().dry_run || !worker.has_client() {
        return;
    }
    match worker.drift_check().await {
        Ok(r) => tracing::info!(
            people = r.people,
            queued = r.queued,
            "compared everyone with the organization mirror at start"
        ),
        Err(e) => tracing::warn!(error = %e, "could not compare everyone with the mirror at start"),
    }
}
