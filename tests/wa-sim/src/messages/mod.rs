//! `POST /{version}/{phone-number-id}/messages`.
//!
//! The pipeline, in the order the checks run (each step answers a Graph error or passes on):
//!
//! 1. latency (sleep)
//! 2. version, bearer token (190), phone-number id (100/33)
//! 3. body: JSON object, `messaging_product`, `recipient_type`, `to`, `biz_opaque_callback_data`
//! 4. by `type`: [`template`] validates against the catalogue; [`free_form`] takes `text`
//!    inside the recipient's 24-hour window (131047 outside it) and refuses other types (131051)
//! 5. injected faults ([`crate::faults`]): 5xx, hangs, the throughput limit (130429), the pair
//!    rate (131056), error codes for given numbers
//! 6. recipient: not on WhatsApp (131026)
//! 7. accept: `wamid`, record the send (*later:* schedule the signed status webhooks); an
//!    injected lost answer hangs after recording

mod free_form;
mod template;

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Uri};
use axum::response::{IntoResponse, Response};
use chrono::SecondsFormat;
use serde_json::{Map, Value, json};

use crate::error::GraphError;
use crate::faults::Verdict;
use crate::sends::AcceptedSend;
use crate::state::SimState;
use crate::{graph, ids, phone};

/// Longest `biz_opaque_callback_data` the Cloud API accepts.
const MAX_CALLBACK_DATA: usize = 512;

/// Every `type` the Cloud API knows for a message.
const KNOWN_TYPES: &[&str] = &[
    "audio",
    "contacts",
    "document",
    "image",
    "interactive",
    "location",
    "reaction",
    "sticker",
    "template",
    "text",
    "video",
];

pub async fn send(
    State(state): State<Arc<SimState>>,
    path: Result<Path<(String, String)>, PathRejection>,
    uri: Uri,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let latency = state.latency();
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    match accept(&state, path, &uri, &headers, body) {
        Ok(Outcome::Answer(answer)) => Json(answer).into_response(),
        Ok(Outcome::Hang) => {
            // The client gives up first; whatever is answered after that is never read.
            tokio::time::sleep(state.faults().hang()).await;
            GraphError::coded(131000, "Something went wrong", "injected hang").into_response()
        }
        Err(e) => e.into_response(),
    }
}

/// What the pipeline ends in, short of a Graph error.
enum Outcome {
    Answer(Value),
    /// Hold the request open until the client times out (before or after accepting).
    Hang,
}

