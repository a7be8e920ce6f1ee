//! `GET /v1/metrics`: the metrics this process emitted, added up — for the local stack, where
//! one process runs every function and there is no CloudWatch to read the EMF lines. On
//! Lambda nothing is kept (each function's EMF lines are the record) and the answer says
//! where to look instead.

use std::collections::BTreeMap;

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use crate::problem::Problem;

#[derive(Debug, Serialize, ToSchema)]
pub struct MetricsView {
    /// The CloudWatch namespace the same metrics go to on AWS.
    pub namespace: String,
    pub metrics: Vec<MetricView>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MetricView {
    pub name: String,
    /// `Count`, `Milliseconds` or `Seconds`.
    pub unit: String,
    /// e.g. `{"Function": "sender", "ErrorCode": "131026"}`.
    pub dimensions: BTreeMap<String, String>,
    /// Values emitted (a count metric emits one per batch or run).
    pub samples: u64,
    pub sum: f64,
    pub max: f64,
}

/// Every metric emitted since the local stack started, added up by name and dimensions.
#[utoipa::path(
    get,
    path = "/v1/metrics",
    tag = "service",
    security(("api_key" = [])),
    responses(
        (status = 200, description = "The totals", body = MetricsView),
        (status = 404, description = "Not kept here: on AWS the metrics are in CloudWatch", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn metrics() -> Response {
    let Some(totals) = anna_shared::metrics::totals() else {
        return Problem::new(
            StatusCode::NOT_FOUND,
            "metrics-not-kept",
            "Not Found",
            format!(
                "this deployment does not add metrics up in the function: read them in \
                 CloudWatch, namespace `{}` (the stack's dashboard shows them)",
                anna_shared::metrics::NAMESPACE
            ),
        )
        .into_response();
    };
    let metrics = totals
        .into_iter()
        .map(|t| MetricView {
            name: t.name,
            unit: t.unit.to_owned(),
            dimensions: t.dimensions,
            samples: t.samples,
            sum: t.sum,
            max: t.max,
        })
        .collect();
    Json(MetricsView {
        namespace: anna_shared::metrics::NAMESPACE.to_owned(),
        metrics,
    })
    .into_response()
}
