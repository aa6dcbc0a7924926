//! Issue 15: the holes a hostile black-box pass found in the HTTP surface, each over real
//! loopback sockets.

use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use super::harness::*;

/// Defect 3: a source name with `%0a` wrote a forged "delivery accepted" line into the text
/// log, `%00` a raw NUL; query strings were logged whole.
///
/// The real binary's text log, read from its stderr: a subscriber set for one thread of this
/// shared test process lost events now and then to tracing's process-wide callsite cache
/// (a callsite first hit on another test's thread while it was being installed).
#[tokio::test]
async fn request_text_never_forges_a_log_line() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    // To a file: debug logs of every crate could fill a pipe nobody reads yet.
    let log_path = dir.path().join("serve.log");
    let log = std::fs::File::create(&log_path).unwrap_or_else(|e| panic!("log file: {e}"));
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_keycard"))
        .arg("serve")
        .current_dir(dir.path())
        .env_remove("KEYCARD_CONFIG")
        .env_remove("KEYCARD_JOURNAL_URL")
        .env_remove("KEYCARD_LOG_FORMAT")
        .env("KEYCARD_LOG", "debug")
        .env("KEYCARD_LISTEN", "127.0.0.1:0")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::from(log))
        .spawn()
        .unwrap_or_else(|e| panic!("spawn keycard serve: {e}"));
    let base = crate::support::process::listening_on(&mut child)
        .unwrap_or_else(|e| panic!("keycard serve: {e}"));
    let http = reqwest::Client::new();
    for path in [
        "/webhooks/x%0a2026-12-04T00:00:00.000000Z%20%20INFO%20keycard::http::webhooks:%20delivery%20accepted%20source=hr",
        "/webhooks/nul%00byte",
        "/webhooks/hr%0d%0aforged?token=secret-in-query",
    ] {
        let response = http
            .post(format!("{base}{path}"))
            .header("content-type", "application/json")
            .body("{}")
            .send()
            .await
            .unwrap_or_else(|e| panic!("{path}: {e}"));
        assert!(response.status().is_client_error(), "{path}");
    }
    let _ = child.kill();
    let _ = child.wait();
    let log = std::fs::read(&log_path).unwrap_or_else(|e| panic!("read the log: {e}"));
    let text = String::from_utf8_lossy(&log).into_owned();
    assert!(text.contains("delivery rejected"), "{text}");
    assert!(!text.contains('\0'), "a raw NUL reached the log");
    assert!(!text.contains('\r'), "a raw CR reached the log");
    for line in text.lines() {
        assert!(
            !line.starts_with("2026-12-04T00:00:00.000000Z"),
            "forged line: {line}"
        );
        assert!(
            !line.trim_start().starts_with("forged"),
            "forged line: {line}"
        );
    }
    assert!(
        text.contains("x\\n2026-12-04"),
        "escaped, not dropped: {text}"
    );
    assert!(
        !text.contains("secret-in-query"),
        "a query string was logged"
    );
}

