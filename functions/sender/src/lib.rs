//! The sender function: consumes the send queue and delivers each message to the WhatsApp
//! Cloud API exactly once.
//!
//! Per record: claim the message (`queued → sending`, conditional, with a lease), check the
//! opt-out list, wait for the pace, send, and settle (`sent` / `failed` / `skipped` / back to
//! `queued`). A redelivered record finds the message already past `sending` and is
//! acknowledged without a second send.

mod retry;

use std::collections::{BTreeMap, HashMap};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use anna_shared::aws::dynamo::DynamoStore;
use anna_shared::aws::sqs::{SendRecord, SqsSendQueue};
use anna_shared::config::{ConfigError, EnvReader, StoreConfig};
use anna_shared::domain::dispatch::DispatchState;
use anna_shared::domain::message::{MessageId, MessageRecord};
use anna_shared::domain::phone::PhoneNumber;
use anna_shared::error::Retryable;
use anna_shared::metrics::{MetricSet, Unit};
use anna_shared::ports::{
    Claim, DispatchStore, MessageStore, OptOut, OptOutStore, SendQueue, Settlement, StoreError,
    WhatsApp,
};
use anna_shared::whatsapp::client::{CloudApiConfig, SendError};
use anna_shared::whatsapp::cloud::CloudWhatsApp;
use anna_shared::whatsapp::errors::{ErrorClass, describe, is_opt_out};
use anna_shared::whatsapp::payload::template_message;
use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use futures::{StreamExt, stream};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use tokio::sync::Mutex;
use tokio::time::Instant;
use tracing::{Instrument, debug, error, info, info_span, warn};

pub use retry::RetryPolicy;

#[derive(Debug, Clone)]
pub struct SenderConfig {
    pub store: StoreConfig,
    /// The queue this function consumes: retried records are delayed on it.
    pub send_queue_url: String,
    pub cloud_api: CloudApiConfig,
    pub template_ttl: Duration,
    pub pacing: Pacing,
    /// How long a claim is held before the review treats the attempt as an unknown outcome.
    pub lease: Duration,
    /// Claims after which a message that keeps hitting retryable errors fails for good.
    pub max_attempts: u32,
    /// The send queue's redrive `maxReceiveCount`.
    pub max_receive_count: u32,
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
            send_queue_url: env.required("ANNA_SEND_QUEUE_URL"),
            cloud_api: anna_shared::config::read_cloud_api(&mut env),
            template_ttl: anna_shared::config::read_template_ttl(&mut env),
            pacing: Pacing {
                rate_per_second: env.bounded_or("ANNA_SEND_RATE", 80, 1..=1_000) as u32,
                max_concurrency: env.bounded_or("ANNA_SENDER_MAX_CONCURRENCY", 2, 1..=1_000) as u32,
                sends_in_flight: env.bounded_or("ANNA_SENDS_IN_FLIGHT", 10, 1..=100) as usize,
            },
            lease: Duration::from_secs(env.bounded_or("ANNA_LEASE_SECONDS", 120, 5..=3_600)),
            max_attempts: env.bounded_or("ANNA_MAX_ATTEMPTS", 5, 1..=100) as u32,
            max_receive_count: env.bounded_or(
                "ANNA_SEND_MAX_RECEIVE_COUNT",
                u64::from(DEFAULT_MAX_RECEIVE_COUNT),
                1..=1_000,
            ) as u32,
        };
        env.finish().map(|()| config)
    }
}

pub struct Sender<S, W, Q> {
    pub store: S,
    pub whatsapp: W,
    pub queue: Q,
    pub lease: Duration,
    pub max_attempts: u32,
    /// The send queue's redrive `maxReceiveCount`: a record received that often goes to the
    /// DLQ on its next receive, so its retry continues on a fresh record instead.
    pub max_receive_count: u32,
    pub sends_in_flight: usize,
    pub retry: RetryPolicy,
    /// Lives as long as the Lambda execution environment, so the pace holds across batches.
    pub limiter: Arc<DefaultDirectRateLimiter>,
    /// After a 130429 (the number's throughput reached), every later send of this
    /// environment waits until this gate opens.
    throttle: Arc<Mutex<Throttle>>,
}

