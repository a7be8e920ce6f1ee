//! WhatsApp webhooks (the reference's "Webhooks" section): the subscription handshake, the
//! `X-Hub-Signature-256` check, and the status events and inbound messages inside a
//! notification. Pure code; the API routes `/webhook` here and the store applies the events.

use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::Sha256;

use crate::domain::conversation::{InboundContent, InboundMessage};
use crate::domain::message::{MessageId, MessageStatus};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookError {
    #[error("missing X-Hub-Signature-256 header")]
    MissingSignature,
    #[error("X-Hub-Signature-256 does not match the body")]
    BadSignature,
    #[error("the notification is not valid JSON of the expected shape: {0}")]
    Malformed(String),
}

/// Answers Meta's verification request: the challenge when mode and token match, else `None`
/// (the caller answers 403). The token comparison is constant-time.
pub fn verify_subscription<'a>(
    mode: Option<&str>,
    token: Option<&str>,
    challenge: Option<&'a str>,
    expected_token: &str,
) -> Option<&'a str> {
    let token_matches = token.is_some_and(|token| {
        use subtle::ConstantTimeEq;
        !expected_token.is_empty() && bool::from(token.as_bytes().ct_eq(expected_token.as_bytes()))
    });
    (mode == Some("subscribe") && token_matches)
        .then_some(challenge)
        .flatten()
}

/// Checks `sha256=<hex>` against the HMAC-SHA256 of the raw body, keyed with the app secret,
/// in constant time. Must run on the bytes as received, before any parsing.
pub fn verify_signature(
    app_secret: &str,
    body: &[u8],
    header: Option<&str>,
) -> Result<(), WebhookError> {
    let header = header.ok_or(WebhookError::MissingSignature)?;
    let hex_digest = header
        .trim()
        .strip_prefix("sha256=")
        .ok_or(WebhookError::BadSignature)?;
    let expected = hex::decode(hex_digest).map_err(|_| WebhookError::BadSignature)?;
    let mut mac = Hmac::<Sha256>::new_from_slice(app_secret.as_bytes())
        .map_err(|_| WebhookError::BadSignature)?;
    mac.update(body);
    mac.verify_slice(&expected)
        .map_err(|_| WebhookError::BadSignature)
}

/// One delivery status WhatsApp reported for one of our messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusEvent {
    pub wamid: String,
    pub status: MessageStatus,
    /// When it happened, as RFC 3339 (from the event's Unix timestamp).
    pub at: String,
    /// The WhatsApp id of the recipient.
    pub recipient_id: Option<String>,
    /// Our message id, echoed from `biz_opaque_callback_data`.
    pub message_id: Option<MessageId>,
    /// For `failed`: the first error's code, title and details.
    pub error: Option<StatusError>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusError {
    pub code: i64,
    pub title: String,
    pub details: Option<String>,
}

#[derive(Deserialize)]
struct Notification {
    #[serde(default)]
    entry: Vec<Entry>,
}

#[derive(Deserialize)]
struct Entry {
    #[serde(default)]
    changes: Vec<Change>,
}

#[derive(Deserialize)]
struct Change {
    #[serde(default)]
    value: Value,
}

#[derive(Deserialize, Default)]
struct Value {
    #[serde(default)]
    statuses: Vec<RawStatus>,
    #[serde(default)]
    contacts: Vec<RawContact>,
    #[serde(default)]
    messages: Vec<RawInbound>,
}

#[derive(Deserialize)]
struct RawContact {
    #[serde(default)]
    wa_id: Option<String>,
    #[serde(default)]
    profile: Option<RawProfile>,
}

#[derive(Deserialize)]
struct RawProfile {
    #[serde(default)]
    name: Option<String>,
}

#[derive(Deserialize)]
struct RawInbound {
    id: String,
    from: String,
    #[serde(default)]
    timestamp: Option<String>,
    #[serde(rename = "type", default)]
    kind: Option<String>,
    #[serde(default)]
    context: Option<RawContext>,
    #[serde(default)]
    text: Option<RawText>,
    #[serde(default)]
    button: Option<RawButton>,
    #[serde(default)]
    interactive: Option<RawInteractive>,
}

