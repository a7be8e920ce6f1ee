//! The short soak: a few hundred recipients across several dispatches while wa-sim injects
//! server errors, lost answers, hangs, throttling and pair-rate refusals, SQS delivers records
//! twice, the sender is killed mid-batch, and status webhooks reach the API duplicated and in
//! reverse order. Afterwards every row must be in exactly one final
//! state, no message may have reached WhatsApp twice, and the counters must agree with the
//! messages.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anna_integration_tests::api::{APP_SECRET, ApiServer};
use anna_integration_tests::wa_sim::{Faults, WebhookConfig};
use anna_integration_tests::{Options, TestStack};
use anna_local::runner::poll_once;
use anna_review::ReviewRules;
use anna_sender::{Pacing, RetryPolicy};
use anna_shared::aws::dynamo::now_rfc3339;
use anna_shared::aws::sqs::{SendRecord, SqsSendQueue};
use anna_shared::delivery::UnknownOutcomePolicy;
use anna_shared::domain::message::{MessageId, MessageStatus};
use anna_shared::ports::SendQueue;
use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};

const LEASE: Duration = Duration::from_secs(2);

/// Part of `make test`: a few hundred recipients.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn short_soak_under_faults_loses_nothing_and_sends_nothing_twice() {
    // wa-sim's limit well under what moto lets the harness reach, so 130429 really happens.
    soak(3, 100, 300, 20).await;
}

/// `make soak`: at least 20,000 recipients (`ANNA_SOAK_RECIPIENTS` per dispatch, default
/// 5,000, over four dispatches), paced at `ANNA_SOAK_RATE` msg/s. The default, 20, is what
/// moto carries on a 2-core machine (every send is four or five DynamoDB calls, and moto
/// answers one at a time): at 80 the pace would be moto's, not the sender's, and wa-sim's
/// limit just under the rate would never answer 130429.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "long: run with `make soak`"]
async fn long_soak() {
    let number = |name: &str, default: usize| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let rate = number("ANNA_SOAK_RATE", 20) as u32;
    let recipients = number("ANNA_SOAK_RECIPIENTS", 5_000);
    soak(4, recipients, rate, (rate * 97 / 100).max(1)).await;
}

