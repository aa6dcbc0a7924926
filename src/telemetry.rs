//! Logging set-up (human-readable by default, JSON with `KEYCARD_LOG_FORMAT=json`) and the
//! delivery counters `/metrics` reports.
//!
//! **One event, one line.** Request-derived values (a source name from the URL, a person id
//! from a payload) are passed through [`escape`] where they are logged, and the text log's
//! writer ([`OneLine`]) escapes every control character but an event's final newline, so a
//! `%0a` or `%00` in a URL can never forge a second log line or write a raw NUL, whatever a
//! future log call forgets. JSON logs are escaped by the JSON encoder.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

use std::io::{self, Write};

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

/// Longest request-derived value written to a log line, in characters.
pub const MAX_LOGGED_CHARS: usize = 200;

/// A request-derived value made safe for a log line: control characters escaped (`\n`,
/// `\0`, `\u{1b}`), and cut at [`MAX_LOGGED_CHARS`] characters with a marker.
pub fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len().min(MAX_LOGGED_CHARS));
    for (i, c) in value.chars().enumerate() {
        if i == MAX_LOGGED_CHARS {
            out.push_str("…(truncated)");
            break;
        }
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\0' => out.push_str("\\0"),
            c if c.is_control() => out.push_str(&c.escape_unicode().to_string()),
            c => out.push(c),
        }
    }
    out
}

/// A `MakeWriter` whose writers keep each formatted event on one line (see the module docs).
/// `keep_ansi` lets ESC through for the colour codes of a terminal.
#[derive(Debug, Clone)]
pub struct OneLine<M> {
    inner: M,
    keep_ansi: bool,
}

impl<M> OneLine<M> {
    pub fn new(inner: M, keep_ansi: bool) -> Self {
        Self { inner, keep_ansi }
    }
}

impl<'a, M: MakeWriter<'a>> MakeWriter<'a> for OneLine<M> {
    type Writer = OneLineWriter<M::Writer>;

    fn make_writer(&'a self) -> Self::Writer {
        OneLineWriter {
            inner: self.inner.make_writer(),
            keep_ansi: self.keep_ansi,
        }
    }
}

/// See [`OneLine`]. The formatter hands over a whole event in one `write_all`.
#[derive(Debug)]
pub struct OneLineWriter<W> {
    inner: W,
    keep_ansi: bool,
}

impl<W: Write> Write for OneLineWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let (body, end) = match buf.split_last() {
            Some((b'\n', body)) => (body, &b"\n"[..]),
            _ => (buf, &b""[..]),
        };
        let mut out = Vec::with_capacity(buf.len() + 8);
        for &b in body {
            match b {
                b'\n' => out.extend_from_slice(b"\\n"),
                b'\r' => out.extend_from_slice(b"\\r"),
                0 => out.extend_from_slice(b"\\0"),
                0x1b if self.keep_ansi => out.push(b),
                b'\t' => out.push(b),
                b if b < 0x20 || b == 0x7f => {
                    out.extend_from_slice(format!("\\x{b:02x}").as_bytes())
                }
                b => out.push(b),
            }
        }
        out.extend_from_slice(end);
        self.inner.write_all(&out)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// The text log's subscriber, writing to `writer` (stderr in production, a buffer in tests).
pub fn text_subscriber<W>(
    filter: EnvFilter,
    writer: W,
    ansi: bool,
) -> impl tracing::Subscriber + Send + Sync
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(OneLine::new(writer, ansi))
        .finish()
}

pub fn init() {
    init_with_default("info");
}

/// Like `init`, with another default level when `KEYCARD_LOG` is unset.
pub fn init_with_default(level: &str) {
    let filter = EnvFilter::try_from_env("KEYCARD_LOG").unwrap_or_else(|_| EnvFilter::new(level));
    let json = std::env::var("KEYCARD_LOG_FORMAT").is_ok_and(|v| v == "json");
    // `try_init` / `set_global_default` errors only mean a second call (tests, demo).
    if json {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .json()
            .try_init();
    } else {
        let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr())
            && std::env::var_os("NO_COLOR").is_none();
        let _ =
            tracing::subscriber::set_global_default(text_subscriber(filter, std::io::stderr, ansi));
    }
}

