//! `generic-hmac`: any sender that signs with an HMAC, connected by configuration alone
//! (inbound-sources §6).
//!
//! The signature scheme is data: header, algorithm (SHA-256/512), encoding (hex/base64),
//! prefix, and a `signed_content` template over `{body}`, `{timestamp}` and `{id}` with
//! literal text between. Two styles:
//!
//! * `plain` covers GitHub (`X-Hub-Signature-256: sha256=<hex>` over `{body}`) and most
//!   in-house tools; a `timestamp_header` adds a replay window.
//! * `stripe` reads `Stripe-Signature: t=<ts>,v1=<hex>[,v1=...]` over `{timestamp}.{body}`
//!   with a window, accepting any `v1` (several appear while a secret is rolled).
//!
//! **Replays.** Only what the signature covers may decide whether a delivery is new: the
//! dedupe key is the `{id}` header when the template signs it, else the mapped `event_id`
//! (inside the signed body), else the body's SHA-256. An unsigned delivery header
//! (`X-GitHub-Delivery` in the GitHub style) is kept as the sender's id for reading, never as
//! the key, so a captured body resent under a fresh header is a duplicate and changes nothing.
//! The journal keeps dedupe keys for good, so the window is the journal's lifetime; the
//! residual risk per style is in `docs/sources.md`.
//!
//! The payload is mapped with JSON pointers (`[sources.mapping]`) to the event type, the
//! person's id and attributes, and through `types` to a lifecycle kind. Types not listed are
//! acknowledged and journaled as ignored.

use std::collections::BTreeMap;
use std::time::Duration;

use axum::http::HeaderName;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::payload::{self, body_key, key};
use super::signing::{
    Algorithm, Encoding, KeyEncoding, KeyRing, check_window, decode_signature, header,
    parse_timestamp, required_header,
};
use super::{AuthError, Delivery, Outcome, PayloadError, Rejection};
use super::{Kind, Source};
use crate::ingest::event::MAX_TEXT_LEN;
use crate::ingest::{
    Attr, Completeness, Email, EventKind, LifecycleEvent, Origin, PersonAttributes, Record,
};
use crate::settings::ConfigError;

/// How the signature header is laid out.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Style {
    /// One signature, optionally prefixed, in `header`.
    #[default]
    Plain,
    /// `t=<unix>,v1=<hex>[,v1=<hex>]` in `Stripe-Signature` (or `header`).
    Stripe,
}

/// The `[[sources]]` keys of a `generic-hmac` source, as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Options {
    /// `plain` (default) or `stripe` (`t=...,v1=...` header).
    pub style: Option<Style>,
    /// The signature header (e.g. `X-Hub-Signature-256`).
    pub header: Option<String>,
    /// `sha256` (default) or `sha512`.
    pub algorithm: Option<Algorithm>,
    /// `hex` (default) or `base64`.
    pub encoding: Option<Encoding>,
    /// Text before the signature (e.g. `sha256=`).
    pub prefix: Option<String>,
    /// What is signed, e.g. `{body}` (default) or `{timestamp}.{body}`.
    pub signed_content: Option<String>,
    /// Header carrying the Unix-seconds timestamp (enables the window).
    pub timestamp_header: Option<String>,
    /// Header carrying the sender's delivery id (the dedupe key).
    pub id_header: Option<String>,
    /// Header carrying the event type (instead of `mapping.event_type`).
    pub event_type_header: Option<String>,
    /// How the secret becomes key bytes: `raw` (default), `base64`, `hex`.
    pub key_encoding: Option<KeyEncoding>,
    /// JSON pointers from the payload to the event and the person.
    pub mapping: Option<MappingConfig>,
}

/// `[sources.mapping]`: JSON pointers (RFC 6901) into the payload.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MappingConfig {
    pub event_type: Option<String>,
    pub event_id: Option<String>,
    pub occurred_at: Option<String>,
    pub effective_at: Option<String>,
    pub person_id: Option<String>,
    pub email: Option<String>,
    pub name: Option<String>,
    pub department: Option<String>,
    pub title: Option<String>,
    pub division: Option<String>,
    pub cost_center: Option<String>,
    pub location: Option<String>,
    pub worker_type: Option<String>,
    pub manager_email: Option<String>,
    pub groups: Option<String>,
    /// Extra attributes: name -> pointer (rules see them under `person.attributes`).
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
    /// Sender event type -> `hired | updated | departed | leave_started | leave_ended |
    /// rehired | change_cancelled | ignore`.
    #[serde(default)]
    pub types: BTreeMap<String, String>,
}

