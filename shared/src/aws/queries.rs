//! Reading dispatches and messages a page at a time, for the API and the results spreadsheet.
//!
//! - Dispatches, newest first, from the `by-created` index.
//! - A dispatch's messages in row order, merged from its 16 message shards without reading
//!   more than a bounded number of items per request ([`MessageScan`]).

use std::collections::{HashMap, VecDeque};

use aws_sdk_dynamodb::types::AttributeValue;

use crate::aws::dynamo::{
    CREATED_INDEX, DISPATCH_LIST_KEY, DispatchItem, DynamoStore, MESSAGE_SHARDS, MessageItem,
    decode, dispatch_pk, s, store_error,
};
use crate::aws::schedule::row_of_sk;
use crate::domain::dispatch::Dispatch;
use crate::domain::message::{MessageRecord, MessageStatus};
use crate::ports::StoreError;

/// Where a page of the dispatch list ended: the last dispatch returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DispatchPosition {
    pub created_at: String,
    pub id: String,
}

#[derive(Debug, Clone, Default)]
pub struct DispatchPage {
    pub dispatches: Vec<Dispatch>,
    /// Where the next page starts, if there may be one.
    pub next: Option<DispatchPosition>,
}

#[derive(Debug, Clone, Default)]
pub struct MessagePage {
    pub messages: Vec<MessageRecord>,
    /// The row after which the next page starts, if there may be one.
    pub next: Option<u32>,
}

/// Query rounds one page may use before it answers with what it has (a page filtered on a
/// rare status can come back short, with a cursor to go on from).
const PAGE_ROUNDS: usize = 8;

impl DynamoStore {
    /// Dispatches newest first, `limit` at a time.
    pub async fn list_dispatches(
        &self,
        limit: u32,
        after: Option<&DispatchPosition>,
    ) -> Result<DispatchPage, StoreError> {
        let mut query = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(CREATED_INDEX)
            .key_condition_expression("gsi1pk = :list")
            .expression_attribute_values(":list", s(DISPATCH_LIST_KEY))
            .scan_index_forward(false)
            .limit(i32::try_from(limit.clamp(1, 1000)).unwrap_or(1000));
        if let Some(position) = after {
            query = query.set_exclusive_start_key(Some(HashMap::from([
                ("pk".to_owned(), s(dispatch_pk(&position.id))),
                ("sk".to_owned(), s("META")),
                ("gsi1pk".to_owned(), s(DISPATCH_LIST_KEY)),
                (
                    "gsi1sk".to_owned(),
                    s(format!("{}#{}", position.created_at, position.id)),
                ),
            ])));
        }
        let output = query.send().await.map_err(|e| store_error("Query", e))?;
        let dispatches = output
            .items
            .unwrap_or_default()
            .into_iter()
            .map(|item| decode::<DispatchItem>(item)?.into_dispatch())
            .collect::<Result<Vec<_>, _>>()?;
        let next = match (output.last_evaluated_key, dispatches.last()) {
            (Some(_), Some(last)) => Some(DispatchPosition {
                created_at: last.created_at.clone(),
                id: last.id.clone(),
            }),
            _ => None,
        };
        Ok(DispatchPage { dispatches, next })
    }

    /// Up to `limit` messages of a dispatch after row `after`, in row order, optionally only
    /// those in `status`.
    pub async fn message_page(
        &self,
        dispatch_id: &str,
        after: Option<u32>,
        status: Option<MessageStatus>,
        limit: usize,
    ) -> Result<MessagePage, StoreError> {
        let limit = limit.max(1);
        // Rows are spread round-robin over the shards, so each shard holds about limit / 16
        // of the next `limit` rows; a filter needs more items read per shard.
        let per_query = match status {
            None => (limit / MESSAGE_SHARDS as usize) * 2 + 2,
            Some(_) => limit.max(50),
        };
        let mut scan = MessageScan::new(self, dispatch_id, after, status, Some(per_query));
        let mut messages = Vec::with_capacity(limit);
        let mut rounds = 0;
        while messages.len() < limit && rounds < PAGE_ROUNDS {
            match scan.next_chunk(limit - messages.len()).await? {
                Chunk::Messages(chunk) => messages.extend(chunk),
                Chunk::Done => {
                    return Ok(MessagePage {
                        messages,
                        next: None,
                    });
                }
                Chunk::Fetched => rounds += 1,
            }
        }
        let next = if messages.len() >= limit {
            if scan.is_done() {
                None
            } else {
                messages.last().map(|m| m.id.row)
            }
        } else {
            // Out of rounds: everything up to the scan's position has been looked at.
            scan.position().or(after)
        };
        Ok(MessagePage { messages, next })
    }

    /// Every message of a dispatch in row order, in chunks, without holding them all.
    pub fn scan_messages<'a>(&'a self, dispatch_id: &'a str) -> MessageScan<'a> {
        MessageScan::new(self, dispatch_id, None, None, None)
    }
}

/// What one step of a [`MessageScan`] produced.
#[derive(Debug)]
pub enum Chunk {
    /// The next messages in row order (never empty).
    Messages(Vec<MessageRecord>),
    /// Nothing could be handed out yet; more items were read from the shards.
    Fetched,
    /// Every message has been handed out.
    Done,
}

struct Shard {
    pk: String,
    buffer: VecDeque<MessageRecord>,
    /// The highest row this shard has been read through (-1: nothing read yet).
    through: i64,
    start_key: Option<HashMap<String, AttributeValue>>,
    exhausted: bool,
}

