//! The simulated organization and every state rule of docs/spec/admin-api.md §11.
//!
//! All operations take `now` from the simulator's clock, so invite expiry, key expiry and
//! the rate-limit buckets follow the time tests set.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::error::{SimError, SimResult};
use super::input::PageParams;
use super::model::*;

mod invites;
mod keys;
mod members;
mod users;
mod workspaces;

/// Behaviour switches for the points the spec leaves UNCONFIRMED, and the limits.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    pub rate_limit_per_minute: u32,
    pub invite_limit_per_hour: u32,
    /// Status for a valid but non-admin key: 403 (default) or 401.
    pub non_admin_key_status: u16,
    pub reject_both_cursors: bool,
    /// `tolerate`: a cursor naming a since-deleted object still pages from its position;
    /// `error`: it is a 400.
    pub stale_cursor: CursorPolicy,
    /// `error`: adding an existing workspace member is a 400; `ok`: returns the member.
    pub duplicate_member_add: DuplicateAdd,
    /// Model the newest guide: a removed user's personal (principal-bound) keys stop.
    pub remove_user_deactivates_personal_keys: bool,
    /// List/get inherited admin/billing workspace memberships.
    pub surface_implicit_memberships: bool,
    pub org_member_limit: Option<u32>,
    pub workspace_member_limit: Option<u32>,
    pub max_workspaces: u32,
    /// `None` = any domain may be invited.
    pub allowed_email_domains: Option<Vec<String>>,
    pub unverified_email_domains: Vec<String>,
    /// `None` = enrolled only for Enterprise orgs.
    pub sign_out_beta_enrolled: Option<bool>,
    pub max_body_bytes: usize,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum CursorPolicy {
    Tolerate,
    Error,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum DuplicateAdd {
    Error,
    Ok,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            rate_limit_per_minute: 100,
            invite_limit_per_hour: 1200,
            non_admin_key_status: 403,
            reject_both_cursors: true,
            stale_cursor: CursorPolicy::Tolerate,
            duplicate_member_add: DuplicateAdd::Error,
            remove_user_deactivates_personal_keys: false,
            surface_implicit_memberships: false,
            org_member_limit: None,
            workspace_member_limit: None,
            max_workspaces: 100,
            allowed_email_domains: None,
            unverified_email_domains: Vec::new(),
            sign_out_beta_enrolled: None,
            max_body_bytes: 1024 * 1024,
        }
    }
}

/// A token bucket: `capacity` tokens, refilled continuously over `period`.
#[derive(Debug, Clone)]
pub(super) struct Bucket {
    capacity: f64,
    tokens: f64,
    period_secs: f64,
    updated: DateTime<Utc>,
}

impl Bucket {
    pub(super) fn new(capacity: u32, period_secs: f64, now: DateTime<Utc>) -> Self {
        Self {
            capacity: f64::from(capacity),
            tokens: f64::from(capacity),
            period_secs,
            updated: now,
        }
    }

    fn rate(&self) -> f64 {
        self.capacity / self.period_secs
    }

    fn refill(&mut self, now: DateTime<Utc>) {
        let elapsed = (now - self.updated).num_microseconds().unwrap_or(i64::MAX) as f64 / 1e6;
        if elapsed > 0.0 {
            self.tokens = (self.tokens + elapsed * self.rate()).min(self.capacity);
            self.updated = now;
        }
    }

