//! The Graph API error object and what each WhatsApp error code means for us.
//!
//! Branch on `code` only (titles and messages change); show `error_data.details` to the
//! operator. One table, [`entry`], holds every code of whatsapp-cloud-api.md; [`classify`],
//! [`describe`] and [`needs_alarm`] read it.

use serde::{Deserialize, Serialize};

/// `{"error": {…}}` of a failed Graph call, and the items of a `failed` status webhook's
/// `errors[]`. Tolerant: only `code` is required.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GraphError {
    #[serde(default)]
    pub message: String,
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    pub code: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_subcode: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_data: Option<ErrorData>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fbtrace_id: Option<String>,
    /// Webhook errors carry a `title` instead of (or besides) `message`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorData {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<String>,
}

/// The body of a failed Graph call: `{"error": {…}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GraphErrorEnvelope {
    pub error: GraphError,
}

impl GraphError {
    /// The best text for the operator: `error_data.details`, else the message, else the title,
    /// else the table's description of the code.
    pub fn details(&self) -> &str {
        self.error_data
            .as_ref()
            .and_then(|d| d.details.as_deref())
            .filter(|s| !s.trim().is_empty())
            .or_else(|| Some(self.message.as_str()).filter(|s| !s.trim().is_empty()))
            .or_else(|| self.title.as_deref().filter(|s| !s.trim().is_empty()))
            .unwrap_or_else(|| describe(self.code))
    }

    pub fn class(&self) -> ErrorClass {
        classify(self.code)
    }
}

/// What to do after an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorClass {
    /// Try again later (with backoff); a throughput error also slows the sender down.
    Retry,
    /// Try this recipient again later; other recipients can be sent to now (131056, 131049).
    RetryRecipientLater,
    /// Fail this message with the code and details.
    Permanent,
    /// Every further send would fail too: pause the dispatch and raise an alarm.
    PauseDispatch,
}

impl ErrorClass {
    pub fn is_retryable(self) -> bool {
        matches!(self, Self::Retry | Self::RetryRecipientLater)
    }
}

/// One row of the table in whatsapp-cloud-api.md.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CodeEntry {
    pub class: ErrorClass,
    pub description: &'static str,
    /// Someone has to look at the account (token, permissions, billing, quality…).
    pub alarm: bool,
}

/// The table. `None` for a code it does not list.
pub fn entry(code: i64) -> Option<CodeEntry> {
    use ErrorClass::*;
    let (class, description, alarm) = match code {
        0 | 190 => (PauseDispatch, "access token invalid or expired", true),
        1 | 131000 => (Retry, "unknown error, something went wrong", false),
        2 | 131016 => (Retry, "service unavailable or overloaded", false),
        4 | 80007 | 80008 => (
            Retry,
            "API rate limit of the app or WhatsApp account",
            false,
        ),
        10 | 200..=299 | 131005 => (Permanent, "permission denied", true),
        100 | 131008 | 131009 | 135000 => (Permanent, "invalid or missing parameter", false),
        368 => (
            PauseDispatch,
            "temporarily blocked for policy violations",
            true,
        ),
        130429 => (
            Retry,
            "throughput limit of the business number reached",
            false,
        ),
        130472 => (Permanent, "number is part of a Meta experiment", false),
        131021 => (Permanent, "recipient is the sender", false),
        131026 => (
            Permanent,
            "undeliverable (not on WhatsApp, old app, or terms not accepted)",
            false,
        ),
        131031 => (PauseDispatch, "business account locked", true),
        131042 => (PauseDispatch, "payment or billing problem", true),
        131045 => (
            Permanent,
            "phone-number certificate or registration problem",
            true,
        ),
        131047 => (
            Permanent,
            "more than 24 hours since the customer last wrote: only templates allowed",
            false,
        ),
        131048 => (Permanent, "spam rate limit reached (quality)", true),
        131049 => (
            RetryRecipientLater,
            "not delivered to keep engagement healthy (per-user marketing limit)",
            false,
        ),
        131050 => (Permanent, "the customer stopped marketing messages", false),
        131051 => (Permanent, "unsupported message type", false),
        131052 | 131053 => (Permanent, "media download or upload error", false),
        131056 => (
            RetryRecipientLater,
            "too many messages to the same recipient",
            false,
        ),
        131057 => (Retry, "business account in maintenance", false),
        132000 => (Permanent, "template parameter count mismatch", false),
        132001 => (
            PauseDispatch,
            "template does not exist in that language or is not approved",
            true,
        ),
        132005 | 132007 => (
            Permanent,
            "template text too long or against the character policy",
            false,
        ),
        132012 => (Permanent, "template parameter format mismatch", false),
        132015 | 132016 => (PauseDispatch, "template paused or disabled", true),
        132018 => (Permanent, "invalid template parameters", false),
        133010 => (Permanent, "business number not registered", true),
        _ => return None,
    };
    Some(CodeEntry {
        class,
        description,
        alarm,
    })
}

/// What to do after a WhatsApp error code; codes not in the table are permanent.
pub fn classify(code: i64) -> ErrorClass {
    entry(code).map_or(ErrorClass::Permanent, |e| e.class)
}

/// Short operator text for a code.
pub fn describe(code: i64) -> &'static str {
    entry(code).map_or("unknown WhatsApp error", |e| e.description)
}

