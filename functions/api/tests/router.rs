//! The router without AWS: authentication, the problem details of the framework's own errors,
//! and the OpenAPI document. (What needs the store, the queue and WhatsApp is tested in
//! tests/integration against moto and wa-sim.)

use std::collections::BTreeSet;

mod common;

use anna_api::config::ApiLimits;
use axum::body::{Body, to_bytes};
use axum::http::{Method, Request, StatusCode, header};
use serde_json::Value;
use tower::ServiceExt;

const KEY: &str = "test-key-1";

fn app_with(keys: &str, limits: ApiLimits) -> axum::Router {
    common::offline_app(keys, limits, Default::default())
}

fn app() -> axum::Router {
    app_with(KEY, ApiLimits::default())
}

async fn call(app: axum::Router, request: Request<Body>) -> (StatusCode, Option<String>, Value) {
    let response = app.oneshot(request).await.expect("infallible");
    let status = response.status();
    let content_type = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let bytes = to_bytes(response.into_body(), 1 << 20).await.expect("body");
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (status, content_type, body)
}

fn get(path: &str, key: Option<&str>) -> Request<Body> {
    let mut builder = Request::get(path);
    if let Some(key) = key {
        builder = builder.header(header::AUTHORIZATION, format!("Bearer {key}"));
    }
    builder.body(Body::empty()).expect("request")
}

