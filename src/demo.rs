//! `keycard demo`: the whole loop in one process, on a fresh machine, in seconds.
//!
//! Starts the Admin API simulator and the service on free loopback ports with the embedded
//! journal in a temporary directory, sends signed sample deliveries (a hire, its acceptance,
//! a move, a departure, a duplicate and a forged one), waits for convergence, and prints the
//! journal and the simulator's final state. Then it keeps serving and prints commands to try.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{Value, json};

use crate::admin_sim::{Seed, Simulator};
use crate::app::Application;
use crate::clock::{Clock, OffsetClock, SystemClock};
use crate::config::{Config, RawConfig};
use crate::journal::{Journal, JournalFilter, render};
use crate::sources::standard_webhooks::{MessageId, WebhookSecret, sign};

mod gusto;

#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Exit after printing the results instead of serving until Ctrl-C (CI, scripts).
    #[arg(long, env = "KEYCARD_DEMO_EXIT", value_parser = clap::builder::BoolishValueParser::new())]
    pub exit: bool,
    /// Keep the demo's files here instead of a fresh temporary directory.
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Which sender to demonstrate: `keycard` (signed native events) or `gusto` (thin Gusto
    /// notices enriched from the Gusto API simulator).
    #[arg(long, default_value = "keycard", value_parser = ["keycard", "gusto"])]
    pub source: String,
}

const ADMIN_KEY: &str = "sk-ant-admin01-keycard-demo";
const OPS_TOKEN: &str = "demo-ops-token";

const RULES: &str = r#"
[[rules]]
name = "engineering"
when = 'person.department == "Engineering"'
org_role = "developer"
workspaces = { "Engineering" = "workspace_developer", "Sandbox" = "workspace_user" }

[[rules]]
name = "sales"
when = 'person.department == "Sales"'
org_role = "user"
workspaces = { "Sales" = "workspace_user" }

[default]
org_role = "user"
"#;

/// A fresh `whsec_` secret for the demo's source.
fn demo_secret() -> String {
    let bytes: [u8; 24] = std::array::from_fn(|_| rand::random::<u8>());
    format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode(bytes)
    )
}

fn config_text(dir: &Path, sim: &str) -> String {
    format!(
        r#"# Written by `keycard demo`. Secrets come from the environment (see the commands printed).
[server]
listen = "127.0.0.1:0"
ops_token_env = "KEYCARD_OPS_TOKEN"

[journal]
url = "sqlite://{journal}"

[admin_api]
base_url = "{sim}"
admin_key_env = "KEYCARD_DEMO_ADMIN_KEY"
# The simulator is configured with the same generous budget, so the demo is not paced
# at the real API's 100 requests per minute.
requests_per_minute = 6000

[reconciler]
invite_poll_secs = 1
retry_base_secs = 1
idle_poll_ms = 50

[[sources]]
name = "hr"
kind = "keycard"
secret_env = "KEYCARD_SOURCE_SECRET"
{RULES}"#,
        journal = dir.join("journal.db").display(),
    )
}

struct Demo {
    base: String,
    secret: WebhookSecret,
    http: reqwest::Client,
    out: String,
}

impl Demo {
    async fn send(
        &mut self,
        label: &str,
        id: &str,
        body: &Value,
        forge: bool,
    ) -> Result<(), String> {
        let bytes = body.to_string().into_bytes();
        let ts = SystemClock.now().timestamp();
        let mid = MessageId::parse(id).map_err(|e| e.to_string())?;
        let mut signature = sign(&self.secret, &mid, ts, &bytes);
        if forge {
            signature = "v1,Zm9yZ2VkLXNpZ25hdHVyZS0zMi1ieXRlcy1sb25nISE=".into();
        }
        let resp = self
            .http
            .post(format!("{}/webhooks/hr", self.base))
            .header("content-type", "application/json")
            .header("webhook-id", id)
            .header("webhook-timestamp", ts.to_string())
            .header("webhook-signature", signature)
            .body(bytes)
            .send()
            .await
            .map_err(|e| format!("sending {label}: {e}"))?;
        let status = resp.status().as_u16();
        let answer: Value = resp.json().await.unwrap_or(Value::Null);
        let detail = if status == 202 {
            format!(
                "event {} duplicate={}",
                answer["event_id"].as_str().unwrap_or("?"),
                answer["duplicate"]
            )
        } else {
            format!(
                "{} ({})",
                answer["title"].as_str().unwrap_or("?"),
                answer["detail"].as_str().unwrap_or("")
            )
        };
        let line = format!("  {label:<34} -> {status} {detail}");
        println!("{line}");
        let _ = writeln!(self.out, "{line}");
        Ok(())
    }
}

