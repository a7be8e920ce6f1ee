//! Conversations end to end: a simulated customer writes or taps a button in wa-sim, which
//! signs and posts the webhook to the real API router; the 24-hour window is watched through
//! the API with its clock (and wa-sim's) moved forward instead of waiting a day.

use std::time::Duration;

use anna_integration_tests::api::{APP_SECRET, ApiServer, read_json};
use anna_integration_tests::wa_sim::{Faults, WebhookConfig, signature};
use anna_integration_tests::{Options, TestStack};
use anna_shared::domain::message::MessageStatus;
use serde_json::{Value, json};

const DAY_AND_AN_HOUR: Duration = Duration::from_secs(25 * 3600);

struct Scene {
    stack: TestStack,
    api: ApiServer,
    http: reqwest::Client,
}

impl Scene {
    async fn start() -> Self {
        Self::start_with(Options::default()).await
    }

    async fn start_with(options: Options) -> Self {
        let stack = TestStack::start_with(options).await;
        let api = ApiServer::start(&stack).await;
        Self::around(stack, api)
    }

    fn around(stack: TestStack, api: ApiServer) -> Self {
        stack.sim.set_webhooks(WebhookConfig {
            url: Some(format!("{}/webhook", api.base)),
            app_secret: APP_SECRET.to_owned(),
            step_ms: 10,
            ..WebhookConfig::default()
        });
        Self {
            stack,
            api,
            http: reqwest::Client::new(),
        }
    }

    /// The customer writes `text`; answers the inbound message's wamid.
    async fn customer_writes(&self, from: &str, text: &str) -> String {
        self.sim_inbound(json!({ "from": from, "text": text, "name": "Maria" }))
            .await
    }

    /// The customer taps quick-reply button `index` of the template message `wamid`.
    async fn customer_taps(&self, wamid: &str, index: u8) -> String {
        self.sim_inbound(json!({ "button": { "wamid": wamid, "index": index } }))
            .await
    }

    async fn sim_inbound(&self, body: Value) -> String {
        let response = self
            .http
            .post(format!("{}/_sim/inbound", self.stack.sim.base_url()))
            .json(&body)
            .send()
            .await
            .expect("POST /_sim/inbound");
        let answer = read_json(response, 200).await;
        assert_eq!(
            answer["webhook_status"], 200,
            "the API took the webhook: {answer}"
        );
        answer["id"].as_str().expect("inbound wamid").to_owned()
    }

    async fn conversation(&self, phone: &str) -> Value {
        self.api
            .get_json(&format!("/v1/conversations/{phone}"), 200)
            .await
    }

    async fn listed(&self, state: &str) -> Vec<String> {
        let page = self
            .api
            .get_json(&format!("/v1/conversations?state={state}"), 200)
            .await;
        page["conversations"]
            .as_array()
            .expect("conversations")
            .iter()
            .map(|c| c["wa_id"].as_str().unwrap_or_default().to_owned())
            .collect()
    }

    async fn send_text(&self, phone: &str, text: &str, status: u16) -> Value {
        self.api
            .post_json(
                &format!("/v1/conversations/{phone}/messages"),
                &json!({ "text": text }),
                status,
            )
            .await
    }

    /// Both clocks a day and an hour on: the window the customer opened has passed.
    fn a_day_passes(&self) {
        self.api.ctx.clock.advance(DAY_AND_AN_HOUR);
        self.stack.sim.advance_clock(DAY_AND_AN_HOUR);
    }

