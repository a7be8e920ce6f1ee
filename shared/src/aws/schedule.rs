//! Scheduled and cancelled dispatches on the one DynamoDB table.
//!
//! | item           | pk                        | sk                      |
//! |----------------|---------------------------|-------------------------|
//! | schedule entry | `SCHEDULE`                | `<due at>#<dispatch>`   |
//!
//! A dispatch with a future `send_at` is recorded with its messages `queued` but not put on
//! the send queue; its schedule entry is written in the same transaction that moves it to
//! `scheduled`. [`crate::schedule::release_due_dispatches`] reads the entries that are due (one
//! small partition, sorted by time) and queues their messages. The entries are few and short
//! lived, so one partition is plenty.

use std::collections::HashMap;

use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, Put, ReturnValue, TransactWriteItem, Update};
use futures::{StreamExt, stream};

use crate::aws::dynamo::{
    COUNTER_SHARDS, DynamoStore, dispatch_pk, is_condition_failure, key_map, message_key, n,
    now_rfc3339, s, store_error,
};
use crate::domain::dispatch::{DispatchState, IntakeSummary};
use crate::domain::message::{MessageId, MessageStatus};
use crate::ports::{
    CancelOutcome, DispatchStore, QueuedPage, ScheduleEntry, ScheduleStore, StoreError,
};

const SCHEDULE_PK: &str = "SCHEDULE";
/// Items read per page when looking for `queued` messages.
const QUEUED_PAGE_LIMIT: i32 = 500;
const SKIPS_IN_FLIGHT: usize = 8;

fn entry_sk(entry: &ScheduleEntry) -> String {
    format!("{}#{}", entry.due_at, entry.dispatch_id)
}

/// `R#0000000042` → 42.
pub(crate) fn row_of_sk(sk: &str) -> Option<u32> {
    sk.strip_prefix("R#")?.parse().ok()
}

fn string_attribute(item: &HashMap<String, AttributeValue>, name: &str) -> Option<String> {
    match item.get(name) {
        Some(AttributeValue::S(value)) => Some(value.clone()),
        _ => None,
    }
}

impl DynamoStore {
    async fn add_to_counters(&self, dispatch_id: &str, status: MessageStatus, by_shard: &[u32]) {
        for (shard, count) in by_shard.iter().enumerate() {
            if *count == 0 {
                continue;
            }
            let result = self
                .client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(key_map(
                    dispatch_pk(dispatch_id),
                    format!("COUNT#{shard:02}"),
                )))
                .update_expression("ADD #status :count")
                .expression_attribute_names("#status", status.as_str())
                .expression_attribute_values(":count", n(*count))
                .send()
                .await;
            if let Err(e) = result {
                // The messages are recorded; a lost increment is drift the review's exact
                // recount repairs.
                tracing::warn!(dispatch_id, error = %store_error("UpdateItem", e), "counter not incremented");
            }
        }
    }

    async fn skip_one(
        &self,
        id: &MessageId,
        reason_code: &str,
        reason: &str,
    ) -> Result<bool, StoreError> {
        let (pk, sk) = message_key(id);
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key_map(pk, sk)))
            .update_expression(
                "SET #status = :skipped, reason_code = :reason_code, reason = :reason, \
                 updated_at = :now REMOVE lease_until",
            )
            .condition_expression("#status = :queued")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":skipped", s(MessageStatus::Skipped.as_str()))
            .expression_attribute_values(":queued", s(MessageStatus::Queued.as_str()))
            .expression_attribute_values(":reason_code", s(reason_code))
            .expression_attribute_values(":reason", s(reason))
            .expression_attribute_values(":now", s(now_rfc3339()))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e) if is_condition_failure(&e) => Ok(false),
            Err(e) => Err(store_error("UpdateItem", e)),
        }
    }
}

