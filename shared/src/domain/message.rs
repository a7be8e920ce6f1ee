//! Message identity and the status lifecycle (DESIGN.md section 5).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Identifies one message: the dispatch it belongs to and the row it came from.
///
/// Its text form `<dispatch>:<row>` travels in SQS records and in WhatsApp's
/// `biz_opaque_callback_data`, so a status webhook leads straight back to the message.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct MessageId {
    pub dispatch_id: String,
    pub row: u32,
}

impl MessageId {
    pub fn new(dispatch_id: impl Into<String>, row: u32) -> Self {
        Self {
            dispatch_id: dispatch_id.into(),
            row,
        }
    }
}

impl fmt::Display for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.dispatch_id, self.row)
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("not a message id (expected <dispatch>:<row>): {0:?}")]
pub struct InvalidMessageId(pub String);

impl FromStr for MessageId {
    type Err = InvalidMessageId;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let invalid = || InvalidMessageId(s.chars().take(80).collect());
        let (dispatch, row) = s.rsplit_once(':').ok_or_else(invalid)?;
        let valid_dispatch = !dispatch.is_empty()
            && dispatch.len() <= 64
            && dispatch
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !valid_dispatch {
            return Err(invalid());
        }
        let row = row.parse().map_err(|_| invalid())?;
        Ok(Self::new(dispatch, row))
    }
}

/// Where a message stands. Status only moves forward.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageStatus {
    /// Refused at intake (invalid phone, missing variable, duplicate…); never sent.
    Rejected,
    /// Accepted and waiting in the send queue.
    Queued,
    /// Claimed by a sender that is calling WhatsApp right now (under a lease).
    Sending,
    /// Accepted by WhatsApp.
    Sent,
    Delivered,
    Read,
    /// WhatsApp refused it, or it failed later; the reason is recorded.
    Failed,
    /// Not sent on purpose (opted out, dispatch cancelled).
    Skipped,
}

impl MessageStatus {
    pub const ALL: [MessageStatus; 8] = [
        Self::Rejected,
        Self::Queued,
        Self::Sending,
        Self::Sent,
        Self::Delivered,
        Self::Read,
        Self::Failed,
        Self::Skipped,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Rejected => "rejected",
            Self::Queued => "queued",
            Self::Sending => "sending",
            Self::Sent => "sent",
            Self::Delivered => "delivered",
            Self::Read => "read",
            Self::Failed => "failed",
            Self::Skipped => "skipped",
        }
    }

    /// A message in a final state needs nothing more from the sender. `sent` and `delivered`
    /// are final for sending (WhatsApp has it) even though later webhooks may still advance them.
    pub fn is_final(self) -> bool {
        !matches!(self, Self::Queued | Self::Sending)
    }

    /// True once WhatsApp has the message: a redelivered send record must not send it again.
    pub fn is_past_sending(self) -> bool {
        matches!(
            self,
            Self::Sent | Self::Delivered | Self::Read | Self::Failed | Self::Skipped
        )
    }
}

impl fmt::Display for MessageStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("unknown message status {0:?}")]
pub struct UnknownStatus(pub String);

impl FromStr for MessageStatus {
    type Err = UnknownStatus;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|status| status.as_str() == s)
            .ok_or_else(|| UnknownStatus(s.chars().take(40).collect()))
    }
}

/// Everything recorded about one row of a dispatch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageRecord {
    pub id: MessageId,
    pub status: MessageStatus,
    pub template: String,
    pub language: String,
    /// E.164; absent when the row was rejected because its phone was not a valid number.
    pub phone: Option<String>,
    /// The phone cell as it was in the input.
    pub phone_input: String,
    /// Values for the template's variables, in the template's order.
    pub variables: Vec<String>,
    /// The row's original cells, for the results spreadsheet.
    pub cells: Vec<String>,
    /// Machine-readable reason for rejected, skipped and failed messages
    /// (`invalid_phone`, `whatsapp_error`, `attempts_exhausted`, …).
    pub reason_code: Option<String>,
    /// The reason in words an operator can act on.
    pub reason: Option<String>,
    /// WhatsApp's error code, when WhatsApp refused or failed the message.
    pub error_code: Option<i64>,
    pub error_detail: Option<String>,
    /// WhatsApp's message id (`wamid.…`) once accepted.
    pub wamid: Option<String>,
    /// The WhatsApp id WhatsApp resolved the phone to (may lack Brazil's ninth digit).
    pub wa_id: Option<String>,
    /// How many times a sender has claimed it.
    pub attempts: u32,
    /// While `sending`: until when the claim is held (RFC 3339).
    pub lease_until: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    pub sent_at: Option<String>,
    pub delivered_at: Option<String>,
    pub read_at: Option<String>,
    pub failed_at: Option<String>,
    /// Set by the review when a `sent` message was never reported delivered in time.
    #[serde(default)]
    pub undelivered: bool,
}

impl MessageRecord {
    /// A row that will be sent.
    #[allow(clippy::too_many_arguments)]
    pub fn queued(
        id: MessageId,
        template: &str,
        language: &str,
        phone: String,
        phone_input: String,
        variables: Vec<String>,
        cells: Vec<String>,
        now: &str,
    ) -> Self {
        Self {
            id,
            status: MessageStatus::Queued,
            template: template.to_owned(),
            language: language.to_owned(),
            phone: Some(phone),
            phone_input,
            variables,
            cells,
            reason_code: None,
            reason: None,
            error_code: None,
            error_detail: None,
            wamid: None,
            wa_id: None,
            attempts: 0,
            lease_until: None,
            created_at: now.to_owned(),
            updated_at: now.to_owned(),
            sent_at: None,
            delivered_at: None,
            read_at: None,
            failed_at: None,
            undelivered: false,
        }
    }

    /// A row refused at intake, kept with its reason so nothing vanishes.
    #[allow(clippy::too_many_arguments)]
    pub fn rejected(
        id: MessageId,
        template: &str,
        language: &str,
        phone_input: String,
        reason_code: &str,
        reason: String,
        cells: Vec<String>,
        now: &str,
    ) -> Self {
        Self {
            status: MessageStatus::Rejected,
            phone: None,
            reason_code: Some(reason_code.to_owned()),
            reason: Some(reason),
            ..Self::queued(
                id,
                template,
                language,
                String::new(),
                phone_input,
                Vec::new(),
                cells,
                now,
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_id_round_trips_through_text() {
        let id = MessageId::new("d-0a1b2c", 42);
        assert_eq!(id.to_string(), "d-0a1b2c:42");
        assert_eq!("d-0a1b2c:42".parse::<MessageId>(), Ok(id));
    }

    #[test]
    fn message_id_rejects_garbage() {
        for bad in [
            "",
            ":",
            "abc",
            "d:x",
            "d:-1",
            ":3",
            "a b:1",
            "d:99999999999",
        ] {
            assert!(bad.parse::<MessageId>().is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn status_text_round_trips() {
        for status in MessageStatus::ALL {
            assert_eq!(status.as_str().parse::<MessageStatus>(), Ok(status));
        }
        assert!("bogus".parse::<MessageStatus>().is_err());
    }
}
