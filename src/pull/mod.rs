//! Scheduled full pull (issue 16 item 3) and correlation settings (item 5).
//!
//! Per source whose `[sources.api]` sets `pull_interval_secs`, `keycard serve` reads the whole
//! directory through the sender's API ([`SenderClient::list_all`], paged and paced by the
//! client) once per interval and compares it with Keycard's people of that feed
//! ([`diff::compare`]). Whoever was hired, changed or terminated without a notice becomes an
//! event of that source, journaled with `source_event_type = "pull"` (and a dedupe key
//! `pull:…`), full completeness, applied like any other event: a lost webhook is repaired
//! within the interval.
//!
//! One process pulls a source at a time, across every replica (a lease in `pull_state`).
//! Every run is journaled in `pull_runs` (started, counts, errors, the events it wrote).
//!
//! **Absent people.** Every sender's list includes terminated people (`list_all`), so a
//! person Keycard knows who is missing from the directory was deleted there, or the read was
//! wrong (a narrowed service user, a broken export). Before departing anyone for absence the
//! pull reads that person by id: only a 404 departs them; a record found is compared like
//! any other; another error departs no one.
//!
//! **Mass-departure guard.** A pull never empties the organization: when its departures
//! exceed `safety.max_removals_per_hour`, or the directory lists fewer than
//! `pull.min_directory_percent` % of the people Keycard has working from that feed (an empty
//! directory always), *every* departure of that run is journaled with status `held` (visible
//! in the events and in the run) and applied only when an operator releases the run
//! (`POST /api/v1/pull-runs/{id}/release`, with a reason, on the operator log). Absences are
//! not confirmed one by one then (a broken read would cost a call per person).

pub mod cli;
pub mod diff;
pub mod http;

use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use uuid::Uuid;

use crate::clock::SharedClock;
use crate::config::Config;
use crate::ingest::EventKind;
use crate::journal::{CorrelationKey, Journal, JournalError, PersonStatus, PullCounts};
use crate::sender_api::{SenderApiError, SenderClient};
use crate::settings::{Bound, ConfigError};
use crate::sources::api::SourceApi;
use crate::sources::dates::LocalDates;

/// `pull.min_directory_percent`: below this share of the people Keycard has working from a
/// feed, a directory is not believed and its departures are held.
pub const MIN_DIRECTORY_PERCENT: Bound = Bound {
    key: "pull.min_directory_percent",
    min: 10,
    max: 100,
    off: None,
    unit: "percent",
    why: "a directory that suddenly lists far fewer people than Keycard knows is a broken read until an operator says otherwise; below 10 % the check would let an export that lost most people through",
};

/// `[pull]`: settings shared by every source's scheduled pull.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct PullConfig {
    pub min_directory_percent: u64,
}

impl Default for PullConfig {
    fn default() -> Self {
        Self {
            min_directory_percent: 50,
        }
    }
}

/// `[correlation]`: when two feeds' records are one person.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct CorrelationConfig {
    /// `work_email` or `attribute`; absent: no correlation (operators may still merge).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
    /// With `by = "attribute"`: the key under `person.attributes` (e.g. `employee_number`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attribute: Option<String>,
}

impl CorrelationConfig {
    /// The validated key, `None` when correlation is off.
    pub fn key(&self) -> Result<Option<CorrelationKey>, ConfigError> {
        match (self.by.as_deref(), self.attribute.as_deref()) {
            (None, None) => Ok(None),
            (Some("work_email"), None) => Ok(Some(CorrelationKey::WorkEmail)),
            (Some("work_email"), Some(_)) => Err(ConfigError::invalid(
                "correlation.attribute",
                "only with by = \"attribute\"",
            )),
            (Some("attribute") | None, Some(name)) => {
                let ok = !name.is_empty()
                    && name.len() <= 64
                    && name
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
                if ok {
                    Ok(Some(CorrelationKey::Attribute(name.to_owned())))
                } else {
                    Err(ConfigError::invalid(
                        "correlation.attribute",
                        "1 to 64 letters, digits, '_' or '-' (a key of person.attributes)",
                    ))
                }
            }
            (Some("attribute"), None) => Err(ConfigError::invalid(
                "correlation.attribute",
                "by = \"attribute\" needs attribute = \"<key of person.attributes>\"",
            )),
            (Some(other), _) => Err(ConfigError::invalid(
                "correlation.by",
                format!("unknown correlation {other:?}: use \"work_email\" or \"attribute\""),
            )),
        }
    }
}

/// Checks `[pull]` and `[correlation]` (called by the config loader).
pub fn validate(pull: &PullConfig, correlation: &CorrelationConfig) -> Result<(), ConfigError> {
    MIN_DIRECTORY_PERCENT.check(MIN_DIRECTORY_PERCENT.key, pull.min_directory_percent)?;
    correlation.key().map(|_| ())
}

