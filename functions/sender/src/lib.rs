//! The sender function: consumes the send queue and delivers each message to the WhatsApp
//! Cloud API exactly once.
//!
//! Per record: claim the message (`queued → sending`, conditional, with a lease), wait for the
//! pace, send, and settle (`sent` / `failed` / back to `queued`). A redelivered record finds
//! the message already past `sending` and is acknowledged without a second send.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use anna_shared::aws::dynamo::DynamoStore;
use anna_shared::aws::sqs::SendRecord;
use anna_shared::config::{ConfigError, EnvReader, StoreConfig};
use anna_shared::domain::dispatch::DispatchState;
use anna_shared::domain::message::{MessageId, MessageRecord};
use anna_shared::domain::phone::PhoneNumber;
use anna_shared::error::Retryable;
use anna_shared::ports::{Claim, DispatchStore, MessageStore, Settlement, StoreError, WhatsApp};
use anna_shared::whatsapp::client::{CloudApiConfig, SendError};
use anna_shared::whatsapp::cloud::CloudWhatsApp;
use anna_shared::whatsapp::errors::{ErrorClass, describe};
use anna_shared::whatsapp::payload::template_message;
use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use futures::{StreamExt, stream};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use tokio::sync::Mutex;
use tracing::{Instrument, debug, error, info, info_span, warn};

#[derive(Debug, Clone)]
pub struct SenderConfig {
    pub store: StoreConfig,
    pub cloud_api: CloudApiConfig,
    pub template_ttl: Duration,
    pub pacing: Pacing,
    /// How long a claim is held before the review treats the attempt as an unknown outcome.
    pub lease: Duration,
    /// Claims after which a message that keeps hitting retryable errors fails for good.
    pub max_attempts: u32,
}

/// The number's send rate shared among the sender invocations that may run at once
/// (DESIGN.md section 6).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pacing {
    /// Messages per second the business number may carry (WhatsApp: 80 by default, up to 1,000).
    pub rate_per_second: u32,
    /// The event source's maximum concurrency: how many invocations share that rate.
    pub max_concurrency: u32,
    /// Sends of one batch in flight at once, within the pace.
    pub sends_in_flight: usize,
}

impl Pacing {
    /// The period between two sends of one invocation: concurrency / rate.
    pub fn period(&self) -> Duration {
        Duration::from_secs_f64(
            f64::from(self.max_concurrency.max(1)) / f64::from(self.rate_per_second.max(1)),
        )
    }

    pub fn limiter(&self) -> DefaultDirectRateLimiter {
        // Burst of one: sends are spread evenly, never bunched above the number's rate.
        let quota = Quota::with_period(self.period())
            .unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN))
            .allow_burst(NonZeroU32::MIN);
        RateLimiter::direct(quota)
    }
}

impl SenderConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        let mut env = EnvReader::from_env();
        let config = Self {
            store: StoreConfig::read(&mut env),
            cloud_api: anna_shared::config::read_cloud_api(&mut env),
            template_ttl: anna_shared::config::read_template_ttl(&mut env),
            pacing: Pacing {
                rate_per_second: env.bounded_or("ANNA_SEND_RATE", 80, 1..=1_000) as u32,
                max_concurrency: env.bounded_or("ANNA_SENDER_MAX_CONCURRENCY", 2, 1..=1_000) as u32,
                sends_in_flight: env.bounded_or("ANNA_SENDS_IN_FLIGHT", 10, 1..=100) as usize,
            },
            lease: Duration::from_secs(env.bounded_or("ANNA_LEASE_SECONDS", 120, 5..=3_600)),
            max_attempts: env.bounded_or("ANNA_MAX_ATTEMPTS", 5, 1..=100) as u32,
        };
        env.finish().map(|()| config)
    }
}

pub struct Sender<S, W> {
    pub store: S,
    pub whatsapp: W,
    pub lease: Duration,
    pub max_attempts: u32,
    pub sends_in_flight: usize,
    /// Lives as long as the Lambda execution environment, so the pace holds across batches.
    pub limiter: Arc<DefaultDirectRateLimiter>,
}

pub type AwsSender = Sender<DynamoStore, CloudWhatsApp>;

