//! Turning authenticated deliveries into canonical lifecycle events.

pub mod event;

pub use event::{
    Attr, DedupeKey, Email, EventKind, LifecycleEvent, MAX_TEXT_LEN, NativeEvent, ParseError,
    PersonAttributes, PersonId, sha256_hex,
};
