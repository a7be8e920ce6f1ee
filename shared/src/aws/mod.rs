//! The real AWS services behind the ports: DynamoDB, SQS, S3.

pub mod conversations;
pub mod dynamo;
pub mod queries;
pub mod review;
pub mod s3;
pub mod schedule;
pub mod sqs;
pub mod statuses;

use aws_config::BehaviorVersion;

/// Loads the SDK configuration the standard way (environment, profile, instance role).
/// `AWS_ENDPOINT_URL` points every client at a local emulator such as moto.
pub async fn sdk_config() -> aws_config::SdkConfig {
    aws_config::defaults(BehaviorVersion::latest()).load().await
}

/// An S3 client; path-style addressing when an endpoint override is set, because local
/// emulators do not resolve `<bucket>.127.0.0.1`.
pub fn s3_client(config: &aws_config::SdkConfig) -> aws_sdk_s3::Client {
    let builder =
        aws_sdk_s3::config::Builder::from(config).force_path_style(config.endpoint_url().is_some());
    aws_sdk_s3::Client::from_conf(builder.build())
}