/// Counters exposed on `/metrics`.
#[derive(Debug, Default)]
pub struct Metrics {
    accepted: AtomicU64,
    duplicates: AtomicU64,
    ignored: AtomicU64,
    handshakes: AtomicU64,
    rejected: std::sync::Mutex<BTreeMap<&'static str, u64>>,
}

impl Metrics {
    pub fn accepted(&self) {
        self.accepted.fetch_add(1, Ordering::Relaxed);
    }

    pub fn duplicate(&self) {
        self.duplicates.fetch_add(1, Ordering::Relaxed);
    }

    pub fn ignored(&self) {
        self.ignored.fetch_add(1, Ordering::Relaxed);
    }

    pub fn handshake(&self) {
        self.handshakes.fetch_add(1, Ordering::Relaxed);
    }

    pub fn rejected(&self, reason: &'static str) {
        let mut map = self
            .rejected
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *map.entry(reason).or_default() += 1;
    }

    /// Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        out.push_str("# HELP keycard_deliveries_total Webhook deliveries by outcome.\n");
        out.push_str("# TYPE keycard_deliveries_total counter\n");
        out.push_str(&format!(
            "keycard_deliveries_total{{outcome=\"accepted\"}} {}\n",
            self.accepted.load(Ordering::Relaxed)
        ));
        out.push_str(&format!(
            "keycard_deliveries_total{{outcome=\"duplicate\"}} {}\n",
            self.duplicates.load(Ordering::Relaxed)
        ));
        out.push_str(&format!(
            "keycard_deliveries_total{{outcome=\"ignored\"}} {}\n",
            self.ignored.load(Ordering::Relaxed)
        ));
        out.push_str(&format!(
            "keycard_deliveries_total{{outcome=\"handshake\"}} {}\n",
            self.handshakes.load(Ordering::Relaxed)
        ));
        let map = self
            .rejected
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for (reason, n) in map.iter() {
            out.push_str(&format!(
                "keycard_deliveries_total{{outcome=\"rejected\",reason=\"{reason}\"}} {n}\n"
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[test]
    fn escape_controls_and_length() {
        assert_eq!(
            escape("hr\n2026 INFO delivery accepted"),
            "hr\\n2026 INFO delivery accepted"
        );
        assert_eq!(escape("a\0b\r\u{1b}[31m"), "a\\0b\\r\\u{1b}[31m");
        assert_eq!(escape("plain-name_1"), "plain-name_1");
        let long = "x".repeat(MAX_LOGGED_CHARS + 5);
        assert!(escape(&long).ends_with("…(truncated)"));
    }

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl Write for Buffer {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_forged_newline_or_nul_never_leaves_its_line() {
        let buffer = Buffer::default();
        let writer = buffer.clone();
        let subscriber = text_subscriber(EnvFilter::new("info"), move || writer.clone(), false);
        tracing::subscriber::with_default(subscriber, || {
            // Display (`%`) values are written raw by the formatter: the writer must catch them.
            let forged = "x\n2026-12-04T00:00:00Z  INFO delivery accepted source=hr\0";
            tracing::info!(source = %forged, "delivery rejected");
            tracing::info!("second");
        });
        let text = String::from_utf8(buffer.0.lock().expect("lock").clone()).expect("utf8");
        assert_eq!(text.lines().count(), 2, "{text}");
        assert!(!text.contains('\0'));
        assert!(
            text.lines()
                .next()
                .is_some_and(|l| l.contains("delivery rejected") && l.contains("\\n2026")),
            "{text}"
        );
    }
}
