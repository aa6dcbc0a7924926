//! Release hygiene on the command line: `--version` with the git revision, shell
//! completions, the man page, and `keycard health` (the container image's health check).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failure should stop the test loudly

use std::io::Write;
use std::process::{Child, Command, Output, Stdio};

const SUBCOMMANDS: [&str; 11] = [
    "serve",
    "migrate",
    "check-config",
    "plan",
    "journal",
    "sign",
    "admin-sim",
    "demo",
    "completions",
    "man",
    "health",
];

fn keycard() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_keycard"));
    cmd.env_remove("KEYCARD_CONFIG")
        .env_remove("KEYCARD_JOURNAL_URL")
        .env_remove("KEYCARD_HEALTH_URL")
        .env("KEYCARD_LOG", "warn")
        .stdin(Stdio::null());
    cmd
}

fn run(args: &[&str]) -> anyhow::Result<Output> {
    Ok(keycard().args(args).output()?)
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn version_names_the_git_revision() -> anyhow::Result<()> {
    let out = run(&["--version"])?;
    assert!(out.status.success());
    let rev = env!("KEYCARD_GIT_REV");
    assert_eq!(
        stdout(&out),
        format!("keycard {} ({rev})\n", env!("CARGO_PKG_VERSION"))
    );
    // Built from a git checkout (and not told otherwise), the revision is that checkout's.
    let head = Command::new("git")
        .args(["rev-parse", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output();
    if let Ok(head) = head
        && head.status.success()
        && std::env::var_os("KEYCARD_GIT_REV").is_none()
    {
        let head = String::from_utf8_lossy(&head.stdout).trim().to_owned();
        assert_eq!(rev.len(), 12, "{rev}");
        assert!(head.starts_with(rev), "built at {rev}, HEAD is {head}");
    }
    Ok(())
}

#[test]
fn completions_for_every_shell() -> anyhow::Result<()> {
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let out = run(&["completions", shell])?;
        assert!(out.status.success(), "{shell}: {out:?}");
        let script = stdout(&out);
        for sub in SUBCOMMANDS {
            assert!(script.contains(sub), "{shell} completion lacks {sub}");
        }
    }
    let out = run(&["completions", "tcsh"])?;
    assert!(!out.status.success(), "an unknown shell is refused");
    Ok(())
}

/// The bash script is valid bash and registers completion for `keycard`, which completes
/// subcommands and a subcommand's flags.
#[test]
fn bash_completion_completes_subcommands_and_flags() -> anyhow::Result<()> {
    let script = stdout(&run(&["completions", "bash"])?);
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("keycard.bash");
    std::fs::File::create(&path)?.write_all(script.as_bytes())?;
    let probe = format!(
        r#"source {path}
complete -p keycard
COMP_WORDS=(keycard che); COMP_CWORD=1; _keycard keycard che keycard; echo "sub: ${{COMPREPLY[*]}}"
COMP_WORDS=(keycard serve --con); COMP_CWORD=2; _keycard keycard --con serve; echo "flag: ${{COMPREPLY[*]}}""#,
        path = path.display()
    );
    let out = Command::new("bash").args(["-c", &probe]).output()?;
    let text = stdout(&out);
    assert!(out.status.success(), "{out:?}");
    assert!(text.contains("-F _keycard keycard"), "{text}");
    assert!(text.contains("sub: check-config"), "{text}");
    assert!(text.contains("flag: --config"), "{text}");
    Ok(())
}

#[test]
fn man_page_lists_every_command() -> anyhow::Result<()> {
    let out = run(&["man"])?;
    assert!(out.status.success());
    let page = stdout(&out);
    assert!(page.contains(".TH keycard 1"), "{page}");
    assert!(
        page.contains(env!("KEYCARD_GIT_REV")),
        "the page names the build"
    );
    for sub in SUBCOMMANDS {
        let roff_name = format!("keycard\\-{}(1)", sub.replace('-', "\\-"));
        assert!(page.contains(&roff_name), "man page lacks {roff_name}");
    }

    let dir = tempfile::tempdir()?;
    let pages = dir.path().join("man1");
    let out = run(&["man", "--dir", &pages.display().to_string()])?;
    assert!(out.status.success(), "{out:?}");
    assert!(pages.join("keycard.1").is_file());
    for sub in SUBCOMMANDS {
        let file = pages.join(format!("keycard-{sub}.1"));
        let text = std::fs::read_to_string(&file)?;
        assert!(text.contains(".SH SYNOPSIS"), "{}", file.display());
    }
    Ok(())
}

/// Starts `keycard serve` with nothing configured (embedded journal in `dir`).
fn serve(dir: &std::path::Path) -> anyhow::Result<(Child, String)> {
    let mut child = keycard()
        .arg("serve")
        .current_dir(dir)
        .env("KEYCARD_LISTEN", "127.0.0.1:0")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let base = crate::support::process::listening_on(&mut child)?;
    Ok((child, base))
}

#[test]
fn health_succeeds_only_when_the_route_answers_2xx() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let (mut child, base) = serve(dir.path())?;

    let healthy = run(&["health", "--url", &format!("{base}/healthz")]);
    let not_found = run(&["health", "--url", &format!("{base}/no-such-route")]);
    // The environment variable is what a compose file or image sets.
    let from_env = keycard()
        .arg("health")
        .env("KEYCARD_HEALTH_URL", format!("{base}/readyz"))
        .output();
    let _ = child.kill();
    let _ = child.wait();

    let healthy = healthy?;
    assert!(healthy.status.success(), "{healthy:?}");
    let not_found = not_found?;
    assert!(!not_found.status.success());
    assert!(
        String::from_utf8_lossy(&not_found.stderr).contains("HTTP 404"),
        "{not_found:?}"
    );
    let from_env = from_env?;
    assert!(from_env.status.success(), "{from_env:?}");

    // Nothing listening: a failure that says why.
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let refused = run(&[
        "health",
        "--url",
        &format!("http://127.0.0.1:{port}/healthz"),
    ])?;
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("refused"), "{stderr}");
    Ok(())
}

