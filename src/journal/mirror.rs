//! The organization mirror's storage: one row per object the Admin API showed, with the
//! few columns plans look objects up by, and when each part was last read whole.

use chrono::{DateTime, Duration, Utc};
use serde_json::Value;

use super::JournalResult;
use super::db::{Tx, sql};

/// What the mirror holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ObjectKind {
    User,
    Invite,
    Workspace,
    WorkspaceMember,
    ApiKey,
}

impl ObjectKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::Invite => "invite",
            Self::Workspace => "workspace",
            Self::WorkspaceMember => "workspace_member",
            Self::ApiKey => "api_key",
        }
    }
}

/// One object as stored: the lookup columns and the API's own JSON.
#[derive(Debug, Clone, PartialEq)]
pub struct MirrorObject {
    pub kind: ObjectKind,
    pub id: String,
    pub email_key: Option<String>,
    pub user_id: Option<String>,
    pub workspace_id: Option<String>,
    pub status: Option<String>,
    pub data: Value,
}

/// A stored object with when it was last seen.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct MirrorRow {
    pub kind: String,
    pub id: String,
    pub email_key: Option<String>,
    pub user_id: Option<String>,
    pub workspace_id: Option<String>,
    pub status: Option<String>,
    pub data: Value,
    pub seen_at: DateTime<Utc>,
    pub gone: bool,
}

/// When a part of the mirror was last read whole.
#[derive(Debug, Clone, serde::Serialize, sqlx::FromRow)]
pub struct MirrorRead {
    pub part: String,
    pub started_at: Option<DateTime<Utc>>,
    pub refreshed_at: Option<DateTime<Utc>>,
    pub pages: i64,
    pub objects: i64,
    pub lease_owner: Option<String>,
    pub lease_until: Option<DateTime<Utc>>,
}

