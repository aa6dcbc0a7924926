//! The journal at scale: a generator seeding PostgreSQL with people, events and actions
//! (default 100,000 people, 2,000,000 events, 10,000,000 actions, with realistic status and
//! kind mixes), then the console's and the ops API's reads timed through the journal's own
//! functions, p50 / p95 / max over many runs with varied arguments, and one `EXPLAIN
//! (ANALYZE, BUFFERS)` of each printed for BENCHMARKS.md:
//!
//! - a person's timeline (`find_person` + `person_timeline`, the person page);
//! - action listings: unfiltered, by status (failed, held, needs_manual_action), by kind, by
//!   person, since a time (the actions page and `/api/v1/actions`);
//! - the overview's counts (`console_overview`).
//!
//! ```text
//! cargo bench --bench journal                                   # full size (needs ~6 GB of disk)
//! cargo bench --bench journal -- --people 10000 --events 200000 --actions 1000000
//! cargo bench --bench journal -- --keep                         # keep the database afterwards
//! cargo bench --bench journal -- --reuse keycard_journal_bench_N  # time a kept one again
//! ```
//!
//! `--keep` then `--reuse` separate the seeding (long, heavy on disk) from the timed reads,
//! so the reads can be timed when nothing else runs on the machine.
//!
//! Needs PostgreSQL (`DATABASE_URL`). Under `cargo test` a small smoke runs.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use chrono::{DateTime, Utc};
use hdrhistogram::Histogram;
use keycard::journal::{Journal, JournalFilter};
use sqlx::postgres::PgPoolOptions;
use sqlx::{AssertSqlSafe, PgPool};

#[derive(Clone)]
struct Sizes {
    people: i64,
    events: i64,
    actions: i64,
    runs: usize,
    keep: bool,
    /// An already seeded (kept) database to time again instead of seeding a new one.
    reuse: Option<String>,
}

fn sizes() -> Sizes {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let bench = args.iter().any(|a| a == "--bench");
    let arg = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .and_then(|v| v.parse::<i64>().ok())
    };
    let (people, events, actions, runs) = if bench {
        (100_000, 2_000_000, 10_000_000, 200)
    } else {
        (1_000, 5_000, 20_000, 20)
    };
    Sizes {
        people: arg("--people").unwrap_or(people),
        events: arg("--events").unwrap_or(events),
        actions: arg("--actions").unwrap_or(actions),
        runs,
        keep: args.iter().any(|a| a == "--keep"),
        reuse: args
            .iter()
            .position(|a| a == "--reuse")
            .and_then(|i| args.get(i + 1))
            .cloned(),
    }
}

fn t0() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-12-01T00:00:00Z")
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_default()
}

