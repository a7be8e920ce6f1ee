//! Conversations, their recent messages, conversation events and the opt-out list, on the one
//! table. Listing reuses the `by-created` index with other partition values, so no new index:
//!
//! | listed          | gsi1pk             | gsi1sk                         |
//! |-----------------|--------------------|--------------------------------|
//! | open / expired  | `CONV#active`      | `<window_expires_at>#<key>`    |
//! | other states    | `CONV#<state>`     | `<updated_at>#<key>`           |
//! | events          | `EVENT#<type>`     | `<at>#<id>`                    |
//! | opt-outs        | `OPTOUT`           | `<created_at>#<key>`           |
//!
//! Open and expired conversations share a partition sorted by when their window ends, so
//! `open` is "ends after now" and `expired` "ended before now": both are right at read time
//! without anything flipping states when a window passes.

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::aws::dynamo::{
    CREATED_INDEX, DynamoStore, decode, encode, is_condition_failure, key_map, s, store_error,
};
use crate::domain::conversation::{
    Conversation, ConversationEvent, ConversationEventKind, ConversationState, Reactivation,
    ReplyOutcome, rfc3339,
};
use crate::domain::phone::match_key;
use crate::ports::{OptOut, OptOutStore, StoreError};

const CONVERSATION_SK: &str = "CONV";
const EVENT_SK: &str = "EVENT";
const OPT_OUT_SK: &str = "OPTOUT";
const OPT_OUT_LIST_KEY: &str = "OPTOUT";
/// Attempts of a read-modify-write of one conversation before giving up as busy.
const MODIFY_ATTEMPTS: u32 = 5;

fn conversation_pk(key: &str) -> String {
    format!("C#{key}")
}

