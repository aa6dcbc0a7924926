//! One human, one person (issue 16 item 5): a feed's id can resolve to a person first seen
//! through another feed, by a configured correlation (same work email, or the same value of a
//! mapped id attribute) or an operator's merge. Every link says who or what made it and why.
//!
//! Events still carry their own feed's id; `apply_one` resolves it through `person_links`
//! first, so both feeds' events land on the one row and its `last_order_key` puts them in one
//! order (an older event from either feed is stale).

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use uuid::Uuid;

use super::db::{Tx, sql};
use super::logic::merge_attributes;
use super::operators::{OperatorVerb, OperatorWrite};
use super::types::{EventRow, PersonRow, PersonStatus, Priority, fold_email};
use super::{JournalError, JournalResult};

/// What makes two feeds' records one person (`[correlation]`, docs/config.md).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CorrelationKey {
    /// The same work email (compared folded).
    WorkEmail,
    /// The same value of `person.attributes.<name>` (e.g. `employee_number`).
    Attribute(String),
}

/// One link of a feed's id to a person.
#[derive(Debug, Clone, serde::Serialize, sqlx::FromRow)]
pub struct PersonLinkRow {
    pub source: String,
    pub source_person_id: String,
    pub person_id: Uuid,
    pub linked_at: DateTime<Utc>,
    pub linked_by: String,
    pub reason: String,
}

/// The most events one correlation pass looks at.
const CORRELATE_BATCH: i64 = 200;

