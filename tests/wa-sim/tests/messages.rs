//! `POST /{version}/{phone-number-id}/messages`: success, every error path, the record.

mod common;

use std::time::{Duration, Instant};

use common::*;
use serde_json::{Value, json};
use wa_sim::SimConfig;

#[tokio::test]
async fn accepted_send_has_cloud_api_shape_and_is_recorded() {
    let sim = start().await;
    let body = boas_vindas("+5511987654321");
    let (status, answer) = send(&sim, &body).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["messaging_product"], "whatsapp");
    assert_eq!(answer["contacts"][0]["input"], "+5511987654321");
    assert_eq!(answer["contacts"][0]["wa_id"], "5511987654321");
    assert_eq!(answer["messages"][0]["message_status"], "accepted");
    let wamid = answer["messages"][0]["id"].as_str().unwrap_or_default();
    assert!(wamid.starts_with("wamid.") && wamid.len() > 20, "{wamid}");

    let sends = sim.sends();
    assert_eq!(sends.len(), 1);
    let s = &sends[0];
    assert_eq!(s.wamid, wamid);
    assert_eq!(s.to, "+5511987654321");
    assert_eq!(s.wa_id, "5511987654321");
    assert_eq!(s.template, "boas_vindas");
    assert_eq!(s.language, "pt_BR");
    assert_eq!(s.biz_opaque_callback_data.as_deref(), Some("msg-1"));
    assert_eq!(s.payload, body);
    assert!(chrono::DateTime::parse_from_rfc3339(&s.accepted_at).is_ok());
    sim.shutdown().await;
}

#[tokio::test]
async fn wa_id_drops_ninth_digit_for_older_brazilian_areas() {
    let sim = start().await;
    for (to, wa_id) in [
        ("5531987654321", "553187654321"),
        ("+5585987654321", "558587654321"),
        ("5521987654321", "5521987654321"),
        ("5511987654321", "5511987654321"),
        ("14155550123", "14155550123"),
    ] {
        let (status, answer) = send(&sim, &boas_vindas(to)).await;
        assert_eq!(status, 200, "{answer}");
        assert_eq!(answer["contacts"][0]["input"], to);
        assert_eq!(answer["contacts"][0]["wa_id"], wa_id, "{to}");
    }
    let sends = sim.sends();
    assert_eq!(sends.len(), 5);
    assert_eq!(sends[0].wa_id, "553187654321");
    assert_eq!(sends[1].to, "+5585987654321");
    let mut ids: Vec<&str> = sends.iter().map(|s| s.wamid.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 5, "wamids are unique");
    sim.shutdown().await;
}

#[tokio::test]
async fn other_templates_are_accepted_when_valid() {
    let sim = start().await;
    let ok = [
        body_only("5511987654321", "aviso_geral", &[]),
        body_only(
            "5511987654321",
            "promo_natal",
            &["Maria", "20", "24/12/2026"],
        ),
        body_only("5511987654321", "retomar_conversa", &["Maria"]),
        // Four consecutive spaces are still fine.
        body_only("5511987654321", "retomar_conversa", &["Maria    Silva"]),
        // No components at all for a template without variables.
        json!({ "messaging_product": "whatsapp", "to": "5511987654321", "type": "template",
                "template": { "name": "aviso_geral", "language": { "code": "pt_BR" } } }),
        // English, with a quick reply button addressed by its last index.
        json!({ "messaging_product": "whatsapp", "to": "5511987654321", "type": "template",
                "template": { "name": "boas_vindas", "language": { "code": "en_US" },
                  "components": [
                    { "type": "HEADER", "parameters": [ { "type": "text", "text": "Downtown" } ] },
                    { "type": "BODY", "parameters": [
                        { "type": "text", "text": "Mary" },
                        { "type": "date_time", "date_time": { "fallback_value": "Dec 25" } } ] },
                    { "type": "button", "sub_type": "quick_reply", "index": 1,
                      "parameters": [ { "type": "payload", "payload": "no" } ] } ] } }),
        json!({ "messaging_product": "whatsapp", "to": "5511987654321", "type": "template",
                "template": { "name": "promo_natal", "language": { "code": "pt_BR" },
                  "components": [
                    { "type": "body", "parameters": [
                        { "type": "text", "text": "Maria" },
                        { "type": "currency", "currency":
                            { "fallback_value": "20", "code": "BRL", "amount_1000": 20000 } },
                        { "type": "text", "text": "24/12/2026" } ] },
                    { "type": "button", "sub_type": "quick_reply", "index": "2",
                      "parameters": [ { "type": "payload", "payload": "stop" } ] } ] } }),
    ];
    for body in &ok {
        let (status, answer) = send(&sim, body).await;
        assert_eq!(status, 200, "{body} → {answer}");
    }
    assert_eq!(sim.sends().len(), ok.len());
    assert_eq!(sim.sends()[0].biz_opaque_callback_data, None);
    sim.shutdown().await;
}