#[derive(Debug, thiserror::Error)]
pub enum PullError {
    #[error("no source named {0} is configured")]
    UnknownSource(String),
    #[error("source {0} has no [sources.api] table: there is no directory to read")]
    NoApi(String),
    #[error("another process is pulling {0} now")]
    Busy(String),
    #[error("reading the directory failed: {0}")]
    Read(#[from] SenderApiError),
    #[error(transparent)]
    Journal(#[from] JournalError),
}

/// One finding as reported (CLI, run detail).
#[derive(Debug, Clone, Serialize)]
pub struct Found {
    pub person: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    pub kind: EventKind,
    pub why: String,
    pub held: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_id: Option<Uuid>,
    /// Already journaled by an earlier run (same finding, same person state).
    pub duplicate: bool,
}

/// What one pull did (or, dry, would do).
#[derive(Debug, Clone, Serialize)]
pub struct PullReport {
    pub run_id: Uuid,
    pub source: String,
    pub dry_run: bool,
    pub counts: PullCounts,
    /// Why departures were held, when they were.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub held_because: Option<String>,
    pub found: Vec<Found>,
    pub errors: Vec<String>,
}

/// One pulled source.
#[derive(Debug, Clone)]
struct PullSource {
    name: String,
    api: SourceApi,
    /// How its date-only hire and termination dates are read.
    dates: LocalDates,
}

/// Runs the scheduled pulls of every source that has one.
#[derive(Debug, Clone)]
pub struct Puller {
    journal: Journal,
    clock: SharedClock,
    sources: Vec<PullSource>,
    max_removals: u32,
    min_percent: u64,
    owner: String,
    /// How long a claim lasts: a process that died mid-pull is replaced after it.
    lease: Duration,
}

impl Puller {
    pub fn from_config(
        config: &Config,
        journal: Journal,
        clock: SharedClock,
        owner: String,
    ) -> Self {
        let sources = config
            .sources
            .values()
            .filter_map(|s| {
                s.api.clone().map(|api| PullSource {
                    name: s.name.clone(),
                    api,
                    dates: s.dates,
                })
            })
            .collect();
        Self {
            journal,
            clock,
            sources,
            max_removals: config.raw.safety.max_removals_per_hour,
            min_percent: config.raw.pull.min_directory_percent,
            owner: format!("{owner}-pull"),
            lease: Duration::minutes(30),
        }
    }

    /// Pulls every source whose pull is due (or was requested) and not taken by another
    /// process. A failed pull is journaled and retried at the next interval.
    pub async fn run_due(&self) -> Vec<Result<PullReport, PullError>> {
        let mut out = Vec::new();
        for source in &self.sources {
            let every = source
                .api
                .pull_interval()
                .map(|every| Duration::from_std(every).unwrap_or(Duration::days(7)));
            let now = self.clock.now();
            let claimed = match self.journal.conn().await {
                // A source without a schedule is still pulled when asked (Graph's `missed`).
                Ok(mut c) => match every {
                    Some(every) => {
                        c.pull_claim(&source.name, &self.owner, now, self.lease, every)
                            .await
                    }
                    None => {
                        c.pull_claim_requested(&source.name, &self.owner, now, self.lease)
                            .await
                    }
                }
                .map_err(PullError::from),
                Err(e) => Err(e.into()),
            };
            match claimed {
                Ok(true) => out.push(self.run_claimed(source, false, "schedule").await),
                Ok(false) => {}
                Err(e) => out.push(Err(e)),
            }
        }
        out
    }

    /// Pulls one source now (`keycard pull`): under the same lease as the schedule, so it
    /// never runs beside another process's pull of the source.
    pub async fn run_now(&self, source: &str, dry_run: bool) -> Result<PullReport, PullError> {
        let s = self
            .sources
            .iter()
            .find(|s| s.name == source)
            .ok_or_else(|| PullError::NoApi(source.to_owned()))?;
        if dry_run {
            // Writes nothing, so it needs no lease and leaves the schedule as it was.
            return self.pull(s, true, "cli").await;
        }
        let mut conn = self.journal.conn().await?;
        // `every` zero: due whenever nobody holds the lease.
        if !conn
            .pull_claim(
                source,
                &self.owner,
                self.clock.now(),
                self.lease,
                Duration::zero(),
            )
            .await?
        {
            return Err(PullError::Busy(source.to_owned()));
        }
        drop(conn);
        self.run_claimed(s, false, "cli").await
    }

    async fn run_claimed(
        &self,
        source: &PullSource,
        dry_run: bool,
        started_by: &str,
    ) -> Result<PullReport, PullError> {
        let result = self.pull(source, dry_run, started_by).await;
        let finished = result.is_ok().then(|| self.clock.now());
        if let Ok(mut c) = self.journal.conn().await
            && let Err(e) = c.pull_release(&source.name, &self.owner, finished).await
        {
            tracing::warn!(source = %source.name, error = %e, "could not give the pull lease back; it lapses");
        }
        result
    }

    async fn pull(
        &self,
        source: &PullSource,
        dry_run: bool,
        started_by: &str,
    ) -> Result<PullReport, PullError> {
        let run_id = Uuid::now_v7();
        let started = self.clock.now();
        if !dry_run {
            self.journal
                .conn()
                .await?
                .pull_run_started(run_id, &source.name, started_by, dry_run, started)
                .await?;
        }
        tracing::info!(source = %source.name, run = %run_id, dry_run, "pull started");
        let outcome = self.compare_and_journal(source, run_id, dry_run).await;
        if !dry_run {
            let now = self.clock.now();
            let mut c = self.journal.conn().await?;
            match &outcome {
                Ok(report) => {
                    let ids = |held: bool| -> Vec<String> {
                        report
                            .found
                            .iter()
                            .filter(|f| f.held == held && !f.duplicate)
                            .filter_map(|f| f.event_id.map(|i| i.to_string()))
                            .collect()
                    };
                    let detail = json!({
                        "events": ids(false),
                        "held_events": ids(true),
                        "held_because": report.held_because,
                        "errors": report.errors,
                    });
                    let status = if report.counts.held > 0 {
                        "held"
                    } else {
                        "done"
                    };
                    c.pull_run_finished(run_id, status, &report.counts, None, &detail, now)
                        .await?;
                }
                Err(e) => {
                    c.pull_run_finished(
                        run_id,
                        "failed",
                        &PullCounts::default(),
                        Some(&e.to_string()),
                        &json!({}),
                        now,
                    )
                    .await?;
                }
            }
        }
        match &outcome {
            Ok(r) => tracing::info!(
                source = %source.name, run = %run_id, read = r.counts.records,
                hired = r.counts.hired, changed = r.counts.changed,
                departed = r.counts.departed, held = r.counts.held, "pull finished"
            ),
            Err(e) => {
                tracing::warn!(source = %source.name, run = %run_id, error = %e, "pull failed")
            }
        }
        outcome
    }

    async fn compare_and_journal(
        &self,
        source: &PullSource,
        run_id: Uuid,
        dry_run: bool,
    ) -> Result<PullReport, PullError> {
        let client: SenderClient = source.api.client(self.clock.clone())?;
        let directory = client.list_all().await?;
        let now = self.clock.now();
        let people = self
            .journal
            .conn()
            .await?
            .people_of_feed(&source.name)
            .await?;
        let mut cmp = diff::compare(
            &source.name,
            &source.dates,
            &directory.records,
            &people,
            now,
            run_id,
        );
        let mut errors = Vec::new();

        let working = people
            .iter()
            .filter(|(_, p)| matches!(p.status, PersonStatus::Active | PersonStatus::OnLeave))
            .count();
        let departures = cmp
            .findings
            .iter()
            .filter(|f| f.kind == EventKind::Departed)
            .count()
            + cmp.absent.len();
        let too_small = working > 0
            && (directory.records.len() as u64) * 100 < self.min_percent * working as u64;
        let held_because = if too_small {
            Some(format!(
                "the directory lists {} people, fewer than pull.min_directory_percent ({} %) of the {working} Keycard has working from {}: a broken read until an operator releases this run",
                directory.records.len(),
                self.min_percent,
                source.name
            ))
        } else if departures > self.max_removals as usize {
            Some(format!(
                "{departures} departures exceed safety.max_removals_per_hour ({}): a mass departure waits for an operator",
                self.max_removals
            ))
        } else {
            None
        };

        for (id, person) in std::mem::take(&mut cmp.absent) {
            if held_because.is_some() {
                cmp.findings.extend(diff::absent_departure(
                    &source.name,
                    &id,
                    &person,
                    "absent from the directory (not confirmed: the run is held)",
                    now,
                    run_id,
                ));
                continue;
            }
            // Really gone? Only the sender's own 404 for that id says so.
            match client.get(&id).await {
                Err(SenderApiError::NotFound { .. }) => {
                    cmp.findings.extend(diff::absent_departure(
                        &source.name,
                        &id,
                        &person,
                        "absent from the directory and not found by id (deleted at the sender)",
                        self.clock.now(),
                        run_id,
                    ));
                }
                Ok(record) => {
                    let owned = person.source == source.name;
                    cmp.findings.extend(diff::compare_one(
                        &source.name,
                        &source.dates,
                        &record,
                        Some(&person),
                        owned,
                        self.clock.now(),
                        run_id,
                    ));
                }
                Err(e) => errors.push(format!(
                    "{id}: absent from the directory, and reading it failed: {e}"
                )),
            }
        }

        let mut counts = PullCounts {
            pages: i64::from(directory.pages),
            records: directory.records.len() as i64,
            unchanged: cmp.unchanged as i64,
            ..PullCounts::default()
        };
        let mut found = Vec::with_capacity(cmp.findings.len());
        let mut tx = if dry_run {
            None
        } else {
            Some(self.journal.begin().await?)
        };
        for f in cmp.findings {
            let held = f.kind == EventKind::Departed && held_because.is_some();
            let (event_id, duplicate) = match tx.as_mut() {
                Some(tx) => {
                    let r = tx.record_event(&f.event, None).await?;
                    if held && !r.duplicate {
                        tx.hold_event(
                            r.event_id,
                            &format!(
                                "held by pull run {run_id}: {}",
                                held_because.as_deref().unwrap_or_default()
                            ),
                        )
                        .await?;
                    }
                    (Some(r.event_id), r.duplicate)
                }
                None => (None, false),
            };
            if !duplicate {
                match f.kind {
                    _ if held => counts.held += 1,
                    EventKind::Hired | EventKind::Rehired => counts.hired += 1,
                    EventKind::Departed => counts.departed += 1,
                    _ => counts.changed += 1,
                }
            } else {
                counts.unchanged += 1;
            }
            found.push(Found {
                person: f.source_person_id,
                email: f.email,
                kind: f.kind,
                why: f.why,
                held,
                event_id,
                duplicate,
            });
        }
        if let Some(tx) = tx {
            tx.commit().await?;
        }
        Ok(PullReport {
            run_id,
            source: source.name.clone(),
            dry_run,
            counts,
            held_because,
            found,
            errors,
        })
    }

    /// The pull loop of `keycard serve`: looks every `poll` for a due pull until `stop`.
    pub async fn run(&self, stop: tokio_util::sync::CancellationToken, poll: StdDuration) {
        // A source with an API is pulled on its schedule, or when asked (`POST /api/v1/pull`,
        // Graph's `missed`), so the loop runs while any has one.
        if self.sources.is_empty() {
            return;
        }
        loop {
            for r in self.run_due().await {
                if let Err(e) = r {
                    tracing::warn!(error = %e, "scheduled pull failed; retried at its next interval");
                }
            }
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(poll) => {}
            }
        }
    }
}

/// Asks for a pull of `source` at the next look of any `keycard serve`, whatever its
/// interval: for the Graph source when Graph reports `missed` notifications (lifecycle
/// notification), or anything else that knows notices were lost. Journaled in
/// `pull_state.requested_at` / `requested_reason`; the pull itself takes the usual lease.
pub async fn request_now(
    journal: &Journal,
    source: &str,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<(), JournalError> {
    journal
        .conn()
        .await?
        .pull_request(source, reason, now)
        .await?;
    tracing::info!(%source, %reason, "pull requested");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(by: Option<&str>, attribute: Option<&str>) -> Result<Option<CorrelationKey>, String> {
        CorrelationConfig {
            by: by.map(str::to_owned),
            attribute: attribute.map(str::to_owned),
        }
        .key()
        .map_err(|e| e.to_string())
    }

    #[test]
    fn correlation_settings_are_validated() {
        assert_eq!(key(None, None), Ok(None));
        assert_eq!(
            key(Some("work_email"), None),
            Ok(Some(CorrelationKey::WorkEmail))
        );
        assert_eq!(
            key(Some("attribute"), Some("employee_number")),
            Ok(Some(CorrelationKey::Attribute("employee_number".into())))
        );
        assert!(key(Some("attribute"), None).is_err_and(|e| e.contains("correlation.attribute")));
        assert!(key(Some("work_email"), Some("x")).is_err());
        assert!(key(Some("attribute"), Some("a b")).is_err());
        assert!(key(Some("attribute"), Some(&"x".repeat(65))).is_err());
        assert!(key(Some("name"), None).is_err_and(|e| e.contains("correlation.by")));
    }

    #[test]
    fn the_directory_share_is_bounded() {
        let ok = |p: u64| {
            validate(
                &PullConfig {
                    min_directory_percent: p,
                },
                &CorrelationConfig::default(),
            )
            .is_ok()
        };
        assert!(ok(10) && ok(50) && ok(100));
        assert!(!ok(9) && !ok(0) && !ok(101));
    }
}
