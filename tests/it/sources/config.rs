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
        "EIGHT" => Some("8-bytes!".to_owned()),
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
        // It still says what it holds: the source's name and how many secrets are active,
        // in the source and in its adapter (a ring of 2 keys, or 2 secrets).
        let name = format!("name: {:?}", source.name);
        assert!(
            shown.contains(&name) && shown.contains("secrets: [2 redacted]"),
            "{shown}"
        );
        let adapter = format!("{adapter:?}");
        assert!(
            adapter.contains("keys: 2") || adapter.contains("secrets: 2"),
            "{adapter}"
        );
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
            "[[sources]]\nname = \"b\"\nkind = \"bamboohr\"\nsecret_env = \"S\"\nleave_statuses = [\"Sabbatical\", \"  \"]\n",
            "sources[0].leave_statuses: list at least one non-empty Employment Status value",
        ),
        (
            "[[sources]]\nname = \"b\"\nkind = \"bamboohr\"\nsecret_env = \"S\"\nfields = { title = \" \" }\n",
            "sources[0].fields.title: give the BambooHR field name",
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
    // Okta's shared header secret is compared, not used as a key: its own check, same bound.
    let okta = "[[sources]]\nname = \"o\"\nkind = \"okta\"\n";
    let err = error(&format!("{okta}secret_env = \"SHORT\"\n"));
    assert_eq!(err, "sources[0].secret: the secret is shorter than 8 bytes");
    let err = error(&format!(
        "{okta}secret_env = \"EIGHT\"\nprevious_secret_env = \"SHORT\"\n"
    ));
    assert_eq!(
        err,
        "sources[0].previous_secret: the secret is shorter than 8 bytes"
    );
    // However a source came to hold them, an Okta adapter takes 1 or 2 secrets.
    let eight = load(&format!("{okta}secret_env = \"EIGHT\"\n")).unwrap_or_else(|e| panic!("{e}"));
    let mut odd = eight.sources["o"].clone();
    for count in [0, 3] {
        odd.secrets = vec![secrecy::SecretString::from("8-bytes!".to_owned()); count];
        let err = Adapter::build(&odd)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert_eq!(
            err, "sources[0].secret: an okta source needs 1 or 2 secrets",
            "{count}"
        );
    }
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

/// Issue 15: the organization's zone and a source's own are IANA names, refused at load with
/// the key and the fix; a source's `timezone` overrides the organization's for its dates.
#[test]
fn time_zones_are_checked_at_load_and_a_source_may_override_the_organizations() {
    let bamboo = "[[sources]]\nname = \"b\"\nkind = \"bamboohr\"\nsecret_env = \"S\"\n";
    let err = error(&format!("timezone = \"America/Nowhere\"\n{bamboo}"));
    assert!(
        err.starts_with("timezone: 'America/Nowhere' is not an IANA time zone name; use one such as America/New_York"),
        "{err}"
    );
    let err = error(&format!("{bamboo}timezone = \"Mars/Olympus\"\n"));
    assert!(
        err.starts_with("sources[0].timezone: 'Mars/Olympus'"),
        "{err}"
    );
    let err = error(&format!("{bamboo}[dates]\nend_time = \"6pm\"\n"));
    assert!(
        err.starts_with("dates.end_time: '6pm' is not a time of day"),
        "{err}"
    );
    // On a kind that reads no dates the key itself is refused, before its value is read.
    let err = error(
        "[[sources]]\nname = \"o\"\nkind = \"okta\"\nsecret_env = \"S\"\ntimezone = \"Mars/Olympus\"\n",
    );
    assert!(
        err.starts_with(
            "sources[0].timezone: only applies to sources of kind bamboohr or hibob or generic-hmac"
        ),
        "{err}"
    );

    // The same termination, dated 2026-12-01, read in New York (the organization) and in
    // Berlin (the source's own zone): 18:00 local on that day in each.
    let config = load(&format!(
        "timezone = \"America/New_York\"\n{bamboo}\n[[sources]]\nname = \"de\"\nkind = \"bamboohr\"\nsecret_env = \"S\"\ntimezone = \"Europe/Berlin\"\n"
    ))
    .unwrap_or_else(|e| panic!("{e}"));
    let body = String::from_utf8(super::common::fixture("bamboohr/field_terminated.json"))
        .unwrap_or_default()
        .replace("\"2026-11-28\"", "\"2026-12-01\"")
        .into_bytes();
    let now = super::harness::t0();
    let effective = |name: &str| {
        let adapter = super::common::adapter_from(&config, name);
        let (ts, sig) = keycard::sources::bamboohr::sign(secret("BAMBOO_SECRET"), &body, now)
            .unwrap_or_else(|| panic!("sign"));
        let event = super::common::one_event(super::common::receive(
            &adapter,
            name,
            &[("x-bamboohr-signature", sig), ("x-bamboohr-timestamp", ts)],
            &body,
            now,
        ));
        event.effective_at.to_rfc3339()
    };
    assert_eq!(effective("b"), "2026-12-01T23:00:00+00:00");
    assert_eq!(effective("de"), "2026-12-01T17:00:00+00:00");
}

/// A source's name is part of its webhook URL: 1-64 of a-z, 0-9, '-' and '_', once each.
#[test]
fn source_names_are_url_safe_and_unique() {
    let named = |name: &str| {
        format!("[[sources]]\nname = {name:?}\nkind = \"bamboohr\"\nsecret_env = \"S\"\n")
    };
    let longest = "a".repeat(64);
    for good in ["hr", "Work-day_2", longest.as_str()] {
        load(&named(good)).unwrap_or_else(|e| panic!("{good:?} refused: {e}"));
    }
    let too_long = "a".repeat(65);
    for bad in ["", too_long.as_str(), "hr/x", "hr x", "hr\n", "hr.1", "é"] {
        let err = error(&named(bad));
        assert!(
            err.starts_with("sources[0].name: use 1-64 characters from a-z, 0-9"),
            "{bad:?}: {err}"
        );
    }
    let err = error(&format!("{}{}", named("hr"), named("hr")));
    assert!(
        err.starts_with("sources[1].name: source name 'hr' is used twice"),
        "{err}"
    );
}
