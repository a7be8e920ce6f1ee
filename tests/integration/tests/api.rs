//! The HTTP API end to end: every endpoint driven over HTTP against the test's own moto
//! resources and wa-sim, with the queues pumped through the real upload and sender handlers.

use std::collections::BTreeMap;
use std::time::Duration;

use anna_api::config::ApiLimits;
use anna_api::dispatches::REPORT_COLUMNS;
use anna_integration_tests::api::{API_KEY, ApiServer, read_json};
use anna_integration_tests::{TestStack, fixture};
use calamine::{Data, Reader};
use serde_json::{Value, json};

const QUIET: Duration = Duration::from_secs(90);

fn phone(i: usize) -> String {
    format!("+55 11 98765-{:04}", 1000 + i)
}

/// A `boas_vindas` recipient: store, name, date by position.
fn boas_vindas(phone: &str, name: &str) -> Value {
    json!({"phone": phone, "variables": ["Loja Centro", name, "25/12/2026"]})
}

fn send_request(recipients: Vec<Value>) -> Value {
    json!({"template": "boas_vindas", "language": "pt_BR", "recipients": recipients})
}

fn body_texts(send: &wa_sim_send::AcceptedSend) -> Vec<String> {
    send.payload["template"]["components"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|c| c["type"] == "body")
        .flat_map(|c| c["parameters"].as_array().cloned().unwrap_or_default())
        .filter_map(|p| p["text"].as_str().map(str::to_owned))
        .collect()
}

mod wa_sim_send {
    pub use anna_integration_tests::wa_sim::AcceptedSend;
}

fn problem_type(body: &Value) -> &str {
    body["type"]
        .as_str()
        .and_then(|t| t.strip_prefix("urn:anna-notify:problem:"))
        .unwrap_or("")
}

