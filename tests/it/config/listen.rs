//! The listeners over real loopback: one address for everything, or the ops API and
//! metrics on an address of their own and absent from the public one; host names resolved
//! when binding.

use std::net::SocketAddr;
use std::sync::Arc;

use keycard::app::Application;
use keycard::clock::SystemClock;

use super::{file, load};

const OPS_TOKEN: &str = "ops-token-0123456789abcdef";

struct Running {
    public: SocketAddr,
    ops: Option<SocketAddr>,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
    _dir: tempfile::TempDir,
}

async fn start(server: &str) -> Running {
    let dir = tempfile::tempdir().unwrap();
    let f = file(&format!(
        "[server]\n{server}\nops_token_env = \"OPS\"\n[journal]\ndata_dir = {:?}\n[[sources]]\nname = \"hr\"\nkind = \"keycard\"\nsecret_env = \"S\"\n",
        dir.path().display().to_string()
    ));
    let config = load(Some(&f.path), &[("OPS", OPS_TOKEN)]).unwrap();
    let app = Application::build(config, Arc::new(SystemClock))
        .await
        .unwrap();
    let public = app.local_addr().unwrap();
    let ops = app.ops_addr().transpose().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(app.run(async move {
        let _ = stopped.await;
    }));
    Running {
        public,
        ops,
        stop,
        task,
        _dir: dir,
    }
}

impl Running {
    async fn finish(self) {
        let _ = self.stop.send(());
        self.task.await.unwrap().unwrap();
    }
}

/// The status of `method path` on `addr`, with the ops token when `token`.
async fn status(addr: SocketAddr, method: &str, path: &str, token: bool) -> u16 {
    let client = reqwest::Client::new();
    let url = format!("http://{addr}{path}");
    let mut request = match method {
        "POST" => client
            .post(url)
            .header("content-type", "application/json")
            .body("{}"),
        _ => client.get(url),
    };
    if token {
        request = request.bearer_auth(OPS_TOKEN);
    }
    request.send().await.unwrap().status().as_u16()
}

#[tokio::test]
async fn one_listener_serves_everything() {
    let app = start("listen = \"localhost:0\"").await;
    assert!(app.public.ip().is_loopback(), "{}", app.public);
    assert_eq!(app.ops, None);
    let a = app.public;
    assert_eq!(status(a, "GET", "/healthz", false).await, 200);
    assert_eq!(status(a, "GET", "/readyz", false).await, 200);
    assert_eq!(status(a, "GET", "/api/v1/events", true).await, 200);
    assert_eq!(status(a, "GET", "/api/v1/events", false).await, 401);
    assert_eq!(status(a, "GET", "/metrics", false).await, 200);
    // An unsigned delivery reaches the webhook route (and is refused there).
    assert_eq!(status(a, "POST", "/webhooks/hr", false).await, 401);
    app.finish().await;
}

#[tokio::test]
async fn the_ops_api_and_metrics_can_have_their_own_listener() {
    let app = start("listen = \"127.0.0.1:0\"\nops_listen = \"localhost:0\"").await;
    let public = app.public;
    let ops = app.ops.unwrap();
    assert_ne!(public, ops);
    assert!(ops.ip().is_loopback(), "{ops}");

    // The public listener: webhooks and health, and nothing of the ops API, even with
    // the token.
    assert_eq!(status(public, "POST", "/webhooks/hr", false).await, 401);
    assert_eq!(status(public, "GET", "/healthz", false).await, 200);
    assert_eq!(status(public, "GET", "/api/v1/events", true).await, 404);
    assert_eq!(
        status(public, "POST", "/api/v1/actions/1/release", true).await,
        404
    );
    assert_eq!(status(public, "GET", "/metrics", false).await, 404);

    // The ops listener: the ops API behind its token, metrics and health; no webhooks.
    assert_eq!(status(ops, "GET", "/api/v1/events", true).await, 200);
    assert_eq!(status(ops, "GET", "/api/v1/events", false).await, 401);
    assert_eq!(status(ops, "GET", "/metrics", false).await, 200);
    assert_eq!(status(ops, "GET", "/healthz", false).await, 200);
    assert_eq!(status(ops, "GET", "/readyz", false).await, 200);
    assert_eq!(status(ops, "POST", "/webhooks/hr", false).await, 404);
    app.finish().await;
}

#[test]
fn the_same_fixed_address_twice_is_refused() {
    let f = file("[server]\nlisten = \"127.0.0.1:8080\"\nops_listen = \"127.0.0.1:8080\"\n");
    let err = load(Some(&f.path), &[]).unwrap_err();
    assert_eq!(err.key(), Some("server.ops_listen"), "{err}");
}

#[tokio::test]
async fn an_address_in_use_names_the_key() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let f = file(&format!(
        "[server]\nlisten = \"127.0.0.1:0\"\nops_listen = \"127.0.0.1:{port}\"\n[journal]\ndata_dir = {:?}\n",
        dir.path().display().to_string()
    ));
    let config = load(Some(&f.path), &[]).unwrap();
    let err = Application::build(config, Arc::new(SystemClock))
        .await
        .err()
        .unwrap_or_else(|| panic!("bound a port in use"))
        .to_string();
    assert!(
        err.starts_with(&format!(
            "cannot listen on 127.0.0.1:{port} (server.ops_listen):"
        )),
        "{err}"
    );
}
