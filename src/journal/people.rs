//! People: what Keycard knows about each person, keyed by their source's immutable id.
//! Addresses are compared through `email_key` (`fold_email`), the same on both backends.

use chrono::{DateTime, Utc};
use serde_json::Value;
use uuid::Uuid;

use super::db::{Tx, sql};
use super::types::{PersonRow, Priority, fold_email};
use super::{JournalError, JournalResult};

impl Tx {
    pub async fn person(&mut self, id: Uuid) -> JournalResult<PersonRow> {
        self.fetch_optional(sql("SELECT * FROM people WHERE id = $1").bind(id))
            .await?
            .ok_or_else(|| JournalError::NotFound(format!("person {id}")))
    }

    /// A person by journal id, by source id, or by address: an exact id wins over another
    /// person's address, and the oldest record wins among several.
    pub async fn find_person(&mut self, key: &str) -> JournalResult<Option<PersonRow>> {
        let by_id = Uuid::parse_str(key).ok();
        self.fetch_optional(
            sql(
                "SELECT * FROM people WHERE id = $1 OR source_person_id = $2 OR email_key = $3
                 ORDER BY CASE WHEN id = $1 THEN 0 WHEN source_person_id = $2 THEN 1 ELSE 2 END,
                          created_at
                 LIMIT 1",
            )
            .bind(by_id)
            .bind(key)
            .bind(fold_email(key)),
        )
        .await
    }

    /// The person a source knows by this id.
    pub async fn person_by_source(
        &mut self,
        source: &str,
        source_person_id: &str,
    ) -> JournalResult<Option<PersonRow>> {
        self.fetch_optional(
            sql("SELECT * FROM people WHERE source = $1 AND source_person_id = $2")
                .bind(source)
                .bind(source_person_id),
        )
        .await
    }

