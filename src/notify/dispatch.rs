//! The dispatcher: fans notifications out into deliveries and sends them, with retries,
//! backoff and a per-target rate limit, journaling every outcome.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use secrecy::ExposeSecret;
use tokio::sync::Notify;

use super::config::{NotifyConfig, Target};
use super::format::{Content, Message, render};
use crate::clock::SharedClock;
use crate::journal::{DeliveryOutcome, DeliveryRow, DeliveryStatus, Journal, JournalResult};

/// Most deliveries sent per target in one pass.
const BATCH: i64 = 20;
/// How long a claimed delivery is ours before another process may retry it.
const LEASE_SECS: i64 = 120;

/// How one HTTP attempt went.
#[derive(Debug, Clone)]
pub enum SendResult {
    Delivered(u16),
    /// Worth retrying (a 5xx, 429, a timeout); `retry_after` from the receiver.
    Retry {
        status: Option<u16>,
        error: String,
        retry_after: Option<std::time::Duration>,
    },
    /// Retrying cannot help (410 Gone).
    GiveUp {
        status: Option<u16>,
        error: String,
    },
}

/// Sends the journal's notification outbox. Cheap to clone.
#[derive(Clone)]
pub struct Dispatcher {
    journal: Journal,
    clock: SharedClock,
    targets: Arc<Vec<Target>>,
    settings: Arc<NotifyConfig>,
    http: reqwest::Client,
    owner: String,
    wake: Arc<Notify>,
}

impl std::fmt::Debug for Dispatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dispatcher")
            .field("targets", &self.targets)
            .finish_non_exhaustive()
    }
}

fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        // A redirect would carry the signed alert to a host nobody configured.
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("keycard/", env!("CARGO_PKG_VERSION")))
        .build()
        .unwrap_or_default()
}

impl Dispatcher {
    pub fn new(
        journal: Journal,
        clock: SharedClock,
        targets: Vec<Target>,
        settings: NotifyConfig,
        owner: String,
    ) -> Self {
        Self {
            journal,
            clock,
            targets: Arc::new(targets),
            settings: Arc::new(settings),
            http: http_client(),
            owner,
            wake: Arc::new(Notify::new()),
        }
    }

    /// Wakes the loop so a notification just raised is sent now.
    pub fn waker(&self) -> Arc<Notify> {
        self.wake.clone()
    }

    pub fn targets(&self) -> &[Target] {
        &self.targets
    }

    /// One pass: fan out what was raised, then send what is due to each target within its
    /// rate limit. Returns how many attempts were made.
    pub async fn run_once(&self) -> JournalResult<usize> {
        let now = self.clock.now();
        let names: Vec<String> = self.targets.iter().map(|t| t.name.clone()).collect();
        loop {
            let mut tx = self.journal.begin().await?;
            let wants = |name: &str, n: &crate::journal::NotificationRow| {
                if n.kind == crate::journal::NotificationKind::Test {
                    // A test goes only to the target it names.
                    return n.data.get("target").and_then(|t| t.as_str()) == Some(name);
                }
                self.targets
                    .iter()
                    .any(|t| t.name == name && t.wants(n.kind))
            };
            let handled = tx.fan_out_notifications(&names, &wants, 200, now).await?;
            tx.commit().await?;
            if handled < 200 {
                break;
            }
        }
        let mut attempts = 0;
        for target in self.targets.iter() {
            let recent = self
                .journal
                .conn()
                .await?
                .deliveries_in_last_minute(&target.name, now)
                .await?;
            let budget = i64::from(target.max_per_minute) - recent;
            if budget <= 0 {
                continue;
            }
            let claimed = self
                .journal
                .conn()
                .await?
                .claim_deliveries(
                    &target.name,
                    budget.min(BATCH),
                    &self.owner,
                    Duration::seconds(LEASE_SECS),
                    now,
                )
                .await?;
            for d in claimed {
                attempts += 1;
                self.attempt(target, &d).await?;
            }
        }
        Ok(attempts)
    }

    async fn attempt(&self, target: &Target, d: &DeliveryRow) -> JournalResult<()> {
        let now = self.clock.now();
        let message = render(
            target,
            &Content {
                id: d.notification_id,
                kind: d.kind,
                subject: &d.subject,
                data: &d.data,
                person_id: d.person_id,
                raised_at: d.raised_at,
            },
            self.settings.console_url.as_deref(),
            now,
        );
        let result = send(&self.http, target, &message).await;
        let attempts = u32::try_from(d.attempts).unwrap_or(u32::MAX);
        let outcome = self.outcome(result, attempts, now);
        match outcome.status {
            DeliveryStatus::Delivered => {
                tracing::info!(target = %target.name, kind = %d.kind, notification = %d.notification_id, "alert delivered");
            }
            DeliveryStatus::Failed => {
                tracing::error!(target = %target.name, kind = %d.kind, notification = %d.notification_id, attempts, error = outcome.error.as_deref().unwrap_or(""), "alert could not be delivered; giving up");
            }
            DeliveryStatus::Pending => {
                tracing::warn!(target = %target.name, kind = %d.kind, notification = %d.notification_id, attempts, error = outcome.error.as_deref().unwrap_or(""), retry_at = ?outcome.retry_at, "alert delivery failed; will retry");
            }
        }
        let mut tx = self.journal.begin().await?;
        tx.finish_delivery(d.id, &self.owner, &outcome, self.clock.now())
            .await?;
        tx.commit().await
    }

