//! Authentication of inbound deliveries, one module per signing scheme. Verifiers work on raw
//! body bytes and an injected `now`; the HTTP layer only extracts headers and maps errors.

pub mod standard_webhooks;