/// `person.attributes.<name>` of a payload or a person's attributes, as text.
fn attribute_of(attributes: &Value, name: &str) -> Option<String> {
    match attributes.get("attributes")?.get(name)? {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

impl Tx {
    /// The person an event's feed id resolves to, created on first sight, locked for the
    /// rest of the transaction: a link wins over the feed's own row.
    pub(super) async fn person_for_event(
        &mut self,
        source: &str,
        source_person_id: &str,
        now: DateTime<Utc>,
    ) -> JournalResult<PersonRow> {
        let linked: Option<(Uuid,)> = self
            .fetch_optional(
                sql("SELECT person_id FROM person_links WHERE source = $1 AND source_person_id = $2")
                    .bind(source)
                    .bind(source_person_id),
            )
            .await?;
        if let Some((id,)) = linked {
            return self
                .fetch_one(
                    sql(format!(
                        "SELECT * FROM people WHERE id = $1 {}",
                        self.dialect.lock_row
                    ))
                    .bind(id),
                )
                .await;
        }
        self.execute(
            sql(
                "INSERT INTO people (id, source, source_person_id, status, created_at, updated_at)
                 VALUES ($1, $2, $3, 'new', $4, $4)
                 ON CONFLICT (source, source_person_id) DO NOTHING",
            )
            .bind(Uuid::now_v7())
            .bind(source)
            .bind(source_person_id)
            .bind(now),
        )
        .await?;
        self.fetch_one(
            sql(format!(
                "SELECT * FROM people WHERE source = $1 AND source_person_id = $2 {}",
                self.dialect.lock_row
            ))
            .bind(source)
            .bind(source_person_id),
        )
        .await
    }

    /// The person a feed knows by this id, through a link or its own row.
    pub async fn person_of_feed(
        &mut self,
        source: &str,
        source_person_id: &str,
    ) -> JournalResult<Option<PersonRow>> {
        self.fetch_optional(
            sql("SELECT p.* FROM people p
                 LEFT JOIN person_links l ON l.person_id = p.id
                      AND l.source = $1 AND l.source_person_id = $2
                 WHERE (p.source = $1 AND p.source_person_id = $2) OR l.person_id IS NOT NULL
                 ORDER BY CASE WHEN l.person_id IS NOT NULL THEN 0 ELSE 1 END
                 LIMIT 1")
            .bind(source)
            .bind(source_person_id),
        )
        .await
    }

    /// Everyone a feed knows, by the feed's id: its own rows, and the people its ids are
    /// linked to (a link wins).
    pub async fn people_of_feed(
        &mut self,
        source: &str,
    ) -> JournalResult<Vec<(String, PersonRow)>> {
        let own: Vec<PersonRow> = self
            .fetch_all(
                sql("SELECT * FROM people WHERE source = $1 ORDER BY created_at, id").bind(source),
            )
            .await?;
        let links = self.links_of_feed(source).await?;
        let mut out: Vec<(String, PersonRow)> = own
            .into_iter()
            .filter(|p| {
                !links
                    .iter()
                    .any(|l| l.source_person_id == p.source_person_id)
            })
            .map(|p| (p.source_person_id.clone(), p))
            .collect();
        for link in links {
            if let Ok(person) = self.person(link.person_id).await {
                out.push((link.source_person_id, person));
            }
        }
        Ok(out)
    }

    async fn links_of_feed(&mut self, source: &str) -> JournalResult<Vec<PersonLinkRow>> {
        self.fetch_all(sql("SELECT * FROM person_links WHERE source = $1").bind(source))
            .await
    }

    /// The feed ids linked to a person.
    pub async fn links_of(&mut self, person_id: Uuid) -> JournalResult<Vec<PersonLinkRow>> {
        self.fetch_all(
            sql("SELECT * FROM person_links WHERE person_id = $1 ORDER BY linked_at, source")
                .bind(person_id),
        )
        .await
    }

    async fn insert_link(
        &mut self,
        source: &str,
        source_person_id: &str,
        person_id: Uuid,
        by: &str,
        reason: &str,
        now: DateTime<Utc>,
    ) -> JournalResult<()> {
        self.execute(
            sql("INSERT INTO person_links (source, source_person_id, person_id, linked_at,
                                           linked_by, reason)
                 VALUES ($1, $2, $3, $4, $5, $6)
                 ON CONFLICT (source, source_person_id) DO UPDATE SET person_id = EXCLUDED.person_id,
                     linked_at = EXCLUDED.linked_at, linked_by = EXCLUDED.linked_by,
                     reason = EXCLUDED.reason")
            .bind(source)
            .bind(source_person_id)
            .bind(person_id)
            .bind(now)
            .bind(by)
            .bind(reason),
        )
        .await?;
        Ok(())
    }

    /// Before events are applied: a received event whose feed id is not known yet is linked
    /// to the person another feed already knows when `key` says they are one (same work
    /// email, or the same mapped attribute). Only people who have not departed are matched
    /// (an address someone left may be given to a new hire), never a person who already has
    /// an id in the same feed (two records in one feed are two people, or an HR typo), and
    /// never when the value matches several people (ambiguous: left to an operator).
    /// Returns the links made.
    pub async fn correlate_pending(
        &mut self,
        key: &CorrelationKey,
        now: DateTime<Utc>,
    ) -> JournalResult<usize> {
        let events: Vec<EventRow> = self
            .fetch_all(
                sql("SELECT * FROM events e
                     WHERE e.status IN ('received', 'scheduled') AND e.person_source_id IS NOT NULL
                       AND NOT EXISTS (SELECT 1 FROM people p WHERE p.source = e.source
                                         AND p.source_person_id = e.person_source_id)
                       AND NOT EXISTS (SELECT 1 FROM person_links l WHERE l.source = e.source
                                         AND l.source_person_id = e.person_source_id)
                     ORDER BY e.order_key, e.received_at, e.id
                     LIMIT $1")
                .bind(CORRELATE_BATCH),
            )
            .await?;
        let mut made = 0;
        for ev in events {
            let Some(spid) = ev.person_source_id.as_deref() else {
                continue;
            };
            // An earlier event of this pass may have linked the id already.
            if self.person_of_feed(&ev.source, spid).await?.is_some() {
                continue;
            }
            let reported = ev.payload.get("person").cloned().unwrap_or(Value::Null);
            let (candidates, why) = match key {
                CorrelationKey::WorkEmail => {
                    let Some(email) = ev.email.as_deref() else {
                        continue;
                    };
                    let people: Vec<PersonRow> = self
                        .fetch_all(
                            sql("SELECT * FROM people WHERE email_key = $1 AND source <> $2
                                   AND status NOT IN ('departed', 'new')
                                 ORDER BY created_at, id")
                            .bind(fold_email(email))
                            .bind(&ev.source),
                        )
                        .await?;
                    (people, format!("same work email {}", fold_email(email)))
                }
                CorrelationKey::Attribute(name) => {
                    let Some(value) = attribute_of(&reported, name) else {
                        continue;
                    };
                    let mut s = sql("SELECT * FROM people WHERE source <> $1
                           AND status NOT IN ('departed', 'new')")
                    .bind(&ev.source);
                    // Narrow by text; the JSON comparison below decides.
                    s.push(" AND CAST(attributes AS TEXT) LIKE ")
                        .push_bind(format!("%{}%", value.replace(['%', '_'], "")));
                    let people: Vec<PersonRow> = self.fetch_all(s).await?;
                    let people = people
                        .into_iter()
                        .filter(|p| attribute_of(&p.attributes, name).as_deref() == Some(&value))
                        .collect();
                    (people, format!("same {name} {value}"))
                }
            };
            let mut eligible = Vec::new();
            for p in candidates {
                let has_feed_id = self
                    .links_of(p.id)
                    .await?
                    .iter()
                    .any(|l| l.source == ev.source);
                if !has_feed_id {
                    eligible.push(p);
                }
            }
            if let [only] = eligible.as_slice() {
                self.insert_link(
                    &ev.source,
                    spid,
                    only.id,
                    "correlation",
                    &format!("{why} as {} {}", only.source, only.source_person_id),
                    now,
                )
                .await?;
                made += 1;
            } else if eligible.len() > 1 {
                tracing::warn!(source = %ev.source, person = %spid, matches = eligible.len(), "{why} matches several people: not correlated; an operator may merge them");
            }
        }
        Ok(made)
    }

    /// An operator merges two people into one (`keep` stays; `other`'s feed id and every
    /// feed id linked to it resolve to `keep` from now on). Their histories are combined in
    /// one order: the newer person's attributes overlay the older's, the newer status stands;
    /// events, actions and alerts of `other` move to `keep`, and `other`'s row is removed
    /// (its state as it was is kept in the operator log's detail). Refused when both are
    /// linked to different accounts. Run it in a transaction.
    pub async fn merge_people(
        &mut self,
        keep: Uuid,
        other: Uuid,
        who: &OperatorWrite,
        now: DateTime<Utc>,
    ) -> JournalResult<PersonRow> {
        if keep == other {
            return Err(JournalError::Conflict(
                "a person cannot be merged with themselves".into(),
            ));
        }
        let lock = self.dialect.lock_row;
        let a: PersonRow = self
            .fetch_optional(sql(format!("SELECT * FROM people WHERE id = $1 {lock}")).bind(keep))
            .await?
            .ok_or_else(|| JournalError::NotFound(format!("person {keep}")))?;
        let b: PersonRow = self
            .fetch_optional(sql(format!("SELECT * FROM people WHERE id = $1 {lock}")).bind(other))
            .await?
            .ok_or_else(|| JournalError::NotFound(format!("person {other}")))?;
        let account = match (&a.anthropic_user_id, &b.anthropic_user_id) {
            (Some(x), Some(y)) if x != y => {
                return Err(JournalError::Conflict(format!(
                    "both people are linked to accounts ({x} and {y}): unlink one first (POST /api/v1/people/{{id}}/link with user_id null)"
                )));
            }
            (Some(x), _) | (None, Some(x)) => Some(x.clone()),
            (None, None) => None,
        };
        // One order: whoever changed last is the newer state.
        let (older, newer) = if b.last_order_key > a.last_order_key {
            (&a, &b)
        } else {
            (&b, &a)
        };
        let attributes = merge_attributes(&older.attributes, &newer.attributes);
        let status = match (newer.status, older.status) {
            (PersonStatus::New, s) => s,
            (s, _) => s,
        };
        let email = attributes
            .get("email")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .or_else(|| newer.email.clone())
            .or_else(|| older.email.clone());
        let mut history = older.email_history.0.clone();
        history.extend(newer.email_history.0.iter().cloned());
        history.sort_by_key(|c| c.since);
        history.dedup_by(|x, y| fold_email(&x.email) == fold_email(&y.email));
        let snapshot =
            serde_json::to_value(&b).map_err(|e| JournalError::Corrupt(e.to_string()))?;

        let reason = format!("merged by {}: {}", who.operator, who.reason);
        self.execute(
            sql("UPDATE person_links SET person_id = $1 WHERE person_id = $2")
                .bind(keep)
                .bind(other),
        )
        .await?;
        self.insert_link(
            &b.source,
            &b.source_person_id,
            keep,
            &who.operator,
            &reason,
            now,
        )
        .await?;
        for table in ["events", "actions", "notifications"] {
            self.execute(
                sql(format!(
                    "UPDATE {table} SET person_id = $1 WHERE person_id = $2"
                ))
                .bind(keep)
                .bind(other),
            )
            .await?;
        }
        self.execute(sql("DELETE FROM reconcile_jobs WHERE person_id = $1").bind(other))
            .await?;
        self.execute(sql("DELETE FROM people WHERE id = $1").bind(other))
            .await?;
        self.execute(
            sql(
                "UPDATE people SET attributes = $2, status = $3, email = $4, email_key = $5,
                        email_history = $6, last_order_key = $7, last_event_id = $8,
                        anthropic_user_id = $9, updated_at = $10
                 WHERE id = $1",
            )
            .bind(keep)
            .bind(attributes)
            .bind(status)
            .bind(email.clone())
            .bind(email.as_deref().map(fold_email))
            .bind(serde_json::to_value(&history).map_err(|e| JournalError::Corrupt(e.to_string()))?)
            .bind(newer.last_order_key)
            .bind(newer.last_event_id)
            .bind(account)
            .bind(now),
        )
        .await?;
        self.enqueue_job(
            keep,
            now,
            "people merged by an operator",
            None,
            Priority::Mover,
        )
        .await?;
        self.log_operator_write(
            who,
            OperatorVerb::Link,
            "person",
            &keep.to_string(),
            Some(json!({ "merged": other, "merged_person": snapshot })),
            now,
        )
        .await?;
        self.person(keep).await
    }
}