#[derive(Debug, Default)]
struct Throttle {
    open_at: Option<Instant>,
    /// Consecutive 130429s: each doubles the wait, a successful send resets it.
    strikes: u32,
}

/// The template's and the local stack's `maxReceiveCount` for the send queue.
pub const DEFAULT_MAX_RECEIVE_COUNT: u32 = 5;

/// First wait after a 130429; doubles per consecutive one, up to [`THROTTLE_MAX`].
const THROTTLE_BASE: Duration = Duration::from_millis(500);
const THROTTLE_MAX: Duration = Duration::from_secs(30);

pub type AwsSender = Sender<DynamoStore, CloudWhatsApp, SqsSendQueue>;

impl AwsSender {
    pub fn connect(sdk: &aws_config::SdkConfig, config: SenderConfig) -> anyhow::Result<Self> {
        let mut sender = Sender::new(
            DynamoStore::new(aws_sdk_dynamodb::Client::new(sdk), &config.store),
            CloudWhatsApp::new(config.cloud_api, config.template_ttl)?,
            SqsSendQueue::new(aws_sdk_sqs::Client::new(sdk), config.send_queue_url),
            &config.pacing,
            config.lease,
            config.max_attempts,
        );
        sender.max_receive_count = config.max_receive_count;
        Ok(sender)
    }
}

impl<S, W, Q> Sender<S, W, Q> {
    pub fn new(
        store: S,
        whatsapp: W,
        queue: Q,
        pacing: &Pacing,
        lease: Duration,
        max_attempts: u32,
    ) -> Self {
        Self {
            store,
            whatsapp,
            queue,
            lease,
            max_attempts,
            max_receive_count: DEFAULT_MAX_RECEIVE_COUNT,
            sends_in_flight: pacing.sends_in_flight.max(1),
            retry: RetryPolicy::default(),
            limiter: Arc::new(pacing.limiter()),
            throttle: Arc::default(),
        }
    }

    /// Waits for the throttle gate, then for the pace.
    async fn ready_to_send(&self) {
        loop {
            let open_at = self.throttle.lock().await.open_at;
            match open_at {
                Some(at) if at > Instant::now() => tokio::time::sleep_until(at).await,
                _ => break,
            }
        }
        self.limiter.until_ready().await;
    }

    async fn throttled(&self) {
        let mut throttle = self.throttle.lock().await;
        // Sends already in flight when the gate closed report the same overload: they must
        // not escalate it again, or one burst would close the gate for the maximum wait.
        if throttle.open_at.is_some_and(|at| at > Instant::now()) {
            return;
        }
        let wait = THROTTLE_BASE
            .saturating_mul(1 << throttle.strikes.min(10))
            .min(THROTTLE_MAX);
        throttle.strikes = throttle.strikes.saturating_add(1);
        throttle.open_at = Some(Instant::now() + wait);
        warn!(
            wait_ms = wait.as_millis() as u64,
            "WhatsApp throughput limit (130429): slowing down"
        );
    }