async fn soak(dispatches: usize, recipients: usize, rate: u32, wa_limit: u32) {
    let mut stack = TestStack::start_with(Options {
        pacing: Pacing {
            rate_per_second: rate,
            max_concurrency: 1,
            sends_in_flight: 10,
        },
        max_attempts: 5,
        whatsapp_timeout: Duration::from_millis(400),
        lease: LEASE,
        ..Options::default()
    })
    .await;
    stack.sender.retry = RetryPolicy {
        base: Duration::from_millis(100),
        cap: Duration::from_millis(800),
        pair_rate_wait: Duration::from_secs(1),
    };
    // Status webhooks to the real API: some duplicated, every send's statuses in reverse
    // order (`read` before `sent`). They also settle unknown outcomes that did go out.
    let api = ApiServer::start(&stack).await;
    stack.sim.set_webhooks(WebhookConfig {
        url: Some(format!("{}/webhook", api.base)),
        app_secret: APP_SECRET.to_owned(),
        step_ms: 20,
        delivered_ratio: 0.5,
        read_ratio: 0.5,
        duplicate_rate: 0.05,
        out_of_order: true,
    });
    stack.sim.set_faults(Faults {
        server_error_rate: 0.05,
        hang_before_accept_rate: 0.01,
        hang_after_accept_rate: 0.02,
        hang_ms: Some(600),
        throughput_per_second: Some(wa_limit),
        pair_rate_error_rate: 0.02,
        ..Faults::default()
    });

    let mut ids = Vec::new();
    for d in 0..dispatches {
        let mut csv = String::from("telefone;loja;nome;data\n");
        for i in 0..recipients {
            csv.push_str(&format!(
                "551198{:07};Loja {d};Cliente {i};25/12/2026\n",
                d * 10_000 + i
            ));
        }
        let key = format!("inbox/boas_vindas/pt_BR/soak-{d}.csv");
        ids.push(stack.put_file(&key, csv.into_bytes()).await);
    }

    let queue = SqsSendQueue::new(stack.sqs.clone(), stack.stack.send_queue_url.clone());
    let started = Instant::now();
    // Twice the time the pace needs, at the configured rate or at the 5 msg/s moto carries
    // at the least (whichever is slower), and four minutes at least.
    let pace = rate.clamp(1, MOTO_FLOOR_RATE) as usize;
    let settle_within = Duration::from_secs((2 * dispatches * recipients / pace).max(240) as u64);
    let kills = AtomicUsize::new(0);
    let duplicates = AtomicUsize::new(0);
    let last_busy = std::sync::Mutex::new(Instant::now());
    let busy = || *last_busy.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
    // Each loop polls like one concurrent Lambda invocation until both queues have been
    // empty for a while; the sender invocations share the one sender, so its pace is the
    // whole number's.
    let until_quiet = |invocation: Option<usize>| {
        let (stack, queue, kills, duplicates, last_busy) =
            (&stack, &queue, &kills, &duplicates, &last_busy);
        async move {
            for batch in 0usize.. {
                assert!(
                    started.elapsed() < settle_within,
                    "soak did not settle within {settle_within:?}"
                );
                let idle = last_busy
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .elapsed();
                if idle > QUIET {
                    break;
                }
                let Some(invocation) = invocation else {
                    if stack.pump_uploads().await > 0 {
                        busy();
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                };
                let fault = match (invocation, batch % 12) {
                    (0, 5) => Fault::Killed,
                    (1, 3 | 7 | 11) => Fault::DeliveredTwice,
                    _ => Fault::None,
                };
                let polled = poll_once(
                    &stack.sqs,
                    &stack.stack.send_queue_url,
                    Duration::ZERO,
                    |event| async move {
                        match fault {
                            Fault::Killed => {
                                kills.fetch_add(1, Ordering::Relaxed);
                                killed_mid_batch(stack, event).await
                            }
                            Fault::DeliveredTwice => {
                                // At-least-once delivery: some records arrive again later.
                                let again = sampled_message_ids(&event);
                                let response = anna_sender::handle(&stack.sender, event).await;
                                duplicates.fetch_add(again.len(), Ordering::Relaxed);
                                queue.enqueue(&again).await.expect("enqueue duplicates");
                                response
                            }
                            Fault::None => anna_sender::handle(&stack.sender, event).await,
                        }
                    },
                )
                .await
                .expect("polling the send queue");
                if polled > 0 {
                    busy();
                } else {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    };
    futures::future::join_all(
        std::iter::once(None)
            .chain((0..INVOCATIONS).map(Some))
            .map(until_quiet),
    )
    .await;
    let (kills, duplicates) = (kills.into_inner(), duplicates.into_inner());
    stack.sim.set_faults(Faults::default());
    stack.run_until_quiet(Duration::from_secs(120)).await;
    // The last sends' webhooks are still on their way (three steps of 20 ms, and moto).
    tokio::time::sleep(Duration::from_secs(3)).await;

    // What the scheduled review does on AWS, run as if its thresholds had passed: claims
    // left by killed senders and lost answers are settled by the unknown-outcome policy, and
    // messages still `queued` whose record is gone (to the DLQ after maxReceiveCount
    // receives, some of them without a claim) are queued again.
    let review = stack.review(ReviewRules {
        unknown_outcome_grace: Duration::ZERO,
        unknown_outcome_policy: UnknownOutcomePolicy::AtMostOnce,
        stuck_queued_after: Duration::ZERO,
        send_rate: 1_000,
        ..ReviewRules::default()
    });
    let (mut unknown, mut requeued) = (0, 0);
    for _ in 0..5 {
        let later = chrono::Utc::now() + chrono::Duration::hours(1);
        let report = anna_review::run(&review, later).await.expect("review run");
        unknown += report.unknown_outcomes;
        requeued += report.requeued_stuck;
        if report.unknown_outcomes + report.requeued_stuck == 0 {
            break;
        }
        stack.run_until_quiet(Duration::from_secs(120)).await;
    }
    let mut totals: BTreeMap<&str, usize> = BTreeMap::new();
    let mut accepted_at = Vec::new();
    for id in &ids {
        let messages = stack.messages(id).await;
        assert_eq!(messages.len(), recipients, "every row recorded in {id}");
        let accepted = stack.sends_for(id);
        accepted_at.extend(
            accepted
                .iter()
                .filter_map(|s| s.accepted_at.parse::<chrono::DateTime<chrono::Utc>>().ok()),
        );
        let mut per_message: BTreeMap<String, usize> = BTreeMap::new();
        for send in &accepted {
            *per_message
                .entry(send.biz_opaque_callback_data.clone().unwrap_or_default())
                .or_insert(0) += 1;
        }
        assert!(
            per_message.values().all(|n| *n == 1),
            "a message reached WhatsApp twice in {id}: {per_message:?}"
        );
        for m in &messages {
            assert!(
                m.status.is_final() && m.status != MessageStatus::Sending,
                "not final at {}: {m:?}",
                now_rfc3339()
            );
            *totals.entry(m.status.as_str()).or_insert(0) += 1;
            if let Some(wamid) = &m.wamid {
                let send = accepted
                    .iter()
                    .find(|s| &s.wamid == wamid)
                    .unwrap_or_else(|| panic!("a WhatsApp id no accepted send has: {m:?}"));
                assert_eq!(
                    send.biz_opaque_callback_data.as_deref(),
                    Some(m.id.to_string().as_str())
                );
            }
        }
        let counted = stack.store.settled_counts(id).await.expect("counters");
        for status in [
            MessageStatus::Sent,
            MessageStatus::Delivered,
            MessageStatus::Read,
            MessageStatus::Failed,
        ] {
            let recorded = messages.iter().filter(|m| m.status == status).count() as i64;
            assert_eq!(
                counted.get(status.as_str()).copied().unwrap_or(0),
                recorded,
                "{status} counter of {id} disagrees with its messages"
            );
        }
    }
    let (achieved, busiest) = rates(&mut accepted_at);
    println!(
        "soak: {} recipients, {kills} sender kills, {duplicates} duplicate deliveries, \
         {unknown} unknown outcomes resolved at-most-once, {requeued} stuck messages queued again by the review; final states {totals:?}; \
         configured {rate} msg/s (wa-sim limit {}), achieved {achieved:.1} msg/s, \
         busiest second {busiest}",
        dispatches * recipients,
        wa_limit
    );
    let reached = ["sent", "delivered", "read"]
        .iter()
        .map(|status| totals.get(status).copied().unwrap_or(0))
        .sum::<usize>();
    assert!(reached > dispatches * recipients / 2);
}

/// The fewest sends a second moto carries for the soak on a busy 2-core machine.
const MOTO_FLOOR_RATE: u32 = 5;

/// Sender invocations running at once.
const INVOCATIONS: usize = 4;
/// Both queues empty this long: the soak's traffic is over (records handed back for a retry
/// come back well within it).
const QUIET: Duration = Duration::from_secs(5);

#[derive(Clone, Copy)]
enum Fault {
    None,
    /// The sender dies mid-batch: nothing it received is deleted, claims it made stay
    /// `sending` until their lease expires.
    Killed,
    /// Some of the batch's records are delivered again after it was handled.
    DeliveredTwice,
}

async fn killed_mid_batch(stack: &TestStack, event: SqsEvent) -> SqsBatchResponse {
    let ids: Vec<String> = event
        .records
        .iter()
        .filter_map(|r| r.message_id.clone())
        .collect();
    let _ = tokio::time::timeout(
        Duration::from_millis(30),
        anna_sender::handle(&stack.sender, event),
    )
    .await;
    let mut response = SqsBatchResponse::default();
    response.batch_item_failures = ids
        .into_iter()
        .map(|id| {
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = id;
            failure
        })
        .collect();
    response
}

/// Every third message named by the batch's records.
fn sampled_message_ids(event: &SqsEvent) -> Vec<MessageId> {
    event
        .records
        .iter()
        .filter_map(|r| serde_json::from_str::<SendRecord>(r.body.as_deref()?).ok())
        .filter_map(|record| record.message_id.parse().ok())
        .step_by(3)
        .collect()
}

/// Mean sends per second between the first and last accepted send, and the most sends that
/// fell in any one-second window.
fn rates(times: &mut [chrono::DateTime<chrono::Utc>]) -> (f64, usize) {
    times.sort();
    let (Some(first), Some(last)) = (times.first(), times.last()) else {
        return (0.0, 0);
    };
    let span = (*last - *first).num_milliseconds().max(1) as f64 / 1000.0;
    let mut busiest = 0;
    let mut start = 0;
    for end in 0..times.len() {
        while times[end] - times[start] >= chrono::Duration::seconds(1) {
            start += 1;
        }
        busiest = busiest.max(end - start + 1);
    }
    (times.len() as f64 / span, busiest)
}
