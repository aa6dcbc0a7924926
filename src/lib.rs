//! Keycard: joiner / mover / leaver automation for organizations on the Claude Platform.
//!
//! Data flows one way: deliveries -> events -> plans -> actions -> Admin API, each step
//! journaled. Each concern lives in its own module.

#![warn(unreachable_pub)]

/// `println!` for command output: a write error (a full disk, `> /dev/full`) becomes the
/// command's error message and exit code instead of a panic. For functions returning
/// `Result<_, String>`.
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, $($arg)*)
            .and_then(|()| stdout.flush())
            .map_err(|e| format!("cannot write the output: {e}"))?
    }};
}

/// `print!` for command output, as [`outln!`] is `println!`.
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let mut stdout = std::io::stdout().lock();
        write!(stdout, $($arg)*)
            .and_then(|()| stdout.flush())
            .map_err(|e| format!("cannot write the output: {e}"))?
    }};
}

pub mod admin_api;
pub mod admin_sim;
pub mod adoption;
pub mod app;
pub(crate) mod auth;
pub mod budget;
pub mod cli;
pub(crate) mod cli_ops;
pub mod clock;
pub mod config;
pub(crate) mod console;
pub(crate) mod credential;
pub mod demo;
pub mod executor;
pub(crate) mod gusto_cli;
pub mod http;
pub mod ingest;
pub mod journal;
pub(crate) mod mirror;
pub mod notify;
pub mod planner;
pub mod rules;
pub(crate) mod scim;
pub mod sender_api;
pub mod sender_sim;
pub mod settings;
pub mod sources;
pub(crate) mod state;
pub mod telemetry;
