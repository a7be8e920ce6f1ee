//! Operations on a dispatch's delivery that the API and the review share.

use crate::domain::dispatch::DispatchState;
use crate::domain::message::{MessageId, MessageRecord, MessageStatus};
use crate::error::Retryable;
use crate::ports::{DispatchStore, MessageStore, QueueError, SendQueue, Settlement, StoreError};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResumeOutcome {
    /// Back to `sending`; this many `queued` messages were queued again.
    Resumed { requeued: usize },
    /// The dispatch was not paused (its state, if it exists).
    NotPaused(Option<DispatchState>),
}

#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Queue(#[from] QueueError),
}

impl Retryable for DeliveryError {
    fn is_retryable(&self) -> bool {
        match self {
            Self::Store(e) => e.is_retryable(),
            Self::Queue(e) => e.is_retryable(),
        }
    }
}

/// Continues a paused dispatch from where it stopped. While paused, the sender acknowledged
/// the records of its messages and left them `queued`; here every such message gets a record
/// again. Messages already sent are not `queued`, and a record for a message that is no
/// longer `queued` is acknowledged without a send, so nobody is messaged twice.
pub async fn resume<S, Q>(
    store: &S,
    queue: &Q,
    dispatch_id: &str,
) -> Result<ResumeOutcome, DeliveryError>
where
    S: DispatchStore + MessageStore,
    Q: SendQueue,
{
    if !store.resume_dispatch(dispatch_id).await? {
        let state = store.get_dispatch(dispatch_id).await?.map(|d| d.state);
        return Ok(ResumeOutcome::NotPaused(state));
    }
    let queued: Vec<MessageId> = store
        .list_messages(dispatch_id)
        .await?
        .into_iter()
        .filter(|m| m.status == MessageStatus::Queued)
        .map(|m| m.id)
        .collect();
    queue.enqueue(&queued).await?;
    tracing::info!(dispatch_id, requeued = queued.len(), "dispatch resumed");
    Ok(ResumeOutcome::Resumed {
        requeued: queued.len(),
    })
}

/// What to do with a claim whose lease expired with no recorded outcome: the sender died, or
/// WhatsApp's answer was lost, so nobody knows whether the customer got the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum UnknownOutcomePolicy {
    /// Never risk a duplicate: the message fails as `unknown_outcome` (the default).
    #[default]
    AtMostOnce,
    /// Never risk a loss: the message is queued again and may reach the customer twice.
    AtLeastOnce,
}

impl std::str::FromStr for UnknownOutcomePolicy {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "at-most-once" => Ok(Self::AtMostOnce),
            "at-least-once" => Ok(Self::AtLeastOnce),
            other => Err(format!(
                "unknown policy {other:?} (expected at-most-once or at-least-once)"
            )),
        }
    }
}

/// Whether a `sending` message's claim ended more than `grace` before `now`: its sender
/// is gone, and WhatsApp's status webhooks had time to tell what happened.
pub fn claim_expired(
    message: &MessageRecord,
    now: chrono::DateTime<chrono::Utc>,
    grace: std::time::Duration,
) -> bool {
    let grace = chrono::Duration::from_std(grace).unwrap_or(chrono::Duration::MAX);
    message.status == MessageStatus::Sending
        && message
            .lease_until
            .as_deref()
            .and_then(|lease| chrono::DateTime::parse_from_rfc3339(lease).ok())
            .is_none_or(|lease| {
                lease
                    .with_timezone(&chrono::Utc)
                    .checked_add_signed(grace)
                    .is_some_and(|end| end < now)
            })
}

/// Settles one expired claim by `policy`. Conditional on the claim (status and attempt), so
/// a sender that wakes up late, or a second review running at once, cannot resolve it twice.
/// Returns the status it now has, or `None` when someone else resolved it first.
pub async fn resolve_claim<S, Q>(
    store: &S,
    queue: &Q,
    message: &MessageRecord,
    policy: UnknownOutcomePolicy,
) -> Result<Option<MessageStatus>, DeliveryError>
where
    S: MessageStore,
    Q: SendQueue,
{
    let (settlement, status) = match policy {
        UnknownOutcomePolicy::AtMostOnce => (
            Settlement::Failed {
                reason_code: "unknown_outcome".to_owned(),
                reason: "WhatsApp's answer to the send was lost and no status confirmed it; \
                         not sent again, to never message the customer twice"
                    .to_owned(),
                error_code: None,
                error_detail: None,
            },
            MessageStatus::Failed,
        ),
        UnknownOutcomePolicy::AtLeastOnce => (
            Settlement::Retry {
                reason: "outcome unknown; queued again (at-least-once)".to_owned(),
                error_code: None,
            },
            MessageStatus::Queued,
        ),
    };
    if !store.settle(message, &settlement).await? {
        return Ok(None);
    }
    if policy == UnknownOutcomePolicy::AtLeastOnce {
        queue.enqueue(std::slice::from_ref(&message.id)).await?;
    }
    tracing::warn!(message_id = %message.id, ?policy, "unknown outcome resolved");
    Ok(Some(status))
}

/// Resolves every expired claim of one dispatch; returns how many were resolved.
pub async fn resolve_expired_claims<S, Q>(
    store: &S,
    queue: &Q,
    dispatch_id: &str,
    now: chrono::DateTime<chrono::Utc>,
    grace: std::time::Duration,
    policy: UnknownOutcomePolicy,
) -> Result<usize, DeliveryError>
where
    S: MessageStore,
    Q: SendQueue,
{
    let mut resolved = 0;
    for message in store.list_messages(dispatch_id).await? {
        if claim_expired(&message, now, grace)
            && resolve_claim(store, queue, &message, policy)
                .await?
                .is_some()
        {
            resolved += 1;
        }
    }
    Ok(resolved)
}
