//! The record of accepted sends, in the order they were accepted.

use serde::{Deserialize, Serialize};

/// One send the simulator accepted (answered 200 with a `wamid`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AcceptedSend {
    /// The `messages[0].id` it answered.
    pub wamid: String,
    /// `to` exactly as the request gave it (`+` kept, if there was one).
    pub to: String,
    /// The `contacts[0].wa_id` it answered.
    pub wa_id: String,
    /// Template name; empty for a free-form message.
    pub template: String,
    /// Template language code; empty for a free-form message.
    pub language: String,
    /// `biz_opaque_callback_data`, when the request carried one.
    pub biz_opaque_callback_data: Option<String>,
    /// The whole request body.
    pub payload: serde_json::Value,
    /// When it was accepted, RFC 3339 UTC with milliseconds.
    pub accepted_at: String,
}
