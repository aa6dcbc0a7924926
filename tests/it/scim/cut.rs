//! An IdP that hangs up mid-request, then retries.
//!
//! A SCIM write stores a resource and journals what it means for the person. If the two
//! could be cut apart — the client's connection drops between them — the resource would be
//! stored with no event, and the IdP's retry would find it stored (`409` on a create, "no
//! change" on a patch) and never be journaled: a hire lost, a leaver keeping access. Here
//! each request is driven by hand and dropped at its 1st, 2nd, ... await point, until one
//! runs to the end; after every cut, the stored resource and the journal must agree, and
//! after the IdP's retry both must hold the change.

use std::future::Future;
use std::task::Poll;
use std::time::Duration;

use axum::body::Body;
use axum::http::Request;
use keycard::journal::{EventRow, JournalFilter};
use serde_json::{Value, json};
use tower::ServiceExt as _;

use super::{Scim, TOKEN, TestDb, okta_user};

/// Most await points a SCIM write is expected to have (a guard against a loop that never
/// ends, far above the real count).
const MAX_CUTS: usize = 400;

/// Polls `fut` until it has been pending `cuts` times, then drops it, as a client that
/// hangs up at that await point. `Some` when it finished before.
async fn cut_after<F: Future>(fut: F, cuts: usize) -> Option<F::Output> {
    let mut fut = std::pin::pin!(fut);
    let mut pending = 0;
    std::future::poll_fn(|cx| match fut.as_mut().poll(cx) {
        Poll::Ready(out) => Poll::Ready(Some(out)),
        Poll::Pending => {
            pending += 1;
            if pending >= cuts {
                Poll::Ready(None)
            } else {
                Poll::Pending
            }
        }
    })
    .await
}

fn request(method: &str, path: &str, body: Option<&Value>) -> Request<Body> {
    let builder = Request::builder()
        .method(method)
        .uri(format!("/scim/v2/okta{path}"))
        .header("host", "keycard.test")
        .header("authorization", format!("Bearer {TOKEN}"))
        .header("content-type", "application/scim+json");
    let body = body.map_or_else(Body::empty, |b| Body::from(b.to_string()));
    builder
        .body(body)
        .unwrap_or_else(|e| panic!("request: {e}"))
}

/// Sends a request through the router and drops it at its `cuts`-th await point. `true`
/// when it ran to the end first.
async fn send_cut(s: &Scim, method: &str, path: &str, body: Option<&Value>, cuts: usize) -> bool {
    let call = s.h.router.clone().oneshot(request(method, path, body));
    cut_after(call, cuts).await.is_some()
}

/// What is stored for a userName, and every event journaled for its address.
#[derive(Debug, Clone, PartialEq)]
struct Seen {
    /// (id, active) of the stored User.
    user: Option<(String, bool)>,
    /// (kind, person id) of each event.
    events: Vec<(String, String)>,
}

