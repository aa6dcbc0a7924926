//! What a SCIM write does, apart from HTTP: store the resource and journal what it means
//! for each person it touches, in **one transaction**.
//!
//! The stored User/Group and its lifecycle events commit together or not at all, so the
//! IdP's retry always finds either both (and is answered as a repeat) or neither (and is
//! applied). A write runs in a task of its own ([`run`]): an IdP that hangs up mid-request
//! does not cut it between statements; it finishes or rolls back whole.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use serde_json::{Map, Value};
use uuid::Uuid;

use super::error::ScimError;
use super::events::{classify, lifecycle_event, person, work_email};
use super::filter::get_ci;
use super::resources::{enterprise, member_ids, render, text};
use super::schema::ResourceType;
use crate::ingest::EventKind;
use crate::journal::{Journal, ScimRecord, ScimWrite, Tx};
use crate::sources::DeactivateMeans;

type Result<T, E = ScimError> = std::result::Result<T, E>;

/// Which SCIM connection a request belongs to, and what it may assume.
#[derive(Debug, Clone)]
pub(crate) struct Scope {
    pub source: String,
    pub means: DeactivateMeans,
    /// The connection's base URL (for `meta.location`).
    pub base: String,
    /// From the injected clock, when the request arrived.
    pub now: DateTime<Utc>,
}

/// A stored resource as served back, with its version for the `ETag`.
#[derive(Debug, Clone)]
pub(crate) struct Written {
    pub record: ScimRecord,
    pub body: Value,
    /// How many lifecycle events the write journaled (the worker is woken when > 0).
    pub events: usize,
}

/// Runs one write in a transaction of its own, in a task of its own: committed whole when
/// `work` succeeds, rolled back whole when it fails, and never abandoned half-way because
/// the client went away (the handler awaiting it may be dropped; the task is not).
pub(crate) async fn run<T, F>(journal: &Journal, work: F) -> Result<T>
where
    T: Send + 'static,
    F: for<'t> FnOnce(&'t mut Tx) -> BoxFuture<'t, Result<T>> + Send + 'static,
{
    let journal = journal.clone();
    let task = tokio::spawn(async move {
        let mut tx = journal.begin().await?;
        let out = work(&mut tx).await?;
        tx.commit().await?;
        Ok(out)
    });
    task.await.map_err(|e| {
        tracing::error!(error = %e, "a SCIM write task failed");
        ScimError::internal("the change could not be completed; retry it")
    })?
}

// ---------------------------------------------------------------------------------------------
// Reading (inside whatever unit of work the caller has)

/// Group `(id, displayName)` pairs a User belongs to.
pub(crate) async fn groups_of(
    tx: &mut Tx,
    source: &str,
    user_id: &str,
) -> Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    for gid in tx.scim_groups_of(source, user_id).await? {
        if let Some(g) = tx.scim_get(source, "Group", &gid).await? {
            out.push((g.id, g.name));
        }
    }
    Ok(out)
}

/// A resource as served back (a User with its groups).
pub(crate) async fn rendered(tx: &mut Tx, scope: &Scope, record: &ScimRecord) -> Result<Value> {
    let groups = if record.resource_type == "User" {
        groups_of(tx, &scope.source, &record.id).await?
    } else {
        Vec::new()
    };
    Ok(render(&scope.base, record, &groups))
}

pub(crate) async fn load(
    tx: &mut Tx,
    source: &str,
    rt: ResourceType,
    id: &str,
) -> Result<ScimRecord> {
    found(rt, id, tx.scim_get(source, rt.as_str(), id).await?)
}

/// Loads a resource to change it, locked for the rest of the transaction.
async fn load_for_update(
    tx: &mut Tx,
    source: &str,
    rt: ResourceType,
    id: &str,
) -> Result<ScimRecord> {
    found(
        rt,
        id,
        tx.scim_get_for_update(source, rt.as_str(), id).await?,
    )
}

fn found(rt: ResourceType, id: &str, record: Option<ScimRecord>) -> Result<ScimRecord> {
    record.ok_or_else(|| ScimError::not_found(format!("{} '{id}' not found", rt.as_str())))
}

/// Checks that every member is a User of this source; returns the member ids.
async fn check_members(
    tx: &mut Tx,
    source: &str,
    group: &Map<String, Value>,
) -> Result<Vec<String>> {
    let ids = member_ids(group);
    for id in &ids {
        if tx.scim_get(source, "User", id).await?.is_none() {
            return Err(ScimError::invalid_value(format!(
                "member '{id}' is not a User of this source"
            )));
        }
    }
    Ok(ids)
}

fn name_of(rt: ResourceType, resource: &Map<String, Value>) -> String {
    let key = match rt {
        ResourceType::User => "userName",
        ResourceType::Group => "displayName",
    };
    text(resource, key).unwrap_or_default().to_owned()
}

