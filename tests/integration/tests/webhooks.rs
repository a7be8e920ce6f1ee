//! Status webhooks end to end: wa-sim signs and posts them to the real API router, which
//! checks the signature over the raw bytes and moves each message forward only.

use std::time::{Duration, Instant};

use anna_integration_tests::api::{APP_SECRET, ApiServer, VERIFY_TOKEN};
use anna_integration_tests::wa_sim::{Faults, WebhookConfig, signature};
use anna_integration_tests::{Options, TestStack};
use anna_review::{ReviewRules, run};
use anna_shared::domain::message::{MessageRecord, MessageStatus};
use serde_json::json;

const PHONES: [&str; 3] = ["5511987652001", "5521987652002", "5531987652003"];

fn webhooks_to(api: &ApiServer) -> WebhookConfig {
    WebhookConfig {
        url: Some(format!("{}/webhook", api.base)),
        app_secret: APP_SECRET.to_owned(),
        step_ms: 20,
        ..WebhookConfig::default()
    }
}

/// Waits until every message of the dispatch satisfies `done` (webhooks arrive on their own).
async fn wait_for(
    stack: &TestStack,
    id: &str,
    done: impl Fn(&MessageRecord) -> bool,
) -> Vec<MessageRecord> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let messages = stack.messages(id).await;
        if messages.iter().all(&done) {
            return messages;
        }
        assert!(
            Instant::now() < deadline,
            "webhooks never settled: {messages:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn status_body(wamid: &str, status: &str, callback: Option<&str>) -> Vec<u8> {
    let mut entry = json!({
        "id": wamid, "status": status, "timestamp": "1750857384", "recipient_id": PHONES[0],
    });
    if let Some(callback) = callback {
        entry["biz_opaque_callback_data"] = json!(callback);
    }
    json!({ "object": "whatsapp_business_account", "entry": [ { "id": "1", "changes": [ {
        "field": "messages", "value": { "messaging_product": "whatsapp", "statuses": [entry] } } ] } ] })
    .to_string()
    .into_bytes()
}

