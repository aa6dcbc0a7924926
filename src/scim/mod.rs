//! SCIM 2.0 service provider (RFC 7643 / 7644) for identity providers that provision
//! (Okta, Entra ID): `/scim/v2/{source}/...`, one configured `kind = "scim"` source per
//! IdP connection, each with its own bearer token. See docs/scim.md.
//!
//! Every change to a User (and every Group membership change, for the members it
//! touches) is journaled as a canonical lifecycle event (inbound-sources §8.3) and
//! applied by the worker exactly like a webhook delivery.

pub mod error;
pub mod events;
pub mod filter;
pub mod patch;
pub mod resources;
pub mod routes;
pub mod schema;
pub mod service;

pub use error::{ScimError, ScimType};

/// The SCIM media type; `application/json` is accepted on input too.
pub const SCIM_CONTENT_TYPE: &str = "application/scim+json";
