//! RFC 9457 problem details: every error the API answers, including the framework's own
//! (malformed JSON, a body too large, an unknown route), is `application/problem+json` with a
//! message an operator can act on.

use anna_shared::error::Retryable;
use anna_shared::intake_pipeline::PipelineError;
use anna_shared::json_guard::nesting_depth;
use anna_shared::ports::{QueueError, StoreError};
use anna_shared::schedule::ScheduleError;
use anna_shared::whatsapp::client::SendError;
use axum::body::Bytes;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;
use utoipa::ToSchema;

use crate::SharedContext;
use crate::dispatches::RejectedRecipient;

pub const PROBLEM_CONTENT_TYPE: &str = "application/problem+json";

/// A problem detail (RFC 9457).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Problem {
    /// Identifies the kind of problem: `urn:anna-notify:problem:<slug>`.
    #[serde(rename = "type")]
    #[schema(example = "urn:anna-notify:problem:invalid-json")]
    pub kind: String,
    /// A short summary of the kind of problem.
    pub title: String,
    /// The HTTP status code.
    pub status: u16,
    /// What went wrong in this request and what to do about it.
    pub detail: String,
    /// The request path the problem occurred on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
    /// One entry per problem found, when there were several (e.g. one per recipient).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<ProblemItem>,
    /// Every recipient that was rejected, when none could be accepted.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub rejected: Vec<RejectedRecipient>,
}

/// One problem among several.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ProblemItem {
    /// JSON pointer into the request body, e.g. `/recipients/3/variables/nome`.
    pub pointer: String,
    pub detail: String,
}

impl Problem {
    pub fn new(status: StatusCode, slug: &str, title: &str, detail: impl Into<String>) -> Self {
        Self {
            kind: format!("urn:anna-notify:problem:{slug}"),
            title: title.to_owned(),
            status: status.as_u16(),
            detail: detail.into(),
            instance: None,
            errors: Vec::new(),
            rejected: Vec::new(),
        }
    }

    pub fn with_errors(mut self, errors: Vec<ProblemItem>) -> Self {
        self.errors = errors;
        self
    }

    pub fn with_rejected(mut self, rejected: Vec<RejectedRecipient>) -> Self {
        self.rejected = rejected;
        self
    }

    pub fn bad_request(slug: &str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, slug, "Bad request", detail)
    }

    pub fn unprocessable(slug: &str, detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            slug,
            "The request cannot be carried out",
            detail,
        )
    }

    pub fn not_found(slug: &str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, slug, "Not found", detail)
    }

    pub fn conflict(slug: &str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, slug, "Conflict", detail)
    }

    fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = self.status_code();
        let body = serde_json::to_vec(&self).unwrap_or_else(|_| {
            br#"{"type":"about:blank","title":"Internal error","status":500}"#.to_vec()
        });
        let mut response = (status, body).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(PROBLEM_CONTENT_TYPE),
        );
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"anna-notify\""),
            );
        }
        if status == StatusCode::SERVICE_UNAVAILABLE {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
        }
        response
    }
}

/// Why a request failed: a problem of the request itself, or of a service behind the API.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{}", .0.detail)]
    Problem(Box<Problem>),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Queue(#[from] QueueError),
    #[error(transparent)]
    Pipeline(#[from] PipelineError),
    #[error(transparent)]
    Schedule(#[from] ScheduleError),
    #[error("reading the WhatsApp templates: {0}")]
    WhatsApp(Box<SendError>),
    #[error("S3: {message}")]
    Objects { message: String, retryable: bool },
    #[error("writing a spreadsheet: {0}")]
    Spreadsheet(String),
}

impl From<SendError> for ApiError {
    fn from(error: SendError) -> Self {
        Self::WhatsApp(Box::new(error))
    }
}

impl From<Problem> for ApiError {
    fn from(problem: Problem) -> Self {
        Self::Problem(Box::new(problem))
    }
}

impl Retryable for ApiError {
    fn is_retryable(&self) -> bool {
        match self {
            Self::Problem(problem) => problem.status >= 500,
            Self::Store(e) => e.is_retryable(),
            Self::Queue(e) => e.is_retryable(),
            Self::Pipeline(e) => e.is_retryable(),
            Self::Schedule(e) => e.is_retryable(),
            Self::WhatsApp(e) => e.is_retryable(),
            Self::Objects { retryable, .. } => *retryable,
            Self::Spreadsheet(_) => false,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match self {
            Self::Problem(problem) => problem.into_response(),
            Self::WhatsApp(e) => {
                tracing::warn!(error = %e, "WhatsApp template list unavailable");
                Problem::new(
                    StatusCode::BAD_GATEWAY,
                    "whatsapp-unavailable",
                    "WhatsApp is unavailable",
                    format!(
                        "the template list could not be read from the WhatsApp Cloud API ({e}); \
                         try again in a moment"
                    ),
                )
                .into_response()
            }
            other if other.is_retryable() => {
                tracing::warn!(error = %other, "request failed on a service that may recover");
                Problem::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "service-unavailable",
                    "Temporarily unavailable",
                    "a service behind the API is busy or unreachable; nothing was lost — \
                     try the same request again in a few seconds",
                )
                .into_response()
            }
            other => {
                tracing::error!(error = %other, "request failed");
                Problem::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "Internal error",
                    "the request failed on our side; it is logged — if it keeps happening, \
                     report the time of the request",
                )
                .into_response()
            }
        }
    }
}

fn json_problem(rejection: JsonRejection) -> ApiError {
    let status = rejection.status();
    let problem = match rejection {
        JsonRejection::MissingJsonContentType(_) => Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported-media-type",
            "Unsupported media type",
            "the body must be JSON, sent with `Content-Type: application/json`",
        ),
        JsonRejection::JsonSyntaxError(e) => Problem::bad_request(
            "invalid-json",
            format!("the body is not valid JSON: {}", e.body_text()),
        ),
        JsonRejection::JsonDataError(e) => Problem::bad_request(
            "invalid-body",
            format!(
                "the body does not have the expected fields: {}",
                e.body_text()
            ),
        ),
        other if status == StatusCode::PAYLOAD_TOO_LARGE => {
            return body_too_large(&other.body_text());
        }
        other => Problem::bad_request(
            "unreadable-body",
            format!("the body could not be read: {}", other.body_text()),
        ),
    };
    problem.into()
}

