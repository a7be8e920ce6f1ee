use anna_sender::{AwsSender, SenderConfig, handle};
use aws_lambda_events::event::sqs::SqsEvent;
use lambda_runtime::{LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    anna_shared::telemetry::init();
    let config = SenderConfig::from_env()?;
    let sdk = anna_shared::aws::sdk_config().await;
    let sender = AwsSender::connect(&sdk, config)?;
    let sender = &sender;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        Ok::<_, lambda_runtime::Error>(handle(sender, event.payload).await)
    }))
    .await
    .map_err(|e| anyhow::anyhow!(e))
}
