//! Scheduled sends and cancelling, shared by the API, the review and the local runner.
//!
//! A dispatch with a future `send_at` stays `scheduled` with its messages recorded `queued`
//! but not on the send queue. [`release_due_dispatches`] — called by the review on AWS and on
//! a timer by `anna-local run` — queues them when they are due and moves the dispatch to
//! `sending`. Cancelling ([`cancel`]) moves a dispatch to `cancelled`: messages the sender has
//! records for are skipped when it claims them; messages nobody will ever claim (of a
//! scheduled or paused dispatch) are marked `skipped` here, at once when there are few, or by
//! the next release run otherwise.

use crate::domain::dispatch::{Dispatch, DispatchState};
use crate::error::Retryable;
use crate::ports::{
    CancelOutcome, DispatchStore, QueueError, ScheduleEntry, ScheduleStore, SendQueue, StoreError,
};

/// The reason code and text of a message not sent because its dispatch was cancelled (the
/// sender records the same).
pub const CANCELLED_CODE: &str = "cancelled";
pub const CANCELLED_REASON: &str = "the dispatch was cancelled before this message was sent";

/// Entries handled per call of [`release_due_dispatches`]; the rest wait for the next call.
const ENTRIES_PER_RUN: usize = 25;

#[derive(Debug, thiserror::Error)]
pub enum ScheduleError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Queue(#[from] QueueError),
}

impl Retryable for ScheduleError {
    fn is_retryable(&self) -> bool {
        match self {
            Self::Store(e) => e.is_retryable(),
            Self::Queue(e) => e.is_retryable(),
        }
    }
}

/// What one [`release_due_dispatches`] run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReleaseReport {
    /// Dispatches moved from `scheduled` to `sending`.
    pub released: Vec<String>,
    /// Messages put on the send queue.
    pub queued: usize,
    /// Messages of cancelled dispatches marked `skipped`.
    pub skipped: u32,
}

/// Handles every schedule entry due at `now` (RFC 3339 UTC, as
/// [`crate::aws::dynamo::now_rfc3339`] writes it): a scheduled dispatch has its `queued`
/// messages put on the send queue and moves to `sending`; a cancelled one has them marked
/// `skipped`. Safe to run concurrently and again after a crash: the messages are queued before
/// the dispatch moves and the entry goes last, and a message queued twice is sent once.
pub async fn release_due_dispatches<S, Q>(
    store: &S,
    queue: &Q,
    now: &str,
) -> Result<ReleaseReport, ScheduleError>
where
    S: ScheduleStore + DispatchStore,
    Q: SendQueue,
{
    let mut report = ReleaseReport::default();
    for entry in store.due_entries(now, ENTRIES_PER_RUN).await? {
        let dispatch = store.get_dispatch(&entry.dispatch_id).await?;
        match dispatch.map(|d| d.state) {
            Some(DispatchState::Scheduled) => {
                report.queued += enqueue_queued(store, queue, &entry.dispatch_id).await?;
                if store.begin_sending(&entry.dispatch_id).await? {
                    tracing::info!(dispatch_id = %entry.dispatch_id, "scheduled dispatch released");
                    report.released.push(entry.dispatch_id.clone());
                }
            }
            Some(DispatchState::Cancelled) => {
                report.skipped += skip_all_queued(store, &entry.dispatch_id).await?;
            }
            // Still being read: its entry is written when intake ends, so this is an entry
            // from a run that will finish it; look again next time.
            Some(DispatchState::Intake) => continue,
            // Released by an earlier run that stopped before removing the entry, or gone.
            _ => {}
        }
        store.remove_entry(&entry).await?;
    }
    Ok(report)
}