/// `axum::Json` whose rejections are problem details, with the body's nesting checked against
/// [`crate::ApiLimits::max_json_depth`] before it is parsed.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned> FromRequest<SharedContext> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, ctx: &SharedContext) -> Result<Self, ApiError> {
        if !is_json_content_type(request.headers()) {
            return Err(Problem::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported-media-type",
                "Unsupported media type",
                "the body must be JSON, sent with `Content-Type: application/json`",
            )
            .into());
        }
        // The body limit (DefaultBodyLimit) applies here: over it is a 413.
        let body = Bytes::from_request(request, ctx)
            .await
            .map_err(|rejection| match rejection.status() {
                StatusCode::PAYLOAD_TOO_LARGE => body_too_large(&rejection.body_text()),
                _ => Problem::bad_request(
                    "unreadable-body",
                    format!("the body could not be read: {}", rejection.body_text()),
                )
                .into(),
            })?;
        let max = ctx.limits.max_json_depth;
        if nesting_depth(&body, max) > max {
            return Err(Problem::unprocessable(
                "json-too-deep",
                format!(
                    "the body nests arrays and objects more than {max} levels deep; a request \
                     of this API needs at most 4"
                ),
            )
            .into());
        }
        let axum::Json(value) = axum::Json::<T>::from_bytes(&body)?;
        Ok(Self(value))
    }
}

fn is_json_content_type(headers: &HeaderMap) -> bool {
    let Some(value) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = value
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

fn body_too_large(detail: &str) -> ApiError {
    Problem::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "body-too-large",
        "Request body too large",
        format!(
            "the body is larger than this API accepts ({detail}); send fewer recipients per \
             request, or upload a spreadsheet through POST /v1/uploads"
        ),
    )
    .into()
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        json_problem(rejection)
    }
}

impl<T: Serialize> IntoResponse for ApiJson<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

/// `axum::extract::Path` whose rejections are problem details.
#[derive(Debug, Clone, FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct ApiPath<T>(pub T);

impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> Self {
        Problem::bad_request(
            "invalid-path",
            format!("the path is not valid: {}", rejection.body_text()),
        )
        .into()
    }
}

/// `axum::extract::Query` whose rejections are problem details.
#[derive(Debug, Clone, FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct ApiQuery<T>(pub T);

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        Problem::bad_request(
            "invalid-query",
            format!("the query string is not valid: {}", rejection.body_text()),
        )
        .into()
    }
}

/// Unknown routes.
pub async fn not_found(uri: axum::http::Uri) -> Problem {
    let mut problem = Problem::not_found(
        "no-such-route",
        format!(
            "there is no {} here; GET /openapi.json lists every route",
            uri.path()
        ),
    );
    problem.instance = Some(uri.path().to_owned());
    problem
}

/// Known routes called with a method they do not take.
pub async fn method_not_allowed(method: axum::http::Method, uri: axum::http::Uri) -> Problem {
    let mut problem = Problem::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method-not-allowed",
        "Method not allowed",
        format!(
            "{} does not take {method}; GET /openapi.json lists the methods of every route",
            uri.path()
        ),
    );
    problem.instance = Some(uri.path().to_owned());
    problem
}

/// A handler that panicked: logged, answered as a problem, never a dropped connection.
pub fn panic_response(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    tracing::error!("a request handler panicked");
    Problem::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
        "Internal error",
        "the request failed on our side; it is logged",
    )
    .into_response()
}

#[cfg(test)]
mod tests {
    #[test]
    fn errors_stay_small() {
        assert!(
            std::mem::size_of::<super::ApiError>() <= 64,
            "{}",
            std::mem::size_of::<super::ApiError>()
        );
    }
}