    /// Takes a token, or returns the whole seconds to wait for one.
    pub(super) fn try_take(&mut self, now: DateTime<Utc>) -> Result<(), u64> {
        self.refill(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else if self.capacity <= 0.0 {
            Err(self.period_secs.ceil() as u64)
        } else {
            Err(((1.0 - self.tokens) / self.rate()).ceil().max(1.0) as u64)
        }
    }
}

#[derive(Debug, Clone)]
pub(super) struct OAuthToken {
    pub token: String,
    pub scopes: Vec<String>,
}

/// Who is calling (checked before any route runs).
#[derive(Debug, Clone)]
pub(super) struct Credentials {
    pub admin_keys: Vec<String>,
    pub oauth_tokens: Vec<OAuthToken>,
}

#[derive(Debug)]
pub(super) struct SimState {
    pub org: Organization,
    pub settings: Settings,
    pub credentials: Credentials,
    next_seq: u64,
    /// Position of every id ever minted, deleted ones included, so a cursor that names a
    /// deleted object can still be placed (`stale_cursor = tolerate`).
    positions: HashMap<String, u64>,
    pub users: Vec<User>,
    pub invites: Vec<Invite>,
    pub workspaces: Vec<Workspace>,
    pub members: Vec<Member>,
    /// Positions of deleted memberships, keyed `workspace_id/user_id`.
    member_tombstones: HashMap<String, u64>,
    pub api_keys: Vec<ApiKey>,
    pub default_workspace_id: String,
    pub general_bucket: Bucket,
    pub invite_bucket: Bucket,
}

impl SimState {
    pub(super) fn new(
        org: Organization,
        settings: Settings,
        credentials: Credentials,
        now: DateTime<Utc>,
    ) -> Self {
        let default_workspace_id = mint_id("wrkspc_");
        let general_bucket = Bucket::new(settings.rate_limit_per_minute, 60.0, now);
        let invite_bucket = Bucket::new(settings.invite_limit_per_hour, 3600.0, now);
        let mut state = Self {
            org,
            settings,
            credentials,
            next_seq: 0,
            positions: HashMap::new(),
            users: Vec::new(),
            invites: Vec::new(),
            workspaces: Vec::new(),
            members: Vec::new(),
            member_tombstones: HashMap::new(),
            api_keys: Vec::new(),
            default_workspace_id: default_workspace_id.clone(),
            general_bucket,
            invite_bucket,
        };
        let seq = state.seq_for(&default_workspace_id);
        state.workspaces.push(Workspace {
            id: default_workspace_id,
            seq,
            name: "Default".into(),
            display_color: "#6C5BB9".into(),
            created_at: now,
            archived_at: None,
            data_residency: DataResidency::default(),
            tags: BTreeMap::new(),
            compartment_id: mint_uuid(),
            external_key_id: None,
            is_default: true,
        });
        state
    }

    /// Re-creates the buckets after a settings change.
    pub(super) fn reset_buckets(&mut self, now: DateTime<Utc>) {
        self.general_bucket = Bucket::new(self.settings.rate_limit_per_minute, 60.0, now);
        self.invite_bucket = Bucket::new(self.settings.invite_limit_per_hour, 3600.0, now);
    }

    fn seq_for(&mut self, id: &str) -> u64 {
        self.next_seq += 1;
        self.positions.insert(id.to_owned(), self.next_seq);
        self.next_seq
    }

    pub(super) fn sign_out_enrolled(&self) -> bool {
        self.settings
            .sign_out_beta_enrolled
            .unwrap_or(self.org.kind == OrgKind::Enterprise)
    }

    /// Invites flip to `expired` lazily once the clock passes `expires_at` (§11.13).
    pub(super) fn expire_invites(&mut self, now: DateTime<Utc>) {
        for invite in &mut self.invites {
            if invite.status == InviteStatus::Pending && invite.expires_at <= now {
                invite.status = InviteStatus::Expired;
            }
        }
    }

    // ---------------------------------------------------------------- lookups

    pub(super) fn user(&self, id: &str) -> SimResult<&User> {
        self.users
            .iter()
            .find(|u| u.id == id)
            .ok_or_else(|| SimError::not_found("User", id))
    }

    fn user_index(&self, id: &str) -> SimResult<usize> {
        self.users
            .iter()
            .position(|u| u.id == id)
            .ok_or_else(|| SimError::not_found("User", id))
    }

    pub(super) fn user_by_email(&self, email: &str) -> Option<&User> {
        self.users
            .iter()
            .find(|u| u.email.eq_ignore_ascii_case(email))
    }

    fn invite_index(&self, id: &str) -> SimResult<usize> {
        self.invites
            .iter()
            .position(|i| i.id == id)
            .ok_or_else(|| SimError::not_found("Invite", id))
    }

    fn workspace_index(&self, id: &str) -> SimResult<usize> {
        self.workspaces
            .iter()
            .position(|w| w.id == id)
            .ok_or_else(|| SimError::not_found("Workspace", id))
    }

    pub(super) fn workspace_by_name(&self, name: &str) -> Option<&Workspace> {
        self.workspaces
            .iter()
            .find(|w| w.name == name && w.archived_at.is_none())
    }

    fn key_index(&self, id: &str) -> SimResult<usize> {
        self.api_keys
            .iter()
            .position(|k| k.id == id)
            .ok_or_else(|| SimError::not_found("API key", id))
    }

    fn require_console(&self) -> SimResult<()> {
        // Workspaces and API keys do not exist for Claude Enterprise orgs (§9).
        if self.org.kind == OrgKind::Enterprise {
            Err(SimError::not_found_path())
        } else {
            Ok(())
        }
    }

    /// Members, invites, workspace members and API keys do not exist on Claude Platform on
    /// AWS (§9); the spec leaves the error UNCONFIRMED, the simulator answers a plain 404.
    fn require_members(&self) -> SimResult<()> {
        if self.org.kind == OrgKind::Aws {
            Err(SimError::not_found_path())
        } else {
            Ok(())
        }
    }

