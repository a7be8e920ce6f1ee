//! The opt-out (suppression) list and the conversation events feed.

use anna_shared::domain::conversation::{ConversationEvent, ConversationEventKind};
use anna_shared::domain::phone::{PhoneNumber, match_key};
use anna_shared::ports::{OptOut, OptOutStore};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::context::SharedContext;
use crate::cursor;
use crate::problem::{ApiError, ApiJson, ApiPath, ApiQuery, Problem};

const DEFAULT_PAGE: usize = 50;
const MAX_PAGE: usize = 100;
const OPT_OUT_LIST: &str = "opt-outs";
const EVENT_LIST: &str = "events";

/// A number later sends skip.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct OptOutView {
    /// The number as given or seen (E.164 or a wa_id).
    pub phone: String,
    /// `keyword`, `button`, `whatsapp_131050` or `operator`.
    pub source: String,
    pub detail: Option<String>,
    pub created_at: String,
}

impl From<OptOut> for OptOutView {
    fn from(o: OptOut) -> Self {
        Self {
            phone: o.phone,
            source: o.source,
            detail: o.detail,
            created_at: o.created_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OptOutPage {
    pub opt_outs: Vec<OptOutView>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    pub cursor: Option<String>,
    /// 1 to 100; default 50.
    pub limit: Option<usize>,
}

/// The suppression list, newest first.
#[utoipa::path(
    get,
    path = "/v1/opt-outs",
    tag = "opt-outs",
    params(PageQuery),
    responses(
        (status = 200, description = "One page", body = OptOutPage),
        (status = 400, description = "Invalid cursor", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No or wrong API key", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
pub async fn list_opt_outs(
    State(ctx): State<SharedContext>,
    ApiQuery(query): ApiQuery<PageQuery>,
) -> Result<ApiJson<OptOutPage>, ApiError> {
    let after = query
        .cursor
        .as_deref()
        .map(|c| cursor::decode_list(OPT_OUT_LIST, c))
        .transpose()?;
    let limit = query.limit.unwrap_or(DEFAULT_PAGE).clamp(1, MAX_PAGE);
    let page = ctx.store.list_opt_outs(after.as_deref(), limit).await?;
    Ok(ApiJson(OptOutPage {
        opt_outs: page.items.into_iter().map(Into::into).collect(),
        next_cursor: page.next.map(|p| cursor::encode_list(OPT_OUT_LIST, &p)),
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OptOutRequest {
    /// E.164 or as written locally (region from ANNA_DEFAULT_REGION).
    #[schema(example = "+5511987654321")]
    pub phone: String,
    /// Why, for the record.
    pub note: Option<String>,
}

/// Puts a number on the suppression list.
#[utoipa::path(
    post,
    path = "/v1/opt-outs",
    tag = "opt-outs",
    request_body = OptOutRequest,
    responses(
        (status = 201, description = "Added", body = OptOutView),
        (status = 200, description = "It was on the list already; the first entry stands", body = OptOutView),
        (status = 401, description = "No or wrong API key", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Not a phone number", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
pub async fn add_opt_out(
    State(ctx): State<SharedContext>,
    ApiJson(request): ApiJson<OptOutRequest>,
) -> Result<Response, ApiError> {
    let phone = PhoneNumber::parse(&request.phone, &ctx.intake.intake.region)
        .map_err(|e| Problem::unprocessable("invalid-phone", e.to_string()))?;
    let opt_out = OptOut {
        key: match_key(phone.e164()),
        phone: phone.e164().to_owned(),
        source: "operator".to_owned(),
        detail: request.note.map(|n| n.chars().take(500).collect()),
        created_at: anna_shared::aws::dynamo::now_rfc3339(),
    };
    let added = ctx.store.add_opt_out(&opt_out).await?;
    let stored = if added {
        opt_out
    } else {
        ctx.store
            .get_opt_out(phone.e164())
            .await?
            .unwrap_or(opt_out)
    };
    let status = if added {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, ApiJson(OptOutView::from(stored))).into_response())
}

/// Takes a number off the suppression list: later sends reach it again.
#[utoipa::path(
    delete,
    path = "/v1/opt-outs/{phone}",
    tag = "opt-outs",
    params(("phone" = String, Path, description = "The number, E.164 or digits")),
    responses(
        (status = 204, description = "Removed"),
        (status = 401, description = "No or wrong API key", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Not on the list", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
pub async fn remove_opt_out(
    State(ctx): State<SharedContext>,
    ApiPath(phone): ApiPath<String>,
) -> Result<Response, ApiError> {
    if ctx.store.remove_opt_out(&phone).await? {
        Ok(StatusCode::NO_CONTENT.into_response())
    } else {
        Err(Problem::not_found(
            "not-opted-out",
            "that number is not on the opt-out list; GET /v1/opt-outs lists it",
        )
        .into())
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EventView {
    /// Stable per inbound message: deduplicate by it.
    pub id: String,
    /// `conversation.started` or `conversation.declined`.
    #[serde(rename = "type")]
    pub kind: String,
    pub wa_id: String,
    pub at: String,
    /// The template message the customer answered.
    pub message_id: Option<String>,
    pub button: Option<u8>,
    pub text: Option<String>,
}

impl From<ConversationEvent> for EventView {
    fn from(e: ConversationEvent) -> Self {
        Self {
            id: e.id,
            kind: e.kind.as_str().to_owned(),
            wa_id: e.wa_id,
            at: e.at,
            message_id: e.message_id,
            button: e.button,
            text: e.text,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EventPage {
    pub events: Vec<EventView>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventQuery {
    /// `conversation.started` or `conversation.declined`; both when left out.
    #[serde(rename = "type")]
    #[param(rename = "type")]
    pub kind: Option<String>,
    pub cursor: Option<String>,
    /// 1 to 100; default 50.
    pub limit: Option<usize>,
}

/// Conversation events, newest first (on AWS also published to EventBridge when a bus is
/// configured).
#[utoipa::path(
    get,
    path = "/v1/events",
    tag = "conversations",
    params(EventQuery),
    responses(
        (status = 200, description = "One page", body = EventPage),
        (status = 400, description = "Unknown type or invalid cursor", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No or wrong API key", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
pub async fn list_events(
    State(ctx): State<SharedContext>,
    ApiQuery(query): ApiQuery<EventQuery>,
) -> Result<ApiJson<EventPage>, ApiError> {
    let kinds: Vec<ConversationEventKind> = match query.kind.as_deref().map(str::trim) {
        None | Some("") => ConversationEventKind::ALL.to_vec(),
        Some(text) => vec![
            text.parse()
                .map_err(|why: String| Problem::bad_request("invalid-event-type", why))?,
        ],
    };
    let list = format!(
        "{EVENT_LIST}:{}",
        kinds
            .iter()
            .map(|k| k.as_str())
            .collect::<Vec<_>>()
            .join(",")
    );
    let after = query
        .cursor
        .as_deref()
        .map(|c| cursor::decode_list(&list, c))
        .transpose()?;
    let limit = query.limit.unwrap_or(DEFAULT_PAGE).clamp(1, MAX_PAGE);
    let page = ctx
        .store
        .list_events(&kinds, after.as_deref(), limit)
        .await?;
    Ok(ApiJson(EventPage {
        events: page.items.into_iter().map(Into::into).collect(),
        next_cursor: page.next.map(|p| cursor::encode_list(&list, &p)),
    }))
}
