//! Every integration test in one binary (one link, one run), with the shared code in
//! `support`. `tests/admin_client_logs.rs` is the one exception (its top says why).
//! A module per area; `cargo test --test it pipeline::` runs one area.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failure should stop the test loudly

#[macro_use]
mod support;
use support::{common, harness};

mod admin_client_faults;
mod admin_client_sim;
mod admin_client_wire;
mod config;
mod console;
mod first_run;
mod fuzz_smoke;
mod journal;
mod pipeline;
mod postgres_tls;
mod processes;
mod release_cli;
mod rules;
mod scim;
mod sender_api;
mod sources;
