//! Event-source emulation: what the Lambda SQS event source mapping does, on one machine.
//! Long-polls a queue, hands each batch to the same handler the Lambda runs as a real
//! `SqsEvent`, and deletes only the records the handler did not report as failed (partial
//! batch response). Failed records stay and come back after their visibility timeout, and
//! after maxReceiveCount SQS moves them to the DLQ — exactly as on AWS.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::time::Duration;

use anyhow::Context;
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use aws_sdk_sqs::types::{DeleteMessageBatchRequestEntry, MessageSystemAttributeName};
use tokio::sync::watch;

/// Receives one batch (up to 10 records), runs `handler`, deletes what succeeded.
/// Returns how many records were received.
pub async fn poll_once<F, Fut>(
    sqs: &aws_sdk_sqs::Client,
    queue_url: &str,
    wait: Duration,
    handler: F,
) -> anyhow::Result<usize>
where
    F: FnOnce(SqsEvent) -> Fut,
    Fut: Future<Output = SqsBatchResponse>,
{
    let received = sqs
        .receive_message()
        .queue_url(queue_url)
        .max_number_of_messages(10)
        .wait_time_seconds(wait.as_secs().min(20) as i32)
        .message_system_attribute_names(MessageSystemAttributeName::All)
        .send()
        .await
        .with_context(|| format!("receiving from {queue_url}"))?;
    let messages = received.messages.unwrap_or_default();
    if messages.is_empty() {
        return Ok(0);
    }
    let count = messages.len();
    let mut event = SqsEvent::default();
    event.records = messages
        .into_iter()
        .map(|message| {
            let mut record = SqsMessage::default();
            record.message_id = message.message_id;
            record.receipt_handle = message.receipt_handle;
            record.body = message.body;
            record.md5_of_body = message.md5_of_body;
            record.attributes = message
                .attributes
                .unwrap_or_default()
                .into_iter()
                .map(|(name, value)| (name.as_str().to_owned(), value))
                .collect::<HashMap<_, _>>();
            record.event_source = Some("aws:sqs".to_owned());
            record
        })
        .collect();
    let handles: Vec<(String, String)> = event
        .records
        .iter()
        .filter_map(|r| Some((r.message_id.clone()?, r.receipt_handle.clone()?)))
        .collect();
    let response = handler(event).await;
    let failed: HashSet<String> = response
        .batch_item_failures
        .into_iter()
        .map(|f| f.item_identifier)
        .collect();
    let entries: Vec<DeleteMessageBatchRequestEntry> = handles
        .into_iter()
        .filter(|(id, _)| !failed.contains(id))
        .enumerate()
        .filter_map(|(index, (_, handle))| {
            DeleteMessageBatchRequestEntry::builder()
                .id(index.to_string())
                .receipt_handle(handle)
                .build()
                .ok()
        })
        .collect();
    if !entries.is_empty() {
        sqs.delete_message_batch()
            .queue_url(queue_url)
            .set_entries(Some(entries))
            .send()
            .await
            .with_context(|| format!("deleting handled records from {queue_url}"))?;
    }
    Ok(count)
}

/// Polls until `shutdown` turns true, the way one concurrent Lambda instance would.
pub async fn poll_until<F, Fut>(
    sqs: aws_sdk_sqs::Client,
    queue_url: String,
    mut shutdown: watch::Receiver<bool>,
    handler: F,
) where
    F: Fn(SqsEvent) -> Fut,
    Fut: Future<Output = SqsBatchResponse>,
{
    while !*shutdown.borrow() {
        let poll = poll_once(&sqs, &queue_url, Duration::from_secs(2), &handler);
        tokio::select! {
            result = poll => {
                if let Err(e) = result {
                    tracing::warn!(queue = %queue_url, error = %format!("{e:#}"), "polling failed; retrying shortly");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
            _ = shutdown.changed() => {}
        }
    }
}

/// Runs the review every `every` until `shutdown` turns true: what the EventBridge schedule
/// does on AWS (release scheduled dispatches, resolve what is stuck, complete what is done).
pub async fn review_loop<W: anna_shared::ports::WhatsApp>(
    review: anna_review::Review<W>,
    every: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while !*shutdown.borrow() {
        tokio::select! {
            _ = ticks.tick() => {
                if let Err(e) = anna_review::run(&review, chrono::Utc::now()).await {
                    tracing::warn!(error = %e, "review run failed; trying again next time");
                }
            }
            _ = shutdown.changed() => {}
        }
    }
}
