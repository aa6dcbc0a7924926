//! What the Admin API cannot do for this organization, as the last full read found it
//! (`org_limits`, recorded by `crate::mirror::refresh`), in words for the reports.

use super::AdoptionError;
use crate::journal::Journal;

/// One note per part of the organization Keycard cannot read or change, and why.
pub async fn notes(journal: &Journal) -> Result<Vec<String>, AdoptionError> {
    Ok(journal
        .conn()
        .await?
        .org_limits()
        .await?
        .into_iter()
        .map(|l| {
            format!(
                "cannot manage {} (found {}): {}",
                l.feature,
                l.detected_at.to_rfc3339(),
                l.reason
            )
        })
        .collect())
}