impl Tx {
    /// Stores objects as the API showed them at `seen_at`. An object Keycard removed or
    /// changed after `seen_at` keeps Keycard's newer state: a read that began before a write
    /// never undoes it.
    pub async fn mirror_put(
        &mut self,
        objects: &[MirrorObject],
        seen_at: DateTime<Utc>,
    ) -> JournalResult<()> {
        for chunk in objects.chunks(200) {
            let mut s = sql(
                "INSERT INTO org_mirror (kind, id, email_key, user_id, workspace_id, status, data,
                                         seen_at, gone) VALUES ",
            );
            for (i, o) in chunk.iter().enumerate() {
                if i > 0 {
                    s.push(", ");
                }
                s.push("(")
                    .push_bind(o.kind.as_str())
                    .push(", ")
                    .push_bind(o.id.as_str())
                    .push(", ")
                    .push_bind(o.email_key.clone())
                    .push(", ")
                    .push_bind(o.user_id.clone())
                    .push(", ")
                    .push_bind(o.workspace_id.clone())
                    .push(", ")
                    .push_bind(o.status.clone())
                    .push(", ")
                    .push_bind(&o.data)
                    .push(", ")
                    .push_bind(seen_at)
                    .push(", FALSE)");
            }
            s.push(
                " ON CONFLICT (kind, id) DO UPDATE SET
                    email_key = EXCLUDED.email_key, user_id = EXCLUDED.user_id,
                    workspace_id = EXCLUDED.workspace_id, status = EXCLUDED.status,
                    data = EXCLUDED.data, seen_at = EXCLUDED.seen_at, gone = FALSE
                  WHERE org_mirror.seen_at <= EXCLUDED.seen_at",
            );
            self.execute(s).await?;
        }
        Ok(())
    }

    /// Records that an object no longer exists (Keycard removed it, or a targeted read found
    /// it gone) as of `at`.
    pub async fn mirror_gone(
        &mut self,
        kind: ObjectKind,
        id: &str,
        at: DateTime<Utc>,
    ) -> JournalResult<()> {
        self.execute(
            sql("UPDATE org_mirror SET gone = TRUE, seen_at = $3
                 WHERE kind = $1 AND id = $2 AND seen_at <= $3")
            .bind(kind.as_str())
            .bind(id)
            .bind(at),
        )
        .await?;
        Ok(())
    }

    /// Removes a user's workspace memberships from the mirror (the user left the
    /// organization: the API drops them too).
    pub async fn mirror_gone_memberships_of(
        &mut self,
        user_id: &str,
        at: DateTime<Utc>,
    ) -> JournalResult<()> {
        self.execute(
            sql("UPDATE org_mirror SET gone = TRUE, seen_at = $2
                 WHERE kind = 'workspace_member' AND user_id = $1 AND seen_at <= $2")
            .bind(user_id)
            .bind(at),
        )
        .await?;
        Ok(())
    }

    /// Ends a complete read of a part that began at `started`: whatever of that part was not
    /// seen since is gone from the organization, and tombstones from before are dropped.
    /// `scope` narrows the part (one workspace's members).
    pub async fn mirror_sweep(
        &mut self,
        kind: ObjectKind,
        workspace_id: Option<&str>,
        started: DateTime<Utc>,
    ) -> JournalResult<u64> {
        let mut s = sql("DELETE FROM org_mirror WHERE kind = $1 AND seen_at < $2")
            .bind(kind.as_str())
            .bind(started);
        if let Some(ws) = workspace_id {
            s.push(" AND workspace_id = ").push_bind(ws);
        }
        self.execute(s).await
    }

    /// Forgets the members of workspaces the organization no longer has (archived, or not
    /// listed any more).
    pub async fn mirror_drop_members_outside(
        &mut self,
        workspace_ids: &[String],
    ) -> JournalResult<u64> {
        let mut s =
            sql("DELETE FROM org_mirror WHERE kind = 'workspace_member' AND workspace_id NOT IN ");
        s.push_list(workspace_ids.iter().map(String::as_str));
        self.execute(s).await
    }

    /// Objects of a kind that exist, by id.
    pub async fn mirror_get(
        &mut self,
        kind: ObjectKind,
        id: &str,
    ) -> JournalResult<Option<MirrorRow>> {
        self.fetch_optional(
            sql("SELECT * FROM org_mirror WHERE kind = $1 AND id = $2 AND gone = FALSE")
                .bind(kind.as_str())
                .bind(id),
        )
        .await
    }

    /// Objects of a kind whose address is one of these (folded) keys.
    pub async fn mirror_by_email(
        &mut self,
        kind: ObjectKind,
        email_keys: &[String],
    ) -> JournalResult<Vec<MirrorRow>> {
        if email_keys.is_empty() {
            return Ok(Vec::new());
        }
        let mut s =
            sql("SELECT * FROM org_mirror WHERE kind = $1 AND gone = FALSE AND email_key IN ")
                .bind(kind.as_str());
        s.push_list(email_keys.iter().map(String::as_str))
            .push(" ORDER BY seen_at DESC, id");
        self.fetch_all(s).await
    }

    /// Objects of a kind that belong to a user (their memberships, the keys they created).
    pub async fn mirror_of_user(
        &mut self,
        kind: ObjectKind,
        user_id: &str,
    ) -> JournalResult<Vec<MirrorRow>> {
        self.fetch_all(
            sql(
                "SELECT * FROM org_mirror WHERE kind = $1 AND user_id = $2 AND gone = FALSE
                 ORDER BY id",
            )
            .bind(kind.as_str())
            .bind(user_id),
        )
        .await
    }

    /// Every object of a kind, in id order, a page at a time (`after`: the last id seen).
    pub async fn mirror_all(
        &mut self,
        kind: ObjectKind,
        after: Option<&str>,
        limit: i64,
    ) -> JournalResult<Vec<MirrorRow>> {
        self.fetch_all(
            sql(
                "SELECT * FROM org_mirror WHERE kind = $1 AND gone = FALSE AND id > $2
                 ORDER BY id LIMIT $3",
            )
            .bind(kind.as_str())
            .bind(after.unwrap_or(""))
            .bind(limit),
        )
        .await
    }

    /// Known ids among these (for the incremental read: where the newest-first list reaches
    /// what the mirror already has).
    pub async fn mirror_known(
        &mut self,
        kind: ObjectKind,
        ids: &[String],
    ) -> JournalResult<Vec<String>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut s = sql("SELECT id FROM org_mirror WHERE kind = $1 AND id IN ").bind(kind.as_str());
        s.push_list(ids.iter().map(String::as_str));
        self.column(s).await
    }

    /// Takes the lease on reading a part (one reader across every process). `false`: another
    /// process reads it now.
    pub async fn mirror_lease(
        &mut self,
        part: &str,
        owner: &str,
        now: DateTime<Utc>,
        lease: Duration,
    ) -> JournalResult<bool> {
        let n = self
            .execute(
                sql(
                    "INSERT INTO org_mirror_reads (part, lease_owner, lease_until)
                     VALUES ($1, $2, $3)
                     ON CONFLICT (part) DO UPDATE SET lease_owner = EXCLUDED.lease_owner,
                                                      lease_until = EXCLUDED.lease_until
                       WHERE org_mirror_reads.lease_until IS NULL
                          OR org_mirror_reads.lease_until < $4
                          OR org_mirror_reads.lease_owner = $2",
                )
                .bind(part)
                .bind(owner)
                .bind(now + lease)
                .bind(now),
            )
            .await?;
        Ok(n == 1)
    }

    /// Takes this process's turn at a read that must be spaced (the newest members, once per
    /// poll interval across every process): `true` when no turn was taken in the last
    /// `every`, and the turn is then recorded.
    pub async fn mirror_turn(
        &mut self,
        part: &str,
        owner: &str,
        now: DateTime<Utc>,
        every: Duration,
    ) -> JournalResult<bool> {
        let n = self
            .execute(
                sql(
                    "INSERT INTO org_mirror_reads (part, lease_owner, lease_until)
                     VALUES ($1, $2, $3)
                     ON CONFLICT (part) DO UPDATE SET lease_owner = EXCLUDED.lease_owner,
                                                      lease_until = EXCLUDED.lease_until
                       WHERE org_mirror_reads.lease_until IS NULL
                          OR org_mirror_reads.lease_until <= $4",
                )
                .bind(part)
                .bind(owner)
                .bind(now + every)
                .bind(now),
            )
            .await?;
        Ok(n == 1)
    }

    /// Records a completed read of a part and gives up its lease.
    pub async fn mirror_read_done(
        &mut self,
        part: &str,
        owner: &str,
        started: DateTime<Utc>,
        finished: DateTime<Utc>,
        pages: i64,
        objects: i64,
    ) -> JournalResult<()> {
        self.execute(
            sql("UPDATE org_mirror_reads
                 SET started_at = $3, refreshed_at = $4, pages = $5, objects = $6,
                     lease_owner = NULL, lease_until = NULL
                 WHERE part = $1 AND lease_owner = $2")
            .bind(part)
            .bind(owner)
            .bind(started)
            .bind(finished)
            .bind(pages)
            .bind(objects),
        )
        .await?;
        Ok(())
    }

    /// Gives up a lease without recording a read (the read failed).
    pub async fn mirror_release(&mut self, part: &str, owner: &str) -> JournalResult<()> {
        self.execute(
            sql(
                "UPDATE org_mirror_reads SET lease_owner = NULL, lease_until = NULL
                 WHERE part = $1 AND lease_owner = $2",
            )
            .bind(part)
            .bind(owner),
        )
        .await?;
        Ok(())
    }

    /// When each part was last read whole.
    pub async fn mirror_reads(&mut self) -> JournalResult<Vec<MirrorRead>> {
        self.fetch_all(sql("SELECT * FROM org_mirror_reads ORDER BY part"))
            .await
    }

    /// Whether the organization was read whole at least once.
    pub async fn mirror_was_read(&mut self) -> JournalResult<bool> {
        self.scalar(sql("SELECT EXISTS (SELECT 1 FROM org_mirror_reads
                            WHERE part = 'full' AND refreshed_at IS NOT NULL)"))
            .await
    }

    /// Makes the next full read due now (the cheap read saw more than it could follow).
    pub async fn mirror_read_due_now(&mut self, part: &str) -> JournalResult<()> {
        self.execute(
            sql("UPDATE org_mirror_reads SET refreshed_at = NULL WHERE part = $1").bind(part),
        )
        .await?;
        Ok(())
    }

    /// Whether any invite is pending (then acceptances are worth looking for).
    pub async fn mirror_has_pending_invites(&mut self) -> JournalResult<bool> {
        self.scalar(sql(
            "SELECT EXISTS (SELECT 1 FROM org_mirror
                            WHERE kind = 'invite' AND status = 'pending' AND gone = FALSE)",
        ))
        .await
    }

    /// When the newest pending invite to this address expires.
    pub async fn mirror_invite_expiry(
        &mut self,
        email_key: Option<&str>,
    ) -> JournalResult<Option<DateTime<Utc>>> {
        let Some(key) = email_key else {
            return Ok(None);
        };
        let rows = self
            .mirror_by_email(ObjectKind::Invite, &[key.to_owned()])
            .await?;
        Ok(rows
            .iter()
            .filter(|r| r.status.as_deref() == Some("pending"))
            .filter_map(|r| {
                r.data
                    .get("expires_at")
                    .and_then(Value::as_str)
                    .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                    .map(|t| t.with_timezone(&Utc))
            })
            .max())
    }
}
