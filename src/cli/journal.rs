//! `keycard journal` (the journal as a table, CSV or JSON, for audits) and `keycard sign`
//! (Standard Webhooks headers for a native delivery, for trying Keycard with curl).

use super::*;
/// `--since 24h`: times are relative to the wall clock here, at the command line's edge.
pub(super) fn parse_time_arg(text: &str) -> Result<DateTime<Utc>, String> {
    crate::journal::export::parse_time(text, SystemClock.now())
}

pub(super) async fn journal(args: JournalArgs) -> CliResult {
    use crate::journal::export::{ActionRecord, EventRecord, ExportFormat, Exporter};
    let url = match args.journal {
        Some(url) => url,
        None => load(&args.config)?.journal_url(),
    };
    let journal = Journal::connect_read_only(&url)
        .await
        .map_err(|e| e.to_string())?;
    let export = match args.format {
        Format::Table if args.all => {
            return Err("--all streams an export: add --format csv, json or jsonl".into());
        }
        Format::Table => None,
        Format::Json => Some(ExportFormat::Json),
        Format::Csv => Some(ExportFormat::Csv),
        Format::Jsonl => Some(ExportFormat::JsonLines),
    };
    let mut filter = JournalFilter {
        person: args.person,
        email: args.email,
        status: args.status,
        source: args.source,
        kind: args.kind,
        since: args.since,
        until: args.until,
        cursor: args.cursor,
        limit: args.limit.unwrap_or(if args.all { 1000 } else { 50 }),
    };
    let mut conn = journal.conn().await.map_err(|e| e.to_string())?;
    let Some(format) = export else {
        let (out, _) = if args.events {
            let page = conn.list_events(&filter).await.map_err(|e| e.to_string())?;
            (
                crate::journal::render::events(&page, crate::journal::render::Format::Table),
                page.next_cursor,
            )
        } else {
            let page = conn
                .list_actions(&filter)
                .await
                .map_err(|e| e.to_string())?;
            (
                crate::journal::render::actions(&page, crate::journal::render::Format::Table),
                page.next_cursor,
            )
        };
        out!("{out}");
        return Ok(());
    };
    // Records go to stdout page by page as they are read; the next page's cursor (without
    // --all) goes to stderr, so stdout stays one well-formed export.
    let mut out = Exporter::new(std::io::stdout().lock(), format);
    let written = |e: crate::journal::export::ExportError| format!("writing the export: {e}");
    loop {
        let next = if args.events {
            let page = conn.list_events(&filter).await.map_err(|e| e.to_string())?;
            let records: Vec<EventRecord> = page.data.iter().map(EventRecord::from).collect();
            out.write(&records).map_err(written)?;
            page.next_cursor
        } else {
            let page = conn
                .list_actions(&filter)
                .await
                .map_err(|e| e.to_string())?;
            let records: Vec<ActionRecord> = page.data.iter().map(ActionRecord::from).collect();
            out.write(&records).map_err(written)?;
            page.next_cursor
        };
        match next {
            Some(cursor) if args.all => filter.cursor = Some(cursor),
            Some(cursor) => {
                if args.events {
                    out.finish::<EventRecord>().map_err(written)?;
                } else {
                    out.finish::<ActionRecord>().map_err(written)?;
                }
                eprintln!("more: --cursor {cursor} (or --all for every page)");
                return Ok(());
            }
            None => break,
        }
    }
    if args.events {
        out.finish::<EventRecord>().map_err(written)?;
    } else {
        out.finish::<ActionRecord>().map_err(written)?;
    }
    Ok(())
}

pub(super) fn sign(args: SignArgs) -> CliResult {
    use crate::sources::standard_webhooks::{MessageId, WebhookSecret, sign};
    let secret = std::env::var(&args.secret_env)
        .map_err(|_| format!("set {} to the source's whsec_ secret", args.secret_env))?;
    let secret =
        WebhookSecret::parse(secret.trim()).map_err(|e| format!("{}: {e}", args.secret_env))?;
    let body = std::fs::read(&args.file)
        .map_err(|e| format!("cannot read {}: {e}", args.file.display()))?;
    let id = args
        .id
        .unwrap_or_else(|| format!("msg_{}", uuid::Uuid::new_v4().simple()));
    let id = MessageId::parse(&id).map_err(|e| format!("--id: {e}"))?;
    let ts = args
        .timestamp
        .unwrap_or_else(|| SystemClock.now().timestamp());
    let signature = sign(&secret, &id, ts, &body);
    match args.curl {
        Some(url) => outln!(
            "curl -s -X POST '{url}' -H 'content-type: application/json' -H 'webhook-id: {}' -H 'webhook-timestamp: {ts}' -H 'webhook-signature: {signature}' --data-binary @'{}'",
            id.as_str(),
            args.file.display()
        ),
        None => {
            outln!("webhook-id: {}", id.as_str());
            outln!("webhook-timestamp: {ts}");
            outln!("webhook-signature: {signature}");
        }
    }
    Ok(())
}
