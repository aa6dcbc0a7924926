//! Server-side limits against slow and greedy clients (`[http]` in the config).
//!
//! Without them an idle, slow-header or slow-body socket stayed open forever and a declared
//! `Content-Length` of 99999999999999 was not refused up front. Now:
//!
//! * **Connection cap** (`max_connections`): past it, new connections wait in the kernel's
//!   backlog until one closes, instead of exhausting file descriptors.
//! * **Header read timeout** (`header_read_timeout_secs`): the whole request head must arrive
//!   within it (hyper's own timer), or the connection is closed.
//! * **Idle timeout** (`idle_timeout_secs`): a connection on which nothing is read or written
//!   for this long is closed: idle keep-alive sockets, and trickling bytes no faster than that.
//! * **Body read timeout** (`body_read_timeout_secs`): a request body must arrive whole within
//!   it (408 otherwise), however steadily it trickles.
//! * **Early 413**: a declared `Content-Length` over the largest body any route accepts is
//!   refused before a byte of the body is read.
//!
//! `/healthz` and well-behaved deliveries keep being served during a bounded slow-client
//! flood (tests/it/pipeline/hardening.rs, over real loopback sockets).

use std::future::Future as _;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, to_bytes};
use axum::extract::Request;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

use super::problem::Problem;

/// `[http]`: server limits, with defaults suited to a webhook receiver behind a proxy.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpLimits {
    /// The request line and headers must arrive within this many seconds.
    pub header_read_timeout_secs: u64,
    /// A request body must arrive whole within this many seconds.
    pub body_read_timeout_secs: u64,
    /// A connection with no bytes read or written for this many seconds is closed.
    pub idle_timeout_secs: u64,
    /// Connections served at once; more wait in the listen backlog.
    pub max_connections: usize,
}

impl Default for HttpLimits {
    fn default() -> Self {
        Self {
            header_read_timeout_secs: 10,
            body_read_timeout_secs: 30,
            idle_timeout_secs: 60,
            max_connections: 1024,
        }
    }
}

impl HttpLimits {
    pub fn header_read_timeout(&self) -> Duration {
        Duration::from_secs(self.header_read_timeout_secs.max(1))
    }

    pub fn body_read_timeout(&self) -> Duration {
        Duration::from_secs(self.body_read_timeout_secs.max(1))
    }

    pub fn idle_timeout(&self) -> Duration {
        Duration::from_secs(self.idle_timeout_secs.max(1))
    }

    pub fn max_connections(&self) -> usize {
        self.max_connections.max(1)
    }
}

/// What the body middleware needs.
#[derive(Debug, Clone, Copy)]
pub struct BodyLimits {
    /// The largest body accepted (`server.max_body_bytes`).
    pub max_bytes: usize,
    /// The largest under `/scim/` (SCIM documents may be larger).
    pub scim_max_bytes: usize,
    pub read_timeout: Duration,
}

/// Refuses a declared `Content-Length` over the limit before reading, and reads the body
/// whole within the body timeout (408 otherwise); the handler then gets it from memory.
pub async fn read_body(
    axum::extract::State(limits): axum::extract::State<BodyLimits>,
    request: Request,
    next: axum::middleware::Next,
) -> Response {
    let limit = if request.uri().path().starts_with("/scim/") {
        limits.scim_max_bytes
    } else {
        limits.max_bytes
    };
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u128>().ok());
    if declared.is_some_and(|n| n > limit as u128) {
        return too_large(limit).into_response();
    }
    let (parts, body) = request.into_parts();
    let bytes = match tokio::time::timeout(limits.read_timeout, to_bytes(body, limit)).await {
        Ok(Ok(bytes)) => bytes,
        Ok(Err(_)) => return too_large(limit).into_response(),
        Err(_) => {
            return Problem::new(
                StatusCode::REQUEST_TIMEOUT,
                "Request timeout",
                Some("body_timeout"),
                format!(
                    "the body did not arrive within {} s",
                    limits.read_timeout.as_secs()
                ),
            )
            .into_response();
        }
    };
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

fn too_large(limit: usize) -> Problem {
    Problem::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "Payload too large",
        Some("payload_too_large"),
        format!("the body exceeds {limit} bytes"),
    )
}

