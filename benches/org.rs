//! What keeping an organization correct costs in Admin API calls, the budget that limits
//! Keycard. Counted with the simulator's call log, on a scratch PostgreSQL database per
//! scenario (`keycard_org_bench_<pid>_<n>`, created and dropped here):
//!
//! - **joiners**: calls per joiner to full convergence (invite, acceptance noticed,
//!   memberships) against the writes that cannot be avoided;
//! - **drift**: the daily check of a 10,000-member organization with 20 workspaces, when
//!   nothing drifted, against the number of list pages;
//! - **preview**: `keycard plan --all` for a rule change across that organization (every
//!   member's role changes), from the mirror, timed;
//! - **acceptance**: how soon an acceptance is noticed with 2,000 invites pending, and reads
//!   per minute while waiting;
//! - **replicas**: three clients (each standing for a `keycard serve` replica) on one journal
//!   sharing the budget, against a simulator whose limit is that budget, in real time;
//! - **invites**: 1,000 joiners at the real 1,200 invites/h.
//!
//! All but `replicas` run on a manual clock: waits for the budget advance it instead of
//! sleeping, so the figures are exact, the times virtual, and an hour of invites takes
//! seconds. `replicas` runs for real (two minutes in full mode).
//!
//! ```text
//! cargo bench --bench org                      # every scenario, full size
//! cargo bench --bench org -- --quick           # smaller sizes, replicas for 20 s
//! cargo bench --bench org -- joiners drift     # some scenarios only
//! ```
//!
//! Needs PostgreSQL (`DATABASE_URL`, default postgres://postgres@127.0.0.1:5432/postgres).
//! Under `cargo test` (no `--bench` argument) it runs a small smoke of every scenario.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, ensure};
use chrono::{DateTime, Utc};
use keycard::admin_api::{
    AdminClient, AdminClientConfig, Credential, PacingConfig, RateLimit, RetryPolicy,
};
use keycard::admin_sim::{CallRecord, RunningSim, Seed, Simulator};
use keycard::app::Application;
use keycard::budget::SharedBudget;
use keycard::clock::{Clock, ManualClock, OffsetClock, SystemClock};
use keycard::config::{Config, RawConfig};
use keycard::executor::Worker;
use keycard::ingest::{DedupeKey, LifecycleEvent, NativeEvent};
use keycard::journal::Journal;
use serde_json::{Value, json};
use sqlx::postgres::PgPoolOptions;
use sqlx::{AssertSqlSafe, PgPool};

const ADMIN_KEY: &str = "sk-ant-admin01-org-bench";

fn t0() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-12-01T09:00:00Z")
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_default()
}

struct Mode {
    bench: bool,
    quick: bool,
    only: Vec<String>,
}

impl Mode {
    fn from_args() -> Self {
        let args: Vec<String> = std::env::args().skip(1).collect();
        let bench = args.iter().any(|a| a == "--bench");
        let quick = args.iter().any(|a| a == "--quick");
        let only = args
            .iter()
            .filter(|a| !a.starts_with('-'))
            .cloned()
            .collect();
        Self { bench, quick, only }
    }

    fn wants(&self, name: &str) -> bool {
        self.only.is_empty() || self.only.iter().any(|o| o == name)
    }