async fn read_to_end_within(
    stream: &mut tokio::net::tcp::OwnedReadHalf,
    limit: Duration,
) -> Option<Vec<u8>> {
    let mut all = Vec::new();
    let mut buf = [0u8; 1024];
    tokio::time::timeout(limit, async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => all.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await
    .ok()
    .map(|()| all)
}

/// Defect 4: idle, slow-header and slow-body sockets stayed open forever, and a declared
/// `Content-Length` of 99999999999999 was not refused up front. A bounded flood (under the
/// connection cap) is cut off by the timeouts while `/healthz` and a valid delivery are
/// served.
#[tokio::test]
async fn slow_clients_are_cut_off_and_others_still_served() {
    let toml = format!(
        "{RULES}\n[http]\nheader_read_timeout_secs = 1\nbody_read_timeout_secs = 2\nidle_timeout_secs = 1\nmax_connections = 64\n"
    );
    let h = Harness::start_with(TestDb::sqlite(), &toml, seed()).await;
    let addr = h.base.trim_start_matches("http://").to_owned();

    // Early 413: answered without sending a byte of the body.
    let mut huge = TcpStream::connect(&addr)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    huge.write_all(b"POST /webhooks/hr HTTP/1.1\r\nHost: k\r\nContent-Type: application/json\r\nContent-Length: 99999999999999\r\n\r\n")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let (mut read, _write) = huge.into_split();
    let answer = read_to_end_within(&mut read, Duration::from_secs(5))
        .await
        .unwrap_or_else(|| panic!("the huge declared body was not refused up front"));
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");

    // The flood: 10 idle, 10 trickling their headers, 10 trickling their bodies.
    let mut readers = Vec::new();
    let mut tricklers = Vec::new();
    for i in 0..30 {
        let stream = TcpStream::connect(&addr)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let (read, mut write) = stream.into_split();
        readers.push(read);
        let (head, drip): (&[u8], &[u8]) = match i % 3 {
            0 => (b"", b""),
            1 => (b"POST /webhooks/hr HTTP/1.1\r\nHost: k\r\n", b"X"),
            _ => (
                b"POST /webhooks/hr HTTP/1.1\r\nHost: k\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{",
                b" ",
            ),
        };
        let _ = write.write_all(head).await;
        tricklers.push(tokio::spawn(async move {
            if drip.is_empty() {
                // Idle: hold the socket open without a byte.
                tokio::time::sleep(Duration::from_secs(10)).await;
                drop(write);
                return;
            }
            for _ in 0..40 {
                tokio::time::sleep(Duration::from_millis(250)).await;
                if write.write_all(drip).await.is_err() {
                    return;
                }
            }
        }));
    }

    // Served meanwhile.
    let health = h
        .http
        .get(format!("{}/healthz", h.base))
        .send()
        .await
        .unwrap_or_else(|e| panic!("healthz: {e}"));
    assert_eq!(health.status(), 200);
    let (status, body) = h
        .deliver(
            "msg_during_flood",
            hire("F1", "flood@acme.test", "Engineering", t0()),
        )
        .await;
    assert_eq!(status, 202, "{body}");

    // Every flood socket is closed by the server well before its client gives up.
    for (i, mut read) in readers.into_iter().enumerate() {
        let end = read_to_end_within(&mut read, Duration::from_secs(8)).await;
        assert!(end.is_some(), "flood socket {i} is still open");
        if i % 3 == 2 {
            let text = String::from_utf8_lossy(end.as_deref().unwrap_or_default()).into_owned();
            assert!(
                text.is_empty() || text.starts_with("HTTP/1.1 408"),
                "{text}"
            );
        }
    }
    for t in tricklers {
        t.abort();
    }
}

/// The cap: past `max_connections`, a new connection waits until one closes instead of
/// exhausting descriptors, and is then served.
#[tokio::test]
async fn past_the_connection_cap_new_connections_wait_then_are_served() {
    let toml = format!(
        "{RULES}\n[http]\nheader_read_timeout_secs = 1\nidle_timeout_secs = 1\nmax_connections = 2\n"
    );
    let h = Harness::start_with(TestDb::sqlite(), &toml, seed()).await;
    let addr = h.base.trim_start_matches("http://").to_owned();
    let mut held = Vec::new();
    for _ in 0..2 {
        held.push(
            TcpStream::connect(&addr)
                .await
                .unwrap_or_else(|e| panic!("{e}")),
        );
    }
    let health = tokio::time::timeout(
        Duration::from_secs(10),
        h.http.get(format!("{}/healthz", h.base)).send(),
    )
    .await
    .unwrap_or_else(|_| panic!("never served once the idle sockets timed out"))
    .unwrap_or_else(|e| panic!("healthz: {e}"));
    assert_eq!(health.status(), 200);
    drop(held);
}

/// Defect 6: with PostgreSQL unreachable, each delivery of a failed batch waited for a
/// connection again (~8.8 s before the 503). Once the outage is known, every delivery is
/// answered `Unavailable` at once (well under a second) until the journal is back.
#[tokio::test]
async fn a_known_journal_outage_answers_unavailable_at_once() {
    use keycard::ingest::{DedupeKey, NativeEvent};
    use keycard::journal::{EventWriter, Journal, JournalError};
    // A "PostgreSQL" that accepts connections and never answers: a hung or partitioned server.
    let blackhole = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let addr = blackhole.local_addr().unwrap_or_else(|e| panic!("{e}"));
    let held = tokio::spawn(async move {
        let mut keep = Vec::new();
        while let Ok((socket, _)) = blackhole.accept().await {
            keep.push(socket);
        }
    });
    let pool = sqlx::postgres::PgPoolOptions::new()
        .acquire_timeout(Duration::from_secs(3))
        .connect_lazy(&format!("postgres://postgres@{addr}/keycard"))
        .unwrap_or_else(|e| panic!("{e}"));
    let writer = EventWriter::spawn(Journal::from_pool(pool), 2);
    let event = |i: usize| {
        let body = hire(
            &format!("O{i}"),
            &format!("o{i}@acme.test"),
            "Engineering",
            t0(),
        )
        .to_string()
        .into_bytes();
        NativeEvent::parse(&body)
            .unwrap_or_else(|e| panic!("{e}"))
            .into_lifecycle(
                DedupeKey {
                    source: "hr".into(),
                    delivery_id: format!("outage-{i}"),
                },
                t0(),
                &body,
            )
    };
    // The first delivery finds out (the pool's acquire timeout).
    assert!(matches!(
        writer.record(event(0), Some(0)).await,
        Err(JournalError::Unavailable(_))
    ));
    assert!(writer.journal_known_down());
    // From then on, at once.
    let answers =
        futures::future::join_all((1..=20).map(|i| {
            tokio::time::timeout(Duration::from_secs(1), writer.record(event(i), Some(0)))
        }))
        .await;
    for (i, answer) in answers.into_iter().enumerate() {
        assert!(
            matches!(answer, Ok(Err(JournalError::Unavailable(_)))),
            "delivery {i}: {answer:?}"
        );
    }
    held.abort();
}

/// Defect 7: a body with a key twice was read last-wins (`"type"` twice was journaled as a
/// departure). Refused with 400, nothing journaled.
#[tokio::test]
async fn a_key_given_twice_is_refused() {
    let h = Harness::start(TestDb::sqlite()).await;
    let body = br#"{"type":"person.hired","occurred_at":"2026-11-28T10:00:00Z","person":{"id":"D1","email":"d1@acme.test"},"type":"person.departed"}"#.to_vec();
    let mut headers = h.signed("msg_dup_keys", &body, SECRET, 0);
    headers.push(("content-type".into(), "application/json".into()));
    let (status, problem) = h.post_raw(&headers, body).await;
    assert_eq!(status, 400, "{problem}");
    assert!(
        problem["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("\"type\" appears twice"),
        "{problem}"
    );
    assert_eq!(h.event_count().await, 0);
}