/// Every message of a dispatch, following the cursors.
async fn all_messages(api: &ApiServer, id: &str, query: &str, limit: usize) -> Vec<Value> {
    let mut messages = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..1000 {
        let mut path = format!("/v1/dispatches/{id}/messages?limit={limit}{query}");
        if let Some(cursor) = &cursor {
            path.push_str(&format!("&cursor={cursor}"));
        }
        let page = api.get_json(&path, 200).await;
        let items = page["messages"].as_array().expect("messages").clone();
        assert!(items.len() <= limit, "pages are bounded");
        messages.extend(items);
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return messages,
        }
    }
    panic!("the cursor never ended");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_list_is_sent_and_its_progress_and_messages_are_readable() {
    let stack = TestStack::start().await;
    let api = ApiServer::start(&stack).await;
    let request = send_request(vec![
        boas_vindas(&phone(1), "Ana"),
        boas_vindas("12345", "Bia"),
        boas_vindas(&phone(3), "Caio"),
        boas_vindas(&phone(1), "Ana de novo"),
        json!({"phone": phone(5), "variables": {"header 1": "Loja Sul", "{{1}}": "Duda"}}),
    ]);
    let response = api
        .post("/v1/dispatches")
        .json(&request)
        .send()
        .await
        .expect("request");
    let location = response
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let accepted = read_json(response, 202).await;
    let id = accepted["id"].as_str().expect("id").to_owned();
    assert!(id.starts_with("d-") && id.len() == 26, "{id}");
    assert_eq!(location, Some(format!("/v1/dispatches/{id}")));
    assert_eq!(accepted["state"], "sending");
    assert_eq!(accepted["accepted"], 2);
    let rejected: BTreeMap<u64, String> = accepted["rejected"]
        .as_array()
        .expect("rejected")
        .iter()
        .map(|r| {
            (
                r["index"].as_u64().expect("index"),
                r["reason_code"].as_str().expect("code").to_owned(),
            )
        })
        .collect();
    assert_eq!(
        rejected,
        BTreeMap::from([
            (1, "invalid_phone".to_owned()),
            (3, "duplicate".to_owned()),
            (4, "missing_variable".to_owned()),
        ])
    );
    let duplicate = &accepted["rejected"][1];
    assert_eq!(
        duplicate["reason"],
        "the phone number is the same as that of recipient index 0"
    );
    assert_eq!(accepted["rejected"][2]["reason"], "no value for \"{{2}}\"");

    stack.run_until_quiet(QUIET).await;

    let sends = stack.sends_for(&id);
    assert_eq!(
        sends.len(),
        2,
        "one WhatsApp message per accepted recipient"
    );
    let mut names: Vec<String> = sends.iter().map(|s| body_texts(s)[0].clone()).collect();
    names.sort();
    assert_eq!(names, ["Ana", "Caio"]);

    let view = api.get_json(&format!("/v1/dispatches/{id}"), 200).await;
    assert_eq!(view["state"], "completed", "{view}");
    assert_eq!(view["source"]["kind"], "api");
    assert_eq!(view["template"], "boas_vindas");
    assert_eq!(
        (view["rows"].as_u64(), view["accepted"].as_u64()),
        (Some(5), Some(2))
    );
    assert_eq!(view["totals"]["sent"], 2);
    assert_eq!(view["totals"]["queued"], 0);
    assert_eq!(view["totals"]["rejected"], 3);
    assert_eq!(view["progress"]["percent"], 100.0);
    assert_eq!(
        view["links"]["report_csv"],
        format!("/v1/dispatches/{id}/report?format=csv")
    );

    let messages = all_messages(&api, &id, "", 100).await;
    let statuses: Vec<(u64, &str)> = messages
        .iter()
        .map(|m| {
            (
                m["row"].as_u64().unwrap_or(0),
                m["status"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        statuses,
        [
            (1, "sent"),
            (2, "rejected"),
            (3, "sent"),
            (4, "rejected"),
            (5, "rejected")
        ]
    );
    let sent = &messages[0];
    assert_eq!(sent["phone"], "+5511987651001");
    assert!(
        sent["whatsapp_id"]
            .as_str()
            .is_some_and(|w| w.starts_with("wamid."))
    );
    assert!(sent["sent_at"].is_string());
    assert_eq!(messages[1]["reason_code"], "invalid_phone");

    let only_sent = all_messages(&api, &id, "&status=sent", 100).await;
    assert_eq!(only_sent.len(), 2);

    let list = api.get_json("/v1/dispatches", 200).await;
    assert!(
        list["dispatches"]
            .as_array()
            .is_some_and(|d| d.iter().any(|d| d["id"] == id)),
        "{list}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_named_template_takes_its_variables_by_name() {
    let stack = TestStack::start().await;
    let api = ApiServer::start(&stack).await;
    let request = json!({
        "template": "lembrete_consulta", "language": "pt_BR",
        "recipients": [
            {"phone": "11987650001", "variables": {"hora": "14:30", "nome": "Maria", "data": "25/12/2026"}},
            {"phone": 5511987650002_u64, "variables": ["João", "26/12/2026", "9:00"]},
        ]
    });
    let accepted = api.post_json("/v1/dispatches", &request, 202).await;
    assert_eq!(accepted["accepted"], 2, "{accepted}");
    let id = accepted["id"].as_str().expect("id").to_owned();
    stack.run_until_quiet(QUIET).await;
    let sends = stack.sends_for(&id);
    assert_eq!(sends.len(), 2);
    let maria = sends
        .iter()
        .find(|s| s.to == "5511987650001")
        .expect("Maria's message");
    let body = maria.payload["template"]["components"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["type"] == "body"))
        .expect("body");
    let parameters: BTreeMap<&str, &str> = body["parameters"]
        .as_array()
        .expect("parameters")
        .iter()
        .map(|p| {
            (
                p["parameter_name"].as_str().unwrap_or(""),
                p["text"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        parameters,
        BTreeMap::from([("data", "25/12/2026"), ("hora", "14:30"), ("nome", "Maria")])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_request_with_an_idempotency_key_sends_nothing_twice() {
    let stack = TestStack::start().await;
    let api = ApiServer::start(&stack).await;
    let request = send_request(vec![
        boas_vindas(&phone(1), "Ana"),
        boas_vindas(&phone(2), "Bia"),
    ]);
    let post = |body: Value, key: &'static str| {
        api.post("/v1/dispatches")
            .header("Idempotency-Key", key)
            .json(&body)
            .send()
    };
    let first = read_json(post(request.clone(), "order-42").await.expect("first"), 202).await;
    let id = first["id"].as_str().expect("id").to_owned();
    let replay = post(request.clone(), "order-42").await.expect("retry");
    assert_eq!(
        replay
            .headers()
            .get("idempotent-replayed")
            .and_then(|v| v.to_str().ok()),
        Some("true")
    );
    let second = read_json(replay, 202).await;
    assert_eq!(second["id"], id);
    assert_eq!(second["accepted"], 2);
    stack.run_until_quiet(QUIET).await;
    // And once more after everything was sent.
    let third = read_json(
        post(request.clone(), "order-42").await.expect("late retry"),
        202,
    )
    .await;
    assert_eq!(third["id"], id);
    stack.run_until_quiet(QUIET).await;
    assert_eq!(
        stack.sends_for(&id).len(),
        2,
        "each recipient messaged once"
    );
    assert_eq!(stack.messages(&id).await.len(), 2);

    let other = send_request(vec![boas_vindas(&phone(3), "Caio")]);
    let reused = read_json(post(other, "order-42").await.expect("reuse"), 422).await;
    assert_eq!(problem_type(&reused), "idempotency-key-reused");

    let bad_key = api
        .post("/v1/dispatches")
        .header("Idempotency-Key", "two words")
        .json(&request)
        .send()
        .await
        .expect("request");
    assert_eq!(
        problem_type(&read_json(bad_key, 400).await),
        "invalid-idempotency-key"
    );

    // Without a key, the same request is a new dispatch.
    let fresh = api.post_json("/v1/dispatches", &request, 202).await;
    assert_ne!(fresh["id"], id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_that_cannot_be_carried_out_say_why() {
    let stack = TestStack::start().await;
    let api = ApiServer::start_with(
        &stack,
        ApiLimits {
            max_recipients: 3,
            ..ApiLimits::default()
        },
    )
    .await;

    let nothing = api
        .post_json(
            "/v1/dispatches",
            &send_request(vec![boas_vindas("123", "Ana"), json!({"phone": phone(1)})]),
            422,
        )
        .await;
    assert_eq!(problem_type(&nothing), "nothing-accepted");
    let reasons: Vec<(u64, &str)> = nothing["rejected"]
        .as_array()
        .expect("rejected")
        .iter()
        .map(|r| {
            (
                r["index"].as_u64().unwrap_or(9),
                r["reason_code"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(reasons, [(0, "invalid_phone"), (1, "missing_variable")]);
    let list = api.get_json("/v1/dispatches", 200).await;
    assert_eq!(list["dispatches"], json!([]), "nothing was created");

    let unknown = api
        .post_json(
            "/v1/dispatches",
            &json!({"template": "lembrete_consulta", "language": "pt_BR", "recipients": [
                {"phone": phone(1), "variables": {"nome": "Ana", "dia": "1/1", "data": "1/1", "hora": "9:00"}},
                {"phone": [1], "variables": {"nome": "Bia", "data": "1/1", "hora": "9:00"}}]}),
            422,
        )
        .await;
    assert_eq!(problem_type(&unknown), "invalid-recipients");
    let pointers: Vec<&str> = unknown["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .filter_map(|e| e["pointer"].as_str())
        .collect();
    assert_eq!(
        pointers,
        ["/recipients/0/variables/dia", "/recipients/1/phone"]
    );
    assert!(
        unknown["errors"][0]["detail"]
            .as_str()
            .is_some_and(|d| d.contains("\"nome\", \"data\", \"hora\"")),
        "{unknown}"
    );

    let too_many = api
        .post_json(
            "/v1/dispatches",
            &send_request((0..4).map(|i| boas_vindas(&phone(i), "X")).collect()),
            422,
        )
        .await;
    assert_eq!(problem_type(&too_many), "too-many-recipients");

    let missing = api
        .post_json(
            "/v1/dispatches",
            &json!({"template": "nao_existe", "language": "pt_BR", "recipients": [boas_vindas(&phone(1), "A")]}),
            404,
        )
        .await;
    assert_eq!(problem_type(&missing), "no-such-template");
    let language = api
        .post_json(
            "/v1/dispatches",
            &json!({"template": "boas_vindas", "language": "fr_FR", "recipients": [boas_vindas(&phone(1), "A")]}),
            404,
        )
        .await;
    assert!(
        language["detail"]
            .as_str()
            .is_some_and(|d| d.contains("en_US") && d.contains("pt_BR")),
        "names the languages it exists in: {language}"
    );
    let paused = api
        .post_json(
            "/v1/dispatches",
            &json!({"template": "oferta_pausada", "language": "pt_BR", "recipients": [{"phone": phone(1), "variables": ["Ana"]}]}),
            422,
        )
        .await;
    assert_eq!(problem_type(&paused), "template-not-sendable");
    assert!(
        paused["detail"]
            .as_str()
            .is_some_and(|d| d.contains("PAUSED"))
    );

    let bad_time = api
        .post_json(
            "/v1/dispatches",
            &json!({"template": "boas_vindas", "language": "pt_BR", "send_at": "amanhã",
                    "recipients": [boas_vindas(&phone(1), "A")]}),
            422,
        )
        .await;
    assert_eq!(problem_type(&bad_time), "invalid-send-at");

    let malformed = api
        .post("/v1/dispatches")
        .header("content-type", "application/json")
        .body("{\"template\": \"boas_vindas\",")
        .send()
        .await
        .expect("request");
    assert_eq!(
        malformed
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("application/problem+json")
    );
    assert_eq!(
        problem_type(&read_json(malformed, 400).await),
        "invalid-json"
    );

    let no_dispatch = api
        .get_json("/v1/dispatches/d-000000000000000000000000", 404)
        .await;
    assert_eq!(problem_type(&no_dispatch), "no-such-dispatch");
    let no_route = api.get_json("/v1/dispatch", 404).await;
    assert_eq!(problem_type(&no_route), "no-such-route");

    let anonymous = api
        .client
        .get(api.url("/v1/dispatches"))
        .send()
        .await
        .expect("request");
    assert_eq!(
        problem_type(&read_json(anonymous, 401).await),
        "missing-api-key"
    );
    let wrong = api
        .client
        .get(api.url("/v1/templates"))
        .bearer_auth(format!("{API_KEY}x"))
        .send()
        .await
        .expect("request");
    assert_eq!(
        problem_type(&read_json(wrong, 401).await),
        "invalid-api-key"
    );
    assert!(stack.sim.sends().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scheduled_dispatch_waits_for_its_time() {
    let stack = TestStack::start().await;
    let api = ApiServer::start(&stack).await;
    let send_at = chrono::Utc::now() + chrono::Duration::hours(1);
    let mut request = send_request(vec![
        boas_vindas(&phone(1), "Ana"),
        boas_vindas(&phone(2), "Bia"),
    ]);
    request["send_at"] = json!(send_at.to_rfc3339());
    let accepted = api.post_json("/v1/dispatches", &request, 202).await;
    let id = accepted["id"].as_str().expect("id").to_owned();
    assert_eq!(accepted["state"], "scheduled");
    assert!(
        accepted["send_at"]
            .as_str()
            .is_some_and(|s| s.ends_with('Z'))
    );

    stack.run_until_quiet(QUIET).await;
    assert!(
        stack.sends_for(&id).is_empty(),
        "nothing is sent before send_at"
    );
    let view = api.get_json(&format!("/v1/dispatches/{id}"), 200).await;
    assert_eq!(view["state"], "scheduled");
    assert_eq!(view["totals"]["queued"], 2);
    assert_eq!(api.release_due_now().await.released, Vec::<String>::new());

    let later = (send_at + chrono::Duration::seconds(1))
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let report = api.release_due(&later).await;
    assert_eq!(report.released.as_slice(), std::slice::from_ref(&id));
    assert_eq!(report.queued, 2);
    stack.run_until_quiet(QUIET).await;
    assert_eq!(stack.sends_for(&id).len(), 2);
    let view = api.get_json(&format!("/v1/dispatches/{id}"), 200).await;
    assert_eq!(view["state"], "completed");
    // Released once: a second run finds nothing.
    assert!(api.release_due(&later).await.released.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_dispatch_sends_nothing() {
    let stack = TestStack::start().await;
    let api = ApiServer::start(&stack).await;

    // Scheduled, then cancelled: its messages are skipped and it is never released.
    let mut scheduled = send_request(vec![
        boas_vindas(&phone(1), "Ana"),
        boas_vindas(&phone(2), "Bia"),
    ]);
    let send_at = chrono::Utc::now() + chrono::Duration::hours(1);
    scheduled["send_at"] = json!(send_at.to_rfc3339());
    let id = api.post_json("/v1/dispatches", &scheduled, 202).await["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let cancelled = api
        .post_json(&format!("/v1/dispatches/{id}/cancel"), &json!({}), 200)
        .await;
    assert_eq!(cancelled["state"], "cancelled");
    assert_eq!(cancelled["totals"]["skipped"], 2, "{cancelled}");
    assert_eq!(cancelled["progress"]["percent"], 100.0);
    let later = (send_at + chrono::Duration::minutes(1))
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let report = api.release_due(&later).await;
    assert!(
        report.released.is_empty() && report.queued == 0,
        "{report:?}"
    );
    // Cancelling again is harmless.
    let again = api
        .post_json(&format!("/v1/dispatches/{id}/cancel"), &json!({}), 200)
        .await;
    assert_eq!(again["state"], "cancelled");

    // Queued for sending, cancelled before the sender got to it.
    let now = send_request(vec![
        boas_vindas(&phone(3), "Caio"),
        boas_vindas(&phone(4), "Duda"),
    ]);
    let sending = api.post_json("/v1/dispatches", &now, 202).await["id"]
        .as_str()
        .expect("id")
        .to_owned();
    api.post_json(&format!("/v1/dispatches/{sending}/cancel"), &json!({}), 200)
        .await;
    stack.run_until_quiet(QUIET).await;
    assert!(
        stack.sim.sends().is_empty(),
        "a cancelled dispatch sends nothing"
    );
    for dispatch in [&id, &sending] {
        let messages = all_messages(&api, dispatch, "", 100).await;
        assert_eq!(messages.len(), 2);
        for message in messages {
            assert_eq!(message["status"], "skipped");
            assert_eq!(message["reason_code"], "cancelled");
        }
    }

    // A finished dispatch cannot be cancelled.
    let done = api
        .post_json(
            "/v1/dispatches",
            &send_request(vec![boas_vindas(&phone(5), "Eva")]),
            202,
        )
        .await["id"]
        .as_str()
        .expect("id")
        .to_owned();
    stack.run_until_quiet(QUIET).await;
    assert_eq!(stack.sends_for(&done).len(), 1);
    let late = api
        .post_json(&format!("/v1/dispatches/{done}/cancel"), &json!({}), 409)
        .await;
    assert_eq!(problem_type(&late), "dispatch-finished");
    assert_eq!(stack.sends_for(&done).len(), 1);
    let missing = api
        .post_json("/v1/dispatches/d-nope/cancel", &json!({}), 404)
        .await;
    assert_eq!(problem_type(&missing), "no-such-dispatch");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spreadsheet_uploaded_through_a_presigned_url_becomes_the_named_dispatch() {
    let stack = TestStack::start().await;
    let api = ApiServer::start(&stack).await;
    let ticket = api
        .post_json(
            "/v1/uploads",
            &json!({"template": "boas_vindas", "language": "pt_BR", "filename": "clientes maio.xlsx"}),
            201,
        )
        .await;
    assert_eq!(ticket["method"], "PUT");
    let dispatch_id = ticket["dispatch_id"]
        .as_str()
        .expect("dispatch id")
        .to_owned();
    let url = ticket["url"].as_str().expect("url").to_owned();
    let key = ticket["key"].as_str().expect("key").to_owned();
    assert!(key.starts_with("inbox/boas_vindas/pt_BR/u-") && key.ends_with("/clientes maio.xlsx"));
    assert_eq!(
        api.get_json(&format!("/v1/dispatches/{dispatch_id}"), 404)
            .await["type"],
        "urn:anna-notify:problem:no-such-dispatch",
        "no dispatch before the file arrives"
    );

    // No AWS credentials: the URL is all it takes.
    let bytes = std::fs::read(fixture("sheets/boas_vindas.xlsx")).expect("fixture");
    let put = reqwest::Client::new()
        .put(&url)
        .body(bytes.clone())
        .send()
        .await
        .expect("PUT");
    assert!(
        put.status().is_success(),
        "{}",
        put.text().await.unwrap_or_default()
    );
    stack.run_until_quiet(QUIET).await;

    let view = api
        .get_json(&format!("/v1/dispatches/{dispatch_id}"), 200)
        .await;
    assert_eq!(view["state"], "completed", "{view}");
    assert_eq!(view["source"]["kind"], "upload");
    assert_eq!(view["source"]["key"], key);
    assert_eq!(
        (view["accepted"].as_u64(), view["rejected"].as_u64()),
        (Some(4), Some(3))
    );
    assert_eq!(view["totals"]["sent"], 4);
    assert_eq!(view["progress"]["percent"], 100.0);
    assert_eq!(stack.sends_for(&dispatch_id).len(), 4);

    // The same URL used again does not make a second dispatch or send again.
    let again = reqwest::Client::new()
        .put(&url)
        .body(bytes)
        .send()
        .await
        .expect("PUT");
    assert!(again.status().is_success());
    stack.run_until_quiet(QUIET).await;
    assert_eq!(stack.sends_for(&dispatch_id).len(), 4);
    let list = api.get_json("/v1/dispatches", 200).await;
    assert_eq!(list["dispatches"].as_array().map(Vec::len), Some(1));

    let bad_name = api
        .post_json(
            "/v1/uploads",
            &json!({"template": "boas_vindas", "language": "pt_BR", "filename": "../x.csv"}),
            422,
        )
        .await;
    assert_eq!(problem_type(&bad_name), "invalid-filename");
    let unapproved = api
        .post_json(
            "/v1/uploads",
            &json!({"template": "campanha_rejeitada", "language": "pt_BR", "filename": "x.csv"}),
            422,
        )
        .await;
    assert_eq!(problem_type(&unapproved), "template-not-sendable");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_template_gallery_previews_and_sheet_layouts() {
    let stack = TestStack::start().await;
    let api = ApiServer::start(&stack).await;

    let gallery = api.get_json("/v1/templates", 200).await;
    let names: Vec<String> = gallery["templates"]
        .as_array()
        .expect("templates")
        .iter()
        .map(|t| {
            format!(
                "{}/{}",
                t["name"].as_str().unwrap_or(""),
                t["language"].as_str().unwrap_or("")
            )
        })
        .collect();
    assert!(names.contains(&"boas_vindas/pt_BR".to_owned()), "{names:?}");
    assert!(names.contains(&"lembrete_consulta/pt_BR".to_owned()));
    assert!(
        !names.iter().any(|n| n.starts_with("oferta_pausada")),
        "approved only"
    );
    let everything = api
        .get_json("/v1/templates?all=true&refresh=true", 200)
        .await;
    assert!(everything["templates"].as_array().is_some_and(|t| {
        t.iter()
            .any(|t| t["name"] == "oferta_pausada" && t["sendable"] == false)
    }));

    let positional = api
        .get_json("/v1/templates/boas_vindas?language=pt_BR", 200)
        .await;
    assert_eq!(positional["parameter_format"], "POSITIONAL");
    assert_eq!(
        positional["columns"],
        json!(["header {{1}}", "{{1}}", "{{2}}"])
    );
    assert_eq!(positional["header"]["format"], "TEXT");
    assert_eq!(positional["buttons"][0]["type"], "QUICK_REPLY");
    assert_eq!(positional["variables"][1]["example"], "Maria");
    let ambiguous = api.get_json("/v1/templates/boas_vindas", 400).await;
    assert_eq!(problem_type(&ambiguous), "language-required");
    let named = api.get_json("/v1/templates/lembrete_consulta", 200).await;
    assert_eq!(named["parameter_format"], "NAMED");
    assert_eq!(named["columns"], json!(["nome", "data", "hora"]));
    assert_eq!(
        problem_type(&api.get_json("/v1/templates/nao_existe", 404).await),
        "no-such-template"
    );

    // Previews.
    let preview = api
        .post_json(
            "/v1/templates/boas_vindas/preview",
            &json!({"language": "pt_BR", "variables": ["Loja Centro", "Maria", "25/12/2026"]}),
            200,
        )
        .await;
    assert_eq!(preview["header"], "Loja Centro");
    assert_eq!(preview["body"], "Olá Maria, sua consulta é em 25/12/2026.");
    assert_eq!(preview["footer"], "Responda SAIR para não receber mais");
    assert_eq!(preview["buttons"], json!(["Sim", "Não"]));
    let named_preview = api
        .post_json(
            "/v1/templates/lembrete_consulta/preview",
            &json!({"variables": {"nome": "João", "data": "1/2/2027", "hora": "9:00"}}),
            200,
        )
        .await;
    assert_eq!(
        named_preview["body"],
        "Oi, João! Sua consulta é dia 1/2/2027 às 9:00."
    );
    let wrong = api
        .post_json(
            "/v1/templates/lembrete_consulta/preview",
            &json!({"variables": {"nome": "João", "dia": "1/2"}}),
            422,
        )
        .await;
    assert_eq!(problem_type(&wrong), "invalid-variables");
    let detail = wrong["detail"].as_str().unwrap_or("");
    assert!(
        detail.contains("missing variables: \"data\", \"hora\"")
            && detail.contains("unknown variables: \"dia\""),
        "{detail}"
    );
    let line_break = api
        .post_json(
            "/v1/templates/lembrete_consulta/preview",
            &json!({"variables": ["João\nSilva", "1/2", "9:00"]}),
            422,
        )
        .await;
    assert!(
        line_break["detail"]
            .as_str()
            .is_some_and(|d| d.contains("line break"))
    );

    // Sheet layouts: header and example row, in both formats.
    let csv = api
        .get("/v1/templates/lembrete_consulta/sheet?format=csv")
        .send()
        .await
        .expect("sheet");
    assert_eq!(csv.status(), 200);
    assert!(
        csv.headers()
            .get("content-disposition")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.contains("lembrete_consulta-pt_BR.csv"))
    );
    let text = csv.text().await.expect("csv");
    let rows: Vec<Vec<String>> = csv::Reader::from_reader(text.as_bytes())
        .records()
        .map(|r| r.expect("record").iter().map(str::to_owned).collect())
        .collect();
    assert!(
        text.trim_start_matches('\u{feff}')
            .starts_with("phone,nome,data,hora\n"),
        "{text}"
    );
    assert_eq!(rows, [["5511987654321", "Maria", "25/12/2026", "14:30"]]);

    let xlsx = api
        .get("/v1/templates/boas_vindas/sheet?language=pt_BR&format=xlsx")
        .send()
        .await
        .expect("sheet")
        .bytes()
        .await
        .expect("bytes");
    let layout = read_xlsx(&xlsx);
    assert_eq!(
        layout,
        [
            vec!["phone", "header {{1}}", "{{1}}", "{{2}}"],
            vec!["5511987654321", "Loja Centro", "Maria", "25/12/2026"],
        ]
    );

    // The layout, uploaded as it is, is a dispatch that sends its example row.
    let ticket = api
        .post_json(
            "/v1/uploads",
            &json!({"template": "boas_vindas", "language": "pt_BR", "filename": "layout.xlsx"}),
            201,
        )
        .await;
    let put = reqwest::Client::new()
        .put(ticket["url"].as_str().expect("url"))
        .body(xlsx.to_vec())
        .send()
        .await
        .expect("PUT");
    assert!(put.status().is_success());
    stack.run_until_quiet(QUIET).await;
    let sends = stack.sends_for(ticket["dispatch_id"].as_str().expect("id"));
    assert_eq!(sends.len(), 1);
    assert_eq!(body_texts(&sends[0]), ["Maria", "25/12/2026"]);
}

fn read_xlsx(bytes: &[u8]) -> Vec<Vec<String>> {
    let mut book: calamine::Xlsx<_> =
        calamine::open_workbook_from_rs(std::io::Cursor::new(bytes.to_vec())).expect("xlsx");
    let range = book.worksheet_range_at(0).expect("a sheet").expect("range");
    range
        .rows()
        .map(|row| {
            row.iter()
                .map(|cell| match cell {
                    Data::Empty => String::new(),
                    Data::String(s) => s.clone(),
                    other => other.to_string(),
                })
                .collect()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_results_report_reads_back_in_both_formats() {
    let stack = TestStack::start().await;
    stack.sim.set_not_on_whatsapp(["5511987651003".to_owned()]);
    let api = ApiServer::start(&stack).await;
    let request = send_request(vec![
        boas_vindas(&phone(1), "=HYPERLINK(\"http://x\")"),
        boas_vindas("12345", "Bia"),
        boas_vindas(&phone(3), "Caio"),
    ]);
    let id = api.post_json("/v1/dispatches", &request, 202).await["id"]
        .as_str()
        .expect("id")
        .to_owned();
    stack.run_until_quiet(QUIET).await;

    let header: Vec<String> = ["phone", "header {{1}}", "{{1}}", "{{2}}"]
        .into_iter()
        .chain(REPORT_COLUMNS)
        .map(str::to_owned)
        .collect();
    let status_at = header
        .iter()
        .position(|h| h == "status")
        .expect("status column");
    let column = |name: &str| header.iter().position(|h| h == name).expect("column");

    let csv = api
        .get(&format!("/v1/dispatches/{id}/report?format=csv"))
        .send()
        .await
        .expect("report");
    assert_eq!(csv.status(), 200);
    assert_eq!(
        csv.headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("text/csv; charset=utf-8")
    );
    let text = csv.text().await.expect("csv");
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let csv_header: Vec<String> = reader
        .headers()
        .expect("header")
        .iter()
        .map(str::to_owned)
        .collect();
    assert_eq!(csv_header, header);
    let rows: Vec<Vec<String>> = reader
        .records()
        .map(|r| r.expect("record").iter().map(str::to_owned).collect())
        .collect();
    assert_eq!(rows.len(), 3);
    let statuses: Vec<&str> = rows.iter().map(|r| r[status_at].as_str()).collect();
    assert_eq!(statuses, ["sent", "rejected", "failed"]);
    assert_eq!(
        rows[0][0],
        phone(1),
        "phone numbers stay as they were given"
    );
    assert_eq!(
        rows[0][2], "'=HYPERLINK(\"http://x\")",
        "formulas are neutralised"
    );
    assert!(rows[0][column("whatsapp_id")].starts_with("wamid."));
    assert!(!rows[0][column("sent_at")].is_empty());
    assert!(rows[1][column("reason")].contains("not a valid number"));
    assert_eq!(rows[2][column("error_code")], "131026");
    assert!(!rows[2][column("error_detail")].is_empty());
    assert!(!rows[2][column("failed_at")].is_empty());

    let xlsx = api
        .get(&format!("/v1/dispatches/{id}/report"))
        .send()
        .await
        .expect("report");
    assert_eq!(xlsx.status(), 200);
    let xlsx = xlsx.bytes().await.expect("bytes");
    let sheet = read_xlsx(&xlsx);
    assert_eq!(sheet[0], header);
    assert_eq!(sheet.len(), 4);
    let statuses: Vec<&str> = sheet[1..].iter().map(|r| r[status_at].as_str()).collect();
    assert_eq!(statuses, ["sent", "rejected", "failed"]);
    // Stored as text, never as a formula.
    assert_eq!(sheet[1][2], "=HYPERLINK(\"http://x\")");
    let mut book: calamine::Xlsx<_> =
        calamine::open_workbook_from_rs(std::io::Cursor::new(xlsx.to_vec())).expect("xlsx");
    let formulas = book.worksheet_formula("dados").expect("formulas");
    assert!(formulas.cells().all(|(_, _, f)| f.is_empty()));
    assert_eq!(
        sheet[1][column("whatsapp_id")],
        rows[0][column("whatsapp_id")]
    );

    // A report too large to answer directly comes from S3 through a presigned URL.
    let small = ApiServer::start_with(
        &stack,
        ApiLimits {
            report_inline_max_bytes: 0,
            ..ApiLimits::default()
        },
    )
    .await;
    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let redirect = no_redirects
        .get(small.url(&format!("/v1/dispatches/{id}/report?format=csv")))
        .bearer_auth(API_KEY)
        .send()
        .await
        .expect("report");
    assert_eq!(redirect.status(), 303);
    let location = redirect
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .expect("location")
        .to_owned();
    assert!(
        location.contains("/reports/") && location.contains("X-Amz-Signature"),
        "{location}"
    );
    // Followed (reqwest follows redirects by default), it is the same report.
    let followed = small
        .get(&format!("/v1/dispatches/{id}/report?format=csv"))
        .send()
        .await
        .expect("report");
    assert_eq!(followed.status(), 200);
    let followed = followed.text().await.expect("csv");
    let statuses: Vec<String> = csv::Reader::from_reader(followed.as_bytes())
        .records()
        .map(|r| r.expect("record")[status_at].to_owned())
        .collect();
    assert_eq!(statuses, ["sent", "rejected", "failed"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_page_with_cursors() {
    let stack = TestStack::start().await;
    let api = ApiServer::start(&stack).await;
    let recipients: Vec<Value> = (0..45).map(|i| boas_vindas(&phone(i), "X")).collect();
    let big = api
        .post_json("/v1/dispatches", &send_request(recipients), 202)
        .await["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let mut ids = vec![big.clone()];
    for i in 0..2 {
        tokio::time::sleep(Duration::from_millis(5)).await;
        let id = api
            .post_json(
                "/v1/dispatches",
                &send_request(vec![boas_vindas(&phone(100 + i), "Y")]),
                202,
            )
            .await["id"]
            .as_str()
            .expect("id")
            .to_owned();
        ids.push(id);
    }
    // Newest first, two at a time.
    let first = api.get_json("/v1/dispatches?limit=2", 200).await;
    let second = api
        .get_json(
            &format!(
                "/v1/dispatches?limit=2&cursor={}",
                first["next_cursor"].as_str().expect("a next page")
            ),
            200,
        )
        .await;
    let listed: Vec<&str> = first["dispatches"]
        .as_array()
        .into_iter()
        .chain(second["dispatches"].as_array())
        .flatten()
        .filter_map(|d| d["id"].as_str())
        .collect();
    assert_eq!(listed, [ids[2].as_str(), ids[1].as_str(), ids[0].as_str()]);
    assert!(
        second["next_cursor"].is_null()
            || second["dispatches"]
                .as_array()
                .is_some_and(|d| d.len() == 1)
    );

    // Messages in row order across pages of 7, none twice, none missing.
    let messages = all_messages(&api, &big, "", 7).await;
    let rows: Vec<u64> = messages.iter().filter_map(|m| m["row"].as_u64()).collect();
    assert_eq!(rows, (1..=45).collect::<Vec<u64>>());
    let queued = all_messages(&api, &big, "&status=queued", 10).await;
    assert_eq!(queued.len(), 45);
    assert!(
        all_messages(&api, &big, "&status=failed", 10)
            .await
            .is_empty()
    );
    stack.run_until_quiet(QUIET).await;
    let sent = all_messages(&api, &big, "&status=sent", 500).await;
    assert_eq!(sent.len(), 45);
    let view = api.get_json(&format!("/v1/dispatches/{big}"), 200).await;
    assert_eq!(view["state"], "completed");
    assert_eq!(view["progress"]["settled"], 45);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_and_openapi_over_http() {
    let stack = TestStack::start().await;
    let api = ApiServer::start(&stack).await;
    let health = api
        .client
        .get(api.url("/health"))
        .send()
        .await
        .expect("health");
    assert_eq!(read_json(health, 200).await["status"], "ok");
    let document = api
        .client
        .get(api.url("/openapi.json"))
        .send()
        .await
        .expect("document");
    let document = read_json(document, 200).await;
    assert_eq!(document["openapi"], "3.1.0");
    assert!(document["paths"]["/v1/dispatches/{id}/report"]["get"].is_object());
}

/// The metrics the handlers emit, added up where the local stack keeps them (`anna-local
/// run` does): what CloudWatch would show. Other tests of this binary emit too, so the
/// figures are at least this test's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_add_up_what_the_functions_emitted() {
    let stack = TestStack::start().await;
    let api = ApiServer::start(&stack).await;

    // Not kept (as on Lambda): the answer says where the metrics are.
    if anna_shared::metrics::totals().is_none() {
        let body = api.get_json("/v1/metrics", 404).await;
        assert_eq!(problem_type(&body), "metrics-not-kept");
        assert!(body["detail"].as_str().unwrap_or("").contains("CloudWatch"));
    }
    anna_shared::metrics::keep_totals();

    let accepted = api
        .post_json(
            "/v1/dispatches",
            &send_request(vec![
                boas_vindas(&phone(601), "Ana"),
                boas_vindas(&phone(602), "Bia"),
                boas_vindas("12345", "Caio"),
            ]),
            202,
        )
        .await;
    let id = accepted["id"].as_str().expect("id").to_owned();
    stack.run_until_quiet(QUIET).await;
    assert_eq!(stack.sends_for(&id).len(), 2);

    let body = api.get_json("/v1/metrics", 200).await;
    assert_eq!(body["namespace"], "anna-notify");
    let sum = |name: &str, dimension: (&str, &str)| -> f64 {
        body["metrics"]
            .as_array()
            .expect("metrics")
            .iter()
            .filter(|m| m["name"] == name && m["dimensions"][dimension.0] == dimension.1)
            .map(|m| m["sum"].as_f64().unwrap_or(0.0))
            .sum()
    };
    assert!(sum("IntakeAccepted", ("Source", "api")) >= 2.0, "{body}");
    assert!(sum("IntakeRejected", ("Source", "api")) >= 1.0, "{body}");
    assert!(sum("Sent", ("Function", "sender")) >= 2.0, "{body}");
    let names: Vec<&str> = body["metrics"]
        .as_array()
        .expect("metrics")
        .iter()
        .filter_map(|m| m["name"].as_str())
        .collect();
    assert!(names.contains(&"SendLatency"), "{names:?}");
    api.shutdown().await;
}
