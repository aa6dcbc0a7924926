//! API keys: list, read, rename or deactivate, and seeding.

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::super::error::{SimError, SimResult};
use super::super::input::{Body, PageParams, Query, check_enum};
use super::super::model::*;
use super::SimState;

impl SimState {
    // ---------------------------------------------------------------- API keys

    pub(crate) fn list_api_keys(
        &self,
        query: &Query,
        now: DateTime<Utc>,
        version: ApiVersion,
    ) -> SimResult<Value> {
        self.require_members()?;
        self.require_console()?;
        let page = PageParams::parse(query, self.settings.reject_both_cursors)?;
        let status = query.get("status");
        if let Some(s) = status {
            check_enum("status", s, &["active", "inactive", "archived", "expired"])?;
        }
        let workspace = query.get("workspace_id");
        let creator = query.get("created_by_user_id");
        let items = self
            .api_keys
            .iter()
            .filter(|k| status.is_none_or(|s| k.effective_status(now).as_str() == s))
            .filter(|k| {
                workspace.is_none_or(|w| matches!(&k.scope, KeyScope::Workspace(id) if id == w))
            })
            .filter(|k| creator.is_none_or(|c| k.created_by_user_id.as_deref() == Some(c)))
            .map(|k| (k.seq, k.to_json(now, &self.default_workspace_id, version)))
            .collect();
        let keys = &self.api_keys;
        self.paginate(
            items,
            &page,
            self.global_cursor(|id| keys.iter().any(|k| k.id == id)),
        )
    }

    pub(crate) fn get_api_key(
        &self,
        id: &str,
        now: DateTime<Utc>,
        version: ApiVersion,
    ) -> SimResult<Value> {
        self.require_members()?;
        self.require_console()?;
        Ok(self.api_keys[self.key_index(id)?].to_json(now, &self.default_workspace_id, version))
    }

    pub(crate) fn update_api_key(
        &mut self,
        id: &str,
        body: &Body,
        now: DateTime<Utc>,
        version: ApiVersion,
    ) -> SimResult<Value> {
        self.require_members()?;
        self.require_console()?;
        body.only(&["name", "status"])?;
        let idx = self.key_index(id)?;
        let name = body.optional_str("name")?;
        if let Some(n) = name
            && (n.is_empty() || n.chars().count() > 500)
        {
            return Err(SimError::invalid(
                "name: String should have at least 1 and at most 500 characters",
            ));
        }
        let status = body.optional_str("status")?;
        if let Some(s) = status {
            check_enum("status", s, &["active", "inactive", "archived", "expired"])?;
            if s == "expired" {
                return Err(SimError::invalid(
                    "status: 'expired' cannot be set; it follows expires_at",
                ));
            }
        }
        let key = &mut self.api_keys[idx];
        let current = key.effective_status(now);
        if (name.is_some() || status.is_some()) && current == KeyStatus::Expired {
            return Err(SimError::invalid(format!(
                "API key {id} has expired and cannot be changed."
            )));
        }
        if let Some(s) = status.and_then(KeyStatus::parse)
            && current == KeyStatus::Archived
            && s != KeyStatus::Archived
        {
            return Err(SimError::invalid(format!(
                "API key {id} is archived; archiving is permanent."
            )));
        }
        if let Some(n) = name {
            key.name = n.to_owned();
        }
        if let Some(s) = status.and_then(KeyStatus::parse) {
            key.status = s;
        }
        Ok(key.to_json(now, &self.default_workspace_id, version))
    }

    /// Seed / control: a key as the Console would have created it.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn seed_api_key(
        &mut self,
        name: &str,
        scope: KeyScope,
        created_by_user_id: Option<String>,
        principal_user_id: Option<String>,
        status: KeyStatus,
        expires_at: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Value {
        let id = mint_id("apikey_");
        let seq = self.seq_for(&id);
        let tail: String = id.chars().rev().take(4).collect();
        let key = ApiKey {
            id,
            seq,
            name: name.to_owned(),
            created_at: now,
            created_by_user_id,
            partial_key_hint: format!("sk-ant-api03-R2D...{tail}"),
            status,
            expires_at,
            scope,
            principal_user_id,
        };
        let out = key.to_json(now, &self.default_workspace_id, ApiVersion::V2026_10_21);
        self.api_keys.push(key);
        out
    }
}