impl AwsSender {
    pub fn connect(sdk: &aws_config::SdkConfig, config: SenderConfig) -> anyhow::Result<Self> {
        Ok(Sender::new(
            DynamoStore::new(aws_sdk_dynamodb::Client::new(sdk), &config.store),
            CloudWhatsApp::new(config.cloud_api, config.template_ttl)?,
            &config.pacing,
            config.lease,
            config.max_attempts,
        ))
    }
}

impl<S, W> Sender<S, W> {
    pub fn new(store: S, whatsapp: W, pacing: &Pacing, lease: Duration, max_attempts: u32) -> Self {
        Self {
            store,
            whatsapp,
            lease,
            max_attempts,
            sends_in_flight: pacing.sends_in_flight.max(1),
            limiter: Arc::new(pacing.limiter()),
        }
    }
}

/// Why a record goes back to SQS instead of being acknowledged.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// A body this function can never process: after maxReceiveCount it rests in the DLQ.
    #[error("poison record: {0}")]
    Poison(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// WhatsApp answered with a retryable error; the message is `queued` again.
    #[error("retry later: {0}")]
    Retry(String),
}

impl Retryable for RecordError {
    fn is_retryable(&self) -> bool {
        match self {
            Self::Poison(_) => false,
            Self::Store(e) => e.is_retryable(),
            Self::Retry(_) => true,
        }
    }
}

/// What the sender knows of each dispatch during one batch, so a batch of ten records of the
/// same dispatch reads it once.
type DispatchStates = Mutex<HashMap<String, Option<DispatchState>>>;

/// Handles one batch from the send queue; records reported as failures come back after their
/// visibility timeout.
pub async fn handle<S, W>(sender: &Sender<S, W>, event: SqsEvent) -> SqsBatchResponse
where
    S: DispatchStore + MessageStore,
    W: WhatsApp,
{
    let states = DispatchStates::default();
    let failures: Vec<BatchItemFailure> = stream::iter(event.records)
        .map(|record| {
            let states = &states;
            async move {
                let record_id = record.message_id.clone().unwrap_or_default();
                let span = info_span!("send_record", sqs_message_id = %record_id, message_id = tracing::field::Empty);
                match handle_record(sender, states, &record).instrument(span).await {
                    Ok(()) => None,
                    Err(e) => {
                        if matches!(e, RecordError::Poison(_)) {
                            error!(sqs_message_id = %record_id, error = %e, "send record cannot be processed; it will end in the DLQ");
                        } else {
                            info!(sqs_message_id = %record_id, error = %e, "send record returned to the queue");
                        }
                        let mut failure = BatchItemFailure::default();
                        failure.item_identifier = record_id;
                        Some(failure)
                    }
                }
            }
        })
        .buffer_unordered(sender.sends_in_flight)
        .filter_map(std::future::ready)
        .collect()
        .await;
    let mut response = SqsBatchResponse::default();
    response.batch_item_failures = failures;
    response
}

async fn handle_record<S, W>(
    sender: &Sender<S, W>,
    states: &DispatchStates,
    record: &SqsMessage,
) -> Result<(), RecordError>
where
    S: DispatchStore + MessageStore,
    W: WhatsApp,
{
    let id = parse_record(record)?;
    tracing::Span::current().record("message_id", tracing::field::display(&id));
    let message = match sender.store.claim(&id, sender.lease).await? {
        Claim::Claimed(message) => message,
        Claim::AlreadyFinal(status) => {
            debug!(%status, "already settled; acknowledged without sending");
            return Ok(());
        }
        Claim::InFlight => {
            debug!("another sender holds this message; acknowledged");
            return Ok(());
        }
        Claim::Missing => return Err(RecordError::Poison(format!("no message {id} in the store"))),
    };
    let settlement = attempt(sender, states, &message).await?;
    let retry = match &settlement {
        Settlement::Retry { reason } => Some(reason.clone()),
        _ => None,
    };
    if !sender.store.settle(&message, &settlement).await? {
        warn!(
            "claim was no longer ours when settling; the outcome recorded by its new owner stands"
        );
        return Ok(());
    }
    match retry {
        Some(reason) => Err(RecordError::Retry(reason)),
        None => Ok(()),
    }
}

