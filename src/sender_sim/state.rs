//! Everything one simulator knows: the people, the credentials, the subscriptions (Graph),
//! the rate-limit windows and the settings. Vendor modules read and change it through here.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

use super::error::SimError;
use super::limits::{Window, WindowStatus, WindowStyle};
use super::model::{Person, PersonInput, ts};
use super::seed::{
    ClientSecret, Seed, SeedError, Settings, WebhookSettings, default_credential, default_tenant,
};
use crate::sender_api::SenderKind;

/// A Graph change-notification subscription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Subscription {
    pub id: String,
    pub resource: String,
    pub change_type: String,
    pub notification_url: String,
    pub lifecycle_notification_url: Option<String>,
    pub client_state: Option<String>,
    pub expiration: DateTime<Utc>,
    pub application_id: String,
}

impl Subscription {
    pub(super) fn to_json(&self) -> Value {
        json!({
            "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#subscriptions/$entity",
            "id": self.id,
            "resource": self.resource,
            "applicationId": self.application_id,
            "changeType": self.change_type,
            "clientState": self.client_state,
            "notificationUrl": self.notification_url,
            "lifecycleNotificationUrl": self.lifecycle_notification_url,
            "expirationDateTime": ts(self.expiration),
            "creatorId": self.application_id,
            "latestSupportedTlsVersion": "v1_2",
            "includeResourceData": false,
        })
    }

    /// Whether a change to `person_id` of `change` is in this subscription's scope.
    pub(super) fn covers(&self, person_id: &str, change: &str) -> bool {
        let resource = self.resource.trim_start_matches('/').to_ascii_lowercase();
        let scoped =
            resource == "users" || resource == format!("users/{}", person_id.to_ascii_lowercase());
        scoped && self.change_type.split(',').any(|c| c.trim() == change)
    }
}

/// A token the Graph simulator issued from client credentials.
#[derive(Debug, Clone)]
pub(super) struct IssuedToken {
    pub token: String,
    pub expires_at: DateTime<Utc>,
}

#[derive(Debug)]
pub(super) struct State {
    pub kind: SenderKind,
    pub tenant: String,
    pub credentials: Vec<String>,
    pub clients: Vec<ClientSecret>,
    pub issued: Vec<IssuedToken>,
    pub webhook: WebhookSettings,
    pub settings: Settings,
    /// In creation order.
    pub people: Vec<Person>,
    /// Every id ever used, deleted ones included, with its position (cursors name ids).
    pub positions: HashMap<String, u64>,
    next_seq: u64,
    pub subscriptions: Vec<Subscription>,
    windows: BTreeMap<String, Window>,
}

impl State {
    pub(super) fn new(kind: SenderKind, seed: Seed, now: DateTime<Utc>) -> Result<Self, SeedError> {
        let mut settings = Settings::for_kind(kind);
        if let Some(patch) = &seed.settings {
            settings =
                merge_settings(&settings, patch).map_err(|e| SeedError::Invalid(e.message))?;
        }
        let mut state = Self {
            kind,
            tenant: seed
                .tenant
                .unwrap_or_else(|| default_tenant(kind).to_owned()),
            credentials: if seed.credentials.is_empty() {
                vec![default_credential(kind).to_owned()]
            } else {
                seed.credentials
            },
            clients: seed.clients,
            issued: Vec::new(),
            webhook: seed
                .webhook
                .unwrap_or_else(|| WebhookSettings::for_kind(kind)),
            settings,
            people: Vec::new(),
            positions: HashMap::new(),
            next_seq: 1,
            subscriptions: Vec::new(),
            windows: BTreeMap::new(),
        };
        for input in seed.people {
            state
                .add(input, now)
                .map_err(|e| SeedError::Invalid(e.message))?;
        }
        state.generate(seed.generate, now);
        Ok(state)
    }

