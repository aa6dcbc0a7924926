//! Turning authenticated deliveries into canonical lifecycle events.

pub mod event;
pub mod record;

pub use event::{
    Attr, Completeness, DedupeKey, Email, EventKind, GroupChanges, LifecycleEvent, MAX_TEXT_LEN,
    NativeEvent, Origin, ParseError, PersonAttributes, PersonId, sha256_hex,
};
pub use record::{IgnoredNotice, Record};
