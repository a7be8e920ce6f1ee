//! Status webhooks, as the Cloud API posts them: after an accepted send, `sent`, then
//! `delivered`, then `read`, each signed with `X-Hub-Signature-256` (HMAC-SHA256 of the raw
//! body, keyed with the app secret). Delays and ratios are configurable, and so are the
//! misbehaviours the receiver must tolerate: duplicates and statuses out of order.

use std::time::Duration;

use hmac::{Hmac, Mac};
use rand::Rng;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::Sha256;

use crate::sends::AcceptedSend;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebhookConfig {
    /// Where statuses are posted (the API's `/webhook`); none posts nothing.
    pub url: Option<String>,
    /// The app secret the signature is keyed with.
    pub app_secret: String,
    /// Delay before `sent`, then between `sent` and `delivered`, and `delivered` and `read`.
    pub step_ms: u64,
    /// Share of sends that are reported delivered (the rest stop at `sent`).
    pub delivered_ratio: f64,
    /// Share of delivered sends that are reported read.
    pub read_ratio: f64,
    /// Each status is posted twice at this rate.
    pub duplicate_rate: f64,
    /// Post the statuses of a send in reverse order (`read` first).
    pub out_of_order: bool,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        Self {
            url: None,
            app_secret: "sim-app-secret".into(),
            step_ms: 50,
            delivered_ratio: 1.0,
            read_ratio: 1.0,
            duplicate_rate: 0.0,
            out_of_order: false,
        }
    }
}

/// `sha256=<hex>` of `body` under `secret`, as in `X-Hub-Signature-256`.
pub fn signature(secret: &str, body: &[u8]) -> String {
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret.as_bytes()) {
        Ok(mac) => mac,
        // HMAC takes keys of any length; this arm is unreachable in practice.
        Err(_) => return String::new(),
    };
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// The webhook body carrying one status of one send.
pub fn status_body(
    waba_id: &str,
    phone_number_id: &str,
    display_phone_number: &str,
    send: &AcceptedSend,
    status: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> Value {
    let mut entry = json!({
        "id": send.wamid,
        "status": status,
        "timestamp": now.timestamp().to_string(),
        "recipient_id": send.wa_id,
        "pricing": { "billable": true, "pricing_model": "PMP", "category": "utility" },
    });
    if let Some(data) = &send.biz_opaque_callback_data {
        entry["biz_opaque_callback_data"] = json!(data);
    }
    let mut value = metadata(phone_number_id, display_phone_number);
    value["statuses"] = json!([entry]);
    notification(waba_id, value)
}

/// The `value` of a change: who the business number is. The caller adds statuses or messages.
fn metadata(phone_number_id: &str, display_phone_number: &str) -> Value {
    json!({
        "messaging_product": "whatsapp",
        "metadata": {
            "display_phone_number": display_phone_number,
            "phone_number_id": phone_number_id,
        },
    })
}

/// The envelope every notification of the `messages` field comes in.
fn notification(waba_id: &str, value: Value) -> Value {
    json!({
        "object": "whatsapp_business_account",
        "entry": [{
            "id": waba_id,
            "changes": [{ "field": "messages", "value": value }],
        }],
    })
}

/// What a simulated customer sends.
pub enum InboundContent<'a> {
    Text(&'a str),
    /// A tap on a quick-reply button of the template message `context_wamid`.
    Button {
        context_wamid: &'a str,
        payload: &'a str,
        text: &'a str,
    },
}

/// The webhook body of one message from a customer, as the Cloud API posts it.
#[allow(clippy::too_many_arguments)]
pub fn inbound_body(
    waba_id: &str,
    phone_number_id: &str,
    display_phone_number: &str,
    from: &str,
    profile_name: &str,
    wamid: &str,
    content: &InboundContent<'_>,
    now: chrono::DateTime<chrono::Utc>,
) -> Value {
    let mut message = json!({
        "from": from,
        "id": wamid,
        "timestamp": now.timestamp().to_string(),
    });
    match content {
        InboundContent::Text(body) => {
            message["type"] = json!("text");
            message["text"] = json!({ "body": body });
        }
        InboundContent::Button {
            context_wamid,
            payload,
            text,
        } => {
            message["type"] = json!("button");
            message["context"] = json!({ "from": display_phone_number, "id": context_wamid });
            message["button"] = json!({ "payload": payload, "text": text });
        }
    }
    let mut value = metadata(phone_number_id, display_phone_number);
    value["contacts"] = json!([{ "profile": { "name": profile_name }, "wa_id": from }]);
    value["messages"] = json!([message]);
    notification(waba_id, value)
}

/// The statuses one send will be reported with, in posting order.
pub fn plan(config: &WebhookConfig) -> Vec<&'static str> {
    let mut rng = rand::rng();
    let mut statuses = vec!["sent"];
    if rng.random_bool(config.delivered_ratio.clamp(0.0, 1.0)) {
        statuses.push("delivered");
        if rng.random_bool(config.read_ratio.clamp(0.0, 1.0)) {
            statuses.push("read");
        }
    }
    if config.out_of_order {
        statuses.reverse();
    }
    let mut posted = Vec::new();
    for status in statuses {
        posted.push(status);
        if rng.random_bool(config.duplicate_rate.clamp(0.0, 1.0)) {
            posted.push(status);
        }
    }
    posted
}

/// Posts one signed webhook body; failures are logged (Meta retries, the simulator does not).
pub async fn post(client: &reqwest::Client, url: &str, secret: &str, body: &Value) {
    post_answer(client, url, secret, body).await;
}

/// Posts one signed webhook body and answers the receiver's HTTP status (none when it could
/// not be reached).
pub async fn post_answer(
    client: &reqwest::Client,
    url: &str,
    secret: &str,
    body: &Value,
) -> Option<u16> {
    let bytes = body.to_string().into_bytes();
    let result = client
        .post(url)
        .header("content-type", "application/json")
        .header("x-hub-signature-256", signature(secret, &bytes))
        .body(bytes)
        .timeout(Duration::from_secs(10))
        .send()
        .await;
    match result {
        Ok(response) if response.status().is_success() => Some(response.status().as_u16()),
        Ok(response) => {
            tracing::warn!(status = %response.status(), "webhook refused");
            Some(response.status().as_u16())
        }
        Err(e) => {
            tracing::warn!(error = %e, "webhook not delivered");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_is_hmac_sha256_hex() {
        // Computed independently: HMAC-SHA256("key", "The quick brown fox jumps over the lazy dog").
        assert_eq!(
            signature("key", b"The quick brown fox jumps over the lazy dog"),
            "sha256=f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8"
        );
    }

    #[test]
    fn plans_follow_ratios_order_and_duplicates() {
        let all = WebhookConfig::default();
        assert_eq!(plan(&all), vec!["sent", "delivered", "read"]);
        let reversed = WebhookConfig {
            out_of_order: true,
            ..WebhookConfig::default()
        };
        assert_eq!(plan(&reversed), vec!["read", "delivered", "sent"]);
        let twice = WebhookConfig {
            duplicate_rate: 1.0,
            delivered_ratio: 0.0,
            ..WebhookConfig::default()
        };
        assert_eq!(plan(&twice), vec!["sent", "sent"]);
    }
}
