//! Publishing conversation events to the attendance side.
//!
//! Every event is stored first (and listed by `GET /v1/events`); publishing is on top of
//! that. On AWS an EventBridge implementation goes behind [`EventPublisher`] when a bus is
//! configured; without one, [`StoredOnly`] publishes nothing and the stored list is the feed.

use std::future::Future;
use std::pin::Pin;

use crate::domain::conversation::ConversationEvent;
use crate::error::Retryable;

#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// Throttling, timeouts, 5xx: the webhook answers 503 and Meta delivers it again.
    #[error("event bus unavailable: {0}")]
    Unavailable(String),
    #[error("event bus refused the event: {0}")]
    Rejected(String),
}

impl Retryable for PublishError {
    fn is_retryable(&self) -> bool {
        matches!(self, Self::Unavailable(_))
    }
}

pub type PublishFuture<'a> = Pin<Box<dyn Future<Output = Result<(), PublishError>> + Send + 'a>>;

/// Where conversation events go besides the store. Boxed futures keep it usable as
/// `dyn EventPublisher`, so main.rs picks the implementation at start-up.
///
/// Delivery is at least once: an event may be published again with the same `id` when a
/// webhook is redelivered, so consumers deduplicate by `id`.
pub trait EventPublisher: Send + Sync {
    fn publish<'a>(&'a self, event: &'a ConversationEvent) -> PublishFuture<'a>;
}

/// No bus: events are only stored.
#[derive(Debug, Clone, Copy, Default)]
pub struct StoredOnly;

impl EventPublisher for StoredOnly {
    fn publish<'a>(&'a self, _event: &'a ConversationEvent) -> PublishFuture<'a> {
        Box::pin(async { Ok(()) })
    }
}
