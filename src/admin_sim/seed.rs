//! The seed file: the organization the simulator starts with.

use std::path::Path;

use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::model::{
    ADDABLE_WORKSPACE_ROLES, KeyScope, KeyStatus, OrgKind, Organization, RETURNED_ORG_ROLES,
    mint_uuid,
};
use super::state::{Credentials, OAuthToken, Settings, SimState};

#[derive(Debug, thiserror::Error)]
pub enum SeedError {
    #[error("cannot read seed file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("seed file {path} is not valid: {message}")]
    Parse { path: String, message: String },
    #[error("seed: {0}")]
    Invalid(String),
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Seed {
    pub organization: Option<SeedOrg>,
    pub admin_keys: Vec<String>,
    pub oauth_tokens: Vec<SeedToken>,
    pub users: Vec<SeedUser>,
    pub workspaces: Vec<SeedWorkspace>,
    pub api_keys: Vec<SeedKey>,
    pub invites: Vec<SeedInvite>,
    pub settings: Option<Settings>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedOrg {
    pub id: Option<String>,
    pub name: Option<String>,
    #[serde(default)]
    pub kind: OrgKind,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedToken {
    pub token: String,
    #[serde(default)]
    pub scopes: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedUser {
    pub email: String,
    pub name: Option<String>,
    pub role: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedWorkspace {
    pub name: String,
    #[serde(default)]
    pub members: Vec<SeedMember>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedMember {
    pub email: String,
    pub workspace_role: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedKey {
    pub name: String,
    /// Workspace name; absent = the Default workspace.
    pub workspace: Option<String>,
    /// Email of the member who created it.
    pub created_by: Option<String>,
    #[serde(default = "active")]
    pub status: String,
    pub expires_at: Option<DateTime<Utc>>,
    /// A personal key: acts as its creator, org-scoped.
    #[serde(default)]
    pub personal: bool,
}

fn active() -> String {
    "active".into()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedInvite {
    pub email: String,
    pub role: String,
}

impl Seed {
    pub fn load(path: &Path) -> Result<Self, SeedError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| SeedError::Read {
            path: shown.clone(),
            source,
        })?;
        let parsed = if path.extension().is_some_and(|e| e == "toml") {
            toml::from_str(&text).map_err(|e| e.to_string())
        } else {
            serde_json::from_str(&text).map_err(|e| e.to_string())
        };
        parsed.map_err(|message| SeedError::Parse {
            path: shown,
            message,
        })
    }

    pub(super) fn build(self, now: DateTime<Utc>) -> Result<SimState, SeedError> {
        let org = self.organization.unwrap_or(SeedOrg {
            id: None,
            name: None,
            kind: OrgKind::Console,
        });
        let organization = Organization {
            id: org.id.unwrap_or_else(mint_uuid),
            name: org.name.unwrap_or_else(|| "Simulated Org".into()),
            kind: org.kind,
        };
        let credentials = Credentials {
            admin_keys: self.admin_keys,
            oauth_tokens: self
                .oauth_tokens
                .into_iter()
                .map(|t| OAuthToken {
                    token: t.token,
                    scopes: t.scopes,
                })
                .collect(),
        };
        let mut state = SimState::new(
            organization,
            self.settings.unwrap_or_default(),
            credentials,
            now,
        );

        for u in self.users {
            if !RETURNED_ORG_ROLES.contains(&u.role.as_str()) {
                return Err(SeedError::Invalid(format!(
                    "user {}: unknown role {}",
                    u.email, u.role
                )));
            }
            if state.user_by_email(&u.email).is_some() {
                return Err(SeedError::Invalid(format!("user {} listed twice", u.email)));
            }
            let name = u
                .name
                .unwrap_or_else(|| u.email.split('@').next().unwrap_or_default().to_owned());
            state.add_user(&u.email, &name, &u.role, now);
        }
        let user_id = |state: &SimState, email: &str| {
            state
                .user_by_email(email)
                .map(|u| u.id.clone())
                .ok_or_else(|| SeedError::Invalid(format!("no user with email {email}")))
        };
        for w in self.workspaces {
            let body = super::input::Body::parse(
                serde_json::json!({ "name": w.name }).to_string().as_bytes(),
            )
            .map_err(|e| SeedError::Invalid(e.message))?;
            let ws = state
                .create_workspace(&body, now)
                .map_err(|e| SeedError::Invalid(format!("workspace {}: {}", w.name, e.message)))?;
            let ws_id = ws["id"].as_str().unwrap_or_default().to_owned();
            for m in w.members {
                if !ADDABLE_WORKSPACE_ROLES.contains(&m.workspace_role.as_str()) {
                    return Err(SeedError::Invalid(format!(
                        "workspace {}: member {}: role {} cannot be assigned",
                        w.name, m.email, m.workspace_role
                    )));
                }
                let uid = user_id(&state, &m.email)?;
                state.seed_member(&ws_id, &uid, &m.workspace_role);
            }
        }
        for k in self.api_keys {
            let status = KeyStatus::parse(&k.status)
                .filter(|s| *s != KeyStatus::Expired)
                .ok_or_else(|| {
                    SeedError::Invalid(format!("api key {}: bad status {}", k.name, k.status))
                })?;
            let creator = k
                .created_by
                .as_deref()
                .map(|e| user_id(&state, e))
                .transpose()?;
            let scope = if k.personal {
                KeyScope::Organization
            } else {
                match &k.workspace {
                    Some(name) => KeyScope::Workspace(
                        state
                            .workspace_by_name(name)
                            .map(|w| w.id.clone())
                            .ok_or_else(|| {
                                SeedError::Invalid(format!(
                                    "api key {}: no workspace {name}",
                                    k.name
                                ))
                            })?,
                    ),
                    None => KeyScope::Workspace(state.default_workspace_id.clone()),
                }
            };
            let principal = if k.personal { creator.clone() } else { None };
            state.seed_api_key(
                &k.name,
                scope,
                creator,
                principal,
                status,
                k.expires_at,
                now,
            );
        }
        for i in self.invites {
            state.seed_invite(&i.email, &i.role, now);
        }
        Ok(state)
    }
}