#[derive(Deserialize)]
struct RawContext {
    #[serde(default)]
    id: Option<String>,
}

#[derive(Deserialize)]
struct RawText {
    #[serde(default)]
    body: String,
}

#[derive(Deserialize)]
struct RawButton {
    #[serde(default)]
    payload: String,
    #[serde(default)]
    text: String,
}

#[derive(Deserialize)]
struct RawInteractive {
    #[serde(default)]
    button_reply: Option<RawReply>,
    #[serde(default)]
    list_reply: Option<RawReply>,
}

#[derive(Deserialize)]
struct RawReply {
    #[serde(default)]
    id: String,
    #[serde(default)]
    title: String,
}

/// What one notification carries.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Notified {
    pub statuses: Vec<StatusEvent>,
    pub messages: Vec<InboundMessage>,
}

#[derive(Deserialize)]
struct RawStatus {
    id: String,
    status: String,
    #[serde(default)]
    timestamp: Option<String>,
    #[serde(default)]
    recipient_id: Option<String>,
    #[serde(default)]
    biz_opaque_callback_data: Option<String>,
    #[serde(default)]
    errors: Vec<RawError>,
}

#[derive(Deserialize)]
struct RawError {
    code: i64,
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    error_data: Option<RawErrorData>,
}

#[derive(Deserialize)]
struct RawErrorData {
    #[serde(default)]
    details: Option<String>,
}

/// 9999-12-31T23:59:59Z, the last second RFC 3339 can write.
const MAX_TIMESTAMP: i64 = 253_402_300_799;

/// The status events in a notification. Other content (inbound messages, unknown statuses)
/// is skipped here; the caller still acknowledges the notification.
pub fn status_events(body: &[u8]) -> Result<Vec<StatusEvent>, WebhookError> {
    parse_notification(body).map(|notified| notified.statuses)
}

/// Only times RFC 3339 can write with a four-digit year: a timestamp past 9999 would be
/// written "+10018-…", which no parser reads back and which sorts before every real time.
/// Such a time is not WhatsApp's; the receipt time stands in for it.
fn event_time(timestamp: Option<&str>) -> chrono::DateTime<chrono::Utc> {
    timestamp
        .and_then(|t| t.trim().parse::<i64>().ok())
        .filter(|t| (0..=MAX_TIMESTAMP).contains(t))
        .and_then(|t| chrono::DateTime::from_timestamp(t, 0))
        .unwrap_or_else(chrono::Utc::now)
}

/// The status events and inbound messages of a notification. Unknown statuses are skipped;
/// the caller still acknowledges the notification.
pub fn parse_notification(body: &[u8]) -> Result<Notified, WebhookError> {
    let value: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| WebhookError::Malformed(e.to_string()))?;
    if !value.is_object() {
        return Err(WebhookError::Malformed("expected a JSON object".to_owned()));
    }
    let notification: Notification =
        serde_json::from_value(value).map_err(|e| WebhookError::Malformed(e.to_string()))?;
    let mut notified = Notified::default();
    for value in notification
        .entry
        .into_iter()
        .flat_map(|entry| entry.changes)
        .map(|change| change.value)
    {
        for raw in value.statuses {
            if let Some(event) = status_event(raw) {
                notified.statuses.push(event);
            }
        }
        for raw in value.messages {
            let profile_name = value
                .contacts
                .iter()
                .find(|c| c.wa_id.as_deref() == Some(raw.from.as_str()))
                .or(value.contacts.first())
                .and_then(|c| c.profile.as_ref())
                .and_then(|p| p.name.clone());
            notified.messages.push(inbound_message(raw, profile_name));
        }
    }
    Ok(notified)
}

