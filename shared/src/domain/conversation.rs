//! Conversations and WhatsApp's 24-hour customer-service window (the reference's section of
//! that name), as pure rules: what an inbound message does to a conversation, when the window
//! has passed, which answers to a reopening template count as yes.
//!
//! A conversation is keyed by the customer's number through [`match_key`], so a `wa_id`
//! without Brazil's ninth digit and the full number we sent to meet in one conversation.
//!
//! `expired` is never stored: a conversation is stored `open` with `window_expires_at`, and
//! reads derive `expired` from the clock. Nothing has to flip states on a timer, and a read is
//! right the instant the window passes.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

use crate::domain::phone::match_key;

/// How long a customer's message keeps the window open.
pub const WINDOW_HOURS: i64 = 24;

pub fn window() -> chrono::Duration {
    chrono::Duration::hours(WINDOW_HOURS)
}

/// The states an operator filters on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConversationState {
    /// The window is running: anything may be sent.
    Open,
    /// The window passed; only a template may be sent (derived, never stored).
    Expired,
    /// Finished by the operator.
    Closed,
    /// A template was sent to reopen it; waiting for the customer's answer.
    AwaitingReply,
    /// The customer answered the reopening template negatively (or opted out).
    Declined,
}

impl ConversationState {
    pub const ALL: [ConversationState; 5] = [
        Self::Open,
        Self::Expired,
        Self::Closed,
        Self::AwaitingReply,
        Self::Declined,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Expired => "expired",
            Self::Closed => "closed",
            Self::AwaitingReply => "awaiting_reply",
            Self::Declined => "declined",
        }
    }
}

impl fmt::Display for ConversationState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ConversationState {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|state| state.as_str() == s)
            .ok_or_else(|| {
                format!(
                    "unknown conversation state {s:?}; one of open, expired, closed, \
                     awaiting_reply, declined"
                )
            })
    }
}

/// How the customer answered the last reopening template.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReplyOutcome {
    /// Tapped an accepting button: the conversation started.
    Accepted,
    /// Tapped another button.
    Declined,
    /// Wrote text instead of tapping: the window opened (WhatsApp's rule) but it is not a yes.
    Replied,
    /// Asked to receive nothing more.
    OptedOut,
}

impl ReplyOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Accepted => "accepted",
            Self::Declined => "declined",
            Self::Replied => "replied",
            Self::OptedOut => "opted_out",
        }
    }
}

impl FromStr for ReplyOutcome {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [
            Self::Accepted,
            Self::Declined,
            Self::Replied,
            Self::OptedOut,
        ]
        .into_iter()
        .find(|o| o.as_str() == s)
        .ok_or_else(|| format!("unknown reply outcome {s:?}"))
    }
}

/// The template sent to reopen a conversation, and which of its buttons mean yes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reactivation {
    /// Our message id (`<dispatch>:<row>`) of the template.
    pub message_id: String,
    pub template: String,
    pub language: String,
    /// Quick-reply button indexes that count as yes.
    pub accept_buttons: Vec<u8>,
    pub sent_at: String,
}

/// One customer's conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conversation {
    /// [`match_key`] of the customer's number.
    pub key: String,
    /// The customer's WhatsApp id as last seen.
    pub wa_id: String,
    pub profile_name: Option<String>,
    /// Never [`ConversationState::Expired`]; see [`Conversation::state_at`].
    pub stored_state: ConversationState,
    pub window_expires_at: Option<String>,
    pub last_inbound_at: Option<String>,
    pub reactivation: Option<Reactivation>,
    pub outcome: Option<ReplyOutcome>,
    pub created_at: String,
    pub updated_at: String,
    /// Bumped on every write: writes are conditional on it, so two webhooks for the same
    /// customer never overwrite each other's changes.
    pub version: u64,
}

