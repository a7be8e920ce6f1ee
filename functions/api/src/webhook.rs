//! `GET`/`POST /webhook`: WhatsApp's notifications — statuses of our messages, and messages
//! from customers (text, media, button taps; see [`crate::inbound`]).
//!
//! The signature is checked over the raw body before anything is parsed; an unsigned or
//! forged notification changes nothing. Each status moves its message forward only, and an
//! inbound message seen before is ignored, so Meta's at-least-once, unordered delivery is
//! harmless. A notification is acknowledged (200) only once everything in it is recorded: if
//! the store is unavailable the answer is 503 and Meta delivers it again.

use std::collections::HashMap;

use anna_shared::aws::statuses::StatusApplied;
use anna_shared::domain::message::MessageStatus;
use anna_shared::domain::phone::{mask_phone, match_key};
use anna_shared::error::Retryable;
use anna_shared::metrics::MetricSet;
use anna_shared::ports::{OptOut, OptOutStore};
use anna_shared::webhook::{parse_notification, verify_signature, verify_subscription};
use anna_shared::whatsapp::errors::is_opt_out;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use tracing::{debug, info, warn};

use crate::context::SharedContext;
use crate::inbound::{InboundApplied, apply_inbound};
use crate::problem::Problem;

/// What the webhook needs to trust Meta: from configuration (SSM on AWS).
#[derive(Debug, Clone, Default)]
pub struct WebhookSecrets {
    /// The Meta app secret `X-Hub-Signature-256` is keyed with.
    pub app_secret: String,
    /// The token Meta presents when the webhook is subscribed.
    pub verify_token: String,
}

/// Meta's subscription check: answers the challenge when the verify token matches.
#[utoipa::path(
    get,
    path = "/webhook",
    tag = "webhook",
    params(
        ("hub.mode" = Option<String>, Query, description = "`subscribe`"),
        ("hub.verify_token" = Option<String>, Query, description = "The configured verify token"),
        ("hub.challenge" = Option<String>, Query, description = "Echoed back on success"),
    ),
    responses(
        (status = 200, description = "The challenge", content_type = "text/plain"),
        (status = 403, description = "Wrong mode or token", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn verify(
    State(ctx): State<SharedContext>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let get = |name: &str| query.get(name).map(String::as_str);
    match verify_subscription(
        get("hub.mode"),
        get("hub.verify_token"),
        get("hub.challenge"),
        &ctx.webhook.verify_token,
    ) {
        Some(challenge) => (StatusCode::OK, challenge.to_owned()).into_response(),
        None => Problem::new(
            StatusCode::FORBIDDEN,
            "webhook-verification-failed",
            "Forbidden",
            "hub.mode must be `subscribe` and hub.verify_token the configured verify token",
        )
        .into_response(),
    }
}

/// A signed notification from WhatsApp: statuses of messages we sent, and messages from
/// customers.
#[utoipa::path(
    post,
    path = "/webhook",
    tag = "webhook",
    request_body(content = String, description = "The notification, as Meta signed it", content_type = "application/json"),
    responses(
        (status = 200, description = "Every status and message recorded"),
        (status = 400, description = "Signed, but not a notification", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or wrong signature; nothing changed", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Not recorded now; Meta delivers it again", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn receive(
    State(ctx): State<SharedContext>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if ctx.webhook.app_secret.is_empty() {
        return Problem::new(
            StatusCode::UNAUTHORIZED,
            "webhook-not-configured",
            "Unauthorized",
            "no app secret is configured (WA_APP_SECRET), so no notification can be trusted",
        )
        .into_response();
    }
    let signature = headers
        .get("x-hub-signature-256")
        .and_then(|value| value.to_str().ok());
    if let Err(e) = verify_signature(&ctx.webhook.app_secret, &body, signature) {
        warn!(error = %e, "webhook refused");
        return Problem::new(
            StatusCode::UNAUTHORIZED,
            "bad-webhook-signature",
            "Unauthorized",
            e.to_string(),
        )
        .into_response();
    }
    let max = ctx.limits.max_json_depth;
    if anna_shared::json_guard::nesting_depth(&body, max) > max {
        return Problem::bad_request(
            "malformed-webhook",
            format!("the notification nests more than {max} levels deep"),
        )
        .into_response();
    }
    let notified = match parse_notification(&body) {
        Ok(notified) => notified,
        Err(e) => {
            return Problem::bad_request("malformed-webhook", e.to_string()).into_response();
        }
    };
    let unavailable = || {
        Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "store-unavailable",
            "Service Unavailable",
            "the notification could not be recorded now; it will be accepted when delivered again",
        )
        .into_response()
    };
    // Only statuses that moved a message count, so Meta's redeliveries inflate nothing;
    // emitted on every way out, since what was recorded stays recorded.
    let mut applied = MetricSet::new().dimension("Function", "api");
    for event in &notified.statuses {
        match ctx.store.apply_status(event).await {
            Ok(StatusApplied::Moved { message, from, to }) => {
                info!(message_id = %message, %from, %to, "status recorded");
                match to {
                    MessageStatus::Delivered => applied.count("Delivered", 1),
                    MessageStatus::Read => applied.count("Read", 1),
                    MessageStatus::Failed => applied.count("FailedAfterSend", 1),
                    _ => {}
                }
            }
            Ok(StatusApplied::Ignored) => {
                debug!(wamid = %event.wamid, status = %event.status, "duplicate or late status");
            }
            Ok(StatusApplied::UnknownMessage) => {
                warn!(wamid = %event.wamid, status = %event.status, "status for a message we do not know; acknowledged");
            }
            Err(e) => {
                warn!(error = %e, retryable = e.is_retryable(), "status not recorded; Meta will deliver it again");
                applied.emit();
                return unavailable();
            }
        }
        // 131050 usually arrives here, after the send was accepted: the customer stopped
        // marketing messages, so later sends to them are skipped.
        if let (Some(error), Some(recipient)) = (&event.error, &event.recipient_id)
            && is_opt_out(error.code)
        {
            let opt_out = OptOut {
                key: match_key(recipient),
                phone: recipient.clone(),
                source: "whatsapp_131050".to_owned(),
                detail: error.details.clone().or_else(|| Some(error.title.clone())),
                created_at: event.at.clone(),
            };
            if let Err(e) = ctx.store.add_opt_out(&opt_out).await {
                warn!(error = %e, "opt-out not recorded; Meta will deliver it again");
                applied.emit();
                return unavailable();
            }
            info!(phone = %mask_phone(recipient), "number opted out (131050)");
        }
    }
    applied.emit();
    for message in &notified.messages {
        match apply_inbound(&ctx, message).await {
            Ok(InboundApplied::Recorded { answer, state }) => {
                info!(wamid = %message.wamid, ?answer, %state, "inbound message recorded");
            }
            Ok(InboundApplied::Duplicate) => {}
            Err(e) => {
                warn!(error = %e, retryable = e.is_retryable(), "inbound message not recorded; Meta will deliver it again");
                return unavailable();
            }
        }
    }
    StatusCode::OK.into_response()
}