    /// The journaled outcome of an attempt: delivered, retry later (backing off), or given up.
    fn outcome(&self, result: SendResult, attempts: u32, now: DateTime<Utc>) -> DeliveryOutcome {
        match result {
            SendResult::Delivered(status) => DeliveryOutcome {
                status: DeliveryStatus::Delivered,
                response_status: Some(status),
                error: None,
                retry_at: None,
            },
            SendResult::GiveUp { status, error } => DeliveryOutcome {
                status: DeliveryStatus::Failed,
                response_status: status,
                error: Some(error),
                retry_at: None,
            },
            SendResult::Retry {
                status,
                error,
                retry_after,
            } => {
                if attempts >= self.settings.max_attempts {
                    return DeliveryOutcome {
                        status: DeliveryStatus::Failed,
                        response_status: status,
                        error: Some(format!("{error} (gave up after {attempts} attempts)")),
                        retry_at: None,
                    };
                }
                let delay = backoff(
                    self.settings.retry_base_secs,
                    self.settings.retry_max_secs,
                    attempts,
                )
                .max(
                    retry_after
                        .map(|d| d.as_secs().min(self.settings.retry_max_secs))
                        .unwrap_or(0),
                );
                DeliveryOutcome {
                    status: DeliveryStatus::Pending,
                    response_status: status,
                    error: Some(error),
                    retry_at: Some(now + Duration::seconds(i64::try_from(delay).unwrap_or(3600))),
                }
            }
        }
    }

    /// Runs until `stop` resolves: a pass, then sleep until the next delivery is due, the
    /// poll interval passes, or something wakes it.
    pub async fn run(&self, stop: impl std::future::Future<Output = ()>) {
        tokio::pin!(stop);
        let poll = std::time::Duration::from_millis(self.settings.poll_ms.max(50));
        loop {
            if let Err(e) = self.run_once().await {
                tracing::warn!(error = %e, "alert dispatcher: journal unavailable; retrying");
            }
            let next = match self.journal.conn().await {
                Ok(mut c) => c.next_delivery_due().await.ok().flatten(),
                Err(_) => None,
            };
            let wait = next
                .and_then(|t| (t - self.clock.now()).to_std().ok())
                .map_or(poll, |w| w.min(poll));
            tokio::select! {
                () = &mut stop => return,
                () = self.wake.notified() => {}
                () = self.clock.sleep(wait) => {}
            }
        }
    }
}

/// Seconds before retry number `attempts` (1-based): base, 2×base, 4×base … at most `max`.
fn backoff(base: u64, max: u64, attempts: u32) -> u64 {
    let exp = attempts.saturating_sub(1).min(30);
    base.saturating_mul(1u64 << exp).min(max)
}

/// One HTTP attempt. Errors never name the URL (for Slack it is the credential).
async fn send(http: &reqwest::Client, target: &Target, m: &Message) -> SendResult {
    let mut req = http
        .post(target.url.expose_secret())
        .timeout(target.timeout)
        .body(m.body.clone());
    for (k, v) in &m.headers {
        req = req.header(*k, v);
    }
    match req.send().await {
        Ok(resp) => {
            let status = resp.status().as_u16();
            let retry_after = resp
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(std::time::Duration::from_secs);
            if resp.status().is_success() {
                SendResult::Delivered(status)
            } else if status == 410 {
                SendResult::GiveUp {
                    status: Some(status),
                    error: "the receiver answered 410 Gone".into(),
                }
            } else {
                SendResult::Retry {
                    status: Some(status),
                    error: format!("the receiver answered {status}"),
                    retry_after,
                }
            }
        }
        Err(e) => {
            let what = if e.is_timeout() {
                "timed out"
            } else if e.is_connect() {
                "could not connect"
            } else {
                "request failed"
            };
            SendResult::Retry {
                status: None,
                error: format!("{what}: {}", e.without_url()),
                retry_after: None,
            }
        }
    }
}

/// `keycard notify-test`: renders a `keycard.test` message for `target` and sends it once,
/// now, without the journal. Returns how the receiver answered.
pub async fn send_test(
    target: &Target,
    console_url: Option<&str>,
    now: DateTime<Utc>,
) -> SendResult {
    let data = serde_json::json!({ "target": target.name });
    let message = render(
        target,
        &Content {
            id: uuid::Uuid::now_v7(),
            kind: crate::journal::NotificationKind::Test,
            subject: "Test alert from Keycard: this target is configured correctly",
            data: &data,
            person_id: None,
            raised_at: now,
        },
        console_url,
        now,
    );
    send(&http_client(), target, &message).await
}

#[cfg(test)]
mod tests {
    use super::backoff;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        assert_eq!(backoff(10, 3600, 1), 10);
        assert_eq!(backoff(10, 3600, 2), 20);
        assert_eq!(backoff(10, 3600, 4), 80);
        assert_eq!(backoff(10, 3600, 20), 3600);
        assert_eq!(backoff(10, 3600, u32::MAX), 3600);
    }
}