/// Puts every `queued` message of a dispatch on the send queue; returns how many.
pub async fn enqueue_queued<S, Q>(
    store: &S,
    queue: &Q,
    dispatch_id: &str,
) -> Result<usize, ScheduleError>
where
    S: ScheduleStore,
    Q: SendQueue,
{
    let mut total = 0;
    for shard in 0..crate::aws::dynamo::MESSAGE_SHARDS {
        let mut after = None;
        loop {
            let page = store.queued_page(dispatch_id, shard, after).await?;
            if !page.ids.is_empty() {
                queue.enqueue(&page.ids).await?;
                total += page.ids.len();
            }
            match page.next {
                Some(next) => after = Some(next),
                None => break,
            }
        }
    }
    Ok(total)
}

/// Marks every still-`queued` message of a cancelled dispatch `skipped (cancelled)`.
pub async fn skip_all_queued<S>(store: &S, dispatch_id: &str) -> Result<u32, ScheduleError>
where
    S: ScheduleStore,
{
    let mut total = 0;
    for shard in 0..crate::aws::dynamo::MESSAGE_SHARDS {
        let mut after = None;
        loop {
            let page = store.queued_page(dispatch_id, shard, after).await?;
            if !page.ids.is_empty() {
                total += store
                    .skip_queued(&page.ids, CANCELLED_CODE, CANCELLED_REASON)
                    .await?;
            }
            match page.next {
                Some(next) => after = Some(next),
                None => break,
            }
        }
    }
    Ok(total)
}

/// What [`cancel`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cancelled {
    /// Cancelled now. `skipped` messages were marked at once; `deferred` is true when the
    /// rest are left to the sender (it skips them as it claims them) or to the next release run.
    Now {
        dispatch: Box<Dispatch>,
        previous: DispatchState,
        skipped: u32,
        deferred: bool,
    },
    Already(Box<Dispatch>),
    /// Completed or failed before: nothing to cancel.
    Finished(Box<Dispatch>),
    Missing,
}

/// Cancels a dispatch. Messages not yet claimed end `skipped` with reason `cancelled`: when
/// the dispatch has at most `inline_limit` accepted messages they are marked here and now;
/// otherwise those of a `sending` dispatch are skipped by the sender as it claims their
/// records, and those nobody will claim (a `scheduled` or `paused` dispatch has no records on
/// the queue) by the next [`release_due_dispatches`] run.
pub async fn cancel<S>(
    store: &S,
    id: &str,
    now: &str,
    inline_limit: u32,
) -> Result<Cancelled, ScheduleError>
where
    S: ScheduleStore + DispatchStore,
{
    let outcome = store.cancel_dispatch(id).await?;
    let current = || async {
        store.get_dispatch(id).await?.ok_or_else(|| {
            StoreError::Unavailable(format!("dispatch {id} vanished while cancelled"))
        })
    };
    let previous = match outcome {
        CancelOutcome::Missing => return Ok(Cancelled::Missing),
        CancelOutcome::AlreadyCancelled => {
            return Ok(Cancelled::Already(Box::new(current().await?)));
        }
        CancelOutcome::Finished(_) => return Ok(Cancelled::Finished(Box::new(current().await?))),
        CancelOutcome::Cancelled { previous } => previous,
    };
    let dispatch = current().await?;
    let unclaimable = matches!(previous, DispatchState::Scheduled | DispatchState::Paused);
    let scheduled_entry = match (&dispatch.send_at, previous) {
        (Some(send_at), DispatchState::Scheduled) => Some(ScheduleEntry {
            dispatch_id: id.to_owned(),
            due_at: send_at.clone(),
        }),
        _ => None,
    };
    let (skipped, deferred) = if dispatch.accepted <= inline_limit {
        (skip_all_queued(store, id).await?, false)
    } else if unclaimable {
        store
            .put_entry(&ScheduleEntry {
                dispatch_id: id.to_owned(),
                due_at: now.to_owned(),
            })
            .await?;
        (0, true)
    } else {
        (0, true)
    };
    if let Some(entry) = scheduled_entry
        && entry.due_at != now
    {
        store.remove_entry(&entry).await?;
    }
    tracing::info!(dispatch_id = id, %previous, skipped, deferred, "dispatch cancelled");
    Ok(Cancelled::Now {
        dispatch: Box::new(dispatch),
        previous,
        skipped,
        deferred,
    })
}