/// Seeds in batches so progress shows and no statement holds everything at once.
async fn seed(pool: &PgPool, s: &Sizes) -> Result<()> {
    let started = Instant::now();
    // People: one in ten departed, a third with a linked account.
    sqlx::query(AssertSqlSafe(format!(
        "INSERT INTO people (id, source, source_person_id, email, email_key, attributes, status,
                             anthropic_user_id, created_at, updated_at)
         SELECT gen_random_uuid(), 'hr', 'E' || g, 'p' || g || '@acme.test', 'p' || g || '@acme.test',
                jsonb_build_object('department', (ARRAY['Engineering','Sales','Research','Finance'])[g % 4 + 1]),
                CASE WHEN g % 10 = 0 THEN 'departed' ELSE 'active' END,
                CASE WHEN g % 3 = 0 THEN 'user_' || g END,
                TIMESTAMPTZ '2024-01-01' + g * INTERVAL '5 minutes',
                TIMESTAMPTZ '2024-01-01' + g * INTERVAL '5 minutes'
         FROM generate_series(1, {}) g",
        s.people
    )))
    .execute(pool)
    .await?;
    eprintln!("people: {} in {:?}", s.people, started.elapsed());
    let batch = 1_000_000i64;
    let mut from = 1;
    while from <= s.events {
        let to = (from + batch - 1).min(s.events);
        sqlx::query(AssertSqlSafe(format!(
            "INSERT INTO events (id, source, dedupe_key, kind, person_source_id, person_id, email,
                                 email_key, occurred_at, received_at, order_key, status,
                                 body_sha256, payload, processed_at)
             SELECT gen_random_uuid(), 'hr', 'msg_' || g,
                    (ARRAY['hired','updated','updated','updated','departed'])[g % 5 + 1],
                    'E' || (g % {p} + 1), NULL, 'p' || (g % {p} + 1) || '@acme.test',
                    'p' || (g % {p} + 1) || '@acme.test',
                    TIMESTAMPTZ '2024-01-01' + g * INTERVAL '30 seconds',
                    TIMESTAMPTZ '2024-01-01' + g * INTERVAL '30 seconds',
                    TIMESTAMPTZ '2024-01-01' + g * INTERVAL '30 seconds',
                    'applied', md5(g::text), '{{\"type\":\"person.updated\"}}'::jsonb,
                    TIMESTAMPTZ '2024-01-01' + g * INTERVAL '30 seconds'
             FROM generate_series({from}, {to}) g",
            p = s.people
        )))
        .execute(pool)
        .await?;
        eprintln!("events: {to} in {:?}", started.elapsed());
        from = to + 1;
    }
    sqlx::query(
        "UPDATE events e SET person_id = p.id FROM people p
         WHERE p.source = e.source AND p.source_person_id = e.person_source_id",
    )
    .execute(pool)
    .await?;
    eprintln!("events linked in {:?}", started.elapsed());
    // Actions: mostly succeeded, a few failed, manual, held, waiting; spread over two years.
    let mut from = 1;
    while from <= s.actions {
        let to = (from + batch - 1).min(s.actions);
        sqlx::query(AssertSqlSafe(format!(
            "WITH ids AS (SELECT array_agg(id ORDER BY (substr(source_person_id, 2))::int) AS a FROM people)
             INSERT INTO actions (id, person_id, kind, params, rule, reason, status, attempts,
                                  response_status, request_id, outcome, error, created_at,
                                  started_at, finished_at, updated_at)
             SELECT gen_random_uuid(), ids.a[g % {p} + 1],
                    (ARRAY['create_invite','update_user_role','add_workspace_member','update_workspace_member',
                           'remove_workspace_member','remove_user','deactivate_api_key'])[g % 7 + 1],
                    jsonb_build_object('n', g % 13), 'engineering', 'the rules say so',
                    CASE WHEN g % 1000 = 1 THEN 'failed'
                         WHEN g % 1000 = 2 THEN 'needs_manual_action'
                         WHEN g % 100000 = 3 THEN 'held'
                         WHEN g % 1000 = 4 THEN 'waiting'
                         WHEN g % 20 = 5 THEN 'superseded'
                         ELSE 'succeeded' END,
                    1, 200, 'req_' || g, 'done', NULL,
                    TIMESTAMPTZ '2025-01-01' + g * INTERVAL '6 seconds',
                    TIMESTAMPTZ '2025-01-01' + g * INTERVAL '6 seconds',
                    TIMESTAMPTZ '2025-01-01' + g * INTERVAL '6 seconds' + INTERVAL '1 second',
                    TIMESTAMPTZ '2025-01-01' + g * INTERVAL '6 seconds' + INTERVAL '1 second'
             FROM generate_series({from}, {to}) g, ids",
            p = s.people
        )))
        .execute(pool)
        .await?;
        eprintln!("actions: {to} in {:?}", started.elapsed());
        from = to + 1;
    }
    sqlx::query(
        "INSERT INTO reconcile_jobs (person_id, due_at, reason)
                 SELECT id, now(), 'bench' FROM people WHERE status = 'active' LIMIT 500",
    )
    .execute(pool)
    .await?;
    sqlx::query("VACUUM ANALYZE").execute(pool).await?;
    eprintln!("seeded and analyzed in {:?}", started.elapsed());
    Ok(())
}