/// `id`: the User's id when the test knows it (a deletion's event names no address).
async fn seen(s: &Scim, email: &str, id: Option<&str>) -> Seen {
    let mut conn = s.h.db().await;
    let user = conn
        .scim_list("okta", "User")
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .into_iter()
        .find(|r| r.name == email)
        .map(|r| (r.id, r.resource["active"] != json!(false)));
    let mut rows: Vec<EventRow> = conn
        .list_events(&JournalFilter {
            email: Some(email.to_owned()),
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .data;
    if let Some(id) = id {
        let by_id = conn
            .list_events(&JournalFilter {
                person: Some(id.to_owned()),
                limit: 100,
                ..Default::default()
            })
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .data;
        for e in by_id {
            if !rows.iter().any(|r| r.id == e.id) {
                rows.push(e);
            }
        }
        rows.sort_by_key(|e| std::cmp::Reverse((e.received_at, e.id)));
    }
    let mut events: Vec<(String, String)> = rows
        .into_iter()
        .map(|e| (e.kind.to_string(), e.person_source_id.unwrap_or_default()))
        .collect();
    events.reverse();
    Seen { user, events }
}

/// Reads until two reads agree (a write still finishing in its own task may land between
/// the two tables' reads), then returns that state.
async fn settled(s: &Scim, email: &str, id: Option<&str>) -> Seen {
    let mut last = seen(s, email, id).await;
    for _ in 0..200 {
        tokio::time::sleep(Duration::from_millis(5)).await;
        let now = seen(s, email, id).await;
        if now == last {
            return now;
        }
        last = now;
    }
    panic!("the state of {email} never settled: {last:?}")
}

fn has(seen: &Seen, kind: &str) -> bool {
    let id = seen.user.as_ref().map(|(id, _)| id.as_str());
    seen.events
        .iter()
        .any(|(k, person)| k == kind && (id.is_none() || Some(person.as_str()) == id))
}

/// Creates a User as an IdP does (create; on `409`, the earlier attempt landed after all:
/// look it up), returning its id.
async fn created(s: &Scim, email: &str) -> String {
    let (st, user) = s
        .call(
            "okta",
            "POST",
            "/Users",
            Some(okta_user(email, "Sales", true)),
        )
        .await;
    match st {
        201 => user["id"].as_str().unwrap_or_default().to_owned(),
        409 => {
            let filter = format!("/Users?filter=userName%20eq%20%22{email}%22");
            let (st, list) = s.call("okta", "GET", &filter, None).await;
            assert_eq!(st, 200, "{list}");
            list["Resources"][0]["id"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        }
        _ => panic!("create {email}: {st} {user}"),
    }
}

pub async fn a_create_cut_at_any_await_point_is_whole_or_absent(db: TestDb) {
    let s = Scim::start(db).await;
    for cuts in 1..=MAX_CUTS {
        let email = format!("cut-create-{cuts}@acme.test");
        let body = okta_user(&email, "Sales", true);
        let finished = send_cut(&s, "POST", "/Users", Some(&body), cuts).await;
        let after_cut = settled(&s, &email, None).await;
        assert_eq!(
            after_cut.user.is_some(),
            has(&after_cut, "hired"),
            "cut at await point {cuts}: the stored User and the journal disagree: {after_cut:?}"
        );
        // The IdP retries as Okta does: look the userName up, create it if absent.
        if after_cut.user.is_none() {
            created(&s, &email).await;
        }
        let after_retry = settled(&s, &email, None).await;
        assert!(
            after_retry.user.is_some() && has(&after_retry, "hired"),
            "cut at await point {cuts}: after the retry the hire must be stored and journaled: {after_retry:?}"
        );
        if finished {
            return;
        }
    }
    panic!("a create never ran to the end within {MAX_CUTS} await points");
}

pub async fn a_deactivation_cut_at_any_await_point_is_journaled_or_not_stored(db: TestDb) {
    let s = Scim::start(db).await;
    let deactivate = json!({ "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                             "Operations": [{ "op": "replace", "value": { "active": false } }] });
    for cuts in 1..=MAX_CUTS {
        let email = format!("cut-patch-{cuts}@acme.test");
        let id = created(&s, &email).await;
        let path = format!("/Users/{id}");
        let finished = send_cut(&s, "PATCH", &path, Some(&deactivate), cuts).await;
        let after_cut = settled(&s, &email, None).await;
        let stored_inactive = after_cut.user.as_ref().is_some_and(|(_, active)| !active);
        assert_eq!(
            stored_inactive,
            has(&after_cut, "leave_started"),
            "cut at await point {cuts}: the stored User and the journal disagree: {after_cut:?}"
        );
        // The IdP sends the same PATCH again.
        let (st, _) = s
            .call("okta", "PATCH", &path, Some(deactivate.clone()))
            .await;
        assert_eq!(st, 200);
        let after_retry = settled(&s, &email, None).await;
        assert!(
            after_retry.user.as_ref().is_some_and(|(_, active)| !active)
                && has(&after_retry, "leave_started"),
            "cut at await point {cuts}: after the retry the suspension must be stored and journaled: {after_retry:?}"
        );
        if finished {
            return;
        }
    }
    panic!("a deactivation never ran to the end within {MAX_CUTS} await points");
}

pub async fn a_delete_cut_at_any_await_point_is_journaled_or_not_done(db: TestDb) {
    let s = Scim::start(db).await;
    for cuts in 1..=MAX_CUTS {
        let email = format!("cut-delete-{cuts}@acme.test");
        let id = created(&s, &email).await;
        let path = format!("/Users/{id}");
        let finished = send_cut(&s, "DELETE", &path, None, cuts).await;
        let after_cut = settled(&s, &email, Some(&id)).await;
        // `has` matches any person once the User is gone: look the departure up by id.
        let departed = after_cut
            .events
            .iter()
            .any(|(k, person)| k == "departed" && *person == id);
        assert_eq!(
            after_cut.user.is_none(),
            departed,
            "cut at await point {cuts}: the stored User and the journal disagree: {after_cut:?}"
        );
        let (st, _) = s.call("okta", "DELETE", &path, None).await;
        assert!(st == 204 || st == 404, "retried delete: {st}");
        let after_retry = settled(&s, &email, Some(&id)).await;
        assert!(
            after_retry.user.is_none()
                && after_retry
                    .events
                    .iter()
                    .any(|(k, person)| k == "departed" && *person == id),
            "cut at await point {cuts}: after the retry the deletion must be done and journaled: {after_retry:?}"
        );
        if finished {
            return;
        }
    }
    panic!("a delete never ran to the end within {MAX_CUTS} await points");
}

/// The measurement that found the defect, as a test: Users created and deactivated over
/// real loopback HTTP by a client that gives up after 1-20 ms, each retried as an IdP
/// retries. Every User stored is journaled as hired, every deactivation stored is journaled.
pub async fn idp_retries_after_client_timeouts_leave_nothing_unjournaled(db: TestDb) {
    let s = Scim::start(db).await;
    let impatient = |ms: u64| {
        reqwest::Client::builder()
            .timeout(Duration::from_millis(ms))
            .build()
            .unwrap_or_else(|e| panic!("{e}"))
    };
    let url = format!("{}/scim/v2/okta", s.h.base);
    let deactivate = json!({ "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                             "Operations": [{ "op": "replace", "value": { "active": false } }] });
    let people = 40_u64;
    for n in 0..people {
        let email = format!("impatient-{n}@acme.test");
        let timeout = 1 + n % 20;
        let _ = impatient(timeout)
            .post(format!("{url}/Users"))
            .bearer_auth(TOKEN)
            .header("content-type", "application/scim+json")
            .body(okta_user(&email, "Sales", true).to_string())
            .send()
            .await;
        // The retry: look it up, create it if absent.
        let id = match settled(&s, &email, None).await.user {
            Some((id, _)) => id,
            None => created(&s, &email).await,
        };
        let _ = impatient(timeout)
            .patch(format!("{url}/Users/{id}"))
            .bearer_auth(TOKEN)
            .header("content-type", "application/scim+json")
            .body(deactivate.to_string())
            .send()
            .await;
        let (st, _) = s
            .call(
                "okta",
                "PATCH",
                &format!("/Users/{id}"),
                Some(deactivate.clone()),
            )
            .await;
        assert_eq!(st, 200);
    }
    for n in 0..people {
        let email = format!("impatient-{n}@acme.test");
        let state = settled(&s, &email, None).await;
        assert!(
            state.user.as_ref().is_some_and(|(_, active)| !active),
            "{email}: {state:?}"
        );
        assert!(
            has(&state, "hired"),
            "{email}: hire not journaled: {state:?}"
        );
        assert!(
            has(&state, "leave_started"),
            "{email}: deactivation not journaled: {state:?}"
        );
    }
}
