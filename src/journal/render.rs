//! Journal pages as tables or JSON pages for `keycard journal` (CSV and audit exports:
//! `export.rs`).

use std::fmt::Write as _;

use super::types::{ActionRow, EventRow, Page};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Table,
    Json,
}

/// Renders rows given as (headers, cells) in the chosen text format.
fn render_rows(
    headers: &[&str],
    rows: &[Vec<String>],
    next: Option<&str>,
    format: Format,
) -> String {
    let mut out = String::new();
    match format {
        Format::Table | Format::Json => {
            let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
            for r in rows {
                for (i, c) in r.iter().enumerate() {
                    widths[i] = widths[i].max(c.chars().count()).min(60);
                }
            }
            let line = |cells: Vec<String>| -> String {
                cells
                    .iter()
                    .enumerate()
                    .map(|(i, c)| {
                        let c: String = c.chars().take(60).collect();
                        format!("{c:<w$}", w = widths[i])
                    })
                    .collect::<Vec<_>>()
                    .join("  ")
                    .trim_end()
                    .to_owned()
            };
            let _ = writeln!(
                out,
                "{}",
                line(headers.iter().map(|h| h.to_uppercase()).collect())
            );
            for r in rows {
                let _ = writeln!(out, "{}", line(r.clone()));
            }
            if rows.is_empty() {
                let _ = writeln!(out, "(no rows)");
            }
            if let Some(c) = next {
                let _ = writeln!(out, "more: --cursor {c}");
            }
        }
    }
    out
}

fn ts(t: chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S").to_string()
}

pub fn actions(page: &Page<ActionRow>, format: Format) -> String {
    if format == Format::Json {
        return serde_json::to_string_pretty(page).unwrap_or_default() + "\n";
    }
    let headers = [
        "created",
        "person",
        "kind",
        "status",
        "attempts",
        "http",
        "request_id",
        "rule",
        "detail",
    ];
    let rows: Vec<Vec<String>> = page
        .data
        .iter()
        .map(|a| {
            let person = a
                .person_email
                .clone()
                .or_else(|| a.person_source_id.clone())
                .unwrap_or_else(|| a.person_id.to_string());
            let target = a
                .params
                .get("workspace")
                .or_else(|| a.params.get("to"))
                .or_else(|| a.params.get("role"))
                .or_else(|| a.params.get("name"))
                .and_then(|v| v.as_str())
                .map(|s| format!(" {s}"))
                .unwrap_or_default();
            vec![
                ts(a.created_at),
                person,
                format!("{}{target}", a.kind),
                a.status.to_string(),
                a.attempts.to_string(),
                a.response_status.map(|s| s.to_string()).unwrap_or_default(),
                a.request_id.clone().unwrap_or_default(),
                a.rule.clone().unwrap_or_default(),
                a.error
                    .clone()
                    .or_else(|| a.outcome.clone())
                    .unwrap_or_else(|| a.reason.clone()),
            ]
        })
        .collect();
    render_rows(&headers, &rows, page.next_cursor.as_deref(), format)
}

pub fn events(page: &Page<EventRow>, format: Format) -> String {
    if format == Format::Json {
        return serde_json::to_string_pretty(page).unwrap_or_default() + "\n";
    }
    let headers = [
        "received", "source", "kind", "person", "email", "status", "event_id", "detail",
    ];
    let rows: Vec<Vec<String>> = page
        .data
        .iter()
        .map(|e| {
            vec![
                ts(e.received_at),
                e.source.clone(),
                match &e.source_event_type {
                    Some(t) => format!("{} ({t})", e.kind),
                    None => e.kind.to_string(),
                },
                e.person_source_id.clone().unwrap_or_default(),
                e.email.clone().unwrap_or_default(),
                e.status.to_string(),
                e.id.to_string(),
                e.status_reason.clone().unwrap_or_default(),
            ]
        })
        .collect();
    render_rows(&headers, &rows, page.next_cursor.as_deref(), format)
}
