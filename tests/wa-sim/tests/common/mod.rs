//! Shared helpers for wa-sim's HTTP tests.
#![allow(dead_code)]

use serde_json::{Value, json};
use wa_sim::{SimConfig, SimServer};

pub const TOKEN: &str = "sim-token";

pub async fn start() -> SimServer {
    start_with(SimConfig::default()).await
}

pub async fn start_with(config: SimConfig) -> SimServer {
    match SimServer::start(config, ([127, 0, 0, 1], 0).into()).await {
        Ok(s) => s,
        Err(e) => panic!("wa-sim did not start: {e:#}"),
    }
}

pub fn client() -> reqwest::Client {
    reqwest::Client::new()
}

pub fn messages_url(sim: &SimServer) -> String {
    format!(
        "{}/v23.0/{}/messages",
        sim.base_url(),
        sim.phone_number_id()
    )
}

pub fn templates_url(sim: &SimServer) -> String {
    format!(
        "{}/v23.0/{}/message_templates",
        sim.base_url(),
        sim.waba_id()
    )
}

/// Answers (HTTP status, JSON body).
pub async fn read(resp: reqwest::Result<reqwest::Response>) -> (u16, Value) {
    let resp = match resp {
        Ok(r) => r,
        Err(e) => panic!("request failed: {e}"),
    };
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap_or_default();
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
    };
    (status, body)
}

/// POSTs a message with the right token.
pub async fn send(sim: &SimServer, body: &Value) -> (u16, Value) {
    read(
        client()
            .post(messages_url(sim))
            .bearer_auth(TOKEN)
            .json(body)
            .send()
            .await,
    )
    .await
}

pub async fn get_json(url: &str) -> (u16, Value) {
    read(client().get(url).bearer_auth(TOKEN).send().await).await
}

/// A valid `boas_vindas` pt_BR send.
pub fn boas_vindas(to: &str) -> Value {
    json!({
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": to,
        "type": "template",
        "biz_opaque_callback_data": "msg-1",
        "template": {
            "name": "boas_vindas",
            "language": { "code": "pt_BR" },
            "components": [
                { "type": "header", "parameters": [ { "type": "text", "text": "Loja Centro" } ] },
                { "type": "body", "parameters": [
                    { "type": "text", "text": "Maria" },
                    { "type": "text", "text": "25/12/2026" } ] },
                { "type": "button", "sub_type": "quick_reply", "index": "0",
                  "parameters": [ { "type": "payload", "payload": "yes:msg-1" } ] },
                { "type": "button", "sub_type": "quick_reply", "index": "1",
                  "parameters": [ { "type": "payload", "payload": "no:msg-1" } ] }
            ]
        }
    })
}

/// A template send with only a body of text parameters.
pub fn body_only(to: &str, name: &str, params: &[&str]) -> Value {
    let params: Vec<Value> = params
        .iter()
        .map(|p| json!({ "type": "text", "text": p }))
        .collect();
    json!({
        "messaging_product": "whatsapp",
        "to": to,
        "type": "template",
        "template": {
            "name": name,
            "language": { "code": "pt_BR" },
            "components": [ { "type": "body", "parameters": params } ]
        }
    })
}

/// Asserts the Graph error object shape, the HTTP status and the code; answers the details.
pub fn assert_graph_error(status: u16, body: &Value, http: u16, code: u64) -> String {
    assert_eq!(status, http, "HTTP status; body: {body}");
    let e = &body["error"];
    assert_eq!(e["code"].as_u64(), Some(code), "code; body: {body}");
    assert_eq!(e["type"], "OAuthException", "{body}");
    assert!(
        e["fbtrace_id"].as_str().is_some_and(|s| !s.is_empty()),
        "{body}"
    );
    assert_eq!(e["error_data"]["messaging_product"], "whatsapp", "{body}");
    let message = e["message"].as_str().unwrap_or_default();
    if code != 190 && e.get("error_subcode").is_none() {
        assert!(message.starts_with(&format!("(#{code}) ")), "{body}");
    }
    e["error_data"]["details"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}
