//! Outbound traffic: the notices each sender sends (built and signed by the vendor modules)
//! and the endpoint handshakes, delivered over HTTP and reported back to the caller.

use std::time::Duration;

use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::error::SimError;
use super::model::Person;
use super::state::State;
use super::{Shared, bamboohr, graph, gusto, hibob, okta};
use crate::sender_api::SenderKind;

/// What happened to the person, in sender-neutral terms; each sender names it its own way
/// (docs/sender-sim.md has the table).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Created,
    /// Start date reached / account activated / onboarding finished.
    Joined,
    Updated,
    Terminated,
    Rehired,
    OnLeave,
    Returned,
    Deleted,
}

/// `POST /_sim/notify`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoticeRequest {
    /// The person's id (a deleted person's id still works).
    pub person: String,
    #[serde(default)]
    pub action: Option<Action>,
    /// The sender's own event type, verbatim; overrides the action's default type.
    #[serde(default)]
    pub event: Option<String>,
    /// Where to post; default the seed's `webhook.target` (Graph: each subscription's URL).
    #[serde(default)]
    pub target: Option<String>,
    /// Field names to report as changed; default those of the person's last change.
    #[serde(default)]
    pub changed_fields: Option<Vec<String>>,
}

impl NoticeRequest {
    pub fn new(person: impl Into<String>, action: Action) -> Self {
        Self {
            person: person.into(),
            action: Some(action),
            event: None,
            target: None,
            changed_fields: None,
        }
    }

    pub fn to(mut self, target: impl Into<String>) -> Self {
        self.target = Some(target.into());
        self
    }

    pub fn event(mut self, event: impl Into<String>) -> Self {
        self.event = Some(event.into());
        self
    }
}

/// The person a notice is about; `person` is `None` once the record is deleted.
pub(crate) struct Subject {
    pub id: String,
    pub person: Option<Person>,
}

/// One request to send.
pub(crate) struct Outgoing {
    pub url: String,
    pub method: Method,
    pub headers: Vec<(String, String)>,
    pub body: Option<Vec<u8>>,
    pub event: String,
}

/// How a delivery went.
#[derive(Debug, Clone, Serialize)]
pub struct Delivery {
    pub url: String,
    pub method: String,
    /// The sender's event type (or `verification` for a handshake).
    pub event: String,
    /// The JSON sent, if any.
    pub body: Value,
    /// Names of the headers sent (values may be secrets).
    pub header_names: Vec<String>,
    pub status: Option<u16>,
    /// The receiver's answer, truncated.
    pub response: String,
    pub error: Option<String>,
    /// Handshakes: whether the receiver answered as the sender requires.
    pub verified: Option<bool>,
}

impl Delivery {
    pub fn ok(&self) -> bool {
        self.status.is_some_and(|s| (200..300).contains(&s))
    }
}

pub(crate) fn target(state: &State, given: Option<String>) -> Result<String, SimError> {
    let url = given
        .or_else(|| state.webhook.target.clone())
        .ok_or_else(|| {
            SimError::invalid("no target: give one, or set webhook.target in the seed")
        })?;
    url::Url::parse(&url)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https"))
        .ok_or_else(|| SimError::invalid(format!("target {url:?} is not an http(s) URL")))?;
    Ok(url)
}

pub(crate) async fn notify(
    shared: &Shared,
    request: NoticeRequest,
) -> Result<Vec<Delivery>, SimError> {
    let now = shared.clock.now();
    let (outgoing, timeout) = {
        let inner = shared.lock();
        let state = &inner.state;
        let subject = match state.person(&request.person) {
            Some(p) => Subject {
                id: p.id.clone(),
                person: Some(p.clone()),
            },
            None if state.positions.contains_key(&request.person) => Subject {
                id: request.person.clone(),
                person: None,
            },
            None => return Err(SimError::not_found("person", &request.person)),
        };
        let action = request.action.unwrap_or(if subject.person.is_none() {
            Action::Deleted
        } else {
            Action::Updated
        });
        let changed = request.changed_fields.clone().unwrap_or_else(|| {
            subject
                .person
                .as_ref()
                .map(|p| p.changed.clone())
                .unwrap_or_default()
        });
        let notice = Notice {
            subject: &subject,
            action,
            event: request.event.as_deref(),
            changed: &changed,
            now,
        };
        let outgoing = match state.kind {
            SenderKind::Graph => graph::notices(state, &notice)?,
            kind => {
                let url = target(state, request.target.clone())?;
                match kind {
                    SenderKind::Gusto => gusto::notices(state, &notice, &url)?,
                    SenderKind::HiBob => hibob::notices(state, &notice, &url)?,
                    SenderKind::Okta => okta::notices(state, &notice, &url)?,
                    _ => bamboohr::notices(state, &notice, &url)?,
                }
            }
        };
        (
            outgoing,
            Duration::from_millis(state.settings.delivery_timeout_ms),
        )
    };
    let mut deliveries = Vec::with_capacity(outgoing.len());
    for out in outgoing {
        deliveries.push(send(&shared.http, out, timeout).await.0);
    }
    Ok(deliveries)
}