    /// Which of these addresses another person who has not departed holds now (folded): an
    /// address someone left can be given to a new hire, whose invite and account are not
    /// the leaver's.
    pub async fn emails_held_by_others(
        &mut self,
        person_id: Uuid,
        emails: &[String],
    ) -> JournalResult<Vec<String>> {
        if emails.is_empty() {
            return Ok(Vec::new());
        }
        let mut s = sql("SELECT DISTINCT email_key FROM people
             WHERE email_key IS NOT NULL AND status <> 'departed' AND id <> $1 AND email_key IN ")
        .bind(person_id);
        s.push_list(emails.iter().map(|e| fold_email(e)));
        self.column(s).await
    }

    /// Who else, not departed, has this address now, first come first: two active records
    /// with one address (one human in two feeds, an HR typo) must not both act on the one
    /// invite or account.
    pub async fn address_holder(
        &mut self,
        email: &str,
        except: Uuid,
    ) -> JournalResult<Option<PersonRow>> {
        self.fetch_optional(
            sql("SELECT * FROM people WHERE email_key = $1 AND id <> $2
                   AND status NOT IN ('departed', 'new')
                 ORDER BY created_at, id LIMIT 1")
            .bind(fold_email(email))
            .bind(except),
        )
        .await
    }

    /// Queues everyone else who has this address (after its account was removed, a person
    /// waiting on it can be invited now rather than at the next sweep).
    pub async fn enqueue_address_holders(
        &mut self,
        email: &str,
        except: Uuid,
        now: DateTime<Utc>,
    ) -> JournalResult<()> {
        let ids: Vec<Uuid> = self
            .column(
                sql("SELECT id FROM people WHERE email_key = $1 AND id <> $2")
                    .bind(fold_email(email))
                    .bind(except),
            )
            .await?;
        for id in ids {
            self.enqueue_job(
                id,
                now,
                "an account with this address was removed",
                None,
                Priority::Joiner,
            )
            .await?;
        }
        Ok(())
    }

    /// Another person already linked to this Admin API user, if any: an account found by
    /// email that belongs to someone else must not be acted on.
    pub async fn linked_elsewhere(
        &mut self,
        user_id: &str,
        person_id: Uuid,
    ) -> JournalResult<Option<PersonRow>> {
        self.fetch_optional(
            sql(
                "SELECT * FROM people WHERE anthropic_user_id = $1 AND id <> $2
                 ORDER BY created_at LIMIT 1",
            )
            .bind(user_id)
            .bind(person_id),
        )
        .await
    }

    /// People whose current address is one of these (folded) keys.
    pub async fn people_with_addresses(
        &mut self,
        keys: &[String],
    ) -> JournalResult<Vec<PersonRow>> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let mut s = sql("SELECT * FROM people WHERE email_key IN ");
        s.push_list(keys.iter().map(String::as_str))
            .push(" ORDER BY created_at, id");
        self.fetch_all(s).await
    }

    /// People (not departed) whose email history holds this (folded) address: a
    /// substring match narrows the rows, the fold decides.
    pub async fn people_who_had_address(&mut self, key: &str) -> JournalResult<Vec<Uuid>> {
        let mut s = sql("SELECT * FROM people WHERE status <> 'departed'");
        // lower() folds ASCII only on SQLite: narrow by text only when that is enough.
        if key.is_ascii() {
            s.push(" AND lower(CAST(email_history AS TEXT)) LIKE ")
                .push_bind(format!("%{}%", key.replace(['%', '_'], "")));
        }
        let rows: Vec<PersonRow> = self.fetch_all(s).await?;
        Ok(rows
            .into_iter()
            .filter(|p| {
                p.email_history
                    .0
                    .iter()
                    .any(|c| fold_email(&c.email) == key)
            })
            .map(|p| p.id)
            .collect())
    }

    /// Everyone the journal knows, oldest first.
    pub async fn all_people(&mut self) -> JournalResult<Vec<PersonRow>> {
        self.fetch_all(sql("SELECT * FROM people ORDER BY created_at, id"))
            .await
    }

    /// People linked to any of these Admin API users.
    pub async fn people_linked_to(&mut self, user_ids: &[String]) -> JournalResult<Vec<PersonRow>> {
        if user_ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut s = sql("SELECT * FROM people WHERE anthropic_user_id IN ");
        s.push_list(user_ids.iter().map(String::as_str))
            .push(" ORDER BY created_at, id");
        self.fetch_all(s).await
    }

    /// Records the access the rules last gave the person, with the explanation.
    pub async fn set_desired(
        &mut self,
        person_id: Uuid,
        desired: &Value,
        now: DateTime<Utc>,
    ) -> JournalResult<()> {
        self.execute(
            sql("UPDATE people SET desired = $2, updated_at = $3 WHERE id = $1")
                .bind(person_id)
                .bind(desired)
                .bind(now),
        )
        .await?;
        Ok(())
    }

    /// Links (or, with `None`, unlinks) the person's Admin API account.
    pub async fn link_user(
        &mut self,
        person_id: Uuid,
        user_id: Option<&str>,
        now: DateTime<Utc>,
    ) -> JournalResult<()> {
        self.execute(
            sql("UPDATE people SET anthropic_user_id = $2, updated_at = $3 WHERE id = $1")
                .bind(person_id)
                .bind(user_id)
                .bind(now),
        )
        .await?;
        Ok(())
    }

    /// Fills `email_key` where the migration could not: SQLite's `lower()` folds ASCII
    /// only, so its migration leaves addresses with other letters to this (Rust) fold.
    pub(super) async fn backfill_email_keys(&mut self) -> JournalResult<u64> {
        let mut fixed = 0;
        for table in ["people", "events"] {
            let rows: Vec<(Uuid, String)> = self
                .fetch_all(sql(format!(
                    "SELECT id, email FROM {table} WHERE email IS NOT NULL AND email_key IS NULL"
                )))
                .await?;
            for (id, email) in rows {
                fixed += self
                    .execute(
                        sql(format!("UPDATE {table} SET email_key = $2 WHERE id = $1"))
                            .bind(id)
                            .bind(fold_email(&email)),
                    )
                    .await?;
            }
        }
        Ok(fixed)
    }
}

#[cfg(test)]
impl Tx {
    /// Stores a person as given (unit tests of code that reads people: the planner's
    /// loaders), where the pipeline would create them from events.
    pub(crate) async fn insert_person(&mut self, p: &PersonRow) -> JournalResult<u64> {
        let history = serde_json::to_value(&p.email_history.0)
            .map_err(|e| JournalError::Corrupt(e.to_string()))?;
        self.execute(
            sql(
                "INSERT INTO people (id, source, source_person_id, email, email_key,
                        email_history, attributes, status, anthropic_user_id, created_at,
                        updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
            )
            .bind(p.id)
            .bind(p.source.as_str())
            .bind(p.source_person_id.as_str())
            .bind(p.email.clone())
            .bind(p.email.as_deref().map(fold_email))
            .bind(history)
            .bind(p.attributes.clone())
            .bind(p.status.as_str())
            .bind(p.anthropic_user_id.clone())
            .bind(p.created_at)
            .bind(p.updated_at),
        )
        .await
    }
}
