//! What every handler shares: the store, the send queue, the template catalog, S3, the Cloud
//! API client for free-form replies, the clock and the event publisher.

use std::sync::Arc;

use anna_shared::aws::dynamo::DynamoStore;
use anna_shared::aws::sqs::SqsSendQueue;
use anna_shared::clock::Clock;
use anna_shared::config::IntakeConfig;
use anna_shared::domain::conversation::OptOutRules;
use anna_shared::domain::template::Template;
use anna_shared::events::{EventPublisher, StoredOnly};
use anna_shared::whatsapp::client::{ClientError, CloudApiClient, TemplateCatalog};

use crate::config::{ApiConfig, ApiKeys, ApiLimits};
use crate::problem::{ApiError, Problem};

pub struct ApiContext {
    pub store: DynamoStore,
    pub queue: SqsSendQueue,
    pub templates: TemplateCatalog,
    pub s3: aws_sdk_s3::Client,
    /// The uploads bucket.
    pub bucket: String,
    pub intake: IntakeConfig,
    pub keys: ApiKeys,
    pub limits: ApiLimits,
    pub webhook: crate::webhook::WebhookSecrets,
    /// Sends free-form replies inside a conversation's window.
    pub cloud: CloudApiClient,
    /// What the 24-hour window is measured against; tests move it forward.
    pub clock: Clock,
    pub opt_out: OptOutRules,
    /// Where conversation events go besides the store ([`StoredOnly`] unless main.rs sets
    /// one).
    pub events: Arc<dyn EventPublisher>,
}

pub type SharedContext = Arc<ApiContext>;

impl ApiContext {
    pub fn connect(sdk: &aws_config::SdkConfig, config: ApiConfig) -> Result<Self, ClientError> {
        let client = CloudApiClient::new(config.cloud_api)?;
        Ok(Self {
            cloud: client.clone(),
            clock: Clock::system(),
            opt_out: config.opt_out,
            events: Arc::new(StoredOnly),
            store: DynamoStore::new(aws_sdk_dynamodb::Client::new(sdk), &config.store),
            queue: SqsSendQueue::new(aws_sdk_sqs::Client::new(sdk), config.send_queue_url),
            templates: TemplateCatalog::new(client, config.template_ttl),
            s3: anna_shared::aws::s3_client(sdk),
            bucket: config.bucket,
            intake: config.intake,
            keys: config.keys,
            limits: config.limits,
            webhook: config.webhook,
        })
    }

    /// The template `name` in `language`; without a language, the template's only language.
    /// Any status: callers that send check [`Template::is_sendable`].
    pub async fn template(&self, name: &str, language: Option<&str>) -> Result<Template, ApiError> {
        let language = language.map(str::trim).filter(|l| !l.is_empty());
        if let Some(language) = language
            && let Some(template) = self.templates.get(name, language).await?
        {
            return Ok(template);
        }
        let all = self.templates.all().await?;
        let languages: Vec<&str> = all
            .iter()
            .filter(|t| t.name == name)
            .map(|t| t.language.as_str())
            .collect();
        match (language, languages.as_slice()) {
            (_, []) => Err(Problem::not_found(
                "no-such-template",
                format!(
                    "the WhatsApp account has no template named {name:?}; GET /v1/templates \
                     lists the approved ones"
                ),
            )
            .into()),
            (None, [_]) => {
                all.iter().find(|t| t.name == name).cloned().ok_or_else(|| {
                    Problem::not_found("no-such-template", "template vanished").into()
                })
            }
            (None, several) => Err(Problem::bad_request(
                "language-required",
                format!(
                    "template {name:?} exists in several languages ({}); say which with \
                     `language`",
                    several.join(", ")
                ),
            )
            .into()),
            (Some(language), some) => Err(Problem::not_found(
                "no-such-template",
                format!(
                    "template {name:?} has no language {language:?}; it exists in {}",
                    some.join(", ")
                ),
            )
            .into()),
        }
    }
}
