//! Configuration through the real loading path (`Config::load_with`: defaults, a file on
//! disk, an environment): every key from the environment by one rule, the bounds of every
//! numeric setting, provenance, and the listeners over real loopback.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failure should stop the test loudly

mod bounds;
mod env;
mod listen;

use std::path::{Path, PathBuf};

use keycard::config::{Config, ConfigError};

/// A Standard Webhooks secret for sources written in tests.
pub const WHSEC: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";

/// A config file in a temporary directory.
pub struct File {
    /// Held so the directory lives as long as the file.
    _dir: tempfile::TempDir,
    pub path: PathBuf,
}

pub fn file(text: &str) -> File {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keycard.toml");
    std::fs::write(&path, text).unwrap();
    File { _dir: dir, path }
}

/// Loads `path` under exactly `vars` (plus the source secret `S`).
pub fn load(path: Option<&Path>, vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
    let mut all: Vec<(String, String)> = vars
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    all.push(("S".into(), WHSEC.into()));
    Config::load_with(path, all)
}