fn post_json(path: &str, body: impl Into<Body>) -> Request<Body> {
    Request::post(path)
        .header(header::AUTHORIZATION, format!("Bearer {KEY}"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(body.into())
        .expect("request")
}

fn assert_problem(result: &(StatusCode, Option<String>, Value), status: StatusCode, slug: &str) {
    let (actual, content_type, body) = result;
    assert_eq!(*actual, status, "{body}");
    assert_eq!(content_type.as_deref(), Some("application/problem+json"));
    assert_eq!(body["status"], status.as_u16());
    assert_eq!(
        body["type"],
        format!("urn:anna-notify:problem:{slug}"),
        "{body}"
    );
    assert!(
        body["detail"].as_str().is_some_and(|d| d.len() > 10),
        "a detail an operator can act on: {body}"
    );
    assert!(body["title"].is_string());
}

#[tokio::test]
async fn health_needs_no_key() {
    let (status, _, body) = call(app(), get("/health", None)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["status"], "ok");
}

#[tokio::test]
async fn v1_needs_a_valid_bearer_key() {
    let missing = call(app(), get("/v1/templates", None)).await;
    assert_problem(&missing, StatusCode::UNAUTHORIZED, "missing-api-key");
    let wrong = call(app(), get("/v1/templates", Some("nope"))).await;
    assert_problem(&wrong, StatusCode::UNAUTHORIZED, "invalid-api-key");
    let basic = Request::get("/v1/dispatches")
        .header(header::AUTHORIZATION, format!("Basic {KEY}"))
        .body(Body::empty())
        .expect("request");
    assert_problem(
        &call(app(), basic).await,
        StatusCode::UNAUTHORIZED,
        "missing-api-key",
    );
    let response = app()
        .oneshot(get("/v1/dispatches/d-1", None))
        .await
        .expect("infallible");
    assert!(
        response
            .headers()
            .get(header::WWW_AUTHENTICATE)
            .is_some_and(|v| v.to_str().is_ok_and(|v| v.starts_with("Bearer")))
    );
}

#[tokio::test]
async fn no_configured_keys_refuses_everything_and_says_so() {
    let app = app_with("", ApiLimits::default());
    let result = call(app, get("/v1/templates", Some("anything"))).await;
    assert_problem(&result, StatusCode::UNAUTHORIZED, "no-api-keys-configured");
    assert!(
        result.2["detail"]
            .as_str()
            .is_some_and(|d| d.contains("ANNA_API_KEYS"))
    );
}

#[tokio::test]
async fn unknown_routes_and_methods_are_problems() {
    assert_problem(
        &call(app(), get("/nope", None)).await,
        StatusCode::NOT_FOUND,
        "no-such-route",
    );
    assert_problem(
        &call(app(), get("/v1/nope", Some(KEY))).await,
        StatusCode::NOT_FOUND,
        "no-such-route",
    );
    let delete = Request::builder()
        .method(Method::DELETE)
        .uri("/health")
        .body(Body::empty())
        .expect("request");
    assert_problem(
        &call(app(), delete).await,
        StatusCode::METHOD_NOT_ALLOWED,
        "method-not-allowed",
    );
}

#[tokio::test]
async fn malformed_bodies_are_400_naming_the_problem() {
    let syntax = call(app(), post_json("/v1/dispatches", "{\"template\": ")).await;
    assert_problem(&syntax, StatusCode::BAD_REQUEST, "invalid-json");

    let shape = call(
        app(),
        post_json(
            "/v1/dispatches",
            r#"{"template": "boas_vindas", "language": "pt_BR"}"#,
        ),
    )
    .await;
    assert_problem(&shape, StatusCode::BAD_REQUEST, "invalid-body");
    assert!(
        shape.2["detail"]
            .as_str()
            .is_some_and(|d| d.contains("recipients")),
        "names the missing field: {}",
        shape.2
    );

    let typo = call(
        app(),
        post_json(
            "/v1/dispatches",
            r#"{"template": "t", "language": "pt_BR", "recipients": [{"phone": "1", "variable": []}]}"#,
        ),
    )
    .await;
    assert_problem(&typo, StatusCode::BAD_REQUEST, "invalid-body");
    assert!(
        typo.2["detail"]
            .as_str()
            .is_some_and(|d| d.contains("variable"))
    );

    let no_type = Request::post("/v1/uploads")
        .header(header::AUTHORIZATION, format!("Bearer {KEY}"))
        .body(Body::from("{}"))
        .expect("request");
    assert_problem(
        &call(app(), no_type).await,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported-media-type",
    );
}

#[tokio::test]
async fn oversized_bodies_are_413() {
    let limits = ApiLimits {
        max_body_bytes: 2048,
        ..ApiLimits::default()
    };
    let recipients: Vec<Value> = (0..200)
        .map(|i| serde_json::json!({"phone": format!("+55119876{i:05}")}))
        .collect();
    let body = serde_json::json!({"template": "t", "language": "pt_BR", "recipients": recipients});
    let result = call(
        app_with(KEY, limits),
        post_json("/v1/dispatches", body.to_string()),
    )
    .await;
    assert_problem(&result, StatusCode::PAYLOAD_TOO_LARGE, "body-too-large");
}

#[tokio::test]
async fn bad_queries_are_400_before_any_lookup() {
    assert_problem(
        &call(app(), get("/v1/dispatches?cursor=garbage!", Some(KEY))).await,
        StatusCode::BAD_REQUEST,
        "invalid-cursor",
    );
    assert_problem(
        &call(app(), get("/v1/dispatches?limit=lots", Some(KEY))).await,
        StatusCode::BAD_REQUEST,
        "invalid-query",
    );
    assert_problem(
        &call(
            app(),
            get("/v1/dispatches/d-1/messages?status=lost", Some(KEY)),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "invalid-status",
    );
    assert_problem(
        &call(
            app(),
            get("/v1/dispatches/d-1/report?format=pdf", Some(KEY)),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "invalid-query",
    );
}

#[tokio::test]
async fn too_many_or_no_recipients_are_422() {
    let limits = ApiLimits {
        max_recipients: 2,
        ..ApiLimits::default()
    };
    let body = serde_json::json!({"template": "t", "language": "pt_BR",
        "recipients": [{"phone": "1"}, {"phone": "2"}, {"phone": "3"}]});
    let result = call(
        app_with(KEY, limits),
        post_json("/v1/dispatches", body.to_string()),
    )
    .await;
    assert_problem(
        &result,
        StatusCode::UNPROCESSABLE_ENTITY,
        "too-many-recipients",
    );
    let empty = serde_json::json!({"template": "t", "language": "pt_BR", "recipients": []});
    assert_problem(
        &call(app(), post_json("/v1/dispatches", empty.to_string())).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "no-recipients",
    );
}

/// Every `$ref` in the document points at a component that exists.
fn unresolved_refs(node: &Value, document: &Value, out: &mut Vec<String>) {
    match node {
        Value::Object(map) => {
            if let Some(Value::String(reference)) = map.get("$ref") {
                let target = reference
                    .strip_prefix("#/")
                    .map(|path| {
                        path.split('/')
                            .try_fold(document, |node, segment| node.get(segment))
                    })
                    .unwrap_or(None);
                if target.is_none() {
                    out.push(reference.clone());
                }
            }
            map.values()
                .for_each(|value| unresolved_refs(value, document, out));
        }
        Value::Array(items) => items
            .iter()
            .for_each(|value| unresolved_refs(value, document, out)),
        _ => {}
    }
}

#[tokio::test]
async fn openapi_document_validates_and_lists_every_route() {
    let (status, content_type, document) = call(app(), get("/openapi.json", None)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(content_type.as_deref(), Some("application/json"));
    assert!(
        document["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with("3.1")),
        "OpenAPI 3.1: {}",
        document["openapi"]
    );
    // A typed OpenAPI 3.1 model reads it.
    let spec = oas3::from_json(document.to_string()).expect("a valid OpenAPI 3.1 document");
    let operations: BTreeSet<(String, String)> = spec
        .operations()
        .map(|(path, method, _)| (method.to_string(), path))
        .collect();
    let expected: BTreeSet<(String, String)> = [
        ("GET", "/health"),
        ("GET", "/openapi.json"),
        ("GET", "/v1/templates"),
        ("GET", "/v1/templates/{name}"),
        ("POST", "/v1/templates/{name}/preview"),
        ("GET", "/v1/templates/{name}/sheet"),
        ("POST", "/v1/dispatches"),
        ("GET", "/v1/dispatches"),
        ("GET", "/v1/dispatches/{id}"),
        ("GET", "/v1/dispatches/{id}/messages"),
        ("GET", "/v1/dispatches/{id}/report"),
        ("POST", "/v1/dispatches/{id}/cancel"),
        ("POST", "/v1/dispatches/{id}/resume"),
        ("POST", "/v1/uploads"),
        ("GET", "/v1/conversations"),
        ("GET", "/v1/conversations/{phone}"),
        ("POST", "/v1/conversations/{phone}/close"),
        ("POST", "/v1/conversations/{phone}/messages"),
        ("POST", "/v1/conversations/{phone}/reactivate"),
        ("GET", "/v1/events"),
        ("GET", "/v1/opt-outs"),
        ("POST", "/v1/opt-outs"),
        ("DELETE", "/v1/opt-outs/{phone}"),
        ("GET", "/v1/metrics"),
        ("GET", "/webhook"),
        ("POST", "/webhook"),
    ]
    .into_iter()
    .map(|(m, p)| (m.to_owned(), p.to_owned()))
    .collect();
    assert_eq!(operations, expected);

    let mut unresolved = Vec::new();
    unresolved_refs(&document, &document, &mut unresolved);
    assert!(unresolved.is_empty(), "dangling $refs: {unresolved:?}");
    for (path, item) in document["paths"].as_object().expect("paths") {
        for (method, operation) in item.as_object().expect("path item") {
            assert!(
                operation["responses"]
                    .as_object()
                    .is_some_and(|r| !r.is_empty()),
                "{method} {path} documents its responses"
            );
            if path.starts_with("/v1/") {
                assert_eq!(
                    operation["security"],
                    serde_json::json!([{"api_key": []}]),
                    "{method} {path} needs the API key"
                );
            }
        }
    }
    assert_eq!(
        document["components"]["securitySchemes"]["api_key"]["scheme"],
        "bearer"
    );
    // The generated document equals the one served.
    assert_eq!(
        serde_json::to_value(anna_api::openapi()).expect("json"),
        document
    );
}
