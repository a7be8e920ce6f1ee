//! A dispatch: one template sent to the rows of one input (a spreadsheet or an API list).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DispatchState {
    /// The input is being read and its rows written and queued.
    Intake,
    /// Every row is recorded; sending starts at `send_at`.
    Scheduled,
    /// Every row is recorded; queued messages are being sent.
    Sending,
    /// Sending stopped on an error that makes further sends pointless (token, account,
    /// billing, template paused); `reason` says which. Unclaimed messages stay `queued`.
    Paused,
    /// Every message reached a final state.
    Completed,
    /// The input could not be used at all; `reason` says why.
    Failed,
    /// Stopped by the operator; messages not yet claimed become `skipped`.
    Cancelled,
}

impl DispatchState {
    pub const ALL: [DispatchState; 7] = [
        Self::Intake,
        Self::Scheduled,
        Self::Sending,
        Self::Paused,
        Self::Completed,
        Self::Failed,
        Self::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Intake => "intake",
            Self::Scheduled => "scheduled",
            Self::Sending => "sending",
            Self::Paused => "paused",
            Self::Completed => "completed",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
        }
    }

    /// Nothing more will be sent for a dispatch in this state.
    pub fn is_final(self) -> bool {
        matches!(self, Self::Completed | Self::Failed | Self::Cancelled)
    }
}

impl fmt::Display for DispatchState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for DispatchState {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|state| state.as_str() == s)
            .ok_or_else(|| format!("unknown dispatch state {s:?}"))
    }
}

/// Where a dispatch's rows came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum DispatchSource {
    Upload { bucket: String, key: String },
    Api,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dispatch {
    pub id: String,
    pub template: String,
    pub language: String,
    pub source: DispatchSource,
    pub state: DispatchState,
    /// Why the dispatch failed, or other notes an operator should read.
    pub reason: Option<String>,
    /// Column labels of the input (for the results spreadsheet).
    pub columns: Vec<String>,
    /// Non-empty data rows read from the input (header excluded).
    pub rows: u32,
    pub accepted: u32,
    pub rejected: u32,
    pub created_at: String,
    pub updated_at: String,
    /// When sending starts (RFC 3339 UTC); `None` sends as soon as intake ends. A dispatch
    /// with a future `send_at` waits in `scheduled` with its messages recorded but not queued.
    #[serde(default)]
    pub send_at: Option<String>,
    /// For API dispatches made with an `Idempotency-Key`: a digest of the request, so a retry
    /// of the same request finds its dispatch and a different request under the same key is
    /// refused.
    #[serde(default)]
    pub request_digest: Option<String>,
}

impl Dispatch {
    pub fn new(
        id: String,
        template: String,
        language: String,
        source: DispatchSource,
        now: &str,
    ) -> Self {
        Self {
            id,
            template,
            language,
            source,
            state: DispatchState::Intake,
            reason: None,
            columns: Vec::new(),
            rows: 0,
            accepted: 0,
            rejected: 0,
            created_at: now.to_owned(),
            updated_at: now.to_owned(),
            send_at: None,
            request_digest: None,
        }
    }
}

/// What intake found, recorded on the dispatch when intake ends.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IntakeSummary {
    pub columns: Vec<String>,
    pub rows: u32,
    pub accepted: u32,
    pub rejected: u32,
}

/// The dispatch id of an uploaded object. The same object (bucket, key and version or ETag)
/// always gives the same id, so a redelivered S3 event finds the dispatch it already made
/// instead of creating a second one.
pub fn dispatch_id_for_object(bucket: &str, key: &str, version: &str) -> String {
    let mut hasher = Sha256::new();
    for part in [bucket, key, version] {
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part.as_bytes());
    }
    let digest = hasher.finalize();
    format!("d-{}", hex::encode(&digest[..12]))
}

/// The dispatch id of an upload made through a presigned URL (`…/u-<upload id>/<file>`): it
/// depends on the upload id alone, so the API can name the dispatch before the file exists,
/// and the same URL used twice still makes one dispatch.
pub fn dispatch_id_for_upload(upload_id: &str) -> String {
    digest_id(&["upload", upload_id])
}

/// The dispatch id of an API request sent with an `Idempotency-Key`: a retry of the request
/// finds the dispatch the first attempt made instead of sending again.
pub fn dispatch_id_for_idempotency_key(key: &str) -> String {
    digest_id(&["idempotency-key", key])
}

/// A fresh random dispatch id (`d-` and 24 hex digits), for API requests without a key.
pub fn random_dispatch_id() -> String {
    format!("d-{}", random_hex(12))
}

/// `bytes` random bytes as lower-case hex.
pub fn random_hex(bytes: usize) -> String {
    let mut buffer = vec![0_u8; bytes];
    rand::fill(buffer.as_mut_slice());
    hex::encode(buffer)
}

fn digest_id(parts: &[&str]) -> String {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part.as_bytes());
    }
    let digest = hasher.finalize();
    format!("d-{}", hex::encode(&digest[..12]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upload_key_and_random_ids_are_valid_and_distinct() {
        let upload = dispatch_id_for_upload("0123456789abcdef01234567");
        assert_eq!(upload, dispatch_id_for_upload("0123456789abcdef01234567"));
        assert_ne!(upload, dispatch_id_for_upload("0123456789abcdef01234568"));
        let keyed = dispatch_id_for_idempotency_key("order-42");
        assert_eq!(keyed, dispatch_id_for_idempotency_key("order-42"));
        // Different purposes never share an id for the same text.
        assert_ne!(
            dispatch_id_for_upload("order-42"),
            dispatch_id_for_idempotency_key("order-42")
        );
        let random = random_dispatch_id();
        assert_ne!(random, random_dispatch_id());
        for id in [upload, keyed, random] {
            assert!(id.starts_with("d-") && id.len() == 26, "{id}");
            assert!(
                format!("{id}:1")
                    .parse::<crate::domain::message::MessageId>()
                    .is_ok()
            );
        }
    }

    #[test]
    fn object_ids_are_stable_and_distinct() {
        let a = dispatch_id_for_object("b", "inbox/t/pt_BR/a.xlsx", "etag1");
        assert_eq!(
            a,
            dispatch_id_for_object("b", "inbox/t/pt_BR/a.xlsx", "etag1")
        );
        assert_ne!(
            a,
            dispatch_id_for_object("b", "inbox/t/pt_BR/a.xlsx", "etag2")
        );
        // Length-prefixing keeps ("ab", "c") and ("a", "bc") apart.
        assert_ne!(
            dispatch_id_for_object("ab", "c", "v"),
            dispatch_id_for_object("a", "bc", "v")
        );
        assert!(a.starts_with("d-") && a.len() == 26);
        assert!(a.parse::<crate::domain::message::MessageId>().is_err());
        assert!(
            format!("{a}:3")
                .parse::<crate::domain::message::MessageId>()
                .is_ok()
        );
    }

    #[test]
    fn state_text_round_trips() {
        for state in DispatchState::ALL {
            assert_eq!(state.as_str().parse::<DispatchState>(), Ok(state));
        }
    }
}
