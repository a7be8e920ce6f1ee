//! The API's configuration, from the environment.

use std::fmt;
use std::time::Duration;

use anna_shared::config::{ConfigError, EnvReader, IntakeConfig, StoreConfig};
use anna_shared::whatsapp::client::CloudApiConfig;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Limits that keep one request within what a Lambda (6 MB payloads, 29 s behind API
/// Gateway) and the operator's patience can carry.
#[derive(Debug, Clone)]
pub struct ApiLimits {
    /// Largest request body, in bytes (413 above it).
    pub max_body_bytes: usize,
    /// Most recipients in one `POST /v1/dispatches` (422 above it).
    pub max_recipients: usize,
    /// Deepest nesting of arrays and objects in a JSON body (422 above it; webhooks 400).
    pub max_json_depth: usize,
    /// Largest results spreadsheet answered in the response itself; larger ones are written
    /// to S3 and answered with a redirect to a presigned URL.
    pub report_inline_max_bytes: usize,
    /// How long presigned upload and report URLs stay valid.
    pub presign_ttl: Duration,
    /// How far ahead `send_at` may be.
    pub max_schedule_ahead: Duration,
    /// Cancelling a dispatch of at most this many accepted messages marks them `skipped` in
    /// the request itself; larger ones are skipped as the sender or the review reaches them.
    pub cancel_inline_max: u32,
}

impl Default for ApiLimits {
    fn default() -> Self {
        Self {
            max_body_bytes: 5 * 1024 * 1024,
            max_recipients: 10_000,
            max_json_depth: 32,
            report_inline_max_bytes: 4 * 1024 * 1024,
            presign_ttl: Duration::from_secs(15 * 60),
            max_schedule_ahead: Duration::from_secs(30 * 86_400),
            cancel_inline_max: 2_000,
        }
    }
}

/// The API keys that `Authorization: Bearer <key>` is checked against. Only digests are kept,
/// and every check compares with every key in constant time.
#[derive(Clone, Default)]
pub struct ApiKeys {
    digests: Vec<[u8; 32]>,
}

impl fmt::Debug for ApiKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ApiKeys({} configured)", self.digests.len())
    }
}

