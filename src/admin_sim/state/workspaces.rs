//! Workspaces: create, list, update, archive, and their validation rules.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use super::super::error::{SimError, SimResult};
use super::super::input::{Body, PageParams, Query, check_enum};
use super::super::model::*;
use super::SimState;

impl SimState {
    // ---------------------------------------------------------------- workspaces

    fn check_workspace_name(name: &str) -> SimResult<()> {
        let len = name.chars().count();
        if name.trim().is_empty() || len > 40 {
            return Err(SimError::invalid(
                "name: String should have at least 1 and at most 40 characters",
            ));
        }
        Ok(())
    }

    fn check_color(color: &str) -> SimResult<()> {
        let ok = color.len() == 7
            && color.starts_with('#')
            && color[1..].chars().all(|c| c.is_ascii_hexdigit());
        if ok {
            Ok(())
        } else {
            Err(SimError::invalid(format!(
                "display_color: String should match pattern '^#[0-9A-Fa-f]{{6}}$'; got '{color}'"
            )))
        }
    }

    fn parse_tags(
        tags: &Map<String, Value>,
        existing: &mut BTreeMap<String, String>,
    ) -> SimResult<()> {
        for (key, value) in tags {
            if key.to_lowercase().starts_with("anthropic") {
                return Err(SimError::invalid(format!(
                    "tags: key '{key}' may not start with 'anthropic'"
                )));
            }
            match value {
                Value::String(v) => {
                    existing.insert(key.clone(), v.clone());
                }
                // A null value deletes the tag (the SDK types values as nullable).
                Value::Null => {
                    existing.remove(key);
                }
                _ => {
                    return Err(SimError::invalid(format!(
                        "tags.{key}: Input should be a valid string"
                    )));
                }
            }
        }
        Ok(())
    }

    fn parse_geo_list(value: &Value) -> SimResult<AllowedGeos> {
        match value {
            Value::String(s) if s == "unrestricted" => Ok(AllowedGeos::Unrestricted),
            Value::Array(items) => items
                .iter()
                .map(|v| match v.as_str() {
                    Some(g @ ("global" | "us")) => Ok(g.to_owned()),
                    _ => Err(SimError::invalid(
                        "data_residency.allowed_inference_geos: items should be 'global' or 'us'",
                    )),
                })
                .collect::<SimResult<Vec<_>>>()
                .map(AllowedGeos::List),
            _ => Err(SimError::invalid(
                "data_residency.allowed_inference_geos: Input should be a list or 'unrestricted'",
            )),
        }
    }

    fn apply_residency(
        residency: &mut DataResidency,
        input: &Map<String, Value>,
        creating: bool,
    ) -> SimResult<()> {
        for key in input.keys() {
            if ![
                "workspace_geo",
                "allowed_inference_geos",
                "default_inference_geo",
            ]
            .contains(&key.as_str())
            {
                return Err(SimError::invalid(format!(
                    "data_residency.{key}: Extra inputs are not permitted"
                )));
            }
        }
        if let Some(geo) = input.get("workspace_geo").filter(|v| !v.is_null()) {
            let geo = geo.as_str().ok_or_else(|| {
                SimError::invalid("data_residency.workspace_geo: Input should be a valid string")
            })?;
            if creating {
                check_enum("data_residency.workspace_geo", geo, &["us"])?;
                residency.workspace_geo = geo.to_owned();
            } else if geo != residency.workspace_geo {
                return Err(SimError::invalid(
                    "data_residency.workspace_geo cannot be changed after the workspace is created",
                ));
            }
        }
        if let Some(allowed) = input.get("allowed_inference_geos").filter(|v| !v.is_null()) {
            residency.allowed_inference_geos = Self::parse_geo_list(allowed)?;
        }
        if let Some(default) = input.get("default_inference_geo").filter(|v| !v.is_null()) {
            let default = default.as_str().ok_or_else(|| {
                SimError::invalid(
                    "data_residency.default_inference_geo: Input should be a valid string",
                )
            })?;
            check_enum(
                "data_residency.default_inference_geo",
                default,
                &["global", "us"],
            )?;
            residency.default_inference_geo = default.to_owned();
        }
        if let AllowedGeos::List(list) = &residency.allowed_inference_geos
            && !list.contains(&residency.default_inference_geo)
        {
            return Err(SimError::invalid(format!(
                "data_residency.default_inference_geo '{}' must be one of allowed_inference_geos",
                residency.default_inference_geo
            )));
        }
        Ok(())
    }

    fn check_external_key(value: &str) -> SimResult<()> {
        if value.starts_with("ekey_") || value.starts_with("arn:aws:kms:") {
            Ok(())
        } else {
            Err(SimError::invalid(format!(
                "external_key_id: '{value}' is not a registered external key"
            )))
        }
    }

    /// `user_profile_id` (create and update in the SDK): the simulator models no user
    /// profiles, so naming one is the SDK's `user_profile_not_found`; null is accepted.
    fn check_user_profile(body: &Body) -> SimResult<()> {
        match body.optional_str("user_profile_id")? {
            None => Ok(()),
            Some(id) => Err(SimError::invalid_code(
                "user_profile_not_found",
                format!("User profile {id} does not exist in this organization."),
            )),
        }
    }