    /// Reopens the conversation with `retomar_conversa` (buttons: 0 "Sim, continuar",
    /// 1 "Não, obrigado"), lets the sender send it, and answers its wamid at wa-sim.
    async fn reactivate(&self, phone: &str) -> (Value, String) {
        let answer = self
            .api
            .post_json(
                &format!("/v1/conversations/{phone}/reactivate"),
                &json!({ "template": "retomar_conversa", "language": "pt_BR",
                         "variables": ["Maria"] }),
                202,
            )
            .await;
        assert_eq!(
            answer["conversation"]["state"], "awaiting_reply",
            "{answer}"
        );
        assert_eq!(
            answer["accept_buttons"],
            json!([0]),
            "default: the first button"
        );
        let message_id = answer["message_id"]
            .as_str()
            .expect("message id")
            .to_owned();
        self.stack.run_until_quiet(Duration::from_secs(60)).await;
        let send = self
            .stack
            .sim
            .sends()
            .into_iter()
            .find(|s| s.biz_opaque_callback_data.as_deref() == Some(message_id.as_str()))
            .unwrap_or_else(|| panic!("the reopening template {message_id} was never sent"));
        assert_eq!(send.template, "retomar_conversa");
        assert_eq!(
            send.payload["template"]["components"][1]["parameters"][0]["payload"],
            format!("{message_id}#b0"),
            "each button's payload names our message and the button"
        );
        (answer, send.wamid)
    }

    async fn events(&self, kind: &str) -> Vec<Value> {
        let page = self
            .api
            .get_json(&format!("/v1/events?type={kind}"), 200)
            .await;
        page["events"].as_array().expect("events").clone()
    }

