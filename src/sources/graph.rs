//! Microsoft Graph change notifications on `users` (inbound-sources §2; how Entra tenants
//! announce changes).
//!
//! * Validation: when a subscription is created Graph POSTs to the notification URL (and
//!   the lifecycle URL) with `?validationToken=...` and no signature; Keycard answers
//!   `200 text/plain` with the decoded token ([`Graph::validate`]), bounded in length and
//!   never logged.
//! * Authentication: every notification carries the subscription's `clientState`, which
//!   Keycard set when it created the subscription: it is the source's secret, compared in
//!   constant time. Graph's guidance is not to process a notification whose `clientState`
//!   does not match; a batch where none matches is refused (401) and nothing is journaled,
//!   and in a mixed batch only the matching notifications are kept (the others are counted
//!   in the log, never journaled), so a forged entry cannot hold back genuine ones.
//! * Resource notifications are thin: `changeType` (`created` / `updated` / `deleted`) and
//!   `resourceData.id`. Each becomes a [`Completeness::Notice`] event for that user id, one
//!   dedupe key per notification; `deleted` means the user object was deleted, a departure.
//!   The enrichment step reads `/users/{id}` for the rest. Rich notifications are not used.
//! * Lifecycle notifications (`lifecycleEvent`) are journaled as ignored notices saying what
//!   Keycard does about them, and handed to the subscription upkeep
//!   ([`super::graph_subscription`]) through the adapter's [`LifecycleInbox`]:
//!   `reauthorizationRequired` renews now, `subscriptionRemoved` recreates, `missed` asks
//!   for a full resync of the source.
//! * Graph retries what is not answered 2xx within a few seconds and marks slow endpoints:
//!   Keycard answers 202 within [`DEADLINE`] or 503.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Map, Value};
use url::Url;

use super::payload::{self, body_key, key};
use super::signing::{MAX_ACTIVE_SECRETS, matching_static_secret};
use super::{AuthError, Delivery, Kind, Outcome, PayloadError, Rejection, Source};
use crate::ingest::{Completeness, EventKind, LifecycleEvent, Origin, PersonAttributes, Record};
use crate::settings::ConfigError;

/// Answer (202 or 503) well inside the few seconds Graph waits.
pub const DEADLINE: Duration = Duration::from_millis(2500);
/// Longest validation token echoed (Graph's are about 120 characters).
pub const MAX_VALIDATION_TOKEN: usize = 1024;
/// Graph refuses a `clientState` longer than this.
pub const MAX_CLIENT_STATE: usize = 128;
/// The clientState is the only thing that authenticates a notification: no short ones.
pub const MIN_CLIENT_STATE: usize = 16;
/// The resource Keycard subscribes to.
pub const RESOURCE: &str = "/users";
pub const CHANGE_TYPES: &str = "created,updated,deleted";

/// The `[[sources]]` keys of a `graph` source, as written.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Options {
    /// The public URL Graph posts notifications to: `https://<host>/webhooks/<name>`.
    pub notification_url: Option<String>,
    /// Where lifecycle notifications go (default: the notification URL).
    pub lifecycle_notification_url: Option<String>,
}

/// Validated options of a `graph` source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub notification_url: Url,
    pub lifecycle_notification_url: Url,
}

impl Settings {
    pub fn from_config(raw: &Options, key: &str) -> Result<Self, ConfigError> {
        let notification_url = match raw.notification_url.as_deref() {
            Some(text) => public_url(text, &format!("{key}.notification_url"))?,
            None => {
                return Err(ConfigError::invalid(
                    format!("{key}.notification_url"),
                    "a graph source needs the public https URL Graph posts to, e.g. notification_url = \"https://keycard.example.com/webhooks/entra\"",
                ));
            }
        };
        let lifecycle_notification_url = match raw.lifecycle_notification_url.as_deref() {
            Some(text) => public_url(text, &format!("{key}.lifecycle_notification_url"))?,
            None => notification_url.clone(),
        };
        Ok(Self {
            notification_url,
            lifecycle_notification_url,
        })
    }
}

