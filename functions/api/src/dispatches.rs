//! Dispatches: sending to a list, status and progress, messages, results spreadsheets,
//! cancelling.

use std::collections::HashMap;
use std::time::Duration;

use anna_shared::aws::dynamo::now_rfc3339;
use anna_shared::domain::dispatch::{
    Dispatch, DispatchSource, DispatchState, dispatch_id_for_idempotency_key, random_dispatch_id,
};
use anna_shared::domain::intake::{Intake, RejectReason, RejectedRow};
use anna_shared::domain::message::{MessageRecord, MessageStatus};
use anna_shared::intake_pipeline::{Delivery, HeaderRow, Plan, check_rows, record_rows};
use anna_shared::ports::{Created, DispatchStore, ScheduleStore, WriteMode};
use anna_shared::schedule::{Cancelled, cancel, skip_all_queued};
use anna_shared::sheet::SheetRow;
use aws_sdk_s3::presigning::PresigningConfig;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use utoipa::{IntoParams, ToSchema};

use crate::context::{ApiContext, SharedContext};
use crate::cursor;
use crate::problem::{ApiError, ApiJson, ApiPath, ApiQuery, Problem, ProblemItem};
use crate::recipients::{column_values, row_cells, text_of};
use crate::sheets::{SheetFormat, SheetWriter};
use crate::templates::attachment;

/// Problems listed one by one in a 422 before the list is cut short.
const MAX_LISTED_PROBLEMS: usize = 50;
const IDEMPOTENCY_HEADER: &str = "idempotency-key";
/// Messages per page of `GET /v1/dispatches/{id}/messages`.
const DEFAULT_MESSAGE_PAGE: usize = 100;
const MAX_MESSAGE_PAGE: usize = 500;
const DEFAULT_DISPATCH_PAGE: u32 = 20;
const MAX_DISPATCH_PAGE: u32 = 100;
/// Messages taken from the store at a time while a report is written.
const REPORT_CHUNK: usize = 1_000;

/// Dispatch ids as this system makes them (`d-` and hex), or anything of that alphabet.
pub fn is_dispatch_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn no_such_dispatch(id: &str) -> Problem {
    Problem::not_found(
        "no-such-dispatch",
        format!(
            "there is no dispatch {id:?}; GET /v1/dispatches lists the recent ones (a \
             spreadsheet uploaded through POST /v1/uploads becomes its dispatch within seconds \
             of the upload)"
        ),
    )
}

async fn load(ctx: &ApiContext, id: &str) -> Result<Dispatch, ApiError> {
    if !is_dispatch_id(id) {
        return Err(no_such_dispatch(id).into());
    }
    ctx.store
        .get_dispatch(id)
        .await?
        .ok_or_else(|| no_such_dispatch(id).into())
}

// ---------------------------------------------------------------------------------------------
// Sending

/// A request to send one template to a list of recipients.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SendRequest {
    /// The template's name.
    #[schema(example = "boas_vindas")]
    pub template: String,
    /// The template's language.
    #[schema(example = "pt_BR")]
    pub language: String,
    pub recipients: Vec<RecipientInput>,
    /// When to start sending (RFC 3339, e.g. `2026-12-24T09:00:00-03:00`). Left out, or in the
    /// past: at once. At most 30 days ahead.
    pub send_at: Option<String>,
}

/// One recipient: a phone number and the values of the template's variables.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RecipientInput {
    /// The phone number, E.164 or as written locally (`(11) 98765-4321`, region BR).
    #[schema(value_type = String, example = "+5511987654321")]
    pub phone: Value,
    /// A list of values in the template's `columns` order, or an object keyed by column
    /// (`{"nome": "Maria"}`; positional: `{"1": "Maria"}`, `{"header 1": "Loja"}`).
    #[schema(value_type = Object)]
    pub variables: Option<Value>,
}

/// A recipient that will not be sent to, and why.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RejectedRecipient {
    /// Its position in `recipients` (0-based).
    pub index: usize,
    /// The phone as given.
    pub phone: String,
    /// `invalid_phone`, `missing_variable`, `value_too_long`, `invalid_characters`,
    /// `duplicate`, `invalid_link`.
    pub reason_code: String,
    pub reason: String,
}

impl RejectedRecipient {
    fn of(row: &RejectedRow) -> Self {
        Self {
            index: row.row.saturating_sub(1) as usize,
            phone: row.phone_input.clone(),
            reason_code: row.reason.code().to_owned(),
            reason: match row.reason {
                // "row 3" means nothing to an API client: name the other recipient's index.
                RejectReason::DuplicatePhone { first_row } => format!(
                    "the phone number is the same as that of recipient index {}",
                    first_row.saturating_sub(1)
                ),
                ref other => other.to_string(),
            },
        }
    }
}

/// Where to follow a dispatch.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Links {
    #[serde(rename = "self")]
    pub this: String,
    pub messages: String,
    pub report_xlsx: String,
    pub report_csv: String,
    pub cancel: String,
}

