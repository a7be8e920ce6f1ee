//! The send queue on SQS.

use std::time::Duration;

use aws_sdk_sqs::Client;
use aws_sdk_sqs::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
use futures::{StreamExt, TryStreamExt, stream};
use serde::{Deserialize, Serialize};

use crate::domain::message::MessageId;
use crate::ports::{QueueError, SendQueue};

/// SendMessageBatch's limit.
const BATCH_MAX: usize = 10;
const BATCHES_IN_FLIGHT: usize = 4;
const FAILED_ENTRY_RETRIES: u32 = 5;

/// The body of a send-queue record: only the message's identity. The sender's claim returns
/// the rest from the store, so a record can never disagree with what was recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendRecord {
    pub message_id: String,
}

impl SendRecord {
    pub fn for_message(id: &MessageId) -> Self {
        Self {
            message_id: id.to_string(),
        }
    }
}

fn queue_error<E, R>(operation: &str, err: SdkError<E, R>) -> QueueError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    match &err {
        SdkError::ServiceError(service) => {
            let code = service.err().code().unwrap_or("Unknown");
            let message = format!(
                "{operation}: {code}: {}",
                service.err().message().unwrap_or("")
            );
            if code.contains("Throttl")
                || code.contains("Unavailable")
                || code.contains("InternalError")
            {
                QueueError::Unavailable(message)
            } else {
                QueueError::Rejected(message)
            }
        }
        SdkError::ConstructionFailure(_) => QueueError::Rejected(format!("{operation}: {err}")),
        _ => QueueError::Unavailable(format!(
            "{operation}: {}",
            aws_smithy_types::error::display::DisplayErrorContext(&err)
        )),
    }
}

#[derive(Clone, Debug)]
pub struct SqsSendQueue {
    client: Client,
    queue_url: String,
}

impl SqsSendQueue {
    pub fn new(client: Client, queue_url: impl Into<String>) -> Self {
        Self {
            client,
            queue_url: queue_url.into(),
        }
    }

    async fn send_batch(&self, ids: &[MessageId]) -> Result<(), QueueError> {
        let mut pending: Vec<SendMessageBatchRequestEntry> = ids
            .iter()
            .enumerate()
            .map(|(index, id)| {
                let body = record_body(id)?;
                SendMessageBatchRequestEntry::builder()
                    .id(index.to_string())
                    .message_body(body)
                    .build()
                    .map_err(|e| QueueError::Rejected(format!("building entry: {e}")))
            })
            .collect::<Result<_, _>>()?;
        let mut delay = Duration::from_millis(50);
        for attempt in 0..=FAILED_ENTRY_RETRIES {
            let output = self
                .client
                .send_message_batch()
                .queue_url(&self.queue_url)
                .set_entries(Some(pending.clone()))
                .send()
                .await
                .map_err(|e| queue_error("SendMessageBatch", e))?;
            let failed = output.failed;
            if failed.is_empty() {
                return Ok(());
            }
            if let Some(fatal) = failed.iter().find(|f| f.sender_fault) {
                return Err(QueueError::Rejected(format!(
                    "SendMessageBatch refused an entry: {}: {}",
                    fatal.code,
                    fatal.message.as_deref().unwrap_or("")
                )));
            }
            pending.retain(|entry| failed.iter().any(|f| f.id == entry.id));
            if attempt < FAILED_ENTRY_RETRIES {
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(2));
            }
        }
        Err(QueueError::Unavailable(format!(
            "SendMessageBatch left {} entries unsent after {FAILED_ENTRY_RETRIES} retries",
            pending.len()
        )))
    }
}

fn record_body(id: &MessageId) -> Result<String, QueueError> {
    serde_json::to_string(&SendRecord::for_message(id))
        .map_err(|e| QueueError::Rejected(format!("encoding record: {e}")))
}

/// SQS's longest `DelaySeconds`.
const MAX_DELAY_SECONDS: f64 = 900.0;

impl SendQueue for SqsSendQueue {
    async fn delay_record(&self, receipt_handle: &str, by: Duration) -> Result<(), QueueError> {
        // Whole seconds, rounded up so a short backoff is not lost; SQS caps it at 12 hours.
        let seconds = by.as_secs_f64().ceil().min(43_200.0) as i32;
        self.client
            .change_message_visibility()
            .queue_url(&self.queue_url)
            .receipt_handle(receipt_handle)
            .visibility_timeout(seconds)
            .send()
            .await
            .map(drop)
            .map_err(|e| queue_error("ChangeMessageVisibility", e))
    }

    async fn enqueue_after(&self, id: &MessageId, after: Duration) -> Result<(), QueueError> {
        let body = record_body(id)?;
        self.client
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(body)
            .delay_seconds(after.as_secs_f64().ceil().min(MAX_DELAY_SECONDS) as i32)
            .send()
            .await
            .map(drop)
            .map_err(|e| queue_error("SendMessage", e))
    }

    async fn enqueue(&self, ids: &[MessageId]) -> Result<(), QueueError> {
        let chunks: Vec<Vec<MessageId>> = ids.chunks(BATCH_MAX).map(<[_]>::to_vec).collect();
        stream::iter(chunks)
            .map(|chunk| async move { self.send_batch(&chunk).await })
            .buffer_unordered(BATCHES_IN_FLIGHT)
            .try_collect::<()>()
            .await
    }
}
