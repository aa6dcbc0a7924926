//! Notices: the moments that must reach a person, as typed values on one in-process
//! channel. Whatever sends them on (the outbound alert sender: a signed webhook, Slack)
//! subscribes with [`Notifier::subscribe`]; with no subscriber a notice is simply dropped
//! (the journal, the logs and `/metrics` still say what happened).
//!
//! Each notice has a stable `type` (its serde tag, e.g. `credential.rejected`), so an alert
//! sender can route, deduplicate and rate-limit by it. Notices carry no secret: a credential
//! is described by its kind and the API's answer, never its value.
//!
//! ```
//! # use keycard::notify::{Notice, Notifier};
//! let notifier = Notifier::default();
//! let mut inbox = notifier.subscribe();
//! notifier.send(Notice::CredentialRestored { at: chrono::Utc::now() });
//! assert_eq!(inbox.try_recv().map(|n| n.kind()), Ok("credential.restored"));
//! ```

use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio::sync::broadcast;

/// Something a person should hear about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type")]
pub enum Notice {
    /// The Admin API refused Keycard's credential (401, or 403 confirmed by a read): no
    /// write is scheduled until a probe succeeds again. Sent once per rejection.
    #[serde(rename = "credential.rejected")]
    CredentialRejected {
        /// The HTTP status the API answered (401 or 403).
        status: u16,
        /// The API's own words (e.g. "invalid x-api-key"), with its request-id.
        reason: String,
        /// The route template of the call that was refused.
        route: String,
        at: DateTime<Utc>,
    },
    /// A probe succeeded after a rejection: writes resume.
    #[serde(rename = "credential.restored")]
    CredentialRestored { at: DateTime<Utc> },
}

impl Notice {
    /// The stable `type` of the notice.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::CredentialRejected { .. } => "credential.rejected",
            Self::CredentialRestored { .. } => "credential.restored",
        }
    }
}

/// The channel notices travel on (cheap to clone; clones share it).
#[derive(Debug, Clone)]
pub struct Notifier {
    tx: broadcast::Sender<Notice>,
}

/// Notices a slow subscriber may fall behind by before it misses the oldest.
pub const CAPACITY: usize = 1024;

impl Default for Notifier {
    fn default() -> Self {
        Self {
            tx: broadcast::channel(CAPACITY).0,
        }
    }
}

impl Notifier {
    /// Sends a notice to every current subscriber (none: dropped).
    pub fn send(&self, notice: Notice) {
        tracing::debug!(notice = notice.kind(), "notice");
        let _ = self.tx.send(notice);
    }

    /// Every notice sent from now on. A subscriber that falls more than [`CAPACITY`]
    /// behind is told how many it missed (`RecvError::Lagged`).
    pub fn subscribe(&self) -> broadcast::Receiver<Notice> {
        self.tx.subscribe()
    }
}