/// Whether the code calls for an alarm (someone must fix the account or the template).
pub fn needs_alarm(code: i64) -> bool {
    entry(code).is_some_and(|e| e.alarm)
}

/// Whether the table lists the code.
pub fn is_known(code: i64) -> bool {
    entry(code).is_some()
}

/// 131050: the customer stopped marketing messages; add them to the opt-outs.
pub fn is_opt_out(code: i64) -> bool {
    code == 131050
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Every code of the table in whatsapp-cloud-api.md with its handling.
    const TABLE: &[(i64, ErrorClass)] = &[
        (0, ErrorClass::PauseDispatch),
        (190, ErrorClass::PauseDispatch),
        (1, ErrorClass::Retry),
        (131000, ErrorClass::Retry),
        (2, ErrorClass::Retry),
        (131016, ErrorClass::Retry),
        (4, ErrorClass::Retry),
        (80007, ErrorClass::Retry),
        (80008, ErrorClass::Retry),
        (10, ErrorClass::Permanent),
        (200, ErrorClass::Permanent),
        (250, ErrorClass::Permanent),
        (299, ErrorClass::Permanent),
        (131005, ErrorClass::Permanent),
        (100, ErrorClass::Permanent),
        (131008, ErrorClass::Permanent),
        (131009, ErrorClass::Permanent),
        (135000, ErrorClass::Permanent),
        (368, ErrorClass::PauseDispatch),
        (130429, ErrorClass::Retry),
        (130472, ErrorClass::Permanent),
        (131021, ErrorClass::Permanent),
        (131026, ErrorClass::Permanent),
        (131031, ErrorClass::PauseDispatch),
        (131042, ErrorClass::PauseDispatch),
        (131045, ErrorClass::Permanent),
        (131047, ErrorClass::Permanent),
        (131048, ErrorClass::Permanent),
        (131049, ErrorClass::RetryRecipientLater),
        (131050, ErrorClass::Permanent),
        (131051, ErrorClass::Permanent),
        (131052, ErrorClass::Permanent),
        (131053, ErrorClass::Permanent),
        (131056, ErrorClass::RetryRecipientLater),
        (131057, ErrorClass::Retry),
        (132000, ErrorClass::Permanent),
        (132001, ErrorClass::PauseDispatch),
        (132005, ErrorClass::Permanent),
        (132007, ErrorClass::Permanent),
        (132012, ErrorClass::Permanent),
        (132015, ErrorClass::PauseDispatch),
        (132016, ErrorClass::PauseDispatch),
        (132018, ErrorClass::Permanent),
        (133010, ErrorClass::Permanent),
    ];

    #[test]
    fn every_documented_code_is_classified() {
        for &(code, class) in TABLE {
            assert!(is_known(code), "{code}");
            assert_eq!(classify(code), class, "{code}");
            assert_ne!(describe(code), "unknown WhatsApp error", "{code}");
        }
    }

    #[test]
    fn unknown_codes_are_permanent() {
        for code in [-1, 3, 199, 300, 131001, 999999] {
            assert!(!is_known(code));
            assert_eq!(classify(code), ErrorClass::Permanent);
            assert_eq!(describe(code), "unknown WhatsApp error");
            assert!(!needs_alarm(code));
        }
    }

    #[test]
    fn design_md_retry_and_pause_codes() {
        for code in [130429, 131000, 131016, 131057] {
            assert!(classify(code).is_retryable(), "{code}");
        }
        for code in [190, 0, 131031, 131042, 132015, 132016] {
            assert_eq!(classify(code), ErrorClass::PauseDispatch, "{code}");
            assert!(needs_alarm(code), "{code}");
        }
        assert!(is_opt_out(131050));
        assert!(!is_opt_out(131026));
    }

    #[test]
    fn parses_the_documented_error_object() {
        let body = json!({ "error": { "message": "(#131047) Re-engagement message",
            "type": "OAuthException", "code": 131047, "error_subcode": 2494010,
            "error_data": { "messaging_product": "whatsapp", "details": "Message failed to send" },
            "fbtrace_id": "Az8or2yhqkZfEZ-_4Qn_Bam" } });
        let envelope: GraphErrorEnvelope = serde_json::from_value(body).unwrap();
        let e = envelope.error;
        assert_eq!(e.code, 131047);
        assert_eq!(e.kind.as_deref(), Some("OAuthException"));
        assert_eq!(e.error_subcode, Some(2494010));
        assert_eq!(e.details(), "Message failed to send");
        assert_eq!(e.fbtrace_id.as_deref(), Some("Az8or2yhqkZfEZ-_4Qn_Bam"));
        assert_eq!(e.class(), ErrorClass::Permanent);
    }

    #[test]
    fn parses_minimal_and_webhook_errors() {
        let e: GraphError = serde_json::from_value(json!({"code": 131026})).unwrap();
        assert_eq!(e.message, "");
        assert_eq!(e.details(), describe(131026));
        let e: GraphError = serde_json::from_value(json!({"code": 131026,
            "title": "Message undeliverable", "error_data": {"details": ""}}))
        .unwrap();
        assert_eq!(e.details(), "Message undeliverable");
        assert!(serde_json::from_value::<GraphError>(json!({"message": "x"})).is_err());
    }
}
