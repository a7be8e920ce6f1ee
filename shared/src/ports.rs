//! The narrow capabilities the handlers need, one trait each, implemented once for the real
//! service in [`crate::aws`] and [`crate::whatsapp`]. Handlers are generic over them so a unit
//! test or a benchmark can put an in-memory implementation behind the same code.

use std::future::Future;
use std::time::Duration;

use crate::domain::dispatch::{Dispatch, DispatchState, IntakeSummary};
use crate::domain::message::{MessageId, MessageRecord, MessageStatus};
use crate::domain::template::Template;
use crate::error::Retryable;
use crate::whatsapp::client::{SendAccepted, SendError};

/// A failure talking to the message store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Throttling, timeouts, 5xx: trying again later can succeed.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// A request the store will never accept as it is (validation, missing table, bad item).
    #[error("store rejected the request: {0}")]
    Rejected(String),
    /// An item in the store that this code cannot read.
    #[error("corrupt item {key}: {why}")]
    Corrupt { key: String, why: String },
}

impl Retryable for StoreError {
    fn is_retryable(&self) -> bool {
        matches!(self, Self::Unavailable(_))
    }
}

/// What happened when a dispatch was created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Created {
    New,
    /// A dispatch with this id already existed (a redelivered event); here it is.
    Existing(Box<Dispatch>),
}

pub trait DispatchStore: Send + Sync {
    /// Creates the dispatch unless one with its id exists.
    fn create_dispatch(
        &self,
        dispatch: &Dispatch,
    ) -> impl Future<Output = Result<Created, StoreError>> + Send;

    fn get_dispatch(
        &self,
        id: &str,
    ) -> impl Future<Output = Result<Option<Dispatch>, StoreError>> + Send;

    /// Records what intake found and moves the dispatch from `intake` to `sending`
    /// (or straight to `completed` when nothing was accepted).
    fn finish_intake(
        &self,
        id: &str,
        summary: &IntakeSummary,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Stops a sending dispatch on an error that makes every further send pointless.
    /// Returns false when it was not `sending` (already paused, cancelled, finished).
    fn pause_dispatch(
        &self,
        id: &str,
        reason: &str,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// `paused → sending`. Returns false when the dispatch was not paused.
    fn resume_dispatch(&self, id: &str) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// The input could not be used at all: the dispatch fails with `reason`.
    fn fail_dispatch(
        &self,
        id: &str,
        reason: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// How [`MessageStore::put_messages`] treats items that may already exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteMode {
    /// A dispatch just created: nothing can exist yet, write in bulk.
    Fresh,
    /// A dispatch whose intake was interrupted: keep every item that is already there, since
    /// its message may have been sent meanwhile.
    KeepExisting,
}

/// The result of trying to claim a message for sending.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// Ours to send, under a lease; `attempts` already counts this attempt.
    Claimed(Box<MessageRecord>),
    /// Already past `sending` (or rejected): acknowledge without sending.
    AlreadyFinal(MessageStatus),
    /// Another sender holds a live lease on it.
    InFlight,
    /// No such message.
    Missing,
}

/// How a claimed message's send attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Settlement {
    Sent {
        wamid: String,
        wa_id: Option<String>,
    },
    Failed {
        reason_code: String,
        reason: String,
        error_code: Option<i64>,
        error_detail: Option<String>,
    },
    /// Not sent on purpose (dispatch failed or cancelled, number opted out).
    Skipped { reason_code: String, reason: String },
    /// Back to `queued` for another attempt; the error is kept so an eventual
    /// `attempts_exhausted` failure can say what kept going wrong.
    Retry {
        reason: String,
        error_code: Option<i64>,
    },
    /// Back to `queued` without spending an attempt: the message was never offered to
    /// WhatsApp (its dispatch is paused).
    Release { reason: String },
    /// WhatsApp may or may not have accepted it (the answer was lost). Nothing is written: the
    /// claim is left to expire and the review resolves it from the status webhooks.
    Unknown,
}

pub trait MessageStore: Send + Sync {
    fn put_messages(
        &self,
        messages: &[MessageRecord],
        mode: WriteMode,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// `queued → sending` with a lease, conditionally, so two senders never both get it.
    fn claim(
        &self,
        id: &MessageId,
        lease: Duration,
    ) -> impl Future<Output = Result<Claim, StoreError>> + Send;

    /// Records the outcome of a claimed attempt. Returns false when the claim was no longer
    /// ours (its lease expired and someone else resolved it); nothing is written then.
    fn settle(
        &self,
        claimed: &MessageRecord,
        settlement: &Settlement,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    fn get_message(
        &self,
        id: &MessageId,
    ) -> impl Future<Output = Result<Option<MessageRecord>, StoreError>> + Send;

    /// Every message of a dispatch, ordered by row.
    fn list_messages(
        &self,
        dispatch_id: &str,
    ) -> impl Future<Output = Result<Vec<MessageRecord>, StoreError>> + Send;
}

#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("queue unavailable: {0}")]
    Unavailable(String),
    #[error("queue rejected the request: {0}")]
    Rejected(String),
}

impl Retryable for QueueError {
    fn is_retryable(&self) -> bool {
        matches!(self, Self::Unavailable(_))
    }
}

/// The queue the sender consumes.
pub trait SendQueue: Send + Sync {
    fn enqueue(&self, ids: &[MessageId]) -> impl Future<Output = Result<(), QueueError>> + Send;

    /// Keeps a received record invisible for `by` from now: how a retry is backed off
    /// (the record returns when the delay ends, not after the queue's default timeout).
    fn delay_record(
        &self,
        receipt_handle: &str,
        by: Duration,
    ) -> impl Future<Output = Result<(), QueueError>> + Send;