impl Links {
    pub fn of(id: &str) -> Self {
        let base = format!("/v1/dispatches/{id}");
        Self {
            messages: format!("{base}/messages"),
            report_xlsx: format!("{base}/report?format=xlsx"),
            report_csv: format!("{base}/report?format=csv"),
            cancel: format!("{base}/cancel"),
            this: base,
        }
    }
}

/// The answer to a send request: the dispatch made, what it accepted and what it rejected.
#[derive(Debug, Serialize, ToSchema)]
pub struct AcceptedDispatch {
    pub id: String,
    /// `sending`, or `scheduled` until `send_at`.
    pub state: String,
    pub template: String,
    pub language: String,
    pub send_at: Option<String>,
    /// Recipients that will be sent to.
    pub accepted: u32,
    /// Every recipient that will not, with the reason.
    pub rejected: Vec<RejectedRecipient>,
    pub links: Links,
}

fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get(IDEMPOTENCY_HEADER) else {
        return Ok(None);
    };
    let key = value.to_str().map(str::trim).unwrap_or_default();
    if key.is_empty() || key.len() > 255 || !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(Problem::bad_request(
            "invalid-idempotency-key",
            "Idempotency-Key must be 1 to 255 visible ASCII characters (a UUID is a good choice)",
        )
        .into());
    }
    Ok(Some(key.to_owned()))
}

/// `send_at` as RFC 3339 UTC with milliseconds, when it is in the future.
fn scheduled_at(
    send_at: Option<&str>,
    now: DateTime<Utc>,
    max_ahead: Duration,
) -> Result<Option<String>, ApiError> {
    let Some(text) = send_at.map(str::trim).filter(|t| !t.is_empty()) else {
        return Ok(None);
    };
    let at = DateTime::parse_from_rfc3339(text)
        .map_err(|e| {
            Problem::unprocessable(
                "invalid-send-at",
                format!(
                    "send_at {text:?} is not an RFC 3339 time ({e}); write it like \
                     2026-12-24T09:00:00-03:00"
                ),
            )
        })?
        .with_timezone(&Utc);
    if at <= now {
        return Ok(None);
    }
    let limit = now + chrono::Duration::from_std(max_ahead).unwrap_or(chrono::Duration::days(30));
    if at > limit {
        return Err(Problem::unprocessable(
            "invalid-send-at",
            format!(
                "send_at {text:?} is more than {} days ahead; schedule it closer to the date",
                max_ahead.as_secs() / 86_400
            ),
        )
        .into());
    }
    Ok(Some(at.to_rfc3339_opts(SecondsFormat::Millis, true)))
}

/// The request as rows, or a 422 naming every recipient that is malformed.
fn rows_of(
    request: &SendRequest,
    template: &anna_shared::domain::template::Template,
) -> Result<Vec<SheetRow>, ApiError> {
    let mut rows = Vec::with_capacity(request.recipients.len());
    let mut errors: Vec<ProblemItem> = Vec::new();
    let mut count = 0_usize;
    for (index, recipient) in request.recipients.iter().enumerate() {
        let phone = text_of(&recipient.phone);
        if phone.is_none() {
            count += 1;
            errors.push(ProblemItem {
                pointer: format!("/recipients/{index}/phone"),
                detail: "the phone must be text (or a number)".to_owned(),
            });
        }
        let (values, problems) = column_values(template, recipient.variables.as_ref());
        if !problems.is_empty() {
            let items = problems.items(&format!("/recipients/{index}/variables"), template);
            count += items.len();
            errors.extend(items);
        }
        let number = u32::try_from(index + 1).unwrap_or(u32::MAX);
        rows.push(SheetRow {
            number,
            cells: row_cells(&phone.unwrap_or_default(), values),
        });
    }
    if errors.is_empty() {
        return Ok(rows);
    }
    let first = errors.first().map(|e| e.detail.clone()).unwrap_or_default();
    errors.truncate(MAX_LISTED_PROBLEMS);
    Err(Problem::unprocessable(
        "invalid-recipients",
        format!(
            "{count} problem(s) in the recipients, e.g. {first}; nothing was sent — fix them \
             and send the request again"
        ),
    )
    .with_errors(errors)
    .into())
}

/// A digest of what the request asks for, independent of how the JSON was written.
fn request_digest(
    template: &str,
    language: &str,
    send_at: Option<&str>,
    rows: &[SheetRow],
) -> String {
    let mut hasher = Sha256::new();
    let mut part = |text: &str| {
        hasher.update((text.len() as u64).to_be_bytes());
        hasher.update(text.as_bytes());
    };
    part(template);
    part(language);
    part(send_at.unwrap_or(""));
    for row in rows {
        part(&row.cells.len().to_string());
        for cell in &row.cells {
            part(cell);
        }
    }
    hex::encode(hasher.finalize())
}