/// Polls until `done` holds (real time: the demo runs on the wall clock).
async fn wait_for(
    what: &str,
    timeout: Duration,
    mut done: impl FnMut() -> bool,
) -> Result<(), String> {
    let start = Instant::now();
    while !done() {
        if start.elapsed() > timeout {
            return Err(format!("timed out waiting for {what}"));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

fn person_event(kind: &str, id: &str, person: Value) -> Value {
    let mut p = person;
    if let Some(obj) = p.as_object_mut() {
        obj.insert("id".into(), json!(id));
    }
    json!({ "type": kind, "occurred_at": SystemClock.now().to_rfc3339(), "person": p })
}

fn table(headers: &[&str], rows: Vec<Vec<String>>) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for r in &rows {
        for (i, c) in r.iter().enumerate() {
            widths[i] = widths[i].max(c.len());
        }
    }
    let mut out = String::new();
    let fmt = |cells: &[String]| {
        cells
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{c:<w$}", w = widths[i]))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_owned()
    };
    let _ = writeln!(
        out,
        "{}",
        fmt(&headers.iter().map(|h| h.to_uppercase()).collect::<Vec<_>>())
    );
    for r in &rows {
        let _ = writeln!(out, "{}", fmt(r));
    }
    if rows.is_empty() {
        let _ = writeln!(out, "(none)");
    }
    out
}

/// Whether the simulator's state holds a pending invite to `email`.
fn has_pending_invite(state: &Value, email: &str) -> bool {
    state["invites"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|i| i["email"] == email && i["status"] == "pending")
}

/// The journal's newest events and actions, as the demo's closing record.
async fn journal_tables(journal: &crate::journal::Journal) -> Result<String, String> {
    let all = JournalFilter {
        limit: 100,
        ..Default::default()
    };
    let (actions, events) = async {
        let mut conn = journal.conn().await?;
        Ok::<_, crate::journal::JournalError>((
            conn.list_actions(&all).await?,
            conn.list_events(&all).await?,
        ))
    }
    .await
    .map_err(|e| e.to_string())?;
    let mut report = String::from("\nJournal: events (newest first)\n");
    report += &render::events(&events, render::Format::Table);
    report += "\nJournal: actions (newest first)\n";
    report += &render::actions(&actions, render::Format::Table);
    Ok(report)
}

fn sim_tables(state: &Value) -> String {
    let s = |v: &Value| v.as_str().unwrap_or_default().to_owned();
    let names: std::collections::HashMap<String, String> = state["workspaces"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|w| (s(&w["id"]), s(&w["name"])))
        .collect();
    let emails: std::collections::HashMap<String, String> = state["users"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|u| (s(&u["id"]), s(&u["email"])))
        .collect();
    let mut out = String::from("\nOrganization members (simulator)\n");
    out += &table(
        &["email", "role", "id"],
        state["users"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|u| vec![s(&u["email"]), s(&u["role"]), s(&u["id"])])
            .collect(),
    );
    out += "\nInvites (simulator)\n";
    out += &table(
        &["email", "role", "status"],
        state["invites"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|i| vec![s(&i["email"]), s(&i["role"]), s(&i["status"])])
            .collect(),
    );
    out += "\nWorkspace members (simulator)\n";
    out += &table(
        &["workspace", "member", "role"],
        state["workspace_members"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|m| {
                vec![
                    names
                        .get(&s(&m["workspace_id"]))
                        .cloned()
                        .unwrap_or_default(),
                    emails
                        .get(&s(&m["user_id"]))
                        .cloned()
                        .unwrap_or_else(|| s(&m["user_id"])),
                    s(&m["workspace_role"]),
                ]
            })
            .collect(),
    );
    out += "\nAPI keys (simulator)\n";
    out += &table(
        &["name", "status", "created by"],
        state["api_keys"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|k| {
                let by = s(&k["created_by"]["id"]);
                vec![
                    s(&k["name"]),
                    s(&k["status"]),
                    emails.get(&by).cloned().unwrap_or(by),
                ]
            })
            .collect(),
    );
    out
}

/// Runs the demo. Prints as it goes; returns the transcript for tests.
pub async fn run(args: DemoArgs) -> Result<String, String> {
    let started = Instant::now();
    let tmp = match &args.dir {
        Some(_) => None,
        None => Some(
            tempfile::Builder::new()
                .prefix("keycard-demo-")
                .tempdir()
                .map_err(|e| e.to_string())?,
        ),
    };
    let dir: PathBuf = match (&args.dir, &tmp) {
        (Some(d), _) => d.clone(),
        (None, Some(t)) => t.path().to_path_buf(),
        (None, None) => return Err("no directory for the demo".into()),
    };
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    if args.source == "gusto" {
        return gusto::run(args, &dir).await;
    }

    // The organization: two admins, four workspaces.
    let seed: Seed = serde_json::from_value(json!({
        "organization": { "name": "Acme (simulated)" },
        "admin_keys": [ADMIN_KEY],
        "users": [
            { "email": "owner@acme.test", "name": "Olive Owner", "role": "admin" },
            { "email": "it@acme.test", "name": "Ivan IT", "role": "admin" }
        ],
        "workspaces": [ { "name": "Engineering" }, { "name": "Sandbox" }, { "name": "Sales" }, { "name": "Research" } ],
        "settings": { "rate_limit_per_minute": 6000 }
    }))
    .map_err(|e| e.to_string())?;
    let sim = Simulator::new(seed, Arc::new(OffsetClock::new())).map_err(|e| e.to_string())?;
    let running = sim
        .spawn(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .map_err(|e| format!("simulator: {e}"))?;

    let secret_text = demo_secret();
    let config_path = dir.join("keycard.toml");
    std::fs::write(&config_path, config_text(&dir, &running.base_url()))
        .map_err(|e| e.to_string())?;
    let raw: RawConfig =
        toml::from_str(&config_text(&dir, &running.base_url())).map_err(|e| e.to_string())?;
    let env_secret = secret_text.clone();
    let config = Config::from_raw(raw, move |k| match k {
        "KEYCARD_SOURCE_SECRET" => Some(env_secret.clone()),
        "KEYCARD_DEMO_ADMIN_KEY" => Some(ADMIN_KEY.to_owned()),
        "KEYCARD_OPS_TOKEN" => Some(OPS_TOKEN.to_owned()),
        _ => None,
    })
    .map_err(|e| e.to_string())?;
    let journal_url = config.journal_url();
    let app = Application::build(config, Arc::new(SystemClock))
        .await
        .map_err(|e| e.to_string())?;
    let addr = app.local_addr().map_err(|e| e.to_string())?;
    let journal: Journal = app.journal().clone();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run(async move {
        let _ = stop_rx.await;
    }));

    println!("keycard demo");
    println!("  Admin API simulator  {}", running.base_url());
    println!("  keycard              http://{addr}");
    println!("  journal              {journal_url}");
    println!("\nSending signed deliveries from the HR source 'hr':");
    let mut demo = Demo {
        base: format!("http://{addr}"),
        secret: WebhookSecret::parse(&secret_text).map_err(|e| e.to_string())?,
        http: reqwest::Client::new(),
        out: String::new(),
    };

    let ada = json!({ "email": "ada@acme.test", "name": "Ada Lovelace", "department": "Engineering", "title": "Staff Engineer" });
    demo.send(
        "hire Ada (Engineering)",
        "msg_demo_hire",
        &person_event("person.hired", "E1001", ada),
        false,
    )
    .await?;
    let state = || running.sim.state();
    wait_for("Ada's invite", Duration::from_secs(5), || {
        has_pending_invite(&state(), "ada@acme.test")
    })
    .await?;
    let user = running
        .sim
        .accept_invite_for("ada@acme.test")
        .map_err(|e| e.to_string())?;
    let uid = user["id"].as_str().unwrap_or_default().to_owned();
    println!(
        "  {:<34} -> Ada is now member {uid}",
        "Ada accepts the invite"
    );
    let member_of = |st: &Value, n: usize| {
        st["workspace_members"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|m| m["user_id"] == uid.as_str())
            .count()
            == n
    };
    wait_for(
        "Ada's workspace memberships",
        Duration::from_secs(5),
        || member_of(&state(), 2),
    )
    .await?;
    // Ada creates an API key in the Console, as engineers do.
    let eng = state()["workspaces"]
        .as_array()
        .and_then(|w| w.iter().find(|w| w["name"] == "Engineering"))
        .and_then(|w| w["id"].as_str())
        .unwrap_or_default()
        .to_owned();
    running
        .sim
        .add_api_key("ada-laptop", Some(&eng), Some(&uid));

    let moved = json!({ "department": "Sales", "title": "Solutions Engineer" });
    demo.send(
        "move Ada to Sales",
        "msg_demo_move",
        &person_event("person.updated", "E1001", moved),
        false,
    )
    .await?;
    let in_sales = |st: &Value| {
        st["users"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|u| u["id"] == uid.as_str() && u["role"] == "user")
            && member_of(st, 1)
    };
    wait_for("the move", Duration::from_secs(5), || in_sales(&state())).await?;

    let departed = person_event("person.departed", "E1001", json!({}));
    demo.send("Ada departs", "msg_demo_leave", &departed, false)
        .await?;
    let gone = |st: &Value| {
        !st["users"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|u| u["id"] == uid.as_str())
    };
    wait_for("the departure", Duration::from_secs(5), || gone(&state())).await?;
    demo.send(
        "the same departure, redelivered",
        "msg_demo_leave",
        &departed,
        false,
    )
    .await?;
    let forged = person_event(
        "person.departed",
        "E0001",
        json!({ "email": "owner@acme.test" }),
    );
    demo.send("a forged delivery", "msg_demo_forged", &forged, true)
        .await?;

    // Let the worker finish anything in flight, then show the record.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut report = journal_tables(&journal).await?;
    report += &sim_tables(&running.sim.state());
    print!("{report}");
    println!("\nConverged in {:.1}s.", started.elapsed().as_secs_f64());

    let sample = dir.join("hire.json");
    let sample_body = person_event(
        "person.hired",
        "E1002",
        json!({ "email": "grace@acme.test", "name": "Grace Hopper", "department": "Engineering" }),
    );
    let _ = std::fs::write(&sample, sample_body.to_string());
    let exe = std::env::current_exe()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| "keycard".into());
    // With --exit the service, the simulator and the temporary directory are gone in a
    // moment: commands to try against them would only fail.
    if args.exit {
        println!(
            "\n(--exit: stopping now; without it the demo keeps serving and prints commands to try.)"
        );
    } else {
        println!(
            "\nTry it yourself (the demo keeps running; Ctrl-C to stop):\n\
         \n  export KEYCARD_SOURCE_SECRET='{secret_text}'   # the demo source's throwaway secret\
         \n  {exe} sign --curl http://{addr}/webhooks/hr {sample}   # prints a signed curl command; run it\
         \n  {exe} journal --journal {journal_url}\
         \n  {exe} journal --journal {journal_url} --events --format json\
         \n  curl -s -H 'authorization: Bearer {OPS_TOKEN}' http://{addr}/api/v1/people/E1001\
         \n  curl -s http://{addr}/metrics\
         \n\nThe demo's config is in {config}.",
            sample = sample.display(),
            config = config_path.display(),
        );
    }
    let transcript = format!("{}{report}", demo.out);
    if !args.exit {
        let _ = tokio::signal::ctrl_c().await;
    }
    let _ = stop_tx.send(());
    let _ = server.await;
    running.stop().await;
    drop(tmp);
    Ok(transcript)
}
