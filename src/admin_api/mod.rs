//! Typed async client for the Anthropic Admin API (contract: `docs/spec/admin-api.md` §1–§7, §14).
//!
//! ```no_run
//! # async fn demo() -> Result<(), keycard::admin_api::AdminApiError> {
//! use keycard::admin_api::*;
//!
//! let client = AdminClient::new(
//!     AdminClientConfig::new(Credential::admin_key("sk-ant-admin01-..."))
//!         .base_url("http://127.0.0.1:8787"),
//! )?;
//! let found = client.list_users(&ListUsers::new().email("ada@example.com")).await?;
//! if found.value.data.is_empty() {
//!     let invite = client
//!         .create_invite(&CreateInvite::new("ada@example.com", OrgRole::Developer))
//!         .await?;
//!     println!("invited {} (request-id {:?})", invite.value.id, invite.meta.request_id);
//! }
//! # Ok(()) }
//! ```
//!
//! Design:
//! - Every call returns [`Reply<T>`]: the decoded object plus [`CallMeta`] (status,
//!   `request-id`, attempts, time waited), because Keycard journals the request-id of every
//!   action. Errors carry the same facts ([`AdminApiError::request_id`], `attempts`).
//! - One retry policy ([`RetryPolicy`]) and one pacer ([`PacingConfig`]) per client; both
//!   wait only through the injected [`crate::clock::Clock`], so tests with `ManualClock` run
//!   instantly and can assert the exact waits.
//! - Decoding is tolerant (see [`types`]); nothing a server sends can panic the client.
//! - The credential is a [`secrecy::SecretString`] and is never printed, logged or followed
//!   across redirects.

mod client;
mod endpoints;
mod error;
mod observe;
mod pacing;
mod pagination;
mod retry;
pub mod types;

pub use client::{
    AdminClient, AdminClientConfig, CallMeta, Credential, DEFAULT_ANTHROPIC_VERSION,
    DEFAULT_BASE_URL, RateLimitInfo, Reply, SIGN_OUT_BETA,
};
pub use error::{
    AdminApiError, ApiError, DecodeErrorKind, ErrorCode, ErrorType, TransportErrorKind,
};
pub use observe::{Attempt, CallObserver};
pub use pacing::{
    BucketRule, BucketState, BudgetStore, LocalBudget, PacingConfig, RateLimit, RequestPriority,
    with_priority,
};
pub use pagination::{
    ListApiKeys, ListInvites, ListQuery, ListUsers, ListWorkspaceMembers, ListWorkspaces,
    MAX_PAGE_SIZE, PageParams,
};
pub use retry::RetryPolicy;
pub use types::{
    ActorType, ApiKey, ApiKeyScope, ApiKeyStatus, CreateInvite, CreateWorkspace, CreatedBy,
    DataResidency, InferenceGeos, Invite, InviteDeleted, InviteStatus, OrgRole, Organization, Page,
    Principal, UpdateApiKey, UpdateWorkspace, User, UserDeleted, Workspace, WorkspaceMember,
    WorkspaceMemberDeleted, WorkspaceRole,
};
