//! In-memory implementations of the ports, for the scenarios where the local stack (moto)
//! rather than our code would set the figure. They keep the semantics the handlers rely on
//! (conditional claim, settle only while the claim is ours, create-if-absent) so the handler
//! code runs the same paths it runs against DynamoDB; they do no I/O.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use anna_shared::domain::dispatch::{Dispatch, DispatchState, IntakeSummary};
use anna_shared::domain::message::{MessageId, MessageRecord, MessageStatus};
use anna_shared::domain::template::Template;
use anna_shared::ports::{
    Claim, Created, DispatchStore, MessageStore, ObjectError, ObjectStore, OptOut, OptOutStore,
    QueueError, SendQueue, Settlement, StoreError, StoredObject, WhatsApp, WriteMode,
};
use anna_shared::whatsapp::client::{SendAccepted, SendError};
use chrono::{SecondsFormat, Utc};

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn now() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// DispatchStore + MessageStore in memory. With `keep_messages` false, written messages are
/// only counted (a 1,000,000-row intake must not measure the fake's own memory).
#[derive(Clone, Default)]
pub struct MemStore {
    inner: Arc<StoreInner>,
}

#[derive(Default)]
struct StoreInner {
    keep_messages: bool,
    dispatches: Mutex<HashMap<String, Dispatch>>,
    messages: Mutex<HashMap<MessageId, MessageRecord>>,
    /// (dispatch, status) → settled count, like the sharded counters summed.
    counters: Mutex<HashMap<(String, MessageStatus), i64>>,
    written: AtomicU64,
}

impl MemStore {
    /// A store that keeps every message (the sender's scenarios).
    pub fn keeping() -> Self {
        Self {
            inner: Arc::new(StoreInner {
                keep_messages: true,
                ..StoreInner::default()
            }),
        }
    }

    /// A store that counts written messages and forgets them (intake scenarios).
    pub fn counting() -> Self {
        Self::default()
    }

    pub fn written(&self) -> u64 {
        self.inner.written.load(Ordering::Relaxed)
    }

    /// Settled counts of a dispatch by status, as `DynamoStore::settled_counts` gives them.
    pub fn settled_counts(&self, dispatch_id: &str) -> HashMap<String, i64> {
        lock(&self.inner.counters)
            .iter()
            .filter(|((d, _), _)| d == dispatch_id)
            .map(|((_, status), n)| (status.as_str().to_owned(), *n))
            .collect()
    }

    /// Adds `n` to a settled counter (to stand for a dispatch already under way).
    pub fn add_settled(&self, dispatch_id: &str, status: MessageStatus, n: i64) {
        *lock(&self.inner.counters)
            .entry((dispatch_id.to_owned(), status))
            .or_insert(0) += n;
    }

    pub fn put_dispatch(&self, dispatch: Dispatch) {
        lock(&self.inner.dispatches).insert(dispatch.id.clone(), dispatch);
    }

    fn set_state(&self, id: &str, from: &[DispatchState], to: DispatchState) -> bool {
        let mut dispatches = lock(&self.inner.dispatches);
        match dispatches.get_mut(id) {
            Some(d) if from.contains(&d.state) => {
                d.state = to;
                d.updated_at = now();
                true
            }
            _ => false,
        }
    }
}

impl DispatchStore for MemStore {
    async fn create_dispatch(&self, dispatch: &Dispatch) -> Result<Created, StoreError> {
        let mut dispatches = lock(&self.inner.dispatches);
        if let Some(existing) = dispatches.get(&dispatch.id) {
            return Ok(Created::Existing(Box::new(existing.clone())));
        }
        dispatches.insert(dispatch.id.clone(), dispatch.clone());
        Ok(Created::New)
    }

    async fn get_dispatch(&self, id: &str) -> Result<Option<Dispatch>, StoreError> {
        Ok(lock(&self.inner.dispatches).get(id).cloned())
    }

    async fn finish_intake(&self, id: &str, summary: &IntakeSummary) -> Result<(), StoreError> {
        let mut dispatches = lock(&self.inner.dispatches);
        if let Some(d) = dispatches.get_mut(id)
            && d.state == DispatchState::Intake
        {
            d.state = if summary.accepted == 0 {
                DispatchState::Completed
            } else {
                DispatchState::Sending
            };
            d.columns = summary.columns.clone();
            d.rows = summary.rows;
            d.accepted = summary.accepted;
            d.rejected = summary.rejected;
            d.updated_at = now();
        }
        Ok(())
    }

    async fn pause_dispatch(&self, id: &str, reason: &str) -> Result<bool, StoreError> {
        let paused = self.set_state(id, &[DispatchState::Sending], DispatchState::Paused);
        if paused && let Some(d) = lock(&self.inner.dispatches).get_mut(id) {
            d.reason = Some(reason.to_owned());
        }
        Ok(paused)
    }