#[tokio::test]
async fn token_is_required() {
    let sim = start().await;
    let body = boas_vindas("5511987654321");
    let (status, answer) = read(client().post(messages_url(&sim)).json(&body).send().await).await;
    assert_graph_error(status, &answer, 401, 190);
    let (status, answer) = read(
        client()
            .post(messages_url(&sim))
            .bearer_auth("wrong")
            .json(&body)
            .send()
            .await,
    )
    .await;
    assert_graph_error(status, &answer, 401, 190);
    let (status, answer) = read(
        client()
            .post(messages_url(&sim))
            .header("authorization", "Basic c2ltLXRva2Vu")
            .json(&body)
            .send()
            .await,
    )
    .await;
    assert_graph_error(status, &answer, 401, 190);
    assert!(sim.sends().is_empty());
    sim.shutdown().await;
}

#[tokio::test]
async fn invalid_requests_are_error_100() {
    let sim = start().await;
    // Unknown phone-number id.
    let url = format!("{}/v23.0/999/messages", sim.base_url());
    let (status, answer) = read(
        client()
            .post(url)
            .bearer_auth(TOKEN)
            .json(&boas_vindas("5511987654321"))
            .send()
            .await,
    )
    .await;
    assert_graph_error(status, &answer, 400, 100);
    assert_eq!(answer["error"]["error_subcode"], 33);

    // Not JSON, not an object.
    for raw in ["{not json", "", "[1,2]", "\"x\""] {
        let (status, answer) = read(
            client()
                .post(messages_url(&sim))
                .bearer_auth(TOKEN)
                .header("content-type", "application/json")
                .body(raw)
                .send()
                .await,
        )
        .await;
        assert_graph_error(status, &answer, 400, 100);
    }

    let valid = boas_vindas("5511987654321");
    let mutate = |f: &dyn Fn(&mut Value)| {
        let mut v = valid.clone();
        f(&mut v);
        v
    };
    let bad = [
        mutate(&|v| v["messaging_product"] = json!("telegram")),
        mutate(&|v| {
            v.as_object_mut().map(|o| o.remove("messaging_product"));
        }),
        mutate(&|v| {
            v.as_object_mut().map(|o| o.remove("to"));
        }),
        mutate(&|v| v["to"] = json!("1234567")),
        mutate(&|v| v["to"] = json!("1234567890123456")),
        mutate(&|v| v["to"] = json!("55 11 98765-4321")),
        mutate(&|v| v["to"] = json!(5511987654321u64)),
        mutate(&|v| v["recipient_type"] = json!("group")),
        mutate(&|v| v["type"] = json!("carrier_pigeon")),
        mutate(&|v| v["biz_opaque_callback_data"] = json!(42)),
        mutate(&|v| v["biz_opaque_callback_data"] = json!("x".repeat(513))),
        mutate(&|v| v["template"] = json!("boas_vindas")),
        mutate(&|v| {
            v["template"].as_object_mut().map(|o| o.remove("name"));
        }),
        mutate(&|v| v["template"]["language"] = json!("pt_BR")),
        mutate(&|v| v["template"]["components"] = json!({})),
        mutate(&|v| v["template"]["components"][0]["type"] = json!("footer")),
        mutate(&|v| v["template"]["components"][1]["parameters"][0]["text"] = json!("")),
        mutate(&|v| v["template"]["components"][1]["parameters"][0]["text"] = json!("   ")),
        mutate(&|v| {
            v["template"]["components"][1]["parameters"][0] = json!({ "type": "text" });
        }),
        mutate(&|v| v["template"]["components"][1]["parameters"][0]["type"] = json!("image")),
        mutate(&|v| v["template"]["components"][2]["index"] = json!("x")),
        mutate(&|v| v["template"]["components"][2]["index"] = json!("1")),
        mutate(&|v| v["template"]["components"][2]["sub_type"] = json!("url")),
        mutate(&|v| {
            v["template"]["components"][2]["parameters"][0] = json!({ "type": "text", "text": "x" })
        }),
    ];
    for body in &bad {
        let (status, answer) = send(&sim, body).await;
        assert_graph_error(status, &answer, 400, 100);
    }
    assert!(sim.sends().is_empty());
    sim.shutdown().await;
}