/// Graph only calls https URLs; plain http is accepted for loopback (tests, the simulator).
fn public_url(text: &str, at: &str) -> Result<Url, ConfigError> {
    let url =
        Url::parse(text.trim()).map_err(|e| ConfigError::invalid(at, format!("{text:?}: {e}")))?;
    let loopback = match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    };
    match url.scheme() {
        _ if url.fragment().is_some() || url.cannot_be_a_base() => Err(ConfigError::invalid(
            at,
            "must be a plain https URL without a fragment",
        )),
        "https" => Ok(url),
        "http" if loopback => Ok(url),
        _ => Err(ConfigError::invalid(
            at,
            "Microsoft Graph delivers only to https URLs reachable from the internet",
        )),
    }
}

/// A lifecycle notification Keycard acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Lifecycle {
    /// Renew (reauthorize) the subscription now.
    ReauthorizationRequired,
    /// The subscription is gone: create it again.
    SubscriptionRemoved,
    /// Notifications were lost: read the whole directory again.
    Missed,
}

impl Lifecycle {
    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "reauthorizationRequired" => Self::ReauthorizationRequired,
            "subscriptionRemoved" => Self::SubscriptionRemoved,
            "missed" => Self::Missed,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::ReauthorizationRequired => "reauthorizationRequired",
            Self::SubscriptionRemoved => "subscriptionRemoved",
            Self::Missed => "missed",
        }
    }

    /// What Keycard does about it, for the journal.
    fn consequence(self) -> &'static str {
        match self {
            Self::ReauthorizationRequired => "Keycard renews the subscription now",
            Self::SubscriptionRemoved => "Keycard creates the subscription again",
            Self::Missed => {
                "some change notifications were lost; a full resync of this source is requested"
            }
        }
    }
}

/// One authenticated lifecycle notification, for the upkeep.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LifecycleSignal {
    pub event: Lifecycle,
    pub subscription_id: Option<String>,
    pub received_at: DateTime<Utc>,
}

/// Lifecycle notifications received by the adapter and not yet acted on by the upkeep.
/// In memory: the notification itself is journaled (as an ignored notice) in the same
/// delivery, and a process that stops before acting renews on its next pass anyway.
#[derive(Debug, Default)]
pub struct LifecycleInbox {
    pending: Mutex<Vec<LifecycleSignal>>,
    wake: tokio::sync::Notify,
}

impl LifecycleInbox {
    fn push(&self, signal: LifecycleSignal) {
        self.pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(signal);
        self.wake.notify_one();
    }