struct Stat {
    name: &'static str,
    hist: Histogram<u64>,
}

impl Stat {
    fn new(name: &'static str) -> Self {
        Self {
            name,
            hist: Histogram::new(3).unwrap(),
        }
    }
    fn record(&mut self, d: Duration) {
        self.hist.record(d.as_micros().max(1) as u64).unwrap();
    }
    fn row(&self) -> String {
        let ms = |us: u64| us as f64 / 1000.0;
        format!(
            "| {} | {} | {:.2} | {:.2} | {:.2} |",
            self.name,
            self.hist.len(),
            ms(self.hist.value_at_quantile(0.5)),
            ms(self.hist.value_at_quantile(0.95)),
            ms(self.hist.max())
        )
    }
}

fn filter(f: impl FnOnce(&mut JournalFilter)) -> JournalFilter {
    let mut x = JournalFilter {
        limit: 50,
        ..JournalFilter::default()
    };
    f(&mut x);
    x
}

async fn measure(journal: &Journal, s: &Sizes) -> Result<Vec<Stat>> {
    let mut stats = Vec::new();
    let person = |i: usize| format!("E{}", (i as i64 * 7919) % s.people + 1);

    let mut st = Stat::new("person page: find_person + person_timeline");
    for i in 0..s.runs {
        let mut c = journal.conn().await?;
        let t = Instant::now();
        let p = c.find_person(&person(i)).await?.context("person")?;
        let (_events, _actions) = c.person_timeline(&p).await?;
        st.record(t.elapsed());
    }
    stats.push(st);

    type MakeFilter<'a> = Box<dyn Fn(usize) -> JournalFilter + 'a>;
    let listings: Vec<(&'static str, MakeFilter<'_>)> = vec![
        (
            "actions: newest 50, no filter",
            Box::new(|_| filter(|_| {})),
        ),
        (
            "actions: status=failed",
            Box::new(|_| filter(|f| f.status = Some("failed".into()))),
        ),
        (
            "actions: status=held",
            Box::new(|_| filter(|f| f.status = Some("held".into()))),
        ),
        (
            "actions: status=needs_manual_action",
            Box::new(|_| filter(|f| f.status = Some("needs_manual_action".into()))),
        ),
        (
            "actions: kind=remove_user",
            Box::new(|_| filter(|f| f.kind = Some("remove_user".into()))),
        ),
        (
            "actions: status=failed, kind=remove_user",
            Box::new(|_| {
                filter(|f| {
                    f.status = Some("failed".into());
                    f.kind = Some("remove_user".into());
                })
            }),
        ),
        (
            "actions: person=E…",
            Box::new(move |i| {
                let p = person(i);
                filter(move |f| f.person = Some(p))
            }),
        ),
        (
            "actions: since=last 24 h",
            Box::new(|_| filter(|f| f.since = Some(t0() + chrono::Duration::days(300)))),
        ),
    ];
    for (name, make) in &listings {
        let mut st = Stat::new(name);
        for i in 0..s.runs {
            let f = make(i);
            let mut c = journal.conn().await?;
            let t = Instant::now();
            let page = c.list_actions(&f).await?;
            // And the next page, as the console's "Older →" asks for it.
            if let Some(cur) = page.next_cursor {
                let mut f2 = f.clone();
                f2.cursor = Some(cur);
                st.record(t.elapsed());
                let t = Instant::now();
                c.list_actions(&f2).await?;
                st.record(t.elapsed());
            } else {
                st.record(t.elapsed());
            }
        }
        stats.push(st);
    }

    let mut st = Stat::new("overview counts: console_overview");
    for _ in 0..s.runs {
        let mut c = journal.conn().await?;
        let t = Instant::now();
        c.console_overview(t0() + chrono::Duration::days(700))
            .await?;
        st.record(t.elapsed());
    }
    stats.push(st);
    Ok(stats)
}