/// One piece of the signed content.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Literal(String),
    Body,
    Timestamp,
    Id,
}

/// What a mapped type does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TypeAction {
    Event(EventKind),
    Ignore,
}

/// The text attributes, in [`PersonAttributes`] order: (config name, pointer).
type TextPointers = Vec<(&'static str, String)>;

/// Validated `[[sources]]` options of a `generic-hmac` source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    style: Style,
    header: String,
    algorithm: Algorithm,
    encoding: Encoding,
    prefix: Option<String>,
    template: Vec<Part>,
    timestamp_header: Option<String>,
    id_header: Option<String>,
    event_type_header: Option<String>,
    key_encoding: KeyEncoding,
    event_type: Option<String>,
    event_id: Option<String>,
    occurred_at: Option<String>,
    effective_at: Option<String>,
    person_id: String,
    email: Option<String>,
    manager_email: Option<String>,
    groups: Option<String>,
    texts: TextPointers,
    attributes: BTreeMap<String, String>,
    types: BTreeMap<String, TypeAction>,
}

fn header_name(value: &str, key: String) -> Result<String, ConfigError> {
    let name = value.trim().to_ascii_lowercase();
    if name.is_empty() || HeaderName::from_bytes(name.as_bytes()).is_err() {
        return Err(ConfigError::invalid(
            key,
            format!("{value:?} is not a valid HTTP header name"),
        ));
    }
    Ok(name)
}

fn pointer(value: &Option<String>, key: String) -> Result<Option<String>, ConfigError> {
    match value {
        None => Ok(None),
        Some(p) if p.starts_with('/') => Ok(Some(p.clone())),
        Some(p) => Err(ConfigError::invalid(
            key,
            format!("{p:?} is not a JSON pointer: write it like \"/data/employee/id\""),
        )),
    }
}

fn parse_template(text: &str, key: &str) -> Result<Vec<Part>, ConfigError> {
    let mut parts = Vec::new();
    let mut literal = String::new();
    let mut rest = text;
    while let Some(open) = rest.find('{') {
        literal.push_str(&rest[..open]);
        let after = &rest[open..];
        let Some(close) = after.find('}') else {
            return Err(ConfigError::invalid(
                format!("{key}.signed_content"),
                "unclosed '{'; use {body}, {timestamp} and {id}",
            ));
        };
        let part = match &after[..=close] {
            "{body}" => Part::Body,
            "{timestamp}" => Part::Timestamp,
            "{id}" => Part::Id,
            other => {
                return Err(ConfigError::invalid(
                    format!("{key}.signed_content"),
                    format!("unknown placeholder {other}; use {{body}}, {{timestamp}} and {{id}}"),
                ));
            }
        };
        if !literal.is_empty() {
            parts.push(Part::Literal(std::mem::take(&mut literal)));
        }
        parts.push(part);
        rest = &after[close + 1..];
    }
    literal.push_str(rest);
    if !literal.is_empty() {
        parts.push(Part::Literal(literal));
    }
    if parts.iter().filter(|p| **p == Part::Body).count() != 1 {
        return Err(ConfigError::invalid(
            format!("{key}.signed_content"),
            "must contain {body} exactly once",
        ));
    }
    Ok(parts)
}

fn parse_type_action(text: &str) -> Option<TypeAction> {
    if text == "ignore" {
        return Some(TypeAction::Ignore);
    }
    EventKind::ALL
        .into_iter()
        .find(|k| k.as_str() == text)
        .map(TypeAction::Event)
}

