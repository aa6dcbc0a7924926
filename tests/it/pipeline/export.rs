//! `keycard journal` exports, run as the binary against the test's journal: audit columns,
//! RFC 3339 UTC with microseconds, `--all` streams every page, `--since` as a date or a
//! duration, CSV read back by a CSV parser, JSON and JSON Lines parsed.

use serde_json::Value;

use super::harness::*;

fn journal_url(h: &Harness) -> String {
    match &h.db {
        TestDb::Postgres(pool) => format!(
            "postgres://postgres@127.0.0.1:5432/{}",
            pool.connect_options().get_database().unwrap()
        ),
        TestDb::Sqlite(dir) => format!("sqlite://{}", dir.path().join("journal.db").display()),
    }
}

async fn export(url: &str, args: &[&str]) -> (bool, String, String) {
    let mut all = vec!["journal", "--journal", url];
    all.extend_from_slice(args);
    let all: Vec<String> = all.into_iter().map(str::to_owned).collect();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_keycard"))
            .args(&all)
            .env_remove("KEYCARD_CONFIG")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    (
        out.status.success(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

fn rfc3339_micros(s: &str) -> bool {
    s.len() == 27
        && s.ends_with('Z')
        && s.as_bytes()[19] == b'.'
        && chrono::DateTime::parse_from_rfc3339(s).is_ok()
}

pub async fn journal_exports_are_fit_for_audit(db: TestDb) {
    let h = Harness::start(db).await;
    for (id, email) in [
        ("X1", "x1@acme.test"),
        ("X2", "x2@acme.test"),
        ("X3", "x3@acme.test"),
    ] {
        h.deliver(&format!("m_{id}"), hire(id, email, "Engineering", t0()))
            .await;
    }
    h.settle().await;
    let url = journal_url(&h);
    let total =
        h.actions("X1").await.len() + h.actions("X2").await.len() + h.actions("X3").await.len();
    assert!(total >= 3);

    // Every page, one row at a time, as one CSV.
    let (ok, csv_text, err) = export(&url, &["--format", "csv", "--all", "--limit", "1"]).await;
    assert!(ok, "{err}");
    let mut reader = csv::Reader::from_reader(csv_text.as_bytes());
    let headers = reader.headers().unwrap().clone();
    for column in [
        "id",
        "created_at",
        "person_id",
        "kind",
        "target",
        "reason",
        "status",
        "request_id",
    ] {
        assert!(
            headers.iter().any(|h| h == column),
            "{column} in {headers:?}"
        );
    }
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), total, "--all streams every page");
    let col = |name: &str| headers.iter().position(|h| h == name).unwrap();
    for row in &rows {
        assert!(
            rfc3339_micros(&row[col("created_at")]),
            "{:?}",
            &row[col("created_at")]
        );
        assert!(uuid::Uuid::parse_str(&row[col("id")]).is_ok());
        assert!(!row[col("reason")].is_empty());
    }
    let invite = rows
        .iter()
        .find(|r| &r[col("kind")] == "create_invite")
        .unwrap();
    assert!(
        invite[col("target")].contains("email=x"),
        "{:?}",
        &invite[col("target")]
    );

    // Without --all: one page, the cursor on stderr, stdout still one CSV.
    let (ok, page, err) = export(&url, &["--format", "csv", "--limit", "2"]).await;
    assert!(ok);
    assert_eq!(
        csv::Reader::from_reader(page.as_bytes()).records().count(),
        2
    );
    assert!(err.contains("more: --cursor"), "{err}");

    // JSON: one array; JSON Lines: one object a line; events too.
    let (ok, json, _) = export(
        &url,
        &["--events", "--format", "json", "--all", "--limit", "2"],
    )
    .await;
    assert!(ok);
    let events: Vec<Value> = serde_json::from_str(&json).unwrap();
    assert_eq!(events.len(), 3);
    assert!(rfc3339_micros(events[0]["received_at"].as_str().unwrap()));
    assert_eq!(events[0]["kind"], "hired");
    let (ok, lines, _) = export(&url, &["--format", "jsonl", "--all"]).await;
    assert!(ok);
    let parsed: Vec<Value> = lines
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(parsed.len(), total);

    // Dates and durations.
    let (ok, since_date, _) = export(
        &url,
        &["--events", "--format", "jsonl", "--since", "2026-11-28"],
    )
    .await;
    assert!(ok);
    assert_eq!(since_date.lines().count(), 3);
    let (ok, later, _) = export(
        &url,
        &["--events", "--format", "jsonl", "--since", "2026-11-29"],
    )
    .await;
    assert!(ok);
    assert_eq!(later.lines().count(), 0);
    let (ok, _, err) = export(&url, &["--events", "--format", "csv", "--since", "24h"]).await;
    assert!(ok, "{err}");
    let (ok, _, err) = export(&url, &["--since", "last tuesday"]).await;
    assert!(!ok);
    assert!(err.contains("RFC 3339"), "{err}");
    let (ok, _, err) = export(&url, &["--all"]).await;
    assert!(!ok, "--all needs an export format");
    assert!(err.contains("--format"), "{err}");
}
