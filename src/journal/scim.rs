//! SCIM resource storage (src/scim), on both backends. The statements are the same on
//! PostgreSQL and SQLite, so one macro writes the methods for each.

use super::model::{ScimRecord, ScimWrite};
use super::{JournalResult, PgJournal, SqliteJournal};

fn is_unique_violation(err: &sqlx::Error) -> bool {
    matches!(err, sqlx::Error::Database(db) if db.is_unique_violation())
}

macro_rules! scim_methods {
    ($journal:ty, $db:ty) => {
        impl $journal {
            pub async fn scim_get(
                &self,
                source: &str,
                resource_type: &str,
                id: &str,
            ) -> JournalResult<Option<ScimRecord>> {
                Ok(sqlx::query_as(
                    "SELECT * FROM scim_resources
                     WHERE source = $1 AND resource_type = $2 AND id = $3",
                )
                .bind(source)
                .bind(resource_type)
                .bind(id)
                .fetch_optional(&self.pool)
                .await?)
            }

            /// Every resource of a type, oldest first (a stable order for paging).
            pub async fn scim_list(
                &self,
                source: &str,
                resource_type: &str,
            ) -> JournalResult<Vec<ScimRecord>> {
                Ok(sqlx::query_as(
                    "SELECT * FROM scim_resources WHERE source = $1 AND resource_type = $2
                     ORDER BY created_at, id",
                )
                .bind(source)
                .bind(resource_type)
                .fetch_all(&self.pool)
                .await?)
            }

            /// Inserts a new resource; for a Group, `members` replaces its membership rows.
            pub async fn scim_create(
                &self,
                record: &ScimRecord,
                members: Option<&[String]>,
            ) -> JournalResult<ScimWrite> {
                let mut tx = self.pool.begin().await?;
                let inserted = sqlx::query(
                    "INSERT INTO scim_resources (source, resource_type, id, name, external_id,
                                                 resource, version, created_at, updated_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                )
                .bind(&record.source)
                .bind(&record.resource_type)
                .bind(&record.id)
                .bind(&record.name)
                .bind(&record.external_id)
                .bind(&record.resource)
                .bind(record.version)
                .bind(record.created_at)
                .bind(record.updated_at)
                .execute(&mut *tx)
                .await;
                match inserted {
                    Err(e) if is_unique_violation(&e) => return Ok(ScimWrite::NameTaken),
                    Err(e) => return Err(e.into()),
                    Ok(_) => {}
                }
                if let Some(members) = members {
                    Self::scim_replace_members(&mut tx, &record.source, &record.id, members)
                        .await?;
                }
                tx.commit().await?;
                Ok(ScimWrite::Written)
            }

            /// Replaces a resource if its stored version is still `expected_version`.
            pub async fn scim_replace(
                &self,
                record: &ScimRecord,
                expected_version: i64,
                members: Option<&[String]>,
            ) -> JournalResult<ScimWrite> {
                let mut tx = self.pool.begin().await?;
                let updated = sqlx::query(
                    "UPDATE scim_resources
                     SET name = $4, external_id = $5, resource = $6, version = $7, updated_at = $8
                     WHERE source = $1 AND resource_type = $2 AND id = $3 AND version = $9",
                )
                .bind(&record.source)
                .bind(&record.resource_type)
                .bind(&record.id)
                .bind(&record.name)
                .bind(&record.external_id)
                .bind(&record.resource)
                .bind(record.version)
                .bind(record.updated_at)
                .bind(expected_version)
                .execute(&mut *tx)
                .await;
                let rows = match updated {
                    Err(e) if is_unique_violation(&e) => return Ok(ScimWrite::NameTaken),
                    Err(e) => return Err(e.into()),
                    Ok(done) => done.rows_affected(),
                };
                if rows == 0 {
                    let exists: Option<i64> = sqlx::query_scalar(
                        "SELECT version FROM scim_resources
                         WHERE source = $1 AND resource_type = $2 AND id = $3",
                    )
                    .bind(&record.source)
                    .bind(&record.resource_type)
                    .bind(&record.id)
                    .fetch_optional(&mut *tx)
                    .await?;
                    return Ok(if exists.is_some() {
                        ScimWrite::VersionMismatch
                    } else {
                        ScimWrite::NotFound
                    });
                }
                if let Some(members) = members {
                    Self::scim_replace_members(&mut tx, &record.source, &record.id, members)
                        .await?;
                }
                tx.commit().await?;
                Ok(ScimWrite::Written)
            }

            async fn scim_replace_members(
                tx: &mut sqlx::Transaction<'_, $db>,
                source: &str,
                group_id: &str,
                members: &[String],
            ) -> JournalResult<()> {
                sqlx::query("DELETE FROM scim_group_members WHERE source = $1 AND group_id = $2")
                    .bind(source)
                    .bind(group_id)
                    .execute(&mut **tx)
                    .await?;
                for user_id in members {
                    sqlx::query(
                        "INSERT INTO scim_group_members (source, group_id, user_id)
                         VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                    )
                    .bind(source)
                    .bind(group_id)
                    .bind(user_id)
                    .execute(&mut **tx)
                    .await?;
                }
                Ok(())
            }

            /// Deletes a resource and any membership it takes part in. `false`: not found.
            pub async fn scim_delete(
                &self,
                source: &str,
                resource_type: &str,
                id: &str,
            ) -> JournalResult<bool> {
                let mut tx = self.pool.begin().await?;
                let memberships = if resource_type == "Group" {
                    "DELETE FROM scim_group_members WHERE source = $1 AND group_id = $2"
                } else {
                    "DELETE FROM scim_group_members WHERE source = $1 AND user_id = $2"
                };
                sqlx::query(memberships)
                .bind(source)
                .bind(id)
                .execute(&mut *tx)
                .await?;
                let deleted = sqlx::query(
                    "DELETE FROM scim_resources
                     WHERE source = $1 AND resource_type = $2 AND id = $3",
                )
                .bind(source)
                .bind(resource_type)
                .bind(id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                tx.commit().await?;
                Ok(deleted > 0)
            }

            /// Ids of the Groups a User is a member of.
            pub async fn scim_groups_of(
                &self,
                source: &str,
                user_id: &str,
            ) -> JournalResult<Vec<String>> {
                Ok(sqlx::query_scalar(
                    "SELECT group_id FROM scim_group_members
                     WHERE source = $1 AND user_id = $2 ORDER BY group_id",
                )
                .bind(source)
                .bind(user_id)
                .fetch_all(&self.pool)
                .await?)
            }
        }
    };
}

scim_methods!(PgJournal, sqlx::Postgres);
scim_methods!(SqliteJournal, sqlx::Sqlite);
