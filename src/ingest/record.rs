//! What one authenticated delivery becomes in the journal: lifecycle events, and notices that
//! are acknowledged but not acted on.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::event::{DedupeKey, LifecycleEvent};

/// A delivery (or one entry of a batch) Keycard acknowledges and journals with status
/// `ignored`: an event type it does not map, a record deleted at the source, an entry it
/// cannot use. Senders get a 2xx for these, never an error, so they do not retry forever.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IgnoredNotice {
    pub dedupe_key: DedupeKey,
    /// The sender's event type, when it gave one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_type: Option<String>,
    /// The person it names, when it names one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub person_id: Option<String>,
    /// When it happened at the source (receive time when the sender did not say).
    pub occurred_at: DateTime<Utc>,
    pub received_at: DateTime<Utc>,
    /// Why nothing is done, in a sentence for the journal.
    pub reason: String,
    /// Lower-case hex SHA-256 of the raw request body.
    pub body_sha256: String,
}

/// One journal row a delivery produces.
#[derive(Debug, Clone, PartialEq)]
pub enum Record {
    Event(Box<LifecycleEvent>),
    Ignored(IgnoredNotice),
}

impl Record {
    pub fn dedupe_key(&self) -> &DedupeKey {
        match self {
            Self::Event(event) => &event.dedupe_key,
            Self::Ignored(notice) => &notice.dedupe_key,
        }
    }

    /// The journal `kind`: the event kind, or `ignored`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Event(event) => event.kind.as_str(),
            Self::Ignored(_) => "ignored",
        }
    }

    pub fn as_event(&self) -> Option<&LifecycleEvent> {
        match self {
            Self::Event(event) => Some(event),
            Self::Ignored(_) => None,
        }
    }
}

impl From<LifecycleEvent> for Record {
    fn from(event: LifecycleEvent) -> Self {
        Self::Event(Box::new(event))
    }
}

impl From<IgnoredNotice> for Record {
    fn from(notice: IgnoredNotice) -> Self {
        Self::Ignored(notice)
    }
}
