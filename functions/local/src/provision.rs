//! Creates the stack's resources on the local emulator (or any AWS-compatible endpoint):
//! uploads bucket with its S3 → SQS notification, both queues with DLQs and redrive, and the
//! table with its indexes. Idempotent: running it again leaves existing resources alone.

use std::collections::HashMap;
use std::time::Duration;

use anna_shared::aws::dynamo::{CREATED_INDEX, WAMID_INDEX};
use anyhow::Context;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType, TimeToLiveSpecification,
};
use aws_sdk_s3::types::{
    Event, FilterRule, FilterRuleName, NotificationConfiguration, NotificationConfigurationFilter,
    QueueConfiguration, S3KeyFilter,
};
use aws_sdk_sqs::types::QueueAttributeName;

/// Deliveries after which a record moves to its queue's DLQ.
pub const MAX_RECEIVE_COUNT: u32 = 5;
pub const UPLOAD_PREFIX: &str = "inbox/";

#[derive(Debug, Clone)]
pub struct StackNames {
    pub bucket: String,
    pub table: String,
    pub upload_queue: String,
    pub upload_dlq: String,
    pub send_queue: String,
    pub send_dlq: String,
}

impl StackNames {
    pub fn with_prefix(prefix: &str) -> Self {
        Self {
            bucket: format!("{prefix}-uploads"),
            table: prefix.to_owned(),
            upload_queue: format!("{prefix}-upload-events"),
            upload_dlq: format!("{prefix}-upload-events-dlq"),
            send_queue: format!("{prefix}-send"),
            send_dlq: format!("{prefix}-send-dlq"),
        }
    }
}

/// What was provisioned, with the URLs the functions need.
#[derive(Debug, Clone)]
pub struct Stack {
    pub names: StackNames,
    pub upload_queue_url: String,
    pub upload_dlq_url: String,
    pub send_queue_url: String,
    pub send_dlq_url: String,
}

impl Stack {
    /// The variables the functions and the runner read, as `KEY=value` lines.
    pub fn env_lines(&self) -> Vec<(String, String)> {
        vec![
            ("ANNA_TABLE".into(), self.names.table.clone()),
            ("ANNA_UPLOAD_BUCKET".into(), self.names.bucket.clone()),
            (
                "ANNA_UPLOAD_QUEUE_URL".into(),
                self.upload_queue_url.clone(),
            ),
            ("ANNA_UPLOAD_DLQ_URL".into(), self.upload_dlq_url.clone()),
            ("ANNA_SEND_QUEUE_URL".into(), self.send_queue_url.clone()),
            ("ANNA_SEND_DLQ_URL".into(), self.send_dlq_url.clone()),
        ]
    }
}

pub struct Visibility {
    pub upload: Duration,
    pub send: Duration,
}

pub async fn provision(
    sdk: &aws_config::SdkConfig,
    names: StackNames,
    visibility: Visibility,
) -> anyhow::Result<Stack> {
    let sqs = aws_sdk_sqs::Client::new(sdk);
    let (upload_queue_url, upload_dlq_url) = queue_with_dlq(
        &sqs,
        &names.upload_queue,
        &names.upload_dlq,
        visibility.upload,
    )
    .await?;
    let (send_queue_url, send_dlq_url) =
        queue_with_dlq(&sqs, &names.send_queue, &names.send_dlq, visibility.send).await?;
    let upload_queue_arn = queue_arn(&sqs, &upload_queue_url).await?;
    create_table(&aws_sdk_dynamodb::Client::new(sdk), &names.table).await?;
    create_bucket(
        &anna_shared::aws::s3_client(sdk),
        &names.bucket,
        &upload_queue_arn,
    )
    .await?;
    Ok(Stack {
        names,
        upload_queue_url,
        upload_dlq_url,
        send_queue_url,
        send_dlq_url,
    })
}

async fn queue_arn(sqs: &aws_sdk_sqs::Client, url: &str) -> anyhow::Result<String> {
    let attributes = sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .with_context(|| format!("reading the ARN of {url}"))?;
    attributes
        .attributes
        .and_then(|mut a| a.remove(&QueueAttributeName::QueueArn))
        .with_context(|| format!("{url} has no ARN"))
}

