//! Keycard: joiner / mover / leaver automation for organizations on the Claude Platform.
//!
//! Data flows one way: deliveries -> events -> plans -> actions -> Admin API, each step
//! journaled. Each concern lives in its own module.

pub mod admin_api;
pub mod admin_sim;
pub mod app;
pub mod budget;
pub mod cli;
pub mod clock;
pub mod config;
pub mod demo;
pub mod executor;
pub mod http;
pub mod ingest;
pub mod journal;
pub mod mirror;
pub mod planner;
pub mod rules;
pub mod scim;
pub mod sender_api;
pub mod sender_sim;
pub mod settings;
pub mod sources;
pub mod state;
pub mod telemetry;
