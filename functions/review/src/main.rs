use anna_review::{AwsReview, ReviewConfig, handle};
use anna_shared::secrets;
use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use lambda_runtime::{LambdaEvent, service_fn};

fn main() -> anyhow::Result<()> {
    anna_shared::telemetry::init();
    // Before any thread exists: on AWS the token is an SSM parameter (WA_ACCESS_TOKEN_PARAMETER),
    // read once per cold start; locally it is WA_ACCESS_TOKEN itself.
    secrets::load_into_env(&[secrets::WA_ACCESS_TOKEN])?;
    let config = ReviewConfig::from_env()?;
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(run(config))
}

async fn run(config: ReviewConfig) -> anyhow::Result<()> {
    let sdk = anna_shared::aws::sdk_config().await;
    let review = AwsReview::connect(&sdk, config)?;
    let review = &review;
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<EventBridgeEvent>| async move {
            // A failed run is reported as the invocation's error (alarmed on), and the next
            // scheduled run picks up where it left off.
            handle(review, event.payload)
                .await
                .map_err(lambda_runtime::Error::from)
        },
    ))
    .await
    .map_err(|e| anyhow::anyhow!(e))
}