impl Settings {
    pub fn from_config(raw: &Options, key: &str) -> Result<Self, ConfigError> {
        let style = raw.style.unwrap_or_default();
        let k = |name: &str| format!("{key}.{name}");
        let (header, template, timestamp_header) = match style {
            Style::Plain => {
                let header = raw.header.as_deref().ok_or_else(|| {
                    ConfigError::invalid(
                        k("header"),
                        "name the header carrying the signature, e.g. \"X-Hub-Signature-256\"",
                    )
                })?;
                let template =
                    parse_template(raw.signed_content.as_deref().unwrap_or("{body}"), key)?;
                let timestamp_header = raw
                    .timestamp_header
                    .as_deref()
                    .map(|h| header_name(h, k("timestamp_header")))
                    .transpose()?;
                if template.contains(&Part::Timestamp) && timestamp_header.is_none() {
                    return Err(ConfigError::invalid(
                        k("signed_content"),
                        "uses {timestamp}: set timestamp_header too",
                    ));
                }
                (
                    header_name(header, k("header"))?,
                    template,
                    timestamp_header,
                )
            }
            Style::Stripe => {
                for (name, set) in [
                    ("prefix", raw.prefix.is_some()),
                    ("signed_content", raw.signed_content.is_some()),
                    ("timestamp_header", raw.timestamp_header.is_some()),
                    ("encoding", raw.encoding.is_some()),
                ] {
                    if set {
                        return Err(ConfigError::invalid(
                            k(name),
                            "not used with style = \"stripe\" (t=...,v1=<hex> over {timestamp}.{body} is fixed)",
                        ));
                    }
                }
                let header = raw.header.as_deref().unwrap_or("stripe-signature");
                (
                    header_name(header, k("header"))?,
                    vec![Part::Timestamp, Part::Literal(".".into()), Part::Body],
                    None,
                )
            }
        };
        let id_header = raw
            .id_header
            .as_deref()
            .map(|h| header_name(h, k("id_header")))
            .transpose()?;
        if template.contains(&Part::Id) && id_header.is_none() {
            return Err(ConfigError::invalid(
                k("signed_content"),
                "uses {id}: set id_header too",
            ));
        }
        let event_type_header = raw
            .event_type_header
            .as_deref()
            .map(|h| header_name(h, k("event_type_header")))
            .transpose()?;

        let m = raw.mapping.as_ref().ok_or_else(|| {
            ConfigError::invalid(
                k("mapping"),
                "add a [sources.mapping] table with at least person_id, event_type and types",
            )
        })?;
        let mk = |name: &str| format!("{key}.mapping.{name}");
        let person_id = pointer(&m.person_id, mk("person_id"))?.ok_or_else(|| {
            ConfigError::invalid(
                mk("person_id"),
                "required: the JSON pointer to the person's immutable id",
            )
        })?;
        let event_type = pointer(&m.event_type, mk("event_type"))?;
        if event_type.is_none() && event_type_header.is_none() {
            return Err(ConfigError::invalid(
                mk("event_type"),
                "required (or set event_type_header): where the sender names the event type",
            ));
        }
        if m.types.is_empty() {
            return Err(ConfigError::invalid(
                mk("types"),
                "map at least one sender event type, e.g. types = { \"employee.hired\" = \"hired\" }",
            ));
        }
        let mut types = BTreeMap::new();
        for (sender, ours) in &m.types {
            let action = parse_type_action(ours).ok_or_else(|| {
                ConfigError::invalid(
                    format!("{key}.mapping.types.\"{sender}\""),
                    format!("{ours:?} is not one of hired, updated, departed, leave_started, leave_ended, rehired, change_cancelled, ignore"),
                )
            })?;
            types.insert(sender.clone(), action);
        }
        let mut texts = Vec::new();
        for (name, value) in [
            ("name", &m.name),
            ("department", &m.department),
            ("title", &m.title),
            ("division", &m.division),
            ("cost_center", &m.cost_center),
            ("location", &m.location),
            ("worker_type", &m.worker_type),
        ] {
            if let Some(p) = pointer(value, mk(name))? {
                texts.push((name, p));
            }
        }
        let mut attributes = BTreeMap::new();
        for (name, p) in &m.attributes {
            if name.is_empty() {
                return Err(ConfigError::invalid(
                    mk("attributes"),
                    "attribute names must not be empty",
                ));
            }
            let p = pointer(&Some(p.clone()), format!("{key}.mapping.attributes.{name}"))?
                .unwrap_or_default();
            attributes.insert(name.clone(), p);
        }
        Ok(Self {
            style,
            header,
            algorithm: raw.algorithm.unwrap_or(Algorithm::Sha256),
            encoding: raw.encoding.unwrap_or(Encoding::Hex),
            prefix: raw.prefix.clone().filter(|p| !p.is_empty()),
            template,
            timestamp_header,
            id_header,
            event_type_header,
            key_encoding: raw.key_encoding.unwrap_or_default(),
            event_type,
            event_id: pointer(&m.event_id, mk("event_id"))?,
            occurred_at: pointer(&m.occurred_at, mk("occurred_at"))?,
            effective_at: pointer(&m.effective_at, mk("effective_at"))?,
            person_id,
            email: pointer(&m.email, mk("email"))?,
            manager_email: pointer(&m.manager_email, mk("manager_email"))?,
            groups: pointer(&m.groups, mk("groups"))?,
            texts,
            attributes,
            types,
        })
    }
}

