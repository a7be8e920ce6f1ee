//! What a simulator instance pretends to be, and what it knows.

use std::collections::HashSet;
use std::time::Duration;

use anyhow::{Context, bail};
use serde_json::Value;

use crate::faults::Faults;
use crate::webhooks::WebhookConfig;

/// The template fixtures shipped with the simulator (a JSON array of Graph template objects).
pub const DEFAULT_TEMPLATES_JSON: &str = include_str!("../fixtures/templates.json");

/// Configuration of one simulator instance.
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// The bearer token it accepts; default `sim-token`.
    pub access_token: String,
    /// The WhatsApp Business Account id (`GET /{version}/{waba-id}/message_templates`).
    pub waba_id: String,
    /// The business phone-number id (`POST /{version}/{phone-number-id}/messages`).
    pub phone_number_id: String,
    /// The business number as webhooks show it (`metadata.display_phone_number`).
    pub display_phone_number: String,
    /// Graph-format template objects, as in `message_templates`' `data`.
    pub templates: Vec<Value>,
    /// Added before answering each send.
    pub latency: Duration,
    /// Digits-only numbers answered with 131026 (message undeliverable).
    pub not_on_whatsapp: HashSet<String>,
    /// Injected failures; none by default.
    pub faults: Faults,
    /// Signed status webhooks after each accepted send; none unless a URL is set.
    pub webhooks: WebhookConfig,
}

impl SimConfig {
    /// The defaults, with the templates of `fixtures/templates.json`.
    pub fn with_default_templates() -> Self {
        Self {
            access_token: "sim-token".into(),
            waba_id: "100000000000001".into(),
            phone_number_id: "106540352242922".into(),
            display_phone_number: "15550783881".into(),
            templates: default_templates(),
            latency: Duration::ZERO,
            not_on_whatsapp: HashSet::new(),
            faults: Faults::default(),
            webhooks: WebhookConfig::default(),
        }
    }
}

impl Default for SimConfig {
    fn default() -> Self {
        Self::with_default_templates()
    }
}

/// The shipped template fixtures.
pub fn default_templates() -> Vec<Value> {
    // The fixture is compiled in and checked by a unit test, so this cannot fail at run time.
    parse_templates(DEFAULT_TEMPLATES_JSON)
        .unwrap_or_else(|e| panic!("wa-sim: fixtures/templates.json is invalid: {e:#}"))
}

/// Reads template objects from JSON text: either an array of Graph template objects or a
/// whole `message_templates` answer (`{"data": [...], ...}`).
pub fn parse_templates(json: &str) -> anyhow::Result<Vec<Value>> {
    let value: Value = serde_json::from_str(json).context("templates: not valid JSON")?;
    let list = match value {
        Value::Array(list) => list,
        Value::Object(mut obj) => match obj.remove("data") {
            Some(Value::Array(list)) => list,
            _ => bail!("templates: expected an array or an object with a `data` array"),
        },
        _ => bail!("templates: expected an array or an object with a `data` array"),
    };
    if let Some(i) = list.iter().position(|t| !t.is_object()) {
        bail!("templates: entry #{i} is not an object");
    }
    Ok(list)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_templates_accepts_array_and_graph_answer() {
        assert_eq!(parse_templates("[{}]").map(|l| l.len()).ok(), Some(1));
        assert_eq!(
            parse_templates(r#"{"data":[{},{}],"paging":{}}"#)
                .map(|l| l.len())
                .ok(),
            Some(2)
        );
        assert!(parse_templates("{}").is_err());
        assert!(parse_templates("[1]").is_err());
        assert!(parse_templates("nope").is_err());
    }

    #[test]
    fn defaults() {
        let c = SimConfig::default();
        assert_eq!(c.access_token, "sim-token");
        assert_eq!(c.waba_id, "100000000000001");
        assert_eq!(c.phone_number_id, "106540352242922");
        assert_eq!(c.display_phone_number, "15550783881");
        assert!(c.templates.len() >= 8);
        assert_eq!(c.latency, Duration::ZERO);
        assert!(c.not_on_whatsapp.is_empty());
    }
}