    /// The address domain generated people and logins use.
    pub(super) fn domain(&self) -> &'static str {
        "acme.test"
    }

    pub(super) fn add(
        &mut self,
        input: PersonInput,
        now: DateTime<Utc>,
    ) -> Result<&Person, SimError> {
        let seq = self.next_seq;
        let person = input.build(self.kind, seq, now)?;
        if self.positions.contains_key(&person.id) {
            return Err(SimError::conflict(format!(
                "id {} is already used",
                person.id
            )));
        }
        if let Some(manager) = &person.manager_id
            && !self.people.iter().any(|p| &p.id == manager)
        {
            return Err(SimError::invalid(format!(
                "manager_id: no person {manager}"
            )));
        }
        self.next_seq += 1;
        self.positions.insert(person.id.clone(), seq);
        self.people.push(person);
        let index = self.people.len() - 1;
        Ok(&self.people[index])
    }

    /// Adds `count` people with generated names, emails and departments.
    pub(super) fn generate(&mut self, count: u32, now: DateTime<Utc>) -> Vec<String> {
        const DEPARTMENTS: [&str; 4] = ["Engineering", "Sales", "Finance", "Support"];
        let mut ids = Vec::with_capacity(count as usize);
        for _ in 0..count {
            let seq = self.next_seq;
            let input = PersonInput {
                first_name: Some(format!("Given{seq}")),
                last_name: Some(format!("Family{seq}")),
                work_email: Some(format!("person{seq}@{}", self.domain())),
                department: Some(DEPARTMENTS[(seq % 4) as usize].to_owned()),
                title: Some("Staff".to_owned()),
                ..PersonInput::default()
            };
            if let Ok(person) = self.add(input, now) {
                ids.push(person.id.clone());
            }
        }
        ids
    }

    pub(super) fn index(&self, id: &str) -> Option<usize> {
        self.people.iter().position(|p| p.id == id)
    }

    pub(super) fn person(&self, id: &str) -> Option<&Person> {
        self.people.iter().find(|p| p.id == id)
    }

    /// A person by id, or (where the vendor allows it) by login/email.
    pub(super) fn find(&self, key: &str) -> Option<&Person> {
        self.person(key).or_else(|| {
            self.people.iter().find(|p| {
                p.work_email
                    .as_deref()
                    .is_some_and(|e| e.eq_ignore_ascii_case(key))
            })
        })
    }

    fn person_mut(&mut self, id: &str) -> Result<&mut Person, SimError> {
        self.people
            .iter_mut()
            .find(|p| p.id == id)
            .ok_or_else(|| SimError::not_found("person", id))
    }

    pub(super) fn update(
        &mut self,
        id: &str,
        patch: &Map<String, Value>,
        now: DateTime<Utc>,
    ) -> Result<&Person, SimError> {
        if let Some(Value::String(manager)) = patch.get("manager_id")
            && (manager == id || !self.people.iter().any(|p| &p.id == manager))
        {
            return Err(SimError::invalid(format!(
                "manager_id: no other person {manager}"
            )));
        }
        let person = self.person_mut(id)?;
        person.apply(patch, now)?;
        Ok(person)
    }

    /// Ends employment on `date` (today when `None`); a future date is a scheduled
    /// termination that takes effect when the clock reaches it.
    pub(super) fn terminate(
        &mut self,
        id: &str,
        date: Option<chrono::NaiveDate>,
        now: DateTime<Utc>,
    ) -> Result<&Person, SimError> {
        let date = date.unwrap_or_else(|| now.date_naive());
        let mut patch = Map::new();
        patch.insert(
            "termination_date".into(),
            json!(date.format("%Y-%m-%d").to_string()),
        );
        if date <= now.date_naive() {
            patch.insert("status".into(), json!("terminated"));
        }
        self.update(id, &patch, now)
    }

    /// Brings a departed person back: a new hire date, no termination date.
    pub(super) fn rehire(
        &mut self,
        id: &str,
        date: Option<chrono::NaiveDate>,
        now: DateTime<Utc>,
    ) -> Result<&Person, SimError> {
        let date = date.unwrap_or_else(|| now.date_naive());
        let status = if date > now.date_naive() {
            "pending"
        } else {
            "active"
        };
        let patch = json!({
            "termination_date": null,
            "hire_date": date.format("%Y-%m-%d").to_string(),
            "status": status,
        });
        self.update(id, patch.as_object().unwrap_or(&Map::new()), now)
    }

    /// Removes the record (not a termination: the vendor's "deleted").
    pub(super) fn delete(&mut self, id: &str) -> Result<Person, SimError> {
        let index = self
            .index(id)
            .ok_or_else(|| SimError::not_found("person", id))?;
        let person = self.people.remove(index);
        for other in &mut self.people {
            if other.manager_id.as_deref() == Some(id) {
                other.manager_id = None;
            }
        }
        Ok(person)
    }

    /// People after the one at cursor position `after` (exclusive), in creation order.
    pub(super) fn after(&self, after: Option<u64>) -> impl Iterator<Item = &Person> {
        self.people
            .iter()
            .filter(move |p| after.is_none_or(|a| p.seq > a))
    }

    /// Counts a request on `budget`. Budgets without a setting are unlimited.
    pub(super) fn take(
        &mut self,
        budget: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<WindowStatus>, WindowStatus> {
        let Some(setting) = self.settings.rate_limits.get(budget).copied() else {
            return Ok(None);
        };
        let style = if self.kind == SenderKind::Okta {
            WindowStyle::Fixed
        } else {
            WindowStyle::Rolling
        };
        self.windows
            .entry(budget.to_owned())
            .or_insert_with(|| Window::new(setting, style))
            .take(now)
            .map(Some)
    }

    pub(super) fn reset_windows(&mut self) {
        self.windows.clear();
    }

    pub(super) fn dump(&self, now: DateTime<Utc>) -> Value {
        json!({
            "kind": self.kind,
            "tenant": self.tenant,
            "now": ts(now),
            "people": self.people.iter().map(|p| {
                let mut v = serde_json::to_value(p).unwrap_or(Value::Null);
                if let Some(obj) = v.as_object_mut() {
                    obj.insert("effective_status".into(), json!(p.status_at(now)));
                }
                v
            }).collect::<Vec<_>>(),
            "subscriptions": self.subscriptions.iter().map(Subscription::to_json).collect::<Vec<_>>(),
            "settings": self.settings,
        })
    }
}

/// Overlays a partial settings object on `current`; unknown keys are refused.
pub(super) fn merge_settings(current: &Settings, patch: &Value) -> Result<Settings, SimError> {
    let Some(patch) = patch.as_object() else {
        return Err(SimError::invalid("settings must be a JSON object"));
    };
    let mut merged = serde_json::to_value(current).map_err(|e| SimError::invalid(e.to_string()))?;
    if let Some(obj) = merged.as_object_mut() {
        for (k, v) in patch {
            if !obj.contains_key(k) {
                return Err(SimError::invalid(format!("unknown setting: {k}")));
            }
            // Rate limits merge per budget, so one budget can be changed alone.
            if let (Some(Value::Object(existing)), Value::Object(new)) = (obj.get_mut(k), v)
                && k == "rate_limits"
            {
                for (budget, limit) in new {
                    existing.insert(budget.clone(), limit.clone());
                }
                continue;
            }
            obj.insert(k.clone(), v.clone());
        }
    }
    serde_json::from_value(merged).map_err(|e| SimError::invalid(format!("invalid settings: {e}")))
}