/// A config `serve` would refuse at start must not pass `check-config`, even offline: the
/// compose trial first pointed Keycard at `http://admin-sim:8787`, which check-config
/// accepted and serve refused.
#[test]
fn check_config_refuses_an_admin_api_url_serve_would_refuse() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let config = dir.path().join("keycard.toml");
    std::fs::write(
        &config,
        "[admin_api]\nbase_url = \"http://admin-sim:8787\"\nadmin_key_env = \"TEST_ADMIN_KEY\"\n",
    )?;
    let check = |base_url: Option<&str>| -> anyhow::Result<Output> {
        let mut cmd = keycard();
        cmd.args(["check-config", "--offline", "--config"])
            .arg(&config)
            .env("TEST_ADMIN_KEY", "sk-ant-admin01-test")
            .env_remove("KEYCARD_ADMIN_API_BASE_URL");
        if let Some(url) = base_url {
            cmd.env("KEYCARD_ADMIN_API_BASE_URL", url);
        }
        Ok(cmd.output()?)
    };
    let refused = check(None)?;
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("plain http"), "{stderr}");
    // Loopback over http (the simulator beside Keycard) and https anywhere are fine.
    for url in ["http://127.0.0.1:8787", "https://api.anthropic.com"] {
        let out = check(Some(url))?;
        assert!(out.status.success(), "{url}: {out:?}");
    }
    Ok(())
}

/// Issue 15 defect 7: output to a full disk used to panic (`println!`). It is an error
/// message and exit code 1 now.
#[test]
fn a_full_disk_is_an_error_not_a_panic() -> anyhow::Result<()> {
    let Ok(full) = std::fs::OpenOptions::new().write(true).open("/dev/full") else {
        return Ok(()); // not Linux: no /dev/full to write to
    };
    let dir = tempfile::tempdir()?;
    let body = dir.path().join("event.json");
    std::fs::write(&body, br#"{"type":"person.hired"}"#)?;
    let out = keycard()
        .env("KC_TEST_SECRET", "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD")
        .args(["sign", "--secret-env", "KC_TEST_SECRET"])
        .arg(&body)
        .stdout(full)
        .output()?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("cannot write the output"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    Ok(())
}
