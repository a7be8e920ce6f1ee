//! anna-shared: everything the anna-notify functions have in common.
//!
//! - [`domain`]: pure logic with no AWS or HTTP types — phone numbers, templates, intake of
//!   rows into accepted messages and rejected rows, message status.
//! - [`sheet`]: reading spreadsheets (xlsx, xlsm, xlsb, xls, ods, CSV) from bytes into rows of
//!   cells as a person sees them.
//! - [`whatsapp`]: the Cloud API — payloads, error classification, the HTTP client.
//! - [`aws`]: DynamoDB, SQS and S3 adapters behind the narrow traits in [`ports`].

pub mod aws;
pub mod clock;
pub mod config;
pub mod delivery;
pub mod domain;
pub mod error;
pub mod events;
pub mod intake_pipeline;
pub mod json_guard;
pub mod metrics;
pub mod ports;
pub mod schedule;
pub mod secrets;
pub mod sheet;
pub mod telemetry;
pub mod webhook;
pub mod whatsapp;