impl ScheduleStore for DynamoStore {
    async fn finish_intake_scheduled(
        &self,
        id: &str,
        summary: &IntakeSummary,
        send_at: &str,
    ) -> Result<bool, StoreError> {
        let entry = ScheduleEntry {
            dispatch_id: id.to_owned(),
            due_at: send_at.to_owned(),
        };
        let columns = summary.columns.iter().map(|c| s(c.as_str())).collect();
        let update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key_map(dispatch_pk(id), "META".to_owned())))
            .update_expression(
                "SET #state = :scheduled, #columns = :columns, #rows = :rows, \
                 accepted = :accepted, rejected = :rejected, updated_at = :now",
            )
            .condition_expression("#state = :intake")
            .expression_attribute_names("#state", "state")
            .expression_attribute_names("#columns", "columns")
            .expression_attribute_names("#rows", "rows")
            .expression_attribute_values(":scheduled", s(DispatchState::Scheduled.as_str()))
            .expression_attribute_values(":intake", s(DispatchState::Intake.as_str()))
            .expression_attribute_values(":columns", AttributeValue::L(columns))
            .expression_attribute_values(":rows", n(summary.rows))
            .expression_attribute_values(":accepted", n(summary.accepted))
            .expression_attribute_values(":rejected", n(summary.rejected))
            .expression_attribute_values(":now", s(now_rfc3339()))
            .build()
            .map_err(|e| StoreError::Rejected(format!("building update: {e}")))?;
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(self.entry_item(&entry)))
            .build()
            .map_err(|e| StoreError::Rejected(format!("building put: {e}")))?;
        let result = self
            .client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().update(update).build())
            .transact_items(TransactWriteItem::builder().put(put).build())
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e) => {
                let condition_failed = matches!(
                    e.as_service_error(),
                    Some(TransactWriteItemsError::TransactionCanceledException(cancelled))
                        if cancelled
                            .cancellation_reasons()
                            .iter()
                            .any(|r| r.code() == Some("ConditionalCheckFailed"))
                );
                if condition_failed {
                    Ok(false)
                } else if e.code() == Some("TransactionCanceledException") {
                    // Cancelled for another reason (a conflicting transaction): try again later.
                    Err(StoreError::Unavailable(format!(
                        "TransactWriteItems: {}",
                        e.message().unwrap_or("transaction cancelled")
                    )))
                } else {
                    Err(store_error("TransactWriteItems", e))
                }
            }
        }
    }

    async fn due_entries(&self, now: &str, limit: usize) -> Result<Vec<ScheduleEntry>, StoreError> {
        let output = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND sk <= :upper")
            .expression_attribute_values(":pk", s(SCHEDULE_PK))
            // '~' sorts after every character of a dispatch id.
            .expression_attribute_values(":upper", s(format!("{now}#~")))
            .limit(i32::try_from(limit.clamp(1, 1000)).unwrap_or(1000))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| store_error("Query", e))?;
        output
            .items
            .unwrap_or_default()
            .into_iter()
            .map(|item| {
                match (
                    string_attribute(&item, "dispatch_id"),
                    string_attribute(&item, "due_at"),
                ) {
                    (Some(dispatch_id), Some(due_at)) => Ok(ScheduleEntry {
                        dispatch_id,
                        due_at,
                    }),
                    _ => Err(StoreError::Corrupt {
                        key: string_attribute(&item, "sk").unwrap_or_default(),
                        why: "schedule entry without dispatch_id or due_at".to_owned(),
                    }),
                }
            })
            .collect()
    }

    async fn put_entry(&self, entry: &ScheduleEntry) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(self.entry_item(entry)))
            .send()
            .await
            .map(drop)
            .map_err(|e| store_error("PutItem", e))
    }

    async fn remove_entry(&self, entry: &ScheduleEntry) -> Result<(), StoreError> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key_map(SCHEDULE_PK.to_owned(), entry_sk(entry))))
            .send()
            .await
            .map(drop)
            .map_err(|e| store_error("DeleteItem", e))
    }

    async fn queued_page(
        &self,
        dispatch_id: &str,
        shard: u32,
        after: Option<u32>,
    ) -> Result<QueuedPage, StoreError> {
        let after_sk = after.map_or_else(|| "R#".to_owned(), |row| format!("R#{row:010}"));
        let output = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND sk > :after")
            .filter_expression("#status = :queued")
            .projection_expression("sk, #status")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(
                ":pk",
                s(format!("{}#{shard:02}", dispatch_pk(dispatch_id))),
            )
            .expression_attribute_values(":after", s(after_sk))
            .expression_attribute_values(":queued", s(MessageStatus::Queued.as_str()))
            .limit(QUEUED_PAGE_LIMIT)
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| store_error("Query", e))?;
        let ids = output
            .items
            .unwrap_or_default()
            .iter()
            .filter_map(|item| string_attribute(item, "sk"))
            .filter_map(|sk| row_of_sk(&sk))
            .map(|row| MessageId::new(dispatch_id, row))
            .collect();
        let next = output
            .last_evaluated_key
            .as_ref()
            .and_then(|key| string_attribute(key, "sk"))
            .and_then(|sk| row_of_sk(&sk));
        Ok(QueuedPage { ids, next })
    }

    async fn begin_sending(&self, id: &str) -> Result<bool, StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key_map(dispatch_pk(id), "META".to_owned())))
            .update_expression("SET #state = :sending, updated_at = :now")
            .condition_expression("#state = :scheduled")
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":sending", s(DispatchState::Sending.as_str()))
            .expression_attribute_values(":scheduled", s(DispatchState::Scheduled.as_str()))
            .expression_attribute_values(":now", s(now_rfc3339()))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e) if is_condition_failure(&e) => Ok(false),
            Err(e) => Err(store_error("UpdateItem", e)),
        }
    }

    async fn cancel_dispatch(&self, id: &str) -> Result<CancelOutcome, StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key_map(dispatch_pk(id), "META".to_owned())))
            .update_expression("SET #state = :cancelled, updated_at = :now")
            .condition_expression("#state IN (:intake, :scheduled, :sending, :paused)")
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":cancelled", s(DispatchState::Cancelled.as_str()))
            .expression_attribute_values(":intake", s(DispatchState::Intake.as_str()))
            .expression_attribute_values(":scheduled", s(DispatchState::Scheduled.as_str()))
            .expression_attribute_values(":sending", s(DispatchState::Sending.as_str()))
            .expression_attribute_values(":paused", s(DispatchState::Paused.as_str()))
            .expression_attribute_values(":now", s(now_rfc3339()))
            .return_values(ReturnValue::AllOld)
            .send()
            .await;
        match result {
            Ok(output) => {
                let previous = output
                    .attributes
                    .as_ref()
                    .and_then(|old| string_attribute(old, "state"))
                    .and_then(|state| state.parse::<DispatchState>().ok())
                    .ok_or_else(|| StoreError::Corrupt {
                        key: dispatch_pk(id),
                        why: "cancelling returned no previous state".to_owned(),
                    })?;
                Ok(CancelOutcome::Cancelled { previous })
            }
            Err(e) if is_condition_failure(&e) => Ok(match self.get_dispatch(id).await? {
                None => CancelOutcome::Missing,
                Some(d) if d.state == DispatchState::Cancelled => CancelOutcome::AlreadyCancelled,
                Some(d) => CancelOutcome::Finished(d.state),
            }),
            Err(e) => Err(store_error("UpdateItem", e)),
        }
    }

    async fn skip_queued(
        &self,
        ids: &[MessageId],
        reason_code: &str,
        reason: &str,
    ) -> Result<u32, StoreError> {
        let outcomes: Vec<Result<Option<MessageId>, StoreError>> =
            stream::iter(ids.iter().cloned())
                .map(|id| async move {
                    let skipped = self.skip_one(&id, reason_code, reason).await?;
                    Ok(skipped.then_some(id))
                })
                .buffer_unordered(SKIPS_IN_FLIGHT)
                .collect()
                .await;
        let mut skipped = Vec::with_capacity(outcomes.len());
        let mut first_error = None;
        for outcome in outcomes {
            match outcome {
                Ok(Some(id)) => skipped.push(id),
                Ok(None) => {}
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        // Counted per dispatch and counter shard, as the sender counts its settlements.
        let mut by_dispatch: HashMap<&str, Vec<u32>> = HashMap::new();
        for id in &skipped {
            let shards = by_dispatch
                .entry(id.dispatch_id.as_str())
                .or_insert_with(|| vec![0; COUNTER_SHARDS as usize]);
            shards[(id.row % COUNTER_SHARDS) as usize] += 1;
        }
        for (dispatch_id, shards) in by_dispatch {
            self.add_to_counters(dispatch_id, MessageStatus::Skipped, &shards)
                .await;
        }
        // What was skipped is counted even when some updates failed; the caller retries
        // the rest (a message no longer queued is left alone).
        match first_error {
            Some(e) => Err(e),
            None => Ok(skipped.len() as u32),
        }
    }
}

impl DynamoStore {
    fn entry_item(&self, entry: &ScheduleEntry) -> HashMap<String, AttributeValue> {
        let mut item = key_map(SCHEDULE_PK.to_owned(), entry_sk(entry));
        item.insert("type".to_owned(), s("schedule"));
        item.insert("dispatch_id".to_owned(), s(entry.dispatch_id.as_str()));
        item.insert("due_at".to_owned(), s(entry.due_at.as_str()));
        item.insert("ttl".to_owned(), n(self.ttl()));
        item
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_come_back_from_sort_keys() {
        assert_eq!(row_of_sk("R#0000000042"), Some(42));
        assert_eq!(row_of_sk("META"), None);
        assert_eq!(row_of_sk("R#x"), None);
    }

    #[test]
    fn entries_sort_by_time_then_dispatch() {
        let early = ScheduleEntry {
            dispatch_id: "d-b".into(),
            due_at: "2026-01-01T10:00:00.000Z".into(),
        };
        let late = ScheduleEntry {
            dispatch_id: "d-a".into(),
            due_at: "2026-01-01T10:00:01.000Z".into(),
        };
        assert!(entry_sk(&early) < entry_sk(&late));
        // Everything due at `now` sorts below the query's upper bound.
        assert!(entry_sk(&late) <= format!("{}#~", late.due_at));
    }
}
