//! Logging set-up: human-readable by default, JSON with `KEYCARD_LOG_FORMAT=json`.

use tracing_subscriber::EnvFilter;

pub fn init() {
    init_with_default("info");
}

/// Like `init`, with another default level when `KEYCARD_LOG` is unset.
pub fn init_with_default(level: &str) {
    let filter = EnvFilter::try_from_env("KEYCARD_LOG").unwrap_or_else(|_| EnvFilter::new(level));
    let json = std::env::var("KEYCARD_LOG_FORMAT").is_ok_and(|v| v == "json");
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // `try_init` so a second call (tests, demo) is harmless.
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}