/// A socket that fails with `TimedOut` once nothing has been read or written on it for
/// `idle`. Progress only records when it happened (a clock read); the timer is moved only
/// when it fires early, so a busy connection does not re-arm a timer on every read and write.
pub struct IdleTimeout<S> {
    inner: S,
    idle: Duration,
    last_progress: Instant,
    deadline: Pin<Box<Sleep>>,
}

impl<S> IdleTimeout<S> {
    pub fn new(inner: S, idle: Duration) -> Self {
        Self {
            inner,
            idle,
            last_progress: Instant::now(),
            deadline: Box::pin(tokio::time::sleep(idle)),
        }
    }

    fn progress(&mut self) {
        self.last_progress = Instant::now();
    }

    /// Whether `idle` has passed since the last progress. A timer that fires while the
    /// connection has made progress since it was set is moved to `last_progress + idle`.
    fn expired(&mut self, cx: &mut Context<'_>) -> bool {
        loop {
            if self.deadline.as_mut().poll(cx).is_pending() {
                return false;
            }
            let due = self.last_progress + self.idle;
            if due <= Instant::now() {
                return true;
            }
            self.deadline.as_mut().reset(due);
        }
    }
}

fn timed_out() -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::TimedOut, "connection idle too long")
}

impl<S: AsyncRead + Unpin> AsyncRead for IdleTimeout<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(result) => {
                this.progress();
                Poll::Ready(result)
            }
            Poll::Pending if this.expired(cx) => Poll::Ready(Err(timed_out())),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for IdleTimeout<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_write(cx, buf) {
            Poll::Ready(result) => {
                this.progress();
                Poll::Ready(result)
            }
            Poll::Pending if this.expired(cx) => Poll::Ready(Err(timed_out())),
            Poll::Pending => Poll::Pending,
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

/// Serves `router` on `listener` with `limits` until `shutdown` resolves, then lets open
/// requests finish (at most the idle timeout).
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: axum::Router,
    limits: &HttpLimits,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use hyper_util::rt::{TokioIo, TokioTimer};
    use tower::ServiceExt as _;

    let permits = Arc::new(tokio::sync::Semaphore::new(limits.max_connections()));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout());
    let idle = limits.idle_timeout();
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            permit = permits.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of descriptors and the like: pause rather than spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let router = router.clone();
        let service =
            hyper::service::service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
                // The peer address reaches the ops API's guard: a sign-in proxy's identity
                // header is believed only from the proxy's addresses.
                let mut request = request.map(Body::new);
                request
                    .extensions_mut()
                    .insert(axum::extract::ConnectInfo(peer));
                router.clone().oneshot(request)
            });
        let connection =
            builder.serve_connection(TokioIo::new(IdleTimeout::new(stream, idle)), service);
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            let _ = connection.await;
            drop(permit);
        });
    }
    let _ = tokio::time::timeout(idle, graceful.shutdown()).await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    /// The idle clock restarts at every byte: a connection that makes progress within each
    /// idle period stays open past the first deadline, and is closed `idle` after its last
    /// byte. Only lower bounds on time are asserted (timers never fire early), so a loaded
    /// machine cannot make it fail.
    #[tokio::test]
    async fn idle_is_counted_from_the_last_progress() {
        let idle = Duration::from_millis(300);
        let (mut client, server) = tokio::io::duplex(64);
        let mut server = IdleTimeout::new(server, idle);
        let started = Instant::now();
        let writer = tokio::spawn(async move {
            for byte in [b"a", b"b"] {
                tokio::time::sleep(Duration::from_millis(200)).await;
                client.write_all(byte).await?;
            }
            // Open but silent from here on.
            tokio::time::sleep(Duration::from_secs(30)).await;
            Ok::<_, std::io::Error>(client)
        });
        let mut buf = [0u8; 1];
        for expected in [b'a', b'b'] {
            server.read_exact(&mut buf).await.unwrap();
            assert_eq!(buf[0], expected);
        }
        let err = tokio::time::timeout(Duration::from_secs(10), server.read(&mut buf))
            .await
            .expect("an idle connection is closed")
            .unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::TimedOut);
        // The second byte came at >= 400 ms; the close at >= 400 + 300 ms.
        assert!(
            started.elapsed() >= Duration::from_millis(700),
            "closed {:?} after the start, before `idle` had passed since the last byte",
            started.elapsed()
        );
        writer.abort();
    }
}
