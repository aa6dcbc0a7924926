//! Code the integration tests share: `common` (the Admin API client's script server and
//! simulator helpers) and `harness` (a whole Keycard — journal on PostgreSQL or SQLite,
//! the Admin API simulator, `keycard serve`'s router on loopback — for pipeline tests) and
//! `process` (`keycard serve` as a real process).
//! Not every test module uses every helper.

pub mod common;
#[allow(dead_code)]
#[macro_use]
pub mod harness;
pub mod process;
