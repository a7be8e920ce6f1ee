//! `GET`/`POST /webhook`: WhatsApp's status notifications.
//!
//! The signature is checked over the raw body before anything is parsed; an unsigned or
//! forged notification changes nothing. Each status moves its message forward only, so Meta's
//! at-least-once, unordered delivery is harmless. A notification is acknowledged (200) only
//! once every event in it is recorded: if the store is unavailable the answer is 503 and Meta
//! delivers it again.

use std::collections::HashMap;

use anna_shared::aws::statuses::StatusApplied;
use anna_shared::error::Retryable;
use anna_shared::webhook::{status_events, verify_signature, verify_subscription};
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use tracing::{debug, info, warn};

use crate::context::SharedContext;
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

/// A signed notification from WhatsApp: statuses of messages we sent.
#[utoipa::path(
    post,
    path = "/webhook",
    tag = "webhook",
    request_body(content = String, description = "The notification, as Meta signed it", content_type = "application/json"),
    responses(
        (status = 200, description = "Every event recorded"),
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
    let events = match status_events(&body) {
        Ok(events) => events,
        Err(e) => {
            return Problem::bad_request("malformed-webhook", e.to_string()).into_response();
        }
    };
    for event in &events {
        match ctx.store.apply_status(event).await {
            Ok(StatusApplied::Moved { message, from, to }) => {
                info!(message_id = %message, %from, %to, "status recorded");
            }
            Ok(StatusApplied::Ignored) => {
                debug!(wamid = %event.wamid, status = %event.status, "duplicate or late status");
            }
            Ok(StatusApplied::UnknownMessage) => {
                warn!(wamid = %event.wamid, status = %event.status, "status for a message we do not know; acknowledged");
            }
            Err(e) => {
                warn!(error = %e, retryable = e.is_retryable(), "status not recorded; Meta will deliver it again");
                return Problem::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "store-unavailable",
                    "Service Unavailable",
                    "the status could not be recorded now; it will be accepted when delivered again",
                )
                .into_response();
            }
        }
    }
    StatusCode::OK.into_response()
}
