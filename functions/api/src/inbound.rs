//! What an inbound message from a webhook does: opens or refreshes its conversation's window,
//! answers a reopening template (a tap on an accepting button starts the conversation, another
//! button declines it, text only replies), puts opt-outs on the suppression list, and records
//! the events the attendance side listens for.
//!
//! Redelivered webhooks change nothing: the inbound message itself is recorded last, as the
//! mark that everything before it is done, and is looked for first. An event is stored under
//! an id derived from the inbound message and published on every attempt that gets that far,
//! so a failure to publish is retried by Meta's redelivery (consumers deduplicate by id).

use anna_shared::aws::conversations::ConversationMessage;
use anna_shared::domain::conversation::{
    Answer, ConversationEvent, ConversationState, InboundContent, InboundMessage, classify,
    default_accept_buttons, rfc3339,
};
use anna_shared::domain::message::MessageId;
use anna_shared::domain::phone::{mask_phone, match_key};
use anna_shared::domain::template::ButtonKind;
use anna_shared::events::PublishError;
use anna_shared::ports::{MessageStore, OptOut, OptOutStore, StoreError};
use anna_shared::whatsapp::client::SendError;
use anna_shared::whatsapp::payload::parse_button_payload;
use tracing::{debug, info};

use crate::context::ApiContext;

#[derive(Debug, thiserror::Error)]
pub enum InboundError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Publish(#[from] PublishError),
    /// The template of a tapped message could not be read to tell which button means yes.
    #[error("reading the tapped message's template: {0}")]
    Template(#[from] SendError),
}

impl anna_shared::error::Retryable for InboundError {
    fn is_retryable(&self) -> bool {
        match self {
            Self::Store(e) => e.is_retryable(),
            Self::Publish(e) => e.is_retryable(),
            Self::Template(e) => e.is_retryable(),
        }
    }
}

/// What one inbound message did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InboundApplied {
    Recorded {
        answer: Answer,
        state: ConversationState,
    },
    /// Seen before: nothing changed.
    Duplicate,
}

/// The tapped button, when the tap is on one of our messages to this same customer:
/// `(message id, button index)`.
async fn our_tap(
    ctx: &ApiContext,
    key: &str,
    content: &InboundContent,
) -> Result<Option<(MessageId, u8)>, StoreError> {
    let InboundContent::Button { payload, .. } = content else {
        return Ok(None);
    };
    let Some((callback, index)) = parse_button_payload(payload) else {
        return Ok(None);
    };
    let Ok(id) = callback.parse::<MessageId>() else {
        return Ok(None);
    };
    let Some(message) = ctx.store.get_message(&id).await? else {
        return Ok(None);
    };
    let to_this_customer = [message.wa_id.as_deref(), message.phone.as_deref()]
        .into_iter()
        .flatten()
        .any(|number| match_key(number) == key);
    Ok(to_this_customer.then_some((id, index)))
}

/// Whether a tap on button `index` of message `id` counts as yes: the buttons the reopening
/// template named, or for any other template its first quick-reply button.
async fn tap_accepts(
    ctx: &ApiContext,
    key: &str,
    id: &MessageId,
    index: u8,
) -> Result<bool, InboundError> {
    let text_id = id.to_string();
    if let Some(conversation) = ctx.store.get_conversation(key).await?
        && let Some(reactivation) = &conversation.reactivation
        && reactivation.message_id == text_id
    {
        return Ok(reactivation.accept_buttons.contains(&index));
    }
    let Some(message) = ctx.store.get_message(id).await? else {
        return Ok(false);
    };
    let Some(template) = ctx
        .templates
        .get(&message.template, &message.language)
        .await?
    else {
        return Ok(false);
    };
    let quick_replies: Vec<u8> = template
        .buttons
        .iter()
        .filter(|b| b.kind == ButtonKind::QuickReply)
        .map(|b| b.index)
        .collect();
    Ok(default_accept_buttons(&quick_replies).contains(&index))
}

pub async fn apply_inbound(
    ctx: &ApiContext,
    inbound: &InboundMessage,
) -> Result<InboundApplied, InboundError> {
    let key = match_key(&inbound.from);
    let at = rfc3339(inbound.at);
    if ctx
        .store
        .has_conversation_message(&key, &at, &inbound.wamid)
        .await?
    {
        debug!(wamid = %inbound.wamid, "inbound message seen before");
        return Ok(InboundApplied::Duplicate);
    }
    let tap = our_tap(ctx, &key, &inbound.content).await?;
    let accepts = match &tap {
        Some((id, index)) => Some(tap_accepts(ctx, &key, id, *index).await?),
        None => None,
    };
    let answer = classify(&inbound.content, &ctx.opt_out, accepts);
    let now = ctx.clock.now();
    let (conversation, (event_kind, was_awaiting)) = ctx
        .store
        .modify_conversation(&inbound.from, now, true, |conversation| {
            conversation.wa_id = inbound.from.clone();
            if inbound.profile_name.is_some() {
                conversation.profile_name = inbound.profile_name.clone();
            }
            let was_awaiting = conversation.stored_state == ConversationState::AwaitingReply;
            (conversation.apply(answer, inbound.at), was_awaiting)
        })
        .await?
        .ok_or_else(|| StoreError::Rejected("conversation vanished while created".to_owned()))?;

    if answer == Answer::OptOut {
        let source = match inbound.content {
            InboundContent::Text { .. } => "keyword",
            _ => "button",
        };
        let added = ctx
            .store
            .add_opt_out(&OptOut {
                key: key.clone(),
                phone: inbound.from.clone(),
                source: source.to_owned(),
                detail: Some(inbound.content.summary()),
                created_at: at.clone(),
            })
            .await?;
        info!(phone = %mask_phone(&inbound.from), added, "customer opted out");
    }

    let tapped_message = tap.as_ref().map(|(id, _)| id.to_string());
    if let Some(kind) = event_kind {
        let event = ConversationEvent {
            id: ConversationEvent::id_for(&inbound.wamid),
            kind,
            wa_id: inbound.from.clone(),
            conversation: key.clone(),
            at: at.clone(),
            message_id: tapped_message.clone(),
            button: tap.as_ref().map(|(_, index)| *index),
            text: Some(inbound.content.summary()),
        };
        ctx.store.record_event(&event).await?;
        ctx.events.publish(&event).await?;
        info!(event = kind.as_str(), phone = %mask_phone(&inbound.from), "conversation event");
    }

    let answer_text = match answer {
        Answer::Accept => "accepted",
        Answer::Decline => "declined",
        Answer::OptOut => "opted_out",
        Answer::Message if was_awaiting => "replied",
        Answer::Message => "message",
    };
    ctx.store
        .record_conversation_message(
            &key,
            &ConversationMessage {
                direction: "in".to_owned(),
                kind: inbound.content.kind().to_owned(),
                text: inbound.content.summary(),
                wamid: inbound.wamid.clone(),
                at,
                message_id: tapped_message,
                answer: Some(answer_text.to_owned()),
            },
        )
        .await?;
    Ok(InboundApplied::Recorded {
        answer,
        state: conversation.state_at(now),
    })
}