    async fn resume_dispatch(&self, id: &str) -> Result<bool, StoreError> {
        Ok(self.set_state(id, &[DispatchState::Paused], DispatchState::Sending))
    }

    async fn fail_dispatch(&self, id: &str, reason: &str) -> Result<(), StoreError> {
        if self.set_state(id, &[DispatchState::Intake], DispatchState::Failed)
            && let Some(d) = lock(&self.inner.dispatches).get_mut(id)
        {
            d.reason = Some(reason.to_owned());
        }
        Ok(())
    }
}

/// Nobody in a benchmark has opted out; the in-memory check answers at once.
impl OptOutStore for MemStore {
    async fn is_opted_out(&self, _phone: &str) -> Result<bool, StoreError> {
        Ok(false)
    }

    async fn add_opt_out(&self, _opt_out: &OptOut) -> Result<bool, StoreError> {
        Ok(true)
    }
}

impl MessageStore for MemStore {
    async fn put_messages(
        &self,
        messages: &[MessageRecord],
        mode: WriteMode,
    ) -> Result<(), StoreError> {
        self.inner
            .written
            .fetch_add(messages.len() as u64, Ordering::Relaxed);
        if !self.inner.keep_messages {
            return Ok(());
        }
        let mut stored = lock(&self.inner.messages);
        for message in messages {
            match mode {
                WriteMode::Fresh => {
                    stored.insert(message.id.clone(), message.clone());
                }
                WriteMode::KeepExisting => {
                    stored
                        .entry(message.id.clone())
                        .or_insert_with(|| message.clone());
                }
            }
        }
        Ok(())
    }

    async fn claim(&self, id: &MessageId, lease: Duration) -> Result<Claim, StoreError> {
        let mut stored = lock(&self.inner.messages);
        let Some(message) = stored.get_mut(id) else {
            return Ok(Claim::Missing);
        };
        match message.status {
            MessageStatus::Queued => {
                let at = Utc::now();
                let until =
                    at + chrono::Duration::from_std(lease).unwrap_or(chrono::Duration::seconds(60));
                message.status = MessageStatus::Sending;
                message.attempts += 1;
                message.lease_until = Some(until.to_rfc3339_opts(SecondsFormat::Millis, true));
                message.updated_at = at.to_rfc3339_opts(SecondsFormat::Millis, true);
                Ok(Claim::Claimed(Box::new(message.clone())))
            }
            MessageStatus::Sending => Ok(Claim::InFlight),
            status => Ok(Claim::AlreadyFinal(status)),
        }
    }

    async fn settle(
        &self,
        claimed: &MessageRecord,
        settlement: &Settlement,
    ) -> Result<bool, StoreError> {
        let counted = {
            let mut stored = lock(&self.inner.messages);
            let Some(message) = stored.get_mut(&claimed.id) else {
                return Ok(false);
            };
            if message.status != MessageStatus::Sending || message.attempts != claimed.attempts {
                return Ok(false);
            }
            let at = now();
            message.updated_at = at.clone();
            message.lease_until = None;
            match settlement {
                Settlement::Sent { wamid, wa_id } => {
                    message.status = MessageStatus::Sent;
                    message.wamid = Some(wamid.clone());
                    message.wa_id = wa_id.clone();
                    message.sent_at = Some(at);
                    Some(MessageStatus::Sent)
                }
                Settlement::Failed {
                    reason_code,
                    reason,
                    error_code,
                    error_detail,
                } => {
                    message.status = MessageStatus::Failed;
                    message.reason_code = Some(reason_code.clone());
                    message.reason = Some(reason.clone());
                    message.error_code = *error_code;
                    message.error_detail = error_detail.clone();
                    message.failed_at = Some(at);
                    Some(MessageStatus::Failed)
                }
                Settlement::Skipped {
                    reason_code,
                    reason,
                } => {
                    message.status = MessageStatus::Skipped;
                    message.reason_code = Some(reason_code.clone());
                    message.reason = Some(reason.clone());
                    Some(MessageStatus::Skipped)
                }
                Settlement::Unknown => {
                    // Nothing is written: the claim stays until its lease ends.
                    message.lease_until = claimed.lease_until.clone();
                    return Ok(true);
                }
                // Retry, Release and anything added later: back to `queued`.
                _ => {
                    message.status = MessageStatus::Queued;
                    None
                }
            }
        };
        if let Some(status) = counted {
            self.add_settled(&claimed.id.dispatch_id, status, 1);
        }
        Ok(true)
    }

    async fn get_message(&self, id: &MessageId) -> Result<Option<MessageRecord>, StoreError> {
        Ok(lock(&self.inner.messages).get(id).cloned())
    }