async fn post_webhook(api: &ApiServer, body: Vec<u8>, signature: Option<String>) -> u16 {
    let mut request = api
        .client
        .post(format!("{}/webhook", api.base))
        .header("content-type", "application/json")
        .body(body);
    if let Some(signature) = signature {
        request = request.header("x-hub-signature-256", signature);
    }
    request
        .send()
        .await
        .expect("POST /webhook")
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statuses_reach_read_through_signed_webhooks() {
    let stack = TestStack::start().await;
    let api = ApiServer::start(&stack).await;
    stack.sim.set_webhooks(webhooks_to(&api));
    let id = stack.send_boas_vindas("read.csv", &PHONES).await;
    let messages = wait_for(&stack, &id, |m| m.status == MessageStatus::Read).await;
    for m in &messages {
        assert!(
            m.sent_at.is_some() && m.delivered_at.is_some() && m.read_at.is_some(),
            "{m:?}"
        );
    }
    let counts = stack.store.settled_counts(&id).await.expect("counters");
    assert_eq!(counts.get("read"), Some(&3), "{counts:?}");
    assert_eq!(counts.get("sent").copied().unwrap_or(0), 0, "{counts:?}");
    assert_eq!(
        counts.get("delivered").copied().unwrap_or(0),
        0,
        "{counts:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicate_and_out_of_order_statuses_never_move_a_message_back() {
    let stack = TestStack::start().await;
    let api = ApiServer::start(&stack).await;
    stack.sim.set_webhooks(WebhookConfig {
        duplicate_rate: 1.0,
        out_of_order: true,
        ..webhooks_to(&api)
    });
    let id = stack.send_boas_vindas("shuffled.csv", &PHONES).await;
    wait_for(&stack, &id, |m| m.status == MessageStatus::Read).await;
    // Every late `delivered` and `sent` (twice each) has arrived by now; still read.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let messages = stack.messages(&id).await;
    assert!(
        messages.iter().all(|m| m.status == MessageStatus::Read),
        "{messages:?}"
    );
    let counts = stack.store.settled_counts(&id).await.expect("counters");
    assert_eq!(
        counts.get("read"),
        Some(&3),
        "duplicates are not counted twice: {counts:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_and_unsigned_webhooks_are_refused_and_change_nothing() {
    let stack = TestStack::start().await;
    let api = ApiServer::start(&stack).await;
    let id = stack.send_boas_vindas("forged.csv", &PHONES[..1]).await;
    let message = stack.messages(&id).await.remove(0);
    let wamid = message.wamid.clone().expect("sent");
    let body = status_body(&wamid, "read", Some(&message.id.to_string()));

    assert_eq!(post_webhook(&api, body.clone(), None).await, 401);
    let forged = signature("not-the-app-secret", &body);
    assert_eq!(post_webhook(&api, body.clone(), Some(forged)).await, 401);
    let tampered = status_body(&wamid, "failed", Some(&message.id.to_string()));
    assert_eq!(
        post_webhook(&api, tampered, Some(signature(APP_SECRET, &body))).await,
        401,
        "a signature for another body"
    );
    assert_eq!(stack.messages(&id).await[0].status, MessageStatus::Sent);

    assert_eq!(
        post_webhook(&api, body.clone(), Some(signature(APP_SECRET, &body))).await,
        200
    );
    assert_eq!(stack.messages(&id).await[0].status, MessageStatus::Read);
    let garbage = b"{not json".to_vec();
    assert_eq!(
        post_webhook(&api, garbage.clone(), Some(signature(APP_SECRET, &garbage))).await,
        400
    );
    let unknown = status_body("wamid.NOT-OURS", "delivered", None);
    assert_eq!(
        post_webhook(&api, unknown.clone(), Some(signature(APP_SECRET, &unknown))).await,
        200,
        "a status for a message we do not know is acknowledged, not retried forever"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscription_is_verified_with_the_verify_token() {
    let stack = TestStack::start().await;
    let api = ApiServer::start(&stack).await;
    let get = |token: &str, mode: &str| {
        api.client
            .get(format!("{}/webhook", api.base))
            .query(&[
                ("hub.mode", mode),
                ("hub.verify_token", token),
                ("hub.challenge", "1158201444"),
            ])
            .send()
    };
    let ok = get(VERIFY_TOKEN, "subscribe").await.expect("GET");
    assert_eq!(ok.status().as_u16(), 200);
    assert_eq!(ok.text().await.expect("body"), "1158201444");
    assert_eq!(
        get("wrong", "subscribe")
            .await
            .expect("GET")
            .status()
            .as_u16(),
        403
    );
    assert_eq!(
        get(VERIFY_TOKEN, "unsubscribe")
            .await
            .expect("GET")
            .status()
            .as_u16(),
        403
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_outcomes_are_resolved_by_the_status_webhook() {
    let stack = TestStack::start_with(Options {
        whatsapp_timeout: Duration::from_millis(300),
        lease: Duration::from_secs(2),
        ..Options::default()
    })
    .await;
    let api = ApiServer::start(&stack).await;
    // The answer to the send is lost, but WhatsApp did send it and reports it.
    stack.sim.set_faults(Faults {
        hang_after_accept_rate: 1.0,
        hang_ms: Some(800),
        ..Faults::default()
    });
    stack.sim.set_webhooks(webhooks_to(&api));
    let resolved = stack
        .send_boas_vindas("lost-reported.csv", &PHONES[..1])
        .await;
    let messages = wait_for(&stack, &resolved, |m| m.status == MessageStatus::Read).await;
    assert!(
        messages[0].wamid.is_some(),
        "the webhook recorded WhatsApp's id"
    );

    // With no webhook in time the review fails it (at most once) — and a late webhook that
    // proves it went out corrects that.
    stack.sim.set_webhooks(WebhookConfig::default());
    let late = stack.send_boas_vindas("lost-late.csv", &PHONES[1..2]).await;
    assert_eq!(
        stack.messages(&late).await[0].status,
        MessageStatus::Sending
    );
    let review = stack.review(ReviewRules {
        unknown_outcome_grace: Duration::ZERO,
        ..ReviewRules::default()
    });
    let after_lease = chrono::Utc::now() + chrono::Duration::seconds(3);
    let report = run(&review, after_lease).await.expect("review");
    assert_eq!(report.unknown_outcomes, 1);
    let failed = stack.messages(&late).await.remove(0);
    assert_eq!(failed.reason_code.as_deref(), Some("unknown_outcome"));
    let send = stack.sends_for(&late).remove(0);
    let body = status_body(&send.wamid, "delivered", Some(&failed.id.to_string()));
    assert_eq!(
        post_webhook(&api, body.clone(), Some(signature(APP_SECRET, &body))).await,
        200
    );
    let corrected = stack.messages(&late).await.remove(0);
    assert_eq!(corrected.status, MessageStatus::Delivered);
    assert_eq!(corrected.reason_code, None);
    assert_eq!(stack.sends_for(&late).len(), 1, "never sent twice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_status_that_cannot_be_recorded_is_not_acknowledged() {
    let stack = TestStack::start().await;
    let api = ApiServer::start(&stack).await;
    let id = stack.send_boas_vindas("outage.csv", &PHONES[..1]).await;
    let message = stack.messages(&id).await.remove(0);
    aws_sdk_dynamodb::Client::new(&stack.sdk)
        .delete_table()
        .table_name(&stack.stack.names.table)
        .send()
        .await
        .expect("the store goes away");
    let body = status_body(
        message.wamid.as_deref().unwrap_or_default(),
        "delivered",
        Some(&message.id.to_string()),
    );
    assert_eq!(
        post_webhook(&api, body.clone(), Some(signature(APP_SECRET, &body))).await,
        503,
        "Meta must deliver it again"
    );
}
