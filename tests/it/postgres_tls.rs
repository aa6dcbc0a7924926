//! The journal over TLS, as managed PostgreSQL services require: `sslmode=require` really
//! encrypts, `verify-full` checks the server's name, and `sslrootcert` (a private CA, as
//! cloud providers use) works. Runs `keycard` itself against the local PostgreSQL, which
//! must have `ssl = on` (Debian's default, with its self-signed "snakeoil" certificate).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failure should stop the test loudly

use std::io::{BufRead, BufReader};
use std::process::{Command, Output, Stdio};

use sqlx::PgPool;

fn base_url(db: &str) -> anyhow::Result<String> {
    let server = std::env::var("DATABASE_URL")?;
    let mut url = url::Url::parse(&server)?;
    url.set_path(db);
    url.set_query(None);
    Ok(url.to_string())
}

/// The server's certificate file when the server has TLS on and we may read the file.
async fn server_tls(pool: &PgPool) -> anyhow::Result<Option<String>> {
    let ssl: String = sqlx::query_scalar("SHOW ssl").fetch_one(pool).await?;
    if ssl != "on" {
        return Ok(None);
    }
    let cert: String = sqlx::query_scalar("SHOW ssl_cert_file")
        .fetch_one(pool)
        .await?;
    Ok(std::fs::metadata(&cert).is_ok().then_some(cert))
}

fn keycard_journal(url: &str) -> anyhow::Result<Output> {
    Ok(Command::new(env!("CARGO_BIN_EXE_keycard"))
        .args(["journal", "--limit", "1", "--journal", url])
        .env_remove("KEYCARD_CONFIG")
        .env("KEYCARD_LOG", "warn")
        .stdin(Stdio::null())
        .output()?)
}

#[sqlx::test(migrations = false)]
async fn serve_on_a_tls_journal_encrypts_every_connection(pool: PgPool) -> anyhow::Result<()> {
    let Some(_) = server_tls(&pool).await? else {
        eprintln!("skipped: the local PostgreSQL has ssl = off or an unreadable certificate");
        return Ok(());
    };
    let db: String = sqlx::query_scalar("SELECT current_database()")
        .fetch_one(&pool)
        .await?;
    let app = format!("keycard-tls-{}", uuid::Uuid::new_v4().simple());
    let url = format!("{}?sslmode=require&application_name={app}", base_url(&db)?);
    let dir = tempfile::tempdir()?;
    let mut child = Command::new(env!("CARGO_BIN_EXE_keycard"))
        .arg("serve")
        .current_dir(dir.path())
        .env_remove("KEYCARD_CONFIG")
        .env("KEYCARD_LISTEN", "127.0.0.1:0")
        .env("KEYCARD_JOURNAL_URL", &url)
        .env("KEYCARD_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let mut line = String::new();
    if let Some(stdout) = child.stdout.take() {
        BufReader::new(stdout).read_line(&mut line)?;
    }
    // Serving means the migrations ran over those connections; the pool keeps them open.
    let rows: Result<Vec<(bool,)>, _> = sqlx::query_as(
        "SELECT s.ssl FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) \
         WHERE a.application_name = $1",
    )
    .bind(&app)
    .fetch_all(&pool)
    .await;
    let migrated: Result<i64, _> =
        sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations WHERE success")
            .fetch_one(&pool)
            .await;
    let _ = child.kill();
    let out = child.wait_with_output()?;
    assert!(
        line.starts_with("keycard listening on "),
        "serve did not start: {line:?} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows = rows?;
    assert!(!rows.is_empty(), "no connection from {app}");
    assert!(rows.iter().all(|(ssl,)| *ssl), "a plaintext connection");
    assert!(migrated? > 0, "no migrations applied over TLS");
    Ok(())
}

#[sqlx::test(migrations = false)]
async fn server_certificate_checks(pool: PgPool) -> anyhow::Result<()> {
    let Some(cert) = server_tls(&pool).await? else {
        eprintln!("skipped: the local PostgreSQL has ssl = off or an unreadable certificate");
        return Ok(());
    };
    let db: String = sqlx::query_scalar("SELECT current_database()")
        .fetch_one(&pool)
        .await?;
    let url = base_url(&db)?;
    // `journal` on a database without the journal's tables fails after connecting, with
    // the database's own error: that proves the handshake succeeded.
    let connected = |out: &Output| String::from_utf8_lossy(&out.stderr).contains("does not exist");

    // A private CA given as sslrootcert: the server's own self-signed certificate. (This
    // path asks rustls for the process-wide crypto provider; it must not panic.)
    let verify_ca = keycard_journal(&format!("{url}?sslmode=verify-ca&sslrootcert={cert}"))?;
    assert!(
        connected(&verify_ca),
        "{}",
        String::from_utf8_lossy(&verify_ca.stderr)
    );

    // verify-full also checks the name: the snakeoil certificate names the machine
    // (or localhost), never the address 127.0.0.1.
    let wrong_name = keycard_journal(&format!(
        "{}?sslmode=verify-full&sslrootcert={cert}",
        url.replace("localhost", "127.0.0.1")
    ))?;
    let stderr = String::from_utf8_lossy(&wrong_name.stderr);
    assert!(!wrong_name.status.success());
    assert!(stderr.contains("certificate"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    Ok(())
}
