//! The review function, run on a schedule (EventBridge, every few minutes; on the local stack
//! the runner calls it on a timer). Each run:
//!
//! 1. releases scheduled dispatches whose time has come;
//! 2. refreshes the template catalog, and pauses sending dispatches whose template WhatsApp
//!    has since paused, disabled or deleted;
//! 3. walks the dispatches still `sending` or `paused` and, for each, resolves claims whose
//!    lease expired (unknown outcomes, by the configured policy), re-queues messages `queued`
//!    far past the expected pace, flags `sent` messages never reported delivered, and
//!    completes the dispatch once every message is final — with an exact recount that also
//!    rewrites the counters;
//! 4. reports what it found as CloudWatch metrics.
//!
//! Every write is conditional, so two runs at once do no harm, and each run is bounded (a
//! number of dispatches and a time budget) with its position saved, so a table of millions
//! of messages is covered over several runs instead of timing one out.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anna_shared::aws::dynamo::DynamoStore;
use anna_shared::aws::queries::{Chunk, DispatchPosition};
use anna_shared::aws::sqs::SqsSendQueue;
use anna_shared::config::{ConfigError, EnvReader, StoreConfig};
use anna_shared::delivery::{DeliveryError, UnknownOutcomePolicy, claim_expired, resolve_claim};
use anna_shared::domain::dispatch::{Dispatch, DispatchState};
use anna_shared::domain::message::{MessageId, MessageStatus};
use anna_shared::error::Retryable;
use anna_shared::metrics::MetricSet;
use anna_shared::ports::{DispatchStore, QueueError, SendQueue, StoreError, WhatsApp};
use anna_shared::schedule::{ScheduleError, release_due_dispatches};
use anna_shared::whatsapp::client::CloudApiConfig;
use anna_shared::whatsapp::cloud::CloudWhatsApp;
use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use tracing::{info, warn};

/// Dispatches read from the list per query.
const LIST_PAGE: u32 = 25;
/// How long past `undelivered_after` a completed dispatch is still looked at, so its last
/// sent messages get their chance to be flagged.
const COMPLETED_REVIEW_SLACK: Duration = Duration::from_secs(24 * 3600);
/// Messages read per step of a dispatch's scan.
const SCAN_CHUNK: usize = 500;

#[derive(Debug, Clone)]
pub struct ReviewConfig {
    pub store: StoreConfig,
    pub send_queue_url: String,
    pub cloud_api: CloudApiConfig,
    pub template_ttl: Duration,
    pub rules: ReviewRules,
}

/// The thresholds the review judges by.
#[derive(Debug, Clone)]
pub struct ReviewRules {
    /// After a claim's lease ends, how long status webhooks get to say what happened before
    /// the unknown-outcome policy applies.
    pub unknown_outcome_grace: Duration,
    pub unknown_outcome_policy: UnknownOutcomePolicy,
    /// A `sent` message not reported delivered after this long is flagged `undelivered`.
    pub undelivered_after: Duration,
    /// Slack over the expected pace before a `queued` message counts as stuck.
    pub stuck_queued_after: Duration,
    /// The number's send rate, for the expected pace of a dispatch.
    pub send_rate: u32,
    /// Active dispatches examined per run.
    pub dispatches_per_run: usize,
    /// Time after which a run stops and saves its position.
    pub time_budget: Duration,
}

impl Default for ReviewRules {
    fn default() -> Self {
        Self {
            unknown_outcome_grace: Duration::from_secs(10 * 60),
            unknown_outcome_policy: UnknownOutcomePolicy::AtMostOnce,
            undelivered_after: Duration::from_secs(24 * 3600),
            stuck_queued_after: Duration::from_secs(15 * 60),
            send_rate: 80,
            dispatches_per_run: 200,
            time_budget: Duration::from_secs(4 * 60),
        }
    }
}

