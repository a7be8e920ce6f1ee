//! The simulator's own endpoints under `/_sim` (no token needed): what tests and the demo use
//! to look inside, inject faults, make a simulated customer write or tap a button
//! (`POST /_sim/inbound`), and move the simulator's clock (`POST /_sim/clock`).

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::error::GraphError;
use crate::faults::Faults;
use crate::sends::AcceptedSend;
use crate::state::SimState;
use crate::webhooks::{self, InboundContent, WebhookConfig};
use crate::{ids, phone};

/// `GET /_sim/health` → `{"status":"ok"}`.
pub async fn health() -> Response {
    Json(json!({ "status": "ok" })).into_response()
}

/// `GET /_sim/sends[?biz_prefix=…]`: every accepted send in order, optionally only those whose
/// `biz_opaque_callback_data` starts with `biz_prefix`.
pub async fn list_sends(
    State(state): State<Arc<SimState>>,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Response {
    let Ok(Query(query)) = query else {
        return GraphError::invalid_parameter("Malformed query string").into_response();
    };
    let mut sends = state.sends();
    if let Some(prefix) = query.get("biz_prefix") {
        sends.retain(|s: &AcceptedSend| {
            s.biz_opaque_callback_data
                .as_deref()
                .is_some_and(|d| d.starts_with(prefix.as_str()))
        });
    }
    Json(sends).into_response()
}

/// `DELETE /_sim/sends`: forgets every recorded send; 204.
pub async fn clear_sends(State(state): State<Arc<SimState>>) -> Response {
    let n = state.clear_sends();
    tracing::info!(cleared = n, "cleared recorded sends");
    StatusCode::NO_CONTENT.into_response()
}

/// `GET /_sim/faults`: the faults in force.
pub async fn get_faults(State(state): State<Arc<SimState>>) -> Response {
    Json(state.faults()).into_response()
}

/// `PUT /_sim/faults` with a [`Faults`] object: replaces them (unknown fields are refused).
pub async fn put_faults(State(state): State<Arc<SimState>>, body: axum::body::Bytes) -> Response {
    let faults: Faults = match serde_json::from_slice(&body) {
        Ok(faults) => faults,
        Err(e) => {
            return GraphError::invalid_parameter(format!("faults: {e}")).into_response();
        }
    };
    if let Err(why) = faults.validate() {
        return GraphError::invalid_parameter(format!("faults: {why}")).into_response();
    }
    tracing::info!(?faults, "faults replaced");
    state.set_faults(faults.clone());
    Json(faults).into_response()
}

/// `GET /_sim/webhooks`: where and how status webhooks are posted.
pub async fn get_webhooks(State(state): State<Arc<SimState>>) -> Response {
    Json(state.webhooks()).into_response()
}

/// `PUT /_sim/webhooks` with a [`WebhookConfig`]: replaces it (unknown fields are refused).
pub async fn put_webhooks(State(state): State<Arc<SimState>>, body: axum::body::Bytes) -> Response {
    match serde_json::from_slice::<WebhookConfig>(&body) {
        Ok(config) => {
            state.set_webhooks(config.clone());
            Json(config).into_response()
        }
        Err(e) => GraphError::invalid_parameter(format!("webhooks: {e}")).into_response(),
    }
}

/// `POST /_sim/inbound`: a simulated customer writes (`text`) or taps quick-reply button
/// `index` of the template message `wamid` (`button`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InboundRequest {
    /// The customer's number (digits, `+` optional); for a tap, defaults to the `wa_id` the
    /// template was sent to.
    pub from: Option<String>,
    /// The customer's profile name; default `Cliente`.
    pub name: Option<String>,
    pub text: Option<String>,
    pub button: Option<ButtonTap>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ButtonTap {
    /// The `wamid` wa-sim answered for the template send.
    pub wamid: String,
    /// The quick-reply button's index.
    pub index: u8,
}

/// The payload and label of quick-reply button `index` of an accepted template send.
fn quick_reply(state: &SimState, send: &AcceptedSend, index: u8) -> Option<(String, String)> {
    let wanted = index.to_string();
    let payload = send.payload["template"]["components"]
        .as_array()?
        .iter()
        .find(|c| {
            c["type"] == "button" && c["sub_type"] == "quick_reply" && c["index"] == wanted.as_str()
        })?["parameters"][0]["payload"]
        .as_str()?
        .to_owned();
    let text = state
        .catalog
        .find(&send.template, &send.language)
        .and_then(|t| t.buttons.get(usize::from(index)))
        .map(|b| b.text.clone())
        .unwrap_or_default();
    Some((payload, text))
}

/// Posts the inbound message's signed webhook (when a URL is set) and records that the
/// customer wrote, which opens their 24-hour window for free-form messages. Answers
/// `{"id": <inbound wamid>, "from": …, "webhook_status": <receiver's HTTP status or null>}`.
pub async fn inbound(State(state): State<Arc<SimState>>, body: axum::body::Bytes) -> Response {
    let request: InboundRequest = match serde_json::from_slice(&body) {
        Ok(request) => request,
        Err(e) => return GraphError::invalid_parameter(format!("inbound: {e}")).into_response(),
    };
    let tapped = match &request.button {
        Some(tap) => match state.send_by_wamid(&tap.wamid) {
            Some(send) => Some(send),
            None => {
                return GraphError::invalid_parameter(format!(
                    "inbound: no accepted send has wamid {:?}",
                    tap.wamid
                ))
                .into_response();
            }
        },
        None => None,
    };
    let from = match (&request.from, &tapped) {
        (Some(from), _) => phone::recipient_digits(from).map(|d| phone::wa_id(&d)),
        (None, Some(send)) => Some(send.wa_id.clone()),
        (None, None) => None,
    };
    let Some(from) = from else {
        return GraphError::invalid_parameter(
            "inbound: `from` must be a phone number (digits, optional +); it may be left out \
             only for a button tap",
        )
        .into_response();
    };
    let button = match (&request.button, &tapped) {
        (Some(tap), Some(send)) => match quick_reply(&state, send, tap.index) {
            Some(found) => Some((tap.wamid.clone(), found)),
            None => {
                return GraphError::invalid_parameter(format!(
                    "inbound: the message {} has no quick-reply button {}",
                    tap.wamid, tap.index
                ))
                .into_response();
            }
        },
        _ => None,
    };
    let content = match (&request.text, &button) {
        (Some(text), None) => InboundContent::Text(text),
        (None, Some((wamid, (payload, text)))) => InboundContent::Button {
            context_wamid: wamid,
            payload,
            text,
        },
        _ => {
            return GraphError::invalid_parameter(
                "inbound: give exactly one of `text` and `button`",
            )
            .into_response();
        }
    };
    let now = state.now();
    let wamid = ids::new_wamid(&from);
    let notification = webhooks::inbound_body(
        &state.waba_id,
        &state.phone_number_id,
        &state.display_phone_number,
        &from,
        request.name.as_deref().unwrap_or("Cliente"),
        &wamid,
        &content,
        now,
    );
    state.record_inbound(&from, now);
    let config = state.webhooks();
    let webhook_status = match &config.url {
        Some(url) => {
            webhooks::post_answer(state.http(), url, &config.app_secret, &notification).await
        }
        None => None,
    };
    tracing::info!(%wamid, kind = if button.is_some() { "button" } else { "text" }, ?webhook_status, "inbound message");
    Json(json!({ "id": wamid, "from": from, "webhook_status": webhook_status })).into_response()
}

/// `POST /_sim/clock` with `{"advance_seconds": n}`: moves the simulator's clock forward, so a
/// test sees a 24-hour window pass without waiting. Answers `{"now": <RFC 3339>}`.
pub async fn advance_clock(
    State(state): State<Arc<SimState>>,
    body: axum::body::Bytes,
) -> Response {
    let seconds = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|v| v.get("advance_seconds").and_then(Value::as_u64));
    let Some(seconds) = seconds else {
        return GraphError::invalid_parameter("clock: expected {\"advance_seconds\": <n >= 0>}")
            .into_response();
    };
    state.advance_clock(std::time::Duration::from_secs(seconds));
    Json(json!({ "now": state.now().to_rfc3339() })).into_response()
}
