//! Applying WhatsApp's status webhooks to messages: found by our id (echoed in
//! `biz_opaque_callback_data`) or by WhatsApp's id through the sparse `by-wamid` index, and
//! moved forward only, by a conditional write — so duplicates and late, out-of-order events
//! change nothing.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};

use crate::aws::dynamo::{
    COUNTER_SHARDS, DynamoStore, WAMID_INDEX, dispatch_pk, is_condition_failure, key_map,
    message_key, n, now_rfc3339, s, store_error,
};
use crate::aws::review::counted_status;
use crate::domain::message::{MessageId, MessageStatus};
use crate::ports::StoreError;
use crate::webhook::StatusEvent;

/// What a status event did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StatusApplied {
    Moved {
        message: MessageId,
        from: MessageStatus,
        to: MessageStatus,
    },
    /// A duplicate, or older than what the message already has.
    Ignored,
    /// No message of ours has that id: logged and acknowledged, never retried forever.
    UnknownMessage,
}

/// The statuses a message may be in for `to` to be a step forward.
fn allowed_before(to: MessageStatus) -> &'static [MessageStatus] {
    match to {
        MessageStatus::Sent => &[MessageStatus::Sending],
        MessageStatus::Delivered => &[MessageStatus::Sending, MessageStatus::Sent],
        MessageStatus::Read => &[
            MessageStatus::Sending,
            MessageStatus::Sent,
            MessageStatus::Delivered,
        ],
        MessageStatus::Failed => &[MessageStatus::Sending, MessageStatus::Sent],
        _ => &[],
    }
}

impl DynamoStore {
    async fn find_by_wamid(&self, wamid: &str) -> Result<Option<(String, String)>, StoreError> {
        let output = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(WAMID_INDEX)
            .key_condition_expression("wamid = :wamid")
            .expression_attribute_values(":wamid", s(wamid))
            .limit(1)
            .send()
            .await
            .map_err(|e| store_error("Query", e))?;
        Ok(output
            .items
            .unwrap_or_default()
            .into_iter()
            .next()
            .and_then(|item| match (item.get("pk"), item.get("sk")) {
                (Some(AttributeValue::S(pk)), Some(AttributeValue::S(sk))) => {
                    Some((pk.clone(), sk.clone()))
                }
                _ => None,
            }))
    }

