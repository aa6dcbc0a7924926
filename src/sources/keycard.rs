//! The native kind (`keycard`): Standard Webhooks signatures over the format of docs/spec/keycard.md §4.
//! Behaviour is exactly that of the original ingest handler: one event per delivery, keyed by
//! `webhook-id`, and a payload the parser refuses (including an unknown `type`) is a 400.

use secrecy::ExposeSecret;

use super::standard_webhooks::{Verifier, WebhookHeaders, WebhookSecret};
use super::{AuthError, Delivery, Outcome, PayloadError, Rejection};
use super::{Kind, Source};
use crate::ingest::{DedupeKey, NativeEvent};
use crate::settings::ConfigError;

#[derive(Debug, Clone)]
pub struct Keycard {
    verifier: Verifier,
}

impl Keycard {
    pub fn build(source: &Source) -> Result<Self, ConfigError> {
        let secrets = source
            .secrets
            .iter()
            .enumerate()
            .map(|(i, s)| {
                WebhookSecret::parse(s.expose_secret())
                    .map_err(|e| source.secret_error(i, format!("{e} (expected whsec_<base64>)")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let verifier = Verifier::new(secrets)
            .map_err(|e| source.secret_error(0, e))?
            .with_tolerance(source.tolerance);
        Ok(Self { verifier })
    }

    pub fn receive(&self, d: &Delivery<'_>) -> Result<Outcome, Rejection> {
        let headers = WebhookHeaders::from_lookup(|name| d.headers.get(name).map(|v| v.as_bytes()))
            .map_err(AuthError::from)?;
        let verified = self
            .verifier
            .verify(&headers, d.body, d.received_at)
            .map_err(AuthError::from)?;
        let native = NativeEvent::parse(d.body).map_err(PayloadError::from)?;
        let event = native.into_lifecycle(
            DedupeKey {
                source: d.source.to_owned(),
                delivery_id: verified.message_id.as_str().to_owned(),
            },
            d.received_at,
            d.body,
        );
        Ok(Outcome::Accepted {
            key_index: verified.key_index,
            records: vec![event.into()],
        })
    }
}

impl Kind for Keycard {
    const NAME: &'static str = "keycard";
    const KEYS: &'static [&'static str] = &[];
    const SIGNED_TIMESTAMP: bool = true;
    const SECRET_HINT: &'static str = "a Standard Webhooks secret (whsec_...)";

    fn build(source: &Source) -> Result<Self, ConfigError> {
        Keycard::build(source)
    }

    fn receive(&self, delivery: &Delivery<'_>) -> Result<Outcome, Rejection> {
        Keycard::receive(self, delivery)
    }
}