pub fn rfc3339(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

impl Conversation {
    /// A conversation nobody has written in yet (the first inbound message opens it).
    pub fn new(wa_id: &str, now: DateTime<Utc>) -> Self {
        Self {
            key: match_key(wa_id),
            wa_id: wa_id.to_owned(),
            profile_name: None,
            // Open with no window reads as expired until the customer writes.
            stored_state: ConversationState::Open,
            window_expires_at: None,
            last_inbound_at: None,
            reactivation: None,
            outcome: None,
            created_at: rfc3339(now),
            updated_at: rfc3339(now),
            version: 0,
        }
    }

    /// Whether the customer-service window is running at `now`.
    pub fn window_open_at(&self, now: DateTime<Utc>) -> bool {
        self.window_expires_at
            .as_deref()
            .and_then(parse_time)
            .is_some_and(|expires| expires > now)
    }

    /// The state an operator sees at `now`: `open` turns `expired` when the window passes.
    pub fn state_at(&self, now: DateTime<Utc>) -> ConversationState {
        match self.stored_state {
            ConversationState::Open | ConversationState::Expired => {
                if self.window_open_at(now) {
                    ConversationState::Open
                } else {
                    ConversationState::Expired
                }
            }
            other => other,
        }
    }

    /// Whether a free-form message may be sent now: only in an `open` conversation.
    pub fn may_send_free_form(&self, now: DateTime<Utc>) -> bool {
        self.state_at(now) == ConversationState::Open
    }

    /// Whether a template may be sent to reopen it now.
    pub fn may_reactivate(&self, now: DateTime<Utc>) -> bool {
        matches!(
            self.state_at(now),
            ConversationState::Expired | ConversationState::Closed
        )
    }

    fn refresh_window(&mut self, at: DateTime<Utc>) {
        let candidate = at + window();
        let current = self.window_expires_at.as_deref().and_then(parse_time);
        if current.is_none_or(|current| candidate > current) {
            self.window_expires_at = Some(rfc3339(candidate));
        }
    }

    /// Applies what the customer answered at `at`. Returns the event it gives rise to.
    ///
    /// A message older than the last one seen (webhooks are unordered) only extends the
    /// window: the newer message already decided the state.
    pub fn apply(&mut self, answer: Answer, at: DateTime<Utc>) -> Option<ConversationEventKind> {
        let stale = self
            .last_inbound_at
            .as_deref()
            .and_then(parse_time)
            .is_some_and(|last| at < last);
        if stale {
            if matches!(answer, Answer::Accept | Answer::Message) {
                self.refresh_window(at);
            }
            return None;
        }
        self.last_inbound_at = Some(rfc3339(at));
        match answer {
            Answer::Accept => {
                self.refresh_window(at);
                self.stored_state = ConversationState::Open;
                self.outcome = Some(ReplyOutcome::Accepted);
                Some(ConversationEventKind::Started)
            }
            Answer::Decline => {
                self.stored_state = ConversationState::Declined;
                self.outcome = Some(ReplyOutcome::Declined);
                Some(ConversationEventKind::Declined)
            }
            Answer::OptOut => {
                self.stored_state = ConversationState::Declined;
                self.outcome = Some(ReplyOutcome::OptedOut);
                Some(ConversationEventKind::Declined)
            }
            Answer::Message => {
                self.refresh_window(at);
                if self.stored_state == ConversationState::AwaitingReply {
                    self.outcome = Some(ReplyOutcome::Replied);
                }
                self.stored_state = ConversationState::Open;
                None
            }
        }
    }

    /// The operator finished it.
    pub fn close(&mut self) {
        self.stored_state = ConversationState::Closed;
    }

    /// A reopening template was sent.
    pub fn await_reply(&mut self, reactivation: Reactivation) {
        self.stored_state = ConversationState::AwaitingReply;
        self.outcome = None;
        self.reactivation = Some(reactivation);
    }
}

/// What one inbound message means for its conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// A tap on a button that counts as yes.
    Accept,
    /// A tap on any other button of our template.
    Decline,
    /// An opt-out keyword or button.
    OptOut,
    /// Anything else the customer sent: text, media, a tap we cannot tie to a template.
    Message,
}