    pub async fn apply_status(&self, event: &StatusEvent) -> Result<StatusApplied, StoreError> {
        let key = match &event.message_id {
            Some(id) => message_key(id),
            None => match self.find_by_wamid(&event.wamid).await? {
                Some(key) => key,
                None => return Ok(StatusApplied::UnknownMessage),
            },
        };
        let to = event.status;
        let allowed = allowed_before(to);
        if allowed.is_empty() {
            return Ok(StatusApplied::Ignored);
        }
        let names = HashMap::from([("#status".to_owned(), "status".to_owned())]);
        let mut values: HashMap<String, AttributeValue> = HashMap::from([
            (":to".to_owned(), s(to.as_str())),
            (":wamid".to_owned(), s(event.wamid.as_str())),
            (":now".to_owned(), s(now_rfc3339())),
            (":at".to_owned(), s(event.at.as_str())),
        ]);
        let placeholders: Vec<String> = allowed
            .iter()
            .enumerate()
            .map(|(i, status)| {
                values.insert(format!(":from{i}"), s(status.as_str()));
                format!(":from{i}")
            })
            .collect();
        let mut condition = format!("#status IN ({})", placeholders.join(", "));
        let mut set = vec![
            "#status = :to".to_owned(),
            "wamid = if_not_exists(wamid, :wamid)".to_owned(),
            "updated_at = :now".to_owned(),
        ];
        if let Some(recipient) = &event.recipient_id {
            set.push("wa_id = if_not_exists(wa_id, :recipient)".to_owned());
            values.insert(":recipient".to_owned(), s(recipient.as_str()));
        }
        let mut remove = vec!["lease_until"];
        match to {
            MessageStatus::Failed => {
                set.push("failed_at = :at".to_owned());
                set.push("reason_code = :reason_code".to_owned());
                set.push("reason = :reason".to_owned());
                values.insert(":reason_code".to_owned(), s("whatsapp_error"));
                let error = event.error.as_ref();
                values.insert(
                    ":reason".to_owned(),
                    s(error.map_or("WhatsApp reported the message failed", |e| e.title.as_str())),
                );
                if let Some(error) = error {
                    set.push("error_code = :error_code".to_owned());
                    values.insert(":error_code".to_owned(), n(error.code));
                    if let Some(details) = &error.details {
                        set.push("error_detail = :error_detail".to_owned());
                        values.insert(":error_detail".to_owned(), s(details.as_str()));
                    }
                }
            }
            _ => {
                // Timestamps of every step reached, even when an earlier webhook never came.
                set.push("sent_at = if_not_exists(sent_at, :at)".to_owned());
                if matches!(to, MessageStatus::Delivered | MessageStatus::Read) {
                    set.push("delivered_at = if_not_exists(delivered_at, :at)".to_owned());
                }
                if to == MessageStatus::Read {
                    set.push("read_at = :at".to_owned());
                }
                // A message failed as an unknown outcome that WhatsApp now says went out was
                // sent after all: the late webhook corrects it.
                condition.push_str(" OR (#status = :failed AND reason_code = :unknown)");
                values.insert(":failed".to_owned(), s(MessageStatus::Failed.as_str()));
                values.insert(":unknown".to_owned(), s("unknown_outcome"));
                remove.extend(["reason_code", "reason"]);
            }
        }
        let expression = format!("SET {} REMOVE {}", set.join(", "), remove.join(", "));
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key_map(key.0.clone(), key.1.clone())))
            .update_expression(expression)
            .condition_expression(condition)
            .set_expression_attribute_names(Some(names))
            .set_expression_attribute_values(Some(values))
            .return_values(ReturnValue::AllOld)
            .send()
            .await;
        let old = match result {
            Ok(output) => output.attributes.unwrap_or_default(),
            Err(e) if is_condition_failure(&e) => return Ok(StatusApplied::Ignored),
            Err(e) => return Err(store_error("UpdateItem", e)),
        };
        let from = match old.get("status") {
            Some(AttributeValue::S(status)) => status.parse().unwrap_or(MessageStatus::Sending),
            _ => MessageStatus::Sending,
        };
        let message = match (old.get("dispatch_id"), old.get("row")) {
            (Some(AttributeValue::S(dispatch)), Some(AttributeValue::N(row))) => {
                MessageId::new(dispatch.clone(), row.parse().unwrap_or(0))
            }
            _ => {
                return Err(StoreError::Corrupt {
                    key: format!("{}/{}", key.0, key.1),
                    why: "message without dispatch_id/row".to_owned(),
                });
            }
        };
        self.move_counters(&message, from, to).await;
        Ok(StatusApplied::Moved { message, from, to })
    }

    /// Keeps the sharded counters equal to the messages' current statuses.
    async fn move_counters(&self, id: &MessageId, from: MessageStatus, to: MessageStatus) {
        let mut expression = vec!["#to :one".to_owned()];
        let mut names = HashMap::from([("#to".to_owned(), to.as_str().to_owned())]);
        let mut values = HashMap::from([(":one".to_owned(), n(1))]);
        if counted_status(from) {
            expression.push("#from :minus".to_owned());
            names.insert("#from".to_owned(), from.as_str().to_owned());
            values.insert(":minus".to_owned(), n(-1));
        }
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key_map(
                dispatch_pk(&id.dispatch_id),
                format!("COUNT#{:02}", id.row % COUNTER_SHARDS),
            )))
            .update_expression(format!("ADD {}", expression.join(", ")))
            .set_expression_attribute_names(Some(names))
            .set_expression_attribute_values(Some(values))
            .send()
            .await;
        if let Err(e) = result {
            // The review's exact recount repairs a lost increment.
            tracing::warn!(message_id = %id, error = %store_error("UpdateItem", e), "counter not moved");
        }
    }
}
