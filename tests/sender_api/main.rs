//! The sender API clients (`keycard::sender_api`) against their simulators
//! (`keycard::sender_sim`) over loopback, and the simulators' notices against Keycard's own
//! source adapters. Client and simulator share one `ManualClock`, so pacing, retry-after and
//! backoff run instantly and the waits are asserted exactly.

mod common;
mod graph;
mod matrix;
mod notices;
mod wire;