fn accept(
    state: &SimState,
    path: Result<Path<(String, String)>, PathRejection>,
    uri: &Uri,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Outcome, GraphError> {
    let Ok(Path((version, phone_number_id))) = path else {
        return Err(GraphError::unknown_path(uri.path()));
    };
    graph::check_version(&version, uri.path())?;
    graph::authorize(headers, &state.access_token)?;
    if phone_number_id != state.phone_number_id {
        return Err(GraphError::unknown_object("POST", &phone_number_id));
    }

    let body = body.map_err(|e| GraphError::invalid_parameter(format!("Request body: {e}")))?;
    let payload: Value = serde_json::from_slice(&body).map_err(|e| {
        GraphError::invalid_parameter(format!("Request body is not valid JSON: {e}"))
    })?;
    let Some(msg) = payload.as_object() else {
        return Err(GraphError::invalid_parameter(
            "Request body must be a JSON object",
        ));
    };

    match msg.get("messaging_product") {
        Some(Value::String(p)) if p == "whatsapp" => {}
        None => {
            return Err(GraphError::invalid_parameter(
                "The parameter messaging_product is required.",
            ));
        }
        Some(other) => {
            return Err(GraphError::invalid_parameter(format!(
                "Param messaging_product must be one of {{WHATSAPP}} - got {other}"
            )));
        }
    }
    match msg.get("recipient_type") {
        None => {}
        Some(Value::String(r)) if r == "individual" => {}
        Some(other) => {
            return Err(GraphError::invalid_parameter(format!(
                "Param recipient_type must be one of {{INDIVIDUAL}} - got {other}"
            )));
        }
    }
    let to = match msg.get("to") {
        Some(Value::String(to)) => to.as_str(),
        None => {
            return Err(GraphError::invalid_parameter(
                "The parameter to is required.",
            ));
        }
        Some(other) => {
            return Err(GraphError::invalid_parameter(format!(
                "Param to must be a string - got {other}"
            )));
        }
    };
    let digits = phone::recipient_digits(to).ok_or_else(|| {
        GraphError::invalid_parameter(format!(
            "Param to must be a phone number in international format: digits only, optional leading '+', 8 to 15 digits - got {to:?}"
        ))
    })?;
    let callback_data = callback_data(msg)?;

    let wa_id = phone::wa_id(&digits);
    let (template_name, language) = match msg.get("type") {
        Some(Value::String(t)) if t == "template" => {
            let template = template::validate(&state.catalog, msg)?;
            (template.name, template.language)
        }
        // The Cloud API defaults `type` to text.
        None => {
            free_form::check(state, "text", msg, &wa_id)?;
            (String::new(), String::new())
        }
        Some(Value::String(t)) if KNOWN_TYPES.contains(&t.as_str()) => {
            free_form::check(state, t, msg, &wa_id)?;
            (String::new(), String::new())
        }
        Some(other) => {
            return Err(GraphError::invalid_parameter(format!(
                "Param type must be one of {{{}}} - got {other}",
                KNOWN_TYPES.join(", ").to_ascii_uppercase()
            )));
        }
    };

    match state.fault_verdict(&digits) {
        Verdict::Proceed => {}
        Verdict::ServerError => {
            return Err(GraphError::coded(
                131000,
                "Something went wrong",
                "injected server error",
            ));
        }
        Verdict::HangBeforeAccept => return Ok(Outcome::Hang),
        Verdict::Throughput => {
            return Err(GraphError::coded(
                130429,
                "Rate limit hit",
                "Cloud API message throughput has been reached",
            ));
        }
        Verdict::PairRate => {
            return Err(GraphError::coded(
                131056,
                "(Business Account, Consumer Account) pair rate limit hit",
                "Too many messages sent from the sender phone number to the same recipient phone number in a short period of time",
            ));
        }
        Verdict::ErrorCode(code) => {
            return Err(GraphError::coded(
                code,
                "Injected error",
                format!("injected error {code} for this recipient"),
            ));
        }
    }

    if state.is_not_on_whatsapp(&digits, &wa_id) {
        return Err(GraphError::undeliverable(
            "The recipient is not a WhatsApp user, or cannot receive this message (old app version, terms not accepted)",
        ));
    }

    let wamid = ids::new_wamid(&wa_id);
    let answer = json!({
        "messaging_product": "whatsapp",
        "contacts": [ { "input": to, "wa_id": wa_id } ],
        "messages": [ { "id": wamid, "message_status": "accepted" } ],
    });
    tracing::info!(
        %wamid,
        to = %mask(&digits),
        template = %template_name,
        "accepted send"
    );
    state.record(AcceptedSend {
        wamid,
        to: to.to_owned(),
        wa_id,
        template: template_name,
        language,
        biz_opaque_callback_data: callback_data,
        payload,
        accepted_at: state.now().to_rfc3339_opts(SecondsFormat::Millis, true),
    });
    if state.lose_answer() {
        tracing::info!("injected lost answer: the send is recorded, the client hears nothing");
        return Ok(Outcome::Hang);
    }
    Ok(Outcome::Answer(answer))
}

fn callback_data(msg: &Map<String, Value>) -> Result<Option<String>, GraphError> {
    match msg.get("biz_opaque_callback_data") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.chars().count() <= MAX_CALLBACK_DATA => Ok(Some(s.clone())),
        Some(Value::String(_)) => Err(GraphError::invalid_parameter(format!(
            "Param biz_opaque_callback_data must be at most {MAX_CALLBACK_DATA} characters long"
        ))),
        Some(other) => Err(GraphError::invalid_parameter(format!(
            "Param biz_opaque_callback_data must be a string - got {other}"
        ))),
    }
}

/// `+55119****4321`: country and area visible, the middle hidden, as the project logs numbers.
fn mask(digits: &str) -> String {
    let n = digits.len();
    if n <= 9 {
        return format!("+{}****", &digits[..n.min(4)]);
    }
    format!("+{}****{}", &digits[..5], &digits[n - 4..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mask_numbers() {
        assert_eq!(mask("5511987654321"), "+55119****4321");
        assert_eq!(mask("12345678"), "+1234****");
    }
}