#[derive(Debug, Clone)]
pub struct GenericHmac {
    keys: KeyRing,
    tolerance: Duration,
    settings: Settings,
    /// How a date-only `effective_at` is read (the source's or organization's zone).
    dates: super::dates::LocalDates,
}

/// What authentication established about a delivery.
struct Verified {
    key_index: usize,
    /// The id header's value, whether or not the signature covers it.
    delivery_id: Option<String>,
    /// Whether the signed content includes that id (`{id}` in the template).
    id_signed: bool,
}

impl GenericHmac {
    pub fn build(source: &Source, settings: &Settings) -> Result<Self, ConfigError> {
        let keys = KeyRing::new(settings.algorithm, &source.secrets, settings.key_encoding)
            .map_err(|(i, e)| source.secret_error(i, e))?;
        Ok(Self {
            keys,
            tolerance: source.tolerance,
            settings: settings.clone(),
            dates: source.dates,
        })
    }

    fn verify(&self, d: &Delivery<'_>) -> Result<Verified, AuthError> {
        let s = &self.settings;
        let value = required_header(d.headers, &s.header)?;
        let id = s
            .id_header
            .as_deref()
            .map(|h| header(d.headers, h))
            .transpose()?
            .flatten();
        let (timestamp, candidates) = match s.style {
            Style::Plain => {
                let tag = decode_signature(
                    &s.header,
                    value,
                    s.prefix.as_deref(),
                    s.encoding,
                    s.algorithm,
                )?;
                let ts = match &s.timestamp_header {
                    Some(h) => Some((h.as_str(), required_header(d.headers, h)?)),
                    None => None,
                };
                (ts, vec![tag])
            }
            Style::Stripe => {
                let (ts, tags) = parse_stripe(&s.header, value, s.algorithm)?;
                (Some((s.header.as_str(), ts)), tags)
            }
        };
        if s.template.contains(&Part::Id) && id.is_none() {
            return Err(AuthError::MissingHeader(
                s.id_header.clone().unwrap_or_default(),
            ));
        }
        let ts_text = timestamp.map(|(_, t)| t).unwrap_or_default();
        let parts: Vec<&[u8]> = s
            .template
            .iter()
            .map(|p| match p {
                Part::Literal(text) => text.as_bytes(),
                Part::Body => d.body,
                Part::Timestamp => ts_text.as_bytes(),
                Part::Id => id.unwrap_or_default().as_bytes(),
            })
            .collect();
        let key_index = self
            .keys
            .find(&parts, &candidates)
            .ok_or(AuthError::SignatureMismatch)?;
        if let Some((h, t)) = timestamp {
            check_window(parse_timestamp(h, t)?, d.received_at, self.tolerance)?;
        }
        Ok(Verified {
            key_index,
            delivery_id: id.map(str::to_owned),
            id_signed: s.template.contains(&Part::Id),
        })
    }

