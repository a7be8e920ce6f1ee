//! The one DynamoDB table (DESIGN.md section 4).
//!
//! | item          | pk                        | sk                  |
//! |---------------|---------------------------|---------------------|
//! | dispatch      | `D#<dispatch>`            | `META`              |
//! | counter shard | `D#<dispatch>`            | `COUNT#<nn>`        |
//! | message       | `D#<dispatch>#<row % 16>` | `R#<row, 10 digits>`|
//! | conversation  | `C#<match key>`           | `CONV`              |
//! | its messages  | `C#<match key>`           | `M#<at>#<wamid>`    |
//! | event         | `EV#<event id>`           | `EVENT`             |
//! | opt-out       | `OPTOUT#<match key>`      | `OPTOUT`            |
//!
//! Messages are spread over 16 partitions per dispatch so a dispatch sent at 1,000 msg/s with
//! status webhooks never overloads one partition. The sparse `by-wamid` index finds a message
//! from a webhook; `by-created` lists dispatches newest first, and with other partition values
//! (`CONV#<state>`, `EVENT#<type>`, `OPTOUT`) conversations, events and opt-outs
//! (`shared/src/aws/conversations.rs`).

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::{AttributeValue, PutRequest, ReturnValue, WriteRequest};
use chrono::{SecondsFormat, Utc};
use futures::{StreamExt, TryStreamExt, stream};
use serde::{Deserialize, Serialize};

use crate::config::StoreConfig;
use crate::domain::dispatch::{Dispatch, DispatchSource, DispatchState, IntakeSummary};
use crate::domain::message::{MessageId, MessageRecord, MessageStatus};
use crate::ports::{
    Claim, Created, DispatchStore, MessageStore, Settlement, StoreError, WriteMode,
};

/// Partitions a dispatch's messages are spread over.
pub const MESSAGE_SHARDS: u32 = 16;
/// Partitions a dispatch's counters are spread over.
pub const COUNTER_SHARDS: u32 = 16;
pub const WAMID_INDEX: &str = "by-wamid";
pub const CREATED_INDEX: &str = "by-created";
pub(crate) const DISPATCH_LIST_KEY: &str = "DISPATCH";
/// BatchWriteItem's limit.
const BATCH_WRITE_MAX: usize = 25;
const WRITES_IN_FLIGHT: usize = 4;
const UNPROCESSED_RETRIES: u32 = 8;

pub fn now_rfc3339() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true)
}

pub(crate) fn dispatch_pk(dispatch_id: &str) -> String {
    format!("D#{dispatch_id}")
}

pub(crate) fn message_key(id: &MessageId) -> (String, String) {
    (
        format!("D#{}#{:02}", id.dispatch_id, id.row % MESSAGE_SHARDS),
        format!("R#{:010}", id.row),
    )
}

pub(crate) fn key_map(pk: String, sk: String) -> HashMap<String, AttributeValue> {
    HashMap::from([
        ("pk".to_owned(), AttributeValue::S(pk)),
        ("sk".to_owned(), AttributeValue::S(sk)),
    ])
}

pub(crate) fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

pub(crate) fn n(value: impl ToString) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

/// Maps an SDK error to retryable or not by its error code.
pub(crate) fn store_error<E, R>(operation: &str, err: SdkError<E, R>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    match &err {
        SdkError::ServiceError(service) => {
            let inner = service.err();
            let code = inner.code().unwrap_or("Unknown");
            let message = format!("{operation}: {code}: {}", inner.message().unwrap_or(""));
            match code {
                "ProvisionedThroughputExceededException"
                | "ThrottlingException"
                | "RequestLimitExceeded"
                | "InternalServerError"
                | "ServiceUnavailable"
                | "TransactionInProgressException" => StoreError::Unavailable(message),
                _ => StoreError::Rejected(message),
            }
        }
        SdkError::ConstructionFailure(_) => StoreError::Rejected(format!("{operation}: {err}")),
        _ => StoreError::Unavailable(format!(
            "{operation}: {}",
            aws_smithy_types::error::display::DisplayErrorContext(&err)
        )),
    }
}