async fn explain(pool: &PgPool, title: &str, sql: &str) -> Result<()> {
    let rows: Vec<(String,)> = sqlx::query_as(AssertSqlSafe(format!(
        "EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) {sql}"
    )))
    .fetch_all(pool)
    .await?;
    println!("\n#### {title}\n\n```text");
    for (line,) in rows {
        println!("{line}");
    }
    println!("```");
    Ok(())
}

#[tokio::main]
async fn main() -> Result<()> {
    let s = sizes();
    let admin_url = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let admin = PgPoolOptions::new()
        .max_connections(1)
        .connect(&admin_url)
        .await
        .with_context(|| format!("connect to {admin_url}"))?;
    let name = match &s.reuse {
        Some(name) => {
            anyhow::ensure!(
                name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
                "--reuse takes a database name"
            );
            name.clone()
        }
        None => {
            let name = format!("keycard_journal_bench_{}", std::process::id());
            sqlx::query(AssertSqlSafe(format!("CREATE DATABASE {name}")))
                .execute(&admin)
                .await?;
            name
        }
    };
    let mut url = url::Url::parse(&admin_url)?;
    url.set_path(&format!("/{name}"));
    let run = async {
        let journal = Journal::connect(url.as_str(), 4).await?;
        journal.migrate().await?;
        let pool = PgPoolOptions::new().max_connections(2).connect(url.as_str()).await?;
        if s.reuse.is_none() {
            seed(&pool, &s).await?;
        } else {
            // Indexes a newer migration added need statistics before they are timed.
            sqlx::query("ANALYZE").execute(&pool).await?;
        }
        // Warm the cache once, as a running service would be.
        measure(&journal, &Sizes { runs: 3, ..s.clone() }).await?;
        let stats = measure(&journal, &s).await?;
        println!(
            "\n### journal at scale: {} people, {} events, {} actions\n\n| query | runs | p50 ms | p95 ms | max ms |\n|---|---:|---:|---:|---:|",
            s.people, s.events, s.actions
        );
        for st in &stats {
            println!("{}", st.row());
        }
        let sel = "SELECT a.*, p.email AS person_email, p.source_person_id AS person_source_id FROM actions a JOIN people p ON p.id = a.person_id";
        explain(&pool, "person timeline: actions", "SELECT * FROM actions WHERE person_id = (SELECT id FROM people WHERE source_person_id = 'E4242') ORDER BY seq").await?;
        explain(&pool, "person timeline: events", "SELECT * FROM events WHERE source = 'hr' AND person_source_id = 'E4242' ORDER BY received_at, id").await?;
        explain(&pool, "actions: no filter", &format!("{sel} WHERE TRUE ORDER BY a.seq DESC LIMIT 51")).await?;
        explain(&pool, "actions: status=failed", &format!("{sel} WHERE TRUE AND a.status = 'failed' ORDER BY a.seq DESC LIMIT 51")).await?;
        explain(&pool, "actions: status=failed, kind=remove_user", &format!("{sel} WHERE TRUE AND a.status = 'failed' AND a.kind = 'remove_user' ORDER BY a.seq DESC LIMIT 51")).await?;
        explain(&pool, "actions: person", &format!("{sel} WHERE TRUE AND (p.source_person_id = 'E4242' OR p.id = NULL OR p.email_key = 'e4242') ORDER BY a.seq DESC LIMIT 51")).await?;
        explain(&pool, "overview: failed in 24 h", "SELECT count(*) FROM actions WHERE status = 'failed' AND finished_at >= now() - interval '24 hours'").await?;
        explain(&pool, "overview: manual", "SELECT count(*) FROM actions WHERE status = 'needs_manual_action'").await?;
        journal.close().await;
        pool.close().await;
        anyhow::Ok(())
    }
    .await;
    if !s.keep && s.reuse.is_none() {
        sqlx::query(AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
        )))
        .execute(&admin)
        .await?;
    } else {
        eprintln!("kept database {name}");
    }
    run
}
