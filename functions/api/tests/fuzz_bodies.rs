//! Fuzzing the API's request bodies (proptest): whatever a client sends — bytes, JSON of any
//! shape, bodies nested thousands deep, the wrong content type — the answer is a problem
//! detail with a 4xx status that says what is wrong, never a 500, a panic or a hang.
//!
//! The router runs without AWS (as in router.rs): bodies that pass every check reach a
//! service that is not there and are answered 502/503, which is also a clear answer. The
//! short pass runs in `make test`; `make fuzz` sets `PROPTEST_CASES`.

mod common;

use anna_api::config::ApiLimits;
use anna_api::webhook::WebhookSecrets;
use axum::body::{Body, to_bytes};
use axum::http::{Request, StatusCode, header};
use proptest::prelude::*;
use proptest::test_runner::Config;
use serde_json::{Value, json};
use tower::ServiceExt;

const KEY: &str = "fuzz-key";

fn cases(short: u32) -> Config {
    Config {
        cases: std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(short),
        ..Config::default()
    }
}

fn app() -> axum::Router {
    common::offline_app(
        KEY,
        ApiLimits {
            max_body_bytes: 64 * 1024,
            max_recipients: 50,
            ..ApiLimits::default()
        },
        WebhookSecrets {
            app_secret: "secret".into(),
            verify_token: "token".into(),
        },
    )
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// Sends one request; returns the status and the parsed body.
fn send(
    rt: &tokio::runtime::Runtime,
    path: &str,
    content_type: &str,
    body: Vec<u8>,
) -> Result<(StatusCode, Value), TestCaseError> {
    let request = Request::post(path)
        .header(header::AUTHORIZATION, format!("Bearer {KEY}"))
        .header(header::CONTENT_TYPE, content_type)
        .header("x-hub-signature-256", "sha256=00")
        .body(Body::from(body))
        .expect("request");
    rt.block_on(async {
        let response =
            tokio::time::timeout(std::time::Duration::from_secs(30), app().oneshot(request))
                .await
                .map_err(|_| TestCaseError::fail(format!("{path}: no answer within 30 s")))?
                .expect("infallible");
        let status = response.status();
        let content = response
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let bytes = to_bytes(response.into_body(), 1 << 20)
            .await
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        if !status.is_success() {
            prop_assert_eq!(
                content.as_deref(),
                Some("application/problem+json"),
                "{} {}",
                status,
                body
            );
            prop_assert_eq!(&body["status"], &json!(status.as_u16()));
            prop_assert!(body["detail"].as_str().is_some_and(|d| !d.is_empty()));
        }
        prop_assert!(
            status != StatusCode::INTERNAL_SERVER_ERROR,
            "500 for {}: {}",
            path,
            body
        );
        Ok((status, body))
    })
}

fn json_value(depth: u32) -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|f| json!(f)),
        "[ -~é🎉\n\t]{0,16}".prop_map(Value::String),
    ];
    leaf.prop_recursive(depth, 48, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::btree_map(
                prop::sample::select(vec![
                    "template",
                    "language",
                    "recipients",
                    "phone",
                    "variables",
                    "send_at",
                    "filename",
                    "nome",
                    "1",
                    "x",
                ])
                .prop_map(str::to_owned),
                inner,
                0..5,
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Bodies shaped like a send request, with every field possibly wrong.
fn send_request() -> impl Strategy<Value = Value> {
    let recipient =
        (json_value(2), proptest::option::of(json_value(2))).prop_map(|(phone, variables)| {
            let mut r = json!({ "phone": phone });
            if let Some(v) = variables {
                r["variables"] = v;
            }
            r
        });
    (
        proptest::option::of(json_value(1)),
        proptest::option::of(json_value(1)),
        proptest::option::of(prop_oneof![
            prop::collection::vec(recipient, 0..4).prop_map(Value::Array),
            Just(Value::Array(vec![json!({ "phone": "11987654321" }); 51])),
            json_value(2),
        ]),
        proptest::option::of(json_value(1)),
    )
        .prop_map(|(template, language, recipients, send_at)| {
            let mut body = json!({});
            for (key, value) in [
                ("template", template),
                ("language", language),
                ("recipients", recipients),
                ("send_at", send_at),
            ] {
                if let Some(value) = value {
                    body[key] = value;
                }
            }
            body
        })
}

proptest! {
    #![proptest_config(cases(48))]

    #[test]
    fn any_json_body_gets_a_clear_answer(
        path in prop::sample::select(vec!["/v1/dispatches", "/v1/templates/boas_vindas/preview", "/webhook"]),
        body in prop_oneof![json_value(5), send_request()],
    ) {
        let rt = runtime();
        send(&rt, path, "application/json", body.to_string().into_bytes())?;
    }

    #[test]
    fn any_bytes_get_a_clear_answer(
        path in prop::sample::select(vec!["/v1/dispatches", "/v1/uploads", "/webhook"]),
        content_type in prop::sample::select(vec!["application/json", "text/plain", "application/problem+json", "application/json; charset=utf-8", ""]),
        body in prop::collection::vec(any::<u8>(), 0..2048),
    ) {
        let rt = runtime();
        let (status, _) = send(&rt, path, content_type, body)?;
        prop_assert!(status.is_client_error(), "{}", status);
    }

    #[test]
    fn deep_and_large_bodies_are_refused_by_their_limits(
        depth in 33usize..5000,
        open in prop::sample::select(vec!["[", "{\"a\":"]),
        extra in 0usize..4096,
    ) {
        let rt = runtime();
        let body = open.repeat(depth).into_bytes();
        let (status, problem) = send(&rt, "/v1/dispatches", "application/json", body.clone())?;
        prop_assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        prop_assert_eq!(&problem["type"], "urn:anna-notify:problem:json-too-deep");
        let (status, _) = send(&rt, "/webhook", "application/json", body)?;
        prop_assert!(status == StatusCode::UNAUTHORIZED || status == StatusCode::BAD_REQUEST);
        let large = vec![b' '; 64 * 1024 + 1 + extra];
        let (status, problem) = send(&rt, "/v1/dispatches", "application/json", large)?;
        prop_assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
        prop_assert_eq!(&problem["type"], "urn:anna-notify:problem:body-too-large");
    }
}
