//! Conversations: the operator's queue of customers who wrote, the 24-hour window, free-form
//! replies inside it, and reopening with a template outside it.

use anna_shared::aws::conversations::ConversationMessage;
use anna_shared::domain::conversation::{
    Conversation, ConversationState, Reactivation, default_accept_buttons, e164_for_wa_id, rfc3339,
};
use anna_shared::domain::message::MessageId;
use anna_shared::domain::phone::mask_phone;
use anna_shared::domain::template::ButtonKind;
use anna_shared::error::Retryable;
use anna_shared::whatsapp::payload::text_message;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use crate::context::{ApiContext, SharedContext};
use crate::cursor;
use crate::dispatches::{RecipientInput, SendRequest, Submitted, submit};
use crate::problem::{ApiError, ApiJson, ApiPath, ApiQuery, Problem};

const DEFAULT_PAGE: usize = 50;
const MAX_PAGE: usize = 100;
/// Messages shown with one conversation.
const RECENT_MESSAGES: usize = 20;
/// WhatsApp's limit for a text message body.
const MAX_TEXT_CHARS: usize = 4096;

/// The digits of a phone in a path (`+5511987654321`, `5511987654321`), if it can be one.
fn phone_digits(phone: &str) -> Option<String> {
    let digits: String = phone.chars().filter(char::is_ascii_digit).collect();
    let only_number_characters = phone
        .chars()
        .all(|c| c.is_ascii_digit() || matches!(c, '+' | ' ' | '-' | '(' | ')'));
    ((8..=15).contains(&digits.len()) && only_number_characters).then_some(digits)
}

fn no_such_conversation(phone: &str) -> Problem {
    Problem::not_found(
        "no-such-conversation",
        format!(
            "there is no conversation with {}; a conversation starts when the customer writes \
             — GET /v1/conversations lists them",
            mask_phone(phone)
        ),
    )
}

async fn load(ctx: &ApiContext, phone: &str) -> Result<(String, Conversation), ApiError> {
    let digits = phone_digits(phone).ok_or_else(|| no_such_conversation(phone))?;
    let conversation = ctx
        .store
        .get_conversation(&digits)
        .await?
        .ok_or_else(|| no_such_conversation(phone))?;
    Ok((digits, conversation))
}

/// The reopening template of a conversation.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ReactivationView {
    /// Our message id of the template (`<dispatch>:<row>`).
    pub message_id: String,
    pub dispatch_id: String,
    pub template: String,
    pub language: String,
    /// Quick-reply button indexes that count as yes.
    pub accept_buttons: Vec<u8>,
    pub sent_at: String,
}

/// One customer's conversation.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ConversationView {
    /// The number to send to (E.164).
    #[schema(example = "+5511987654321")]
    pub phone: String,
    /// The customer's WhatsApp id (may lack Brazil's ninth digit).
    pub wa_id: String,
    pub profile_name: Option<String>,
    /// `open`, `expired`, `closed`, `awaiting_reply` or `declined`.
    #[schema(example = "open")]
    pub state: String,
    /// When the 24-hour window ends (or ended).
    pub window_expires_at: Option<String>,
    pub last_inbound_at: Option<String>,
    /// The answer to the last reopening template: `accepted`, `declined`, `replied`,
    /// `opted_out`.
    pub outcome: Option<String>,
    pub reactivation: Option<ReactivationView>,
    pub created_at: String,
    pub updated_at: String,
}

impl ConversationView {
    fn of(conversation: &Conversation, now: chrono::DateTime<chrono::Utc>) -> Self {
        Self {
            phone: e164_for_wa_id(&conversation.wa_id),
            wa_id: conversation.wa_id.clone(),
            profile_name: conversation.profile_name.clone(),
            state: conversation.state_at(now).as_str().to_owned(),
            window_expires_at: conversation.window_expires_at.clone(),
            last_inbound_at: conversation.last_inbound_at.clone(),
            outcome: conversation.outcome.map(|o| o.as_str().to_owned()),
            reactivation: conversation
                .reactivation
                .as_ref()
                .map(|r| ReactivationView {
                    dispatch_id: r
                        .message_id
                        .parse::<MessageId>()
                        .map(|id| id.dispatch_id)
                        .unwrap_or_default(),
                    message_id: r.message_id.clone(),
                    template: r.template.clone(),
                    language: r.language.clone(),
                    accept_buttons: r.accept_buttons.clone(),
                    sent_at: r.sent_at.clone(),
                }),
            created_at: conversation.created_at.clone(),
            updated_at: conversation.updated_at.clone(),
        }
    }
}