/// An inbound message from a webhook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboundMessage {
    /// WhatsApp's id of the inbound message.
    pub wamid: String,
    /// The customer's `wa_id`.
    pub from: String,
    pub profile_name: Option<String>,
    /// When the customer sent it.
    pub at: DateTime<Utc>,
    /// The message it answers (`context.id`), for replies and button taps.
    pub context_wamid: Option<String>,
    pub content: InboundContent,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InboundContent {
    Text {
        body: String,
    },
    /// A tap on a template's quick-reply button.
    Button {
        payload: String,
        text: String,
    },
    /// A reply button of an interactive message.
    Interactive {
        id: String,
        title: String,
    },
    /// Media, location, reaction…: its `type`.
    Other {
        kind: String,
    },
}

impl InboundContent {
    pub fn kind(&self) -> &str {
        match self {
            Self::Text { .. } => "text",
            Self::Button { .. } => "button",
            Self::Interactive { .. } => "interactive",
            Self::Other { kind } => kind,
        }
    }

    /// What the customer sees they sent: the text, the button's label, or `[<type>]`.
    pub fn summary(&self) -> String {
        match self {
            Self::Text { body } => body.clone(),
            Self::Button { text, .. } => text.clone(),
            Self::Interactive { title, .. } => title.clone(),
            Self::Other { kind } => format!("[{kind}]"),
        }
    }
}

/// How the customer asks to receive nothing more.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OptOutRules {
    /// Compared with a text message, or a button's label, ignoring case, surrounding spaces
    /// and punctuation.
    pub keywords: Vec<String>,
    /// Button payloads that mean opt-out (for templates whose buttons carry fixed payloads).
    pub payloads: Vec<String>,
}

impl Default for OptOutRules {
    fn default() -> Self {
        Self {
            keywords: ["SAIR", "PARAR", "STOP"].map(str::to_owned).to_vec(),
            payloads: Vec::new(),
        }
    }
}

fn normalise_keyword(text: &str) -> String {
    text.trim()
        .trim_matches(|c: char| !c.is_alphanumeric())
        .to_uppercase()
}

impl OptOutRules {
    /// Comma-separated lists, blanks ignored.
    pub fn from_lists(keywords: &str, payloads: &str) -> Self {
        let split = |list: &str| -> Vec<String> {
            list.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect()
        };
        Self {
            keywords: split(keywords),
            payloads: split(payloads),
        }
    }

    pub fn is_opt_out(&self, content: &InboundContent) -> bool {
        let keyword = |text: &str| {
            let text = normalise_keyword(text);
            !text.is_empty() && self.keywords.iter().any(|k| normalise_keyword(k) == text)
        };
        match content {
            InboundContent::Text { body } => keyword(body),
            InboundContent::Button { payload, text } => {
                self.payloads.iter().any(|p| p == payload) || keyword(text)
            }
            InboundContent::Interactive { id, title } => {
                self.payloads.iter().any(|p| p == id) || keyword(title)
            }
            InboundContent::Other { .. } => false,
        }
    }
}

/// What an inbound message means, given whether its button (if it is a tap on one of our
/// templates' buttons) is an accepting one.
pub fn classify(
    content: &InboundContent,
    rules: &OptOutRules,
    tap_accepts: Option<bool>,
) -> Answer {
    if rules.is_opt_out(content) {
        return Answer::OptOut;
    }
    match (content, tap_accepts) {
        (InboundContent::Button { .. }, Some(true)) => Answer::Accept,
        (InboundContent::Button { .. }, Some(false)) => Answer::Decline,
        _ => Answer::Message,
    }
}

/// The buttons that count as yes when the sender did not say: the template's first
/// quick-reply button (the "Sim" of a "Sim / Não" pair).
pub fn default_accept_buttons(quick_reply_indexes: &[u8]) -> Vec<u8> {
    quick_reply_indexes
        .iter()
        .min()
        .copied()
        .into_iter()
        .collect()
}

