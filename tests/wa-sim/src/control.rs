//! The simulator's own endpoints under `/_sim` (no token needed): what tests and the demo use
//! to look inside. Later issues add here: triggering inbound replies and button taps, the
//! throughput limit, fault injection.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::error::GraphError;
use crate::faults::Faults;
use crate::sends::AcceptedSend;
use crate::state::SimState;
use crate::webhooks::WebhookConfig;

/// `GET /_sim/health` → `{"status":"ok"}`.
pub async fn health() -> Response {
    Json(json!({ "status": "ok" })).into_response()
}

/// `GET /_sim/sends[?biz_prefix=…]`: every accepted send in order, optionally only those whose
/// `biz_opaque_callback_data` starts with `biz_prefix`.
pub async fn list_sends(
    State(state): State<Arc<SimState>>,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Response {
    let Ok(Query(query)) = query else {
        return GraphError::invalid_parameter("Malformed query string").into_response();
    };
    let mut sends = state.sends();
    if let Some(prefix) = query.get("biz_prefix") {
        sends.retain(|s: &AcceptedSend| {
            s.biz_opaque_callback_data
                .as_deref()
                .is_some_and(|d| d.starts_with(prefix.as_str()))
        });
    }
    Json(sends).into_response()
}

/// `DELETE /_sim/sends`: forgets every recorded send; 204.
pub async fn clear_sends(State(state): State<Arc<SimState>>) -> Response {
    let n = state.clear_sends();
    tracing::info!(cleared = n, "cleared recorded sends");
    StatusCode::NO_CONTENT.into_response()
}

/// `GET /_sim/faults`: the faults in force.
pub async fn get_faults(State(state): State<Arc<SimState>>) -> Response {
    Json(state.faults()).into_response()
}

/// `PUT /_sim/faults` with a [`Faults`] object: replaces them (unknown fields are refused).
pub async fn put_faults(State(state): State<Arc<SimState>>, body: axum::body::Bytes) -> Response {
    let faults: Faults = match serde_json::from_slice(&body) {
        Ok(faults) => faults,
        Err(e) => {
            return GraphError::invalid_parameter(format!("faults: {e}")).into_response();
        }
    };
    if let Err(why) = faults.validate() {
        return GraphError::invalid_parameter(format!("faults: {why}")).into_response();
    }
    tracing::info!(?faults, "faults replaced");
    state.set_faults(faults.clone());
    Json(faults).into_response()
}

/// `GET /_sim/webhooks`: where and how status webhooks are posted.
pub async fn get_webhooks(State(state): State<Arc<SimState>>) -> Response {
    Json(state.webhooks()).into_response()
}

/// `PUT /_sim/webhooks` with a [`WebhookConfig`]: replaces it (unknown fields are refused).
pub async fn put_webhooks(State(state): State<Arc<SimState>>, body: axum::body::Bytes) -> Response {
    match serde_json::from_slice::<WebhookConfig>(&body) {
        Ok(config) => {
            state.set_webhooks(config.clone());
            Json(config).into_response()
        }
        Err(e) => GraphError::invalid_parameter(format!("webhooks: {e}")).into_response(),
    }
}
