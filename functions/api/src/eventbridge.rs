//! Conversation events on an EventBridge bus (`ANNA_EVENT_BUS`), for the attendance side.
//!
//! Each event is one entry: source `anna-notify`, detail-type the event's type
//! (`conversation.started`, `conversation.declined`), detail the event as JSON, whose `id`
//! stays the same when a redelivered webhook publishes it again.

use anna_shared::domain::conversation::ConversationEvent;
use anna_shared::events::{EventPublisher, PublishError, PublishFuture};
use aws_sdk_eventbridge::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_eventbridge::types::PutEventsRequestEntry;

pub const EVENT_SOURCE: &str = "anna-notify";

#[derive(Debug, Clone)]
pub struct EventBridgePublisher {
    client: aws_sdk_eventbridge::Client,
    bus: String,
}

impl EventBridgePublisher {
    pub fn new(client: aws_sdk_eventbridge::Client, bus: impl Into<String>) -> Self {
        Self {
            client,
            bus: bus.into(),
        }
    }

    async fn put(&self, event: &ConversationEvent) -> Result<(), PublishError> {
        let detail = serde_json::to_string(event)
            .map_err(|e| PublishError::Rejected(format!("encoding the event: {e}")))?;
        let entry = PutEventsRequestEntry::builder()
            .event_bus_name(&self.bus)
            .source(EVENT_SOURCE)
            .detail_type(event.kind.as_str())
            .detail(detail)
            .build();
        let output = self
            .client
            .put_events()
            .entries(entry)
            .send()
            .await
            .map_err(publish_error)?;
        if output.failed_entry_count() > 0 {
            let failure = output.entries().first();
            let code = failure.and_then(|e| e.error_code()).unwrap_or("Unknown");
            let message = failure.and_then(|e| e.error_message()).unwrap_or("");
            // Per-entry failures are throttling or internal errors far more often than not.
            return Err(PublishError::Unavailable(format!(
                "PutEvents entry failed: {code}: {message}"
            )));
        }
        Ok(())
    }
}

fn publish_error<E, R>(err: SdkError<E, R>) -> PublishError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    match &err {
        SdkError::ServiceError(service) => {
            let inner = service.err();
            let code = inner.code().unwrap_or("Unknown");
            let message = format!("PutEvents: {code}: {}", inner.message().unwrap_or(""));
            match code {
                "ThrottlingException" | "InternalException" | "ServiceUnavailable" => {
                    PublishError::Unavailable(message)
                }
                _ => PublishError::Rejected(message),
            }
        }
        SdkError::ConstructionFailure(_) => PublishError::Rejected(format!("PutEvents: {err}")),
        _ => PublishError::Unavailable(format!(
            "PutEvents: {}",
            aws_smithy_types::error::display::DisplayErrorContext(&err)
        )),
    }
}

impl EventPublisher for EventBridgePublisher {
    fn publish<'a>(&'a self, event: &'a ConversationEvent) -> PublishFuture<'a> {
        Box::pin(self.put(event))
    }
}
