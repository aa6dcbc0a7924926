//! Every key from the environment by one rule, the five aliases, provenance, and
//! `keycard check-config --print`.

use keycard::config::env::var_name;
use keycard::config::print::Origin;
use keycard::config::{Config, RawConfig};

use super::{WHSEC, file, load};

/// Every leaf key of a configuration, with its value as TOML text.
fn leaves(table: &toml::Table, prefix: &str, out: &mut Vec<(String, String)>) {
    for (name, value) in table {
        let key = if prefix.is_empty() {
            name.clone()
        } else {
            format!("{prefix}.{name}")
        };
        match value {
            toml::Value::Table(inner) => leaves(inner, &key, out),
            other => out.push((key, other.to_string())),
        }
    }
}

#[test]
fn every_key_can_be_set_from_the_environment_by_the_rule() {
    // Every key of the defaults, plus the optional ones the defaults leave unset.
    let secrets = tempfile::tempdir().unwrap();
    let secret_file = secrets.path().join("token");
    std::fs::write(&secret_file, "a-secret-read-from-a-file").unwrap();
    let mut raw = RawConfig::default();
    raw.server.ops_listen = Some("127.0.0.1:9091".parse().unwrap());
    raw.server.ops_token_file = Some(secret_file.clone());
    raw.journal.url = Some("postgres://db/keycard".into());
    raw.journal.data_dir = Some("/var/lib/keycard".into());
    raw.journal.migrate_on_start = Some(false);
    raw.journal.max_connections = Some(20);
    raw.admin_api.oauth_token_file = Some(secret_file.clone());
    raw.safety.protected_emails = vec!["ceo@example.com".into()];
    raw.default = Some(keycard::rules::DefaultConfig {
        org_role: Some("user".into()),
        workspaces: Default::default(),
    });
    let table = toml::Table::try_from(&raw).unwrap();
    let mut all = Vec::new();
    leaves(&table, "", &mut all);
    assert!(all.len() >= 30, "{all:?}");
    for (key, value) in all {
        let var = var_name(&key);
        let config = load(None, &[(var.as_str(), value.as_str())])
            .unwrap_or_else(|e| panic!("{var}={value}: {e}"));
        assert_eq!(
            config.provenance.origin(&key),
            Origin::Env(var.clone()),
            "{var}"
        );
        let effective = toml::Table::try_from(&config.raw).unwrap();
        let mut got = Vec::new();
        leaves(&effective, "", &mut got);
        let shown = got.iter().find(|(k, _)| *k == key).map(|(_, v)| v.clone());
        // protected_emails are folded to lower case; everything else is as given.
        assert_eq!(shown.as_deref(), Some(value.as_str()), "{var}");
    }
}

#[test]
fn the_environment_overrides_the_file_which_overrides_the_defaults() {
    let f = file(
        "[admin_api]\nrequests_per_minute = 40\ninvites_per_hour = 600\n[reconciler]\nworkers = 3\n",
    );
    let config = load(
        Some(&f.path),
        &[
            ("KEYCARD_ADMIN_API__REQUESTS_PER_MINUTE", "50"),
            ("KEYCARD_LISTEN", "localhost:0"),
        ],
    )
    .unwrap();
    assert_eq!(config.raw.admin_api.requests_per_minute, 50);
    assert_eq!(config.raw.admin_api.invites_per_hour, 600);
    assert_eq!(config.raw.reconciler.workers, 3);
    assert_eq!(config.raw.server.listen.to_string(), "localhost:0");
    let p = &config.provenance;
    assert_eq!(
        p.origin("admin_api.requests_per_minute"),
        Origin::Env("KEYCARD_ADMIN_API__REQUESTS_PER_MINUTE".into())
    );
    assert_eq!(
        p.origin("admin_api.invites_per_hour"),
        Origin::File(f.path.clone())
    );
    assert_eq!(p.origin("reconciler.workers"), Origin::File(f.path.clone()));
    assert_eq!(p.origin("reconciler.lease_secs"), Origin::Default);
    assert_eq!(
        p.origin("server.listen"),
        Origin::Env("KEYCARD_LISTEN".into())
    );
}

