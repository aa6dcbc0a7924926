//! Turning authenticated deliveries into canonical lifecycle events.

mod dupkeys;
pub mod event;
mod identity;
mod native;
mod nul;
pub mod record;

pub use dupkeys::json_duplicate_key;
pub use event::{
    Attr, Completeness, DedupeKey, Email, EventKind, GroupChanges, LifecycleEvent, MAX_TEXT_LEN,
    NativeEvent, Origin, ParseError, PersonAttributes, PersonId, sha256_hex,
};
pub use nul::json_contains_nul;
pub use record::{IgnoredNotice, Record};
