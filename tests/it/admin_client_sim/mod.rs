//! The Admin API client against the in-memory simulator over loopback (docs/spec/admin-api.md §3, §4,
//! §5, §7, §11, §14). Client and simulator share one `ManualClock`, so pacing, retry-after and
//! expiry run instantly and deterministically. Wire-level faults (bad bodies, cut
//! connections) live in `admin_client_faults.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failure should stop the test loudly

mod endpoints;
mod errors;
mod pagination;
mod retry_pacing;