    async fn list_messages(&self, dispatch_id: &str) -> Result<Vec<MessageRecord>, StoreError> {
        let mut messages: Vec<MessageRecord> = lock(&self.inner.messages)
            .values()
            .filter(|m| m.id.dispatch_id == dispatch_id)
            .cloned()
            .collect();
        messages.sort_by_key(|m| m.id.row);
        Ok(messages)
    }
}

/// The send queue in memory: records in a FIFO the emulated event source pops from, plus the
/// moment the first one arrived (the fan-out figure).
#[derive(Clone)]
pub struct MemQueue {
    inner: Arc<QueueInner>,
}

struct QueueInner {
    keep: bool,
    since: Instant,
    first: OnceLock<Duration>,
    enqueued: AtomicU64,
    records: Mutex<std::collections::VecDeque<MessageId>>,
}

impl MemQueue {
    /// `keep`: hold the records for a consumer; otherwise only count them.
    pub fn new(keep: bool) -> Self {
        Self {
            inner: Arc::new(QueueInner {
                keep,
                since: Instant::now(),
                first: OnceLock::new(),
                enqueued: AtomicU64::new(0),
                records: Mutex::new(std::collections::VecDeque::new()),
            }),
        }
    }

    /// When the first record arrived, as an instant.
    pub fn first_at(&self) -> Option<Instant> {
        self.inner.first.get().map(|d| self.inner.since + *d)
    }

    pub fn enqueued(&self) -> u64 {
        self.inner.enqueued.load(Ordering::Relaxed)
    }

    /// Up to `max` records from the front.
    pub fn pop(&self, max: usize) -> Vec<MessageId> {
        let mut records = lock(&self.inner.records);
        let n = max.min(records.len());
        records.drain(..n).collect()
    }

    /// Puts records back (a failed batch item comes back later).
    pub fn push_back(&self, ids: impl IntoIterator<Item = MessageId>) {
        lock(&self.inner.records).extend(ids);
    }

    pub fn len(&self) -> usize {
        lock(&self.inner.records).len()
    }
}

impl SendQueue for MemQueue {
    async fn enqueue(&self, ids: &[MessageId]) -> Result<(), QueueError> {
        if ids.is_empty() {
            return Ok(());
        }
        self.inner.first.get_or_init(|| self.inner.since.elapsed());
        self.inner
            .enqueued
            .fetch_add(ids.len() as u64, Ordering::Relaxed);
        if self.inner.keep {
            lock(&self.inner.records).extend(ids.iter().cloned());
        }
        Ok(())
    }

    async fn delay_record(&self, _receipt_handle: &str, _by: Duration) -> Result<(), QueueError> {
        // The emulated event source puts failed records back itself.
        Ok(())
    }

    async fn enqueue_after(&self, id: &MessageId, _after: Duration) -> Result<(), QueueError> {
        self.enqueue(std::slice::from_ref(id)).await
    }
}

/// One object, held in memory and handed over without a copy on the first fetch (as the
/// Lambda holds the one copy it downloaded).
#[derive(Clone)]
pub struct MemObjects {
    bytes: Arc<Mutex<Option<Vec<u8>>>>,
    version: String,
}

impl MemObjects {
    pub fn new(bytes: Vec<u8>, version: impl Into<String>) -> Self {
        Self {
            bytes: Arc::new(Mutex::new(Some(bytes))),
            version: version.into(),
        }
    }
}

impl ObjectStore for MemObjects {
    async fn fetch(
        &self,
        _bucket: &str,
        _key: &str,
        max_bytes: u64,
    ) -> Result<StoredObject, ObjectError> {
        let bytes = lock(&self.bytes).take().ok_or(ObjectError::NotFound)?;
        if bytes.len() as u64 > max_bytes {
            return Err(ObjectError::TooLarge {
                size: bytes.len() as u64,
                max: max_bytes,
            });
        }
        Ok(StoredObject {
            bytes,
            version: self.version.clone(),
        })
    }
}

/// WhatsApp with a fixed template catalogue (wa-sim's fixtures) and no sends, for intake.
#[derive(Clone)]
pub struct StaticWhatsApp {
    templates: Arc<Vec<Template>>,
}

impl StaticWhatsApp {
    pub fn with_sim_templates() -> anyhow::Result<Self> {
        let templates = wa_sim::default_templates()
            .iter()
            .map(Template::from_graph)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| anyhow::anyhow!("wa-sim template fixture: {e}"))?;
        Ok(Self {
            templates: Arc::new(templates),
        })
    }
}

impl WhatsApp for StaticWhatsApp {
    async fn send(&self, _payload: &serde_json::Value) -> Result<SendAccepted, SendError> {
        Err(SendError::Connect(
            "intake benchmarks send nothing".to_owned(),
        ))
    }

    async fn template(&self, name: &str, language: &str) -> Result<Option<Template>, SendError> {
        Ok(self
            .templates
            .iter()
            .find(|t| t.name == name && t.language == language)
            .cloned())
    }
}
