//! Source configuration is validated at load, and every message names the key at fault.

use keycard::config::{Config, RawConfig, SourceKind};
use keycard::sources::Adapter;

use super::common::{loaded, secret};

fn load(source: &str) -> Result<Config, String> {
    let raw: RawConfig = toml::from_str(source).map_err(|e| e.to_string())?;
    Config::from_raw(raw, |k| match k {
        "S" => Some(secret("BAMBOO_SECRET").to_owned()),
        "OLD" => Some(secret("BAMBOO_OLD_SECRET").to_owned()),
        "SHORT" => Some("short".to_owned()),
        _ => None,
    })
    .map_err(|e| e.to_string())
}

fn error(source: &str) -> String {
    match load(source) {
        Ok(_) => panic!("accepted:\n{source}"),
        Err(e) => e,
    }
}

#[test]
fn every_kind_loads_and_builds() {
    let config = loaded();
    let kinds: Vec<(&str, SourceKind)> = config
        .sources
        .values()
        .map(|s| (s.name.as_str(), s.kind))
        .collect();
    for kind in [
        SourceKind::Keycard,
        SourceKind::BambooHr,
        SourceKind::HiBob,
        SourceKind::Okta,
        SourceKind::Gusto,
        SourceKind::GenericHmac,
    ] {
        assert!(kinds.iter().any(|(_, k)| *k == kind), "{kind:?}");
    }
    for source in config.sources.values() {
        let adapter = Adapter::build(source).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(adapter.kind(), source.kind);
        // Debug output of sources and adapters never shows a secret.
        let shown = format!("{source:?} {adapter:?}");
        for (_, value) in super::harness::EXTRA_ENV {
            assert!(!shown.contains(value), "{shown}");
        }
    }
}

#[test]
fn kind_specific_keys_and_secrets_are_checked() {
    let cases = [
        (
            "[[sources]]\nname = \"b\"\nkind = \"bamboohr\"\nsecret_env = \"S\"\nheader_name = \"X\"\n",
            "sources[0].header_name: only applies to sources of kind okta",
        ),
        (
            "[[sources]]\nname = \"b\"\nkind = \"hibob\"\nsecret_env = \"S\"\ntolerance_secs = 60\n",
            "sources[0].tolerance_secs: only applies",
        ),
        (
            "[[sources]]\nname = \"b\"\nkind = \"bamboohr\"\nsecret_env = \"S\"\nfields = { shoe_size = \"Shoe\" }\n",
            "sources[0].fields.shoe_size: unknown attribute",
        ),
        (
            "[[sources]]\nname = \"b\"\nkind = \"bamboohr\"\nsecret_env = \"S\"\nterminated_statuses = []\n",
            "sources[0].terminated_statuses:",
        ),
        (
            "[[sources]]\nname = \"o\"\nkind = \"okta\"\nsecret_env = \"S\"\nheader_name = \"bad header\"\n",
            "sources[0].header_name:",
        ),
        (
            "[[sources]]\nname = \"o\"\nkind = \"okta\"\n",
            "sources[0].secret_env: source 'o' needs the exact value Okta sends",
        ),
        (
            "[[sources]]\nname = \"g\"\nkind = \"gusto\"\n",
            "sources[0].secret_env: source 'g' needs the subscription's verification_token",
        ),
        (
            "[[sources]]\nname = \"g\"\nkind = \"gusto\"\nverification_token_file = \"/nonexistent-dir/t\"\n",
            "sources[0].verification_token_file: the directory",
        ),
        (
            "[[sources]]\nname = \"g\"\nkind = \"gusto\"\nverification_token_file = \"/tmp/t\"\nprevious_secret_env = \"OLD\"\n",
            "sources[0].previous_secret_env: a previous secret needs a current one",
        ),
        (
            "[[sources]]\nname = \"x\"\nkind = \"workday\"\nsecret_env = \"S\"\n",
            "unknown variant `workday`",
        ),
    ];
    for (text, want) in cases {
        let err = error(text);
        assert!(err.contains(want), "{text}\n=> {err}");
    }
    // A Gusto source may wait for its token when it has somewhere to put it.
    let waiting = load("[[sources]]\nname = \"g\"\nkind = \"gusto\"\nverification_token_file = \"/tmp/kc-gusto-token\"\n")
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(waiting.sources["g"].secrets.is_empty());
    assert!(Adapter::build(&waiting.sources["g"]).is_ok());
}

#[test]
fn weak_secrets_are_refused_when_the_config_is_loaded() {
    // Validated once, at load: `check-config` and `serve` refuse the same secrets, and the
    // error names the key like every other config error.
    let err = error("[[sources]]\nname = \"h\"\nkind = \"hibob\"\nsecret_env = \"SHORT\"\n");
    assert_eq!(err, "sources[0].secret: the secret is shorter than 8 bytes");
    let err = error("[[sources]]\nname = \"n\"\nkind = \"keycard\"\nsecret_env = \"S\"\n");
    assert!(err.starts_with("sources[0].secret:"), "{err}");
    assert!(err.contains("whsec_"), "{err}");
    assert!(!err.contains(secret("BAMBOO_SECRET")), "{err}");
    // Every loaded webhook source carries its adapter; a SCIM source has none.
    let config = loaded();
    for source in config.sources.values() {
        assert_eq!(
            source.adapter.as_ref().map(Adapter::kind),
            (source.kind != SourceKind::Scim).then_some(source.kind)
        );
    }
}
