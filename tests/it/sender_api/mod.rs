//! The sender API clients (`keycard::sender_api`) against their simulators
//! (`keycard::sender_sim`) over loopback, and the simulators' notices against Keycard's own
//! source adapters. Client and simulator share one `ManualClock`, so pacing, retry-after and
//! backoff run instantly and the waits are asserted exactly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failure should stop the test loudly

mod common;
mod graph;
mod matrix;
mod notices;
mod wire;
