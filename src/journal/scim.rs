//! SCIM resource storage (src/scim): the Users and Groups each SCIM source provisioned.
//! A write that changes what a person is journals its event in the same transaction
//! (`scim::service`), so the stored resource and the journal can never disagree.

use super::db::{Tx, sql};
use super::types::{ScimRecord, ScimWrite};
use super::{JournalError, JournalResult};

impl Tx {
    pub async fn scim_get(
        &mut self,
        source: &str,
        resource_type: &str,
        id: &str,
    ) -> JournalResult<Option<ScimRecord>> {
        self.scim_fetch(source, resource_type, id, "").await
    }

    /// A resource, locked until the transaction ends: concurrent writes to it (an IdP's
    /// retry racing the attempt it gave up on) take turns instead of failing on the version.
    pub async fn scim_get_for_update(
        &mut self,
        source: &str,
        resource_type: &str,
        id: &str,
    ) -> JournalResult<Option<ScimRecord>> {
        let lock = self.dialect.lock_row;
        self.scim_fetch(source, resource_type, id, lock).await
    }

    async fn scim_fetch(
        &mut self,
        source: &str,
        resource_type: &str,
        id: &str,
        lock: &str,
    ) -> JournalResult<Option<ScimRecord>> {
        self.fetch_optional(
            sql(format!(
                "SELECT * FROM scim_resources
                 WHERE source = $1 AND resource_type = $2 AND id = $3 {lock}"
            ))
            .bind(source)
            .bind(resource_type)
            .bind(id),
        )
        .await
    }

    /// Every resource of a type, oldest first (a stable order for paging).
    pub async fn scim_list(
        &mut self,
        source: &str,
        resource_type: &str,
    ) -> JournalResult<Vec<ScimRecord>> {
        self.fetch_all(
            sql(
                "SELECT * FROM scim_resources WHERE source = $1 AND resource_type = $2
                 ORDER BY created_at, id",
            )
            .bind(source)
            .bind(resource_type),
        )
        .await
    }

    /// Inserts a new resource; for a Group, `members` replaces its membership rows. A name
    /// taken (case-insensitively) answers `NameTaken`; the transaction is then unusable on
    /// PostgreSQL and must be dropped.
    pub async fn scim_create(
        &mut self,
        record: &ScimRecord,
        members: Option<&[String]>,
    ) -> JournalResult<ScimWrite> {
        let inserted = self
            .execute(
                sql(
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
                .bind(record.updated_at),
            )
            .await;
        match inserted {
            Err(JournalError::Duplicate(_)) => return Ok(ScimWrite::NameTaken),
            Err(e) => return Err(e),
            Ok(_) => {}
        }
        if let Some(members) = members {
            self.scim_replace_members(&record.source, &record.id, members)
                .await?;
        }
        Ok(ScimWrite::Written)
    }

    /// Replaces a resource if its stored version is still `expected_version`.
    pub async fn scim_replace(
        &mut self,
        record: &ScimRecord,
        expected_version: i64,
        members: Option<&[String]>,
    ) -> JournalResult<ScimWrite> {
        let updated = self
            .execute(
                sql("UPDATE scim_resources
                     SET name = $4, external_id = $5, resource = $6, version = $7, updated_at = $8
                     WHERE source = $1 AND resource_type = $2 AND id = $3 AND version = $9")
                .bind(&record.source)
                .bind(&record.resource_type)
                .bind(&record.id)
                .bind(&record.name)
                .bind(&record.external_id)
                .bind(&record.resource)
                .bind(record.version)
                .bind(record.updated_at)
                .bind(expected_version),
            )
            .await;
        let rows = match updated {
            Err(JournalError::Duplicate(_)) => return Ok(ScimWrite::NameTaken),
            Err(e) => return Err(e),
            Ok(n) => n,
        };
        if rows == 0 {
            let exists = self
                .scim_get(&record.source, &record.resource_type, &record.id)
                .await?;
            return Ok(if exists.is_some() {
                ScimWrite::VersionMismatch
            } else {
                ScimWrite::NotFound
            });
        }
        if let Some(members) = members {
            self.scim_replace_members(&record.source, &record.id, members)
                .await?;
        }
        Ok(ScimWrite::Written)
    }

    async fn scim_replace_members(
        &mut self,
        source: &str,
        group_id: &str,
        members: &[String],
    ) -> JournalResult<()> {
        self.execute(
            sql("DELETE FROM scim_group_members WHERE source = $1 AND group_id = $2")
                .bind(source)
                .bind(group_id),
        )
        .await?;
        for user_id in members {
            self.execute(
                sql("INSERT INTO scim_group_members (source, group_id, user_id)
                     VALUES ($1, $2, $3) ON CONFLICT DO NOTHING")
                .bind(source)
                .bind(group_id)
                .bind(user_id.as_str()),
            )
            .await?;
        }
        Ok(())
    }

    /// Deletes a resource and any membership it takes part in. `false`: not found.
    pub async fn scim_delete(
        &mut self,
        source: &str,
        resource_type: &str,
        id: &str,
    ) -> JournalResult<bool> {
        let memberships = if resource_type == "Group" {
            "DELETE FROM scim_group_members WHERE source = $1 AND group_id = $2"
        } else {
            "DELETE FROM scim_group_members WHERE source = $1 AND user_id = $2"
        };
        self.execute(sql(memberships).bind(source).bind(id)).await?;
        let deleted = self
            .execute(
                sql("DELETE FROM scim_resources
                     WHERE source = $1 AND resource_type = $2 AND id = $3")
                .bind(source)
                .bind(resource_type)
                .bind(id),
            )
            .await?;
        Ok(deleted > 0)
    }

    /// Ids of the Groups a User is a member of.
    pub async fn scim_groups_of(
        &mut self,
        source: &str,
        user_id: &str,
    ) -> JournalResult<Vec<String>> {
        self.column(
            sql("SELECT group_id FROM scim_group_members
                 WHERE source = $1 AND user_id = $2 ORDER BY group_id")
            .bind(source)
            .bind(user_id),
        )
        .await
    }
}
