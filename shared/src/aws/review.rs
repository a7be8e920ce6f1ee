//! What the scheduled review writes: completion with an exact recount, the `undelivered`
//! flag, and the position in the dispatch list where the next run goes on.

use std::collections::BTreeMap;

use aws_sdk_dynamodb::types::{AttributeValue, DeleteRequest, WriteRequest};

use crate::aws::dynamo::{
    COUNTER_SHARDS, DynamoStore, dispatch_pk, is_condition_failure, key_map, message_key, n,
    now_rfc3339, s, store_error,
};
use crate::aws::queries::DispatchPosition;
use crate::domain::dispatch::DispatchState;
use crate::domain::message::{MessageRecord, MessageStatus};
use crate::ports::StoreError;

const CURSOR_PK: &str = "REVIEW";
const CURSOR_SK: &str = "CURSOR";

impl DynamoStore {
    /// Marks a message that was sent long ago and never reported delivered. It stays `sent`
    /// (WhatsApp may still deliver it); the flag makes it visible. False if already flagged
    /// or no longer `sent`.
    pub async fn flag_undelivered(&self, message: &MessageRecord) -> Result<bool, StoreError> {
        let (pk, sk) = message_key(&message.id);
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key_map(pk, sk)))
            .update_expression("SET undelivered = :yes, updated_at = :now")
            .condition_expression("#status = :sent AND attribute_not_exists(undelivered)")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":sent", s(MessageStatus::Sent.as_str()))
            .expression_attribute_values(":yes", AttributeValue::Bool(true))
            .expression_attribute_values(":now", s(now_rfc3339()))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e) if is_condition_failure(&e) => Ok(false),
            Err(e) => Err(store_error("UpdateItem", e)),
        }
    }

    /// `sending → completed` with the exact counts by status; the counter shards are rewritten
    /// from the same recount, so whatever drift they had is gone. False when the dispatch was
    /// not `sending` (another review run completed it first).
    pub async fn complete_dispatch(
        &self,
        dispatch_id: &str,
        counts: &BTreeMap<MessageStatus, u64>,
    ) -> Result<bool, StoreError> {
        let totals: std::collections::HashMap<String, AttributeValue> = counts
            .iter()
            .map(|(status, count)| (status.as_str().to_owned(), n(*count)))
            .collect();
        let now = now_rfc3339();
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key_map(dispatch_pk(dispatch_id), "META".to_owned())))
            .update_expression(
                "SET #state = :completed, final_counts = :totals, completed_at = :now, \
                 updated_at = :now",
            )
            .condition_expression("#state = :sending")
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":completed", s(DispatchState::Completed.as_str()))
            .expression_attribute_values(":sending", s(DispatchState::Sending.as_str()))
            .expression_attribute_values(":totals", AttributeValue::M(totals))
            .expression_attribute_values(":now", s(now))
            .send()
            .await;
        match result {
            Ok(_) => {}
            Err(e) if is_condition_failure(&e) => return Ok(false),
            Err(e) => return Err(store_error("UpdateItem", e)),
        }
        self.rewrite_counters(dispatch_id, counts).await?;
        Ok(true)
    }

    /// Replaces the counter shards with the recount: every shard removed, shard 0 set to the
    /// exact settled counts.
    async fn rewrite_counters(
        &self,
        dispatch_id: &str,
        counts: &BTreeMap<MessageStatus, u64>,
    ) -> Result<(), StoreError> {
        let pk = dispatch_pk(dispatch_id);
        let deletes: Vec<WriteRequest> = (1..COUNTER_SHARDS)
            .map(|shard| {
                DeleteRequest::builder()
                    .set_key(Some(key_map(pk.clone(), format!("COUNT#{shard:02}"))))
                    .build()
                    .map(|delete| WriteRequest::builder().delete_request(delete).build())
                    .map_err(|e| StoreError::Rejected(format!("building delete: {e}")))
            })
            .collect::<Result<_, _>>()?;
        self.client
            .batch_write_item()
            .request_items(&self.table, deletes)
            .send()
            .await
            .map_err(|e| store_error("BatchWriteItem", e))?;
        let mut item = key_map(pk, "COUNT#00".to_owned());
        for (status, count) in counts {
            if counted_status(*status) {
                item.insert(status.as_str().to_owned(), n(*count));
            }
        }
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(|e| store_error("PutItem", e))?;
        Ok(())
    }

    /// Where the previous review run stopped in the dispatch list.
    pub async fn review_cursor(&self) -> Result<Option<DispatchPosition>, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key_map(CURSOR_PK.to_owned(), CURSOR_SK.to_owned())))
            .send()
            .await
            .map_err(|e| store_error("GetItem", e))?;
        let item = output.item.unwrap_or_default();
        let text = |name: &str| match item.get(name) {
            Some(AttributeValue::S(value)) => Some(value.clone()),
            _ => None,
        };
        Ok(match (text("created_at"), text("id")) {
            (Some(created_at), Some(id)) => Some(DispatchPosition { created_at, id }),
            _ => None,
        })
    }

    /// Remembers where the next run goes on; `None` starts it from the newest dispatch.
    pub async fn set_review_cursor(
        &self,
        position: Option<&DispatchPosition>,
    ) -> Result<(), StoreError> {
        let key = key_map(CURSOR_PK.to_owned(), CURSOR_SK.to_owned());
        match position {
            Some(position) => {
                let mut item = key;
                item.insert("created_at".to_owned(), s(position.created_at.as_str()));
                item.insert("id".to_owned(), s(position.id.as_str()));
                self.client
                    .put_item()
                    .table_name(&self.table)
                    .set_item(Some(item))
                    .send()
                    .await
                    .map(drop)
                    .map_err(|e| store_error("PutItem", e))
            }
            None => self
                .client
                .delete_item()
                .table_name(&self.table)
                .set_key(Some(key))
                .send()
                .await
                .map(drop)
                .map_err(|e| store_error("DeleteItem", e)),
        }
    }
}

/// Statuses the counter shards track: the settled ones.
pub fn counted_status(status: MessageStatus) -> bool {
    matches!(
        status,
        MessageStatus::Sent
            | MessageStatus::Delivered
            | MessageStatus::Read
            | MessageStatus::Failed
            | MessageStatus::Skipped
    )
}