    pub(crate) fn create_workspace(&mut self, body: &Body, now: DateTime<Utc>) -> SimResult<Value> {
        self.require_console()?;
        body.only(&[
            "name",
            "display_color",
            "data_residency",
            "external_key_id",
            "tags",
            "user_profile_id",
        ])?;
        let name = body.required_str("name")?.to_owned();
        Self::check_workspace_name(&name)?;
        let color = match body.optional_str("display_color")? {
            Some(c) => {
                Self::check_color(c)?;
                c.to_owned()
            }
            None => {
                const PALETTE: &[&str] = &["#6C5BB9", "#D97757", "#3B82F6", "#10B981", "#F59E0B"];
                PALETTE[rand::random_range(0..PALETTE.len())].to_owned()
            }
        };
        let mut residency = DataResidency::default();
        if let Some(input) = body.optional_object("data_residency")? {
            Self::apply_residency(&mut residency, input, true)?;
        }
        let mut tags = BTreeMap::new();
        if let Some(input) = body.optional_object("tags")? {
            Self::parse_tags(input, &mut tags)?;
        }
        let external_key_id = body.optional_str("external_key_id")?.map(str::to_owned);
        if let Some(k) = &external_key_id {
            Self::check_external_key(k)?;
        }
        Self::check_user_profile(body)?;
        let active = self
            .workspaces
            .iter()
            .filter(|w| !w.is_default && w.archived_at.is_none())
            .count();
        if active >= self.settings.max_workspaces as usize {
            return Err(SimError::invalid(format!(
                "The organization already has {active} workspaces, the maximum; archive one or ask your account team for more."
            )));
        }
        let id = mint_id("wrkspc_");
        let seq = self.seq_for(&id);
        let ws = Workspace {
            id,
            seq,
            name,
            display_color: color,
            created_at: now,
            archived_at: None,
            data_residency: residency,
            tags,
            compartment_id: mint_uuid(),
            external_key_id,
            is_default: false,
        };
        let out = ws.to_json();
        self.workspaces.push(ws);
        Ok(out)
    }

    pub(crate) fn get_workspace(&self, id: &str) -> SimResult<Value> {
        self.require_console()?;
        Ok(self.workspaces[self.workspace_index(id)?].to_json())
    }

    pub(crate) fn list_workspaces(&self, query: &Query) -> SimResult<Value> {
        self.require_console()?;
        let page = PageParams::parse(query, self.settings.reject_both_cursors)?;
        let include_archived = query.bool("include_archived")?.unwrap_or(false);
        // The SDK's `include_default` (default false keeps §7.4's "never listed") and `ids`
        // (at most 100; ids the caller can't list are left out, the other filters still apply).
        let include_default = query.bool("include_default")?.unwrap_or(false);
        let ids = query.all("ids");
        if ids.len() > 100 {
            return Err(SimError::invalid("ids: List should have at most 100 items"));
        }
        let items = self
            .workspaces
            .iter()
            .filter(|w| include_default || !w.is_default)
            .filter(|w| include_archived || w.archived_at.is_none())
            .filter(|w| ids.is_empty() || ids.contains(&w.id.as_str()))
            .map(|w| (w.seq, w.to_json()))
            .collect();
        let workspaces = &self.workspaces;
        self.paginate(
            items,
            &page,
            self.global_cursor(|id| {
                workspaces
                    .iter()
                    .any(|w| w.id == id && (include_default || !w.is_default))
            }),
        )
    }

    pub(crate) fn update_workspace(&mut self, id: &str, body: &Body) -> SimResult<Value> {
        self.require_console()?;
        body.only(&[
            "name",
            "display_color",
            "data_residency",
            "external_key_id",
            "tags",
            "user_profile_id",
        ])?;
        let idx = self.workspace_index(id)?;
        let mut ws = self.workspaces[idx].clone();
        if ws.archived_at.is_some() {
            return Err(SimError::invalid(format!(
                "Workspace {id} is archived and cannot be modified."
            )));
        }
        if let Some(name) = body.optional_str("name")? {
            Self::check_workspace_name(name)?;
            if ws.is_default && name != ws.name {
                return Err(SimError::invalid(
                    "The Default workspace cannot be renamed.",
                ));
            }
            ws.name = name.to_owned();
        }
        if let Some(color) = body.optional_str("display_color")? {
            Self::check_color(color)?;
            ws.display_color = color.to_owned();
        }
        if let Some(input) = body.optional_object("data_residency")? {
            Self::apply_residency(&mut ws.data_residency, input, false)?;
        }
        if let Some(key) = body.optional_str("external_key_id")? {
            Self::check_external_key(key)?;
            match &ws.external_key_id {
                Some(existing) if existing != key => {
                    return Err(SimError::invalid(
                        "external_key_id is write-once and is already set for this workspace",
                    ));
                }
                _ => ws.external_key_id = Some(key.to_owned()),
            }
        }
        if let Some(input) = body.optional_object("tags")? {
            Self::parse_tags(input, &mut ws.tags)?;
        }
        Self::check_user_profile(body)?;
        let out = ws.to_json();
        self.workspaces[idx] = ws;
        Ok(out)
    }

    pub(crate) fn archive_workspace(
        &mut self,
        id: &str,
        body: &Body,
        now: DateTime<Utc>,
    ) -> SimResult<Value> {
        self.require_console()?;
        body.only(&[])?;
        let idx = self.workspace_index(id)?;
        let ws = &mut self.workspaces[idx];
        if ws.is_default {
            return Err(SimError::invalid(
                "The Default workspace cannot be archived.",
            ));
        }
        if ws.archived_at.is_some() {
            return Err(SimError::invalid(format!(
                "Workspace {id} is already archived."
            )));
        }
        ws.archived_at = Some(now);
        let out = ws.to_json();
        // Archiving deactivates every key in the workspace.
        for key in &mut self.api_keys {
            if matches!(&key.scope, KeyScope::Workspace(w) if w == id)
                && key.effective_status(now) != KeyStatus::Expired
            {
                key.status = KeyStatus::Archived;
            }
        }
        Ok(out)
    }
}