fn conflict(rt: ResourceType, name: &str) -> ScimError {
    match rt {
        ResourceType::User => ScimError::uniqueness(format!("userName '{name}' is already taken")),
        ResourceType::Group => {
            ScimError::uniqueness(format!("a Group named '{name}' already exists"))
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Writing

/// `POST /Users`, `POST /Groups`.
pub(crate) async fn create(
    tx: &mut Tx,
    scope: &Scope,
    rt: ResourceType,
    resource: Map<String, Value>,
    raw: &[u8],
) -> Result<Written> {
    let members = match rt {
        ResourceType::Group => Some(check_members(tx, &scope.source, &resource).await?),
        ResourceType::User => None,
    };
    let record = ScimRecord {
        source: scope.source.clone(),
        resource_type: rt.as_str().to_owned(),
        id: Uuid::new_v4().to_string(),
        name: name_of(rt, &resource),
        external_id: text(&resource, "externalId").map(str::to_owned),
        resource: Value::Object(resource.clone()),
        version: 1,
        created_at: scope.now,
        updated_at: scope.now,
    };
    match tx.scim_create(&record, members.as_deref()).await? {
        ScimWrite::Written => {}
        ScimWrite::NameTaken => return Err(conflict(rt, &record.name)),
        ScimWrite::VersionMismatch | ScimWrite::NotFound => {
            return Err(ScimError::internal("the resource could not be stored"));
        }
    }
    let events = match rt {
        ResourceType::User => {
            journal_user(
                tx,
                scope,
                &record.id,
                None,
                Some(&resource),
                "POST /Users",
                raw,
            )
            .await?
        }
        ResourceType::Group => {
            let touched: BTreeSet<String> = members.unwrap_or_default().into_iter().collect();
            journal_members(tx, scope, &touched, "POST /Groups", raw).await?
        }
    };
    let body = rendered(tx, scope, &record).await?;
    Ok(Written {
        record,
        body,
        events,
    })
}

/// A `PUT` or `PATCH`: the precondition (`If-Match`) to check against what is stored, and
/// the resource it makes of the stored one.
pub(crate) struct Change<C, F> {
    pub method: &'static str,
    pub check: C,
    pub apply: F,
}

/// `PUT` and `PATCH`: stores the changed resource if the precondition still holds, and
/// journals what it means.
pub(crate) async fn write<C, F>(
    tx: &mut Tx,
    scope: &Scope,
    rt: ResourceType,
    id: &str,
    change: Change<C, F>,
    raw: &[u8],
) -> Result<Written>
where
    C: FnOnce(&ScimRecord) -> Result<()>,
    F: FnOnce(&Map<String, Value>) -> Result<Map<String, Value>>,
{
    let current = load_for_update(tx, &scope.source, rt, id).await?;
    (change.check)(&current)?;
    let before = current.resource.as_object().cloned().unwrap_or_default();
    let resource = (change.apply)(&before)?;
    let method = change.method;
    if before == resource {
        // Nothing changed (Okta re-PUTs what it just read): no new version, no event.
        let body = rendered(tx, scope, &current).await?;
        return Ok(Written {
            record: current,
            body,
            events: 0,
        });
    }
    let members = match rt {
        ResourceType::Group => Some(check_members(tx, &scope.source, &resource).await?),
        ResourceType::User => None,
    };
    let record = ScimRecord {
        name: name_of(rt, &resource),
        external_id: text(&resource, "externalId").map(str::to_owned),
        resource: Value::Object(resource.clone()),
        version: current.version + 1,
        updated_at: scope.now,
        ..current.clone()
    };
    match tx
        .scim_replace(&record, current.version, members.as_deref())
        .await?
    {
        ScimWrite::Written => {}
        ScimWrite::NameTaken => return Err(conflict(rt, &record.name)),
        ScimWrite::VersionMismatch => {
            return Err(ScimError::precondition_failed(
                "the resource changed while this request was processed; read it and retry",
            ));
        }
        ScimWrite::NotFound => {
            return Err(ScimError::not_found(format!(
                "{} '{}' not found",
                rt.as_str(),
                record.id
            )));
        }
    }
    let request = format!("{method} /{}/{}", rt.endpoint(), record.id);
    let events = match rt {
        ResourceType::User => {
            journal_user(
                tx,
                scope,
                &record.id,
                Some(&before),
                Some(&resource),
                &request,
                raw,
            )
            .await?
        }
        ResourceType::Group => {
            let old: BTreeSet<String> = member_ids(&before).into_iter().collect();
            let new: BTreeSet<String> = member_ids(&resource).into_iter().collect();
            let touched: BTreeSet<String> = if current.name != record.name {
                old.union(&new).cloned().collect()
            } else {
                old.symmetric_difference(&new).cloned().collect()
            };
            journal_members(tx, scope, &touched, &request, raw).await?
        }
    };
    let body = rendered(tx, scope, &record).await?;
    Ok(Written {
        record,
        body,
        events,
    })
}

/// `DELETE`: the resource, its memberships, and what that means for each person.
pub(crate) async fn delete(
    tx: &mut Tx,
    scope: &Scope,
    rt: ResourceType,
    id: &str,
    check: impl FnOnce(&ScimRecord) -> Result<()>,
) -> Result<usize> {
    let current = load_for_update(tx, &scope.source, rt, id).await?;
    check(&current)?;
    let request = format!("DELETE /{}/{}", rt.endpoint(), current.id);
    let before = current.resource.as_object().cloned().unwrap_or_default();
    match rt {
        ResourceType::User => {
            let events =
                journal_user(tx, scope, &current.id, Some(&before), None, &request, b"").await?;
            // Take the User out of every Group's `members` first.
            for gid in tx.scim_groups_of(&scope.source, &current.id).await? {
                let Some(group) = tx.scim_get(&scope.source, "Group", &gid).await? else {
                    continue;
                };
                let mut resource = group.resource.as_object().cloned().unwrap_or_default();
                if let Some(Value::Array(members)) = resource.get_mut("members") {
                    members.retain(|m| {
                        m.as_object().and_then(|o| text(o, "value")) != Some(current.id.as_str())
                    });
                }
                let ids = member_ids(&resource);
                let updated = ScimRecord {
                    resource: Value::Object(resource),
                    version: group.version + 1,
                    updated_at: scope.now,
                    ..group.clone()
                };
                tx.scim_replace(&updated, group.version, Some(&ids)).await?;
            }
            tx.scim_delete(&scope.source, "User", &current.id).await?;
            Ok(events)
        }
        ResourceType::Group => {
            tx.scim_delete(&scope.source, "Group", &current.id).await?;
            // Journaled after the deletion: each member's groups no longer include it.
            let touched: BTreeSet<String> = member_ids(&before).into_iter().collect();
            journal_members(tx, scope, &touched, &request, b"").await
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Journaling

async fn manager_email(
    tx: &mut Tx,
    source: &str,
    user: &Map<String, Value>,
) -> Result<Option<crate::ingest::Email>> {
    let Some(manager_id) = enterprise(user)
        .and_then(|e| get_ci(e, "manager"))
        .and_then(Value::as_object)
        .and_then(|m| text(m, "value"))
    else {
        return Ok(None);
    };
    Ok(tx
        .scim_get(source, "User", manager_id)
        .await?
        .and_then(|m| m.resource.as_object().and_then(work_email)))
}

async fn record(tx: &mut Tx, scope: &Scope, event: crate::ingest::LifecycleEvent) -> Result<()> {
    let recorded = tx.record_event(&event, None).await?;
    tracing::info!(
        source = %scope.source,
        event_id = %recorded.event_id,
        kind = event.kind.as_str(),
        person = %event.person.id,
        "SCIM change journaled"
    );
    Ok(())
}

/// Journals a User change (create, replace, patch, delete).
async fn journal_user(
    tx: &mut Tx,
    scope: &Scope,
    user_id: &str,
    before: Option<&Map<String, Value>>,
    after: Option<&Map<String, Value>>,
    request: &str,
    raw: &[u8],
) -> Result<usize> {
    let (kind, canonical) = classify(before, after, scope.means);
    let (groups, manager) = match after {
        Some(user) => (
            Some(
                groups_of(tx, &scope.source, user_id)
                    .await?
                    .into_iter()
                    .map(|(_, n)| n)
                    .collect(),
            ),
            manager_email(tx, &scope.source, user).await?,
        ),
        None => (None, None),
    };
    let person = person(user_id, after, groups, manager)?;
    let event = lifecycle_event(
        &scope.source,
        kind,
        canonical,
        request,
        person,
        scope.now,
        raw,
    );
    record(tx, scope, event).await?;
    Ok(1)
}

/// Journals a group-membership change for each touched User that still exists.
async fn journal_members(
    tx: &mut Tx,
    scope: &Scope,
    users: &BTreeSet<String>,
    request: &str,
    raw: &[u8],
) -> Result<usize> {
    let mut events = 0;
    for user_id in users {
        let Some(user) = tx.scim_get(&scope.source, "User", user_id).await? else {
            continue;
        };
        let Some(obj) = user.resource.as_object() else {
            continue;
        };
        let groups = groups_of(tx, &scope.source, user_id)
            .await?
            .into_iter()
            .map(|(_, n)| n)
            .collect();
        let manager = manager_email(tx, &scope.source, obj).await?;
        let person = person(user_id, Some(obj), Some(groups), manager)?;
        let event = lifecycle_event(
            &scope.source,
            EventKind::Updated,
            "access_change",
            request,
            person,
            scope.now,
            raw,
        );
        record(tx, scope, event).await?;
        events += 1;
    }
    Ok(events)
}
