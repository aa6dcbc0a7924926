//! Typed read clients for the senders' own APIs (issue 16): the current record of one person,
//! and the whole directory in pages, from Gusto, HiBob, Okta, Microsoft Graph and BambooHR.
//!
//! Thin webhook notices ("something happened to employee 123") are enriched by reading the
//! record through the sender's API; a scheduled pull reads the whole directory to repair lost
//! notices. Both need the same things from each API, which this module provides once:
//!
//! - **Credentials** as [`secrecy::SecretString`], sent in each vendor's documented style
//!   (Gusto and Graph `Bearer`, Okta `SSWS`, HiBob and BambooHR HTTP Basic), never printed:
//!   `Debug` output and error messages carry no secret.
//! - **Pacing** within each API's published limits: a token bucket per rate-limit budget on
//!   the injected [`crate::clock::Clock`] ([`PacingConfig`]), tightened further when a
//!   response says the window is spent (`X-Rate-Limit-Remaining: 0`).
//! - **Retries** ([`RetryPolicy`]): a 429 waits exactly what the server asked (`Retry-After`,
//!   or the vendor's reset header) and 5xx / connection failures back off exponentially.
//! - **One result type**, [`SenderRecord`]: sender-neutral, carrying what the canonical
//!   lifecycle record (inbound-sources §8.2) needs, the fetch time and the raw record, so the
//!   enrichment step can map it to a canonical event without knowing the vendor.
//!
//! ```no_run
//! # async fn demo() -> Result<(), keycard::sender_api::SenderApiError> {
//! use std::sync::Arc;
//! use keycard::sender_api::*;
//! let client = GustoClient::new(
//!     GustoConfig::new("company-uuid", secrecy::SecretString::from("token".to_owned())),
//!     Arc::new(keycard::clock::SystemClock),
//! )?;
//! let record = client.get_employee("employee-uuid").await?;
//! println!("{:?} is {:?}", record.email, record.status);
//! # Ok(()) }
//! ```
//!
//! Each client is tested against its simulator (`crate::sender_sim`, `tests/it/sender_api/`).
//! What each vendor's documentation confirms and what is assumed is in `docs/sender-sim.md`.

mod bamboohr;
mod common;
mod error;
mod graph;
mod gusto;
mod hibob;
mod http;
mod okta;
mod pacing;
mod record;

pub use bamboohr::{BambooHrClient, BambooHrConfig};
pub use common::{ClientOptions, RetryPolicy};
pub use error::{SenderApiError, TransportKind};
pub use graph::{
    DEFAULT_AUTHORITY, GraphClient, GraphConfig, GraphCredential, Subscription,
    SubscriptionRequest, USER_SELECT, USER_SUBSCRIPTION_MAX_MINUTES,
};
pub use gusto::{GustoClient, GustoConfig};
pub use hibob::{HiBobClient, HiBobConfig};
pub use okta::{OktaClient, OktaConfig, OktaCredential};
pub use pacing::{PacingConfig, RateLimit};
pub use record::{Directory, EmploymentStatus, ManagerRef, SenderRecord};

use std::fmt;

/// The senders whose read APIs Keycard can call.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    clap::ValueEnum,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum SenderKind {
    Gusto,
    #[value(name = "hibob")]
    HiBob,
    Okta,
    Graph,
    #[value(name = "bamboohr")]
    BambooHr,
}

impl SenderKind {
    pub const ALL: [Self; 5] = [
        Self::Gusto,
        Self::HiBob,
        Self::Okta,
        Self::Graph,
        Self::BambooHr,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Gusto => "gusto",
            Self::HiBob => "hibob",
            Self::Okta => "okta",
            Self::Graph => "graph",
            Self::BambooHr => "bamboohr",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|k| k.as_str().eq_ignore_ascii_case(text.trim()))
    }
}

impl fmt::Display for SenderKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Any one of the clients, for code that handles every sender the same way (enrichment, the
/// scheduled pull). Cheap to clone.
#[derive(Debug, Clone)]
pub enum SenderClient {
    Gusto(GustoClient),
    HiBob(HiBobClient),
    Okta(OktaClient),
    Graph(GraphClient),
    BambooHr(BambooHrClient),
}

impl SenderClient {
    pub fn kind(&self) -> SenderKind {
        match self {
            Self::Gusto(_) => SenderKind::Gusto,
            Self::HiBob(_) => SenderKind::HiBob,
            Self::Okta(_) => SenderKind::Okta,
            Self::Graph(_) => SenderKind::Graph,
            Self::BambooHr(_) => SenderKind::BambooHr,
        }
    }

    /// The current record of one person, by the id the sender's notices carry.
    pub async fn get(&self, id: &str) -> Result<SenderRecord, SenderApiError> {
        match self {
            Self::Gusto(c) => c.get_employee(id).await,
            Self::HiBob(c) => c.get_employee(id).await,
            Self::Okta(c) => c.get_user(id).await,
            Self::Graph(c) => c.get_user(id).await,
            Self::BambooHr(c) => c.get_employee(id).await,
        }
    }

    /// The whole directory, terminated people included, read page by page.
    pub async fn list_all(&self) -> Result<Directory, SenderApiError> {
        match self {
            Self::Gusto(c) => c.list_employees().await,
            Self::HiBob(c) => c.list_employees().await,
            Self::Okta(c) => c.list_users().await,
            Self::Graph(c) => c.list_users().await,
            Self::BambooHr(c) => c.list_employees().await,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use secrecy::SecretString;

    use super::*;
    use crate::clock::SystemClock;

    const SECRET: &str = "SUPERSECRET-value-0001";

    fn secret() -> SecretString {
        SecretString::from(SECRET.to_owned())
    }

    #[test]
    fn no_client_prints_its_credential() {
        let clock: crate::clock::SharedClock = Arc::new(SystemClock);
        let clients = [
            GustoClient::new(GustoConfig::new("c", secret()), clock.clone())
                .map(SenderClient::Gusto),
            HiBobClient::new(HiBobConfig::new("svc", secret()), clock.clone())
                .map(SenderClient::HiBob),
            OktaClient::new(
                OktaConfig::new("https://acme.okta.com", OktaCredential::ApiToken(secret())),
                clock.clone(),
            )
            .map(SenderClient::Okta),
            GraphClient::new(
                GraphConfig::new("t", GraphCredential::client_credentials("id", secret())),
                clock.clone(),
            )
            .map(SenderClient::Graph),
            BambooHrClient::new(BambooHrConfig::new("acme", secret()), clock.clone())
                .map(SenderClient::BambooHr),
        ];
        for client in clients {
            let client = client.unwrap_or_else(|e| panic!("{e}"));
            for text in [format!("{client:?}"), format!("{client:#?}")] {
                assert!(!text.contains("SUPERSECRET"), "{text}");
            }
        }
    }

    #[test]
    fn a_secret_that_cannot_be_a_header_is_a_config_error_without_it() {
        let bad = SecretString::from("bad\nSUPERSECRET".to_owned());
        let err = GustoClient::new(GustoConfig::new("c", bad), Arc::new(SystemClock))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            err.contains("access token") && !err.contains("SUPERSECRET"),
            "{err}"
        );
    }

    #[test]
    fn kinds_round_trip_their_names() {
        for kind in SenderKind::ALL {
            assert_eq!(SenderKind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(SenderKind::parse("workday"), None);
    }
}