    pub fn receive(&self, d: &Delivery<'_>) -> Result<Outcome, Rejection> {
        let verified = self.verify(d)?;
        let doc = serde_json::from_slice::<Value>(d.body)
            .map_err(|e| PayloadError::new("body", format!("not valid JSON ({e})")))?;
        let record = self.map(d, &doc, &verified)?;
        Ok(Outcome::Accepted {
            key_index: verified.key_index,
            records: vec![record],
        })
    }

    fn map(
        &self,
        d: &Delivery<'_>,
        doc: &Value,
        verified: &Verified,
    ) -> Result<Record, PayloadError> {
        let s = &self.settings;
        let delivery_id = verified.delivery_id.clone();
        let event_type = match (&s.event_type_header, &s.event_type) {
            (Some(h), _) => header(d.headers, h)
                .ok()
                .flatten()
                .map(str::to_owned)
                .ok_or_else(|| PayloadError::missing(format!("header {h}")))?,
            (None, Some(p)) => payload::required_str(doc.pointer(p), p)?.to_owned(),
            (None, None) => return Err(PayloadError::missing("event type")),
        };
        let event_id = match &s.event_id {
            Some(p) => match doc.pointer(p) {
                None | Some(Value::Null) => None,
                Some(v) => Some(payload::id_text(Some(v), p)?),
            },
            None => None,
        };
        // Signed content only (see the module docs): an unsigned header would let a captured
        // body be replayed under a fresh id.
        let signed_id = delivery_id.clone().filter(|_| verified.id_signed);
        let dedupe = key(
            d.source,
            signed_id
                .or_else(|| event_id.clone())
                .unwrap_or_else(|| body_key(d.body)),
        );
        let occurred_at = match &s.occurred_at {
            Some(p) => match doc.pointer(p) {
                None | Some(Value::Null) => d.received_at,
                Some(v) => payload::instant(v).ok_or_else(|| {
                    PayloadError::new(p, "not a timestamp (RFC 3339 or Unix seconds)")
                })?,
            },
            None => d.received_at,
        };
        let action = s.types.get(&event_type).copied();
        let kind = match action {
            Some(TypeAction::Event(kind)) => kind,
            Some(TypeAction::Ignore) | None => {
                let person = doc
                    .pointer(&s.person_id)
                    .and_then(|v| payload::id_text(Some(v), "").ok());
                let reason = if action.is_some() {
                    format!(
                        "event type {:?} is mapped to ignore",
                        payload::truncate(&event_type)
                    )
                } else {
                    format!(
                        "event type {:?} is not in mapping.types",
                        payload::truncate(&event_type)
                    )
                };
                return Ok(payload::ignored(
                    dedupe,
                    Some(&event_type),
                    person,
                    occurred_at,
                    d.received_at,
                    d.body,
                    reason,
                )
                .into());
            }
        };

        let mut person =
            PersonAttributes::new(payload::person_id(doc.pointer(&s.person_id), &s.person_id)?);
        let mut configured = 0usize;
        let mut present = 0usize;
        let mut count = |attr_absent: bool| {
            configured += 1;
            if !attr_absent {
                present += 1;
            }
        };
        if let Some(p) = &s.email {
            person.email = email_attr(doc, p)?;
            count(person.email.is_absent());
        }
        if let Some(p) = &s.manager_email {
            person.manager_email = email_attr(doc, p)?;
            count(person.manager_email.is_absent());
        }
        for (name, p) in &s.texts {
            let value = text_attr(doc, p)?;
            count(value.is_absent());
            match *name {
                "name" => person.name = value,
                "department" => person.department = value,
                "title" => person.title = value,
                "division" => person.division = value,
                "cost_center" => person.cost_center = value,
                "location" => person.location = value,
                _ => person.worker_type = value,
            }
        }
        if let Some(p) = &s.groups {
            person.groups = groups_attr(doc, p)?;
            count(person.groups.is_absent());
        }
        if !s.attributes.is_empty() {
            let found: Map<String, Value> = s
                .attributes
                .iter()
                .filter_map(|(name, p)| doc.pointer(p).map(|v| (name.clone(), v.clone())))
                .collect();
            count(found.is_empty());
            if !found.is_empty() {
                person.attributes = Attr::Value(found);
            }
        }
        let completeness = if present == 0 {
            Completeness::Notice
        } else if present == configured {
            Completeness::Full
        } else {
            Completeness::Partial
        };

        let (effective_at, effective_date) = match &s.effective_at {
            Some(p) => match doc.pointer(p) {
                None | Some(Value::Null) => (occurred_at.min(d.received_at), None),
                Some(v) => {
                    if let Some(date) = v
                        .as_str()
                        .and_then(|t| chrono::NaiveDate::parse_from_str(t.trim(), "%Y-%m-%d").ok())
                    {
                        (
                            self.dates
                                .effective(kind, Some(date), occurred_at, d.received_at),
                            Some(date),
                        )
                    } else {
                        let at = payload::instant(v).ok_or_else(|| {
                            PayloadError::new(p, "not a date (YYYY-MM-DD) or timestamp")
                        })?;
                        (at, None)
                    }
                }
            },
            None => (occurred_at.min(d.received_at), None),
        };

        let mut event = LifecycleEvent::new(
            dedupe,
            kind,
            person,
            occurred_at,
            effective_at,
            d.received_at,
            d.body,
        );
        event.completeness = completeness;
        event.sender_event_id = event_id.or(delivery_id);
        let mut origin = Origin::new(payload::truncate(&event_type));
        origin.effective_date = effective_date;
        event.origin = Some(origin);
        Ok(event.into())
    }
}