pub(crate) fn is_condition_failure<E, R>(err: &SdkError<E, R>) -> bool
where
    E: ProvideErrorMetadata,
{
    matches!(err, SdkError::ServiceError(service)
        if service.err().code() == Some("ConditionalCheckFailedException"))
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct DispatchItem {
    pk: String,
    sk: String,
    #[serde(rename = "type")]
    kind: String,
    id: String,
    template: String,
    language: String,
    source_kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    source_bucket: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    source_key: Option<String>,
    state: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
    #[serde(default)]
    columns: Vec<String>,
    #[serde(default)]
    rows: u32,
    #[serde(default)]
    accepted: u32,
    #[serde(default)]
    rejected: u32,
    created_at: String,
    updated_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    send_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    request_digest: Option<String>,
    gsi1pk: String,
    gsi1sk: String,
    ttl: i64,
}

impl DispatchItem {
    pub(crate) fn from_dispatch(dispatch: &Dispatch, ttl: i64) -> Self {
        let (source_kind, source_bucket, source_key) = match &dispatch.source {
            DispatchSource::Upload { bucket, key } => {
                ("upload", Some(bucket.clone()), Some(key.clone()))
            }
            DispatchSource::Api => ("api", None, None),
        };
        Self {
            pk: dispatch_pk(&dispatch.id),
            sk: "META".to_owned(),
            kind: "dispatch".to_owned(),
            id: dispatch.id.clone(),
            template: dispatch.template.clone(),
            language: dispatch.language.clone(),
            source_kind: source_kind.to_owned(),
            source_bucket,
            source_key,
            state: dispatch.state.as_str().to_owned(),
            reason: dispatch.reason.clone(),
            columns: dispatch.columns.clone(),
            rows: dispatch.rows,
            accepted: dispatch.accepted,
            rejected: dispatch.rejected,
            created_at: dispatch.created_at.clone(),
            updated_at: dispatch.updated_at.clone(),
            send_at: dispatch.send_at.clone(),
            request_digest: dispatch.request_digest.clone(),
            gsi1pk: DISPATCH_LIST_KEY.to_owned(),
            gsi1sk: format!("{}#{}", dispatch.created_at, dispatch.id),
            ttl,
        }
    }

    pub(crate) fn into_dispatch(self) -> Result<Dispatch, StoreError> {
        let corrupt = |why: String| StoreError::Corrupt {
            key: self.pk.clone(),
            why,
        };
        let state = self.state.parse::<DispatchState>().map_err(corrupt)?;
        let source = match (
            self.source_kind.as_str(),
            &self.source_bucket,
            &self.source_key,
        ) {
            ("upload", Some(bucket), Some(key)) => DispatchSource::Upload {
                bucket: bucket.clone(),
                key: key.clone(),
            },
            ("api", _, _) => DispatchSource::Api,
            (other, _, _) => return Err(corrupt(format!("unknown source {other:?}"))),
        };
        Ok(Dispatch {
            id: self.id,
            template: self.template,
            language: self.language,
            source,
            state,
            reason: self.reason,
            columns: self.columns,
            rows: self.rows,
            accepted: self.accepted,
            rejected: self.rejected,
            created_at: self.created_at,
            updated_at: self.updated_at,
            send_at: self.send_at,
            request_digest: self.request_digest,
        })
    }
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct MessageItem {
    pk: String,
    sk: String,
    #[serde(rename = "type")]
    kind: String,
    dispatch_id: String,
    row: u32,
    status: String,
    template: String,
    language: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    phone: Option<String>,
    #[serde(default)]
    phone_input: String,
    #[serde(default)]
    variables: Vec<String>,
    #[serde(default)]
    cells: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    reason_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    error_code: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    error_detail: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    wamid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    wa_id: Option<String>,
    #[serde(default)]
    attempts: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    lease_until: Option<String>,
    created_at: String,
    updated_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sent_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    delivered_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    read_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    failed_at: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    undelivered: bool,
    ttl: i64,
}

impl MessageItem {
    pub(crate) fn from_record(record: &MessageRecord, ttl: i64) -> Self {
        let (pk, sk) = message_key(&record.id);
        let r = record.clone();
        Self {
            pk,
            sk,
            kind: "message".to_owned(),
            dispatch_id: r.id.dispatch_id,
            row: r.id.row,
            status: r.status.as_str().to_owned(),
            template: r.template,
            language: r.language,
            phone: r.phone,
            phone_input: r.phone_input,
            variables: r.variables,
            cells: r.cells,
            reason_code: r.reason_code,
            reason: r.reason,
            error_code: r.error_code,
            error_detail: r.error_detail,
            wamid: r.wamid,
            wa_id: r.wa_id,
            attempts: r.attempts,
            lease_until: r.lease_until,
            created_at: r.created_at,
            updated_at: r.updated_at,
            sent_at: r.sent_at,
            delivered_at: r.delivered_at,
            read_at: r.read_at,
            failed_at: r.failed_at,
            undelivered: r.undelivered,
            ttl,
        }
    }

    pub(crate) fn into_record(self) -> Result<MessageRecord, StoreError> {
        let status = self
            .status
            .parse::<MessageStatus>()
            .map_err(|e| StoreError::Corrupt {
                key: format!("{}/{}", self.pk, self.sk),
                why: e.to_string(),
            })?;
        Ok(MessageRecord {
            id: MessageId::new(self.dispatch_id, self.row),
            status,
            template: self.template,
            language: self.language,
            phone: self.phone,
            phone_input: self.phone_input,
            variables: self.variables,
            cells: self.cells,
            reason_code: self.reason_code,
            reason: self.reason,
            error_code: self.error_code,
            error_detail: self.error_detail,
            wamid: self.wamid,
            wa_id: self.wa_id,
            attempts: self.attempts,
            lease_until: self.lease_until,
            created_at: self.created_at,
            updated_at: self.updated_at,
            sent_at: self.sent_at,
            delivered_at: self.delivered_at,
            read_at: self.read_at,
            failed_at: self.failed_at,
            undelivered: self.undelivered,
        })
    }
}

pub(crate) fn decode<T: for<'de> Deserialize<'de>>(
    item: HashMap<String, AttributeValue>,
) -> Result<T, StoreError> {
    let key = match (item.get("pk"), item.get("sk")) {
        (Some(AttributeValue::S(pk)), Some(AttributeValue::S(sk))) => format!("{pk}/{sk}"),
        _ => "<no key>".to_owned(),
    };
    serde_dynamo::from_item(item).map_err(|e| StoreError::Corrupt {
        key,
        why: e.to_string(),
    })
}

pub(crate) fn encode<T: Serialize>(
    value: &T,
) -> Result<HashMap<String, AttributeValue>, StoreError> {
    serde_dynamo::to_item(value).map_err(|e| StoreError::Rejected(format!("encoding item: {e}")))
}

/// DispatchStore and MessageStore on one DynamoDB table.
#[derive(Clone, Debug)]
pub struct DynamoStore {
    pub(crate) client: Client,
    pub(crate) table: String,
    retention: Duration,
}

impl DynamoStore {
    pub fn new(client: Client, config: &StoreConfig) -> Self {
        Self {
            client,
            table: config.table.clone(),
            retention: Duration::from_secs(u64::from(config.retention_days) * 86_400),
        }
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    pub(crate) fn ttl(&self) -> i64 {
        Utc::now().timestamp() + self.retention.as_secs() as i64
    }

    async fn batch_put(
        &self,
        items: Vec<HashMap<String, AttributeValue>>,
    ) -> Result<(), StoreError> {
        let mut requests: Vec<WriteRequest> = items
            .into_iter()
            .map(|item| {
                PutRequest::builder()
                    .set_item(Some(item))
                    .build()
                    .map(|put| WriteRequest::builder().put_request(put).build())
                    .map_err(|e| StoreError::Rejected(format!("building put request: {e}")))
            })
            .collect::<Result<_, _>>()?;
        let mut delay = Duration::from_millis(25);
        for attempt in 0..=UNPROCESSED_RETRIES {
            let output = self
                .client
                .batch_write_item()
                .request_items(&self.table, requests)
                .send()
                .await
                .map_err(|e| store_error("BatchWriteItem", e))?;
            requests = output
                .unprocessed_items
                .and_then(|mut unprocessed| unprocessed.remove(&self.table))
                .unwrap_or_default();
            if requests.is_empty() {
                return Ok(());
            }
            if attempt < UNPROCESSED_RETRIES {
                // Unprocessed items mean the table is throttling us: back off before retrying.
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(2));
            }
        }
        Err(StoreError::Unavailable(format!(
            "BatchWriteItem left {} items unprocessed after {UNPROCESSED_RETRIES} retries",
            requests.len()
        )))
    }

    pub(crate) async fn put_if_absent(
        &self,
        item: HashMap<String, AttributeValue>,
    ) -> Result<bool, StoreError> {
        match self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if is_condition_failure(&e) => Ok(false),
            Err(e) => Err(store_error("PutItem", e)),
        }
    }

    /// `from → to`, conditionally; false when the dispatch was not in `from`.
    async fn move_dispatch(
        &self,
        id: &str,
        from: DispatchState,
        to: DispatchState,
        reason: Option<&str>,
    ) -> Result<bool, StoreError> {
        let request = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key_map(dispatch_pk(id), "META".to_owned())))
            .condition_expression("#state = :from")
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":from", s(from.as_str()))
            .expression_attribute_values(":to", s(to.as_str()))
            .expression_attribute_values(":now", s(now_rfc3339()));
        let request = match reason {
            Some(reason) => request
                .update_expression("SET #state = :to, reason = :reason, updated_at = :now")
                .expression_attribute_values(":reason", s(reason)),
            None => request.update_expression("SET #state = :to, updated_at = :now REMOVE reason"),
        };
        match request.send().await {
            Ok(_) => Ok(true),
            Err(e) if is_condition_failure(&e) => Ok(false),
            Err(e) => Err(store_error("UpdateItem", e)),
        }
    }

    /// Counts of messages that settled as sent or failed, summed over the counter shards.
    /// Together with the dispatch's accepted count this gives progress without reading
    /// every message.
    pub async fn settled_counts(
        &self,
        dispatch_id: &str,
    ) -> Result<HashMap<String, i64>, StoreError> {
        let output = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
            .expression_attribute_values(":pk", s(dispatch_pk(dispatch_id)))
            .expression_attribute_values(":prefix", s("COUNT#"))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| store_error("Query", e))?;
        let mut totals = HashMap::new();
        for item in output.items.unwrap_or_default() {
            for (name, value) in item {
                if let AttributeValue::N(number) = value
                    && let Ok(count) = number.parse::<i64>()
                {
                    *totals.entry(name).or_insert(0) += count;
                }
            }
        }
        Ok(totals)
    }

    async fn count_settlement(&self, id: &MessageId, status: MessageStatus) {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key_map(
                dispatch_pk(&id.dispatch_id),
                format!("COUNT#{:02}", id.row % COUNTER_SHARDS),
            )))
            .update_expression("ADD #status :one")
            .expression_attribute_names("#status", status.as_str())
            .expression_attribute_values(":one", n(1))
            .send()
            .await;
        if let Err(e) = result {
            // The message itself is recorded; a lost increment is drift the review's exact
            // recount repairs, so it must not fail the send.
            tracing::warn!(message_id = %id, error = %store_error("UpdateItem", e), "counter not incremented");
        }
    }
}

