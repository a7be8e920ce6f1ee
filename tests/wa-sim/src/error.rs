//! The Graph API error object, exactly as the Cloud API answers it.
//!
//! ```json
//! { "error": { "message": "(#132000) Number of parameters does not match the expected number of params",
//!     "type": "OAuthException", "code": 132000,
//!     "error_data": { "messaging_product": "whatsapp", "details": "…" },
//!     "fbtrace_id": "A…" } }
//! ```

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use rand::Rng;
use serde_json::{Value, json};

/// One Graph error: the HTTP status it is answered with, the numeric `code`, an optional
/// `error_subcode`, the `message` (title) and the operator-facing `error_data.details`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("({code}) {message}: {details}")]
pub struct GraphError {
    pub status: StatusCode,
    pub code: u32,
    pub subcode: Option<u32>,
    pub message: String,
    pub details: String,
}

impl GraphError {
    fn new(status: StatusCode, code: u32, title: &str, details: impl Into<String>) -> Self {
        Self {
            status,
            code,
            subcode: None,
            message: format!("(#{code}) {title}"),
            details: details.into(),
        }
    }

    /// Any Graph error by code, for fault injection: HTTP 500 for 131000 and 131016
    /// (server-side trouble), 400 otherwise, as the Cloud API answers them.
    pub fn coded(code: u32, title: &str, details: impl Into<String>) -> Self {
        let status = if matches!(code, 1 | 2 | 131000 | 131016) {
            StatusCode::INTERNAL_SERVER_ERROR
        } else if matches!(code, 0 | 190) {
            StatusCode::UNAUTHORIZED
        } else {
            StatusCode::BAD_REQUEST
        };
        Self::new(status, code, title, details)
    }

    /// 190, HTTP 401: no `Authorization: Bearer …` header at all.
    pub fn token_missing() -> Self {
        Self {
            status: StatusCode::UNAUTHORIZED,
            code: 190,
            subcode: None,
            message:
                "An active access token must be used to query information about the current user."
                    .into(),
            details: "Missing Authorization: Bearer <access token> header".into(),
        }
    }

    /// 190, HTTP 401: a bearer token that is not the configured one.
    pub fn token_invalid() -> Self {
        Self {
            status: StatusCode::UNAUTHORIZED,
            code: 190,
            subcode: None,
            message: "Invalid OAuth access token - Cannot parse access token".into(),
            details: "The access token is invalid or has expired".into(),
        }
    }

    /// 100 / subcode 33: the object id in the path (phone-number id, WABA id) is unknown.
    pub fn unknown_object(method: &str, id: &str) -> Self {
        let method = method.to_ascii_lowercase();
        Self {
            status: StatusCode::BAD_REQUEST,
            code: 100,
            subcode: Some(33),
            message: format!(
                "Unsupported {method} request. Object with ID '{id}' does not exist, cannot be loaded due to missing permissions, or does not support this operation. Please read the Graph API documentation at https://developers.facebook.com/docs/graph-api"
            ),
            details: format!("Unknown object id {id}"),
        }
    }

    /// 2500: a path the simulator (or the Graph API) does not know.
    pub fn unknown_path(path: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            2500,
            "Unknown path components",
            format!("Unknown path components: {path}"),
        )
    }

    /// 100: a known path called with a method it does not support.
    pub fn unsupported_method(method: &str, path: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            100,
            "Unsupported request method",
            format!("Unsupported {method} request on {path}"),
        )
    }

    /// 100: invalid or missing parameter.
    pub fn invalid_parameter(details: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, 100, "Invalid parameter", details)
    }

    /// 131026: recipient cannot receive WhatsApp messages.
    pub fn undeliverable(details: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            131026,
            "Message undeliverable",
            details,
        )
    }

    /// 131047: more than 24 hours since the customer last wrote; only templates may be sent.
    pub fn re_engagement(details: impl Into<String>) -> Self {
        let mut error = Self::new(
            StatusCode::BAD_REQUEST,
            131047,
            "Re-engagement message",
            details,
        );
        error.subcode = Some(2494010);
        error
    }

    /// 131051: message type the simulator does not (yet) support.
    pub fn unsupported_message_type(details: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            131051,
            "Unsupported message type",
            details,
        )
    }

    /// 132000: the number (or names) of template parameters does not match the template.
    pub fn param_count_mismatch(details: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            132000,
            "Number of parameters does not match the expected number of params",
            details,
        )
    }

    /// 132001: no template of that name in that language, or the template is not approved.
    pub fn template_missing(details: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            132001,
            "Template name does not exist in the translation",
            details,
        )
    }

    /// 132005: the text after substituting the parameters is longer than allowed.
    pub fn text_too_long(details: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            132005,
            "Translated text too long",
            details,
        )
    }

    /// 132012: a parameter of another kind than the template's (e.g. text for an image header).
    pub fn param_format_mismatch(details: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            132012,
            "Parameter format does not match format in the created template",
            details,
        )
    }

    /// 132015: template paused for low quality.
    pub fn template_paused(details: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            132015,
            "Template is Paused",
            details,
        )
    }

    /// 132016: template disabled.
    pub fn template_disabled(details: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            132016,
            "Template is disabled",
            details,
        )
    }

    /// 132018: parameter text with new-lines, tabs or more than 4 consecutive spaces.
    pub fn invalid_param_text(details: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            132018,
            "There was an issue with the parameters in your template.",
            details,
        )
    }

    /// The JSON body: `{"error": {…}}`.
    pub fn body(&self) -> Value {
        let mut error = json!({
            "message": self.message,
            "type": "OAuthException",
            "code": self.code,
            "error_data": { "messaging_product": "whatsapp", "details": self.details },
            "fbtrace_id": fbtrace_id(),
        });
        if let (Some(subcode), Some(obj)) = (self.subcode, error.as_object_mut()) {
            obj.insert("error_subcode".into(), subcode.into());
        }
        json!({ "error": error })
    }
}

impl IntoResponse for GraphError {
    fn into_response(self) -> Response {
        tracing::info!(code = self.code, details = %self.details, "answering Graph error");
        (self.status, Json(self.body())).into_response()
    }
}

/// A random trace id in the style Graph uses (`A` + 22 URL-safe characters).
fn fbtrace_id() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-";
    let mut rng = rand::rng();
    let mut id = String::with_capacity(23);
    id.push('A');
    for _ in 0..22 {
        let i = rng.random_range(0..ALPHABET.len());
        id.push(char::from(ALPHABET[i]));
    }
    id
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_has_graph_shape() {
        let body = GraphError::param_count_mismatch("body: x").body();
        let e = &body["error"];
        assert_eq!(e["code"], 132000);
        assert_eq!(e["type"], "OAuthException");
        assert_eq!(e["error_data"]["messaging_product"], "whatsapp");
        assert_eq!(e["error_data"]["details"], "body: x");
        assert!(
            e["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("(#132000) "))
        );
        assert_eq!(e["fbtrace_id"].as_str().map(str::len), Some(23));
        assert!(e.get("error_subcode").is_none());
        assert_eq!(
            GraphError::unknown_object("POST", "1").body()["error"]["error_subcode"],
            33
        );
    }
}
