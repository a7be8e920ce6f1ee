//! The scheduled review against the local stack: each finding made and acted on, with the
//! clock injected (a run "24 hours later" is a run with `now` set so), not slept.

use std::time::Duration;

use anna_integration_tests::wa_sim::Faults;
use anna_integration_tests::{Options, TestStack};
use anna_review::{ReviewRules, run};
use anna_shared::aws::dynamo::now_rfc3339;
use anna_shared::delivery::UnknownOutcomePolicy;
use anna_shared::domain::dispatch::{Dispatch, DispatchSource, DispatchState, IntakeSummary};
use anna_shared::domain::message::{MessageId, MessageRecord, MessageStatus};
use anna_shared::ports::{DispatchStore, MessageStore, WriteMode};
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::Utc;

const PHONES: [&str; 3] = ["5511987651001", "5521987651002", "5531987651003"];

fn rules() -> ReviewRules {
    ReviewRules {
        unknown_outcome_grace: Duration::from_secs(60),
        undelivered_after: Duration::from_secs(3600),
        stuck_queued_after: Duration::from_secs(600),
        ..ReviewRules::default()
    }
}

fn later(by: Duration) -> chrono::DateTime<Utc> {
    Utc::now() + chrono::Duration::from_std(by).expect("duration")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn completes_a_finished_dispatch_and_repairs_skewed_counters() {
    let stack = TestStack::start().await;
    let id = stack.send_boas_vindas("done.csv", &PHONES).await;
    assert_eq!(stack.dispatch(&id).await.state, DispatchState::Sending);
    // Drift: a counter shard that says far more than happened.
    stack
        .store
        .settled_counts(&id)
        .await
        .expect("counters before");
    aws_sdk_dynamodb::Client::new(&stack.sdk)
        .update_item()
        .table_name(&stack.stack.names.table)
        .key("pk", AttributeValue::S(format!("D#{id}")))
        .key("sk", AttributeValue::S("COUNT#07".into()))
        .update_expression("ADD sent :n, failed :n")
        .expression_attribute_values(":n", AttributeValue::N("100".into()))
        .send()
        .await
        .expect("skew");
    assert_eq!(
        stack.store.settled_counts(&id).await.expect("skewed")["sent"],
        103
    );

    // Two runs at once: the dispatch is completed once, and the counts are exact.
    let review = stack.review(rules());
    let (a, b) = tokio::join!(run(&review, Utc::now()), run(&review, Utc::now()));
    let (a, b) = (a.expect("run a"), b.expect("run b"));
    assert_eq!(a.completed + b.completed, 1, "{a:?} {b:?}");

    let dispatch = stack.dispatch(&id).await;
    assert_eq!(dispatch.state, DispatchState::Completed);
    let counts = stack
        .store
        .settled_counts(&id)
        .await
        .expect("counters after");
    assert_eq!(counts.get("sent"), Some(&3), "{counts:?}");
    assert_eq!(counts.get("failed").copied().unwrap_or(0), 0, "{counts:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_claims_are_resolved_by_the_policy() {
    let stack = TestStack::start_with(Options {
        whatsapp_timeout: Duration::from_millis(300),
        lease: Duration::from_secs(5),
        ..Options::default()
    })
    .await;
    stack.sim.set_faults(Faults {
        hang_after_accept_rate: 1.0,
        hang_ms: Some(1_000),
        ..Faults::default()
    });
    let at_most_once = stack.send_boas_vindas("lost-1.csv", &PHONES[..1]).await;
    let at_least_once = stack.send_boas_vindas("lost-2.csv", &PHONES[1..2]).await;
    stack.sim.set_faults(Faults::default());
    for id in [&at_most_once, &at_least_once] {
        assert_eq!(stack.messages(id).await[0].status, MessageStatus::Sending);
    }

    // Within the grace period nothing is decided: a status webhook may still tell.
    let review = stack.review(rules());
    let report = run(&review, Utc::now()).await.expect("run");
    assert_eq!(report.unknown_outcomes, 0);

    let after_grace = later(Duration::from_secs(5 + 61));
    let mut review = stack.review(ReviewRules {
        dispatches_per_run: 1,
        ..rules()
    });
    // Dispatches are reviewed newest first: the at-least-once one was made last.
    review.rules.unknown_outcome_policy = UnknownOutcomePolicy::AtLeastOnce;
    let report = run(&review, after_grace).await.expect("run");
    assert_eq!(report.unknown_outcomes, 1);
    review.rules.unknown_outcome_policy = UnknownOutcomePolicy::AtMostOnce;
    let report = run(&review, after_grace).await.expect("run");
    assert_eq!(report.unknown_outcomes, 1);

    let lost = &stack.messages(&at_most_once).await[0];
    assert_eq!(lost.status, MessageStatus::Failed);
    assert_eq!(lost.reason_code.as_deref(), Some("unknown_outcome"));
    assert_eq!(
        stack.sends_for(&at_most_once).len(),
        1,
        "at most once: never resent"
    );

    stack.run_until_quiet(Duration::from_secs(30)).await;
    let requeued = &stack.messages(&at_least_once).await[0];
    assert_eq!(requeued.status, MessageStatus::Sent);
    assert_eq!(
        stack.sends_for(&at_least_once).len(),
        2,
        "at least once: resent, and the customer may have it twice"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_messages_whose_records_vanished_are_queued_again() {
    let stack = TestStack::start().await;
    let bytes = b"telefone;loja;nome;data\n5511987651001;Loja;Ana;25/12/2026\n".to_vec();
    let id = stack
        .put_file("inbox/boas_vindas/pt_BR/lost-record.csv", bytes)
        .await;
    stack.pump_uploads().await;
    stack.pump_uploads().await;
    // The record is lost (e.g. purged by an operator).
    stack
        .sqs
        .purge_queue()
        .queue_url(&stack.stack.send_queue_url)
        .send()
        .await
        .expect("purge");
    assert_eq!(stack.pump_sends().await, 0);
    assert_eq!(stack.messages(&id).await[0].status, MessageStatus::Queued);

    let review = stack.review(rules());
    let soon = run(&review, Utc::now()).await.expect("run");
    assert_eq!(
        soon.requeued_stuck, 0,
        "not stuck yet: within the expected pace"
    );
    let report = run(&review, later(Duration::from_secs(3600)))
        .await
        .expect("run");
    assert_eq!(report.requeued_stuck, 1);
    stack.run_until_quiet(Duration::from_secs(30)).await;
    assert_eq!(stack.messages(&id).await[0].status, MessageStatus::Sent);
    assert_eq!(stack.sends_for(&id).len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sent_messages_never_delivered_are_flagged_and_stay_visible() {
    let stack = TestStack::start().await;
    let id = stack.send_boas_vindas("quiet.csv", &PHONES[..2]).await;
    let review = stack.review(rules());
    let report = run(&review, Utc::now()).await.expect("run");
    assert_eq!(report.completed, 1);
    assert_eq!(report.flagged_undelivered, 0);

    let report = run(&review, later(Duration::from_secs(2 * 3600)))
        .await
        .expect("run");
    assert_eq!(report.flagged_undelivered, 2);
    let messages = stack.messages(&id).await;
    assert!(
        messages
            .iter()
            .all(|m| m.status == MessageStatus::Sent && m.undelivered),
        "{messages:?}"
    );
    let again = run(&review, later(Duration::from_secs(2 * 3600)))
        .await
        .expect("run");
    assert_eq!(again.flagged_undelivered, 0, "flagged once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_template_paused_at_whatsapp_pauses_its_running_dispatch() {
    let stack = TestStack::start().await;
    // A dispatch that started while `oferta_pausada` was approved (wa-sim has it PAUSED now).
    let id = "d-0123456789abcdef01234567".to_owned();
    let dispatch = Dispatch::new(
        id.clone(),
        "oferta_pausada".into(),
        "pt_BR".into(),
        DispatchSource::Api,
        &now_rfc3339(),
    );
    stack
        .store
        .create_dispatch(&dispatch)
        .await
        .expect("dispatch");
    let message = MessageRecord::queued(
        MessageId::new(id.clone(), 1),
        "oferta_pausada",
        "pt_BR",
        "+5511987651001".into(),
        "5511987651001".into(),
        vec!["Ana".into()],
        vec![],
        &now_rfc3339(),
    );
    stack
        .store
        .put_messages(&[message], WriteMode::Fresh)
        .await
        .expect("message");
    stack
        .store
        .finish_intake(
            &id,
            &IntakeSummary {
                columns: vec!["telefone".into(), "nome".into()],
                rows: 1,
                accepted: 1,
                rejected: 0,
            },
        )
        .await
        .expect("intake");

    let report = run(&stack.review(rules()), Utc::now()).await.expect("run");
    assert_eq!(report.paused_by_template, 1);
    let dispatch = stack.dispatch(&id).await;
    assert_eq!(dispatch.state, DispatchState::Paused);
    assert!(
        dispatch
            .reason
            .as_deref()
            .is_some_and(|r| r.contains("oferta_pausada"))
    );
    assert_eq!(stack.messages(&id).await[0].status, MessageStatus::Queued);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn work_per_run_is_bounded_and_the_next_run_goes_on_from_there() {
    let stack = TestStack::start().await;
    let mut ids = Vec::new();
    for (i, phone) in PHONES.iter().enumerate() {
        ids.push(
            stack
                .send_boas_vindas(&format!("batch-{i}.csv"), &[phone])
                .await,
        );
    }
    let review = stack.review(ReviewRules {
        dispatches_per_run: 1,
        ..rules()
    });
    let mut completed = 0;
    for round in 1..=3 {
        let report = run(&review, Utc::now()).await.expect("run");
        assert_eq!(report.examined, 1, "round {round}: {report:?}");
        completed += report.completed;
    }
    assert_eq!(completed, 3);
    for id in &ids {
        assert_eq!(stack.dispatch(id).await.state, DispatchState::Completed);
    }
}