impl DispatchStore for DynamoStore {
    async fn create_dispatch(&self, dispatch: &Dispatch) -> Result<Created, StoreError> {
        let item = encode(&DispatchItem::from_dispatch(dispatch, self.ttl()))?;
        if self.put_if_absent(item).await? {
            return Ok(Created::New);
        }
        match self.get_dispatch(&dispatch.id).await? {
            Some(existing) => Ok(Created::Existing(Box::new(existing))),
            None => Err(StoreError::Unavailable(format!(
                "dispatch {} exists and vanished while being read",
                dispatch.id
            ))),
        }
    }

    async fn get_dispatch(&self, id: &str) -> Result<Option<Dispatch>, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key_map(dispatch_pk(id), "META".to_owned())))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| store_error("GetItem", e))?;
        output
            .item
            .map(|item| decode::<DispatchItem>(item)?.into_dispatch())
            .transpose()
    }

    async fn finish_intake(&self, id: &str, summary: &IntakeSummary) -> Result<(), StoreError> {
        let next = if summary.accepted == 0 {
            DispatchState::Completed
        } else {
            DispatchState::Sending
        };
        let columns = summary.columns.iter().map(|c| s(c.as_str())).collect();
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key_map(dispatch_pk(id), "META".to_owned())))
            .update_expression(
                "SET #state = :next, #columns = :columns, #rows = :rows, accepted = :accepted, \
                 rejected = :rejected, updated_at = :now",
            )
            .condition_expression("#state = :intake")
            .expression_attribute_names("#state", "state")
            .expression_attribute_names("#columns", "columns")
            .expression_attribute_names("#rows", "rows")
            .expression_attribute_values(":next", s(next.as_str()))
            .expression_attribute_values(":intake", s(DispatchState::Intake.as_str()))
            .expression_attribute_values(":columns", AttributeValue::L(columns))
            .expression_attribute_values(":rows", n(summary.rows))
            .expression_attribute_values(":accepted", n(summary.accepted))
            .expression_attribute_values(":rejected", n(summary.rejected))
            .expression_attribute_values(":now", s(now_rfc3339()))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            // Another run of the same event finished intake first: same rows, same outcome.
            Err(e) if is_condition_failure(&e) => Ok(()),
            Err(e) => Err(store_error("UpdateItem", e)),
        }
    }

    async fn pause_dispatch(&self, id: &str, reason: &str) -> Result<bool, StoreError> {
        self.move_dispatch(
            id,
            DispatchState::Sending,
            DispatchState::Paused,
            Some(reason),
        )
        .await
    }

    async fn resume_dispatch(&self, id: &str) -> Result<bool, StoreError> {
        self.move_dispatch(id, DispatchState::Paused, DispatchState::Sending, None)
            .await
    }

    async fn fail_dispatch(&self, id: &str, reason: &str) -> Result<(), StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key_map(dispatch_pk(id), "META".to_owned())))
            .update_expression("SET #state = :failed, reason = :reason, updated_at = :now")
            .condition_expression("#state = :intake")
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":failed", s(DispatchState::Failed.as_str()))
            .expression_attribute_values(":intake", s(DispatchState::Intake.as_str()))
            .expression_attribute_values(":reason", s(reason))
            .expression_attribute_values(":now", s(now_rfc3339()))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if is_condition_failure(&e) => Ok(()),
            Err(e) => Err(store_error("UpdateItem", e)),
        }
    }
}