fn inbound_message(raw: RawInbound, profile_name: Option<String>) -> InboundMessage {
    let kind = raw.kind.unwrap_or_else(|| "unknown".to_owned());
    let content = match (kind.as_str(), raw.text, raw.button, raw.interactive) {
        ("text", Some(text), _, _) => InboundContent::Text { body: text.body },
        ("button", _, Some(button), _) => InboundContent::Button {
            payload: button.payload,
            text: button.text,
        },
        ("interactive", _, _, Some(interactive)) => {
            match interactive.button_reply.or(interactive.list_reply) {
                Some(reply) => InboundContent::Interactive {
                    id: reply.id,
                    title: reply.title,
                },
                None => InboundContent::Other { kind },
            }
        }
        _ => InboundContent::Other { kind },
    };
    InboundMessage {
        at: event_time(raw.timestamp.as_deref()),
        wamid: raw.id,
        from: raw.from,
        profile_name,
        context_wamid: raw.context.and_then(|c| c.id),
        content,
    }
}

fn status_event(raw: RawStatus) -> Option<StatusEvent> {
    let status = match raw.status.as_str() {
        "sent" => MessageStatus::Sent,
        "delivered" => MessageStatus::Delivered,
        "read" => MessageStatus::Read,
        "failed" => MessageStatus::Failed,
        other => {
            tracing::info!(status = other, "status webhook of a kind we do not track");
            return None;
        }
    };
    let at =
        event_time(raw.timestamp.as_deref()).to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let error = raw.errors.into_iter().next().map(|e| StatusError {
        code: e.code,
        title: e.title.or(e.message).unwrap_or_default(),
        details: e.error_data.and_then(|d| d.details),
    });
    Some(StatusEvent {
        message_id: raw
            .biz_opaque_callback_data
            .as_deref()
            .and_then(|data| data.parse().ok()),
        wamid: raw.id,
        status,
        at,
        recipient_id: raw.recipient_id,
        error,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sign(secret: &str, body: &[u8]) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
        mac.update(body);
        format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
    }

    #[test]
    fn signatures_are_checked_over_the_raw_bytes() {
        let body = br#"{"object":"whatsapp_business_account"}"#;
        let good = sign("secret", body);
        assert_eq!(verify_signature("secret", body, Some(&good)), Ok(()));
        assert_eq!(
            verify_signature("other", body, Some(&good)),
            Err(WebhookError::BadSignature)
        );
        let reserialised = br#"{ "object": "whatsapp_business_account" }"#;
        assert_eq!(
            verify_signature("secret", reserialised, Some(&good)),
            Err(WebhookError::BadSignature)
        );
        for bad in ["", "sha256=", "sha256=zz", "md5=00", &good[7..]] {
            assert_eq!(
                verify_signature("secret", body, Some(bad)),
                Err(WebhookError::BadSignature),
                "{bad:?}"
            );
        }
        assert_eq!(
            verify_signature("secret", body, None),
            Err(WebhookError::MissingSignature)
        );
    }

    #[test]
    fn subscription_needs_mode_and_token() {
        assert_eq!(
            verify_subscription(Some("subscribe"), Some("t"), Some("42"), "t"),
            Some("42")
        );
        assert_eq!(
            verify_subscription(Some("subscribe"), Some("x"), Some("42"), "t"),
            None
        );
        assert_eq!(
            verify_subscription(Some("unsubscribe"), Some("t"), Some("42"), "t"),
            None
        );
        assert_eq!(
            verify_subscription(Some("subscribe"), None, Some("42"), "t"),
            None
        );
        assert_eq!(
            verify_subscription(Some("subscribe"), Some(""), Some("42"), ""),
            None
        );
    }

    #[test]
    fn reads_the_documented_status_notification() {
        let body = br#"{ "object": "whatsapp_business_account",
          "entry": [ { "id": "1", "changes": [ { "field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": { "display_phone_number": "15550783881", "phone_number_id": "106540352242922" },
            "statuses": [ {
              "id": "wamid.HBgM", "status": "failed", "timestamp": "1750857384",
              "recipient_id": "5511987654321", "biz_opaque_callback_data": "d-1:7",
              "errors": [ { "code": 131026, "title": "Message undeliverable",
                            "error_data": { "details": "not on WhatsApp" } } ] },
              { "id": "wamid.X", "status": "delivered", "timestamp": "1750857385" },
              { "id": "wamid.Y", "status": "deleted" } ] } } ] } ] }"#;
        let events = status_events(body).expect("valid");
        assert_eq!(events.len(), 2);
        assert_eq!(events[0].status, MessageStatus::Failed);
        assert_eq!(events[0].message_id, Some(MessageId::new("d-1", 7)));
        assert_eq!(events[0].at, "2025-06-25T13:16:24.000Z");
        assert_eq!(
            events[0].error,
            Some(StatusError {
                code: 131026,
                title: "Message undeliverable".into(),
                details: Some("not on WhatsApp".into())
            })
        );
        assert_eq!(events[1].message_id, None);
    }

    #[test]
    fn reads_the_documented_inbound_text_and_button_tap() {
        let body = br#"{ "object": "whatsapp_business_account",
          "entry": [ { "id": "1", "changes": [ { "field": "messages", "value": {
            "messaging_product": "whatsapp",
            "contacts": [ { "profile": { "name": "Maria" }, "wa_id": "5511987654321" } ],
            "messages": [
              { "from": "5511987654321", "id": "wamid.A", "timestamp": "1750091045",
                "type": "text", "text": { "body": "oi" } },
              { "context": { "from": "15550783881", "id": "wamid.T" },
                "from": "5511987654321", "id": "wamid.B", "timestamp": "1750091046",
                "type": "button", "button": { "payload": "d-1:1#b0", "text": "Sim" } },
              { "from": "5511987654321", "id": "wamid.C", "timestamp": "1750091047",
                "type": "image", "image": { "id": "1" } } ] } } ] } ] }"#;
        let notified = parse_notification(body).expect("valid");
        assert!(notified.statuses.is_empty());
        let [text, tap, image] = notified.messages.as_slice() else {
            panic!("three messages: {notified:?}");
        };
        assert_eq!(text.content, InboundContent::Text { body: "oi".into() });
        assert_eq!(text.profile_name.as_deref(), Some("Maria"));
        assert_eq!(text.at.timestamp(), 1750091045);
        assert_eq!(tap.context_wamid.as_deref(), Some("wamid.T"));
        assert_eq!(
            tap.content,
            InboundContent::Button {
                payload: "d-1:1#b0".into(),
                text: "Sim".into()
            }
        );
        assert_eq!(image.content.kind(), "image");
        assert!(
            parse_notification(br#"{"entry":[{"changes":[{"value":{"messages":[{"id":"x"}]}}]}]}"#)
                .is_err(),
            "an inbound message without `from` is malformed"
        );
    }

    #[test]
    fn malformed_bodies_are_errors_not_panics() {
        for body in [
            &b""[..],
            b"{",
            b"[]",
            br#"{"entry":"x"}"#,
            br#"{"entry":[{"changes":[{"value":{"statuses":[{"status":"sent"}]}}]}]}"#,
        ] {
            assert!(
                status_events(body).is_err(),
                "{:?}",
                String::from_utf8_lossy(body)
            );
        }
        assert_eq!(status_events(b"{}"), Ok(vec![]));
    }

    #[test]
    fn timestamps_outside_rfc_3339_are_replaced_by_the_receipt_time() {
        // Found by fuzz_props::webhook_statuses_are_read: year 10018.
        for timestamp in ["254000000000", "-1", "9223372036854775807"] {
            let body = format!(
                r#"{{"entry":[{{"changes":[{{"value":{{"statuses":[{{"id":"w","status":"sent","timestamp":"{timestamp}"}}]}}}}]}}]}}"#
            );
            let events = status_events(body.as_bytes()).expect("valid");
            assert!(
                chrono::DateTime::parse_from_rfc3339(&events[0].at).is_ok(),
                "{timestamp}: {}",
                events[0].at
            );
            assert!(events[0].at.starts_with("20"), "{}", events[0].at);
        }
    }
}