fn parse_record(record: &SqsMessage) -> Result<MessageId, RecordError> {
    let body = record
        .body
        .as_deref()
        .ok_or_else(|| RecordError::Poison("record has no body".to_owned()))?;
    let parsed: SendRecord = serde_json::from_str(body)
        .map_err(|e| RecordError::Poison(format!("body is not a send record: {e}")))?;
    parsed
        .message_id
        .parse()
        .map_err(|e| RecordError::Poison(format!("{e}")))
}

/// Decides and performs the attempt for a claimed message; returns how to settle it.
async fn attempt<S, W>(
    sender: &Sender<S, W>,
    states: &DispatchStates,
    message: &MessageRecord,
) -> Result<Settlement, RecordError>
where
    S: DispatchStore + MessageStore,
    W: WhatsApp,
{
    let dispatch_state = {
        let mut states = states.lock().await;
        match states.get(&message.id.dispatch_id) {
            Some(state) => *state,
            None => {
                let state = sender
                    .store
                    .get_dispatch(&message.id.dispatch_id)
                    .await?
                    .map(|d| d.state);
                states.insert(message.id.dispatch_id.clone(), state);
                state
            }
        }
    };
    match dispatch_state {
        Some(DispatchState::Failed) => {
            return Ok(Settlement::Skipped {
                reason_code: "dispatch_failed".to_owned(),
                reason: "the dispatch failed before this message was sent".to_owned(),
            });
        }
        Some(DispatchState::Cancelled) => {
            return Ok(Settlement::Skipped {
                reason_code: "cancelled".to_owned(),
                reason: "the dispatch was cancelled before this message was sent".to_owned(),
            });
        }
        _ => {}
    }
    if message.attempts > sender.max_attempts {
        return Ok(Settlement::Failed {
            reason_code: "attempts_exhausted".to_owned(),
            reason: format!(
                "gave up after {} attempts; last error: {}",
                sender.max_attempts,
                message.reason.as_deref().unwrap_or("unknown")
            ),
            error_code: message.error_code,
            error_detail: message.error_detail.clone(),
        });
    }
    let Some(phone) = message.phone.clone() else {
        return Ok(Settlement::Failed {
            reason_code: "invalid_phone".to_owned(),
            reason: "the message has no phone number".to_owned(),
            error_code: None,
            error_detail: None,
        });
    };
    let template = match sender
        .whatsapp
        .template(&message.template, &message.language)
        .await
    {
        Ok(Some(template)) => template,
        Ok(None) => {
            return Ok(Settlement::Failed {
                reason_code: "template_missing".to_owned(),
                reason: format!(
                    "template {:?} ({}) no longer exists in the WhatsApp account",
                    message.template, message.language
                ),
                error_code: None,
                error_detail: None,
            });
        }
        Err(e) => return Ok(retry_or_fail(&e)),
    };
    let payload = template_message(
        &template,
        &PhoneNumber::from_e164_unchecked(phone),
        &message.variables,
        &message.id.to_string(),
    );
    sender.limiter.until_ready().await;
    match sender.whatsapp.send(&payload).await {
        Ok(accepted) => Ok(Settlement::Sent {
            wamid: accepted.wamid,
            wa_id: accepted.wa_id,
        }),
        Err(e) if e.is_unknown_outcome() => {
            // WhatsApp may have accepted it. Sending again could message the customer twice,
            // so the claim is left to expire and the review resolves it from the status
            // webhooks that echo our id (DESIGN.md section 5, "unknown outcome").
            warn!("no answer from WhatsApp in time; outcome unknown, left for the review");
            Ok(Settlement::Unknown)
        }
        Err(e) => Ok(retry_or_fail(&e)),
    }
}

fn retry_or_fail(error: &SendError) -> Settlement {
    match error.class() {
        ErrorClass::Retry | ErrorClass::RetryRecipientLater => Settlement::Retry {
            reason: error.detail(),
        },
        ErrorClass::Permanent | ErrorClass::PauseDispatch => Settlement::Failed {
            reason_code: "whatsapp_error".to_owned(),
            reason: error
                .code()
                .map_or_else(|| error.detail(), |code| describe(code).to_owned()),
            error_code: error.code(),
            error_detail: Some(error.detail()),
        },
    }
}
