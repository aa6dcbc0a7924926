//! Every bounded key, too low, too high and at both edges, from the file and from the
//! environment. The table is the one the loader checks and docs/config.md lists, so a new
//! bound is tested here without a new line.

use keycard::config::bounds;
use keycard::config::env::var_name;
use keycard::settings::Bound;

use super::{file, load};

const SOURCES_KEY: &str = "sources[].tolerance_secs";
const PULL_KEY: &str = "sources[].api.pull_interval_secs";
/// A source with an API (the credential is the same variable as the webhook secret).
const API_SOURCE: &str = "name = \"bob\", kind = \"hibob\", secret_env = \"S\"";

/// The file setting `bound`'s key to `value`.
fn toml_for(b: &Bound, value: u64) -> String {
    if b.key == SOURCES_KEY {
        return format!(
            "[[sources]]\nname = \"hr\"\nkind = \"keycard\"\nsecret_env = \"S\"\ntolerance_secs = {value}\n"
        );
    }
    if b.key == PULL_KEY {
        return format!(
            "[[sources]]\n{}\n[sources.api]\nclient_id = \"SERVICE\"\ntoken_env = \"S\"\npull_interval_secs = {value}\n",
            API_SOURCE.replace(", ", "\n")
        );
    }
    let (section, key) = b.key.split_once('.').unwrap();
    format!("[{section}]\n{key} = {value}\n")
}

/// The environment setting `bound`'s key to `value`.
fn env_for(b: &Bound, value: u64) -> (String, String) {
    if b.key == SOURCES_KEY {
        return (
            "KEYCARD_SOURCES".into(),
            format!(
                "[{{ name = \"hr\", kind = \"keycard\", secret_env = \"S\", tolerance_secs = {value} }}]"
            ),
        );
    }
    if b.key == PULL_KEY {
        return (
            "KEYCARD_SOURCES".into(),
            format!(
                "[{{ {API_SOURCE}, api = {{ client_id = \"SERVICE\", token_env = \"S\", pull_interval_secs = {value} }} }}]"
            ),
        );
    }
    (var_name(b.key), value.to_string())
}

/// The concrete key an error names.
fn concrete(b: &Bound) -> String {
    b.key.replace("[]", "[0]")
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Via {
    File,
    Env,
}

fn try_value(b: &Bound, value: u64, via: Via) -> Result<(), String> {
    // TOML integers are signed 64-bit: a larger value cannot be written at all.
    let result = match via {
        Via::File => {
            let f = file(&toml_for(b, value));
            load(Some(&f.path), &[])
        }
        Via::Env => {
            let (var, text) = env_for(b, value);
            load(None, &[(var.as_str(), text.as_str())])
        }
    };
    result.map(|_| ()).map_err(|e| {
        assert_eq!(e.key(), Some(concrete(b).as_str()), "{e}");
        e.to_string()
    })
}

#[test]
fn the_table_covers_the_settings_the_issue_names() {
    let keys: Vec<&str> = bounds::all().iter().map(|b| b.key).collect();
    for key in [
        "reconciler.lease_secs",
        "server.max_body_bytes",
        "sources[].tolerance_secs",
        "reconciler.workers",
        "reconciler.max_attempts",
        "admin_api.requests_per_minute",
        "reconciler.drift_check_secs",
    ] {
        assert!(keys.contains(&key), "{key} has no bound");
    }
}

#[test]
fn every_bounded_key_refuses_values_outside_its_bounds_and_takes_its_edges() {
    for b in bounds::all() {
        for via in [Via::File, Via::Env] {
            for edge in [b.min, b.max].into_iter().chain(b.off) {
                if let Err(e) = try_value(&b, edge, via) {
                    panic!("{} = {edge} ({via:?}) refused: {e}", b.key);
                }
            }
            // Too large for the setting's type: refused by the type, still with the bounds.
            let err = try_value(&b, i64::MAX as u64, via)
                .err()
                .unwrap_or_else(|| panic!("{} = i64::MAX ({via:?}) accepted", b.key));
            assert!(err.contains(&format!("use {}..={}", b.min, b.max)), "{err}");
            let mut outside = vec![b.max + 1];
            if b.min > 0 && b.off != Some(b.min - 1) {
                outside.push(b.min - 1);
            }
            if b.min > 1 && b.off != Some(0) {
                outside.push(0);
            }
            for value in outside {
                let err = try_value(&b, value, via)
                    .err()
                    .unwrap_or_else(|| panic!("{} = {value} ({via:?}) accepted", b.key));
                // The key, the value, the bounds and the way to fix it.
                let range = format!("use {}..={}", b.min, b.max);
                assert!(
                    err.starts_with(&format!("{}: {value} is out of bounds: ", concrete(&b))),
                    "{err}"
                );
                assert!(err.contains(&range), "{err}");
                assert!(err.contains(b.why), "{err}");
                // ... and where the value was set.
                match via {
                    Via::File => assert!(err.contains("keycard.toml)"), "{err}"),
                    Via::Env => {
                        let (var, _) = env_for(&b, value);
                        assert!(err.contains(&format!("(set by {var})")), "{err}");
                    }
                }
            }
        }
    }
}

#[test]
fn the_issue_s_examples_are_refused() {
    for (text, key) in [
        ("[reconciler]\nlease_secs = 0\n", "reconciler.lease_secs"),
        ("[server]\nmax_body_bytes = 0\n", "server.max_body_bytes"),
        ("[reconciler]\nworkers = 0\n", "reconciler.workers"),
        (
            "[[sources]]\nname = \"hr\"\nkind = \"keycard\"\nsecret_env = \"S\"\ntolerance_secs = 9223372036854775807\n",
            "sources[0].tolerance_secs",
        ),
    ] {
        let f = file(text);
        let err = load(Some(&f.path), &[])
            .err()
            .unwrap_or_else(|| panic!("{text} accepted"));
        assert_eq!(err.key(), Some(key), "{err}");
    }
    // A value that does not even fit the type is refused with the key too.
    let err = load(None, &[("KEYCARD_RECONCILER__WORKERS", "-1")])
        .err()
        .unwrap_or_else(|| panic!("workers = -1 accepted"));
    assert_eq!(err.key(), Some("reconciler.workers"), "{err}");
    assert!(
        err.to_string().contains("KEYCARD_RECONCILER__WORKERS"),
        "{err}"
    );
}