    /// Everything pending, oldest first; the inbox is empty afterwards.
    pub fn take(&self) -> Vec<LifecycleSignal> {
        std::mem::take(&mut *self.pending.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// Resolves when a signal arrives (or one arrived since the last wait).
    pub async fn notified(&self) {
        self.wake.notified().await;
    }
}

#[derive(Clone)]
pub struct Graph {
    settings: Settings,
    /// The clientState values: current first, then the one being rotated out.
    secrets: Vec<SecretString>,
    /// The Entra tenant of `[sources.api]`: notifications from another are not ours.
    tenant: Option<String>,
    inbox: Arc<LifecycleInbox>,
}

impl std::fmt::Debug for Graph {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Graph")
            .field("settings", &self.settings)
            .field("secrets", &self.secrets.len())
            .field("tenant", &self.tenant)
            .finish()
    }
}

impl Graph {
    pub fn build(source: &Source, settings: Settings) -> Result<Self, ConfigError> {
        let Some(api) = source.api.as_ref() else {
            return Err(ConfigError::invalid(
                format!("{}.api", source.key),
                "a graph source needs [sources.api] (tenant, client_id, token_env = the client secret): Keycard creates and renews its subscription and reads users through it",
            ));
        };
        if source.secrets.is_empty() || source.secrets.len() > MAX_ACTIVE_SECRETS {
            return Err(source.secret_error(0, "a graph source needs 1 or 2 secrets"));
        }
        for (i, s) in source.secrets.iter().enumerate() {
            let len = s.expose_secret().len();
            if len < MIN_CLIENT_STATE || s.expose_secret().trim().len() != len {
                return Err(source.secret_error(
                    i,
                    format!(
                        "the clientState must be at least {MIN_CLIENT_STATE} characters without surrounding spaces (try: openssl rand -hex 32)"
                    ),
                ));
            }
            if len > MAX_CLIENT_STATE || s.expose_secret().chars().any(char::is_control) {
                return Err(source.secret_error(
                    i,
                    format!(
                        "it is Graph's clientState: at most {MAX_CLIENT_STATE} printable characters (try: openssl rand -hex 32)"
                    ),
                ));
            }
        }
        Ok(Self {
            settings,
            secrets: source.secrets.clone(),
            tenant: api.config.tenant.clone(),
            inbox: Arc::new(LifecycleInbox::default()),
        })
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The clientState Keycard sets on new subscriptions (the current secret).
    pub fn client_state(&self) -> Option<&SecretString> {
        self.secrets.first()
    }

    /// Where lifecycle notifications wait for the upkeep.
    pub fn inbox(&self) -> &Arc<LifecycleInbox> {
        &self.inbox
    }

    /// `?validationToken=...`: the decoded token, to be echoed as text. `None` when the
    /// query has none (an ordinary notification).
    pub fn validate(&self, query: Option<&str>) -> Option<Result<String, Rejection>> {
        let mut tokens = url::form_urlencoded::parse(query?.as_bytes())
            .filter(|(k, _)| k == "validationToken")
            .map(|(_, v)| v.into_owned());
        let token = tokens.next()?;
        let refuse =
            |problem: String| Some(Err(PayloadError::new("validationToken", problem).into()));
        if tokens.next().is_some() {
            return refuse("given more than once".into());
        }
        if token.is_empty()
            || token.len() > MAX_VALIDATION_TOKEN
            || token.chars().any(char::is_control)
        {
            return refuse(format!(
                "must be 1 to {MAX_VALIDATION_TOKEN} printable characters"
            ));
        }
        Some(Ok(token))
    }

    pub fn receive(&self, d: &Delivery<'_>) -> Result<Outcome, Rejection> {
        let doc = payload::object(d.body)?;
        let items = match doc.get("value") {
            Some(Value::Array(items)) if !items.is_empty() => items,
            Some(Value::Array(_)) => return Err(PayloadError::new("value", "is empty").into()),
            Some(other) => {
                return Err(PayloadError::new(
                    "value",
                    format!("expected an array, got {}", payload::json_type(other)),
                )
                .into());
            }
            None => return Err(PayloadError::missing("value").into()),
        };
        // Authenticate every notification before looking at any of them.
        let matched: Vec<(usize, usize, &Map<String, Value>)> = items
            .iter()
            .enumerate()
            .filter_map(|(i, item)| {
                let item = item.as_object()?;
                let state = payload::opt_str(item.get("clientState"))?;
                matching_static_secret(state, &self.secrets).map(|k| (i, k, item))
            })
            .collect();
        let Some(key_index) = matched.iter().map(|(_, k, _)| *k).min() else {
            return Err(AuthError::SecretMismatch("value[].clientState".into()).into());
        };
        let dropped = items.len() - matched.len();
        if dropped > 0 {
            // Not journaled: a forger must not be able to write to the journal.
            tracing::warn!(
                source = %crate::telemetry::escape(d.source),
                dropped,
                kept = matched.len(),
                "graph notifications whose clientState matches no secret were discarded"
            );
        }
        let batch = body_key(d.body);
        let records = matched
            .into_iter()
            .map(|(i, _, item)| self.map(d, i, item, &batch))
            .collect();
        Ok(Outcome::Accepted { key_index, records })
    }

    fn map(
        &self,
        d: &Delivery<'_>,
        index: usize,
        item: &Map<String, Value>,
        batch: &str,
    ) -> Record {
        let text = |name: &str| payload::opt_str(item.get(name));
        let subscription = text("subscriptionId").map(str::to_owned);
        let resource_data = item.get("resourceData").and_then(Value::as_object);
        let user_id = resource_data
            .and_then(|r| payload::opt_str(r.get("id")))
            .or_else(|| text("resource").and_then(user_of_resource))
            .map(str::to_owned);
        let change = text("changeType");
        let lifecycle = text("lifecycleEvent");
        // One key per notification: Graph's id when it sends one; else what identifies the
        // change (a retry of the same notification repeats all of it).
        let delivery_id = match (text("id"), &subscription, &user_id, resource_data) {
            (Some(id), ..) => id.to_owned(),
            (None, Some(sub), Some(user), Some(r)) if r.get("sequenceNumber").is_some() => {
                format!(
                    "{sub}/{}/{user}/{}",
                    change.or(lifecycle).unwrap_or_default(),
                    r.get("sequenceNumber")
                        .map(Value::to_string)
                        .unwrap_or_default()
                )
            }
            _ => format!("{batch}#{index}"),
        };
        let dedupe = key(d.source, delivery_id);
        let ignore = |event_type: Option<&str>, person: Option<String>, reason: String| -> Record {
            payload::ignored(
                dedupe.clone(),
                event_type,
                person,
                d.received_at,
                d.received_at,
                d.body,
                reason,
            )
            .into()
        };
        let tenant = text("tenantId").map(str::to_owned);
        if let (Some(ours), Some(theirs)) = (&self.tenant, &tenant)
            && !ours.eq_ignore_ascii_case(theirs)
        {
            return ignore(
                change.or(lifecycle),
                user_id,
                format!(
                    "tenant {:?} is not this source's tenant",
                    payload::truncate(theirs)
                ),
            );
        }

        if let Some(name) = lifecycle {
            let event_type = format!("lifecycle.{}", payload::truncate(name));
            let sub = subscription.as_deref().unwrap_or("(unnamed)");
            let Some(event) = Lifecycle::parse(name) else {
                return ignore(
                    Some(&event_type),
                    None,
                    format!(
                        "Graph lifecycle notification {event_type} for subscription {} is not handled",
                        payload::truncate(sub)
                    ),
                );
            };
            self.inbox.push(LifecycleSignal {
                event,
                subscription_id: subscription.clone(),
                received_at: d.received_at,
            });
            return ignore(
                Some(&event_type),
                None,
                format!(
                    "Graph lifecycle notification {} for subscription {}: {}",
                    event.as_str(),
                    payload::truncate(sub),
                    event.consequence()
                ),
            );
        }

        let Some(change) = change else {
            return ignore(
                None,
                user_id,
                format!("unusable: value[{index}].changeType is missing"),
            );
        };
        let kind = match change {
            "created" => EventKind::Hired,
            "updated" => EventKind::Updated,
            // The user object was deleted in the directory: the person is gone.
            "deleted" => EventKind::Departed,
            other => {
                return ignore(
                    Some(other),
                    user_id,
                    format!(
                        "Graph changeType {:?} is not mapped",
                        payload::truncate(other)
                    ),
                );
            }
        };
        let is_user = text("resource").is_some_and(|r| user_of_resource(r).is_some())
            && resource_data
                .and_then(|r| payload::opt_str(r.get("@odata.type")))
                .is_none_or(|t| t.eq_ignore_ascii_case("#Microsoft.Graph.User"));
        if !is_user {
            return ignore(
                Some(change),
                None,
                format!(
                    "resource {:?} is not a user; Keycard subscribes to /users only",
                    payload::truncate(text("resource").unwrap_or_default())
                ),
            );
        }
        let id = match payload::person_id(
            user_id.as_ref().map(|s| Value::String(s.clone())).as_ref(),
            &format!("value[{index}].resourceData.id"),
        ) {
            Ok(id) => id,
            Err(e) => return ignore(Some(change), None, format!("unusable: {e}")),
        };
        let mut event = LifecycleEvent::new(
            dedupe,
            kind,
            PersonAttributes::new(id),
            d.received_at,
            d.received_at,
            d.received_at,
            d.body,
        );
        event.completeness = Completeness::Notice;
        event.sender_event_id = text("id").map(str::to_owned);
        let mut origin = Origin::new(format!("users.{change}"));
        origin.tenant = tenant;
        origin.batch_id = subscription;
        event.origin = Some(origin);
        event.into()
    }
}

/// `Users/{id}` (Graph capitalizes it) or `users/{id}` -> the id.
fn user_of_resource(resource: &str) -> Option<&str> {
    let rest = resource.trim_start_matches('/');
    let (head, id) = rest.split_once('/')?;
    (head.eq_ignore_ascii_case("users") && !id.is_empty() && !id.contains('/')).then_some(id)
}

impl Kind for Graph {
    const NAME: &'static str = "graph";
    const KEYS: &'static [&'static str] = &["notification_url", "lifecycle_notification_url"];
    const SIGNED_TIMESTAMP: bool = false;
    const SECRET_HINT: &'static str = "the clientState Keycard sets on its Graph subscription (a random value of 16 to 128 characters)";

