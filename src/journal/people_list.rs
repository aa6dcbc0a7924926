//! People listed for operators (`GET /api/v1/people`): filtered, oldest first, with keyset
//! paging in the cursor format of the other listings.

use super::db::{Tx, sql};
use super::logic::{page_of, push_time_cursor};
use super::types::{Page, PersonRow, PersonStatus, fold_email};
use super::{JournalError, JournalResult};

/// Filters of the people listing.
#[derive(Debug, Clone, Default)]
pub struct PeopleFilter {
    pub status: Option<String>,
    pub source: Option<String>,
    /// The current address, compared folded.
    pub email: Option<String>,
    /// `true`: linked to an Admin API account; `false`: not linked.
    pub linked: Option<bool>,
    /// Part of the address or of the source's id.
    pub q: Option<String>,
    pub cursor: Option<String>,
    pub limit: i64,
}

impl Tx {
    /// People, oldest first, a page at a time.
    pub async fn list_people(&mut self, f: &PeopleFilter) -> JournalResult<Page<PersonRow>> {
        if let Some(s) = &f.status
            && s.parse::<PersonStatus>().is_err()
        {
            return Err(JournalError::InvalidQuery(format!(
                "status '{s}' is not one of: {}",
                PersonStatus::names().join(", ")
            )));
        }
        if !(1..=1000).contains(&f.limit) {
            return Err(JournalError::InvalidQuery(
                "limit must be between 1 and 1000".into(),
            ));
        }
        let mut s = sql("SELECT * FROM people WHERE TRUE");
        if let Some(v) = &f.status {
            s.push(" AND status = ").push_bind(v.clone());
        }
        if let Some(v) = &f.source {
            s.push(" AND source = ").push_bind(v.clone());
        }
        if let Some(v) = &f.email {
            s.push(" AND email_key = ").push_bind(fold_email(v));
        }
        match f.linked {
            Some(true) => {
                s.push(" AND anthropic_user_id IS NOT NULL");
            }
            Some(false) => {
                s.push(" AND anthropic_user_id IS NULL");
            }
            None => {}
        }
        if let Some(q) = f.q.as_deref().map(str::trim).filter(|q| !q.is_empty()) {
            let pattern = format!("%{}%", fold_email(q).replace(['%', '_'], ""));
            s.push(" AND (email_key LIKE ")
                .push_bind(pattern.clone())
                .push(" OR lower(source_person_id) LIKE ")
                .push_bind(pattern)
                .push(")");
        }
        if let Some(c) = &f.cursor {
            push_time_cursor(&mut s, c, "created_at", false)?;
        }
        s.push(" ORDER BY created_at, id LIMIT ")
            .push_bind(f.limit + 1);
        let rows: Vec<PersonRow> = self.fetch_all(s).await?;
        Ok(page_of(rows, f.limit, |r| {
            format!("{}|{}", r.created_at.to_rfc3339(), r.id)
        }))
    }
}
