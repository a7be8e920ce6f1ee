//! Sender pacing: the real sender handler and the real Cloud API client against an
//! in-process wa-sim answering every send after a fixed latency (150 ms), with `concurrency`
//! emulated Lambda invocations — each its own execution environment with its own `Sender`
//! (own rate limiter at rate ÷ concurrency, own HTTP client and template cache) — taking
//! batches of `batch` records from a shared queue, as the SQS event source does.
//!
//! The store and the queue are in memory: moto cannot take 1,000 conditional writes a
//! second, and what is measured is the pace WhatsApp sees. The event source is idealised
//! (a batch is handed over the moment an invocation is free), so the figures are an upper
//! bound of what the design achieves: real polling only adds gaps.
//!
//! The rate is read from wa-sim's record of accepted sends (`accepted_at`, milliseconds).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anna_sender::{Pacing, Sender};
use anna_shared::aws::sqs::SendRecord;
use anna_shared::domain::dispatch::{Dispatch, DispatchSource, DispatchState};
use anna_shared::domain::message::{MessageId, MessageRecord};
use anna_shared::ports::{MessageStore, WriteMode};
use anna_shared::whatsapp::cloud::CloudWhatsApp;
use anyhow::{Context, ensure};
use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use chrono::DateTime;
use serde::{Deserialize, Serialize};
use wa_sim::{SimConfig, SimServer};

