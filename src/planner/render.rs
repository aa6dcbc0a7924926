//! A plan as `keycard plan` prints it.

use std::fmt::Write as _;

use super::{Plan, describe_observed};
use crate::journal::PersonRow;

/// The person, the rules' verdict, what the organization holds, and the actions a run
/// would journal — with where the removal cap or a manual note stops it.
pub fn preview(
    person: &PersonRow,
    known: Option<&PersonRow>,
    notes: &[String],
    plan: &Plan,
    has_client: bool,
    dry_run: bool,
) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "person {} ({}) status {}",
        person.source_person_id,
        person.email.as_deref().unwrap_or("no email"),
        person.status
    );
    let _ = writeln!(
        out,
        "journal:  {}",
        match known {
            Some(p) => format!(
                "known as {} since {} (status {}{})",
                p.id,
                p.created_at.to_rfc3339(),
                p.status,
                p.anthropic_user_id
                    .as_deref()
                    .map(|u| format!(", linked to {u}"))
                    .unwrap_or_default()
            ),
            None => "not known yet: planned from the event alone".to_owned(),
        }
    );
    for note in notes {
        let _ = writeln!(out, "note:     {note}");
    }
    let _ = writeln!(out, "\nrules:");
    if let Some(rules) = plan
        .desired
        .explanation
        .get("rules")
        .and_then(|r| r.as_array())
    {
        for r in rules {
            let _ = writeln!(
                out,
                "  {:<20} {}",
                r.get("name").and_then(|v| v.as_str()).unwrap_or("?"),
                match r.get("outcome") {
                    Some(o) => match (
                        o.get("result").and_then(|v| v.as_str()),
                        o.get("message").and_then(|v| v.as_str())
                    ) {
                        (Some(result), Some(msg)) => format!("{result}: {msg}"),
                        (Some(result), None) => result.to_owned(),
                        _ => o.to_string(),
                    },
                    None => String::new(),
                }
            );
        }
    }
    let _ = writeln!(
        out,
        "\ndesired: org_role={} workspaces={}",
        plan.desired
            .org_role
            .as_ref()
            .map_or("(none)", |r| r.as_str()),
        if plan.desired.workspaces.is_empty() {
            "(none)".to_owned()
        } else {
            plan.desired
                .workspaces
                .iter()
                .map(|(n, (r, rule))| format!("{n}={} (rule {rule})", r.as_str()))
                .collect::<Vec<_>>()
                .join(", ")
        }
    );
    if has_client {
        let _ = writeln!(out, "observed: {}", describe_observed(&plan.observed));
    } else {
        let _ = writeln!(
            out,
            "observed: (no Admin API credential configured: assuming the person has no access yet)"
        );
    }
    if let Some(user) = &plan.link {
        let _ = writeln!(
            out,
            "link:     the account {user} would be linked to this person"
        );
    }
    let _ = writeln!(
        out,
        "\nactions that would run{}:",
        if dry_run {
            " (dry run: journaled, never performed)"
        } else {
            ""
        }
    );
    if plan.steps.is_empty() {
        let _ = writeln!(out, "  (none: already converged)");
    }
    for (i, p) in plan.steps.iter().enumerate() {
        let _ = writeln!(
            out,
            "  {}. {:<24} {}  [{}]",
            i + 1,
            p.step.kind(),
            p.step.describe(),
            p.rule
                .as_deref()
                .map_or_else(|| p.reason.clone(), |r| format!("rule {r}: {}", p.reason))
        );
        if let Some(hold) = &p.hold {
            let _ = writeln!(out, "     HELD: {hold}; the run stops here");
        }
    }
    out
}