    async fn sent_fine(&self) {
        let mut throttle = self.throttle.lock().await;
        if throttle.strikes > 0 {
            *throttle = Throttle::default();
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
    /// WhatsApp answered with a retryable error; the message is `queued` again and its
    /// record comes back after the backoff.
    #[error("retry in {delay:?}: {reason}")]
    Retry { reason: String, delay: Duration },
}

impl Retryable for RecordError {
    fn is_retryable(&self) -> bool {
        match self {
            Self::Poison(_) => false,
            Self::Store(e) => e.is_retryable(),
            Self::Retry { .. } => true,
        }
    }
}

/// What the sender knows of each dispatch during one batch, so a batch of ten records of the
/// same dispatch reads it once.
type DispatchStates = Mutex<HashMap<String, Option<DispatchState>>>;

/// Handles one batch from the send queue; records reported as failures come back after their
/// visibility timeout.
pub async fn handle<S, W, Q>(sender: &Sender<S, W, Q>, event: SqsEvent) -> SqsBatchResponse
where
    S: DispatchStore + MessageStore + OptOutStore,
    W: WhatsApp,
    Q: SendQueue,
{
    let states = DispatchStates::default();
    let metrics = std::sync::Mutex::new(SendMetrics::default());
    let failures: Vec<BatchItemFailure> = stream::iter(event.records)
        .map(|record| {
            let (states, metrics) = (&states, &metrics);
            async move {
                let record_id = record.message_id.clone().unwrap_or_default();
                let span = info_span!("send_record", sqs_message_id = %record_id, message_id = tracing::field::Empty);
                match handle_record(sender, states, metrics, &record).instrument(span).await {
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
    metrics
        .into_inner()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .emit();
    let mut response = SqsBatchResponse::default();
    response.batch_item_failures = failures;
    response
}

/// What one batch did, emitted as one EMF line per invocation rather than one per message.
#[derive(Debug, Default)]
struct SendMetrics {
    sent: u64,
    retries: u64,
    throttles: u64,
    unknown_outcomes: u64,
    skipped: u64,
    released: u64,
    latencies_ms: Vec<f64>,
    /// Failures by WhatsApp error code, or by our reason where WhatsApp gave none.
    failed: BTreeMap<String, u64>,
}

impl SendMetrics {
    fn record(&mut self, attempt: &Attempt) {
        if let Some(latency) = attempt.latency {
            self.latencies_ms.push(latency.as_secs_f64() * 1000.0);
        }
        match &attempt.settlement {
            Settlement::Sent { .. } => self.sent += 1,
            Settlement::Failed {
                reason_code,
                error_code,
                ..
            } => {
                let reason = error_code.map_or_else(|| reason_code.clone(), |c| c.to_string());
                *self.failed.entry(reason).or_insert(0) += 1;
            }
            Settlement::Retry { error_code, .. } => {
                self.retries += 1;
                if *error_code == Some(130429) {
                    self.throttles += 1;
                }
            }
            Settlement::Skipped { .. } => self.skipped += 1,
            Settlement::Release { .. } => self.released += 1,
            Settlement::Unknown => self.unknown_outcomes += 1,
        }
    }

    fn emit(self) {
        let mut set = MetricSet::new().dimension("Function", "sender");
        set.count("Sent", self.sent);
        set.count("Failed", self.failed.values().sum());
        set.count("Retries", self.retries);
        set.count("Throttled", self.throttles);
        set.count("UnknownOutcomes", self.unknown_outcomes);
        set.count("Skipped", self.skipped);
        set.count("ReleasedWhilePaused", self.released);
        for latency in self.latencies_ms {
            set.add("SendLatency", Unit::Milliseconds, latency);
        }
        set.emit();
        for (reason, count) in self.failed {
            let mut by_code = MetricSet::new()
                .dimension("Function", "sender")
                .dimension("ErrorCode", reason);
            by_code.count("FailedByCode", count);
            by_code.emit();
        }
    }
}

async fn handle_record<S, W, Q>(
    sender: &Sender<S, W, Q>,
    states: &DispatchStates,
    metrics: &std::sync::Mutex<SendMetrics>,
    record: &SqsMessage,
) -> Result<(), RecordError>
where
    S: DispatchStore + MessageStore + OptOutStore,
    W: WhatsApp,
    Q: SendQueue,
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
    let outcome = attempt(sender, states, &message).await?;
    metrics
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .record(&outcome);
    let Attempt {
        settlement,
        retry_in,
        ..
    } = outcome;
    if settlement == Settlement::Unknown {
        return Ok(());
    }
    if !sender.store.settle(&message, &settlement).await? {
        warn!(
            "claim was no longer ours when settling; the outcome recorded by its new owner stands"
        );
        return Ok(());
    }
    let (Settlement::Retry { reason, .. }, Some(delay)) = (settlement, retry_in) else {
        return Ok(());
    };
    // The retry rides on this record, delayed, unless that record cannot carry it: handed
    // back after the queue's last allowed receive it would go to the DLQ with its message
    // still `queued` (receives that never reached a claim, such as a sender stopped
    // mid-batch, count too); and a record whose delay is refused may be gone (received and
    // deleted elsewhere after its visibility ran out). Then a fresh record carries the retry;
    // should the old one come back as well, the claim keeps the message from being sent twice.
    let carried = receive_count(record) < sender.max_receive_count
        && match record.receipt_handle.as_deref() {
            Some(handle) => match sender.queue.delay_record(handle, delay).await {
                Ok(()) => true,
                Err(e) => {
                    warn!(error = %e, "could not delay the retried record");
                    false
                }
            },
            None => false,
        };
    if !carried {
        match sender.queue.enqueue_after(&message.id, delay).await {
            Ok(()) => {
                info!(
                    delay_ms = delay.as_millis() as u64,
                    "retry continues on a fresh record"
                );
                return Ok(());
            }
            // The record, if it still exists, comes back after its visibility timeout.
            Err(e) => warn!(error = %e, "could not queue a fresh record for the retry"),
        }
    }
    Err(RecordError::Retry { reason, delay })
}

/// How a claimed message's attempt ended, and for a retry, how long to wait.
struct Attempt {
    settlement: Settlement,
    retry_in: Option<Duration>,
    /// How long WhatsApp took to answer, when it was called.
    latency: Option<Duration>,
}

impl From<Settlement> for Attempt {
    fn from(settlement: Settlement) -> Self {
        Self {
            settlement,
            retry_in: None,
            latency: None,
        }
    }
}

/// How often SQS has handed this record out, this delivery included (1 when unknown).
fn receive_count(record: &SqsMessage) -> u32 {
    record
        .attributes
        .get("ApproximateReceiveCount")
        .and_then(|count| count.parse().ok())
        .unwrap_or(1)
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
async fn attempt<S, W, Q>(
    sender: &Sender<S, W, Q>,
    states: &DispatchStates,
    message: &MessageRecord,
) -> Result<Attempt, RecordError>
where
    S: DispatchStore + MessageStore + OptOutStore,
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
            }
            .into());
        }
        Some(DispatchState::Cancelled) => {
            return Ok(Settlement::Skipped {
                reason_code: "cancelled".to_owned(),
                reason: "the dispatch was cancelled before this message was sent".to_owned(),
            }
            .into());
        }
        // Stays queued and its record is acknowledged: resuming the dispatch queues every
        // message still `queued` again, so nothing is lost and nothing is sent twice.
        Some(DispatchState::Paused) => {
            return Ok(Settlement::Release {
                reason: "dispatch paused".to_owned(),
            }
            .into());
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
        }
        .into());
    }
    let Some(phone) = message.phone.clone() else {
        return Ok(Settlement::Failed {
            reason_code: "invalid_phone".to_owned(),
            reason: "the message has no phone number".to_owned(),
            error_code: None,
            error_detail: None,
        }
        .into());
    };
    // After the claim, so a number that opts out while its message waits in the queue is
    // still spared; before the call, so WhatsApp never sees it.
    if sender.store.is_opted_out(&phone).await? {
        return Ok(Settlement::Skipped {
            reason_code: "opted_out".to_owned(),
            reason: "the number is on the opt-out list".to_owned(),
        }
        .into());
    }
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
            }
            .into());
        }
        Err(e) => return Ok(on_error(sender, states, message, &e).await),
    };
    let payload = template_message(
        &template,
        &PhoneNumber::from_e164_unchecked(phone),
        &message.variables,
        &message.id.to_string(),
    );
    sender.ready_to_send().await;
    let asked_at = std::time::Instant::now();
    let answer = sender.whatsapp.send(&payload).await;
    let latency = Some(asked_at.elapsed());
    let mut outcome: Attempt = match answer {
        Ok(accepted) => {
            sender.sent_fine().await;
            Settlement::Sent {
                wamid: accepted.wamid,
                wa_id: accepted.wa_id,
            }
            .into()
        }
        Err(e) if e.is_unknown_outcome() => {
            // WhatsApp may have accepted it. Sending again could message the customer twice,
            // so the claim is left to expire and the review resolves it from the status
            // webhooks that echo our id (DESIGN.md section 5, "unknown outcome").
            warn!("no answer from WhatsApp in time; outcome unknown, left for the review");
            Settlement::Unknown.into()
        }
        Err(e) => on_error(sender, states, message, &e).await,
    };
    outcome.latency = latency;
    Ok(outcome)
}

