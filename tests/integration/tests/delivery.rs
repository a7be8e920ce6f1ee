//! Delivery guarantees (DESIGN.md sections 5 and 6): every class of WhatsApp error handled as
//! classified, retries backed off through the record's visibility, account-level errors
//! pausing the dispatch until it is resumed, throttling slowing the sender, and the pace
//! counted at wa-sim — never a message sent twice.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use anna_integration_tests::wa_sim::Faults;
use anna_integration_tests::{Options, TestStack};
use anna_local::runner::poll_once;
use anna_sender::{Pacing, RetryPolicy};
use anna_shared::aws::sqs::SqsSendQueue;
use anna_shared::delivery::{ResumeOutcome, resume};
use anna_shared::domain::dispatch::DispatchState;
use anna_shared::domain::message::{MessageRecord, MessageStatus};
use aws_lambda_events::event::sqs::SqsMessage;

const PHONES: [&str; 4] = [
    "5511987650001",
    "5521987650002",
    "5531987650003",
    "5541987650004",
];

fn fast_retries() -> RetryPolicy {
    RetryPolicy {
        base: Duration::from_millis(100),
        cap: Duration::from_millis(400),
        pair_rate_wait: Duration::from_secs(1),
    }
}

/// How many times wa-sim accepted each message (by our id), for the never-twice check.
fn accepted_per_message(stack: &TestStack, dispatch_id: &str) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for send in stack.sends_for(dispatch_id) {
        *counts
            .entry(send.biz_opaque_callback_data.unwrap_or_default())
            .or_insert(0) += 1;
    }
    counts
}

fn assert_sent_exactly_once(stack: &TestStack, dispatch_id: &str, messages: &[MessageRecord]) {
    let accepted = accepted_per_message(stack, dispatch_id);
    assert!(
        accepted.values().all(|n| *n == 1),
        "a message reached WhatsApp twice: {accepted:?}"
    );
    for m in messages.iter().filter(|m| m.status == MessageStatus::Sent) {
        assert_eq!(accepted.get(&m.id.to_string()), Some(&1), "{m:?}");
    }
}