impl MessageStore for DynamoStore {
    async fn put_messages(
        &self,
        messages: &[MessageRecord],
        mode: WriteMode,
    ) -> Result<(), StoreError> {
        let ttl = self.ttl();
        let items: Vec<_> = messages
            .iter()
            .map(|record| encode(&MessageItem::from_record(record, ttl)))
            .collect::<Result<_, _>>()?;
        match mode {
            WriteMode::Fresh => {
                let mut chunks = Vec::new();
                let mut items = items.into_iter().peekable();
                while items.peek().is_some() {
                    chunks.push(items.by_ref().take(BATCH_WRITE_MAX).collect::<Vec<_>>());
                }
                stream::iter(chunks.into_iter().map(|chunk| self.batch_put(chunk)))
                    .buffer_unordered(WRITES_IN_FLIGHT)
                    .try_collect::<()>()
                    .await
            }
            WriteMode::KeepExisting => {
                stream::iter(items.into_iter().map(|item| self.put_if_absent(item)))
                    .buffer_unordered(WRITES_IN_FLIGHT * 2)
                    .try_collect::<Vec<bool>>()
                    .await
                    .map(drop)
            }
        }
    }

    async fn claim(&self, id: &MessageId, lease: Duration) -> Result<Claim, StoreError> {
        let (pk, sk) = message_key(id);
        let now = Utc::now();
        let lease_until = (now
            + chrono::Duration::from_std(lease).unwrap_or(chrono::Duration::seconds(60)))
        .to_rfc3339_opts(SecondsFormat::Millis, true);
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key_map(pk, sk)))
            .update_expression(
                "SET #status = :sending, attempts = if_not_exists(attempts, :zero) + :one, \
                 lease_until = :lease, updated_at = :now",
            )
            .condition_expression("#status = :queued")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":sending", s(MessageStatus::Sending.as_str()))
            .expression_attribute_values(":queued", s(MessageStatus::Queued.as_str()))
            .expression_attribute_values(":zero", n(0))
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":lease", s(lease_until))
            .expression_attribute_values(
                ":now",
                s(now.to_rfc3339_opts(SecondsFormat::Millis, true)),
            )
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        match result {
            Ok(output) => {
                let item = output.attributes.ok_or_else(|| StoreError::Corrupt {
                    key: id.to_string(),
                    why: "claim returned no attributes".to_owned(),
                })?;
                Ok(Claim::Claimed(Box::new(
                    decode::<MessageItem>(item)?.into_record()?,
                )))
            }
            Err(e) if is_condition_failure(&e) => Ok(match self.get_message(id).await? {
                None => Claim::Missing,
                Some(record) if record.status == MessageStatus::Sending => Claim::InFlight,
                // Queued again between our attempt and this read: another record for the same
                // message will claim it; this one steps aside.
                Some(record) if record.status == MessageStatus::Queued => Claim::InFlight,
                Some(record) => Claim::AlreadyFinal(record.status),
            }),
            Err(e) => Err(store_error("UpdateItem", e)),
        }
    }

    async fn settle(
        &self,
        claimed: &MessageRecord,
        settlement: &Settlement,
    ) -> Result<bool, StoreError> {
        let (pk, sk) = message_key(&claimed.id);
        let now = now_rfc3339();
        let request = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key_map(pk, sk)))
            .condition_expression("#status = :sending AND attempts = :attempt")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":sending", s(MessageStatus::Sending.as_str()))
            .expression_attribute_values(":attempt", n(claimed.attempts))
            .expression_attribute_values(":now", s(now));
        let (request, counted) = match settlement {
            Settlement::Sent { wamid, wa_id } => (
                request
                    .update_expression(
                        "SET #status = :sent, wamid = :wamid, wa_id = :wa_id, sent_at = :now, \
                         updated_at = :now REMOVE lease_until, reason_code, reason",
                    )
                    .expression_attribute_values(":sent", s(MessageStatus::Sent.as_str()))
                    .expression_attribute_values(":wamid", s(wamid.as_str()))
                    .expression_attribute_values(
                        ":wa_id",
                        wa_id.as_deref().map_or(AttributeValue::Null(true), s),
                    ),
                Some(MessageStatus::Sent),
            ),
            Settlement::Failed {
                reason_code,
                reason,
                error_code,
                error_detail,
            } => (
                request
                    .update_expression(
                        "SET #status = :failed, reason_code = :reason_code, reason = :reason, \
                         error_code = :error_code, error_detail = :error_detail, \
                         failed_at = :now, updated_at = :now REMOVE lease_until",
                    )
                    .expression_attribute_values(":failed", s(MessageStatus::Failed.as_str()))
                    .expression_attribute_values(":reason_code", s(reason_code.as_str()))
                    .expression_attribute_values(":reason", s(reason.as_str()))
                    .expression_attribute_values(
                        ":error_code",
                        error_code.map_or(AttributeValue::Null(true), n),
                    )
                    .expression_attribute_values(
                        ":error_detail",
                        error_detail
                            .as_deref()
                            .map_or(AttributeValue::Null(true), s),
                    ),
                Some(MessageStatus::Failed),
            ),
            Settlement::Skipped {
                reason_code,
                reason,
            } => (
                request
                    .update_expression(
                        "SET #status = :skipped, reason_code = :reason_code, reason = :reason, \
                         updated_at = :now REMOVE lease_until",
                    )
                    .expression_attribute_values(":skipped", s(MessageStatus::Skipped.as_str()))
                    .expression_attribute_values(":reason_code", s(reason_code.as_str()))
                    .expression_attribute_values(":reason", s(reason.as_str())),
                Some(MessageStatus::Skipped),
            ),
            Settlement::Unknown => return Ok(true),
            Settlement::Retry { reason, error_code } => (
                request
                    .update_expression(
                        "SET #status = :queued, reason = :reason, error_code = :error_code, \
                         updated_at = :now REMOVE lease_until",
                    )
                    .expression_attribute_values(":queued", s(MessageStatus::Queued.as_str()))
                    .expression_attribute_values(":reason", s(reason.as_str()))
                    .expression_attribute_values(
                        ":error_code",
                        error_code.map_or(AttributeValue::Null(true), n),
                    ),
                None,
            ),
            Settlement::Release { reason } => (
                request
                    .update_expression(
                        "SET #status = :queued, reason = :reason, attempts = attempts - :one, \
                         updated_at = :now REMOVE lease_until",
                    )
                    .expression_attribute_values(":queued", s(MessageStatus::Queued.as_str()))
                    .expression_attribute_values(":reason", s(reason.as_str()))
                    .expression_attribute_values(":one", n(1)),
                None,
            ),
        };
        match request.send().await {
            Ok(_) => {
                if let Some(status) = counted {
                    self.count_settlement(&claimed.id, status).await;
                }
                Ok(true)
            }
            Err(e) if is_condition_failure(&e) => Ok(false),
            Err(e) => Err(store_error("UpdateItem", e)),
        }
    }

    async fn get_message(&self, id: &MessageId) -> Result<Option<MessageRecord>, StoreError> {
        let (pk, sk) = message_key(id);
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key_map(pk, sk)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| store_error("GetItem", e))?;
        output
            .item
            .map(|item| decode::<MessageItem>(item)?.into_record())
            .transpose()
    }

    async fn list_messages(&self, dispatch_id: &str) -> Result<Vec<MessageRecord>, StoreError> {
        let shards = (0..MESSAGE_SHARDS).map(|shard| {
            let pk = format!("D#{dispatch_id}#{shard:02}");
            async move {
                let pages = self
                    .client
                    .query()
                    .table_name(&self.table)
                    .key_condition_expression("pk = :pk")
                    .expression_attribute_values(":pk", s(pk))
                    .into_paginator()
                    .items()
                    .send()
                    .collect::<Vec<_>>()
                    .await;
                pages
                    .into_iter()
                    .map(|item| {
                        decode::<MessageItem>(item.map_err(|e| store_error("Query", e))?)?
                            .into_record()
                    })
                    .collect::<Result<Vec<_>, StoreError>>()
            }
        });
        let mut messages: Vec<MessageRecord> = futures::future::try_join_all(shards)
            .await?
            .into_iter()
            .flatten()
            .collect();
        messages.sort_by_key(|m| m.id.row);
        Ok(messages)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_keys_spread_rows_over_shards_in_row_order() {
        let (pk, sk) = message_key(&MessageId::new("d-1", 42));
        assert_eq!(pk, "D#d-1#10");
        assert_eq!(sk, "R#0000000042");
        // Zero-padding keeps lexical order equal to numeric order within a shard.
        assert!(
            message_key(&MessageId::new("d-1", 9)).1 < message_key(&MessageId::new("d-1", 10)).1
        );
    }

    #[test]
    fn message_item_round_trips_through_dynamo_attributes() {
        let record = MessageRecord::queued(
            MessageId::new("d-1", 7),
            "boas_vindas",
            "pt_BR",
            "+5511987654321".to_owned(),
            "(11) 98765-4321".to_owned(),
            vec!["Loja".to_owned(), "Maria".to_owned()],
            vec![
                "(11) 98765-4321".to_owned(),
                "Loja".to_owned(),
                "Maria".to_owned(),
            ],
            "2026-11-25T00:00:00.000Z",
        );
        let item = encode(&MessageItem::from_record(&record, 1)).expect("encodes");
        assert!(
            !item.contains_key("wamid"),
            "wamid must stay absent for the sparse index"
        );
        let back = decode::<MessageItem>(item)
            .expect("decodes")
            .into_record()
            .expect("valid");
        assert_eq!(back, record);
    }
}