fn list_partition(state: ConversationState) -> String {
    match state {
        ConversationState::Open | ConversationState::Expired => "CONV#active".to_owned(),
        other => format!("CONV#{}", other.as_str()),
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct ConversationItem {
    pk: String,
    sk: String,
    #[serde(rename = "type")]
    kind: String,
    key: String,
    wa_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    profile_name: Option<String>,
    state: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    window_expires_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    last_inbound_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    reactivation: Option<Reactivation>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    outcome: Option<String>,
    created_at: String,
    updated_at: String,
    version: u64,
    gsi1pk: String,
    gsi1sk: String,
    ttl: i64,
}

impl ConversationItem {
    fn of(c: &Conversation, ttl: i64) -> Self {
        // `expired` is derived; what is stored for it is `open` with a window in the past.
        let state = match c.stored_state {
            ConversationState::Expired => ConversationState::Open,
            other => other,
        };
        let gsi1sk = match state {
            ConversationState::Open => format!(
                "{}#{}",
                c.window_expires_at.as_deref().unwrap_or("0"),
                c.key
            ),
            _ => format!("{}#{}", c.updated_at, c.key),
        };
        Self {
            pk: conversation_pk(&c.key),
            sk: CONVERSATION_SK.to_owned(),
            kind: "conversation".to_owned(),
            key: c.key.clone(),
            wa_id: c.wa_id.clone(),
            profile_name: c.profile_name.clone(),
            state: state.as_str().to_owned(),
            window_expires_at: c.window_expires_at.clone(),
            last_inbound_at: c.last_inbound_at.clone(),
            reactivation: c.reactivation.clone(),
            outcome: c.outcome.map(|o| o.as_str().to_owned()),
            created_at: c.created_at.clone(),
            updated_at: c.updated_at.clone(),
            version: c.version,
            gsi1pk: list_partition(state),
            gsi1sk,
            ttl,
        }
    }

    fn into_conversation(self) -> Result<Conversation, StoreError> {
        let corrupt = |why: String| StoreError::Corrupt {
            key: self.pk.clone(),
            why,
        };
        let stored_state = self.state.parse::<ConversationState>().map_err(&corrupt)?;
        let outcome = self
            .outcome
            .as_deref()
            .map(str::parse::<ReplyOutcome>)
            .transpose()
            .map_err(&corrupt)?;
        Ok(Conversation {
            key: self.key,
            wa_id: self.wa_id,
            profile_name: self.profile_name,
            stored_state,
            window_expires_at: self.window_expires_at,
            last_inbound_at: self.last_inbound_at,
            reactivation: self.reactivation,
            outcome,
            created_at: self.created_at,
            updated_at: self.updated_at,
            version: self.version,
        })
    }
}

/// One message of a conversation, either way.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConversationMessage {
    /// `in` from the customer, `out` from us.
    pub direction: String,
    /// `text`, `button`, `template`, `image`…
    pub kind: String,
    /// The text, the button's label, or the template's name.
    pub text: String,
    pub wamid: String,
    pub at: String,
    /// Our message id, for a template we sent or the one a tap answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
    /// What an inbound message counted as: `accepted`, `declined`, `opted_out`, `replied`,
    /// `message`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answer: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
struct ConversationMessageItem {
    pk: String,
    sk: String,
    #[serde(rename = "type")]
    kind: String,
    #[serde(flatten)]
    message: ConversationMessage,
    ttl: i64,
}

#[derive(Debug, Serialize, Deserialize)]
struct EventItem {
    pk: String,
    sk: String,
    #[serde(rename = "type")]
    kind: String,
    event: ConversationEvent,
    gsi1pk: String,
    gsi1sk: String,
    ttl: i64,
}

#[derive(Debug, Serialize, Deserialize)]
struct OptOutItem {
    pk: String,
    sk: String,
    #[serde(rename = "type")]
    kind: String,
    key: String,
    phone: String,
    source: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    detail: Option<String>,
    created_at: String,
    gsi1pk: String,
    gsi1sk: String,
    // No `ttl`: a customer's request to receive nothing more does not lapse with retention.
}

/// One page of a list, and where the next starts (an opaque sort-key position).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next: Option<String>,
}

/// A read-modify-write lost to a concurrent writer every time.
fn busy(key: &str) -> StoreError {
    StoreError::Unavailable(format!(
        "conversation {key} changed under every one of {MODIFY_ATTEMPTS} attempts"
    ))
}

impl DynamoStore {
    pub async fn get_conversation(&self, phone: &str) -> Result<Option<Conversation>, StoreError> {
        let key = match_key(phone);
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key_map(
                conversation_pk(&key),
                CONVERSATION_SK.to_owned(),
            )))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| store_error("GetItem", e))?;
        output
            .item
            .map(|item| decode::<ConversationItem>(item)?.into_conversation())
            .transpose()
    }

    /// Writes `conversation` as version `previous_version + 1`, only if the stored one is
    /// still `previous_version` (0: none stored). False when someone else wrote in between.
    pub async fn save_conversation(
        &self,
        conversation: &Conversation,
        previous_version: u64,
    ) -> Result<bool, StoreError> {
        let mut next = conversation.clone();
        next.version = previous_version + 1;
        let item = encode(&ConversationItem::of(&next, self.ttl()))?;
        let request = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item));
        let request = if previous_version == 0 {
            request.condition_expression("attribute_not_exists(pk)")
        } else {
            request
                .condition_expression("version = :previous")
                .expression_attribute_values(
                    ":previous",
                    AttributeValue::N(previous_version.to_string()),
                )
        };
        match request.send().await {
            Ok(_) => Ok(true),
            Err(e) if is_condition_failure(&e) => Ok(false),
            Err(e) => Err(store_error("PutItem", e)),
        }
    }

    /// Reads the conversation of `wa_id` (a new one when `create` and there is none), lets
    /// `change` modify it, and writes it back conditionally, again on a concurrent write.
    /// `None` when there is none and `create` is false.
    pub async fn modify_conversation<R>(
        &self,
        wa_id: &str,
        now: DateTime<Utc>,
        create: bool,
        mut change: impl FnMut(&mut Conversation) -> R,
    ) -> Result<Option<(Conversation, R)>, StoreError> {
        for _ in 0..MODIFY_ATTEMPTS {
            let (mut conversation, previous) = match self.get_conversation(wa_id).await? {
                Some(existing) => {
                    let version = existing.version;
                    (existing, version)
                }
                None if create => (Conversation::new(wa_id, now), 0),
                None => return Ok(None),
            };
            let result = change(&mut conversation);
            conversation.updated_at = rfc3339(now);
            if self.save_conversation(&conversation, previous).await? {
                conversation.version = previous + 1;
                return Ok(Some((conversation, result)));
            }
        }
        Err(busy(&match_key(wa_id)))
    }

    /// Conversations in `state` at `now`, a page at a time: open ones soonest to expire
    /// first, the others most recent first.
    pub async fn list_conversations(
        &self,
        state: ConversationState,
        now: DateTime<Utc>,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Page<Conversation>, StoreError> {
        let now_text = rfc3339(now);
        let query = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(CREATED_INDEX)
            .expression_attribute_values(":pk", s(list_partition(state)))
            .limit(i32::try_from(limit).unwrap_or(i32::MAX));
        let query = match (state, after) {
            (ConversationState::Open, after) => {
                // A cursor is a position later than now, or it would not have been handed out.
                let bound = after.map_or(now_text.clone(), |a| a.max(&now_text).to_owned());
                query
                    .key_condition_expression("gsi1pk = :pk AND gsi1sk > :bound")
                    .expression_attribute_values(":bound", s(bound))
            }
            (ConversationState::Expired, after) => {
                let bound = after.map_or(now_text.clone(), |a| a.min(&now_text).to_owned());
                query
                    .key_condition_expression("gsi1pk = :pk AND gsi1sk < :bound")
                    .expression_attribute_values(":bound", s(bound))
                    .scan_index_forward(false)
            }
            (_, Some(after)) => query
                .key_condition_expression("gsi1pk = :pk AND gsi1sk < :bound")
                .expression_attribute_values(":bound", s(after))
                .scan_index_forward(false),
            (_, None) => query
                .key_condition_expression("gsi1pk = :pk")
                .scan_index_forward(false),
        };
        let output = query.send().await.map_err(|e| store_error("Query", e))?;
        let next = output
            .last_evaluated_key
            .as_ref()
            .and_then(|key| key.get("gsi1sk"))
            .and_then(|value| value.as_s().ok())
            .cloned();
        let items = output
            .items
            .unwrap_or_default()
            .into_iter()
            .map(|item| decode::<ConversationItem>(item)?.into_conversation())
            .collect::<Result<Vec<_>, _>>()?
            .into_iter()
            // Exact at the millisecond the index and the clock disagree on.
            .filter(|c| c.state_at(now) == state)
            .collect();
        Ok(Page { items, next })
    }

    /// Records one message of a conversation; false when it was recorded before (a
    /// redelivered webhook).
    pub async fn record_conversation_message(
        &self,
        conversation_key: &str,
        message: &ConversationMessage,
    ) -> Result<bool, StoreError> {
        let item = ConversationMessageItem {
            pk: conversation_pk(conversation_key),
            sk: message_sk(&message.at, &message.wamid),
            kind: "conversation_message".to_owned(),
            message: message.clone(),
            ttl: self.ttl(),
        };
        self.put_if_absent(encode(&item)?).await
    }

    /// Whether an inbound message was already recorded.
    pub async fn has_conversation_message(
        &self,
        conversation_key: &str,
        at: &str,
        wamid: &str,
    ) -> Result<bool, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key_map(
                conversation_pk(conversation_key),
                message_sk(at, wamid),
            )))
            .projection_expression("pk")
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| store_error("GetItem", e))?;
        Ok(output.item.is_some())
    }

    /// The latest `limit` messages of a conversation, newest first.
    pub async fn recent_conversation_messages(
        &self,
        conversation_key: &str,
        limit: usize,
    ) -> Result<Vec<ConversationMessage>, StoreError> {
        let output = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND begins_with(sk, :messages)")
            .expression_attribute_values(":pk", s(conversation_pk(conversation_key)))
            .expression_attribute_values(":messages", s("M#"))
            .scan_index_forward(false)
            .limit(i32::try_from(limit).unwrap_or(i32::MAX))
            .send()
            .await
            .map_err(|e| store_error("Query", e))?;
        output
            .items
            .unwrap_or_default()
            .into_iter()
            .map(|item| decode::<ConversationMessageItem>(item).map(|i| i.message))
            .collect()
    }

    /// Stores an event; false when one with its id exists (the same inbound message again).
    pub async fn record_event(&self, event: &ConversationEvent) -> Result<bool, StoreError> {
        let item = EventItem {
            pk: format!("EV#{}", event.id),
            sk: EVENT_SK.to_owned(),
            kind: "event".to_owned(),
            event: event.clone(),
            gsi1pk: format!("EVENT#{}", event.kind.as_str()),
            gsi1sk: format!("{}#{}", event.at, event.id),
            ttl: self.ttl(),
        };
        self.put_if_absent(encode(&item)?).await
    }

    /// Events of the given types, newest first, a page at a time.
    pub async fn list_events(
        &self,
        kinds: &[ConversationEventKind],
        after: Option<&str>,
        limit: usize,
    ) -> Result<Page<ConversationEvent>, StoreError> {
        let mut found: Vec<(String, ConversationEvent)> = Vec::new();
        let mut more = false;
        for kind in kinds {
            let page = self
                .query_list(&format!("EVENT#{}", kind.as_str()), after, limit)
                .await?;
            more |= page.next.is_some();
            for item in page.items {
                let item = decode::<EventItem>(item)?;
                found.push((item.gsi1sk, item.event));
            }
        }
        found.sort_by(|a, b| b.0.cmp(&a.0));
        more |= found.len() > limit;
        found.truncate(limit);
        let next = more
            .then(|| found.last().map(|(position, _)| position.clone()))
            .flatten();
        Ok(Page {
            items: found.into_iter().map(|(_, event)| event).collect(),
            next,
        })
    }

    /// The suppression list, newest first, a page at a time.
    pub async fn list_opt_outs(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Page<OptOut>, StoreError> {
        let page = self.query_list(OPT_OUT_LIST_KEY, after, limit).await?;
        let items = page
            .items
            .into_iter()
            .map(|item| decode::<OptOutItem>(item).map(OptOutItem::into_opt_out))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Page {
            items,
            next: page.next,
        })
    }

    pub async fn get_opt_out(&self, phone: &str) -> Result<Option<OptOut>, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(opt_out_key(phone)))
            .send()
            .await
            .map_err(|e| store_error("GetItem", e))?;
        output
            .item
            .map(|item| decode::<OptOutItem>(item).map(OptOutItem::into_opt_out))
            .transpose()
    }

    /// Takes a number off the list; false when it was not on it.
    pub async fn remove_opt_out(&self, phone: &str) -> Result<bool, StoreError> {
        let output = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(opt_out_key(phone)))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllOld)
            .send()
            .await
            .map_err(|e| store_error("DeleteItem", e))?;
        Ok(output.attributes.is_some_and(|a| !a.is_empty()))
    }

    /// One page of the `by-created` index under `partition`, newest first.
    async fn query_list(
        &self,
        partition: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Page<std::collections::HashMap<String, AttributeValue>>, StoreError> {
        let query = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(CREATED_INDEX)
            .expression_attribute_values(":pk", s(partition))
            .scan_index_forward(false)
            .limit(i32::try_from(limit).unwrap_or(i32::MAX));
        let query = match after {
            Some(after) => query
                .key_condition_expression("gsi1pk = :pk AND gsi1sk < :after")
                .expression_attribute_values(":after", s(after)),
            None => query.key_condition_expression("gsi1pk = :pk"),
        };
        let output = query.send().await.map_err(|e| store_error("Query", e))?;
        let next = output
            .last_evaluated_key
            .as_ref()
            .and_then(|key| key.get("gsi1sk"))
            .and_then(|value| value.as_s().ok())
            .cloned();
        Ok(Page {
            items: output.items.unwrap_or_default(),
            next,
        })
    }
}