/// Events the attendance side listens for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ConversationEventKind {
    /// The customer accepted: an attendant should take the conversation.
    #[serde(rename = "conversation.started")]
    Started,
    /// The customer declined the reopening template or opted out.
    #[serde(rename = "conversation.declined")]
    Declined,
}

impl ConversationEventKind {
    pub const ALL: [ConversationEventKind; 2] = [Self::Started, Self::Declined];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Started => "conversation.started",
            Self::Declined => "conversation.declined",
        }
    }
}

impl FromStr for ConversationEventKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| {
                format!(
                    "unknown event type {s:?}; one of conversation.started, conversation.declined"
                )
            })
    }
}

/// One recorded event. Its id derives from the inbound message that caused it, so a
/// redelivered webhook records (and publishes) the same event, never a second one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConversationEvent {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: ConversationEventKind,
    pub wa_id: String,
    /// The conversation (`match_key` of the number).
    pub conversation: String,
    pub at: String,
    /// The template message the customer answered, when known.
    pub message_id: Option<String>,
    /// The button tapped.
    pub button: Option<u8>,
    /// The button's label or the text.
    pub text: Option<String>,
}

impl ConversationEvent {
    pub fn id_for(inbound_wamid: &str) -> String {
        format!("ev-{inbound_wamid}")
    }
}

