//! Free-form messages (`text`, `image`, `interactive`, …) and the 24-hour customer-service
//! window: a `text` message is accepted only when the recipient wrote to the business (an
//! inbound message or a button tap through `POST /_sim/inbound`) in the last 24 hours of the
//! simulator's clock, and answered 131047 ("Re-engagement message", `error_subcode` 2494010)
//! otherwise. Other free-form types are not simulated (131051).

use serde_json::{Map, Value};

use crate::error::GraphError;
use crate::state::SimState;

/// WhatsApp's limit for a text body.
const MAX_TEXT_CHARS: usize = 4096;

/// Checks a free-form message of type `kind` to the recipient with `wa_id`; Ok when it may be
/// accepted.
pub fn check(
    state: &SimState,
    kind: &str,
    msg: &Map<String, Value>,
    wa_id: &str,
) -> Result<(), GraphError> {
    if kind != "text" {
        return Err(GraphError::unsupported_message_type(format!(
            "wa-sim accepts template and text messages; type {kind:?} is not supported"
        )));
    }
    let body = msg
        .get("text")
        .and_then(|text| text.get("body"))
        .and_then(Value::as_str)
        .ok_or_else(|| GraphError::invalid_parameter("The parameter text['body'] is required."))?;
    if body.trim().is_empty() {
        return Err(GraphError::invalid_parameter(
            "Param text['body'] must be a non-empty string",
        ));
    }
    if body.chars().count() > MAX_TEXT_CHARS {
        return Err(GraphError::invalid_parameter(format!(
            "Param text['body'] must be at most {MAX_TEXT_CHARS} characters long"
        )));
    }
    if !state.window_open(wa_id) {
        return Err(GraphError::re_engagement(
            "Message failed to send because more than 24 hours have passed since the customer \
             last replied to this number.",
        ));
    }
    Ok(())
}