    /// A fresh record for `id`, delivered after `after` (SQS delays a new record by at most
    /// 15 minutes, so a longer wait is cut to that): how a retry continues when its own record
    /// cannot carry it (received as often as the queue allows before the DLQ, or its delay
    /// refused because it is gone).
    fn enqueue_after(
        &self,
        id: &MessageId,
        after: Duration,
    ) -> impl Future<Output = Result<(), QueueError>> + Send;
}

/// An object read from the uploads bucket.
#[derive(Debug, Clone)]
pub struct StoredObject {
    pub bytes: Vec<u8>,
    /// The version id, or the ETag where versioning is off: what makes this upload unique.
    pub version: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ObjectError {
    #[error("the object no longer exists")]
    NotFound,
    #[error("the file is {size} bytes; the limit is {max} bytes")]
    TooLarge { size: u64, max: u64 },
    #[error("object store unavailable: {0}")]
    Unavailable(String),
    #[error("object store refused the request: {0}")]
    Rejected(String),
}

impl Retryable for ObjectError {
    fn is_retryable(&self) -> bool {
        matches!(self, Self::Unavailable(_))
    }
}

pub trait ObjectStore: Send + Sync {
    /// Reads a whole object, refusing before download when it is larger than `max_bytes`.
    fn fetch(
        &self,
        bucket: &str,
        key: &str,
        max_bytes: u64,
    ) -> impl Future<Output = Result<StoredObject, ObjectError>> + Send;
}

/// The WhatsApp Cloud API as the handlers use it.
pub trait WhatsApp: Send + Sync {
    fn send(
        &self,
        payload: &serde_json::Value,
    ) -> impl Future<Output = Result<SendAccepted, SendError>> + Send;

    /// An approved or unapproved template by name and language, from a cached catalog.
    fn template(
        &self,
        name: &str,
        language: &str,
    ) -> impl Future<Output = Result<Option<Template>, SendError>> + Send;

    /// Forgets cached templates, so the next lookup sees WhatsApp's current statuses (the
    /// review does this before checking for paused or disabled templates).
    fn refresh_templates(&self) -> impl Future<Output = ()> + Send {
        async {}
    }
}

/// A dispatch with work due at a time: a `scheduled` dispatch whose `send_at` is `due_at`, or a
/// cancelled or paused one whose unqueued messages still have to be marked `skipped`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduleEntry {
    pub dispatch_id: String,
    /// RFC 3339 UTC, milliseconds (the form [`crate::aws::dynamo::now_rfc3339`] writes).
    pub due_at: String,
}

/// One page of the `queued` messages of one message shard of a dispatch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueuedPage {
    pub ids: Vec<MessageId>,
    /// Where the next page of this shard starts (the last row read), if there is one.
    pub next: Option<u32>,
}

/// What cancelling a dispatch found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CancelOutcome {
    /// Now `cancelled`; it was in `previous`.
    Cancelled {
        previous: DispatchState,
    },
    /// It was cancelled before.
    AlreadyCancelled,
    /// It had already finished (`completed` or `failed`): nothing to cancel.
    Finished(DispatchState),
    Missing,
}

/// Scheduling, releasing and cancelling dispatches.
pub trait ScheduleStore: Send + Sync {
    /// Like [`DispatchStore::finish_intake`], but holds the dispatch in `scheduled` until
    /// `send_at`, atomically with its schedule entry. Returns false when the dispatch was no
    /// longer in `intake` (cancelled meanwhile, or finished by another run).
    fn finish_intake_scheduled(
        &self,
        id: &str,
        summary: &IntakeSummary,
        send_at: &str,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Entries due at or before `now`, oldest first.
    fn due_entries(
        &self,
        now: &str,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<ScheduleEntry>, StoreError>> + Send;

    fn put_entry(
        &self,
        entry: &ScheduleEntry,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    fn remove_entry(
        &self,
        entry: &ScheduleEntry,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The `queued` messages of message shard `shard` after row `after`, a page at a time.
    fn queued_page(
        &self,
        dispatch_id: &str,
        shard: u32,
        after: Option<u32>,
    ) -> impl Future<Output = Result<QueuedPage, StoreError>> + Send;

    /// `scheduled → sending`; false when the dispatch was not `scheduled`.
    fn begin_sending(&self, id: &str) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Any state but `completed`, `failed` and `cancelled` → `cancelled`.
    fn cancel_dispatch(
        &self,
        id: &str,
    ) -> impl Future<Output = Result<CancelOutcome, StoreError>> + Send;

    /// `queued → skipped` for each message still `queued` (conditionally: one a sender has
    /// claimed meanwhile is left to it), counted in the dispatch's counters. Returns how many
    /// were skipped.
    fn skip_queued(
        &self,
        ids: &[MessageId],
        reason_code: &str,
        reason: &str,
    ) -> impl Future<Output = Result<u32, StoreError>> + Send;
}

/// A number on the suppression list: later sends to it are `skipped (opted out)` before any
/// call to WhatsApp.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OptOut {
    /// [`crate::domain::phone::match_key`] of the number, so the `wa_id` with or without
    /// Brazil's ninth digit and the full number are one entry.
    pub key: String,
    /// The number as it was given or seen (E.164, or the `wa_id`).
    pub phone: String,
    /// `keyword`, `button`, `whatsapp_131050` or `operator`.
    pub source: String,
    /// What the customer wrote, or the operator's note.
    pub detail: Option<String>,
    pub created_at: String,
}

pub trait OptOutStore: Send + Sync {
    /// Whether `phone` (E.164, digits or a `wa_id`) is on the suppression list.
    fn is_opted_out(&self, phone: &str) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Puts a number on the list; false when it already was (the first entry is kept).
    fn add_opt_out(
        &self,
        opt_out: &OptOut,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
}
