use anna_sender::{AwsSender, SenderConfig, handle};
use anna_shared::secrets;
use aws_lambda_events::event::sqs::SqsEvent;
use lambda_runtime::{LambdaEvent, service_fn};

fn main() -> anyhow::Result<()> {
    anna_shared::telemetry::init();
    // Before any thread exists: on AWS the token is an SSM parameter (WA_ACCESS_TOKEN_PARAMETER),
    // read once per cold start; locally it is WA_ACCESS_TOKEN itself.
    secrets::load_into_env(&[secrets::WA_ACCESS_TOKEN])?;
    let config = SenderConfig::from_env()?;
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(run(config))
}

async fn run(config: SenderConfig) -> anyhow::Result<()> {
    let sdk = anna_shared::aws::sdk_config().await;
    let sender = AwsSender::connect(&sdk, config)?;
    let sender = &sender;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        Ok::<_, lambda_runtime::Error>(handle(sender, event.payload).await)
    }))
    .await
    .map_err(|e| anyhow::anyhow!(e))
}