#[tokio::test]
async fn unknown_or_unapproved_templates_are_132001() {
    let sim = start().await;
    let cases = [
        body_only("5511987654321", "nao_existe", &[]),
        body_only("5511987654321", "campanha_rejeitada", &["Maria"]),
        body_only("5511987654321", "novidades_pendente", &["Maria"]),
        {
            let mut v = boas_vindas("5511987654321");
            v["template"]["language"]["code"] = json!("es_ES");
            v
        },
    ];
    for body in &cases {
        let (status, answer) = send(&sim, body).await;
        assert_graph_error(status, &answer, 400, 132001);
    }
    let (status, answer) = send(&sim, &cases[1]).await;
    let details = assert_graph_error(status, &answer, 400, 132001);
    assert!(details.contains("REJECTED"), "{details}");
    sim.shutdown().await;
}

#[tokio::test]
async fn paused_and_disabled_templates() {
    let sim = start().await;
    let (status, answer) = send(
        &sim,
        &body_only("5511987654321", "oferta_pausada", &["Maria"]),
    )
    .await;
    assert_graph_error(status, &answer, 400, 132015);
    let (status, answer) = send(
        &sim,
        &body_only("5511987654321", "conta_desativada", &["Maria"]),
    )
    .await;
    assert_graph_error(status, &answer, 400, 132016);
    assert!(sim.sends().is_empty());
    sim.shutdown().await;
}

#[tokio::test]
async fn parameter_count_mismatch_is_132000() {
    let sim = start().await;
    let (status, answer) = send(
        &sim,
        &body_only("5511987654321", "promo_natal", &["Maria", "20"]),
    )
    .await;
    let details = assert_graph_error(status, &answer, 400, 132000);
    assert!(
        details.contains("(2)") && details.contains("(3)"),
        "{details}"
    );

    let (status, answer) = send(&sim, &body_only("5511987654321", "aviso_geral", &["x"])).await;
    assert_graph_error(status, &answer, 400, 132000);

    // boas_vindas without its header parameter.
    let mut v = boas_vindas("5511987654321");
    if let Some(c) = v["template"]["components"].as_array_mut() {
        c.remove(0);
    }
    let (status, answer) = send(&sim, &v).await;
    let details = assert_graph_error(status, &answer, 400, 132000);
    assert!(details.starts_with("header"), "{details}");

    // A button index the template does not have.
    let mut v = boas_vindas("5511987654321");
    v["template"]["components"][3]["index"] = json!("2");
    let (status, answer) = send(&sim, &v).await;
    assert_graph_error(status, &answer, 400, 132000);
    assert!(sim.sends().is_empty());
    sim.shutdown().await;
}

fn lembrete(params: Value) -> Value {
    json!({
        "messaging_product": "whatsapp", "to": "5511987654321", "type": "template",
        "biz_opaque_callback_data": "lembrete-1",
        "template": { "name": "lembrete_consulta", "language": { "code": "pt_BR" },
          "components": [ { "type": "body", "parameters": params },
            { "type": "button", "sub_type": "quick_reply", "index": "0",
              "parameters": [ { "type": "payload", "payload": "confirm" } ] } ] }
    })
}