/// The inputs every vendor's notice builder takes.
pub(crate) struct Notice<'a> {
    pub subject: &'a Subject,
    pub action: Action,
    pub event: Option<&'a str>,
    pub changed: &'a [String],
    pub now: chrono::DateTime<chrono::Utc>,
}

pub(crate) async fn handshake(
    shared: &Shared,
    given: Option<String>,
) -> Result<Delivery, SimError> {
    let (out, expect, timeout) = {
        let inner = shared.lock();
        let state = &inner.state;
        let url = target(state, given)?;
        let (out, expect) = match state.kind {
            SenderKind::Gusto => (gusto::handshake(state, &url)?, None),
            SenderKind::Okta => {
                let (out, challenge) = okta::handshake(state, &url)?;
                (out, Some(challenge))
            }
            other => {
                return Err(SimError::invalid(format!(
                    "{other} has no endpoint handshake here{}",
                    if other == SenderKind::Graph {
                        " (Graph validates the URL when a subscription is created)"
                    } else {
                        ""
                    }
                )));
            }
        };
        (
            out,
            expect,
            Duration::from_millis(state.settings.delivery_timeout_ms),
        )
    };
    let (mut delivery, body) = send(&shared.http, out, timeout).await;
    delivery.verified = Some(match expect {
        // Okta requires `{"verification": "<the challenge>"}`.
        Some(challenge) => {
            delivery.ok()
                && serde_json::from_slice::<Value>(&body)
                    .ok()
                    .and_then(|v| v.get("verification").cloned())
                    == Some(Value::String(challenge))
        }
        None => delivery.ok(),
    });
    Ok(delivery)
}

/// Sends one request; returns the report and the raw answer body.
pub(crate) async fn send(
    http: &reqwest::Client,
    out: Outgoing,
    timeout: Duration,
) -> (Delivery, Vec<u8>) {
    let mut builder = http.request(out.method.clone(), &out.url).timeout(timeout);
    for (name, value) in &out.headers {
        builder = builder.header(name.as_str(), value.as_str());
    }
    let sent = out
        .body
        .as_deref()
        .and_then(|b| serde_json::from_slice::<Value>(b).ok())
        .unwrap_or(Value::Null);
    if let Some(body) = out.body {
        builder = builder.body(body);
    }
    let mut delivery = Delivery {
        url: out.url,
        method: out.method.to_string(),
        event: out.event,
        body: sent,
        header_names: out.headers.iter().map(|(k, _)| k.clone()).collect(),
        status: None,
        response: String::new(),
        error: None,
        verified: None,
    };
    match builder.send().await {
        Ok(response) => {
            delivery.status = Some(response.status().as_u16());
            match response.bytes().await {
                Ok(bytes) => {
                    delivery.response =
                        String::from_utf8_lossy(&bytes).chars().take(2000).collect();
                    return (delivery, bytes.to_vec());
                }
                Err(e) => delivery.error = Some(e.without_url().to_string()),
            }
        }
        Err(e) => delivery.error = Some(e.without_url().to_string()),
    }
    (delivery, Vec::new())
}

/// JSON body bytes plus the `content-type` header.
pub(crate) fn json_body(value: &Value) -> (Vec<u8>, (String, String)) {
    (
        value.to_string().into_bytes(),
        ("content-type".to_owned(), "application/json".to_owned()),
    )
}