/// A k-way merge of a dispatch's message shards in row order. Each shard is read page by page;
/// a message is handed out only once every shard has been read past its row, so the order is
/// exact while at most one page per shard is held.
pub struct MessageScan<'a> {
    store: &'a DynamoStore,
    after: i64,
    status: Option<MessageStatus>,
    per_query: Option<usize>,
    shards: Vec<Shard>,
    /// The last row handed out.
    emitted: Option<u32>,
}

impl<'a> MessageScan<'a> {
    fn new(
        store: &'a DynamoStore,
        dispatch_id: &str,
        after: Option<u32>,
        status: Option<MessageStatus>,
        per_query: Option<usize>,
    ) -> Self {
        let start = after.map_or(-1, i64::from);
        let shards = (0..MESSAGE_SHARDS)
            .map(|shard| Shard {
                pk: format!("{}#{shard:02}", dispatch_pk(dispatch_id)),
                buffer: VecDeque::new(),
                through: start,
                start_key: None,
                exhausted: false,
            })
            .collect();
        Self {
            store,
            after: start,
            status,
            per_query,
            shards,
            emitted: None,
        }
    }

    /// Everything at or below this row has been read from every shard.
    fn bound(&self) -> i64 {
        self.shards
            .iter()
            .filter(|shard| !shard.exhausted)
            .map(|shard| shard.through)
            .min()
            .unwrap_or(i64::MAX)
    }

    /// True when every message has been handed out.
    pub fn is_done(&self) -> bool {
        self.shards
            .iter()
            .all(|shard| shard.exhausted && shard.buffer.is_empty())
    }

    /// The row up to which the scan has handed out (or skipped past) everything.
    pub fn position(&self) -> Option<u32> {
        let bound = self.bound();
        let bound = if bound == i64::MAX { None } else { Some(bound) };
        let handed_out_to = match (self.emitted.map(i64::from), bound) {
            (Some(emitted), Some(bound)) => Some(emitted.max(bound)),
            (emitted, bound) => emitted.or(bound),
        };
        handed_out_to
            .filter(|row| *row > self.after)
            .and_then(|row| u32::try_from(row).ok())
    }

    /// Up to `max` next messages, or a report that more was read, or the end.
    pub async fn next_chunk(&mut self, max: usize) -> Result<Chunk, StoreError> {
        let bound = self.bound();
        let mut out = Vec::new();
        while out.len() < max.max(1) {
            let next = self
                .shards
                .iter()
                .enumerate()
                .filter_map(|(i, shard)| shard.buffer.front().map(|m| (i, m.id.row)))
                .filter(|(_, row)| i64::from(*row) <= bound)
                .min_by_key(|(_, row)| *row);
            let Some((index, _)) = next else { break };
            if let Some(message) = self.shards[index].buffer.pop_front() {
                out.push(message);
            }
        }
        if let Some(last) = out.last() {
            self.emitted = Some(last.id.row);
            return Ok(Chunk::Messages(out));
        }
        if self.is_done() {
            return Ok(Chunk::Done);
        }
        // Read more from the shards that hold the bound back.
        let lagging: Vec<usize> = self
            .shards
            .iter()
            .enumerate()
            .filter(|(_, shard)| !shard.exhausted && shard.through == bound)
            .map(|(i, _)| i)
            .collect();
        let reads = lagging.iter().map(|&i| self.read_shard(i));
        let pages = futures::future::try_join_all(reads).await?;
        for (i, (items, last_key)) in lagging.into_iter().zip(pages) {
            let shard = &mut self.shards[i];
            let last_row = last_key
                .as_ref()
                .and_then(|key| match key.get("sk") {
                    Some(AttributeValue::S(sk)) => row_of_sk(sk),
                    _ => None,
                })
                .map(i64::from);
            shard.buffer.extend(items);
            match (last_key, last_row) {
                (Some(key), Some(row)) => {
                    shard.through = row;
                    shard.start_key = Some(key);
                }
                _ => {
                    shard.exhausted = true;
                    shard.start_key = None;
                }
            }
        }
        Ok(Chunk::Fetched)
    }

    async fn read_shard(
        &self,
        index: usize,
    ) -> Result<(Vec<MessageRecord>, Option<HashMap<String, AttributeValue>>), StoreError> {
        let shard = &self.shards[index];
        let after = if self.after < 0 {
            "R#".to_owned()
        } else {
            format!("R#{:010}", self.after)
        };
        let mut query = self
            .store
            .client
            .query()
            .table_name(&self.store.table)
            .key_condition_expression("pk = :pk AND sk > :after")
            .expression_attribute_values(":pk", s(shard.pk.as_str()))
            .expression_attribute_values(":after", s(after))
            .consistent_read(true)
            .set_exclusive_start_key(shard.start_key.clone());
        if let Some(limit) = self.per_query {
            query = query.limit(i32::try_from(limit.clamp(1, 1000)).unwrap_or(1000));
        }
        if let Some(status) = self.status {
            query = query
                .filter_expression("#status = :status")
                .expression_attribute_names("#status", "status")
                .expression_attribute_values(":status", s(status.as_str()));
        }
        let output = query.send().await.map_err(|e| store_error("Query", e))?;
        let items = output
            .items
            .unwrap_or_default()
            .into_iter()
            .map(|item| decode::<MessageItem>(item)?.into_record())
            .collect::<Result<Vec<_>, _>>()?;
        Ok((items, output.last_evaluated_key))
    }
}
