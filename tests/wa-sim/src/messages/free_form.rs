//! Free-form messages (`text`, `image`, `interactive`, …).
//!
//! Not simulated yet: every free-form type is answered with 131051. This is where the
//! 24-hour customer-service window goes: accept a free-form message only when the recipient
//! wrote to the business (an inbound message or a button tap) in the last 24 hours, and
//! answer 131047 ("Re-engagement message", `error_subcode` 2494010) otherwise.

use serde_json::{Map, Value};

use crate::error::GraphError;
use crate::state::SimState;

/// Answers the error for a free-form message of type `kind`.
pub fn send(_state: &SimState, kind: &str, _msg: &Map<String, Value>) -> GraphError {
    GraphError::unsupported_message_type(format!(
        "wa-sim accepts only template messages for now; type {kind:?} is not supported"
    ))
}