    /// Full size, quick size, or the smoke size `cargo test` runs.
    fn size(&self, full: usize, quick: usize, smoke: usize) -> usize {
        match (self.bench, self.quick) {
            (true, false) => full,
            (true, true) => quick,
            (false, _) => smoke,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Scratch databases

struct Scratch {
    admin: PgPool,
    prefix: String,
    next: usize,
    made: Vec<String>,
    base: url::Url,
}

impl Scratch {
    async fn new() -> Result<Self> {
        let admin_url = std::env::var("DATABASE_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
        let admin = PgPoolOptions::new()
            .max_connections(1)
            .connect(&admin_url)
            .await
            .with_context(|| format!("connect to {admin_url} (set DATABASE_URL)"))?;
        Ok(Self {
            admin,
            prefix: format!("keycard_org_bench_{}", std::process::id()),
            next: 0,
            made: Vec::new(),
            base: url::Url::parse(&admin_url).context("DATABASE_URL is not a URL")?,
        })
    }

    /// A fresh, migrated journal on a database of its own.
    async fn journal(&mut self) -> Result<Journal> {
        self.next += 1;
        let name = format!("{}_{}", self.prefix, self.next);
        // The name is made of our pid and a counter: nothing to inject.
        sqlx::query(AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
        )))
        .execute(&self.admin)
        .await?;
        sqlx::query(AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&self.admin)
            .await?;
        self.made.push(name.clone());
        let mut url = self.base.clone();
        url.set_path(&name);
        let journal = Journal::connect(url.as_str(), 10).await?;
        journal.migrate().await?;
        Ok(journal)
    }

    async fn drop_all(&self) -> Result<()> {
        for name in &self.made {
            sqlx::query(AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
            )))
            .execute(&self.admin)
            .await?;
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// A Keycard on a manual clock

fn config(rules: &str, sim_url: &str) -> Result<Config> {
    let text = format!(
        r#"
[admin_api]
admin_key_env = "ADMIN_KEY"

[reconciler]
invite_poll_secs = 30

{rules}
"#
    );
    let raw: RawConfig = toml::from_str(&text)?;
    let sim_url = sim_url.to_owned();
    Ok(Config::from_raw(raw, move |k| match k {
        "ADMIN_KEY" => Some(ADMIN_KEY.to_owned()),
        "HR_SECRET" => Some("whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD".to_owned()),
        "KEYCARD_ADMIN_API_BASE_URL" => Some(sim_url.clone()),
        _ => None,
    })?)
}

struct Org {
    clock: Arc<ManualClock>,
    sim: RunningSim,
    journal: Journal,
    worker: Worker,
}

impl Org {
    async fn start(journal: Journal, seed: Value, rules: &str) -> Result<Self> {
        let clock = Arc::new(ManualClock::new(t0()));
        let seed: Seed = serde_json::from_value(seed)?;
        let sim = Simulator::new(seed, clock.clone())?
            .spawn(([127, 0, 0, 1], 0).into())
            .await?;
        let config = config(rules, &sim.base_url())?;
        let app = Application::build_with_journal(config, clock.clone(), journal.clone()).await?;
        let worker = app.worker().clone();
        Ok(Self {
            clock,
            sim,
            journal,
            worker,
        })
    }

    /// Journals events as deliveries would, without the HTTP hop (not what is measured).
    async fn deliver(&self, events: &[LifecycleEvent]) -> Result<()> {
        for chunk in events.chunks(500) {
            let batch: Vec<(&LifecycleEvent, Option<usize>)> =
                chunk.iter().map(|e| (e, Some(0))).collect();
            self.journal.conn().await?.record_events(&batch).await?;
        }
        Ok(())
    }

    async fn settle(&self) -> Result<()> {
        self.worker.run_until_idle().await?;
        Ok(())
    }

    fn calls(&self) -> Vec<CallRecord> {
        self.sim.sim.calls()
    }
}

fn event(kind: &str, id: &str, email: &str, dept: &str, n: usize) -> LifecycleEvent {
    let body = json!({
        "type": kind,
        "occurred_at": t0().to_rfc3339(),
        "person": { "id": id, "email": email, "department": dept }
    });
    let bytes = body.to_string().into_bytes();
    NativeEvent::parse(&bytes)
        .map(|e| {
            e.into_lifecycle(
                DedupeKey {
                    source: "hr".into(),
                    delivery_id: format!("{kind}-{id}-{n}"),
                },
                t0(),
                &bytes,
            )
        })
        .unwrap_or_else(|e| panic!("fixture: {e}"))
}

/// Reads and writes among calls the organization answered, and 429s.
#[derive(Debug, Default, Clone, Copy)]
struct Tally {
    reads: usize,
    writes: usize,
    limited: usize,
}

fn tally(calls: &[CallRecord]) -> Tally {
    let mut t = Tally::default();
    for c in calls {
        if c.status == 429 {
            t.limited += 1;
        } else if c.method == "GET" {
            t.reads += 1;
        } else {
            t.writes += 1;
        }
    }
    t
}

const SOURCE: &str = r#"
[[sources]]
name = "hr"
kind = "keycard"
secret_env = "HR_SECRET"
"#;

fn rules_two_workspaces() -> String {
    format!(
        r#"{SOURCE}
[[rules]]
name = "engineering"
when = 'person.department == "Engineering"'
org_role = "developer"
workspaces = {{ "Engineering" = "workspace_developer", "Sandbox" = "workspace_user" }}
"#
    )
}

fn base_seed() -> Value {
    json!({
        "admin_keys": [ADMIN_KEY],
        "users": [{ "email": "root@acme.test", "name": "Root", "role": "admin" }],
        "workspaces": [{ "name": "Engineering" }, { "name": "Sandbox" }]
    })
}

// ---------------------------------------------------------------------------------------------
// Scenarios

/// Calls per joiner, to full convergence.
async fn joiners(scratch: &mut Scratch, n: usize) -> Result<String> {
    let org = Org::start(
        scratch.journal().await?,
        base_seed(),
        &rules_two_workspaces(),
    )
    .await?;
    let hires: Vec<LifecycleEvent> = (0..n)
        .map(|i| {
            event(
                "person.hired",
                &format!("J{i}"),
                &format!("j{i}@acme.test"),
                "Engineering",
                0,
            )
        })
        .collect();
    org.deliver(&hires).await?;
    org.settle().await?;
    let invited = tally(&org.calls());
    for i in 0..n {
        org.sim.sim.accept_invite_for(&format!("j{i}@acme.test"))?;
    }
    org.clock.advance(Duration::from_secs(31));
    org.settle().await?;
    let done = tally(&org.calls());
    let members = org.sim.sim.state()["workspace_members"]
        .as_array()
        .map_or(0, Vec::len);
    ensure!(
        members >= 2 * n,
        "only {members} memberships for {n} joiners"
    );
    // Unavoidable: one invite and two memberships per joiner.
    let unavoidable = 3 * n;
    let per = |x: usize| x as f64 / n as f64;
    ensure!(done.limited == 0, "{} 429s", done.limited);
    Ok(format!(
        "| {n} | {:.2} | {:.2} | {:.3} | {:.3} | {:.2} ({}) | {} |",
        per(done.reads + done.writes),
        per(done.writes),
        per(done.reads),
        (done.reads + done.writes) as f64 / unavoidable as f64,
        per(invited.reads + invited.writes),
        invited.reads,
        done.limited,
    ))
}

/// A large organization whose members are all known to HR (one team per workspace), read
/// and linked on day one: its seed, rules and hires.
fn large_org(members: usize, workspaces: usize) -> (Value, String, Vec<LifecycleEvent>) {
    let names: Vec<String> = (0..workspaces).map(|w| format!("Team {w:02}")).collect();
    let mut seed = base_seed();
    seed["users"] = json!(
        std::iter::once(json!({ "email": "root@acme.test", "name": "Root", "role": "admin" }))
            .chain((0..members).map(|i| json!({
                "email": format!("m{i:05}@acme.test"), "name": "Member", "role": "user"
            })))
            .collect::<Vec<_>>()
    );
    seed["workspaces"] = json!(
        names
            .iter()
            .enumerate()
            .map(|(w, name)| json!({
                "name": name,
                "members": (0..members)
                    .filter(|i| i % workspaces == w)
                    .map(|i| json!({ "email": format!("m{i:05}@acme.test"), "workspace_role": "workspace_user" }))
                    .collect::<Vec<_>>()
            }))
            .collect::<Vec<_>>()
    );
    let hires: Vec<LifecycleEvent> = (0..members)
        .map(|i| {
            event(
                "person.hired",
                &format!("M{i}"),
                &format!("m{i:05}@acme.test"),
                &format!("D{}", i % workspaces),
                0,
            )
        })
        .collect();
    (seed, team_rules(workspaces, "user"), hires)
}

/// One rule per team: `org_role` for its department, its workspace as user.
fn team_rules(workspaces: usize, org_role: &str) -> String {
    let mut rules = SOURCE.to_owned();
    for w in 0..workspaces {
        rules.push_str(&format!(
            "\n[[rules]]\nname = \"team{w}\"\nwhen = 'person.department == \"D{w}\"'\norg_role = \"{org_role}\"\nworkspaces = {{ \"Team {w:02}\" = \"workspace_user\" }}\n"
        ));
    }
    rules
}

/// `keycard plan --all` for a rule change across a large organization: every member's
/// organization role changes. From the mirror: no Admin API call.
async fn preview(scratch: &mut Scratch, members: usize, workspaces: usize) -> Result<String> {
    let (seed, rules, hires) = large_org(members, workspaces);
    let org = Org::start(scratch.journal().await?, seed, &rules).await?;
    org.deliver(&hires).await?;
    org.settle().await?;
    let before = org.calls().len();
    let candidate = config(&team_rules(workspaces, "developer"), &org.sim.base_url())?;
    let started = Instant::now();
    let preview =
        keycard::adoption::cli::run_plan_all(&candidate, &org.journal, org.clock.clone()).await?;
    let elapsed = started.elapsed();
    ensure!(
        org.calls().len() == before,
        "plan --all called the Admin API"
    );
    let changes = preview.counts.get("update_user_role").copied().unwrap_or(0);
    ensure!(
        changes == members as u64,
        "{changes} role changes previewed for {members} members"
    );
    Ok(format!(
        "| {} | {workspaces} | {} | {} | {:.2} s |",
        preview.people,
        preview.people_changed,
        changes,
        elapsed.as_secs_f64()
    ))
}

/// The daily drift check of a large organization when nothing drifted.
async fn drift(scratch: &mut Scratch, members: usize, workspaces: usize) -> Result<String> {
    let (seed, rules, hires) = large_org(members, workspaces);
    let org = Org::start(scratch.journal().await?, seed, &rules).await?;
    org.deliver(&hires).await?;
    // Day one: read, link everyone to their account (journal writes only).
    org.settle().await?;
    let first = tally(&org.calls());
    ensure!(first.writes == 0, "{} writes on day one", first.writes);
    // Day two: the drift check.
    org.clock.advance(Duration::from_secs(86_401));
    let started = Instant::now();
    org.settle().await?;
    let elapsed = started.elapsed();
    let calls = org.calls();
    let check = tally(&calls[first.reads + first.writes..]);
    let pages = (members + 1).div_ceil(1000)
        + 1 // invites
        + 1 // workspaces
        + 1 // api keys
        + (0..workspaces)
            .map(|w| (members / workspaces + usize::from(w < members % workspaces)).div_ceil(1000).max(1))
            .sum::<usize>();
    ensure!(
        check.writes == 0,
        "{} writes: drift where there was none",
        check.writes
    );
    Ok(format!(
        "| {members} | {workspaces} | {pages} | {} | {:.2} | {} | {:.1} s |",
        check.reads,
        check.reads as f64 / pages as f64,
        check.writes,
        elapsed.as_secs_f64(),
    ))
}

/// How soon one acceptance among many pending invites is noticed, and what waiting costs.
async fn acceptance(scratch: &mut Scratch, pending: usize) -> Result<String> {
    let org = Org::start(
        scratch.journal().await?,
        base_seed(),
        &rules_two_workspaces(),
    )
    .await?;
    let hires: Vec<LifecycleEvent> = (0..pending)
        .map(|i| {
            event(
                "person.hired",
                &format!("A{i}"),
                &format!("a{i}@acme.test"),
                "Engineering",
                0,
            )
        })
        .collect();
    org.deliver(&hires).await?;
    org.settle().await?;
    // Ten minutes with nothing accepted: what does waiting cost?
    let before = org.calls().len();
    let waited_from = org.clock.now();
    for _ in 0..600 {
        org.clock.advance(Duration::from_secs(1));
        org.settle().await?;
    }
    let minutes = (org.clock.now() - waited_from).num_seconds() as f64 / 60.0;
    let waiting = tally(&org.calls()[before..]);
    // One acceptance: when is it noticed (the person's memberships added)?
    let target = format!("a{}@acme.test", pending / 2);
    let accepted_at = org.clock.now();
    org.sim.sim.accept_invite_for(&target)?;
    let mut noticed = None;
    for _ in 0..300 {
        org.clock.advance(Duration::from_secs(1));
        org.settle().await?;
        let calls = org.calls();
        if calls
            .iter()
            .any(|c| c.route == Some("workspace_members.create") && c.status < 300)
        {
            noticed = Some(org.clock.now() - accepted_at);
            break;
        }
    }
    let noticed = noticed.context("the acceptance was never noticed")?;
    Ok(format!(
        "| {pending} | {:.2} | {} s | {} |",
        waiting.reads as f64 / minutes,
        noticed.num_seconds(),
        waiting.limited
    ))
}

/// Three processes' clients on one journal, in real time, against the budget as the limit.
async fn replicas(scratch: &mut Scratch, seconds: u64) -> Result<String> {
    let journal = scratch.journal().await?;
    let budget = 100;
    let sim = Simulator::new(
        serde_json::from_value(base_seed())?,
        Arc::new(OffsetClock::new()),
    )?
    .spawn(([127, 0, 0, 1], 0).into())
    .await?;
    sim.sim
        .update_settings(&json!({ "rate_limit_per_minute": budget }))?;
    let clients: Vec<AdminClient> = (0..3)
        .map(|_| {
            AdminClient::with_clock(
                AdminClientConfig::new(Credential::admin_key(ADMIN_KEY))
                    .base_url(sim.base_url())
                    .retry(RetryPolicy::default())
                    .pacing(Some(PacingConfig {
                        general: RateLimit {
                            requests: budget,
                            per: Duration::from_secs(60),
                            burst: 10,
                        },
                        ..PacingConfig::default()
                    }))
                    .budget_store(Arc::new(SharedBudget::new(journal.clone()))),
                Arc::new(SystemClock),
            )
        })
        .collect::<Result<_, _>>()?;
    let until = Instant::now() + Duration::from_secs(seconds);
    let tasks: Vec<_> = clients
        .into_iter()
        .map(|c| {
            tokio::spawn(async move {
                let mut n = 0usize;
                while Instant::now() < until {
                    if c.get_organization().await.is_ok() {
                        n += 1;
                    }
                }
                n
            })
        })
        .collect();
    let mut per_replica = Vec::new();
    for t in tasks {
        per_replica.push(t.await?);
    }
    let calls = sim.sim.calls();
    let t = tally(&calls);
    let ok = t.reads;
    let per_minute = ok as f64 * 60.0 / seconds as f64;
    Ok(format!(
        "| 3 | {budget}/min | {seconds} s | {ok} ({:?}) | {:.1}/min | {:.3} | {} |",
        per_replica,
        per_minute,
        per_minute / f64::from(budget),
        t.limited
    ))
}

/// Joiners at the real invite budget: how long until every invite is out.
async fn invites(scratch: &mut Scratch, n: usize) -> Result<String> {
    let org = Org::start(
        scratch.journal().await?,
        base_seed(),
        &rules_two_workspaces(),
    )
    .await?;
    let hires: Vec<LifecycleEvent> = (0..n)
        .map(|i| {
            event(
                "person.hired",
                &format!("I{i}"),
                &format!("i{i}@acme.test"),
                "Engineering",
                0,
            )
        })
        .collect();
    org.deliver(&hires).await?;
    let started = org.clock.now();
    org.settle().await?;
    let calls = org.calls();
    let creates: Vec<&CallRecord> = calls
        .iter()
        .filter(|c| c.route == Some("invites.create") && c.status < 300)
        .collect();
    ensure!(creates.len() == n, "{} invites of {n}", creates.len());
    let last = creates
        .last()
        .and_then(|c| DateTime::parse_from_rfc3339(&c.at).ok())
        .map(|t| t.with_timezone(&Utc))
        .context("no invite time")?;
    let took = (last - started).num_seconds() as f64;
    let bound = n as f64 / 1200.0 * 3600.0;
    Ok(format!(
        "| {n} | 1,200/h | {:.1} min | {:.1} min | {:.3} | {} |",
        took / 60.0,
        bound / 60.0,
        took / bound,
        tally(&calls).limited
    ))
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let mode = Mode::from_args();
    let mut scratch = Scratch::new().await?;
    let run = async {
        if mode.wants("joiners") {
            let n = mode.size(200, 100, 10);
            println!(
                "\n### joiners\n\n| joiners | calls/joiner | writes/joiner | reads/joiner | calls / unavoidable writes | calls/joiner to invite (reads) | 429s |\n|---:|---:|---:|---:|---:|---:|---:|"
            );
            println!("{}", joiners(&mut scratch, n).await?);
        }
        if mode.wants("drift") {
            let (m, w) = (mode.size(10_000, 2_000, 300), mode.size(20, 20, 3));
            println!(
                "\n### drift\n\n| members | workspaces | pages | reads | reads/pages | writes | run time |\n|---:|---:|---:|---:|---:|---:|---:|"
            );
            println!("{}", drift(&mut scratch, m, w).await?);
        }
        if mode.wants("preview") {
            let (m, w) = (mode.size(10_000, 2_000, 300), mode.size(20, 20, 3));
            println!(
                "\n### preview (`keycard plan --all`)\n\n| people | workspaces | people changed | role changes | run time |\n|---:|---:|---:|---:|---:|"
            );
            println!("{}", preview(&mut scratch, m, w).await?);
        }
        if mode.wants("acceptance") {
            let n = mode.size(2_000, 500, 20);
            println!(
                "\n### acceptance\n\n| pending invites | reads/min while waiting | noticed after | 429s |\n|---:|---:|---:|---:|"
            );
            println!("{}", acceptance(&mut scratch, n).await?);
        }
        if mode.wants("replicas") {
            let s = mode.size(120, 20, 3) as u64;
            println!(
                "\n### replicas\n\n| replicas | budget | run | calls answered (per replica) | throughput | of budget | 429s |\n|---:|---:|---:|---:|---:|---:|---:|"
            );
            println!("{}", replicas(&mut scratch, s).await?);
        }
        if mode.wants("invites") {
            let n = mode.size(1_000, 300, 20);
            println!(
                "\n### invites\n\n| joiners | invite budget | all invited after | bound | ratio | 429s |\n|---:|---:|---:|---:|---:|---:|"
            );
            println!("{}", invites(&mut scratch, n).await?);
        }
        Ok::<_, anyhow::Error>(())
    };
    let result = run.await;
    scratch.drop_all().await?;
    result
}