    fn build(source: &Source) -> Result<Self, ConfigError> {
        let settings = Settings::from_config(&source.options()?, &source.key)?;
        Graph::build(source, settings)
    }

    fn receive(&self, delivery: &Delivery<'_>) -> Result<Outcome, Rejection> {
        Graph::receive(self, delivery)
    }

    fn validation(&self, query: Option<&str>) -> Option<Result<String, Rejection>> {
        self.validate(query)
    }

    fn deadline(&self) -> Option<Duration> {
        Some(DEADLINE)
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderMap;
    use serde_json::json;

    use super::*;
    use crate::ingest::IgnoredNotice;
    use crate::sources::config::{SourceConfig, load};

    const STATE: &str = "client-state-current-0123456789";
    const OLD: &str = "client-state-previous-987654321";
    const TENANT: &str = "0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9";

    fn loaded(text: &str) -> Result<Source, ConfigError> {
        #[derive(serde::Deserialize)]
        struct File {
            sources: Vec<SourceConfig>,
        }
        let file: File =
            toml::from_str(text).map_err(|e| ConfigError::invalid("toml", e.to_string()))?;
        let mut sources = load(
            &file.sources,
            &|k| match k {
                "CS" => Some(STATE.to_owned()),
                "OLD" => Some(OLD.to_owned()),
                "SHORT" => Some("tooshort".to_owned()),
                "TOK" => Some("graph-client-secret".to_owned()),
                _ => None,
            },
            &crate::sources::dates::LocalDates::default(),
        )?;
        sources
            .remove("entra")
            .ok_or_else(|| ConfigError::invalid("entra", "missing"))
    }

    /// A graph source with its current secret; the tests add `[sources.api]` and the rest.
    const ENTRA: &str = "[[sources]]\nname = \"entra\"\nkind = \"graph\"\nnotification_url = \"https://kc.example.com/webhooks/entra\"\nsecret_env = \"CS\"\n";
    const API: &str = "[sources.api]\ntenant = \"0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9\"\nclient_id = \"app\"\ntoken_env = \"TOK\"\n";

    fn graph() -> Graph {
        let text = format!("{ENTRA}previous_secret_env = \"OLD\"\n{API}");
        match loaded(&text).map(|s| s.adapter) {
            Ok(Some(crate::sources::Adapter::Graph(g))) => (*g).clone(),
            other => panic!("{other:?}"),
        }
    }

    fn at() -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000, 0).unwrap_or_default()
    }