#[test]
fn the_five_old_variables_still_work() {
    let config = load(
        None,
        &[
            ("KEYCARD_LISTEN", "0.0.0.0:9000"),
            ("KEYCARD_JOURNAL_URL", "postgres://db/keycard"),
            ("KEYCARD_DATA_DIR", "/var/lib/keycard"),
            ("KEYCARD_ADMIN_API_BASE_URL", "http://127.0.0.1:8787"),
            ("KEYCARD_DRY_RUN", "1"),
        ],
    )
    .unwrap();
    assert_eq!(config.raw.server.listen.to_string(), "0.0.0.0:9000");
    assert_eq!(
        config.raw.journal.url.as_deref(),
        Some("postgres://db/keycard")
    );
    assert_eq!(
        config.raw.journal.data_dir.as_deref(),
        Some(std::path::Path::new("/var/lib/keycard"))
    );
    assert_eq!(config.raw.admin_api.base_url, "http://127.0.0.1:8787");
    assert!(config.raw.admin_api.dry_run);
    // Through the code path tests and benches build configs with, too.
    let built = Config::from_raw(RawConfig::default(), |k| {
        (k == "KEYCARD_JOURNAL_URL").then(|| "sqlite://x.db".to_owned())
    })
    .unwrap();
    assert_eq!(built.raw.journal.url.as_deref(), Some("sqlite://x.db"));
}

#[test]
fn mistakes_in_the_environment_name_the_variable() {
    let err = load(None, &[("KEYCARD_SERVER__LISTN", "x")]).unwrap_err();
    assert_eq!(err.key(), Some("server.listn"), "{err}");
    assert!(err.to_string().contains("KEYCARD_SERVER__LISTN"), "{err}");
    let err = load(None, &[("KEYCARD_SERVER__LISTEN", "not an address")]).unwrap_err();
    assert_eq!(err.key(), Some("server.listen"), "{err}");
    assert!(err.to_string().contains("KEYCARD_SERVER__LISTEN"), "{err}");
    let err = load(None, &[("KEYCARD_ADMIN_API__REQUESTS_PER_MINUTE", "many")]).unwrap_err();
    assert_eq!(err.key(), Some("admin_api.requests_per_minute"), "{err}");
    // Variables that are not keys are left alone.
    assert!(
        load(
            None,
            &[
                ("KEYCARD_CONFIG", "/nowhere.toml"),
                ("KEYCARD_LOG", "debug"),
                ("KEYCARD_HR_SECRET", WHSEC),
            ]
        )
        .is_ok()
    );
}

#[test]
fn sources_can_come_whole_from_the_environment() {
    let config = load(
        None,
        &[(
            "KEYCARD_SOURCES",
            "[{ name = \"hr\", kind = \"keycard\", secret_env = \"S\" }, { name = \"gh\", kind = \"generic-hmac\", secret_env = \"S\", header = \"X-Hub-Signature-256\", prefix = \"sha256=\", mapping = { event_type = \"/t\", person_id = \"/id\", types = { a = \"hired\" } } }]",
        )],
    )
    .unwrap();
    assert_eq!(config.sources.len(), 2);
    assert!(config.sources["gh"].adapter.is_some());
    assert_eq!(
        config.provenance.origin("sources[1].mapping.person_id"),
        Origin::Env("KEYCARD_SOURCES".into())
    );
}

#[test]
fn check_config_print_shows_origins_and_never_a_secret() {
    let f = file(
        "[server]\nops_token_env = \"OPS\"\n[journal]\nurl = \"postgres://keycard:hunter2@db/keycard\"\n[[sources]]\nname = \"hr\"\nkind = \"keycard\"\nsecret_env = \"HR\"\n",
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_keycard"))
        .args(["check-config", "--offline", "--print", "--config"])
        .arg(&f.path)
        .env_clear()
        .env("OPS", "ops-token-value-0123456789")
        .env("HR", WHSEC)
        .env("KEYCARD_ADMIN_API__REQUESTS_PER_MINUTE", "50")
        .env("KEYCARD_LOG", "warn")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let line = |key: &str| {
        stdout
            .lines()
            .find(|l| l.starts_with(&format!("{key} = ")))
            .unwrap_or_else(|| panic!("no {key} in:\n{stdout}"))
            .to_owned()
    };
    let path = f.path.display().to_string();
    assert!(
        line("admin_api.requests_per_minute")
            .ends_with("# env KEYCARD_ADMIN_API__REQUESTS_PER_MINUTE"),
        "{stdout}"
    );
    assert!(line("server.ops_token_env").contains("\"OPS\""), "{stdout}");
    assert!(line("server.ops_token_env").ends_with(&format!("# file {path}")));
    assert!(
        line("reconciler.lease_secs").ends_with("# default"),
        "{stdout}"
    );
    // Optional keys left unset are listed as such.
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("# server.ops_listen (unset)") && l.ends_with("# default")),
        "{stdout}"
    );
    assert!(line("sources[0].secret_env").ends_with(&format!("# file {path}")));
    assert!(
        line("journal.url").contains("postgres://keycard:***@db/keycard"),
        "{stdout}"
    );
    for secret in ["ops-token-value-0123456789", WHSEC, "hunter2"] {
        assert!(!stdout.contains(secret), "{secret} printed:\n{stdout}");
        assert!(!stderr.contains(secret), "{secret} printed:\n{stderr}");
    }
}
