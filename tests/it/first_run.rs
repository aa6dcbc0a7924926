//! The zero-setup first run: the demo, `keycard serve` with nothing configured, and the
//! start-up errors a newcomer can meet.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failure should stop the test loudly

use std::process::{Child, Command, Stdio};

use keycard::demo::{DemoArgs, run};

#[tokio::test]
async fn demo_shows_the_whole_lifecycle() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let transcript = run(DemoArgs {
        exit: true,
        dir: Some(dir.path().to_path_buf()),
        source: "keycard".into(),
    })
    .await
    .map_err(anyhow::Error::msg)?;
    for expected in [
        "hire Ada (Engineering)             -> 202",
        "duplicate=true",
        "a forged delivery                  -> 401",
        "create_invite developer",
        "update_user_role user",
        "deactivate_api_key ada-laptop",
        "remove_user",
    ] {
        assert!(
            transcript.contains(expected),
            "missing {expected:?} in:\n{transcript}"
        );
    }
    // The final organization: Ada is gone, her key is off, only the admins remain.
    assert!(!transcript.contains("ada@acme.test  developer  pending"));
    assert!(transcript.contains("ada-laptop  inactive"), "{transcript}");
    assert!(dir.path().join("journal.db").exists());
    Ok(())
}

#[tokio::test]
async fn demo_gusto_enriches_a_thin_hire_then_offboards() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let transcript = run(DemoArgs {
        exit: true,
        dir: Some(dir.path().to_path_buf()),
        source: "gusto".into(),
    })
    .await
    .map_err(anyhow::Error::msg)?;
    for expected in [
        "employee.onboarded",
        "(no email) -> 202",
        "Keycard read the record: gusto GET",
        "email grace@acme.test",
        "employee.terminated_effective",
        "create_invite developer",
        "remove_user",
    ] {
        assert!(
            transcript.contains(expected),
            "missing {expected:?} in:\n{transcript}"
        );
    }
    Ok(())
}

fn keycard(dir: &std::path::Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_keycard"));
    cmd.current_dir(dir)
        .env_remove("KEYCARD_CONFIG")
        .env_remove("KEYCARD_JOURNAL_URL")
        .env("KEYCARD_LOG", "warn")
        .stdin(Stdio::null());
    cmd
}

/// Starts `keycard serve` and returns it with the address it printed.
fn serve(dir: &std::path::Path) -> anyhow::Result<(Child, String)> {
    let mut child = keycard(dir)
        .args(["serve"])
        .env("KEYCARD_LISTEN", "127.0.0.1:0")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let addr = crate::support::process::listening_on(&mut child)?;
    Ok((child, addr))
}

fn stderr_of(mut child: Child) -> anyhow::Result<String> {
    let _ = child.kill();
    let out = child.wait_with_output()?;
    Ok(String::from_utf8_lossy(&out.stderr).into_owned())
}

#[tokio::test]
async fn serve_with_nothing_configured_runs_dry_on_the_embedded_journal() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let (child, addr) = serve(dir.path())?;
    let health = reqwest::get(format!("{addr}/readyz")).await?;
    assert_eq!(health.status().as_u16(), 200);
    assert!(
        dir.path().join("keycard-data/journal.db").exists(),
        "embedded journal created"
    );

    // A second process on the same embedded journal is refused, clearly.
    let second = keycard(dir.path())
        .args(["serve"])
        .env("KEYCARD_LISTEN", "127.0.0.1:0")
        .output()?;
    assert!(!second.status.success());
    let err = String::from_utf8_lossy(&second.stderr);
    assert!(err.contains("in use by another keycard process"), "{err}");

    let stderr = stderr_of(child)?;
    assert!(
        stderr.contains("DRY RUN"),
        "loud warning expected: {stderr}"
    );
    assert!(
        stderr.contains("no sources are configured"),
        "a serve that cannot receive anything says so: {stderr}"
    );
    Ok(())
}

#[test]
fn an_invalid_config_value_names_the_key_and_the_fix() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let cfg = dir.path().join("bad.toml");
    std::fs::write(&cfg, "[admin_api]\nversion = \"1999-01-01\"\n")?;
    let out = keycard(dir.path())
        .args(["serve", "--config"])
        .arg(&cfg)
        .output()?;
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("admin_api.version") && err.contains("2023-06-01"),
        "{err}"
    );

    std::fs::write(
        &cfg,
        "[[sources]]\nname = \"hr\"\nkind = \"keycard\"\nsecret_env = \"KEYCARD_TEST_UNSET_SECRET\"\n",
    )?;
    let out = keycard(dir.path())
        .args(["check-config", "--config"])
        .arg(&cfg)
        .output()?;
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("sources[0].secret_env") && err.contains("KEYCARD_TEST_UNSET_SECRET"),
        "{err}"
    );

    std::fs::write(
        &cfg,
        "[[rules]]\nname = \"x\"\nwhen = 'person.department ==='\norg_role = \"user\"\n",
    )?;
    let out = keycard(dir.path())
        .args(["check-config", "--config"])
        .arg(&cfg)
        .output()?;
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("rules[0] \"x\".when"), "{err}");
    Ok(())
}

#[test]
fn a_read_only_journal_stops_start_up() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("keycard-data");
    std::fs::create_dir_all(&data)?;
    let db = data.join("journal.db");
    std::fs::write(&db, b"")?;
    let mut perms = std::fs::metadata(&db)?.permissions();
    perms.set_readonly(true);
    std::fs::set_permissions(&db, perms)?;
    let out = keycard(dir.path())
        .args(["serve"])
        .env("KEYCARD_LISTEN", "127.0.0.1:0")
        .output()?;
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("read-only"), "{err}");
    Ok(())
}
