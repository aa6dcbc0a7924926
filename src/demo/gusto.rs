//! `keycard demo --source gusto`: enrichment end to end. The Gusto API simulator and the
//! Admin API simulator run in process; Gusto sends its thin, signed notices (an id, never an
//! email) to Keycard over loopback; Keycard reads each employee back from the Gusto API
//! before applying the notice, invites the hire, then offboards them when terminated.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::{
    ADMIN_KEY, DemoArgs, OPS_TOKEN, RULES, has_pending_invite, journal_tables, sim_tables, wait_for,
};
use crate::admin_sim::{Seed, Simulator};
use crate::app::Application;
use crate::clock::{OffsetClock, SystemClock};
use crate::config::{Config, RawConfig};
use crate::journal::{Journal, JournalFilter};
use crate::sender_api::SenderKind;
use crate::sender_sim::{
    Action, NoticeRequest, PersonInput, SenderSim, default_credential, default_tenant,
    default_webhook_secret,
};

fn config_text(dir: &Path, admin: &str, gusto: &str) -> String {
    format!(
        r#"# Written by `keycard demo --source gusto`. Secrets come from the environment.
[server]
listen = "127.0.0.1:0"
ops_token_env = "KEYCARD_OPS_TOKEN"

[journal]
url = "sqlite://{journal}"

[admin_api]
base_url = "{admin}"
admin_key_env = "KEYCARD_DEMO_ADMIN_KEY"
requests_per_minute = 6000

[reconciler]
invite_poll_secs = 1
retry_base_secs = 1
idle_poll_ms = 50

[[sources]]
name = "gusto"
kind = "gusto"
secret_env = "KEYCARD_GUSTO_VERIFICATION_TOKEN"

# Thin notices are enriched by reading the employee from Gusto's API (here: the simulator).
[sources.api]
tenant = "{tenant}"
token_env = "KEYCARD_GUSTO_API_TOKEN"
base_url = "{gusto}"
{RULES}"#,
        journal = dir.join("journal.db").display(),
        tenant = default_tenant(SenderKind::Gusto),
    )
}

fn say(out: &mut String, line: String) {
    println!("{line}");
    out.push_str(&line);
    out.push('\n');
}