    // ---------------------------------------------------------------- paging

    /// Pages a newest-first list exactly per §3. `items` carry their position (`seq`);
    /// `cursor_seq` places a cursor id (which need not be in the filtered list).
    fn paginate(
        &self,
        mut items: Vec<(u64, Value)>,
        page: &PageParams,
        cursor_seq: impl Fn(&str) -> Option<(u64, bool)>,
    ) -> SimResult<Value> {
        items.sort_by_key(|item| std::cmp::Reverse(item.0));
        let place = |id: &str| -> SimResult<u64> {
            match cursor_seq(id) {
                Some((seq, alive)) => {
                    if !alive && self.settings.stale_cursor == CursorPolicy::Error {
                        Err(SimError::invalid(format!(
                            "Cursor {id} refers to an object that no longer exists."
                        )))
                    } else {
                        Ok(seq)
                    }
                }
                None => Err(SimError::invalid(format!(
                    "Invalid pagination cursor: {id}"
                ))),
            }
        };
        let (data, has_more): (Vec<(u64, Value)>, bool) = if let Some(before) = &page.before_id {
            let seq = place(before)?;
            // Newer than the cursor, i.e. earlier in the list; the page is the `limit`
            // items right before the cursor.
            let newer: Vec<_> = items.into_iter().filter(|(s, _)| *s > seq).collect();
            let start = newer.len().saturating_sub(page.limit);
            let has_more = start > 0;
            (newer.into_iter().skip(start).collect(), has_more)
        } else {
            let older: Vec<_> = match &page.after_id {
                Some(after) => {
                    let seq = place(after)?;
                    items.into_iter().filter(|(s, _)| *s < seq).collect()
                }
                None => items,
            };
            let has_more = older.len() > page.limit;
            (older.into_iter().take(page.limit).collect(), has_more)
        };
        let id_of = |v: &Value| {
            v.get("id")
                .or_else(|| v.get("user_id"))
                .cloned()
                .unwrap_or(Value::Null)
        };
        let first_id = data.first().map_or(Value::Null, |(_, v)| id_of(v));
        let last_id = data.last().map_or(Value::Null, |(_, v)| id_of(v));
        Ok(json!({
            "data": data.into_iter().map(|(_, v)| v).collect::<Vec<_>>(),
            "has_more": has_more,
            "first_id": first_id,
            "last_id": last_id,
        }))
    }

    fn global_cursor<'a>(
        &'a self,
        alive: impl Fn(&str) -> bool + 'a,
    ) -> impl Fn(&str) -> Option<(u64, bool)> + 'a {
        move |id| self.positions.get(id).map(|seq| (*seq, alive(id)))
    }

    // ---------------------------------------------------------------- organization

    pub(super) fn org_me(&self) -> Value {
        self.org.to_json()
    }

    /// The whole state for `GET /_sim/state` and the demo's tables.
    pub(super) fn dump(&self, now: DateTime<Utc>) -> Value {
        json!({
            "organization": self.org.to_json(),
            "kind": self.org.kind,
            "default_workspace_id": self.default_workspace_id,
            "users": self.users.iter().map(User::to_json).collect::<Vec<_>>(),
            "invites": self.invites.iter().map(Invite::to_json).collect::<Vec<_>>(),
            "workspaces": self.workspaces.iter().map(Workspace::to_json).collect::<Vec<_>>(),
            "workspace_members": self.members.iter().map(Member::to_json).collect::<Vec<_>>(),
            "api_keys": self.api_keys.iter().map(|k| k.to_json(now, &self.default_workspace_id, ApiVersion::V2026_10_21)).collect::<Vec<_>>(),
            "now": ts(now),
            "settings": self.settings,
        })
    }
}

fn display_name_from_email(email: &str) -> String {
    email.split('@').next().unwrap_or(email).to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    fn t0() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-28T10:00:00Z")
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_default()
    }

    #[test]
    fn bucket_refills_and_reports_wait() {
        let now = t0();
        let mut b = Bucket::new(2, 60.0, now);
        assert!(b.try_take(now).is_ok());
        assert!(b.try_take(now).is_ok());
        assert_eq!(b.try_take(now), Err(30));
        assert!(b.try_take(now + Duration::seconds(30)).is_ok());
    }
}

#[cfg(test)]
mod sdk_conformance_tests {
    //! Unit-level pins for the behaviour the official SDK's conformance suite asked for.

    use super::*;
    use crate::admin_sim::input::{Body, Query};
    use crate::admin_sim::seed::Seed;

    fn state(seed: Value) -> SimState {
        let seed: Seed = match serde_json::from_value(seed) {
            Ok(s) => s,
            Err(e) => panic!("seed: {e}"),
        };
        match seed.build(Utc::now()) {
            Ok(s) => s,
            Err(e) => panic!("seed: {e}"),
        }
    }