    async fn post_signed(&self, body: &[u8], signature: Option<String>) -> u16 {
        let mut request = self
            .http
            .post(format!("{}/webhook", self.api.base))
            .header("content-type", "application/json")
            .body(body.to_vec());
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
}

/// The newest message the customer sent (inbound timestamps have whole seconds, so one may
/// sort just before a template we logged in the same second).
fn last_inbound(conversation: &Value) -> &Value {
    conversation["messages"]
        .as_array()
        .and_then(|messages| messages.iter().find(|m| m["direction"] == "in"))
        .unwrap_or_else(|| panic!("no inbound message: {conversation}"))
}

fn inbound_body(from: &str, wamid: &str, timestamp: i64, message: Value) -> Vec<u8> {
    let mut message = message;
    message["from"] = json!(from);
    message["id"] = json!(wamid);
    message["timestamp"] = json!(timestamp.to_string());
    json!({ "object": "whatsapp_business_account", "entry": [ { "id": "1", "changes": [ {
        "field": "messages", "value": { "messaging_product": "whatsapp",
        "contacts": [ { "profile": { "name": "Maria" }, "wa_id": from } ],
        "messages": [message] } } ] } ] })
    .to_string()
    .into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_customer_message_opens_the_window_and_free_form_stops_when_it_expires() {
    let scene = Scene::start().await;
    let phone = "5511987653001";
    scene.customer_writes(phone, "oi, preciso de ajuda").await;

    let conversation = scene.conversation(phone).await;
    assert_eq!(conversation["state"], "open", "{conversation}");
    assert_eq!(conversation["profile_name"], "Maria");
    assert_eq!(conversation["messages"][0]["text"], "oi, preciso de ajuda");
    assert_eq!(conversation["messages"][0]["direction"], "in");
    assert_eq!(scene.listed("open").await, [phone]);
    assert!(scene.listed("expired").await.is_empty());

    let sent = scene
        .send_text(phone, "Olá Maria, como posso ajudar?", 200)
        .await;
    let wamid = sent["wamid"].as_str().expect("wamid");
    let texts: Vec<_> = scene
        .stack
        .sim
        .sends()
        .into_iter()
        .filter(|s| s.payload["type"] == "text")
        .collect();
    assert_eq!(texts.len(), 1);
    assert_eq!(texts[0].wamid, wamid);
    assert_eq!(
        texts[0].payload["text"]["body"],
        "Olá Maria, como posso ajudar?"
    );

    // WhatsApp's clock passes the window first: its 131047 is answered as the same 409.
    scene.stack.sim.advance_clock(DAY_AND_AN_HOUR);
    let refused = scene.send_text(phone, "ainda aí?", 409).await;
    assert_eq!(
        refused["type"], "urn:anna-notify:problem:conversation-window-expired",
        "{refused}"
    );

    // Then ours: the conversation reads expired, and the API refuses before calling WhatsApp.
    scene.api.ctx.clock.advance(DAY_AND_AN_HOUR);
    assert_eq!(scene.conversation(phone).await["state"], "expired");
    assert_eq!(scene.listed("expired").await, [phone]);
    assert!(scene.listed("open").await.is_empty());
    let sends_before = scene.stack.sim.sends().len();
    let refused = scene.send_text(phone, "ainda aí?", 409).await;
    assert!(
        refused["detail"]
            .as_str()
            .is_some_and(|d| d.contains("template")),
        "says a template must reopen it: {refused}"
    );
    assert_eq!(
        scene.stack.sim.sends().len(),
        sends_before,
        "nothing reached WhatsApp"
    );

    // An open conversation is not reactivated: write to the customer instead.
    scene.customer_writes(phone, "voltei").await;
    scene
        .api
        .post_json(
            &format!("/v1/conversations/{phone}/reactivate"),
            &json!({ "template": "retomar_conversa", "language": "pt_BR", "variables": ["Maria"] }),
            409,
        )
        .await;
    scene.send_text(phone, "que bom!", 200).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_yes_button_of_a_reopening_template_opens_the_conversation() {
    let scene = Scene::start().await;
    let phone = "5511987653002";
    scene.customer_writes(phone, "oi").await;
    scene.a_day_passes();
    assert_eq!(scene.conversation(phone).await["state"], "expired");

    let (_, template_wamid) = scene.reactivate(phone).await;
    assert_eq!(scene.listed("awaiting_reply").await, [phone]);
    // Sending a template opens nothing: still no free-form.
    scene.send_text(phone, "oi?", 409).await;

    scene.customer_taps(&template_wamid, 0).await;
    let conversation = scene.conversation(phone).await;
    assert_eq!(conversation["state"], "open", "{conversation}");
    assert_eq!(conversation["outcome"], "accepted");
    assert_eq!(last_inbound(&conversation)["answer"], "accepted");
    let started = scene.events("conversation.started").await;
    assert_eq!(started.len(), 1, "{started:?}");
    assert_eq!(started[0]["wa_id"], phone);
    assert_eq!(started[0]["button"], 0);
    assert_eq!(
        started[0]["message_id"],
        conversation["reactivation"]["message_id"]
    );
    assert!(scene.events("conversation.declined").await.is_empty());
    // The window runs from the tap, at WhatsApp too.
    scene
        .send_text(phone, "Perfeito, vamos continuar.", 200)
        .await;

    // Closed by the operator: listed as closed, reopened with a template again.
    let closed = scene
        .api
        .post_json(&format!("/v1/conversations/{phone}/close"), &json!({}), 200)
        .await;
    assert_eq!(closed["state"], "closed");
    assert_eq!(scene.listed("closed").await, [phone]);
    scene.send_text(phone, "mais uma coisa", 409).await;
    scene.reactivate(phone).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_no_button_declines_and_a_text_reply_is_not_acceptance() {
    let scene = Scene::start().await;
    let (no, wrote) = ("5511987653003", "5521987653004");
    for phone in [no, wrote] {
        scene.customer_writes(phone, "oi").await;
    }
    scene.a_day_passes();

    let (_, template_wamid) = scene.reactivate(no).await;
    scene.customer_taps(&template_wamid, 1).await;
    let conversation = scene.conversation(no).await;
    assert_eq!(conversation["state"], "declined", "{conversation}");
    assert_eq!(conversation["outcome"], "declined");
    assert_eq!(scene.listed("declined").await, [no]);
    scene.send_text(no, "tem certeza?", 409).await;
    assert!(scene.events("conversation.started").await.is_empty());
    assert_eq!(scene.events("conversation.declined").await.len(), 1);

    scene.reactivate(wrote).await;
    scene.customer_writes(wrote, "quem é?").await;
    let conversation = scene.conversation(wrote).await;
    assert_eq!(
        conversation["state"], "open",
        "WhatsApp's rule: text opens the window"
    );
    assert_eq!(conversation["outcome"], "replied", "{conversation}");
    assert_eq!(last_inbound(&conversation)["answer"], "replied");
    assert!(
        scene.events("conversation.started").await.is_empty(),
        "a text reply is no acceptance"
    );
    scene.send_text(wrote, "Somos a Loja Centro.", 200).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opt_outs_suppress_later_sends_before_whatsapp_is_called() {
    let stopped = "5511987653005";
    let blocked = "5511987653006";
    let mut options = Options::default();
    options.sim.faults = Faults {
        error_for_numbers: [(blocked.to_owned(), 131050)].into_iter().collect(),
        ..Faults::default()
    };
    let scene = Scene::start_with(options).await;

    // A keyword from the customer, and WhatsApp's 131050 on a send.
    scene.customer_writes(stopped, "SAIR").await;
    assert_eq!(scene.conversation(stopped).await["outcome"], "opted_out");
    let first = scene.stack.send_boas_vindas("first.csv", &[blocked]).await;
    let failed = scene.stack.messages(&first).await;
    assert_eq!(failed[0].status, MessageStatus::Failed);
    assert_eq!(failed[0].error_code, Some(131050));
    let listed = scene.api.get_json("/v1/opt-outs", 200).await;
    let mut sources: Vec<(String, String)> = listed["opt_outs"]
        .as_array()
        .expect("opt_outs")
        .iter()
        .map(|o| {
            (
                o["phone"]
                    .as_str()
                    .unwrap_or_default()
                    .trim_start_matches('+')
                    .to_owned(),
                o["source"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    sources.sort();
    assert_eq!(
        sources,
        [
            (stopped.to_owned(), "keyword".to_owned()),
            (blocked.to_owned(), "whatsapp_131050".to_owned())
        ]
    );

    // Later sends to either are skipped; the one still reachable is sent.
    let reachable = "5511987653007";
    let later = scene
        .stack
        .send_boas_vindas("later.csv", &[stopped, blocked, reachable])
        .await;
    let messages = scene.stack.messages(&later).await;
    let statuses: Vec<_> = messages
        .iter()
        .map(|m| (m.status, m.reason_code.clone()))
        .collect();
    assert_eq!(
        statuses[..2],
        [
            (MessageStatus::Skipped, Some("opted_out".to_owned())),
            (MessageStatus::Skipped, Some("opted_out".to_owned()))
        ],
        "{messages:?}"
    );
    assert!(
        matches!(
            statuses[2].0,
            MessageStatus::Sent | MessageStatus::Delivered | MessageStatus::Read
        ),
        "{messages:?}"
    );
    let sent_to: Vec<String> = scene
        .stack
        .sends_for(&later)
        .into_iter()
        .map(|s| s.to)
        .collect();
    assert_eq!(sent_to, [reachable.to_owned()], "only the reachable number");
    let counts = scene
        .stack
        .store
        .settled_counts(&later)
        .await
        .expect("counters");
    assert_eq!(counts.get("skipped"), Some(&2), "{counts:?}");

    // The operator manages the list.
    let response = scene
        .api
        .delete(&format!("/v1/opt-outs/+{stopped}"))
        .send()
        .await
        .expect("DELETE");
    assert_eq!(response.status().as_u16(), 204);
    let response = scene
        .api
        .delete(&format!("/v1/opt-outs/+{stopped}"))
        .send()
        .await
        .expect("DELETE");
    assert_eq!(response.status().as_u16(), 404);
    let added = scene
        .api
        .post_json(
            "/v1/opt-outs",
            &json!({ "phone": "(11) 98765-3008", "note": "pediu por telefone" }),
            201,
        )
        .await;
    assert_eq!(added["phone"], "+5511987653008");
    assert_eq!(added["source"], "operator");
    scene
        .api
        .post_json(
            "/v1/opt-outs",
            &json!({ "phone": "+55 11 98765-3008" }),
            200,
        )
        .await;
    scene
        .api
        .post_json("/v1/opt-outs", &json!({ "phone": "12" }), 422)
        .await;
    let listed = scene.api.get_json("/v1/opt-outs?limit=1", 200).await;
    assert_eq!(listed["opt_outs"].as_array().map(Vec::len), Some(1));
    let next = listed["next_cursor"].as_str().expect("a second page");
    let second = scene
        .api
        .get_json(&format!("/v1/opt-outs?limit=1&cursor={next}"), 200)
        .await;
    assert_eq!(second["opt_outs"].as_array().map(Vec::len), Some(1));
    assert_ne!(
        second["opt_outs"][0]["phone"],
        listed["opt_outs"][0]["phone"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inbound_webhooks_are_verified_deduplicated_and_order_tolerant() {
    let scene = Scene::start().await;
    let phone = "5511987653009";
    let now = chrono::Utc::now().timestamp();
    let hello = inbound_body(
        phone,
        "wamid.in-1",
        now,
        json!({ "type": "text", "text": { "body": "oi" } }),
    );

    // Unsigned and forged: refused, nothing recorded.
    assert_eq!(scene.post_signed(&hello, None).await, 401);
    assert_eq!(
        scene
            .post_signed(&hello, Some(signature("not-the-app-secret", &hello)))
            .await,
        401
    );
    scene
        .api
        .get_json(&format!("/v1/conversations/{phone}"), 404)
        .await;

    // Signed, twice (Meta delivers at least once): one message.
    for _ in 0..2 {
        assert_eq!(
            scene
                .post_signed(&hello, Some(signature(APP_SECRET, &hello)))
                .await,
            200
        );
    }
    let conversation = scene.conversation(phone).await;
    assert_eq!(conversation["state"], "open");
    assert_eq!(conversation["messages"].as_array().map(Vec::len), Some(1));

    // A reopening template, answered yes (twice) and — delivered late — an older no.
    scene.a_day_passes();
    let (answer, _) = scene.reactivate(phone).await;
    let message_id = answer["message_id"].as_str().expect("message id");
    let later = chrono::Utc::now().timestamp() + DAY_AND_AN_HOUR.as_secs() as i64;
    let yes = inbound_body(
        phone,
        "wamid.in-yes",
        later,
        json!({ "type": "button", "context": { "id": "wamid.template" },
                "button": { "payload": format!("{message_id}#b0"), "text": "Sim, continuar" } }),
    );
    let older_no = inbound_body(
        phone,
        "wamid.in-no",
        later - 60,
        json!({ "type": "button", "context": { "id": "wamid.template" },
                "button": { "payload": format!("{message_id}#b1"), "text": "Não, obrigado" } }),
    );
    for body in [&yes, &yes, &older_no] {
        assert_eq!(
            scene
                .post_signed(body, Some(signature(APP_SECRET, body)))
                .await,
            200
        );
    }
    let conversation = scene.conversation(phone).await;
    assert_eq!(
        conversation["state"], "open",
        "the late no changes nothing: {conversation}"
    );
    assert_eq!(conversation["outcome"], "accepted");
    assert_eq!(
        scene.events("conversation.started").await.len(),
        1,
        "one event per tap"
    );

    // A payload that is not ours, or names a message to someone else, is just a message.
    let foreign = inbound_body(
        "5511987653010",
        "wamid.in-foreign",
        later,
        json!({ "type": "button", "button": { "payload": format!("{message_id}#b0"), "text": "Sim" } }),
    );
    assert_eq!(
        scene
            .post_signed(&foreign, Some(signature(APP_SECRET, &foreign)))
            .await,
        200
    );
    let stranger = scene.conversation("5511987653010").await;
    assert_eq!(last_inbound(&stranger)["answer"], "message", "{stranger}");
    assert_eq!(scene.events("conversation.started").await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_started_conversation_is_published_to_the_event_bus() {
    use anna_api::eventbridge::{EVENT_SOURCE, EventBridgePublisher};

    let stack = TestStack::start().await;
    let events = aws_sdk_eventbridge::Client::new(&stack.sdk);
    let bus = format!("anna-{}", &stack.stack.names.table);
    events
        .create_event_bus()
        .name(&bus)
        .send()
        .await
        .expect("CreateEventBus on moto");
    // What the attendance side would do: a rule on our source, into a queue it reads.
    let queue_url = stack
        .sqs
        .create_queue()
        .queue_name(format!("{}-attendance", stack.stack.names.table))
        .send()
        .await
        .expect("CreateQueue")
        .queue_url
        .expect("queue url");
    let queue_arn = stack
        .sqs
        .get_queue_attributes()
        .queue_url(&queue_url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .expect("GetQueueAttributes")
        .attributes
        .and_then(|a| {
            a.get(&aws_sdk_sqs::types::QueueAttributeName::QueueArn)
                .cloned()
        })
        .expect("queue arn");
    events
        .put_rule()
        .name("attendance")
        .event_bus_name(&bus)
        .event_pattern(json!({ "source": [EVENT_SOURCE] }).to_string())
        .send()
        .await
        .expect("PutRule");
    events
        .put_targets()
        .rule("attendance")
        .event_bus_name(&bus)
        .targets(
            aws_sdk_eventbridge::types::Target::builder()
                .id("queue")
                .arn(queue_arn)
                .build()
                .expect("target"),
        )
        .send()
        .await
        .expect("PutTargets");

    let api = ApiServer::start_publishing(
        &stack,
        std::sync::Arc::new(EventBridgePublisher::new(events.clone(), bus.clone())),
    )
    .await;
    let scene = Scene::around(stack, api);
    let phone = "5511987653011";
    scene.customer_writes(phone, "oi").await;
    scene.a_day_passes();
    let (answer, template_wamid) = scene.reactivate(phone).await;
    scene.customer_taps(&template_wamid, 0).await;

    let received = scene
        .stack
        .sqs
        .receive_message()
        .queue_url(&queue_url)
        .wait_time_seconds(5)
        .send()
        .await
        .expect("ReceiveMessage")
        .messages
        .unwrap_or_default();
    assert_eq!(received.len(), 1, "{received:?}");
    let envelope: Value =
        serde_json::from_str(received[0].body.as_deref().unwrap_or_default()).expect("JSON");
    assert_eq!(envelope["source"], EVENT_SOURCE, "{envelope}");
    assert_eq!(envelope["detail-type"], "conversation.started");
    assert_eq!(envelope["detail"]["wa_id"], phone);
    assert_eq!(envelope["detail"]["message_id"], answer["message_id"]);
    let stored = scene.events("conversation.started").await;
    assert_eq!(
        envelope["detail"]["id"], stored[0]["id"],
        "the same id, stored and published"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_inbound_message_that_cannot_be_recorded_is_not_acknowledged() {
    let scene = Scene::start().await;
    aws_sdk_dynamodb::Client::new(&scene.stack.sdk)
        .delete_table()
        .table_name(&scene.stack.stack.names.table)
        .send()
        .await
        .expect("the store goes away");
    let body = inbound_body(
        "5511987653012",
        "wamid.in-outage",
        chrono::Utc::now().timestamp(),
        json!({ "type": "text", "text": { "body": "oi" } }),
    );
    assert_eq!(
        scene
            .post_signed(&body, Some(signature(APP_SECRET, &body)))
            .await,
        503,
        "Meta must deliver it again"
    );
}