fn message_sk(at: &str, wamid: &str) -> String {
    format!("M#{at}#{wamid}")
}

fn opt_out_key(phone: &str) -> std::collections::HashMap<String, AttributeValue> {
    key_map(
        format!("OPTOUT#{}", match_key(phone)),
        OPT_OUT_SK.to_owned(),
    )
}

impl OptOutItem {
    fn into_opt_out(self) -> OptOut {
        OptOut {
            key: self.key,
            phone: self.phone,
            source: self.source,
            detail: self.detail,
            created_at: self.created_at,
        }
    }
}

impl OptOutStore for DynamoStore {
    async fn is_opted_out(&self, phone: &str) -> Result<bool, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(opt_out_key(phone)))
            .projection_expression("pk")
            .send()
            .await
            .map_err(|e| store_error("GetItem", e))?;
        Ok(output.item.is_some())
    }

    async fn add_opt_out(&self, opt_out: &OptOut) -> Result<bool, StoreError> {
        let key = match_key(&opt_out.phone);
        let item = OptOutItem {
            pk: format!("OPTOUT#{key}"),
            sk: OPT_OUT_SK.to_owned(),
            kind: "opt_out".to_owned(),
            gsi1pk: OPT_OUT_LIST_KEY.to_owned(),
            gsi1sk: format!("{}#{key}", opt_out.created_at),
            key,
            phone: opt_out.phone.clone(),
            source: opt_out.source.clone(),
            detail: opt_out.detail.clone(),
            created_at: opt_out.created_at.clone(),
        };
        self.put_if_absent(encode(&item)?).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversation_items_round_trip_and_list_where_their_state_says() {
        let now = DateTime::parse_from_rfc3339("2026-12-01T10:00:00Z")
            .expect("time")
            .with_timezone(&Utc);
        let mut c = Conversation::new("553187654321", now);
        c.apply(crate::domain::conversation::Answer::Message, now);
        c.version = 3;
        let item = ConversationItem::of(&c, 1);
        assert_eq!(item.pk, "C#553187654321");
        assert_eq!(item.gsi1pk, "CONV#active");
        assert_eq!(item.gsi1sk, "2026-12-02T10:00:00.000Z#553187654321");
        let back = decode::<ConversationItem>(encode(&item).expect("encodes"))
            .expect("decodes")
            .into_conversation()
            .expect("valid");
        assert_eq!(back, c);
        c.close();
        assert_eq!(ConversationItem::of(&c, 1).gsi1pk, "CONV#closed");
    }
}