impl ReviewConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        let mut env = EnvReader::from_env();
        let defaults = ReviewRules::default();
        let seconds = |env: &mut EnvReader, name: &str, default: Duration, max: u64| {
            Duration::from_secs(env.bounded_or(name, default.as_secs(), 0..=max))
        };
        let rules = ReviewRules {
            unknown_outcome_grace: seconds(
                &mut env,
                "ANNA_UNKNOWN_OUTCOME_GRACE_SECONDS",
                defaults.unknown_outcome_grace,
                7 * 86_400,
            ),
            unknown_outcome_policy: env.parsed_or(
                "ANNA_UNKNOWN_OUTCOME_POLICY",
                UnknownOutcomePolicy::AtMostOnce,
            ),
            undelivered_after: seconds(
                &mut env,
                "ANNA_UNDELIVERED_AFTER_SECONDS",
                defaults.undelivered_after,
                30 * 86_400,
            ),
            stuck_queued_after: seconds(
                &mut env,
                "ANNA_STUCK_QUEUED_SECONDS",
                defaults.stuck_queued_after,
                7 * 86_400,
            ),
            send_rate: env.bounded_or("ANNA_SEND_RATE", 80, 1..=1_000) as u32,
            dispatches_per_run: env.bounded_or("ANNA_REVIEW_DISPATCHES_PER_RUN", 200, 1..=10_000)
                as usize,
            time_budget: seconds(
                &mut env,
                "ANNA_REVIEW_TIME_BUDGET_SECONDS",
                defaults.time_budget,
                14 * 60,
            ),
        };
        let config = Self {
            store: StoreConfig::read(&mut env),
            send_queue_url: env.required("ANNA_SEND_QUEUE_URL"),
            cloud_api: anna_shared::config::read_cloud_api(&mut env),
            template_ttl: anna_shared::config::read_template_ttl(&mut env),
            rules,
        };
        env.finish().map(|()| config)
    }
}

pub struct Review<W> {
    pub store: DynamoStore,
    pub queue: SqsSendQueue,
    pub whatsapp: W,
    pub rules: ReviewRules,
}

pub type AwsReview = Review<CloudWhatsApp>;