#[tokio::test]
async fn named_parameters_must_match_by_name() {
    let sim = start().await;
    let p =
        |name: &str, text: &str| json!({ "type": "text", "parameter_name": name, "text": text });
    // Any order is fine.
    let (status, answer) = send(
        &sim,
        &lembrete(json!([
            p("hora", "14:30"),
            p("nome", "Maria"),
            p("data", "25/12/2026")
        ])),
    )
    .await;
    assert_eq!(status, 200, "{answer}");

    let (status, answer) = send(
        &sim,
        &lembrete(json!([
            p("nome", "Maria"),
            p("dia", "25/12/2026"),
            p("hora", "14:30")
        ])),
    )
    .await;
    let details = assert_graph_error(status, &answer, 400, 132000);
    assert!(
        details.contains("data") && details.contains("dia"),
        "{details}"
    );

    // Missing parameter_name.
    let (status, answer) = send(
        &sim,
        &lembrete(json!([p("nome", "Maria"), { "type": "text", "text": "25/12/2026" }, p("hora", "14:30")])),
    )
    .await;
    assert_graph_error(status, &answer, 400, 132000);

    // Same name twice.
    let (status, answer) = send(
        &sim,
        &lembrete(json!([
            p("nome", "Maria"),
            p("nome", "Maria"),
            p("hora", "14:30")
        ])),
    )
    .await;
    assert_graph_error(status, &answer, 400, 132000);

    // Too few.
    let (status, answer) = send(&sim, &lembrete(json!([p("nome", "Maria")]))).await;
    assert_graph_error(status, &answer, 400, 132000);

    assert_eq!(sim.sends().len(), 1);
    sim.shutdown().await;
}

#[tokio::test]
async fn newline_tab_or_five_spaces_are_132018() {
    let sim = start().await;
    for text in [
        "Maria\nSilva",
        "Maria\tSilva",
        "Maria     Silva",
        "Maria\r\n",
    ] {
        let (status, answer) = send(
            &sim,
            &body_only("5511987654321", "retomar_conversa", &[text]),
        )
        .await;
        assert_graph_error(status, &answer, 400, 132018);
    }
    // In the header too.
    let mut v = boas_vindas("5511987654321");
    v["template"]["components"][0]["parameters"][0]["text"] = json!("Loja\nCentro");
    let (status, answer) = send(&sim, &v).await;
    assert_graph_error(status, &answer, 400, 132018);
    assert!(sim.sends().is_empty());
    sim.shutdown().await;
}

#[tokio::test]
async fn too_long_text_is_132005() {
    let sim = start().await;
    let long = "a".repeat(1100);
    let (status, answer) = send(
        &sim,
        &body_only("5511987654321", "retomar_conversa", &[&long]),
    )
    .await;
    assert_graph_error(status, &answer, 400, 132005);
    let mut v = boas_vindas("5511987654321");
    v["template"]["components"][0]["parameters"][0]["text"] = json!("L".repeat(61));
    let (status, answer) = send(&sim, &v).await;
    assert_graph_error(status, &answer, 400, 132005);
    sim.shutdown().await;
}

#[tokio::test]
async fn not_on_whatsapp_is_131026() {
    let mut config = SimConfig::default();
    config.not_on_whatsapp.insert("5511900000000".into());
    let sim = start_with(config).await;
    let (status, answer) = send(&sim, &boas_vindas("+5511900000000")).await;
    assert_graph_error(status, &answer, 400, 131026);

    sim.set_not_on_whatsapp(["+55 31 98765-4321".to_owned()]);
    let (status, answer) = send(&sim, &boas_vindas("5531987654321")).await;
    assert_graph_error(status, &answer, 400, 131026);
    let (status, answer) = send(&sim, &boas_vindas("5511900000000")).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(sim.sends().len(), 1);
    sim.shutdown().await;
}