/// Runs the Gusto demo; returns its transcript.
pub(super) async fn run(args: DemoArgs, dir: &Path) -> Result<String, String> {
    let started = Instant::now();
    let seed: Seed = serde_json::from_value(json!({
        "organization": { "name": "Acme (simulated)" },
        "admin_keys": [ADMIN_KEY],
        "users": [ { "email": "owner@acme.test", "name": "Olive Owner", "role": "admin" } ],
        "workspaces": [ { "name": "Engineering" }, { "name": "Sandbox" }, { "name": "Sales" } ],
        "settings": { "rate_limit_per_minute": 6000 }
    }))
    .map_err(|e| e.to_string())?;
    let admin = Simulator::new(seed, Arc::new(OffsetClock::new()))
        .map_err(|e| e.to_string())?
        .spawn(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .map_err(|e| format!("Admin API simulator: {e}"))?;
    let gusto_seed = serde_json::from_value(json!({})).map_err(|e| e.to_string())?;
    let gusto = SenderSim::new(SenderKind::Gusto, gusto_seed, Arc::new(OffsetClock::new()))
        .map_err(|e| e.to_string())?
        .spawn(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .map_err(|e| format!("Gusto simulator: {e}"))?;

    let text = config_text(dir, &admin.base_url(), &gusto.base_url());
    std::fs::write(dir.join("keycard.toml"), &text).map_err(|e| e.to_string())?;
    let raw: RawConfig = toml::from_str(&text).map_err(|e| e.to_string())?;
    let config = Config::from_raw(raw, |k| match k {
        "KEYCARD_GUSTO_VERIFICATION_TOKEN" => {
            Some(default_webhook_secret(SenderKind::Gusto).to_owned())
        }
        "KEYCARD_GUSTO_API_TOKEN" => Some(default_credential(SenderKind::Gusto).to_owned()),
        "KEYCARD_DEMO_ADMIN_KEY" => Some(ADMIN_KEY.to_owned()),
        "KEYCARD_OPS_TOKEN" => Some(OPS_TOKEN.to_owned()),
        _ => None,
    })
    .map_err(|e| e.to_string())?;
    let app = Application::build(config, Arc::new(SystemClock))
        .await
        .map_err(|e| e.to_string())?;
    let addr = app.local_addr().map_err(|e| e.to_string())?;
    let journal: Journal = app.journal().clone();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run(async move {
        let _ = stop_rx.await;
    }));

    let mut out = String::new();
    say(&mut out, "keycard demo --source gusto".into());
    say(
        &mut out,
        format!("  Admin API simulator  {}", admin.base_url()),
    );
    say(
        &mut out,
        format!("  Gusto simulator      {}", gusto.base_url()),
    );
    say(&mut out, format!("  keycard              http://{addr}"));

    let employee = gusto
        .sim
        .add_person(PersonInput {
            first_name: Some("Grace".into()),
            last_name: Some("Hopper".into()),
            work_email: Some("grace@acme.test".into()),
            department: Some("Engineering".into()),
            title: Some("Staff Engineer".into()),
            ..Default::default()
        })
        .map_err(|e| e.to_string())?;
    let id = employee.id.clone();
    let hook = format!("http://{addr}/webhooks/gusto");
    let notify = |action: Action| {
        let request = NoticeRequest::new(&id, action).to(hook.clone());
        let sim = gusto.sim.clone();
        async move { sim.notify(request).await.map_err(|e| e.to_string()) }
    };

    say(
        &mut out,
        "\nGusto onboards Grace Hopper (Engineering):".into(),
    );
    for d in notify(Action::Joined).await? {
        say(
            &mut out,
            format!(
                "  Gusto sends {:<28} for {id} (no email) -> {}",
                d.event,
                d.status.map_or("no answer".into(), |s| s.to_string())
            ),
        );
    }
    let state = || admin.sim.state();
    wait_for("the enriched invite", Duration::from_secs(10), || {
        has_pending_invite(&state(), "grace@acme.test")
    })
    .await?;
    let read = enriched(&journal).await?;
    say(
        &mut out,
        format!("  Keycard read the record: {read}; Grace is invited as a developer"),
    );
    let user = admin
        .sim
        .accept_invite_for("grace@acme.test")
        .map_err(|e| e.to_string())?;
    let uid = user["id"].as_str().unwrap_or_default().to_owned();
    say(
        &mut out,
        format!("  Grace accepts the invite -> member {uid}"),
    );
    let members = |st: &Value| {
        st["workspace_members"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|m| m["user_id"] == uid.as_str())
            .count()
    };
    wait_for("Grace's workspaces", Duration::from_secs(10), || {
        members(&state()) == 2
    })
    .await?;

    say(&mut out, "\nGusto terminates Grace:".into());
    gusto.sim.terminate(&id, None).map_err(|e| e.to_string())?;
    for d in notify(Action::Terminated).await? {
        say(
            &mut out,
            format!(
                "  Gusto sends {:<28} for {id} -> {}",
                d.event,
                d.status.map_or("no answer".into(), |s| s.to_string())
            ),
        );
    }
    let gone = |st: &Value| {
        !st["users"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|u| u["id"] == uid.as_str())
    };
    wait_for(
        "the offboarding",
        Duration::from_secs(10),
        || gone(&state()),
    )
    .await?;
    say(
        &mut out,
        "  Grace is offboarded: memberships and account removed".into(),
    );

    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut report = journal_tables(&journal).await?;
    report += &sim_tables(&admin.sim.state());
    print!("{report}");
    println!("\nDone in {:.1}s.", started.elapsed().as_secs_f64());
    if !args.exit {
        println!(
            "\nThe demo keeps running (Ctrl-C to stop):\
             \n  curl -s -H 'authorization: Bearer {OPS_TOKEN}' 'http://{addr}/api/v1/events?source=gusto'"
        );
        let _ = tokio::signal::ctrl_c().await;
    }
    let _ = stop_tx.send(());
    let _ = server.await;
    gusto.stop().await;
    admin.stop().await;
    Ok(format!("{out}{report}"))
}

/// What the first enriched event says it read: from where, when.
async fn enriched(journal: &Journal) -> Result<String, String> {
    let all = JournalFilter {
        limit: 100,
        ..Default::default()
    };
    let events = async { journal.conn().await?.list_events(&all).await }
        .await
        .map_err(|e| e.to_string())?;
    Ok(events
        .data
        .iter()
        .find_map(|e| {
            let en = e.payload.get("enrichment")?;
            Some(format!(
                "{} at {} (email {})",
                en["from"].as_str().unwrap_or("?"),
                en["fetched_at"].as_str().unwrap_or("?"),
                e.email.as_deref().unwrap_or("?")
            ))
        })
        .unwrap_or_else(|| "(not yet)".into()))
}
