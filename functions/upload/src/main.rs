use anna_upload::{AwsUpload, UploadConfig, handle};
use aws_lambda_events::event::sqs::SqsEvent;
use lambda_runtime::{LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    anna_shared::telemetry::init();
    let config = UploadConfig::from_env()?;
    let sdk = anna_shared::aws::sdk_config().await;
    let upload = AwsUpload::connect(&sdk, config)?;
    let upload = &upload;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        Ok::<_, lambda_runtime::Error>(handle(upload, event.payload).await)
    }))
    .await
    .map_err(|e| anyhow::anyhow!(e))
}