fn digest(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

impl ApiKeys {
    /// Comma-separated keys; blanks are ignored.
    pub fn from_list(list: &str) -> Self {
        Self {
            digests: list
                .split(',')
                .map(str::trim)
                .filter(|key| !key.is_empty())
                .map(digest)
                .collect(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.digests.is_empty()
    }

    /// Whether `presented` is one of the keys. Digests of equal length are compared in
    /// constant time, and every key is compared, so the time taken says nothing about which
    /// key (or how much of one) matched.
    pub fn verify(&self, presented: &str) -> bool {
        let presented = digest(presented);
        self.digests
            .iter()
            .fold(subtle::Choice::from(0), |found, key| {
                found | key.ct_eq(&presented)
            })
            .into()
    }
}

#[derive(Debug, Clone)]
pub struct ApiConfig {
    pub store: StoreConfig,
    pub send_queue_url: String,
    /// The uploads bucket: presigned uploads go to its `inbox/`, large reports to `reports/`.
    pub bucket: String,
    pub cloud_api: CloudApiConfig,
    pub template_ttl: Duration,
    pub intake: IntakeConfig,
    pub keys: ApiKeys,
    pub limits: ApiLimits,
    pub webhook: crate::webhook::WebhookSecrets,
    /// What an inbound message must say to put its number on the opt-out list.
    pub opt_out: anna_shared::domain::conversation::OptOutRules,
    /// The EventBridge bus conversation events are published to; none: stored only.
    pub event_bus: Option<String>,
}

impl ApiConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::read(EnvReader::from_env())
    }

    pub fn read(mut env: EnvReader) -> Result<Self, ConfigError> {
        let defaults = ApiLimits::default();
        let config = Self {
            store: StoreConfig::read(&mut env),
            send_queue_url: env.required("ANNA_SEND_QUEUE_URL"),
            bucket: env.required("ANNA_UPLOAD_BUCKET"),
            cloud_api: anna_shared::config::read_cloud_api(&mut env),
            template_ttl: anna_shared::config::read_template_ttl(&mut env),
            intake: IntakeConfig::read(&mut env),
            keys: ApiKeys::from_list(&env.optional("ANNA_API_KEYS").unwrap_or_default()),
            // Optional, like the API keys: without them the webhook refuses every request
            // and says why, and the rest of the API still works.
            webhook: crate::webhook::WebhookSecrets {
                app_secret: env.optional("WA_APP_SECRET").unwrap_or_default(),
                verify_token: env.optional("WA_VERIFY_TOKEN").unwrap_or_default(),
            },
            opt_out: anna_shared::domain::conversation::OptOutRules::from_lists(
                &env.or("ANNA_OPT_OUT_KEYWORDS", "SAIR,PARAR,STOP"),
                &env.optional("ANNA_OPT_OUT_PAYLOADS").unwrap_or_default(),
            ),
            event_bus: env
                .optional("ANNA_EVENT_BUS")
                .map(|bus| bus.trim().to_owned())
                .filter(|bus| !bus.is_empty()),
            limits: ApiLimits {
                max_body_bytes: env.bounded_or(
                    "ANNA_API_MAX_BODY_BYTES",
                    defaults.max_body_bytes as u64,
                    1024..=6 * 1024 * 1024,
                ) as usize,
                max_recipients: env.bounded_or(
                    "ANNA_API_MAX_RECIPIENTS",
                    defaults.max_recipients as u64,
                    1..=100_000,
                ) as usize,
                max_json_depth: env.bounded_or(
                    "ANNA_API_MAX_JSON_DEPTH",
                    defaults.max_json_depth as u64,
                    4..=128,
                ) as usize,
                report_inline_max_bytes: env.bounded_or(
                    "ANNA_REPORT_INLINE_MAX_BYTES",
                    defaults.report_inline_max_bytes as u64,
                    0..=5 * 1024 * 1024,
                ) as usize,
                presign_ttl: Duration::from_secs(env.bounded_or(
                    "ANNA_PRESIGN_SECONDS",
                    defaults.presign_ttl.as_secs(),
                    60..=7 * 86_400,
                )),
                max_schedule_ahead: defaults.max_schedule_ahead,
                cancel_inline_max: env.bounded_or(
                    "ANNA_CANCEL_INLINE_MAX",
                    u64::from(defaults.cancel_inline_max),
                    0..=100_000,
                ) as u32,
            },
        };
        env.finish().map(|()| config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_verify_only_configured_keys() {
        let keys = ApiKeys::from_list(" alpha , ,beta-2 ");
        assert!(!keys.is_empty());
        assert!(keys.verify("alpha"));
        assert!(keys.verify("beta-2"));
        for wrong in ["", "alph", "alpha ", "ALPHA", "beta-", "gamma"] {
            assert!(!keys.verify(wrong), "{wrong:?} accepted");
        }
        assert!(ApiKeys::from_list("").is_empty());
        assert!(!ApiKeys::from_list(" , ").verify(""));
        assert_eq!(format!("{keys:?}"), "ApiKeys(2 configured)");
    }

    #[test]
    fn reads_every_setting_and_names_what_is_missing() {
        let env = |pairs: &[(&str, &str)]| {
            EnvReader::from_map(
                pairs
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            )
        };
        let err =
            ApiConfig::read(env(&[("ANNA_API_MAX_RECIPIENTS", "0")])).expect_err("incomplete");
        for name in [
            "ANNA_TABLE",
            "ANNA_SEND_QUEUE_URL",
            "ANNA_UPLOAD_BUCKET",
            "ANNA_API_MAX_RECIPIENTS",
        ] {
            assert!(err.to_string().contains(name), "{name}: {err}");
        }
        let config = ApiConfig::read(env(&[
            ("ANNA_TABLE", "t"),
            ("ANNA_SEND_QUEUE_URL", "http://q"),
            ("ANNA_UPLOAD_BUCKET", "b"),
            ("WA_PHONE_NUMBER_ID", "1"),
            ("WA_WABA_ID", "2"),
            ("WA_ACCESS_TOKEN", "t"),
            ("ANNA_API_KEYS", "k1,k2"),
        ]))
        .expect("complete");
        assert!(config.keys.verify("k2"));
        assert_eq!(config.limits.max_recipients, 10_000);
        assert_eq!(config.opt_out.keywords, ["SAIR", "PARAR", "STOP"]);
        assert!(!format!("{config:?}").contains("k1"), "keys never printed");
    }
}
