//! What a delivery looks like on the wire, per target format.

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};
use uuid::Uuid;

use super::NotificationKind;
use super::config::{Target, TargetFormat};
use crate::sources::standard_webhooks::{MessageId, sign};

/// One HTTP request to send.
#[derive(Debug, Clone)]
pub struct Message {
    pub body: Vec<u8>,
    pub headers: Vec<(&'static str, String)>,
}

/// What a notification says, whatever its format.
#[derive(Debug, Clone)]
pub struct Content<'a> {
    pub id: Uuid,
    pub kind: NotificationKind,
    pub subject: &'a str,
    pub data: &'a Value,
    pub person_id: Option<Uuid>,
    pub raised_at: DateTime<Utc>,
}

/// Renders `c` for `target`, signed at `now` when the format signs.
pub fn render(
    target: &Target,
    c: &Content<'_>,
    console_url: Option<&str>,
    now: DateTime<Utc>,
) -> Message {
    let link = console_url.map(|base| {
        let base = base.trim_end_matches('/');
        match c.person_id {
            Some(p) => format!("{base}/console/people/{p}"),
            None => format!("{base}/console"),
        }
    });
    match target.format {
        TargetFormat::StandardWebhooks => {
            let mut data = c.data.clone();
            if let Value::Object(map) = &mut data {
                map.insert("notification_id".into(), json!(c.id));
                map.insert("subject".into(), json!(c.subject));
                if let Some(link) = &link {
                    map.insert("console_url".into(), json!(link));
                }
            }
            let body = json!({
                "type": c.kind.as_str(),
                "timestamp": c.raised_at.to_rfc3339_opts(SecondsFormat::Millis, true),
                "data": data,
            });
            let body = serde_json::to_vec(&body).unwrap_or_default();
            let id = format!("msg_{}", c.id.simple());
            let ts = now.timestamp();
            let mut headers = vec![
                ("content-type", "application/json".to_owned()),
                ("webhook-id", id.clone()),
                ("webhook-timestamp", ts.to_string()),
            ];
            if let (Some(secret), Ok(mid)) = (&target.secret, MessageId::parse(&id)) {
                headers.push(("webhook-signature", sign(secret, &mid, ts, &body)));
            }
            Message { body, headers }
        }
        TargetFormat::Slack => {
            let icon = match c.kind {
                NotificationKind::ActionFailed => ":x:",
                NotificationKind::ActionHeld | NotificationKind::CapReached => ":octagonal_sign:",
                NotificationKind::ManualActionNeeded => ":raising_hand:",
                NotificationKind::CredentialRejected => ":rotating_light:",
                NotificationKind::Test => ":white_check_mark:",
            };
            let mut text = format!("{icon} *Keycard {}*: {}", c.kind, slack_escape(c.subject));
            if let Some(link) = &link {
                text.push_str(&format!(" <{}|Open in the console>", slack_escape(link)));
            }
            let body = json!({
                "text": text,
                "blocks": [
                    { "type": "section", "text": { "type": "mrkdwn", "text": text } },
                    { "type": "context", "elements": [ { "type": "mrkdwn", "text": format!("notification {} · raised {}", c.id, c.raised_at.to_rfc3339_opts(SecondsFormat::Secs, true)) } ] }
                ],
            });
            Message {
                body: serde_json::to_vec(&body).unwrap_or_default(),
                headers: vec![("content-type", "application/json".to_owned())],
            }
        }
    }
}

/// Slack's three control characters in mrkdwn text.
fn slack_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}