/// `t=<ts>,v1=<hex>,...`: the timestamp and every `v1` tag. Other schemes (`v0`) are ignored.
fn parse_stripe<'a>(
    header_name: &str,
    value: &'a str,
    algorithm: Algorithm,
) -> Result<(&'a str, Vec<Vec<u8>>), AuthError> {
    let mut timestamp = None;
    let mut tags = Vec::new();
    for item in value.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        let Some((k, v)) = item.split_once('=') else {
            return Err(AuthError::MalformedHeader {
                header: header_name.to_owned(),
                problem: "entries must look like t=<unix seconds> or v1=<hex>",
            });
        };
        match k {
            "t" if timestamp.is_some() => {
                return Err(AuthError::MalformedHeader {
                    header: header_name.to_owned(),
                    problem: "more than one t= timestamp",
                });
            }
            "t" => timestamp = Some(v),
            "v1" => tags.push(decode_signature(
                header_name,
                v,
                None,
                Encoding::Hex,
                algorithm,
            )?),
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or_else(|| AuthError::MalformedHeader {
        header: header_name.to_owned(),
        problem: "no t= timestamp",
    })?;
    if tags.is_empty() {
        return Err(AuthError::MalformedHeader {
            header: header_name.to_owned(),
            problem: "no v1= signature",
        });
    }
    Ok((timestamp, tags))
}

fn email_attr(doc: &Value, p: &str) -> Result<Attr<Email>, PayloadError> {
    match doc.pointer(p) {
        None => Ok(Attr::Absent),
        Some(Value::Null) => Ok(Attr::Null),
        Some(Value::String(s)) => Email::parse(s.trim())
            .map(Attr::Value)
            .map_err(|e| PayloadError::new(p, e.to_string())),
        Some(other) => Err(PayloadError::new(
            p,
            format!("expected a string, got {}", payload::json_type(other)),
        )),
    }
}

fn text_attr(doc: &Value, p: &str) -> Result<Attr<String>, PayloadError> {
    match doc.pointer(p) {
        None => Ok(Attr::Absent),
        Some(Value::Null) => Ok(Attr::Null),
        Some(Value::String(s)) if s.len() > MAX_TEXT_LEN => Err(PayloadError::new(
            p,
            format!("must be at most {MAX_TEXT_LEN} bytes"),
        )),
        Some(Value::String(s)) => Ok(Attr::Value(s.clone())),
        Some(Value::Number(n)) => Ok(Attr::Value(n.to_string())),
        Some(other) => Err(PayloadError::new(
            p,
            format!("expected a string, got {}", payload::json_type(other)),
        )),
    }
}

fn groups_attr(doc: &Value, p: &str) -> Result<Attr<Vec<String>>, PayloadError> {
    match doc.pointer(p) {
        None => Ok(Attr::Absent),
        Some(Value::Null) => Ok(Attr::Null),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, v)| match v {
                Value::String(s) if !s.is_empty() => Ok(s.clone()),
                other => Err(PayloadError::new(
                    format!("{p}/{i}"),
                    format!(
                        "expected a non-empty string, got {}",
                        payload::json_type(other)
                    ),
                )),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Attr::Value),
        Some(other) => Err(PayloadError::new(
            p,
            format!(
                "expected an array of strings, got {}",
                payload::json_type(other)
            ),
        )),
    }
}

