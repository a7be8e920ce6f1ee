//! The api function: the axum router behind API Gateway (HTTP API), through `lambda_http`.

use std::sync::Arc;

use anna_api::eventbridge::EventBridgePublisher;
use anna_api::{ApiConfig, ApiContext, router};
use anna_shared::secrets;

fn main() -> anyhow::Result<()> {
    anna_shared::telemetry::init();
    // Before any thread exists: on AWS the secrets are SSM parameters (`<NAME>_PARAMETER`),
    // read once per cold start; locally they are the variables themselves.
    secrets::load_into_env(&[
        secrets::WA_ACCESS_TOKEN,
        secrets::ANNA_API_KEYS,
        secrets::WA_APP_SECRET,
        secrets::WA_VERIFY_TOKEN,
    ])?;
    let config = ApiConfig::from_env()?;
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(run(config))
}

async fn run(config: ApiConfig) -> anyhow::Result<()> {
    let sdk = anna_shared::aws::sdk_config().await;
    let event_bus = config.event_bus.clone();
    let mut ctx = ApiContext::connect(&sdk, config)?;
    // Without a bus the events are stored and listed by GET /v1/events only.
    if let Some(bus) = event_bus {
        tracing::info!(%bus, "publishing conversation events to EventBridge");
        ctx.events = Arc::new(EventBridgePublisher::new(
            aws_sdk_eventbridge::Client::new(&sdk),
            bus,
        ));
    }
    let ctx = Arc::new(ctx);
    if ctx.keys.is_empty() {
        tracing::warn!("no API keys are configured: every /v1 request will be refused with 401");
    }
    lambda_http::run(router(ctx))
        .await
        .map_err(|e| anyhow::anyhow!(e))
}