use crate::inputs::{LANGUAGE, TEMPLATE};
use crate::memory::{MemQueue, MemStore};

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct PacingConfig {
    pub rate: u32,
    pub concurrency: u32,
    pub sends_in_flight: usize,
    pub batch: usize,
    pub latency_ms: u64,
    /// How long the run should last at the configured rate; messages = rate × seconds.
    pub seconds: u32,
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct PacingOutcome {
    pub sent: usize,
    /// Sends ÷ (last accepted − first accepted).
    pub achieved_rate: f64,
    /// Most sends accepted within any 1-second window.
    pub max_window: usize,
    pub wall_seconds: f64,
    pub batches: usize,
    pub failed_records: usize,
}

const DISPATCH: &str = "bench-pacing";

pub async fn run(config: PacingConfig) -> anyhow::Result<PacingOutcome> {
    let sim = SimServer::start(
        SimConfig {
            latency: Duration::from_millis(config.latency_ms),
            ..SimConfig::default()
        },
        ([127, 0, 0, 1], 0).into(),
    )
    .await?;
    let store = MemStore::keeping();
    let queue = MemQueue::new(true);
    let messages = (config.rate * config.seconds) as usize;
    let now = anna_shared::aws::dynamo::now_rfc3339();
    let mut dispatch = Dispatch::new(
        DISPATCH.to_owned(),
        TEMPLATE.to_owned(),
        LANGUAGE.to_owned(),
        DispatchSource::Api,
        &now,
    );
    dispatch.state = DispatchState::Sending;
    store.put_dispatch(dispatch);
    let records: Vec<MessageRecord> = (0..messages)
        .map(|i| {
            let row = (i + 2) as u32;
            let phone = format!("+5511{}", 900_000_000 + i);
            MessageRecord::queued(
                MessageId::new(DISPATCH, row),
                TEMPLATE,
                LANGUAGE,
                phone.clone(),
                phone,
                vec![
                    crate::inputs::name(i),
                    "25/12/2026".to_owned(),
                    crate::inputs::time(i),
                ],
                Vec::new(),
                &now,
            )
        })
        .collect();
    store.put_messages(&records, WriteMode::Fresh).await?;
    let ids: Vec<MessageId> = records.into_iter().map(|r| r.id).collect();
    queue.push_back(ids);

    let pacing = Pacing {
        rate_per_second: config.rate,
        max_concurrency: config.concurrency,
        sends_in_flight: config.sends_in_flight,
    };
    let in_flight = Arc::new(AtomicUsize::new(0));
    let batches = Arc::new(AtomicUsize::new(0));
    let failed = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut invocations = tokio::task::JoinSet::new();
    for _ in 0..config.concurrency {
        let sender = Sender::new(
            store.clone(),
            CloudWhatsApp::new(crate::stack::cloud_api(&sim), Duration::from_secs(300))?,
            MemQueue::new(false),
            &pacing,
            Duration::from_secs(120),
            5,
        );
        let (queue, in_flight, batches, failed) = (
            queue.clone(),
            in_flight.clone(),
            batches.clone(),
            failed.clone(),
        );
        let batch = config.batch;
        invocations.spawn(async move {
            loop {
                in_flight.fetch_add(1, Ordering::SeqCst);
                let ids = queue.pop(batch);
                if ids.is_empty() {
                    if in_flight.fetch_sub(1, Ordering::SeqCst) == 1 && queue.len() == 0 {
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    continue;
                }
                let mut event = SqsEvent::default();
                event.records = ids
                    .iter()
                    .enumerate()
                    .map(|(n, id)| {
                        let mut record = SqsMessage::default();
                        record.message_id = Some(n.to_string());
                        record.receipt_handle = Some(format!("rh-{id}"));
                        record.body = serde_json::to_string(&SendRecord::for_message(id)).ok();
                        record.event_source = Some("aws:sqs".to_owned());
                        record
                    })
                    .collect();
                let response = anna_sender::handle(&sender, event).await;
                batches.fetch_add(1, Ordering::Relaxed);
                let retry: Vec<MessageId> = response
                    .batch_item_failures
                    .iter()
                    .filter_map(|f| f.item_identifier.parse::<usize>().ok())
                    .filter_map(|n| ids.get(n).cloned())
                    .collect();
                failed.fetch_add(retry.len(), Ordering::Relaxed);
                queue.push_back(retry);
                in_flight.fetch_sub(1, Ordering::SeqCst);
            }
        });
    }
    while let Some(done) = invocations.join_next().await {
        done.context("an emulated invocation panicked")?;
    }
    let wall_seconds = started.elapsed().as_secs_f64();
    let sends = sim.sends();
    sim.shutdown().await;
    let mut times: Vec<i64> = sends
        .iter()
        .map(|s| {
            DateTime::parse_from_rfc3339(&s.accepted_at)
                .map(|t| t.timestamp_millis())
                .with_context(|| format!("accepted_at {:?}", s.accepted_at))
        })
        .collect::<Result<_, _>>()?;
    times.sort_unstable();
    ensure!(
        times.len() == messages,
        "wa-sim accepted {} sends of {messages}",
        times.len()
    );
    let (rate, window) = rate_and_window(&times);
    Ok(PacingOutcome {
        sent: times.len(),
        achieved_rate: rate,
        max_window: window,
        wall_seconds,
        batches: batches.load(Ordering::Relaxed),
        failed_records: failed.load(Ordering::Relaxed),
    })
}

/// Average rate over the run, and the most events in any 1-second window, from sorted
/// millisecond timestamps.
pub fn rate_and_window(times: &[i64]) -> (f64, usize) {
    let (Some(first), Some(last)) = (times.first(), times.last()) else {
        return (0.0, 0);
    };
    let span = (last - first) as f64 / 1000.0;
    let rate = if span > 0.0 {
        (times.len() - 1) as f64 / span
    } else {
        f64::NAN
    };
    let mut window = 0;
    let mut start = 0;
    for end in 0..times.len() {
        while times[end] - times[start] >= 1000 {
            start += 1;
        }
        window = window.max(end - start + 1);
    }
    (rate, window)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_count_events_less_than_a_second_apart() {
        // 10 per second, evenly: any 1-second window holds 10.
        let times: Vec<i64> = (0..100).map(|i| i * 100).collect();
        let (rate, window) = rate_and_window(&times);
        assert!((rate - 10.0).abs() < 0.2, "{rate}");
        assert_eq!(window, 10);
        // A burst of 5 within 10 ms on top.
        let mut bursty = times.clone();
        bursty.extend([5001, 5002, 5003, 5004, 5005]);
        bursty.sort_unstable();
        assert_eq!(rate_and_window(&bursty).1, 15);
    }
}