impl Kind for GenericHmac {
    const NAME: &'static str = "generic-hmac";
    const KEYS: &'static [&'static str] = &[
        "style",
        "header",
        "algorithm",
        "encoding",
        "prefix",
        "signed_content",
        "timestamp_header",
        "id_header",
        "event_type_header",
        "key_encoding",
        "mapping",
    ];
    const SIGNED_TIMESTAMP: bool = true;

    fn build(source: &Source) -> Result<Self, ConfigError> {
        let settings = Settings::from_config(&source.options()?, &source.key)?;
        GenericHmac::build(source, &settings)
    }

    fn receive(&self, delivery: &Delivery<'_>) -> Result<Outcome, Rejection> {
        GenericHmac::receive(self, delivery)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates() {
        assert_eq!(parse_template("{body}", "s").expect("ok"), vec![Part::Body]);
        assert_eq!(
            parse_template("v0:{timestamp}:{body}", "s").expect("ok"),
            vec![
                Part::Literal("v0:".into()),
                Part::Timestamp,
                Part::Literal(":".into()),
                Part::Body
            ]
        );
        for bad in ["{timestamp}", "{body}{body}", "{body", "{nope}{body}"] {
            let err = parse_template(bad, "sources[0]")
                .expect_err(bad)
                .to_string();
            assert!(err.starts_with("sources[0].signed_content:"), "{err}");
        }
    }

    /// A mapped text is capped like the native event's: bytes, not characters.
    #[test]
    fn a_mapped_text_is_at_most_max_text_len_bytes() {
        let at_limit = serde_json::json!({ "t": "é".repeat(MAX_TEXT_LEN / 2) });
        assert!(
            matches!(text_attr(&at_limit, "/t"), Ok(Attr::Value(s)) if s.len() == MAX_TEXT_LEN)
        );
        let over = serde_json::json!({ "t": format!("{}x", "é".repeat(MAX_TEXT_LEN / 2)) });
        assert_eq!(
            text_attr(&over, "/t").err(),
            Some(PayloadError::new("/t", "must be at most 1024 bytes"))
        );
    }

    /// Each mapped group is a non-empty string, located by its index.
    #[test]
    fn mapped_groups_are_non_empty_strings() {
        let doc = serde_json::json!({ "g": ["eng", "ml"] });
        assert_eq!(
            groups_attr(&doc, "/g"),
            Ok(Attr::Value(vec!["eng".to_owned(), "ml".to_owned()]))
        );
        for (bad, got) in [
            (serde_json::json!(""), "a string"),
            (serde_json::json!(7), "a number"),
        ] {
            let doc = serde_json::json!({ "g": ["eng", bad] });
            assert_eq!(
                groups_attr(&doc, "/g").err(),
                Some(PayloadError::new(
                    "/g/1",
                    format!("expected a non-empty string, got {got}")
                ))
            );
        }
    }

    #[test]
    fn stripe_header() {
        let tag = "a".repeat(64);
        let header = format!("t=12,v0=zz,v1={tag},v1={tag}");
        let (t, tags) = parse_stripe("h", &header, Algorithm::Sha256).expect("parses");
        assert_eq!((t, tags.len()), ("12", 2));
        assert!(parse_stripe("h", &format!("v1={tag}"), Algorithm::Sha256).is_err());
        assert!(parse_stripe("h", "t=12", Algorithm::Sha256).is_err());
        assert!(parse_stripe("h", "t=12,garbage", Algorithm::Sha256).is_err());
        assert!(parse_stripe("h", &format!("t=1,t=2,v1={tag}"), Algorithm::Sha256).is_err());
    }
}
