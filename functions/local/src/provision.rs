//! Creates the stack's resources on the local emulator (or any AWS-compatible endpoint):
//! uploads bucket with its S3 → SQS notification, both queues with DLQs and redrive, and the
//! table with its indexes. Idempotent: running it again leaves existing resources alone.
//!
//! The shape of those resources is data — [`TABLE`], [`QUEUES`], [`UPLOAD_NOTIFICATION`] — so
//! the same definitions drive provisioning here and the test that checks `infra/template.yaml`
//! declares the same keys, indexes, queues, redrive policies and notification
//! (`tests/integration/tests/infra.rs`). Change them here and the template must follow.

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

/// Deliveries after which a record moves to its queue's DLQ: the number the sender assumes
/// unless told otherwise (`ANNA_SEND_MAX_RECEIVE_COUNT`).
pub const MAX_RECEIVE_COUNT: u32 = anna_sender::DEFAULT_MAX_RECEIVE_COUNT;
pub const UPLOAD_PREFIX: &str = "inbox/";

/// The one table. Every key and indexed attribute is a string.
#[derive(Debug, Clone, Copy)]
pub struct TableSpec {
    pub partition_key: &'static str,
    pub sort_key: &'static str,
    pub indexes: &'static [IndexSpec],
    /// The attribute DynamoDB's TTL reads (epoch seconds).
    pub ttl_attribute: &'static str,
}

#[derive(Debug, Clone, Copy)]
pub struct IndexSpec {
    pub name: &'static str,
    pub partition_key: &'static str,
    pub sort_key: Option<&'static str>,
    pub projection: IndexProjection,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IndexProjection {
    KeysOnly,
    All,
}

impl IndexProjection {
    /// The name DynamoDB and CloudFormation use.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::KeysOnly => "KEYS_ONLY",
            Self::All => "ALL",
        }
    }
}

impl TableSpec {
    /// Every attribute that is a key of the table or of an index, each once, in order.
    pub fn key_attributes(&self) -> Vec<&'static str> {
        let mut names = vec![self.partition_key, self.sort_key];
        for index in self.indexes {
            names.push(index.partition_key);
            names.extend(index.sort_key);
        }
        let mut seen = Vec::new();
        names.retain(|name| {
            let new = !seen.contains(name);
            seen.push(*name);
            new
        });
        names
    }
}

pub const TABLE: TableSpec = TableSpec {
    partition_key: "pk",
    sort_key: "sk",
    indexes: &[
        // Sparse: only messages WhatsApp accepted carry a wamid; webhooks look them up by it.
        IndexSpec {
            name: WAMID_INDEX,
            partition_key: "wamid",
            sort_key: None,
            projection: IndexProjection::KeysOnly,
        },
        IndexSpec {
            name: CREATED_INDEX,
            partition_key: "gsi1pk",
            sort_key: Some("gsi1sk"),
            projection: IndexProjection::All,
        },
    ],
    ttl_attribute: "ttl",
};

/// A queue with its dead-letter queue. Names are `<prefix>-<suffix>` locally and
/// `${AWS::StackName}-<suffix>` in the template.
#[derive(Debug, Clone, Copy)]
pub struct QueueSpec {
    pub suffix: &'static str,
    pub dlq_suffix: &'static str,
    pub max_receive_count: u32,
    pub retention_seconds: u32,
    pub dlq_retention_seconds: u32,
}

/// S3 ObjectCreated notifications of `inbox/` keys, consumed by the upload function.
pub const UPLOAD_EVENTS_QUEUE: QueueSpec = QueueSpec {
    suffix: "upload-events",
    dlq_suffix: "upload-events-dlq",
    max_receive_count: MAX_RECEIVE_COUNT,
    retention_seconds: 4 * 24 * 3600,
    dlq_retention_seconds: 14 * 24 * 3600,
};

/// One record per message to send, consumed by the sender function.
pub const SEND_QUEUE: QueueSpec = QueueSpec {
    suffix: "send",
    dlq_suffix: "send-dlq",
    max_receive_count: MAX_RECEIVE_COUNT,
    retention_seconds: 4 * 24 * 3600,
    dlq_retention_seconds: 14 * 24 * 3600,
};

pub const QUEUES: [QueueSpec; 2] = [UPLOAD_EVENTS_QUEUE, SEND_QUEUE];

/// The bucket's notification: which keys, which events, to which queue.
#[derive(Debug, Clone, Copy)]
pub struct NotificationSpec {
    pub id: &'static str,
    pub prefix: &'static str,
    pub event: &'static str,
    pub queue: QueueSpec,
}

pub const UPLOAD_NOTIFICATION: NotificationSpec = NotificationSpec {
    id: "uploads-to-intake",
    prefix: UPLOAD_PREFIX,
    event: "s3:ObjectCreated:*",
    queue: UPLOAD_EVENTS_QUEUE,
};

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
            upload_queue: format!("{prefix}-{}", UPLOAD_EVENTS_QUEUE.suffix),
            upload_dlq: format!("{prefix}-{}", UPLOAD_EVENTS_QUEUE.dlq_suffix),
            send_queue: format!("{prefix}-{}", SEND_QUEUE.suffix),
            send_dlq: format!("{prefix}-{}", SEND_QUEUE.dlq_suffix),
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