/// Uploads one row while wa-sim answers every send with a 5xx; returns its dispatch id.
async fn one_row_meeting_server_errors(stack: &TestStack, file: &str) -> String {
    stack.sim.set_faults(Faults {
        server_error_rate: 1.0,
        ..Faults::default()
    });
    let id = stack
        .put_file(
            &format!("inbox/boas_vindas/pt_BR/{file}"),
            b"telefone;loja;nome;data\n5511987650001;Loja;Ana;25/12/2026\n".to_vec(),
        )
        .await;
    stack.pump_uploads().await;
    stack.pump_uploads().await;
    id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transient_errors_are_retried_after_a_backoff_until_sent() {
    let mut stack = TestStack::start().await;
    // 2 to 4 s before the first retry: long enough to see the record stay away.
    stack.sender.retry = RetryPolicy {
        base: Duration::from_secs(4),
        cap: Duration::from_secs(4),
        ..fast_retries()
    };
    let id = one_row_meeting_server_errors(&stack, "retry.csv").await;
    assert_eq!(stack.pump_sends().await, 1);
    let message = &stack.messages(&id).await[0];
    assert_eq!(
        message.status,
        MessageStatus::Queued,
        "back to queued: {message:?}"
    );
    assert_eq!(message.error_code, Some(131000));
    // The record was delayed, not handed straight back after the queue's 1 s default.
    assert_eq!(
        stack.pump_sends().await,
        0,
        "the retried record is still backing off"
    );

    stack.sim.set_faults(Faults::default());
    stack.run_until_quiet(Duration::from_secs(30)).await;
    let message = &stack.messages(&id).await[0];
    assert_eq!(message.status, MessageStatus::Sent);
    assert_eq!(message.attempts, 2);
    assert_eq!(stack.sends_for(&id).len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_that_keeps_failing_ends_as_attempts_exhausted_with_the_last_error() {
    // As many attempts as the queue's maxReceiveCount: the last attempt must settle the
    // message itself, since a further delivery would go to the DLQ instead.
    let mut stack = TestStack::start_with(Options {
        max_attempts: anna_local::provision::MAX_RECEIVE_COUNT,
        ..Options::default()
    })
    .await;
    stack.sender.retry = fast_retries();
    stack.sim.set_faults(Faults {
        server_error_rate: 1.0,
        ..Faults::default()
    });
    let id = stack.send_boas_vindas("exhausted.csv", &PHONES[..1]).await;
    let message = &stack.messages(&id).await[0];
    assert_eq!(message.status, MessageStatus::Failed, "{message:?}");
    assert_eq!(message.reason_code.as_deref(), Some("attempts_exhausted"));
    assert_eq!(message.error_code, Some(131000), "the last error is kept");
    assert_eq!(message.attempts, anna_local::provision::MAX_RECEIVE_COUNT);
    assert!(stack.sends_for(&id).is_empty());
    assert_eq!(
        stack.queue_depth(&stack.stack.send_dlq_url).await,
        0,
        "no record was dead-lettered"
    );
}

/// A first attempt that meets a 5xx on a record `tweak` changes, then the rest of the run:
/// the retry must continue on a fresh record, sent once, with nothing dead-lettered.
async fn retry_continues_on_a_fresh_record(file: &str, tweak: fn(&mut SqsMessage)) {
    let mut stack = TestStack::start_with(Options {
        max_attempts: 10,
        ..Options::default()
    })
    .await;
    stack.sender.retry = fast_retries();
    let id = one_row_meeting_server_errors(&stack, file).await;
    let handled = poll_once(
        &stack.sqs,
        &stack.stack.send_queue_url,
        Duration::ZERO,
        |mut event| async {
            event.records.iter_mut().for_each(tweak);
            let response = anna_sender::handle(&stack.sender, event).await;
            assert!(
                response.batch_item_failures.is_empty(),
                "the record that cannot carry the retry is acknowledged: {response:?}"
            );
            response
        },
    )
    .await
    .expect("polling");
    assert_eq!(handled, 1);
    let message = &stack.messages(&id).await[0];
    assert_eq!(message.status, MessageStatus::Queued, "{message:?}");
    assert_eq!(
        stack.queue_depth(&stack.stack.send_queue_url).await,
        1,
        "one fresh record carries the retry"
    );

    stack.sim.set_faults(Faults::default());
    stack.run_until_quiet(Duration::from_secs(30)).await;
    let message = &stack.messages(&id).await[0];
    assert_eq!(message.status, MessageStatus::Sent, "{message:?}");
    assert_eq!(message.attempts, 2);
    assert_eq!(stack.sends_for(&id).len(), 1);
    assert_eq!(stack.queue_depth(&stack.stack.send_dlq_url).await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_on_the_last_receive_before_the_dlq_continues_on_a_fresh_record() {
    // A delivery SQS counts as the queue's last before the DLQ (as after receives that
    // never reached a claim).
    retry_continues_on_a_fresh_record("last-receive.csv", |record| {
        record.attributes.insert(
            "ApproximateReceiveCount".to_owned(),
            anna_local::provision::MAX_RECEIVE_COUNT.to_string(),
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_whose_record_cannot_be_delayed_continues_on_a_fresh_record() {
    // As when the record was received and deleted elsewhere after its visibility ran out:
    // SQS refuses to delay it.
    retry_continues_on_a_fresh_record("record-gone.csv", |record| {
        record.receipt_handle = Some("a-receipt-handle-sqs-no-longer-knows".to_owned());
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn permanent_errors_fail_at_once_with_code_and_detail() {
    let stack = TestStack::start().await;
    stack.sim.set_faults(Faults {
        error_for_numbers: HashMap::from([(PHONES[0].to_owned(), 132012)]),
        ..Faults::default()
    });
    let id = stack.send_boas_vindas("permanent.csv", &PHONES[..2]).await;
    let messages = stack.messages(&id).await;
    let failed = messages
        .iter()
        .find(|m| m.phone.as_deref() == Some(&format!("+{}", PHONES[0])[..]))
        .expect("the refused message");
    assert_eq!(failed.status, MessageStatus::Failed);
    assert_eq!(failed.attempts, 1, "permanent errors are not retried");
    assert_eq!(failed.error_code, Some(132012));
    assert!(
        failed
            .error_detail
            .as_deref()
            .is_some_and(|d| d.contains("132012"))
    );
    assert_eq!(
        stack.sends_for(&id).len(),
        1,
        "the other recipient is unaffected"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn account_errors_pause_the_dispatch_and_resume_sends_each_message_once() {
    let stack = TestStack::start().await;
    stack.sim.set_faults(Faults {
        error_for_numbers: PHONES.iter().map(|p| (p.to_string(), 131031)).collect(),
        ..Faults::default()
    });
    let id = stack.send_boas_vindas("paused.csv", &PHONES).await;
    let dispatch = stack.dispatch(&id).await;
    assert_eq!(dispatch.state, DispatchState::Paused);
    assert!(
        dispatch
            .reason
            .as_deref()
            .is_some_and(|r| r.contains("131031"))
    );
    let messages = stack.messages(&id).await;
    assert!(
        messages
            .iter()
            .all(|m| m.status == MessageStatus::Queued && m.attempts == 0),
        "unclaimed and released messages stay queued without spending attempts: {messages:?}"
    );
    assert_eq!(
        stack.queue_depth(&stack.stack.send_queue_url).await,
        0,
        "nothing keeps retrying"
    );
    assert!(stack.sends_for(&id).is_empty());

    // The operator fixes the account and resumes.
    stack.sim.set_faults(Faults::default());
    let queue = SqsSendQueue::new(stack.sqs.clone(), stack.stack.send_queue_url.clone());
    let outcome = resume(&stack.store, &queue, &id).await.expect("resume");
    assert_eq!(outcome, ResumeOutcome::Resumed { requeued: 4 });
    assert_eq!(
        resume(&stack.store, &queue, &id)
            .await
            .expect("resume again"),
        ResumeOutcome::NotPaused(Some(DispatchState::Sending)),
        "resuming twice queues nothing twice"
    );
    stack.run_until_quiet(Duration::from_secs(60)).await;
    let messages = stack.messages(&id).await;
    assert!(
        messages.iter().all(|m| m.status == MessageStatus::Sent),
        "{messages:?}"
    );
    assert_sent_exactly_once(&stack, &id, &messages);
    assert_eq!(stack.sends_for(&id).len(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throughput_limit_slows_down_and_every_message_is_still_sent_once() {
    let mut stack = TestStack::start().await;
    stack.sender.retry = fast_retries();
    stack.sim.set_faults(Faults {
        throughput_per_second: Some(3),
        ..Faults::default()
    });
    let phones: Vec<String> = (0..12).map(|i| format!("55119876501{i:02}")).collect();
    let phones: Vec<&str> = phones.iter().map(String::as_str).collect();
    let id = stack.send_boas_vindas("throttled.csv", &phones).await;
    let messages = stack.messages(&id).await;
    assert!(
        messages.iter().all(|m| m.status == MessageStatus::Sent),
        "{messages:?}"
    );
    assert!(
        messages.iter().any(|m| m.attempts > 1),
        "at 1,000 msg/s against a limit of 3/s some sends must have met 130429"
    );
    assert_sent_exactly_once(&stack, &id, &messages);
    assert_eq!(stack.sends_for(&id).len(), 12);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pair_rate_defers_only_that_recipient() {
    let mut stack = TestStack::start().await;
    stack.sender.retry = fast_retries();
    let first = stack.send_boas_vindas("first.csv", &PHONES[..1]).await;
    assert_eq!(stack.sends_for(&first).len(), 1);
    stack.sim.set_faults(Faults {
        pair_interval_ms: Some(60_000),
        ..Faults::default()
    });
    // wa-sim starts counting the pair rate now: resend the first number to arm it.
    let arm = stack.send_boas_vindas("arm.csv", &PHONES[..1]).await;
    assert_eq!(stack.sends_for(&arm).len(), 1);
    stack.sim.set_faults(Faults {
        pair_interval_ms: Some(1_500),
        ..Faults::default()
    });
    let second = stack.send_boas_vindas("second.csv", &PHONES[..3]).await;
    let messages = stack.messages(&second).await;
    assert!(
        messages.iter().all(|m| m.status == MessageStatus::Sent),
        "{messages:?}"
    );
    for m in &messages {
        let expected_attempts = if m.phone.as_deref() == Some(&format!("+{}", PHONES[0])[..]) {
            1..=3
        } else {
            1..=1
        };
        assert!(
            expected_attempts.contains(&m.attempts),
            "only the recently messaged recipient waits: {m:?}"
        );
    }
    assert_sent_exactly_once(&stack, &second, &messages);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_answer_is_an_unknown_outcome_and_is_never_sent_again() {
    let stack = TestStack::start_with(Options {
        whatsapp_timeout: Duration::from_millis(500),
        ..Options::default()
    })
    .await;
    stack.sim.set_faults(Faults {
        hang_after_accept_rate: 1.0,
        hang_ms: Some(1_500),
        ..Faults::default()
    });
    let id = stack.send_boas_vindas("lost.csv", &PHONES[..1]).await;
    let message = &stack.messages(&id).await[0];
    assert_eq!(
        message.status,
        MessageStatus::Sending,
        "left under its lease for the review"
    );
    assert_eq!(stack.sends_for(&id).len(), 1, "WhatsApp did get it");

    // The same record delivered again must not send it again.
    stack.sim.set_faults(Faults::default());
    let queue = SqsSendQueue::new(stack.sqs.clone(), stack.stack.send_queue_url.clone());
    anna_shared::ports::SendQueue::enqueue(&queue, std::slice::from_ref(&message.id))
        .await
        .expect("enqueue");
    stack.run_until_quiet(Duration::from_secs(30)).await;
    assert_eq!(
        stack.sends_for(&id).len(),
        1,
        "an unknown outcome is not resent blindly"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sends_keep_to_the_configured_pace() {
    const RATE: u32 = 20;
    let stack = TestStack::start_with(Options {
        pacing: Pacing {
            rate_per_second: RATE,
            max_concurrency: 1,
            sends_in_flight: 10,
        },
        ..Options::default()
    })
    .await;
    let phones: Vec<String> = (0..45).map(|i| format!("55119876502{i:02}")).collect();
    let phones: Vec<&str> = phones.iter().map(String::as_str).collect();
    let id = stack.send_boas_vindas("paced.csv", &phones).await;
    let mut times: Vec<chrono::DateTime<chrono::Utc>> = stack
        .sends_for(&id)
        .iter()
        .filter_map(|s| s.accepted_at.parse().ok())
        .collect();
    assert_eq!(times.len(), 45);
    times.sort();
    // Count, in every one-second window starting at a send, how many sends it holds.
    let busiest = times
        .iter()
        .map(|start| {
            times
                .iter()
                .filter(|t| **t >= *start && **t < *start + chrono::Duration::seconds(1))
                .count()
        })
        .max()
        .unwrap_or(0);
    assert!(
        busiest <= RATE as usize + 1,
        "{busiest} sends in one second at a configured {RATE}/s"
    );
}
