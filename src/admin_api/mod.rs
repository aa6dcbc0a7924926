//! Typed async client for the Anthropic Admin API (contract: `admin-api.md` §1–§7, §14).
//! (Built up in steps; see later commits.)

pub mod types;
#[allow(dead_code)]
mod error;
#[allow(dead_code)]
mod retry;
#[allow(dead_code)]
mod pacing;
