//! The web console in headless Chromium, driven over WebDriver (Debian's `chromium` and
//! `chromium-driver`; `.ci/run` installs them): sign in, see the overview, find a person,
//! filter actions, release a held action with a reason and see the release journaled.
//! Every page is screenshotted into `$CARGO_TARGET_TMPDIR/console-screenshots` for review;
//! `KEYCARD_CONSOLE_DOCS=1` also refreshes `docs/console.png` (the README's picture).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use crate::harness;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use harness::*;
use serde_json::json;

const CHROMEDRIVER: &str = "chromedriver";

/// A chromedriver process on a free loopback port, killed on drop.
struct Driver {
    child: Child,
    url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn driver() -> Driver {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(std::env::var("KEYCARD_CHROMEDRIVER").unwrap_or(CHROMEDRIVER.into()))
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("chromedriver is needed for the console test (apt-get install chromium chromium-driver; .ci/run does): {e}")
        });
    let driver = Driver {
        child,
        url: format!("http://127.0.0.1:{port}"),
    };
    for _ in 0..100 {
        if reqwest::get(format!("{}/status", driver.url)).await.is_ok() {
            return driver;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("chromedriver did not start");
}

async fn browser(driver: &Driver) -> Client {
    let mut caps = serde_json::Map::new();
    let mut args = vec![
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1360,900",
        "--proxy-server=direct://",
        "--proxy-bypass-list=*",
    ];
    args.push("--no-first-run");
    let mut opts = json!({ "args": args });
    if let Ok(bin) = std::env::var("KEYCARD_CHROMIUM") {
        opts["binary"] = json!(bin);
    } else if std::path::Path::new("/usr/bin/chromium").exists() {
        opts["binary"] = json!("/usr/bin/chromium");
    }
    caps.insert("goog:chromeOptions".into(), opts);
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&driver.url)
        .await
        .unwrap_or_else(|e| panic!("chromium via chromedriver: {e}"))
}

fn shots_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("console-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn shot(c: &Client, name: &str) {
    let png = c.screenshot().await.unwrap();
    assert!(png.len() > 1000, "a real screenshot of {name}");
    let path = shots_dir().join(format!("{name}.png"));
    std::fs::write(&path, &png).unwrap();
    if name == "overview" && std::env::var("KEYCARD_CONSOLE_DOCS").is_ok() {
        std::fs::write(
            concat!(env!("CARGO_MANIFEST_DIR"), "/docs/console.png"),
            &png,
        )
        .unwrap();
    }
    eprintln!("screenshot: {}", path.display());
}

async fn click(c: &Client, css: &str) {
    c.find(Locator::Css(css))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
}

async fn type_in(c: &Client, css: &str, text: &str) {
    c.find(Locator::Css(css))
        .await
        .unwrap()
        .send_keys(text)
        .await
        .unwrap();
}

async fn path(c: &Client) -> String {
    c.current_url().await.unwrap().path().to_owned()
}

async fn text(c: &Client, css: &str) -> String {
    // Waits for it: a click that submits a form returns before the next page is loaded.
    c.wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css(css))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

async fn joined(h: &Harness, id: &str, email: &str, dept: &str) {
    let (status, _) = h
        .deliver(&format!("msg_{id}_hire"), hire(id, email, dept, t0()))
        .await;
    assert_eq!(status, 202);
    h.settle().await;
    h.sim.sim.accept_invite_for(email).unwrap();
    h.advance(61);
    h.settle().await;
}

