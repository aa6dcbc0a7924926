//! What operators read: events and actions filtered and paged, one event, a person's
//! timeline.

use uuid::Uuid;

use super::actions::ACTION_SELECT;
use super::db::{Stmt, Tx, sql};
use super::logic::{decode_cursor, malformed_cursor, page_of, push_time_cursor};
use super::types::{ActionRow, EventRow, JournalFilter, Listing, Page, PersonRow, fold_email};
use super::{JournalError, JournalResult};

/// The filters both listings share, on their own columns (status, source, kind, and the
/// time `since`/`until` bound).
fn push_filters(s: &mut Stmt, f: &JournalFilter, [status, source, kind, time]: [&str; 4]) {
    for (column, value) in [(status, &f.status), (source, &f.source), (kind, &f.kind)] {
        if let Some(v) = value {
            s.push(&format!(" AND {column} = ")).push_bind(v.clone());
        }
    }
    if let Some(t) = f.since {
        s.push(&format!(" AND {time} >= ")).push_bind(t);
    }
    if let Some(t) = f.until {
        s.push(&format!(" AND {time} < ")).push_bind(t);
    }
}

impl Tx {
    pub async fn event(&mut self, id: Uuid) -> JournalResult<EventRow> {
        self.fetch_optional(sql("SELECT * FROM events WHERE id = $1").bind(id))
            .await?
            .ok_or_else(|| JournalError::NotFound(format!("event {id}")))
    }

    /// Events, newest first, with keyset paging.
    pub async fn list_events(&mut self, f: &JournalFilter) -> JournalResult<Page<EventRow>> {
        f.validate(Listing::Events)?;
        let mut s = sql("SELECT * FROM events WHERE TRUE");
        if let Some(p) = &f.person {
            let id = Uuid::parse_str(p).ok();
            // By the source's id as well: events not applied yet (scheduled, cancelled) have
            // no person_id.
            s.push(" AND (person_source_id = ")
                .push_bind(p.clone())
                .push(" OR person_id = ")
                .push_bind(id)
                .push(" OR email_key = ")
                .push_bind(fold_email(p))
                .push(
                    " OR (source, person_source_id) IN
                          (SELECT source, source_person_id FROM people WHERE id = ",
                )
                .push_bind(id)
                .push(" OR email_key = ")
                .push_bind(fold_email(p))
                .push("))");
        }
        if let Some(e) = &f.email {
            s.push(" AND (email_key = ")
                .push_bind(fold_email(e))
                .push(" OR person_id IN (SELECT id FROM people WHERE email_key = ")
                .push_bind(fold_email(e))
                .push("))");
        }
        push_filters(&mut s, f, ["status", "source", "kind", "received_at"]);
        if let Some(c) = &f.cursor {
            push_time_cursor(&mut s, c, "received_at", true)?;
        }
        s.push(" ORDER BY received_at DESC, id DESC LIMIT ")
            .push_bind(f.limit + 1);
        let rows: Vec<EventRow> = self.fetch_all(s).await?;
        Ok(page_of(rows, f.limit, |r| {
            format!("{}|{}", r.received_at.to_rfc3339(), r.id)
        }))
    }

    /// Actions, newest first, with keyset paging on their sequence.
    pub async fn list_actions(&mut self, f: &JournalFilter) -> JournalResult<Page<ActionRow>> {
        f.validate(Listing::Actions)?;
        let mut s = sql(format!("{ACTION_SELECT} WHERE TRUE"));
        if let Some(p) = &f.person {
            s.push(" AND (p.source_person_id = ")
                .push_bind(p.clone())
                .push(" OR p.id = ")
                .push_bind(Uuid::parse_str(p).ok())
                .push(" OR p.email_key = ")
                .push_bind(fold_email(p))
                .push(")");
        }
        if let Some(e) = &f.email {
            s.push(" AND p.email_key = ").push_bind(fold_email(e));
        }
        push_filters(
            &mut s,
            f,
            ["a.status", "p.source", "a.kind", "a.created_at"],
        );
        if let Some(c) = &f.cursor {
            let seq: i64 = decode_cursor(c)?.parse().map_err(|_| malformed_cursor(c))?;
            s.push(" AND a.seq < ").push_bind(seq);
        }
        s.push(" ORDER BY a.seq DESC LIMIT ").push_bind(f.limit + 1);
        let rows: Vec<ActionRow> = self.fetch_all(s).await?;
        Ok(page_of(rows, f.limit, |r| r.seq.to_string()))
    }

    /// A person's timeline: events and actions, oldest first.
    pub async fn person_timeline(
        &mut self,
        person: &PersonRow,
    ) -> JournalResult<(Vec<EventRow>, Vec<ActionRow>)> {
        let events = self
            .fetch_all(
                sql(
                    "SELECT * FROM events WHERE source = $1 AND person_source_id = $2
                     ORDER BY received_at, id",
                )
                .bind(&person.source)
                .bind(&person.source_person_id),
            )
            .await?;
        let actions = self
            .fetch_all(
                sql(format!(
                    "{ACTION_SELECT} WHERE a.person_id = $1 ORDER BY a.seq"
                ))
                .bind(person.id),
            )
            .await?;
        Ok((events, actions))
    }
}
