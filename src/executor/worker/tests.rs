//! What the configuration becomes in a worker: each setting where `0` means "off" is off,
//! and each one on is the duration the key says.

use super::*;

fn settings(reconciler: &str) -> WorkerSettings {
    settings_of(&format!(
        "[admin_api]\nadmin_key_env = \"ADMIN_KEY\"\n\n[reconciler]\n{reconciler}\n"
    ))
}

fn settings_of(text: &str) -> WorkerSettings {
    let raw: crate::config::RawConfig =
        toml::from_str(text).unwrap_or_else(|e| panic!("{text}: {e}"));
    let config = Config::from_raw(raw, |k| {
        (k == "ADMIN_KEY").then(|| "sk-ant-admin01-worker-settings-test".to_owned())
    })
    .unwrap_or_else(|e| panic!("{text}: {e}"));
    WorkerSettings::from_config(&config, "w1".into())
}

#[test]
fn the_drift_check_runs_on_its_interval_and_not_at_zero() {
    let on = settings("drift_check_secs = 3600");
    assert_eq!(on.drift_check, Some(Duration::hours(1)));
    let off = settings("drift_check_secs = 0");
    assert_eq!(off.drift_check, None, "0 switches the daily check off");
}

#[test]
fn the_heartbeat_is_a_third_of_the_lease() {
    let s = settings("lease_secs = 120");
    assert_eq!(s.lease, Duration::seconds(120));
    assert_eq!(s.heartbeat, std::time::Duration::from_secs(40));
    assert_eq!(s.owner, "w1");
    assert!(!s.dry_run, "a credential and enforce mode: writes");
}

#[test]
fn durations_of_days_are_kept() {
    // Durations are clamped to a year (so `now + d` cannot overflow), not to a day.
    let s = settings("failure_recheck_secs = 604800\ndrift_check_secs = 2592000");
    assert_eq!(s.failure_recheck, Duration::days(7));
    assert_eq!(s.drift_check, Some(Duration::days(30)));
}

#[test]
fn without_a_credential_or_in_observe_mode_nothing_is_written() {
    let no_credential = settings_of("[reconciler]\nlease_secs = 120\n");
    assert!(no_credential.dry_run, "no Admin API credential: plans only");
    let observe = settings_of("mode = \"observe\"\n[admin_api]\nadmin_key_env = \"ADMIN_KEY\"\n");
    assert!(observe.dry_run, "observe mode: plans only");
    let dry = settings_of("[admin_api]\nadmin_key_env = \"ADMIN_KEY\"\ndry_run = true\n");
    assert!(dry.dry_run, "admin_api.dry_run");
}
