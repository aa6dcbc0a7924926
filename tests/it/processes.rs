//! Whole `keycard serve` processes on one PostgreSQL journal, stopped the ways production
//! stops them: SIGTERM with a backlog and an Admin API answering 529 (the process must exit
//! within its grace and leave the work to the next one), and three replicas behind
//! round-robin delivery, one killed with SIGKILL and one stopped with SIGTERM mid-run
//! (nothing acknowledged is lost, no write is done twice, everyone converges, no 429).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failure should stop the test loudly

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail, ensure};
use keycard::admin_sim::{CallRecord, Fault, RunningSim, Seed, Simulator};
use keycard::clock::OffsetClock;
use keycard::sources::standard_webhooks::{MessageId, WebhookSecret, sign};
use serde_json::{Value, json};
use sqlx::PgPool;

use crate::support::process::wait_for;

const SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
const ADMIN_KEY: &str = "sk-ant-admin01-process-test";

async fn organization(requests_per_minute: u32) -> Result<RunningSim> {
    let seed: Seed = serde_json::from_value(json!({
        "admin_keys": [ADMIN_KEY],
        "users": [{ "email": "root@acme.test", "name": "Root", "role": "admin" }],
        "workspaces": [{ "name": "Engineering" }]
    }))?;
    let sim = Simulator::new(seed, Arc::new(OffsetClock::new()))?
        .spawn(([127, 0, 0, 1], 0).into())
        .await?;
    sim.sim
        .update_settings(&json!({ "rate_limit_per_minute": requests_per_minute }))?;
    Ok(sim)
}

/// The test's own database, as a URL a child process can open.
fn database_url(pool: &PgPool) -> Result<String> {
    let base = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let mut url = url::Url::parse(&base)?;
    let name = pool
        .connect_options()
        .get_database()
        .context("the test pool names no database")?
        .to_owned();
    url.set_path(&format!("/{name}"));
    Ok(url.to_string())
}

fn write_config(
    dir: &Path,
    db: &str,
    sim: &str,
    budget: u32,
    (grace, lease): (u64, u64),
) -> Result<PathBuf> {
    let path = dir.join("keycard.toml");
    std::fs::write(
        &path,
        format!(
            r#"
[[sources]]
name = "hr"
kind = "keycard"
secret_env = "HR_SECRET"

[server]
listen = "127.0.0.1:0"
shutdown_grace_secs = {grace}

[journal]
url = "{db}"

[admin_api]
admin_key_env = "ADMIN_KEY"
base_url = "{sim}"
requests_per_minute = {budget}

[reconciler]
lease_secs = {lease}
retry_base_secs = 1
invite_poll_secs = 5
idle_poll_ms = 50

[[rules]]
name = "engineering"
when = 'person.department == "Engineering"'
org_role = "developer"
"#
        ),
    )?;
    Ok(path)
}

struct Serve {
    child: Child,
    addr: String,
    name: String,
}

fn serve(config: &Path, name: &str) -> Result<Serve> {
    let dir = config.parent().context("config has a directory")?;
    let log = std::fs::File::create(dir.join(format!("{name}.log")))?;
    let mut child = Command::new(env!("CARGO_BIN_EXE_keycard"))
        .args(["serve", "--config"])
        .arg(config)
        .env_remove("KEYCARD_JOURNAL_URL")
        .env_remove("KEYCARD_LISTEN")
        .env("KEYCARD_LOG", "info")
        .env("HR_SECRET", SECRET)
        .env("ADMIN_KEY", ADMIN_KEY)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(log))
        .spawn()?;
    let addr = crate::support::process::listening_on(&mut child).context(name.to_owned())?;
    Ok(Serve {
        child,
        addr,
        name: name.to_owned(),
    })
}

impl Serve {
    fn signal(&self, signal: libc::c_int) -> Result<()> {
        let pid = libc::pid_t::try_from(self.child.id())?;
        // SAFETY: sending a signal to our own child process.
        ensure!(unsafe { libc::kill(pid, signal) } == 0, "kill failed");
        Ok(())
    }