    fn receive(g: &Graph, body: &Value) -> Result<Outcome, Rejection> {
        let bytes = body.to_string().into_bytes();
        g.receive(&Delivery {
            source: "entra",
            headers: &HeaderMap::new(),
            body: &bytes,
            received_at: at(),
        })
    }

    fn note(state: &str, change: &str, user: &str) -> Value {
        json!({
            "id": format!("n-{change}-{user}"),
            "subscriptionId": "sub-1",
            "subscriptionExpirationDateTime": "2027-01-01T00:00:00Z",
            "clientState": state,
            "changeType": change,
            "resource": format!("Users/{user}"),
            "tenantId": TENANT,
            "resourceData": {"@odata.type": "#Microsoft.Graph.User", "@odata.id": format!("Users/{user}"), "id": user, "organizationId": TENANT, "sequenceNumber": 3}
        })
    }

    fn records(result: Result<Outcome, Rejection>) -> (usize, Vec<Record>) {
        match result {
            Ok(Outcome::Accepted { key_index, records }) => (key_index, records),
            other => panic!("{other:?}"),
        }
    }

    fn ignored(record: &Record) -> &IgnoredNotice {
        match record {
            Record::Ignored(n) => n,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_validation_token_is_decoded_bounded_and_only_from_the_query() {
        let g = graph();
        assert_eq!(g.validate(None), None);
        assert_eq!(g.validate(Some("a=b")), None);
        assert_eq!(
            g.validate(Some("validationToken=Validation%3A+Testing+client%2Fapp")),
            Some(Ok("Validation: Testing client/app".to_owned()))
        );
        let longest = "x".repeat(MAX_VALIDATION_TOKEN);
        assert_eq!(
            g.validate(Some(&format!("validationToken={longest}"))),
            Some(Ok(longest))
        );
        // Answered well inside the 3 s Graph allows for validations and notifications.
        assert_eq!(Kind::deadline(&g), Some(DEADLINE));
        const { assert!(DEADLINE.as_millis() < 3000) };
        let long = "x".repeat(MAX_VALIDATION_TOKEN + 1);
        for bad in [
            format!("validationToken={long}"),
            "validationToken=".to_owned(),
            "validationToken=a%0Ab".to_owned(),
            "validationToken=a&validationToken=b".to_owned(),
        ] {
            assert!(
                matches!(g.validate(Some(&bad)), Some(Err(Rejection::Payload(_)))),
                "{bad}"
            );
        }
    }

    #[test]
    fn every_notification_must_carry_an_active_client_state() {
        let g = graph();
        let wrong = json!({"value": [note("client-state-forged-000000000", "updated", "u1")]});
        let err = receive(&g, &wrong).err();
        assert!(
            matches!(&err, Some(Rejection::Auth(AuthError::SecretMismatch(_)))),
            "{err:?}"
        );
        assert!(!format!("{err:?}").contains("forged"), "{err:?}");
        let missing = json!({"value": [{"changeType": "updated", "resource": "Users/u1"}]});
        assert!(matches!(receive(&g, &missing), Err(Rejection::Auth(_))));
        // The previous secret still matches subscriptions made before a rotation.
        let (key, recs) = records(receive(&g, &json!({"value": [note(OLD, "updated", "u1")]})));
        assert_eq!((key, recs.len()), (1, 1));
        // A mixed batch keeps only what matches.
        let mixed = json!({"value": [
            note("client-state-forged-000000000", "deleted", "u9"),
            note(STATE, "updated", "u2"),
        ]});
        let (key, recs) = records(receive(&g, &mixed));
        assert_eq!(key, 0);
        assert_eq!(recs.len(), 1);
        assert_eq!(
            recs[0].as_event().map(|e| e.person.id.to_string()),
            Some("u2".to_owned())
        );
        assert!(matches!(
            receive(&g, &json!({"value": []})),
            Err(Rejection::Payload(_))
        ));
    }

    #[test]
    fn user_changes_become_notices_and_lifecycle_notifications_reach_the_inbox() {
        let g = graph();
        let body = json!({"value": [
            note(STATE, "created", "u1"),
            note(STATE, "updated", "u2"),
            note(STATE, "deleted", "u3"),
        ]});
        let (_, recs) = records(receive(&g, &body));
        let kinds: Vec<_> = recs
            .iter()
            .map(|r| r.as_event().map(|e| (e.kind, e.person.id.to_string())))
            .collect();
        assert_eq!(
            kinds,
            vec![
                Some((EventKind::Hired, "u1".to_owned())),
                Some((EventKind::Updated, "u2".to_owned())),
                Some((EventKind::Departed, "u3".to_owned())),
            ]
        );
        let e = recs[1].as_event().unwrap_or_else(|| panic!("event"));
        assert_eq!(e.completeness, Completeness::Notice);
        assert_eq!(e.dedupe_key.delivery_id, "n-updated-u2");
        let origin = e.origin.clone().unwrap_or_default();
        assert_eq!(origin.event_type, "users.updated");
        assert_eq!(origin.tenant.as_deref(), Some(TENANT));

        // Without an id, the key is the subscription, change, user and sequence number.
        let mut plain = note(STATE, "updated", "u2");
        plain.as_object_mut().map(|o| o.remove("id"));
        let (_, recs) = records(receive(&g, &json!({"value": [plain]})));
        assert_eq!(
            recs[0].as_event().map(|e| e.dedupe_key.delivery_id.clone()),
            Some("sub-1/updated/u2/3".to_owned())
        );

        // Another tenant, another resource: journaled as ignored.
        let mut other = note(STATE, "updated", "u4");
        other["tenantId"] = json!("another-tenant");
        let mut group = note(STATE, "updated", "g1");
        group["resource"] = json!("Groups/g1");
        group["resourceData"]["@odata.type"] = json!("#Microsoft.Graph.Group");
        let (_, recs) = records(receive(&g, &json!({"value": [other, group]})));
        assert!(
            ignored(&recs[0])
                .reason
                .contains("not this source's tenant")
        );
        assert!(ignored(&recs[1]).reason.contains("not a user"));
        // A user's path with another object's type is not a user either.
        let mut typed = note(STATE, "updated", "u5");
        typed["resourceData"]["@odata.type"] = json!("#Microsoft.Graph.Group");
        let (_, recs) = records(receive(&g, &json!({"value": [typed]})));
        assert!(ignored(&recs[0]).reason.contains("not a user"));
        // Neither an id nor a sequence number: the key is the batch and the position.
        let mut bare = note(STATE, "updated", "u2");
        bare.as_object_mut().map(|o| o.remove("id"));
        bare["resourceData"]
            .as_object_mut()
            .map(|o| o.remove("sequenceNumber"));
        let (_, recs) = records(receive(&g, &json!({"value": [bare]})));
        let key = recs[0]
            .as_event()
            .map(|e| e.dedupe_key.delivery_id.clone())
            .unwrap_or_default();
        assert!(key.ends_with("#0") && !key.starts_with("sub-1/"), "{key}");

        let life = |event: &str| {
            json!({"value": [{"subscriptionId": "sub-1", "clientState": STATE, "tenantId": TENANT,
                "lifecycleEvent": event, "subscriptionExpirationDateTime": "2027-01-01T00:00:00Z"}]})
        };
        assert!(g.inbox().take().is_empty());
        let (_, recs) = records(receive(&g, &life("missed")));
        assert_eq!(
            ignored(&recs[0]).reason,
            "Graph lifecycle notification missed for subscription sub-1: some change notifications were lost; a full resync of this source is requested"
        );
        let (_, recs) = records(receive(&g, &life("reauthorizationRequired")));
        assert_eq!(
            ignored(&recs[0]).reason,
            "Graph lifecycle notification reauthorizationRequired for subscription sub-1: Keycard renews the subscription now"
        );
        let (_, recs) = records(receive(&g, &life("somethingNew")));
        assert!(ignored(&recs[0]).reason.contains("not handled"));
        let signals: Vec<_> = g
            .inbox()
            .take()
            .into_iter()
            .map(|s| (s.event, s.subscription_id))
            .collect();
        assert_eq!(
            signals,
            vec![
                (Lifecycle::Missed, Some("sub-1".to_owned())),
                (Lifecycle::ReauthorizationRequired, Some("sub-1".to_owned())),
            ]
        );
        // A forged lifecycle notification reaches nobody.
        let mut forged = life("subscriptionRemoved");
        forged["value"][0]["clientState"] = json!("client-state-forged-000000000");
        assert!(receive(&g, &forged).is_err());
        assert!(g.inbox().take().is_empty());
    }

    #[test]
    fn the_inbox_wakes_its_waiter_only_when_a_signal_arrives() {
        use futures::FutureExt as _;
        let inbox = LifecycleInbox::default();
        assert!(inbox.notified().now_or_never().is_none(), "nothing pending");
        inbox.push(LifecycleSignal {
            event: Lifecycle::Missed,
            subscription_id: None,
            received_at: at(),
        });
        assert!(
            inbox.notified().now_or_never().is_some(),
            "a signal wakes it"
        );
        assert_eq!(inbox.take().len(), 1);
        assert!(inbox.take().is_empty());
    }

    #[test]
    fn an_adapter_holds_one_or_two_secrets_and_never_shows_them() {
        let settings = graph().settings().clone();
        let mut source = loaded(&format!("{ENTRA}{API}")).unwrap_or_else(|e| panic!("{e}"));
        // However a source came to hold them (the loader allows only these counts).
        for count in [0, 3] {
            source.secrets = vec![SecretString::from(STATE.to_owned()); count];
            let err = Graph::build(&source, settings.clone())
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(
                err.ends_with("a graph source needs 1 or 2 secrets"),
                "{count}: {err}"
            );
        }
        source.secrets = vec![SecretString::from(STATE.to_owned())];
        assert!(Graph::build(&source, settings.clone()).is_ok());
        // Graph's clientState: 16 to 128 printable characters.
        let mut fits = |state: String| {
            source.secrets = vec![SecretString::from(state)];
            Graph::build(&source, settings.clone()).is_ok()
        };
        assert!(fits("s".repeat(MIN_CLIENT_STATE)));
        assert!(!fits("s".repeat(MIN_CLIENT_STATE - 1)));
        assert!(fits("s".repeat(MAX_CLIENT_STATE)));
        assert!(!fits("s".repeat(MAX_CLIENT_STATE + 1)));
        assert!(!fits("client\u{1}state-0123456789".to_owned()));
        let shown = format!("{:?}", graph());
        assert!(
            shown.contains("secrets: 2") && shown.contains(TENANT),
            "{shown}"
        );
        assert!(!shown.contains(STATE) && !shown.contains(OLD), "{shown}");
    }

    #[test]
    fn config_mistakes_name_the_key() {
        let key_of = |text: String| loaded(&text).err().and_then(|e| e.key().map(str::to_owned));
        let head = "[[sources]]\nname = \"entra\"\nkind = \"graph\"\n";
        let url = "notification_url = \"https://kc.example.com/webhooks/entra\"\n";
        assert_eq!(
            key_of(format!("{head}{url}secret_env = \"CS\"\n")).as_deref(),
            Some("sources[0].api")
        );
        assert_eq!(
            key_of(format!("{head}secret_env = \"CS\"\n{API}")).as_deref(),
            Some("sources[0].notification_url")
        );
        assert_eq!(
            key_of(format!(
                "{head}notification_url = \"http://kc.example.com/webhooks/entra\"\nsecret_env = \"CS\"\n{API}"
            ))
            .as_deref(),
            Some("sources[0].notification_url")
        );
        assert_eq!(
            key_of(format!(
                "{head}{url}lifecycle_notification_url = \"ftp://x\"\nsecret_env = \"CS\"\n{API}"
            ))
            .as_deref(),
            Some("sources[0].lifecycle_notification_url")
        );
        assert_eq!(
            key_of(format!("{head}{url}{API}")).as_deref(),
            Some("sources[0].secret_env")
        );
        assert_eq!(
            key_of(format!("{head}{url}secret_env = \"SHORT\"\n{API}")).as_deref(),
            Some("sources[0].secret")
        );
        assert_eq!(
            key_of(format!(
                "{head}{url}secret_env = \"CS\"\nheader_name = \"x\"\n{API}"
            ))
            .as_deref(),
            Some("sources[0].header_name")
        );
        let ok = loaded(&format!("{head}{url}secret_env = \"CS\"\n{API}"));
        assert!(ok.is_ok(), "{ok:?}");
        assert!(!format!("{ok:?}").contains(STATE), "secret never printed");
    }

    #[test]
    fn a_resource_names_one_user() {
        assert_eq!(user_of_resource("Users/abc-123"), Some("abc-123"));
        assert_eq!(user_of_resource("/users/abc-123"), Some("abc-123"));
        for not_one in ["Users/", "Users/abc/manager", "Groups/abc", "Users"] {
            assert_eq!(user_of_resource(not_one), None, "{not_one}");
        }
    }

    #[test]
    fn a_notification_url_is_plain_https_or_loopback_http() {
        assert!(public_url("https://keycard.example.com/webhooks/entra", "k").is_ok());
        assert!(public_url("http://127.0.0.1:8080/webhooks/entra", "k").is_ok());
        for bad in [
            "https://keycard.example.com/webhooks/entra#part",
            "http://keycard.example.com/webhooks/entra",
            "mailto:it@example.com",
        ] {
            assert!(public_url(bad, "k").is_err(), "{bad}");
        }
    }
}