/// What a WhatsApp error means for this message (and, for account-level errors, for its
/// whole dispatch). One table classifies the codes: `anna_shared::whatsapp::errors`.
async fn on_error<S, W, Q>(
    sender: &Sender<S, W, Q>,
    states: &DispatchStates,
    message: &MessageRecord,
    error: &SendError,
) -> Attempt
where
    S: DispatchStore + MessageStore + OptOutStore,
{
    let class = error.class();
    if let (Some(code), Some(phone)) = (error.code(), message.phone.as_deref())
        && is_opt_out(code)
    {
        let opt_out = OptOut {
            key: anna_shared::domain::phone::match_key(phone),
            phone: phone.to_owned(),
            source: "whatsapp_131050".to_owned(),
            detail: Some(error.detail()),
            created_at: anna_shared::aws::dynamo::now_rfc3339(),
        };
        // The message fails either way; a lost entry is added again by the next 131050.
        if let Err(e) = sender.store.add_opt_out(&opt_out).await {
            warn!(error = %e, "could not add the number to the opt-out list");
        }
    }
    match class {
        ErrorClass::Retry | ErrorClass::RetryRecipientLater => {
            if error.code() == Some(130429) {
                sender.throttled().await;
            }
            // Decided now rather than on the next delivery: the queue's maxReceiveCount may
            // send that delivery to the DLQ, which would leave the message `queued` forever.
            if message.attempts >= sender.max_attempts {
                return Settlement::Failed {
                    reason_code: "attempts_exhausted".to_owned(),
                    reason: format!(
                        "gave up after {} attempts; last error: {}",
                        message.attempts,
                        error.detail()
                    ),
                    error_code: error.code(),
                    error_detail: Some(error.detail()),
                }
                .into();
            }
            Attempt {
                settlement: Settlement::Retry {
                    reason: error.detail(),
                    error_code: error.code(),
                },
                retry_in: Some(sender.retry.delay(message.attempts, class, error.code())),
                latency: None,
            }
        }
        ErrorClass::PauseDispatch => {
            let reason = format!(
                "paused: WhatsApp error {} ({}); fix it and resume the dispatch",
                error
                    .code()
                    .map_or_else(|| "?".to_owned(), |c| c.to_string()),
                error.detail()
            );
            match sender
                .store
                .pause_dispatch(&message.id.dispatch_id, &reason)
                .await
            {
                Ok(true) => {
                    error!(
                        alarm = "dispatch_paused",
                        dispatch_id = %message.id.dispatch_id,
                        code = error.code(),
                        "dispatch paused: further sends would fail the same way"
                    );
                    // One series, so one alarm covers every cause; the code is in the log
                    // line above and in the dispatch's reason.
                    let mut set = MetricSet::new().dimension("Function", "sender");
                    set.count("DispatchesPaused", 1);
                    set.emit();
                }
                Ok(false) => {}
                Err(e) => warn!(error = %e, "could not pause the dispatch"),
            }
            states
                .lock()
                .await
                .insert(message.id.dispatch_id.clone(), Some(DispatchState::Paused));
            Settlement::Release { reason }.into()
        }
        ErrorClass::Permanent => Settlement::Failed {
            reason_code: "whatsapp_error".to_owned(),
            reason: error
                .code()
                .map_or_else(|| error.detail(), |code| describe(code).to_owned()),
            error_code: error.code(),
            error_detail: Some(error.detail()),
        }
        .into(),
    }
}