    fn body(v: Value) -> Body {
        match Body::parse(v.to_string().as_bytes()) {
            Ok(b) => b,
            Err(e) => panic!("body: {e}"),
        }
    }

    fn id_of(st: &SimState, email: &str) -> String {
        st.user_by_email(email)
            .map(|u| u.id.clone())
            .unwrap_or_default()
    }

    fn names(page: &Value) -> Vec<String> {
        page["data"]
            .as_array()
            .map(|d| {
                d.iter()
                    .map(|w| w["name"].as_str().unwrap_or_default().to_owned())
                    .collect()
            })
            .unwrap_or_default()
    }

    #[test]
    fn workspace_list_include_default_and_ids() {
        let st = state(json!({ "workspaces": [ { "name": "A" }, { "name": "B" } ] }));
        let list = |q: &str| st.list_workspaces(&Query::parse(Some(q)));
        assert_eq!(
            list("").map(|p| names(&p)).ok(),
            Some(vec!["B".into(), "A".into()])
        );
        assert_eq!(
            list("include_default=true").map(|p| names(&p)).ok(),
            Some(vec!["B".into(), "A".into(), "Default".into()])
        );
        let a = st
            .workspace_by_name("A")
            .map(|w| w.id.clone())
            .unwrap_or_default();
        let default = st.default_workspace_id.clone();
        assert_eq!(
            list(&format!("ids[]={a}&ids[]={default}"))
                .map(|p| names(&p))
                .ok(),
            Some(vec!["A".into()])
        );
        let many: Vec<String> = (0..101).map(|i| format!("ids[]=w{i}")).collect();
        assert_eq!(
            list(&many.join("&")).map_err(|e| e.status.as_u16()).err(),
            Some(400)
        );
    }

    #[test]
    fn user_profile_id_is_not_found() {
        let mut st = state(json!({}));
        let err = st
            .create_workspace(
                &body(json!({ "name": "W", "user_profile_id": "up_1" })),
                Utc::now(),
            )
            .err();
        assert_eq!(
            err.and_then(|e| e.error_code),
            Some("user_profile_not_found")
        );
        let ok = st.create_workspace(
            &body(json!({ "name": "W", "user_profile_id": null })),
            Utc::now(),
        );
        assert!(ok.is_ok());
    }

    #[test]
    fn roles_filter_follows_the_org_kind() {
        let console = state(json!({ "users": [ { "email": "a@x.test", "role": "admin" } ] }));
        assert!(
            console
                .list_users(&Query::parse(Some("roles[]=admin")))
                .is_ok()
        );
        assert!(
            console
                .list_users(&Query::parse(Some("roles[]=owner")))
                .is_err()
        );
        let enterprise = state(json!({ "organization": { "kind": "enterprise" } }));
        assert!(
            enterprise
                .list_users(&Query::parse(Some("roles[]=owner")))
                .is_ok()
        );
        assert!(
            enterprise
                .list_invites(&Query::parse(Some("roles[]=developer")))
                .is_err()
        );
    }

    #[test]
    fn sign_out_refusals_carry_codes() {
        let st = state(json!({
            "organization": { "kind": "enterprise" },
            "users": [
                { "email": "po@x.test", "role": "primary_owner" },
                { "email": "o@x.test", "role": "owner" },
                { "email": "ma@x.test", "role": "membership_admin" },
                { "email": "m@x.test", "role": "managed" },
            ],
        }));
        let beta = Some("admin-user-sign-out-2026-10-08");
        let code = |email: &str, caller: Caller| {
            st.sign_out_user(&id_of(&st, email), beta, caller)
                .map(|_| ())
                .map_err(|e| (e.status.as_u16(), e.error_code.unwrap_or_default()))
        };
        let po = Err((400, "cannot_sign_out_primary_owner"));
        assert_eq!(code("po@x.test", Caller::ApiKey), po);
        assert_eq!(code("po@x.test", Caller::OAuthToken), po);
        assert_eq!(
            code("o@x.test", Caller::ApiKey),
            Err((403, "cannot_sign_out_owner"))
        );
        assert_eq!(
            code("ma@x.test", Caller::ApiKey),
            Err((403, "cannot_sign_out_membership_admin"))
        );
        let privileged = Err((403, "cannot_sign_out_privileged_member"));
        assert_eq!(code("o@x.test", Caller::OAuthToken), privileged);
        assert_eq!(code("ma@x.test", Caller::OAuthToken), privileged);
        assert_eq!(code("m@x.test", Caller::ApiKey), Ok(()));
    }
}