    /// Waits for the process to exit; how long it took, and whether it exited 0.
    async fn exit_within(&mut self, limit: Duration) -> Result<(Duration, bool)> {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Ok((start.elapsed(), status.success()));
            }
            if start.elapsed() > limit {
                let _ = self.child.kill();
                bail!("{} still running {limit:?} after the signal", self.name);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn hire(id: &str) -> Value {
    json!({
        "type": "person.hired",
        "occurred_at": "2026-12-01T09:00:00Z",
        "person": {
            "id": id,
            "email": format!("{}@acme.test", id.to_lowercase()),
            "name": "New Starter",
            "department": "Engineering"
        }
    })
}

fn departure(id: &str) -> Value {
    json!({ "type": "person.departed", "occurred_at": "2026-12-01T12:00:00Z", "person": { "id": id } })
}

/// POSTs one signed delivery; the status, or `None` when nothing answered.
async fn deliver(http: &reqwest::Client, addr: &str, id: &str, event: &Value) -> Option<u16> {
    let body = event.to_string().into_bytes();
    let secret = WebhookSecret::parse(SECRET).ok()?;
    let ts = chrono::Utc::now().timestamp();
    let signature = sign(&secret, &MessageId::parse(id).ok()?, ts, &body);
    let resp = http
        .post(format!("{addr}/webhooks/hr"))
        .header("webhook-id", id)
        .header("webhook-timestamp", ts.to_string())
        .header("webhook-signature", signature)
        .header("content-type", "application/json")
        .body(body)
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .ok()?;
    Some(resp.status().as_u16())
}

/// Delivers to the next replica in turn, moving on when one does not acknowledge.
async fn send(
    http: &reqwest::Client,
    addrs: &[&str],
    next: &mut usize,
    id: &str,
    event: &Value,
) -> Result<()> {
    for _ in 0..addrs.len() * 3 {
        let addr = addrs[*next % addrs.len()];
        *next += 1;
        if deliver(http, addr, id, event).await == Some(202) {
            return Ok(());
        }
    }
    bail!("{id} was acknowledged by no replica")
}

fn successes(calls: &[CallRecord], route: &str) -> usize {
    calls
        .iter()
        .filter(|c| c.route == Some(route) && (200..300).contains(&c.status))
        .count()
}

fn pending_invites(sim: &RunningSim) -> HashSet<String> {
    sim.sim.state()["invites"]
        .as_array()
        .map(|all| {
            all.iter()
                .filter(|i| i["status"] == "pending")
                .filter_map(|i| i["email"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// SIGTERM while 40 joiners are queued and every invite answers 529: the process stops
/// within its grace (it does not sit out the backoff) and exits 0; the next process picks
/// the work up at once (the leases were given back, though they run for 10 minutes) and
/// every invite is sent exactly once.
#[sqlx::test(migrations = false)]
async fn sigterm_with_a_backlog_stops_within_the_grace_and_hands_the_work_on(
    pool: PgPool,
) -> Result<()> {
    let sim = organization(6_000).await?;
    sim.sim.inject(Fault {
        route: "invites.create".into(),
        status: 529,
        count: 1_000_000,
        apply: false,
        retry_after: None,
    })?;
    let dir = tempfile::tempdir()?;
    let grace = 5;
    // Long leases: work the stopped process held is picked up at once only if it gave it back.
    let config = write_config(
        dir.path(),
        &database_url(&pool)?,
        &sim.base_url(),
        6_000,
        (grace, 600),
    )?;
    let mut first = serve(&config, "first")?;
    let http = reqwest::Client::new();
    for n in 0..40 {
        let id = format!("msg_hire_{n}");
        let status = deliver(&http, &first.addr, &id, &hire(&format!("P{n}"))).await;
        assert_eq!(status, Some(202), "delivery {n}");
    }
    // Work is in flight: invites are being refused with 529 and retried.
    wait_for("529s", Duration::from_secs(30), || {
        sim.sim
            .calls()
            .iter()
            .filter(|c| c.route == Some("invites.create") && c.status == 529)
            .count()
            >= 3
    })
    .await?;

    first.signal(libc::SIGTERM)?;
    let (took, clean) = first.exit_within(Duration::from_secs(grace + 5)).await?;
    assert!(clean, "exit status 0 on SIGTERM");
    assert!(
        took < Duration::from_secs(grace),
        "stopped in {took:?}, more than the {grace} s grace"
    );
    let log = std::fs::read_to_string(dir.path().join("first.log"))?;
    assert!(log.contains("stopping"), "{log}");
    assert_eq!(successes(&sim.sim.calls(), "invites.create"), 0);

    // The organization recovers; the next process finds the work due, not leased.
    sim.sim.clear_faults();
    let started = Instant::now();
    let _second = serve(&config, "second")?;
    wait_for("40 invites", Duration::from_secs(60), || {
        pending_invites(&sim).len() == 40
    })
    .await?;
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "picked up at once, not after the 10-minute leases"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    let calls = sim.sim.calls();
    assert_eq!(
        successes(&calls, "invites.create"),
        40,
        "each invite sent once"
    );
    let events: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&pool)
        .await?;
    assert_eq!(events, 40, "every acknowledged delivery journaled");
    Ok(())
}

/// Three replicas on one journal behind round-robin delivery, at the organization's real
/// limit (the simulator's limit is the configured budget): one is killed with SIGKILL and
/// another stopped with SIGTERM while invites are going out. Every acknowledged delivery is
/// journaled, no invite is created or withdrawn twice, everyone converges, and the
/// organization never answers 429.
#[sqlx::test(migrations = false)]
async fn three_replicas_survive_a_kill_and_a_stop(pool: PgPool) -> Result<()> {
    let budget = 300;
    let sim = organization(budget).await?;
    let dir = tempfile::tempdir()?;
    // Short leases: what the killed replica held comes back when they lapse.
    let config = write_config(
        dir.path(),
        &database_url(&pool)?,
        &sim.base_url(),
        budget,
        (5, 10),
    )?;
    // The first creates the schema; the others start on it.
    let mut replicas = vec![serve(&config, "replica-0")?];
    replicas.push(serve(&config, "replica-1")?);
    replicas.push(serve(&config, "replica-2")?);
    let http = reqwest::Client::new();

    // Round-robin delivery, as a load balancer would; a sender retries a delivery that was
    // not acknowledged on the next replica.
    let mut acked = HashSet::new();
    let mut next = 0usize;
    let people = 60;
    for n in 0..people {
        let addrs: Vec<&str> = replicas.iter().map(|r| r.addr.as_str()).collect();
        let id = format!("msg_hire_{n}");
        send(&http, &addrs, &mut next, &id, &hire(&format!("P{n}"))).await?;
        acked.insert(id);
    }
    wait_for("the first invites", Duration::from_secs(60), || {
        successes(&sim.sim.calls(), "invites.create") >= 10
    })
    .await?;

    // Mid-run: one replica dies outright, another is stopped.
    replicas[0].signal(libc::SIGKILL)?;
    replicas[1].signal(libc::SIGTERM)?;
    let (took, clean) = replicas[1].exit_within(Duration::from_secs(10)).await?;
    assert!(clean && took < Duration::from_secs(5), "{took:?}");
    let _ = replicas[0].exit_within(Duration::from_secs(5)).await?;

    // Ten leave before accepting; deliveries now reach the last replica (and a restarted
    // one, as an orchestrator would bring it back).
    replicas[0] = serve(&config, "replica-0b")?;
    for n in 0..10 {
        let addrs = [replicas[0].addr.as_str(), replicas[2].addr.as_str()];
        let id = format!("msg_leave_{n}");
        send(&http, &addrs, &mut next, &id, &departure(&format!("P{n}"))).await?;
        acked.insert(id);
    }
    let expected: HashSet<String> = (10..people).map(|n| format!("p{n}@acme.test")).collect();
    // What the killed replica held is recovered when its 10-second leases lapse.
    wait_for(
        "the organization to converge",
        Duration::from_secs(120),
        || pending_invites(&sim) == expected,
    )
    .await?;

    let events: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&pool)
        .await?;
    assert_eq!(
        usize::try_from(events)?,
        acked.len(),
        "every acknowledged delivery journaled"
    );
    let calls = sim.sim.calls();
    // A leaver whose job was still waiting (on the killed replica's lease, say) when the
    // departure came never got an invite; every other person got exactly one, and every
    // leaver's invite was withdrawn exactly once: no write was done twice.
    let created = successes(&calls, "invites.create");
    let withdrawn = successes(&calls, "invites.delete");
    let stayers = people - 10;
    assert!(
        (stayers..=people).contains(&created),
        "{created} invites created for {people} hires"
    );
    assert_eq!(
        created - withdrawn,
        stayers,
        "{created} created, {withdrawn} withdrawn: each invite created and withdrawn once"
    );
    let pending = sim.sim.state()["invites"]
        .as_array()
        .map(|all| all.iter().filter(|i| i["status"] == "pending").count())
        .unwrap_or_default();
    assert_eq!(pending, stayers, "one pending invite per person who stays");
    assert_eq!(
        calls.iter().filter(|c| c.status == 429).count(),
        0,
        "the organization never answered 429"
    );
    Ok(())
}

/// A delivery wakes the idle workers: with a one-minute idle poll, a hire's invite goes out
/// as soon as the event is journaled, not at the next poll.
#[sqlx::test(migrations = false)]
async fn a_delivery_wakes_idle_workers_at_once(pool: PgPool) -> Result<()> {
    let sim = organization(6_000).await?;
    let dir = tempfile::tempdir()?;
    let config = write_config(
        dir.path(),
        &database_url(&pool)?,
        &sim.base_url(),
        6_000,
        (5, 60),
    )?;
    let text = std::fs::read_to_string(&config)?;
    std::fs::write(
        &config,
        text.replace("idle_poll_ms = 50", "idle_poll_ms = 60000"),
    )?;
    let serve = serve(&config, "idle")?;
    // Started, the organization read once, and idle: every loop is in its minute-long wait.
    wait_for("the first read", Duration::from_secs(30), || {
        successes(&sim.sim.calls(), "workspace_members.list") > 0
    })
    .await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let http = reqwest::Client::new();
    let status = deliver(&http, &serve.addr, "msg_wake", &hire("W1")).await;
    assert_eq!(status, Some(202));
    // Woken by the delivery: well before the next poll, a minute away.
    wait_for("the invite", Duration::from_secs(30), || {
        pending_invites(&sim).contains("w1@acme.test")
    })
    .await?;
    Ok(())
}