#[sqlx::test(migrations = false)]
async fn an_operator_signs_in_finds_a_person_and_releases_a_held_action(pool: sqlx::PgPool) {
    let toml = format!(
        "{RULES}\n[safety]\nmax_removals_per_hour = 1\nprotected_emails = [\"boss@acme.test\"]\n"
    );
    let h = Harness::start_with(pool, &toml, seed()).await;
    joined(&h, "C1", "c1@acme.test", "Sales").await;
    joined(&h, "C2", "c2@acme.test", "Sales").await;
    h.advance(10);
    for id in ["C1", "C2"] {
        h.deliver(
            &format!("leave_{id}"),
            event(
                "person.departed",
                id,
                keycard::clock::Clock::now(h.clock.as_ref()),
                json!({}),
            ),
        )
        .await;
    }
    // Someone hired under a protected address: a note for a human.
    h.deliver("msg_boss", hire("B1", "boss@acme.test", "Sales", t0()))
        .await;
    h.settle().await;
    let held: Vec<_> = h
        .actions("C2")
        .await
        .into_iter()
        .filter(|a| a.status.as_str() == "held")
        .collect();
    assert_eq!(held.len(), 1);

    let driver = driver().await;
    let c = browser(&driver).await;
    let run = async {
        // Signed out, the console sends you to sign in; a wrong token is refused.
        c.goto(&format!("{}/console/held", h.base)).await.unwrap();
        assert!(path(&c).await.ends_with("/console/login"));
        type_in(&c, "#token", "not-the-token").await;
        click(&c, "#sign-in").await;
        assert!(text(&c, "#login-error").await.contains("not an operator"));
        shot(&c, "login").await;
        type_in(&c, "#token", OPS_TOKEN).await;
        click(&c, "#sign-in").await;
        // Back where we were going: the held page.
        text(&c, "#who").await;
        assert_eq!(path(&c).await, "/console/held");

        c.goto(&format!("{}/console", h.base)).await.unwrap();
        let overview = text(&c, "#overview").await;
        assert!(overview.contains("1\nheld for an operator"), "{overview}");
        assert!(overview.contains("need a human"), "{overview}");
        assert_eq!(text(&c, "#who").await, "ops");
        shot(&c, "overview").await;

        // Find a person and open their page.
        c.goto(&format!("{}/console/people", h.base)).await.unwrap();
        type_in(&c, "#q", "c2@acme").await;
        click(&c, "#search").await;
        let results = text(&c, "#results").await;
        assert!(
            results.contains("c2@acme.test") && !results.contains("c1@acme.test"),
            "{results}"
        );
        shot(&c, "people-search").await;
        c.find(Locator::LinkText("c2@acme.test"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        let person = text(&c, "#person").await;
        assert!(
            person.contains("C2") && person.contains("departed"),
            "{person}"
        );
        let timeline = text(&c, "#timeline").await;
        assert!(
            timeline.contains("held") && timeline.contains("departed"),
            "{timeline}"
        );
        assert!(text(&c, "#desired").await.contains("Basis"));
        shot(&c, "person").await;

        // The actions list, filtered.
        c.goto(&format!(
            "{}/console/actions?status=succeeded&kind=create_invite",
            h.base
        ))
        .await
        .unwrap();
        let listed = text(&c, "table.actions").await;
        assert!(
            listed.contains("c1@acme.test") && listed.contains("c2@acme.test"),
            "{listed}"
        );
        assert!(!listed.contains("remove_user"), "{listed}");
        shot(&c, "actions").await;

        c.goto(&format!("{}/console/manual", h.base)).await.unwrap();
        assert!(text(&c, "table.actions").await.contains("boss@acme.test"));
        shot(&c, "manual").await;
        click(&c, "input[name='id']").await;
        type_in(&c, "#note", "boss stays admin; checked with IT (IT-77)").await;
        click(&c, "#resolve").await;
        assert!(text(&c, "#flash").await.contains("resolved 1 action(s)"));
        assert!(!text(&c, "main").await.contains("boss@acme.test"));
        c.goto(&format!("{}/console/alerts", h.base)).await.unwrap();
        let alerts = text(&c, "#alerts").await;
        assert!(
            alerts.contains("action.held") && alerts.contains("cap.reached"),
            "{alerts}"
        );
        shot(&c, "alerts").await;

        // Release needs a reason (the browser will not submit without one) and a selection.
        c.goto(&format!("{}/console/held", h.base)).await.unwrap();
        shot(&c, "held").await;
        c.find(Locator::Css(&format!(
            "input[name='id'][value='{}']",
            held[0].id
        )))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
        click(&c, "#release").await;
        assert_eq!(
            path(&c).await,
            "/console/held",
            "not submitted without a reason"
        );
        type_in(&c, "#reason", "confirmed with HR: C2 left on the 28th").await;
        click(&c, "#release").await;
        assert!(text(&c, "#flash").await.contains("released 1 action(s)"));
        shot(&c, "held-released").await;
    };
    run.await;
    c.close().await.unwrap();

    // Journaled: released, by whom and why.
    let released = h.db().await.action(held[0].id).await.unwrap();
    assert_eq!(released.status.as_str(), "released");
    let outcome = released.outcome.unwrap_or_default();
    assert!(
        outcome.contains("ops") && outcome.contains("confirmed with HR"),
        "{outcome}"
    );
    // Both writes are on the operator log with the operator's name, "console" and the reason.
    let log = h
        .db()
        .await
        .list_operator_log(&keycard::journal::OperatorLogFilter {
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    let text = format!("{log:?}");
    assert!(
        text.contains("confirmed with HR") && text.contains("IT-77") && text.contains("console"),
        "{text}"
    );
}