impl AwsReview {
    pub fn connect(sdk: &aws_config::SdkConfig, config: ReviewConfig) -> anyhow::Result<Self> {
        Ok(Self {
            store: DynamoStore::new(aws_sdk_dynamodb::Client::new(sdk), &config.store),
            queue: SqsSendQueue::new(aws_sdk_sqs::Client::new(sdk), config.send_queue_url),
            whatsapp: CloudWhatsApp::new(config.cloud_api, config.template_ttl)?,
            rules: config.rules,
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ReviewError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Queue(#[from] QueueError),
    #[error(transparent)]
    Delivery(#[from] DeliveryError),
    #[error(transparent)]
    Schedule(#[from] ScheduleError),
}

impl Retryable for ReviewError {
    fn is_retryable(&self) -> bool {
        match self {
            Self::Store(e) => e.is_retryable(),
            Self::Queue(e) => e.is_retryable(),
            Self::Delivery(e) => e.is_retryable(),
            Self::Schedule(e) => e.is_retryable(),
        }
    }
}

/// What one run found and did.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ReviewReport {
    /// Active dispatches examined.
    pub examined: u32,
    /// Scheduled dispatches released to sending.
    pub released: u32,
    pub completed: u32,
    /// Dispatches paused because their template is no longer approved.
    pub paused_by_template: u32,
    /// Expired claims settled by the unknown-outcome policy.
    pub unknown_outcomes: u32,
    /// `queued` messages past the expected pace, queued again.
    pub requeued_stuck: u32,
    pub flagged_undelivered: u32,
    /// The run reached the end of the dispatch list (the next one starts from the newest).
    pub finished_pass: bool,
    /// Creation to completion, for each dispatch completed in this run.
    pub durations_seconds: Vec<f64>,
}

impl ReviewReport {
    fn metrics(&self) -> MetricSet {
        let mut set = MetricSet::new().dimension("Function", "review");
        set.add("ReviewRuns", anna_shared::metrics::Unit::Count, 1.0);
        set.count("DispatchesExamined", u64::from(self.examined));
        set.count("DispatchesReleased", u64::from(self.released));
        set.count("DispatchesCompleted", u64::from(self.completed));
        set.count(
            "DispatchesPausedByTemplate",
            u64::from(self.paused_by_template),
        );
        set.count("UnknownOutcomes", u64::from(self.unknown_outcomes));
        set.count("StuckQueuedRequeued", u64::from(self.requeued_stuck));
        set.count("Undelivered", u64::from(self.flagged_undelivered));
        for seconds in &self.durations_seconds {
            set.add(
                "DispatchDuration",
                anna_shared::metrics::Unit::Seconds,
                *seconds,
            );
        }
        set
    }
}

/// The Lambda entry point: any scheduled event starts a run.
pub async fn handle<W: WhatsApp>(
    review: &Review<W>,
    _event: aws_lambda_events::event::eventbridge::EventBridgeEvent,
) -> Result<ReviewReport, ReviewError> {
    run(review, Utc::now()).await
}

/// One review run as of `now` (injectable, so tests need not wait for real time to pass).
pub async fn run<W: WhatsApp>(
    review: &Review<W>,
    now: DateTime<Utc>,
) -> Result<ReviewReport, ReviewError> {
    let started = Instant::now();
    let mut report = ReviewReport::default();
    let now_text = now.to_rfc3339_opts(SecondsFormat::Millis, true);
    let released = release_due_dispatches(&review.store, &review.queue, &now_text).await?;
    report.released = released.released.len() as u32;
    review.whatsapp.refresh_templates().await;

    let mut position = review.store.review_cursor().await?;
    'pass: loop {
        let page = review
            .store
            .list_dispatches(LIST_PAGE, position.as_ref())
            .await?;
        for dispatch in page.dispatches {
            // Completed dispatches stay under review until their sent messages had time to
            // be reported delivered (or flagged as not).
            let active = match dispatch.state {
                DispatchState::Sending | DispatchState::Paused => true,
                DispatchState::Completed => !older_than(
                    &dispatch.updated_at,
                    now - chrono::Duration::from_std(
                        review.rules.undelivered_after + COMPLETED_REVIEW_SLACK,
                    )
                    .unwrap_or_default(),
                ),
                _ => false,
            };
            if active {
                if report.examined as usize >= review.rules.dispatches_per_run
                    || started.elapsed() > review.rules.time_budget
                {
                    break 'pass;
                }
                if !review_dispatch(review, &dispatch, now, started, &mut report).await? {
                    // Out of time inside this dispatch: the next run starts with it again.
                    break 'pass;
                }
                report.examined += 1;
            }
            position = Some(DispatchPosition {
                created_at: dispatch.created_at.clone(),
                id: dispatch.id.clone(),
            });
        }
        if page.next.is_none() {
            position = None;
            report.finished_pass = true;
            break;
        }
    }
    review.store.set_review_cursor(position.as_ref()).await?;
    report.metrics().emit();
    info!(
        ?report,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "review run finished"
    );
    Ok(report)
}

/// Reviews one active dispatch. Returns false when the time budget ran out before its
/// messages were all looked at (nothing is completed then).
async fn review_dispatch<W: WhatsApp>(
    review: &Review<W>,
    dispatch: &Dispatch,
    now: DateTime<Utc>,
    started: Instant,
    report: &mut ReviewReport,
) -> Result<bool, ReviewError> {
    let mut state = dispatch.state;
    if state == DispatchState::Sending && template_withdrawn(review, dispatch).await? {
        report.paused_by_template += 1;
        state = DispatchState::Paused;
    }
    let rules = &review.rules;
    let expected_pace = Duration::from_secs(u64::from(dispatch.accepted / rules.send_rate.max(1)));
    let stuck_before = now
        - chrono::Duration::from_std(rules.stuck_queued_after + expected_pace).unwrap_or_default();
    let undelivered_before =
        now - chrono::Duration::from_std(rules.undelivered_after).unwrap_or_default();

    let mut counts: BTreeMap<MessageStatus, u64> = BTreeMap::new();
    let mut stuck: Vec<MessageId> = Vec::new();
    let mut scan = review.store.scan_messages(&dispatch.id);
    loop {
        if started.elapsed() > rules.time_budget {
            return Ok(false);
        }
        let chunk = match scan.next_chunk(SCAN_CHUNK).await? {
            Chunk::Messages(chunk) => chunk,
            Chunk::Fetched => continue,
            Chunk::Done => break,
        };
        for message in chunk {
            let mut status = message.status;
            match status {
                MessageStatus::Sending
                    if claim_expired(&message, now, rules.unknown_outcome_grace) =>
                {
                    if let Some(resolved) = resolve_claim(
                        &review.store,
                        &review.queue,
                        &message,
                        rules.unknown_outcome_policy,
                    )
                    .await?
                    {
                        report.unknown_outcomes += 1;
                        status = resolved;
                    }
                }
                MessageStatus::Queued
                    if state == DispatchState::Sending
                        && older_than(&message.updated_at, stuck_before) =>
                {
                    stuck.push(message.id.clone());
                }
                MessageStatus::Sent
                    if !message.undelivered
                        && message
                            .sent_at
                            .as_deref()
                            .is_some_and(|at| older_than(at, undelivered_before)) =>
                {
                    let flagged = review.store.flag_undelivered(&message).await?;
                    report.flagged_undelivered += u32::from(flagged);
                }
                _ => {}
            }
            *counts.entry(status).or_insert(0) += 1;
        }
    }
    if !stuck.is_empty() {
        // A message queued twice is sent once (the sender's claim), so re-queuing whatever
        // looks stuck is safe even when its record was only slow.
        warn!(dispatch_id = %dispatch.id, count = stuck.len(), "queued messages past the expected pace; queued again");
        review.queue.enqueue(&stuck).await?;
        report.requeued_stuck += stuck.len() as u32;
    }
    let unfinished = counts.get(&MessageStatus::Queued).copied().unwrap_or(0)
        + counts.get(&MessageStatus::Sending).copied().unwrap_or(0);
    if state == DispatchState::Sending
        && unfinished == 0
        && review
            .store
            .complete_dispatch(&dispatch.id, &counts)
            .await?
    {
        info!(dispatch_id = %dispatch.id, ?counts, "dispatch completed");
        report.completed += 1;
        if let Ok(created) = DateTime::parse_from_rfc3339(&dispatch.created_at) {
            let seconds = (now - created.with_timezone(&Utc))
                .num_milliseconds()
                .max(0) as f64
                / 1000.0;
            report.durations_seconds.push(seconds);
        }
    }
    Ok(true)
}

/// Pauses a sending dispatch whose template WhatsApp no longer lets us send.
async fn template_withdrawn<W: WhatsApp>(
    review: &Review<W>,
    dispatch: &Dispatch,
) -> Result<bool, ReviewError> {
    let why = match review
        .whatsapp
        .template(&dispatch.template, &dispatch.language)
        .await
    {
        Ok(Some(template)) if template.is_sendable() => return Ok(false),
        Ok(Some(template)) => format!(
            "paused: template {} ({}) is now {:?} at WhatsApp; resume once it is approved again",
            template.name, template.language, template.status
        ),
        Ok(None) => format!(
            "paused: template {} ({}) no longer exists at WhatsApp",
            dispatch.template, dispatch.language
        ),
        Err(e) => {
            warn!(error = %e, "could not check templates; trying again next run");
            return Ok(false);
        }
    };
    let paused = review.store.pause_dispatch(&dispatch.id, &why).await?;
    if paused {
        tracing::error!(alarm = "dispatch_paused", dispatch_id = %dispatch.id, reason = %why, "dispatch paused");
    }
    Ok(paused)
}

fn older_than(timestamp: &str, limit: DateTime<Utc>) -> bool {
    DateTime::parse_from_rfc3339(timestamp).is_ok_and(|t| t.with_timezone(&Utc) < limit)
}
