//! The WhatsApp Cloud API: request payloads, error classification and the HTTP client.

pub mod client;
pub mod cloud;
pub mod errors;
pub mod payload;