async fn queue_with_dlq(
    sqs: &aws_sdk_sqs::Client,
    name: &str,
    dlq_name: &str,
    visibility: Duration,
) -> anyhow::Result<(String, String)> {
    let dlq_url = sqs
        .create_queue()
        .queue_name(dlq_name)
        .attributes(QueueAttributeName::MessageRetentionPeriod, "1209600")
        .send()
        .await
        .with_context(|| format!("creating queue {dlq_name}"))?
        .queue_url
        .with_context(|| format!("queue {dlq_name} has no URL"))?;
    let dlq_arn = queue_arn(sqs, &dlq_url).await?;
    let redrive = serde_json::json!({
        "deadLetterTargetArn": dlq_arn,
        "maxReceiveCount": MAX_RECEIVE_COUNT.to_string(),
    })
    .to_string();
    let attributes = HashMap::from([
        (
            QueueAttributeName::VisibilityTimeout,
            visibility.as_secs().to_string(),
        ),
        (QueueAttributeName::RedrivePolicy, redrive),
        (
            QueueAttributeName::MessageRetentionPeriod,
            "345600".to_owned(),
        ),
    ]);
    let url = sqs
        .create_queue()
        .queue_name(name)
        .set_attributes(Some(attributes.clone()))
        .send()
        .await
        .with_context(|| format!("creating queue {name}"))?
        .queue_url
        .with_context(|| format!("queue {name} has no URL"))?;
    // create_queue leaves an existing queue's attributes as they were; set them explicitly.
    sqs.set_queue_attributes()
        .queue_url(&url)
        .set_attributes(Some(attributes))
        .send()
        .await
        .with_context(|| format!("configuring queue {name}"))?;
    Ok((url, dlq_url))
}

fn key(name: &str, key_type: KeyType) -> anyhow::Result<KeySchemaElement> {
    Ok(KeySchemaElement::builder()
        .attribute_name(name)
        .key_type(key_type)
        .build()?)
}

fn string_attribute(name: &str) -> anyhow::Result<AttributeDefinition> {
    Ok(AttributeDefinition::builder()
        .attribute_name(name)
        .attribute_type(ScalarAttributeType::S)
        .build()?)
}

async fn create_table(dynamo: &aws_sdk_dynamodb::Client, table: &str) -> anyhow::Result<()> {
    let exists = dynamo
        .describe_table()
        .table_name(table)
        .send()
        .await
        .is_ok();
    if exists {
        return Ok(());
    }
    let by_wamid = GlobalSecondaryIndex::builder()
        .index_name(WAMID_INDEX)
        .key_schema(key("wamid", KeyType::Hash)?)
        .projection(
            Projection::builder()
                .projection_type(ProjectionType::KeysOnly)
                .build(),
        )
        .build()?;
    let by_created = GlobalSecondaryIndex::builder()
        .index_name(CREATED_INDEX)
        .key_schema(key("gsi1pk", KeyType::Hash)?)
        .key_schema(key("gsi1sk", KeyType::Range)?)
        .projection(
            Projection::builder()
                .projection_type(ProjectionType::All)
                .build(),
        )
        .build()?;
    dynamo
        .create_table()
        .table_name(table)
        .billing_mode(BillingMode::PayPerRequest)
        .key_schema(key("pk", KeyType::Hash)?)
        .key_schema(key("sk", KeyType::Range)?)
        .attribute_definitions(string_attribute("pk")?)
        .attribute_definitions(string_attribute("sk")?)
        .attribute_definitions(string_attribute("wamid")?)
        .attribute_definitions(string_attribute("gsi1pk")?)
        .attribute_definitions(string_attribute("gsi1sk")?)
        .global_secondary_indexes(by_wamid)
        .global_secondary_indexes(by_created)
        .send()
        .await
        .with_context(|| format!("creating table {table}"))?;
    dynamo
        .update_time_to_live()
        .table_name(table)
        .time_to_live_specification(
            TimeToLiveSpecification::builder()
                .attribute_name("ttl")
                .enabled(true)
                .build()?,
        )
        .send()
        .await
        .with_context(|| format!("enabling TTL on {table}"))?;
    Ok(())
}

async fn create_bucket(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    queue_arn: &str,
) -> anyhow::Result<()> {
    if s3.head_bucket().bucket(bucket).send().await.is_err() {
        s3.create_bucket()
            .bucket(bucket)
            .send()
            .await
            .with_context(|| format!("creating bucket {bucket}"))?;
    }
    let filter = NotificationConfigurationFilter::builder()
        .key(
            S3KeyFilter::builder()
                .filter_rules(
                    FilterRule::builder()
                        .name(FilterRuleName::Prefix)
                        .value(UPLOAD_PREFIX)
                        .build(),
                )
                .build(),
        )
        .build();
    let notification = NotificationConfiguration::builder()
        .queue_configurations(
            QueueConfiguration::builder()
                .id("uploads-to-intake")
                .queue_arn(queue_arn)
                .events(Event::from("s3:ObjectCreated:*"))
                .filter(filter)
                .build()?,
        )
        .build();
    s3.put_bucket_notification_configuration()
        .bucket(bucket)
        .notification_configuration(notification)
        .send()
        .await
        .with_context(|| format!("configuring notifications of {bucket}"))?;
    Ok(())
}