/// Visibility timeouts. The template derives them from the functions' timeouts; locally they
/// are short, so a retried record comes back in seconds.
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
        &UPLOAD_EVENTS_QUEUE,
        &names.upload_queue,
        &names.upload_dlq,
        visibility.upload,
    )
    .await?;
    let (send_queue_url, send_dlq_url) = queue_with_dlq(
        &sqs,
        &SEND_QUEUE,
        &names.send_queue,
        &names.send_dlq,
        visibility.send,
    )
    .await?;
    let upload_queue_arn = queue_arn(&sqs, &upload_queue_url).await?;
    create_table(&aws_sdk_dynamodb::Client::new(sdk), &TABLE, &names.table).await?;
    create_bucket(
        &anna_shared::aws::s3_client(sdk),
        &names.bucket,
        &UPLOAD_NOTIFICATION,
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

/// The `RedrivePolicy` attribute of a queue whose DLQ has `dlq_arn`.
pub fn redrive_policy(spec: &QueueSpec, dlq_arn: &str) -> String {
    serde_json::json!({
        "deadLetterTargetArn": dlq_arn,
        "maxReceiveCount": spec.max_receive_count.to_string(),
    })
    .to_string()
}

async fn queue_with_dlq(
    sqs: &aws_sdk_sqs::Client,
    spec: &QueueSpec,
    name: &str,
    dlq_name: &str,
    visibility: Duration,
) -> anyhow::Result<(String, String)> {
    let dlq_url = sqs
        .create_queue()
        .queue_name(dlq_name)
        .attributes(
            QueueAttributeName::MessageRetentionPeriod,
            spec.dlq_retention_seconds.to_string(),
        )
        .send()
        .await
        .with_context(|| format!("creating queue {dlq_name}"))?
        .queue_url
        .with_context(|| format!("queue {dlq_name} has no URL"))?;
    let dlq_arn = queue_arn(sqs, &dlq_url).await?;
    let attributes = HashMap::from([
        (
            QueueAttributeName::VisibilityTimeout,
            visibility.as_secs().to_string(),
        ),
        (
            QueueAttributeName::RedrivePolicy,
            redrive_policy(spec, &dlq_arn),
        ),
        (
            QueueAttributeName::MessageRetentionPeriod,
            spec.retention_seconds.to_string(),
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

fn index(spec: &IndexSpec) -> anyhow::Result<GlobalSecondaryIndex> {
    let mut builder = GlobalSecondaryIndex::builder()
        .index_name(spec.name)
        .key_schema(key(spec.partition_key, KeyType::Hash)?);
    if let Some(sort_key) = spec.sort_key {
        builder = builder.key_schema(key(sort_key, KeyType::Range)?);
    }
    let projection = match spec.projection {
        IndexProjection::KeysOnly => ProjectionType::KeysOnly,
        IndexProjection::All => ProjectionType::All,
    };
    Ok(builder
        .projection(Projection::builder().projection_type(projection).build())
        .build()?)
}

async fn create_table(
    dynamo: &aws_sdk_dynamodb::Client,
    spec: &TableSpec,
    table: &str,
) -> anyhow::Result<()> {
    let exists = dynamo
        .describe_table()
        .table_name(table)
        .send()
        .await
        .is_ok();
    if exists {
        return Ok(());
    }
    let mut request = dynamo
        .create_table()
        .table_name(table)
        .billing_mode(BillingMode::PayPerRequest)
        .key_schema(key(spec.partition_key, KeyType::Hash)?)
        .key_schema(key(spec.sort_key, KeyType::Range)?);
    for name in spec.key_attributes() {
        request = request.attribute_definitions(string_attribute(name)?);
    }
    for index_spec in spec.indexes {
        request = request.global_secondary_indexes(index(index_spec)?);
    }
    request
        .send()
        .await
        .with_context(|| format!("creating table {table}"))?;
    dynamo
        .update_time_to_live()
        .table_name(table)
        .time_to_live_specification(
            TimeToLiveSpecification::builder()
                .attribute_name(spec.ttl_attribute)
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
    spec: &NotificationSpec,
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
                        .value(spec.prefix)
                        .build(),
                )
                .build(),
        )
        .build();
    let notification = NotificationConfiguration::builder()
        .queue_configurations(
            QueueConfiguration::builder()
                .id(spec.id)
                .queue_arn(queue_arn)
                .events(Event::from(spec.event))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_attributes_are_listed_once() {
        assert_eq!(
            TABLE.key_attributes(),
            ["pk", "sk", "wamid", "gsi1pk", "gsi1sk"]
        );
    }

    #[test]
    fn queue_names_follow_the_specs() {
        let names = StackNames::with_prefix("anna-local");
        assert_eq!(names.upload_queue, "anna-local-upload-events");
        assert_eq!(names.upload_dlq, "anna-local-upload-events-dlq");
        assert_eq!(names.send_queue, "anna-local-send");
        assert_eq!(names.send_dlq, "anna-local-send-dlq");
    }
}