/// One message of a conversation.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ConversationMessageView {
    /// `in` (from the customer) or `out` (from us).
    pub direction: String,
    /// `text`, `button`, `template`, `image`…
    pub kind: String,
    pub text: String,
    /// WhatsApp's id, or for a template not sent yet, ours.
    pub wamid: String,
    pub at: String,
    pub message_id: Option<String>,
    /// What an inbound message counted as: `accepted`, `declined`, `opted_out`, `replied`,
    /// `message`.
    pub answer: Option<String>,
}

impl From<ConversationMessage> for ConversationMessageView {
    fn from(m: ConversationMessage) -> Self {
        Self {
            direction: m.direction,
            kind: m.kind,
            text: m.text,
            wamid: m.wamid,
            at: m.at,
            message_id: m.message_id,
            answer: m.answer,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ConversationDetail {
    #[serde(flatten)]
    pub conversation: ConversationView,
    /// The latest messages, newest first.
    pub messages: Vec<ConversationMessageView>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ConversationPage {
    pub conversations: Vec<ConversationView>,
    /// Pass as `cursor` for the next page; absent on the last.
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ConversationQuery {
    /// `open` (default: soonest to expire first), `expired`, `closed`, `awaiting_reply`,
    /// `declined` (most recent first).
    pub state: Option<String>,
    pub cursor: Option<String>,
    /// 1 to 100; default 50.
    pub limit: Option<usize>,
}

/// Conversations in one state.
#[utoipa::path(
    get,
    path = "/v1/conversations",
    tag = "conversations",
    params(ConversationQuery),
    responses(
        (status = 200, description = "One page", body = ConversationPage),
        (status = 400, description = "Unknown state or cursor", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No or wrong API key", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
pub async fn list_conversations(
    State(ctx): State<SharedContext>,
    ApiQuery(query): ApiQuery<ConversationQuery>,
) -> Result<ApiJson<ConversationPage>, ApiError> {
    let state = match query.state.as_deref().map(str::trim) {
        None | Some("") => ConversationState::Open,
        Some(text) => text
            .parse::<ConversationState>()
            .map_err(|why| Problem::bad_request("invalid-state", why))?,
    };
    let list = format!("conversations:{state}");
    let after = query
        .cursor
        .as_deref()
        .map(|c| cursor::decode_list(&list, c))
        .transpose()?;
    let limit = query.limit.unwrap_or(DEFAULT_PAGE).clamp(1, MAX_PAGE);
    let now = ctx.clock.now();
    let page = ctx
        .store
        .list_conversations(state, now, after.as_deref(), limit)
        .await?;
    Ok(ApiJson(ConversationPage {
        conversations: page
            .items
            .iter()
            .map(|c| ConversationView::of(c, now))
            .collect(),
        next_cursor: page.next.map(|p| cursor::encode_list(&list, &p)),
    }))
}

/// One conversation, with its latest messages.
#[utoipa::path(
    get,
    path = "/v1/conversations/{phone}",
    tag = "conversations",
    params(("phone" = String, Path, description = "The customer's number or wa_id, digits with or without `+`")),
    responses(
        (status = 200, description = "The conversation", body = ConversationDetail),
        (status = 401, description = "No or wrong API key", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No conversation with that number", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
pub async fn get_conversation(
    State(ctx): State<SharedContext>,
    ApiPath(phone): ApiPath<String>,
) -> Result<ApiJson<ConversationDetail>, ApiError> {
    let (_, conversation) = load(&ctx, &phone).await?;
    let messages = ctx
        .store
        .recent_conversation_messages(&conversation.key, RECENT_MESSAGES)
        .await?;
    Ok(ApiJson(ConversationDetail {
        conversation: ConversationView::of(&conversation, ctx.clock.now()),
        messages: messages.into_iter().map(Into::into).collect(),
    }))
}

/// Finishes a conversation (the operator is done with it). Writing again reopens it.
#[utoipa::path(
    post,
    path = "/v1/conversations/{phone}/close",
    tag = "conversations",
    params(("phone" = String, Path, description = "The customer's number or wa_id")),
    responses(
        (status = 200, description = "Now closed", body = ConversationView),
        (status = 401, description = "No or wrong API key", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No conversation with that number", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
pub async fn close_conversation(
    State(ctx): State<SharedContext>,
    ApiPath(phone): ApiPath<String>,
) -> Result<ApiJson<ConversationView>, ApiError> {
    let (digits, _) = load(&ctx, &phone).await?;
    let now = ctx.clock.now();
    let (conversation, ()) = ctx
        .store
        .modify_conversation(&digits, now, false, Conversation::close)
        .await?
        .ok_or_else(|| no_such_conversation(&phone))?;
    Ok(ApiJson(ConversationView::of(&conversation, now)))
}

/// A free-form text message.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TextRequest {
    /// At most 4,096 characters.
    #[schema(example = "Olá Maria, como posso ajudar?")]
    pub text: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SentText {
    /// WhatsApp's id of the message.
    pub wamid: String,
    pub conversation: ConversationView,
}

fn window_expired(state: ConversationState) -> Problem {
    Problem::conflict(
        "conversation-window-expired",
        format!(
            "the conversation is {state}: outside the customer's 24-hour window only a template \
             may be sent — reopen it with POST /v1/conversations/{{phone}}/reactivate, and \
             write when the customer answers"
        ),
    )
}

/// Sends a free-form text, only inside the customer's 24-hour window.
#[utoipa::path(
    post,
    path = "/v1/conversations/{phone}/messages",
    tag = "conversations",
    params(("phone" = String, Path, description = "The customer's number or wa_id")),
    request_body = TextRequest,
    responses(
        (status = 200, description = "Accepted by WhatsApp", body = SentText),
        (status = 401, description = "No or wrong API key", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No conversation with that number", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The window expired (or the conversation is closed, declined or awaiting a reply): a template must reopen it", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Empty or too long, or refused by WhatsApp", body = Problem, content_type = "application/problem+json"),
        (status = 502, description = "WhatsApp unavailable", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
pub async fn send_text(
    State(ctx): State<SharedContext>,
    ApiPath(phone): ApiPath<String>,
    ApiJson(request): ApiJson<TextRequest>,
) -> Result<ApiJson<SentText>, ApiError> {
    let text = request.text.trim();
    if text.is_empty() || text.chars().count() > MAX_TEXT_CHARS {
        return Err(Problem::unprocessable(
            "invalid-text",
            format!("text must be 1 to {MAX_TEXT_CHARS} characters"),
        )
        .into());
    }
    let (_, conversation) = load(&ctx, &phone).await?;
    let now = ctx.clock.now();
    if !conversation.may_send_free_form(now) {
        return Err(window_expired(conversation.state_at(now)).into());
    }
    let payload = text_message(&conversation.wa_id, text);
    let accepted = match ctx.cloud.send(&payload).await {
        Ok(accepted) => accepted,
        // WhatsApp's own clock says the window passed (its view wins).
        Err(e) if e.code() == Some(131047) => {
            return Err(window_expired(ConversationState::Expired).into());
        }
        Err(e) => {
            let retryable = e.is_retryable();
            tracing::warn!(error = %e, retryable, "free-form text not sent");
            let problem = if retryable || e.code().is_none() {
                Problem::new(
                    StatusCode::BAD_GATEWAY,
                    "whatsapp-unavailable",
                    "WhatsApp is unavailable",
                    format!(
                        "WhatsApp did not take the message ({}); try again",
                        e.detail()
                    ),
                )
            } else {
                Problem::unprocessable(
                    "whatsapp-refused",
                    format!("WhatsApp refused the message: {}", e.detail()),
                )
            };
            return Err(problem.into());
        }
    };
    ctx.store
        .record_conversation_message(
            &conversation.key,
            &ConversationMessage {
                direction: "out".to_owned(),
                kind: "text".to_owned(),
                text: text.to_owned(),
                wamid: accepted.wamid.clone(),
                at: rfc3339(now),
                message_id: None,
                answer: None,
            },
        )
        .await?;
    Ok(ApiJson(SentText {
        wamid: accepted.wamid,
        conversation: ConversationView::of(&conversation, now),
    }))
}

/// A template to reopen an expired or closed conversation.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReactivateRequest {
    #[schema(example = "boas_vindas")]
    pub template: String,
    #[schema(example = "pt_BR")]
    pub language: String,
    /// The template's variables, as for one recipient of `POST /v1/dispatches`.
    #[schema(value_type = Object)]
    pub variables: Option<Value>,
    /// Quick-reply button indexes whose tap counts as yes; default the first quick-reply
    /// button.
    pub accept_buttons: Option<Vec<u8>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Reactivated {
    pub dispatch_id: String,
    /// Our id of the template message; its quick-reply payloads carry it.
    pub message_id: String,
    pub accept_buttons: Vec<u8>,
    pub conversation: ConversationView,
}

/// Sends a template to an expired or closed conversation (a one-message dispatch through the
/// normal send path) and moves it to `awaiting_reply`.
#[utoipa::path(
    post,
    path = "/v1/conversations/{phone}/reactivate",
    tag = "conversations",
    params(("phone" = String, Path, description = "The customer's number or wa_id")),
    request_body = ReactivateRequest,
    responses(
        (status = 202, description = "Queued; the conversation awaits the customer's answer", body = Reactivated),
        (status = 401, description = "No or wrong API key", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No conversation, or no such template", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The conversation is open, awaiting a reply or declined", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Variables or accept_buttons do not fit the template", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
pub async fn reactivate(
    State(ctx): State<SharedContext>,
    ApiPath(phone): ApiPath<String>,
    ApiJson(request): ApiJson<ReactivateRequest>,
) -> Result<Response, ApiError> {
    let (digits, conversation) = load(&ctx, &phone).await?;
    let now = ctx.clock.now();
    if !conversation.may_reactivate(now) {
        let state = conversation.state_at(now);
        return Err(Problem::conflict(
            "conversation-not-reactivatable",
            format!(
                "the conversation is {state}; only an expired or closed conversation is reopened \
                 with a template{}",
                match state {
                    ConversationState::Open => " — write to the customer directly",
                    ConversationState::AwaitingReply => " — one is already waiting for an answer",
                    _ => "",
                }
            ),
        )
        .into());
    }
    let template = ctx
        .template(&request.template, Some(&request.language))
        .await?;
    let quick_replies: Vec<u8> = template
        .buttons
        .iter()
        .filter(|b| b.kind == ButtonKind::QuickReply)
        .map(|b| b.index)
        .collect();
    let accept_buttons = match &request.accept_buttons {
        None => default_accept_buttons(&quick_replies),
        Some(chosen) => {
            if chosen.is_empty() || chosen.iter().any(|i| !quick_replies.contains(i)) {
                return Err(Problem::unprocessable(
                    "invalid-accept-buttons",
                    format!(
                        "accept_buttons must name quick-reply buttons of {:?}; its quick-reply \
                         buttons are {quick_replies:?}",
                        template.name
                    ),
                )
                .into());
            }
            chosen.clone()
        }
    };
    // Derived from the conversation's version: a retried request while nothing changed makes
    // the same dispatch (sent once), and one after the change finds it awaiting a reply.
    let key = format!("reactivate:{}:{}", conversation.key, conversation.version);
    let send = SendRequest {
        template: template.name.clone(),
        language: template.language.clone(),
        recipients: vec![RecipientInput {
            phone: Value::String(e164_for_wa_id(&conversation.wa_id)),
            variables: request.variables,
        }],
        send_at: None,
    };
    let dispatch = match submit(&ctx, &send, Some(key)).await? {
        Submitted::Accepted { dispatch, .. } | Submitted::Replayed { dispatch, .. } => dispatch,
    };
    let message_id = MessageId::new(dispatch.id.clone(), 1).to_string();
    let reactivation = Reactivation {
        message_id: message_id.clone(),
        template: template.name.clone(),
        language: template.language.clone(),
        accept_buttons: accept_buttons.clone(),
        sent_at: rfc3339(now),
    };
    let (updated, moved) = ctx
        .store
        .modify_conversation(&digits, now, false, |c| {
            let allowed = c.may_reactivate(now);
            if allowed {
                c.await_reply(reactivation.clone());
            }
            allowed
        })
        .await?
        .ok_or_else(|| no_such_conversation(&phone))?;
    if !moved {
        // Answered or reopened between our read and the send being queued: the template goes
        // out anyway (it is queued), and the conversation keeps its newer state.
        tracing::warn!(dispatch_id = %dispatch.id, "conversation changed while it was reactivated");
    }
    ctx.store
        .record_conversation_message(
            &updated.key,
            &ConversationMessage {
                direction: "out".to_owned(),
                kind: "template".to_owned(),
                text: template.name.clone(),
                wamid: message_id.clone(),
                at: rfc3339(now),
                message_id: Some(message_id.clone()),
                answer: None,
            },
        )
        .await?;
    Ok((
        StatusCode::ACCEPTED,
        ApiJson(Reactivated {
            dispatch_id: dispatch.id,
            message_id,
            accept_buttons,
            conversation: ConversationView::of(&updated, now),
        }),
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phones_in_paths() {
        assert_eq!(
            phone_digits("+5511987654321").as_deref(),
            Some("5511987654321")
        );
        assert_eq!(
            phone_digits("553187654321").as_deref(),
            Some("553187654321")
        );
        for bad in ["", "abc", "+55", "5511987654321x", "1234567890123456"] {
            assert_eq!(phone_digits(bad), None, "{bad:?}");
        }
    }
}
