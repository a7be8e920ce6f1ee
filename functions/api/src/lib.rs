//! The anna-notify HTTP API: one axum router, run by `lambda_http` behind API Gateway and
//! served by `anna-local run` at <http://127.0.0.1:3000> on the local stack.
//!
//! - `GET /health`, `GET /openapi.json` (OpenAPI 3.1, generated from the handlers).
//! - `/v1/templates…`: the gallery, one template, previews, spreadsheet layouts.
//! - `/v1/dispatches…`: send to a list (the same intake as a spreadsheet), list, status and
//!   progress, messages, results spreadsheets, cancel.
//! - `/v1/uploads`: presigned S3 uploads into the inbox.
//! - `/v1/conversations…`: customers who wrote, the 24-hour window, free-form replies,
//!   reopening with a template; `/v1/events` (conversation started / declined);
//!   `/v1/opt-outs` (the suppression list).
//! - `GET`/`POST /webhook`: WhatsApp's signed notifications — statuses and inbound messages
//!   (no API key; signature).
//!
//! Every `/v1` route needs `Authorization: Bearer <key>` (keys from `ANNA_API_KEYS`). Every
//! error is an RFC 9457 problem (`application/problem+json`).
//!
//! Handlers are plain async functions over [`context::ApiContext`]; [`router`] wires them.

pub mod config;
pub mod context;
pub mod conversations;
pub mod cursor;
pub mod dispatches;
pub mod eventbridge;
pub mod inbound;
pub mod metrics;
pub mod optouts;
pub mod problem;
pub mod recipients;
pub mod sheets;
pub mod templates;
pub mod uploads;
pub mod webhook;

use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::header;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Router};
use serde::Serialize;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::trace::TraceLayer;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub use config::{ApiConfig, ApiKeys, ApiLimits};
pub use context::{ApiContext, SharedContext};

use crate::problem::Problem;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "anna-notify",
        description = "WhatsApp template notifications: send a template to a list or a \
                       spreadsheet, follow each message, download the results.\n\n\
                       Every `/v1` route needs `Authorization: Bearer <key>`. Errors are \
                       RFC 9457 problem details (`application/problem+json`)."
    ),
    modifiers(&BearerAuth),
    tags(
        (name = "service", description = "Health and this document"),
        (name = "templates", description = "The WhatsApp account's message templates"),
        (name = "dispatches", description = "Sending a template to a list, and what became of each message"),
        (name = "uploads", description = "Uploading spreadsheets without AWS credentials"),
        (name = "conversations", description = "Customers who wrote, the 24-hour window, reopening with a template, and conversation events"),
        (name = "opt-outs", description = "Numbers later sends skip"),
        (name = "webhook", description = "WhatsApp's signed notifications: statuses and customers' messages"),
    )
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("An API key from ANNA_API_KEYS"))
                    .build(),
            ),
        );
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// Always `ok` when the function answers.
    pub status: String,
    pub version: String,
}

/// Answers while the function runs (it checks no dependency).
#[utoipa::path(
    get,
    path = "/health",
    tag = "service",
    responses((status = 200, description = "Up", body = Health))
)]
pub async fn health() -> axum::Json<Health> {
    axum::Json(Health {
        status: "ok".to_owned(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
    })
}

/// The published document, rendered once.
#[derive(Clone)]
struct OpenApiJson(Arc<String>);

/// This API's OpenAPI 3.1 document, generated from the handlers.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "service",
    responses((status = 200, description = "The OpenAPI document", content_type = "application/json"))
)]
async fn openapi_json(Extension(document): Extension<OpenApiJson>) -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        document.0.as_str().to_owned(),
    )
        .into_response()
}

/// Every `/v1` request: `Authorization: Bearer <key>`, checked in constant time.
async fn require_api_key(
    State(ctx): State<SharedContext>,
    request: Request,
    next: Next,
) -> Response {
    let unauthorized = |slug: &str, detail: &str| {
        Problem::new(
            axum::http::StatusCode::UNAUTHORIZED,
            slug,
            "Unauthorized",
            detail,
        )
        .into_response()
    };
    if ctx.keys.is_empty() {
        return unauthorized(
            "no-api-keys-configured",
            "no API keys are configured on this deployment, so every /v1 request is refused: \
             set ANNA_API_KEYS (comma-separated keys) and restart",
        );
    }
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| {
            let (scheme, key) = value.trim().split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| key.trim())
        });
    match presented {
        None => unauthorized(
            "missing-api-key",
            "send an API key as `Authorization: Bearer <key>`",
        ),
        Some(key) if ctx.keys.verify(key) => next.run(request).await,
        Some(_) => unauthorized(
            "invalid-api-key",
            "the API key is not valid; check it against ANNA_API_KEYS",
        ),
    }
}

/// The routes and their documentation; `auth` adds the API-key check to the `/v1` routes.
fn routes(auth: Option<SharedContext>) -> OpenApiRouter<SharedContext> {
    let mut v1 = OpenApiRouter::new()
        .routes(routes!(templates::list_templates))
        .routes(routes!(templates::get_template))
        .routes(routes!(templates::preview))
        .routes(routes!(templates::template_sheet))
        .routes(routes!(
            dispatches::create_dispatch,
            dispatches::list_dispatches
        ))
        .routes(routes!(dispatches::get_dispatch))
        .routes(routes!(dispatches::list_messages))
        .routes(routes!(dispatches::report))
        .routes(routes!(dispatches::cancel_dispatch))
        .routes(routes!(dispatches::resume_dispatch))
        .routes(routes!(uploads::create_upload))
        .routes(routes!(conversations::list_conversations))
        .routes(routes!(conversations::get_conversation))
        .routes(routes!(conversations::close_conversation))
        .routes(routes!(conversations::send_text))
        .routes(routes!(conversations::reactivate))
        .routes(routes!(optouts::list_opt_outs, optouts::add_opt_out))
        .routes(routes!(optouts::remove_opt_out))
        .routes(routes!(optouts::list_events))
        .routes(routes!(metrics::metrics));
    if let Some(ctx) = auth {
        v1 = v1.route_layer(middleware::from_fn_with_state(ctx, require_api_key));
    }
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(health))
        .routes(routes!(openapi_json))
        // Not under the API key: Meta authenticates by signature (and verify token).
        .routes(routes!(webhook::verify, webhook::receive))
        .merge(v1)
}

/// The OpenAPI document of this API.
pub fn openapi() -> utoipa::openapi::OpenApi {
    routes(None).into_openapi()
}

/// The whole API, ready to serve (`axum::serve`) or to run on Lambda (`lambda_http::run`).
pub fn router(ctx: SharedContext) -> Router {
    let (router, document) = routes(Some(ctx.clone())).split_for_parts();
    let document = OpenApiJson(Arc::new(
        document
            .to_pretty_json()
            .unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}")),
    ));
    router
        .fallback(problem::not_found)
        .method_not_allowed_fallback(problem::method_not_allowed)
        .layer(Extension(document))
        .layer(DefaultBodyLimit::max(ctx.limits.max_body_bytes))
        .layer(CatchPanicLayer::custom(problem::panic_response))
        .layer(TraceLayer::new_for_http())
        .with_state(ctx)
}
