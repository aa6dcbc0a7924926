//! Vendor sources end to end: every event kind of every sender, signed here with the sender's
//! algorithm; every failure mode; and a delivery from each sender through the journal and the
//! Admin API simulator, exactly like a native one.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failure should stop the test loudly

use crate::harness;

mod bamboohr;
mod common;
mod config;
mod e2e;
mod generic;
mod graph;
mod gusto;
mod hibob;
mod okta;
