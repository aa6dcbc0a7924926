//! Turning authenticated deliveries into canonical lifecycle events.

pub mod event;

pub use event::{
    Attr, DedupeKey, Email, EventKind, LifecycleEvent, NativeEvent, ParseError, PersonAttributes,
    PersonId,
};