/// Sends a template to a list of recipients — the same intake as a spreadsheet upload.
///
/// Answers 202 at once: recipients are validated, recorded and queued here; sending happens
/// behind it. With `send_at` in the future the dispatch waits in `scheduled`. With an
/// `Idempotency-Key`, the same request sent again (e.g. after a timeout) answers with the
/// dispatch the first one made and sends nothing twice.
#[utoipa::path(
    post,
    path = "/v1/dispatches",
    tag = "dispatches",
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe: the same key and request give the same dispatch")),
    request_body = SendRequest,
    responses(
        (status = 202, description = "Accepted: the dispatch and every rejected recipient", body = AcceptedDispatch,
            headers(("Location" = String, description = "The dispatch"))),
        (status = 400, description = "Malformed JSON or Idempotency-Key", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No or wrong API key", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such template or language", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body too large", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Nothing could be accepted, too many recipients, a template that cannot be sent, or an Idempotency-Key used for another request", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
pub async fn create_dispatch(
    State(ctx): State<SharedContext>,
    headers: HeaderMap,
    ApiJson(request): ApiJson<SendRequest>,
) -> Result<Response, ApiError> {
    let key = idempotency_key(&headers)?;
    Ok(match submit(&ctx, &request, key).await? {
        Submitted::Replayed { dispatch, rejected } => {
            let mut response =
                accepted_response(&dispatch, dispatch.accepted, rejected).into_response();
            response
                .headers_mut()
                .insert("idempotent-replayed", HeaderValue::from_static("true"));
            response
        }
        Submitted::Accepted {
            dispatch,
            accepted,
            rejected,
        } => accepted_response(&dispatch, accepted, rejected).into_response(),
    })
}

/// What [`submit`] made of a send request.
pub(crate) enum Submitted {
    /// The same Idempotency-Key and request were sent before: its dispatch, unchanged.
    Replayed {
        dispatch: Dispatch,
        rejected: Vec<RejectedRecipient>,
    },
    Accepted {
        dispatch: Dispatch,
        accepted: u32,
        rejected: Vec<RejectedRecipient>,
    },
}

/// The one path a send request takes, whoever makes it (`POST /v1/dispatches`, or a
/// conversation's reactivation): validate, record, queue (or hold for `send_at`).
pub(crate) async fn submit(
    ctx: &ApiContext,
    request: &SendRequest,
    key: Option<String>,
) -> Result<Submitted, ApiError> {
    if request.recipients.is_empty() {
        return Err(Problem::unprocessable("no-recipients", "recipients is empty").into());
    }
    let max = ctx.limits.max_recipients;
    if request.recipients.len() > max {
        return Err(Problem::unprocessable(
            "too-many-recipients",
            format!(
                "{} recipients in one request; at most {max} — split the list over several \
                 requests, or upload it as a spreadsheet through POST /v1/uploads",
                request.recipients.len()
            ),
        )
        .into());
    }
    let now = Utc::now();
    let send_at = scheduled_at(
        request.send_at.as_deref(),
        now,
        ctx.limits.max_schedule_ahead,
    )?;
    let template = ctx
        .template(&request.template, Some(&request.language))
        .await?;
    let options = &ctx.intake.intake;
    if let Err(e) = Intake::new(&template, options.clone()) {
        return Err(Problem::unprocessable("template-not-sendable", e.to_string()).into());
    }
    let rows = rows_of(request, &template)?;
    let (accepted, rejected) = check_rows(&template, options, &rows, HeaderRow::Absent)
        .map_err(|reason| Problem::unprocessable("template-not-sendable", reason))?;
    let rejected: Vec<RejectedRecipient> = rejected.iter().map(RejectedRecipient::of).collect();
    if accepted == 0 {
        return Err(Problem::unprocessable(
            "nothing-accepted",
            format!(
                "none of the {} recipients can be sent to; `rejected` says why for each",
                rows.len()
            ),
        )
        .with_rejected(rejected)
        .into());
    }

    let digest = key.as_ref().map(|_| {
        request_digest(
            &template.name,
            &template.language,
            send_at.as_deref(),
            &rows,
        )
    });
    let id = key
        .as_deref()
        .map_or_else(random_dispatch_id, dispatch_id_for_idempotency_key);
    let mut dispatch = Dispatch::new(
        id.clone(),
        template.name.clone(),
        template.language.clone(),
        DispatchSource::Api,
        &now.to_rfc3339_opts(SecondsFormat::Millis, true),
    );
    dispatch.send_at = send_at.clone();
    dispatch.request_digest = digest.clone();

    let mode = match ctx.store.create_dispatch(&dispatch).await? {
        Created::New => WriteMode::Fresh,
        Created::Existing(existing) => {
            if existing.request_digest != digest {
                return Err(Problem::unprocessable(
                    "idempotency-key-reused",
                    "this Idempotency-Key was already used for a different request; use a new \
                     key for a new request",
                )
                .into());
            }
            if existing.state != DispatchState::Intake {
                tracing::info!(dispatch_id = %id, "repeated request; answering with its dispatch");
                return Ok(Submitted::Replayed {
                    dispatch: *existing,
                    rejected,
                });
            }
            // The first attempt stopped half-way: finish what it started.
            WriteMode::KeepExisting
        }
    };

    let plan = Plan {
        mode,
        header: HeaderRow::Absent,
        delivery: if send_at.is_some() {
            Delivery::Hold
        } else {
            Delivery::Enqueue
        },
        keep_rejected: false,
    };
    let rows_total = rows.len();
    let recorded = match record_rows(
        &ctx.store,
        &ctx.queue,
        &dispatch,
        &template,
        options,
        rows.into_iter().map(Ok::<_, std::convert::Infallible>),
        plan,
    )
    .await?
    {
        Ok(recorded) => recorded,
        Err(reason) => {
            ctx.store.fail_dispatch(&id, &reason).await?;
            return Err(Problem::unprocessable("template-not-sendable", reason).into());
        }
    };
    let summary = recorded.summary;
    match &send_at {
        Some(at) => {
            if !ctx.store.finish_intake_scheduled(&id, &summary, at).await? {
                // Cancelled while its rows were being written: nobody will queue them.
                if let Some(current) = ctx.store.get_dispatch(&id).await?
                    && current.state == DispatchState::Cancelled
                {
                    skip_all_queued(&ctx.store, &id).await?;
                }
            }
        }
        None => ctx.store.finish_intake(&id, &summary).await?,
    }
    tracing::info!(
        dispatch_id = %id,
        recipients = rows_total,
        accepted = summary.accepted,
        rejected = summary.rejected,
        scheduled = send_at.is_some(),
        "dispatch accepted"
    );
    let current = ctx.store.get_dispatch(&id).await?.unwrap_or(dispatch);
    Ok(Submitted::Accepted {
        dispatch: current,
        accepted: summary.accepted,
        rejected,
    })
}

fn accepted_response(
    dispatch: &Dispatch,
    accepted: u32,
    rejected: Vec<RejectedRecipient>,
) -> impl IntoResponse + use<> {
    let links = Links::of(&dispatch.id);
    let location = HeaderValue::from_str(&links.this).ok();
    let body = AcceptedDispatch {
        id: dispatch.id.clone(),
        state: dispatch.state.to_string(),
        template: dispatch.template.clone(),
        language: dispatch.language.clone(),
        send_at: dispatch.send_at.clone(),
        accepted,
        rejected,
        links,
    };
    let mut response = (StatusCode::ACCEPTED, ApiJson(body)).into_response();
    if let Some(location) = location {
        response.headers_mut().insert(header::LOCATION, location);
    }
    response
}

// ---------------------------------------------------------------------------------------------
// Status and progress

/// Where a dispatch's rows came from.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SourceView {
    /// `api` or `upload`.
    pub kind: String,
    pub bucket: Option<String>,
    /// The uploaded file's S3 key.
    pub key: Option<String>,
}

impl SourceView {
    fn of(source: &DispatchSource) -> Self {
        match source {
            DispatchSource::Api => Self {
                kind: "api".to_owned(),
                bucket: None,
                key: None,
            },
            DispatchSource::Upload { bucket, key } => Self {
                kind: "upload".to_owned(),
                bucket: Some(bucket.clone()),
                key: Some(key.clone()),
            },
        }
    }
}

/// Messages by status. `queued` counts those not yet settled (queued or being sent).
#[derive(Debug, Clone, Default, Serialize, ToSchema)]
pub struct Totals {
    pub queued: u64,
    pub sent: u64,
    pub delivered: u64,
    pub read: u64,
    pub failed: u64,
    pub skipped: u64,
    pub rejected: u64,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Progress {
    /// Accepted messages that reached a final state (sent, failed or skipped).
    pub settled: u64,
    /// Accepted messages.
    pub total: u64,
    /// settled / total, 0 to 100.
    pub percent: f64,
}

/// A dispatch: its state, where it came from, and how far it got.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DispatchView {
    pub id: String,
    /// `intake`, `scheduled`, `sending`, `paused`, `completed`, `failed` or `cancelled`. A
    /// sending dispatch whose every message has settled reads `completed`.
    pub state: String,
    pub template: String,
    pub language: String,
    pub source: SourceView,
    /// Why it failed or paused.
    pub reason: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    pub send_at: Option<String>,
    /// Data rows read (recipients, for an API dispatch).
    pub rows: u32,
    pub accepted: u32,
    pub rejected: u32,
    pub totals: Totals,
    pub progress: Progress,
    pub links: Links,
}

/// The view of a dispatch from its item and its counters: a few reads whatever its size.
fn dispatch_view(dispatch: &Dispatch, counters: &HashMap<String, i64>) -> DispatchView {
    let count =
        |status: MessageStatus| counters.get(status.as_str()).copied().unwrap_or(0).max(0) as u64;
    let accepted = u64::from(dispatch.accepted);
    let settled =
        (count(MessageStatus::Sent) + count(MessageStatus::Failed) + count(MessageStatus::Skipped))
            .min(accepted);
    let state = match dispatch.state {
        DispatchState::Sending if accepted > 0 && settled >= accepted => DispatchState::Completed,
        other => other,
    };
    let percent = if accepted == 0 {
        if dispatch.state == DispatchState::Intake {
            0.0
        } else {
            100.0
        }
    } else {
        (settled as f64 * 1000.0 / accepted as f64).floor() / 10.0
    };
    DispatchView {
        id: dispatch.id.clone(),
        state: state.to_string(),
        template: dispatch.template.clone(),
        language: dispatch.language.clone(),
        source: SourceView::of(&dispatch.source),
        reason: dispatch.reason.clone(),
        created_at: dispatch.created_at.clone(),
        updated_at: dispatch.updated_at.clone(),
        send_at: dispatch.send_at.clone(),
        rows: dispatch.rows,
        accepted: dispatch.accepted,
        rejected: dispatch.rejected,
        totals: Totals {
            queued: accepted - settled,
            sent: count(MessageStatus::Sent),
            delivered: count(MessageStatus::Delivered),
            read: count(MessageStatus::Read),
            failed: count(MessageStatus::Failed),
            skipped: count(MessageStatus::Skipped),
            rejected: u64::from(dispatch.rejected),
        },
        progress: Progress {
            settled,
            total: accepted,
            percent,
        },
        links: Links::of(&dispatch.id),
    }
}

async fn view_of(ctx: &ApiContext, dispatch: &Dispatch) -> Result<DispatchView, ApiError> {
    let counters = ctx.store.settled_counts(&dispatch.id).await?;
    Ok(dispatch_view(dispatch, &counters))
}

/// A dispatch's state, source, totals by status and progress. Cheap to poll whatever the
/// dispatch's size: it reads the dispatch and its sharded counters, never its messages.
#[utoipa::path(
    get,
    path = "/v1/dispatches/{id}",
    tag = "dispatches",
    params(("id" = String, Path, description = "The dispatch id")),
    responses(
        (status = 200, description = "The dispatch", body = DispatchView),
        (status = 401, description = "No or wrong API key", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such dispatch", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
pub async fn get_dispatch(
    State(ctx): State<SharedContext>,
    ApiPath(id): ApiPath<String>,
) -> Result<ApiJson<DispatchView>, ApiError> {
    let dispatch = load(&ctx, &id).await?;
    Ok(ApiJson(view_of(&ctx, &dispatch).await?))
}

/// A dispatch in a list.
#[derive(Debug, Serialize, ToSchema)]
pub struct DispatchSummary {
    pub id: String,
    /// The stored state (GET the dispatch for progress).
    pub state: String,
    pub template: String,
    pub language: String,
    pub source: SourceView,
    pub created_at: String,
    pub send_at: Option<String>,
    pub rows: u32,
    pub accepted: u32,
    pub rejected: u32,
    pub links: Links,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DispatchList {
    /// Newest first.
    pub dispatches: Vec<DispatchSummary>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Dispatches per page (1–100, default 20).
    pub limit: Option<u32>,
}

/// Recent dispatches, newest first.
#[utoipa::path(
    get,
    path = "/v1/dispatches",
    tag = "dispatches",
    params(ListQuery),
    responses(
        (status = 200, description = "A page of dispatches", body = DispatchList),
        (status = 400, description = "Invalid cursor", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No or wrong API key", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
pub async fn list_dispatches(
    State(ctx): State<SharedContext>,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<ApiJson<DispatchList>, ApiError> {
    let after = query
        .cursor
        .as_deref()
        .map(cursor::decode_dispatch)
        .transpose()?;
    let limit = query
        .limit
        .unwrap_or(DEFAULT_DISPATCH_PAGE)
        .clamp(1, MAX_DISPATCH_PAGE);
    let page = ctx.store.list_dispatches(limit, after.as_ref()).await?;
    let dispatches = page
        .dispatches
        .iter()
        .map(|d| DispatchSummary {
            id: d.id.clone(),
            state: d.state.to_string(),
            template: d.template.clone(),
            language: d.language.clone(),
            source: SourceView::of(&d.source),
            created_at: d.created_at.clone(),
            send_at: d.send_at.clone(),
            rows: d.rows,
            accepted: d.accepted,
            rejected: d.rejected,
            links: Links::of(&d.id),
        })
        .collect();
    Ok(ApiJson(DispatchList {
        dispatches,
        next_cursor: page.next.as_ref().map(cursor::encode_dispatch),
    }))
}

// ---------------------------------------------------------------------------------------------
// Messages

/// One message (one row or recipient) of a dispatch.
#[derive(Debug, Serialize, ToSchema)]
pub struct MessageView {
    /// The spreadsheet row, or the recipient's index + 1.
    pub row: u32,
    /// E.164; absent when the phone was not a valid number.
    pub phone: Option<String>,
    /// The phone as given.
    pub phone_input: String,
    pub status: String,
    /// WhatsApp's message id (`wamid.…`) once accepted.
    pub whatsapp_id: Option<String>,
    /// The WhatsApp id the number resolved to.
    pub wa_id: Option<String>,
    pub reason_code: Option<String>,
    pub reason: Option<String>,
    pub error_code: Option<i64>,
    pub error_detail: Option<String>,
    pub attempts: u32,
    pub created_at: String,
    pub updated_at: String,
    pub sent_at: Option<String>,
    pub delivered_at: Option<String>,
    pub read_at: Option<String>,
    pub failed_at: Option<String>,
}

impl MessageView {
    fn of(m: MessageRecord) -> Self {
        Self {
            row: m.id.row,
            phone: m.phone,
            phone_input: m.phone_input,
            status: m.status.to_string(),
            whatsapp_id: m.wamid,
            wa_id: m.wa_id,
            reason_code: m.reason_code,
            reason: m.reason,
            error_code: m.error_code,
            error_detail: m.error_detail,
            attempts: m.attempts,
            created_at: m.created_at,
            updated_at: m.updated_at,
            sent_at: m.sent_at,
            delivered_at: m.delivered_at,
            read_at: m.read_at,
            failed_at: m.failed_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MessageList {
    /// In row order.
    pub messages: Vec<MessageView>,
    /// Pass as `cursor` for the next page; absent on the last page. A page filtered on a
    /// rare status may be short (even empty) and still have a next page.
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MessagesQuery {
    /// Only messages in this status: rejected, queued, sending, sent, delivered, read,
    /// failed, skipped.
    pub status: Option<String>,
    pub cursor: Option<String>,
    /// Messages per page (1–500, default 100).
    pub limit: Option<usize>,
}

/// The messages of a dispatch in row order, a page at a time.
#[utoipa::path(
    get,
    path = "/v1/dispatches/{id}/messages",
    tag = "dispatches",
    params(("id" = String, Path, description = "The dispatch id"), MessagesQuery),
    responses(
        (status = 200, description = "A page of messages", body = MessageList),
        (status = 400, description = "Invalid status or cursor", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No or wrong API key", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such dispatch", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
pub async fn list_messages(
    State(ctx): State<SharedContext>,
    ApiPath(id): ApiPath<String>,
    ApiQuery(query): ApiQuery<MessagesQuery>,
) -> Result<ApiJson<MessageList>, ApiError> {
    let status = query
        .status
        .as_deref()
        .map(|s| {
            s.parse::<MessageStatus>().map_err(|_| {
                let valid: Vec<&str> = MessageStatus::ALL.iter().map(|s| s.as_str()).collect();
                Box::new(Problem::bad_request(
                    "invalid-status",
                    format!("unknown status {s:?}; use one of {}", valid.join(", ")),
                ))
            })
        })
        .transpose()
        .map_err(|problem| ApiError::from(*problem))?;
    let after = query
        .cursor
        .as_deref()
        .map(cursor::decode_message)
        .transpose()?;
    let limit = query
        .limit
        .unwrap_or(DEFAULT_MESSAGE_PAGE)
        .clamp(1, MAX_MESSAGE_PAGE);
    load(&ctx, &id).await?;
    let page = ctx.store.message_page(&id, after, status, limit).await?;
    Ok(ApiJson(MessageList {
        messages: page.messages.into_iter().map(MessageView::of).collect(),
        next_cursor: page.next.map(cursor::encode_message),
    }))
}

// ---------------------------------------------------------------------------------------------
// Results spreadsheet

/// The columns a report adds after the input's own.
pub const REPORT_COLUMNS: [&str; 10] = [
    "status",
    "reason",
    "whatsapp_id",
    "error_code",
    "error_detail",
    "queued_at",
    "sent_at",
    "delivered_at",
    "read_at",
    "failed_at",
];

fn report_row(message: MessageRecord, width: usize) -> Vec<String> {
    let mut cells = message.cells;
    cells.resize(width, String::new());
    let optional = |value: Option<String>| value.unwrap_or_default();
    cells.extend([
        message.status.to_string(),
        optional(message.reason),
        optional(message.wamid),
        message
            .error_code
            .map(|c| c.to_string())
            .unwrap_or_default(),
        optional(message.error_detail),
        message.created_at,
        optional(message.sent_at),
        optional(message.delivered_at),
        optional(message.read_at),
        optional(message.failed_at),
    ]);
    cells
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReportQuery {
    /// `xlsx` (default) or `csv`.
    #[param(inline)]
    pub format: Option<SheetFormat>,
}

/// The results spreadsheet: the input's columns, then status, reason, WhatsApp id, error code,
/// error detail and the time of each status, one row per input row. Reports too large for a
/// response are written to S3 and answered with a redirect to a presigned URL.
#[utoipa::path(
    get,
    path = "/v1/dispatches/{id}/report",
    tag = "dispatches",
    params(("id" = String, Path, description = "The dispatch id"), ReportQuery),
    responses(
        (status = 200, description = "The spreadsheet", content(
            ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
            ("text/csv"),
        )),
        (status = 303, description = "Too large to answer directly: download it from `Location` (a presigned S3 URL)",
            headers(("Location" = String, description = "Presigned download URL"))),
        (status = 401, description = "No or wrong API key", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such dispatch", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
pub async fn report(
    State(ctx): State<SharedContext>,
    ApiPath(id): ApiPath<String>,
    ApiQuery(query): ApiQuery<ReportQuery>,
) -> Result<Response, ApiError> {
    let dispatch = load(&ctx, &id).await?;
    let format = query.format.unwrap_or_default();
    let mut columns = dispatch.columns.clone();
    if columns.is_empty() {
        columns.push(crate::templates::PHONE_COLUMN.to_owned());
    }
    let width = columns.len();
    let header: Vec<String> = columns
        .into_iter()
        .chain(REPORT_COLUMNS.iter().map(|c| (*c).to_owned()))
        .collect();
    let sheet_error = |e: crate::sheets::SheetError| ApiError::Spreadsheet(e.to_string());
    let mut writer = SheetWriter::new(format, &header).map_err(sheet_error)?;
    let mut scan = ctx.store.scan_messages(&id);
    loop {
        match scan.next_chunk(REPORT_CHUNK).await? {
            anna_shared::aws::queries::Chunk::Messages(messages) => {
                for message in messages {
                    writer
                        .write_row(&report_row(message, width))
                        .map_err(sheet_error)?;
                }
            }
            anna_shared::aws::queries::Chunk::Fetched => {}
            anna_shared::aws::queries::Chunk::Done => break,
        }
    }
    let bytes = writer.finish().map_err(sheet_error)?;
    let filename = format!("{}-{}-report.{}", dispatch.template, id, format.extension());
    if bytes.len() <= ctx.limits.report_inline_max_bytes {
        return Ok(attachment(bytes, format, &filename));
    }
    let url = stash_report(&ctx, &id, format, &filename, bytes).await?;
    let mut response = (
        StatusCode::SEE_OTHER,
        ApiJson(serde_json::json!({ "url": url })),
    )
        .into_response();
    if let Ok(location) = HeaderValue::from_str(&url) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}

/// Writes a report to `reports/<dispatch>/…` in the uploads bucket; returns a presigned
/// download URL.
async fn stash_report(
    ctx: &ApiContext,
    id: &str,
    format: SheetFormat,
    filename: &str,
    bytes: Vec<u8>,
) -> Result<String, ApiError> {
    let key = format!(
        "reports/{id}/{}-{}.{}",
        Utc::now().format("%Y%m%dT%H%M%S%.3fZ"),
        anna_shared::domain::dispatch::random_hex(4),
        format.extension()
    );
    ctx.s3
        .put_object()
        .bucket(&ctx.bucket)
        .key(&key)
        .content_type(format.content_type())
        .content_disposition(format!("attachment; filename=\"{filename}\""))
        .body(bytes.into())
        .send()
        .await
        .map_err(|e| crate::uploads::s3_error("PutObject", e))?;
    let presigning =
        PresigningConfig::expires_in(ctx.limits.presign_ttl).map_err(|e| ApiError::Objects {
            message: format!("presigning: {e}"),
            retryable: false,
        })?;
    let presigned = ctx
        .s3
        .get_object()
        .bucket(&ctx.bucket)
        .key(&key)
        .presigned(presigning)
        .await
        .map_err(|e| crate::uploads::s3_error("presigning GetObject", e))?;
    Ok(presigned.uri().to_owned())
}

// ---------------------------------------------------------------------------------------------
// Cancelling

/// Cancels a dispatch: messages not yet claimed by the sender end `skipped` with reason
/// `cancelled`. Cancelling a cancelled dispatch again is harmless.
#[utoipa::path(
    post,
    path = "/v1/dispatches/{id}/cancel",
    tag = "dispatches",
    params(("id" = String, Path, description = "The dispatch id")),
    responses(
        (status = 200, description = "The cancelled dispatch", body = DispatchView),
        (status = 401, description = "No or wrong API key", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such dispatch", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The dispatch already finished", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
pub async fn cancel_dispatch(
    State(ctx): State<SharedContext>,
    ApiPath(id): ApiPath<String>,
) -> Result<ApiJson<DispatchView>, ApiError> {
    let current = load(&ctx, &id).await?;
    let finished = |state: &str| {
        Problem::conflict(
            "dispatch-finished",
            format!("dispatch {id} is already {state}; there is nothing left to cancel"),
        )
    };
    // Every message settled: completed, even before the review records it.
    let view = view_of(&ctx, &current).await?;
    if view.state == DispatchState::Completed.as_str() {
        return Err(finished(&view.state).into());
    }
    let outcome = cancel(
        &ctx.store,
        &id,
        &now_rfc3339(),
        ctx.limits.cancel_inline_max,
    )
    .await?;
    let dispatch = match outcome {
        Cancelled::Missing => return Err(no_such_dispatch(&id).into()),
        Cancelled::Finished(dispatch) => return Err(finished(dispatch.state.as_str()).into()),
        Cancelled::Already(dispatch) => dispatch,
        Cancelled::Now { dispatch, .. } => dispatch,
    };
    Ok(ApiJson(view_of(&ctx, &dispatch).await?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dispatch(state: DispatchState, accepted: u32) -> Dispatch {
        let mut d = Dispatch::new(
            "d-1".into(),
            "t".into(),
            "pt_BR".into(),
            DispatchSource::Api,
            "2026-01-01T00:00:00.000Z",
        );
        d.state = state;
        d.accepted = accepted;
        d.rejected = 1;
        d
    }

    #[test]
    fn progress_comes_from_counters() {
        let counters = HashMap::from([
            ("sent".to_owned(), 6),
            ("failed".to_owned(), 1),
            ("skipped".to_owned(), 1),
            ("read".to_owned(), 2),
        ]);
        let view = dispatch_view(&dispatch(DispatchState::Sending, 10), &counters);
        assert_eq!(view.state, "sending");
        assert_eq!((view.progress.settled, view.progress.total), (8, 10));
        assert_eq!(view.progress.percent, 80.0);
        assert_eq!(view.totals.queued, 2);
        assert_eq!(view.totals.read, 2);
        assert_eq!(view.totals.rejected, 1);

        let done = dispatch_view(&dispatch(DispatchState::Sending, 8), &counters);
        assert_eq!(done.state, "completed", "every message settled");
        assert_eq!(done.progress.percent, 100.0);
        // Counters that drifted above the total never give more than 100%.
        let over = dispatch_view(&dispatch(DispatchState::Sending, 4), &counters);
        assert_eq!((over.progress.settled, over.totals.queued), (4, 0));
        let cancelled = dispatch_view(&dispatch(DispatchState::Cancelled, 8), &counters);
        assert_eq!(cancelled.state, "cancelled");
    }

    #[test]
    fn send_at_is_normalised_and_bounded() {
        let now = DateTime::parse_from_rfc3339("2026-06-01T12:00:00Z")
            .expect("time")
            .with_timezone(&Utc);
        let max = Duration::from_secs(30 * 86_400);
        assert_eq!(scheduled_at(None, now, max).ok(), Some(None));
        assert_eq!(
            scheduled_at(Some("2026-06-01T10:00:00-03:00"), now, max).ok(),
            Some(Some("2026-06-01T13:00:00.000Z".to_owned()))
        );
        assert_eq!(
            scheduled_at(Some("2026-05-01T00:00:00Z"), now, max).ok(),
            Some(None),
            "a past time sends at once"
        );
        assert!(scheduled_at(Some("2026-09-01T00:00:00Z"), now, max).is_err());
        assert!(scheduled_at(Some("amanhã"), now, max).is_err());
    }

    #[test]
    fn idempotency_keys_are_checked() {
        let mut headers = HeaderMap::new();
        assert_eq!(idempotency_key(&headers).ok(), Some(None));
        headers.insert(IDEMPOTENCY_HEADER, HeaderValue::from_static("order-42"));
        assert_eq!(
            idempotency_key(&headers).ok(),
            Some(Some("order-42".to_owned()))
        );
        headers.insert(IDEMPOTENCY_HEADER, HeaderValue::from_static("two words"));
        assert!(idempotency_key(&headers).is_err());
    }

    #[test]
    fn report_rows_pad_to_the_input_columns() {
        let mut message = MessageRecord::queued(
            anna_shared::domain::message::MessageId::new("d-1", 2),
            "t",
            "pt_BR",
            "+5511987654321".into(),
            "11987654321".into(),
            vec![],
            vec!["11987654321".into()],
            "2026-01-01T00:00:00.000Z",
        );
        message.status = MessageStatus::Sent;
        message.wamid = Some("wamid.X".into());
        let row = report_row(message, 3);
        assert_eq!(row.len(), 3 + REPORT_COLUMNS.len());
        assert_eq!(row[..4], ["11987654321", "", "", "sent"]);
        assert_eq!(row[5], "wamid.X");
    }
}

// ---------------------------------------------------------------------------------------------
// Resuming

/// Continues a dispatch paused on an account-level WhatsApp error (token, account, billing,
/// template): every message still `queued` is queued again; nothing already sent is sent
/// twice.
#[utoipa::path(
    post,
    path = "/v1/dispatches/{id}/resume",
    tag = "dispatches",
    params(("id" = String, Path, description = "The dispatch id")),
    responses(
        (status = 200, description = "The resumed dispatch", body = DispatchView),
        (status = 401, description = "No or wrong API key", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such dispatch", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The dispatch is not paused", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
pub async fn resume_dispatch(
    State(ctx): State<SharedContext>,
    ApiPath(id): ApiPath<String>,
) -> Result<ApiJson<DispatchView>, ApiError> {
    use anna_shared::delivery::{ResumeOutcome, resume};
    match resume(&ctx.store, &ctx.queue, &id)
        .await
        .map_err(|e| match e {
            anna_shared::delivery::DeliveryError::Store(e) => ApiError::from(e),
            anna_shared::delivery::DeliveryError::Queue(e) => ApiError::from(e),
        })? {
        ResumeOutcome::Resumed { .. } => {}
        ResumeOutcome::NotPaused(None) => return Err(no_such_dispatch(&id).into()),
        ResumeOutcome::NotPaused(Some(state)) => {
            return Err(Problem::conflict(
                "dispatch-not-paused",
                format!("dispatch {id} is {state}, not paused; only a paused dispatch resumes"),
            )
            .into());
        }
    }
    let dispatch = load(&ctx, &id).await?;
    Ok(ApiJson(view_of(&ctx, &dispatch).await?))
}