/// The number to send to for a `wa_id`: Brazilian mobiles WhatsApp names without the ninth
/// digit (`55 DD 8XXX XXXX`) get it back, since numbers are sent in full E.164.
pub fn e164_for_wa_id(wa_id: &str) -> String {
    let digits: String = wa_id.chars().filter(char::is_ascii_digit).collect();
    if digits.len() == 12 && digits.starts_with("55") && matches!(digits.as_bytes()[4], b'6'..=b'9')
    {
        return format!("+{}9{}", &digits[..4], &digits[4..]);
    }
    format!("+{digits}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        parse_time(text).expect("valid time")
    }

    fn text(body: &str) -> InboundContent {
        InboundContent::Text { body: body.into() }
    }

    #[test]
    fn the_window_runs_24_hours_from_the_customers_message_and_then_expires() {
        let mut c = Conversation::new("5511987654321", at("2026-12-01T10:00:00Z"));
        assert_eq!(
            c.state_at(at("2026-12-01T10:00:00Z")),
            ConversationState::Expired
        );
        assert_eq!(c.apply(Answer::Message, at("2026-12-01T10:00:00Z")), None);
        assert_eq!(
            c.state_at(at("2026-12-02T09:59:59Z")),
            ConversationState::Open
        );
        assert!(c.may_send_free_form(at("2026-12-02T09:59:59Z")));
        assert_eq!(
            c.state_at(at("2026-12-02T10:00:00Z")),
            ConversationState::Expired
        );
        assert!(!c.may_send_free_form(at("2026-12-02T10:00:01Z")));
        assert!(c.may_reactivate(at("2026-12-02T10:00:01Z")));
    }

    #[test]
    fn a_late_older_message_never_shortens_the_window_or_undoes_a_newer_answer() {
        let mut c = Conversation::new("5511987654321", at("2026-12-01T10:00:00Z"));
        c.apply(Answer::Accept, at("2026-12-01T12:00:00Z"));
        assert_eq!(c.apply(Answer::Decline, at("2026-12-01T11:00:00Z")), None);
        assert_eq!(c.stored_state, ConversationState::Open);
        assert_eq!(
            c.window_expires_at.as_deref(),
            Some("2026-12-02T12:00:00.000Z")
        );
    }

    #[test]
    fn reopening_answers() {
        let now = at("2026-12-05T10:00:00Z");
        let reactivation = Reactivation {
            message_id: "d-1:1".into(),
            template: "boas_vindas".into(),
            language: "pt_BR".into(),
            accept_buttons: vec![0],
            sent_at: rfc3339(now),
        };
        let mut yes = Conversation::new("5511987654321", now);
        yes.close();
        yes.await_reply(reactivation.clone());
        assert_eq!(yes.state_at(now), ConversationState::AwaitingReply);
        assert_eq!(
            yes.apply(Answer::Accept, now),
            Some(ConversationEventKind::Started)
        );
        assert_eq!(yes.state_at(now), ConversationState::Open);
        assert_eq!(yes.outcome, Some(ReplyOutcome::Accepted));

        let mut no = Conversation::new("5511987654321", now);
        no.await_reply(reactivation.clone());
        assert_eq!(
            no.apply(Answer::Decline, now),
            Some(ConversationEventKind::Declined)
        );
        assert_eq!(no.state_at(now), ConversationState::Declined);
        assert!(!no.window_open_at(now), "a no opens nothing");
        assert!(!no.may_send_free_form(now));

        let mut wrote = Conversation::new("5511987654321", now);
        wrote.await_reply(reactivation);
        assert_eq!(wrote.apply(Answer::Message, now), None);
        assert_eq!(wrote.state_at(now), ConversationState::Open);
        assert_eq!(wrote.outcome, Some(ReplyOutcome::Replied));
    }

    #[test]
    fn taps_and_opt_outs_are_classified() {
        let rules = OptOutRules::default();
        let tap = InboundContent::Button {
            payload: "d-1:1#b0".into(),
            text: "Sim".into(),
        };
        assert_eq!(classify(&tap, &rules, Some(true)), Answer::Accept);
        assert_eq!(classify(&tap, &rules, Some(false)), Answer::Decline);
        assert_eq!(classify(&tap, &rules, None), Answer::Message);
        assert_eq!(classify(&text("sim"), &rules, None), Answer::Message);
        for stop in [" sair ", "Parar.", "STOP!", "stop"] {
            assert_eq!(
                classify(&text(stop), &rules, None),
                Answer::OptOut,
                "{stop}"
            );
        }
        assert_eq!(
            classify(&text("não quero sair agora"), &rules, None),
            Answer::Message
        );
        let stop_button = InboundContent::Button {
            payload: "d-1:1#b2".into(),
            text: "Parar".into(),
        };
        assert_eq!(classify(&stop_button, &rules, Some(false)), Answer::OptOut);
        let by_payload = OptOutRules::from_lists("", "OPT_OUT, ");
        assert!(by_payload.is_opt_out(&InboundContent::Button {
            payload: "OPT_OUT".into(),
            text: "Não quero".into()
        }));
        assert!(!by_payload.is_opt_out(&text("SAIR")));
    }

    #[test]
    fn states_parse_and_default_accept_is_the_first_quick_reply() {
        for state in ConversationState::ALL {
            assert_eq!(state.as_str().parse::<ConversationState>(), Ok(state));
        }
        assert!("opened".parse::<ConversationState>().is_err());
        assert_eq!(default_accept_buttons(&[2, 1]), vec![1]);
        assert!(default_accept_buttons(&[]).is_empty());
        assert_eq!(
            "conversation.started".parse::<ConversationEventKind>(),
            Ok(ConversationEventKind::Started)
        );
    }

    #[test]
    fn wa_ids_without_the_ninth_digit_get_it_back() {
        assert_eq!(e164_for_wa_id("553187654321"), "+5531987654321");
        assert_eq!(e164_for_wa_id("5511987654321"), "+5511987654321");
        // A landline (starts with 2-5) keeps its eight digits.
        assert_eq!(e164_for_wa_id("553133334444"), "+553133334444");
        assert_eq!(e164_for_wa_id("14155550123"), "+14155550123");
        assert_eq!(
            match_key("553187654321"),
            match_key("5531987654321"),
            "one conversation for both forms"
        );
    }
}
