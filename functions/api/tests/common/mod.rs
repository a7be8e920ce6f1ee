//! The router on a context whose services are never reached (nothing listens at its
//! endpoints): for the tests of what the API answers before it needs AWS or WhatsApp.

use std::sync::Arc;

use anna_api::config::{ApiConfig, ApiKeys, ApiLimits};
use anna_api::webhook::WebhookSecrets;
use anna_api::{ApiContext, router};
use anna_shared::config::{IntakeConfig, StoreConfig};
use anna_shared::whatsapp::client::CloudApiConfig;

pub fn offline_app(keys: &str, limits: ApiLimits, webhook: WebhookSecrets) -> axum::Router {
    let sdk = aws_config::SdkConfig::builder()
        .behavior_version(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .endpoint_url("http://127.0.0.1:9")
        .build();
    let config = ApiConfig {
        store: StoreConfig {
            table: "unused".into(),
            retention_days: 1,
        },
        send_queue_url: "http://127.0.0.1:9/queue".into(),
        bucket: "unused".into(),
        cloud_api: CloudApiConfig {
            base_url: "http://127.0.0.1:9".into(),
            phone_number_id: "1".into(),
            waba_id: "2".into(),
            access_token: "t".into(),
            ..CloudApiConfig::default()
        },
        template_ttl: std::time::Duration::from_secs(60),
        intake: IntakeConfig::default(),
        keys: ApiKeys::from_list(keys),
        limits,
        webhook,
        opt_out: Default::default(),
        event_bus: None,
    };
    router(Arc::new(
        ApiContext::connect(&sdk, config).expect("context"),
    ))
}