#[tokio::test]
async fn free_form_text_only_inside_the_24_hour_window() {
    let sim = start().await;
    let text = json!({ "messaging_product": "whatsapp", "to": "5511987654321",
                       "type": "text", "text": { "body": "oi" } });
    let (status, answer) = send(&sim, &text).await;
    assert_graph_error(status, &answer, 400, 131047);
    assert_eq!(answer["error"]["error_subcode"], 2494010, "{answer}");
    let client = reqwest::Client::new();
    let inbound = client
        .post(format!("{}/_sim/inbound", sim.base_url()))
        .json(&json!({ "from": "+5511987654321", "text": "olá" }))
        .send()
        .await
        .expect("POST /_sim/inbound");
    assert_eq!(inbound.status().as_u16(), 200);
    let (status, answer) = send(&sim, &text).await;
    assert_eq!(status, 200, "inside the window: {answer}");
    // `type` defaults to text.
    let untyped = json!({ "messaging_product": "whatsapp", "to": "5511987654321",
                          "text": { "body": "oi" } });
    let (status, answer) = send(&sim, &untyped).await;
    assert_eq!(status, 200, "{answer}");
    let image = json!({ "messaging_product": "whatsapp", "to": "5511987654321",
                        "type": "image", "image": { "link": "https://x.example/a.jpg" } });
    let (status, answer) = send(&sim, &image).await;
    assert_graph_error(status, &answer, 400, 131051);
    // 24 hours later the window has passed.
    sim.advance_clock(std::time::Duration::from_secs(24 * 3600 + 1));
    let (status, answer) = send(&sim, &text).await;
    assert_graph_error(status, &answer, 400, 131047);
    // Someone else's window is their own.
    let (status, answer) = send(
        &sim,
        &json!({ "messaging_product": "whatsapp",
        "to": "5521987654321", "type": "text", "text": { "body": "oi" } }),
    )
    .await;
    assert_graph_error(status, &answer, 400, 131047);
    assert_eq!(sim.sends().len(), 2);
    sim.shutdown().await;
}

#[tokio::test]
async fn latency_is_added_before_answering() {
    let sim = start().await;
    sim.set_latency(Duration::from_millis(120));
    let started = Instant::now();
    let (status, _) = send(&sim, &boas_vindas("5511987654321")).await;
    assert_eq!(status, 200);
    assert!(started.elapsed() >= Duration::from_millis(120));
    sim.shutdown().await;
}

#[tokio::test]
async fn sim_sends_endpoint_filters_and_clears() {
    let sim = start().await;
    for (to, data) in [
        ("5511987654321", "d1:1"),
        ("5511987654322", "d2:1"),
        ("5511987654323", "d1:2"),
    ] {
        let mut v = boas_vindas(to);
        v["biz_opaque_callback_data"] = json!(data);
        assert_eq!(send(&sim, &v).await.0, 200);
    }
    let url = format!("{}/_sim/sends", sim.base_url());
    let (status, all) = read(client().get(&url).send().await).await;
    assert_eq!(status, 200);
    let all: Vec<wa_sim::AcceptedSend> = serde_json::from_value(all).unwrap_or_default();
    assert_eq!(all.len(), 3);
    assert_eq!(all, sim.sends());

    let (_, d1) = read(client().get(format!("{url}?biz_prefix=d1:")).send().await).await;
    let d1: Vec<&str> = d1
        .as_array()
        .map(|a| a.iter().filter_map(|s| s["to"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(d1, ["5511987654321", "5511987654323"]);

    let (status, _) = read(client().delete(&url).send().await).await;
    assert_eq!(status, 204);
    assert!(sim.sends().is_empty());
    let (_, all) = read(client().get(&url).send().await).await;
    assert_eq!(all, json!([]));
    sim.shutdown().await;
}

#[tokio::test]
async fn unknown_paths_and_versions_are_graph_errors() {
    let sim = start().await;
    let (status, answer) = read(
        client()
            .post(format!(
                "{}/23.0/{}/messages",
                sim.base_url(),
                sim.phone_number_id()
            ))
            .bearer_auth(TOKEN)
            .json(&boas_vindas("5511987654321"))
            .send()
            .await,
    )
    .await;
    assert_graph_error(status, &answer, 400, 2500);
    let (status, answer) = read(
        client()
            .get(format!("{}/nope", sim.base_url()))
            .send()
            .await,
    )
    .await;
    assert_graph_error(status, &answer, 400, 2500);
    let (status, answer) = read(
        client()
            .get(messages_url(&sim))
            .bearer_auth(TOKEN)
            .send()
            .await,
    )
    .await;
    assert_graph_error(status, &answer, 400, 100);
    // Any version works.
    let (status, answer) = read(
        client()
            .post(format!(
                "{}/v19.0/{}/messages",
                sim.base_url(),
                sim.phone_number_id()
            ))
            .bearer_auth(TOKEN)
            .json(&boas_vindas("5511987654321"))
            .send()
            .await,
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    sim.shutdown().await;
}
