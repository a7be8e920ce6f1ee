//! The upload function: an S3 ObjectCreated notification (delivered through the upload-events
//! SQS queue) becomes a dispatch — every row of the spreadsheet recorded as a queued or
//! rejected message, and the queued ones fanned out to the send queue while the file is read.

mod notification;

use std::time::Duration;

use anna_shared::aws::dynamo::{DynamoStore, now_rfc3339};
use anna_shared::aws::s3::S3Objects;
use anna_shared::aws::sqs::SqsSendQueue;
use anna_shared::config::{ConfigError, EnvReader, IntakeConfig, StoreConfig};
use anna_shared::domain::dispatch::{
    Dispatch, DispatchSource, DispatchState, IntakeSummary, dispatch_id_for_object,
    dispatch_id_for_upload,
};
use anna_shared::domain::intake::Intake;
use anna_shared::error::Retryable;
use anna_shared::intake_pipeline::{
    Delivery, HeaderRow, NO_DATA_ROWS, PipelineError, Plan, record_rows,
};
use anna_shared::ports::{
    Created, DispatchStore, MessageStore, ObjectError, ObjectStore, QueueError, SendQueue,
    StoreError, WhatsApp, WriteMode,
};
use anna_shared::sheet::read_sheet;
use anna_shared::whatsapp::client::{CloudApiConfig, SendError};
use anna_shared::whatsapp::cloud::CloudWhatsApp;
use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use tracing::{Instrument, error, info, info_span, warn};

pub use notification::{ObjectCreated, UploadKey, parse_notification};

#[derive(Debug, Clone)]
pub struct UploadConfig {
    pub store: StoreConfig,
    pub send_queue_url: String,
    pub cloud_api: CloudApiConfig,
    pub template_ttl: Duration,
    pub intake: IntakeConfig,
}

impl UploadConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        let mut env = EnvReader::from_env();
        let config = Self {
            store: StoreConfig::read(&mut env),
            send_queue_url: env.required("ANNA_SEND_QUEUE_URL"),
            cloud_api: anna_shared::config::read_cloud_api(&mut env),
            template_ttl: anna_shared::config::read_template_ttl(&mut env),
            intake: IntakeConfig::read(&mut env),
        };
        env.finish().map(|()| config)
    }
}

/// Everything the handler needs; generic so tests and benchmarks can swap any capability.
#[derive(Clone)]
pub struct Upload<S, Q, O, W> {
    pub store: S,
    pub queue: Q,
    pub objects: O,
    pub whatsapp: W,
    pub intake: IntakeConfig,
}

pub type AwsUpload = Upload<DynamoStore, SqsSendQueue, S3Objects, CloudWhatsApp>;

impl AwsUpload {
    pub fn connect(sdk: &aws_config::SdkConfig, config: UploadConfig) -> anyhow::Result<Self> {
        Ok(Self {
            store: DynamoStore::new(aws_sdk_dynamodb::Client::new(sdk), &config.store),
            queue: SqsSendQueue::new(aws_sdk_sqs::Client::new(sdk), config.send_queue_url),
            objects: S3Objects::new(anna_shared::aws::s3_client(sdk)),
            whatsapp: CloudWhatsApp::new(config.cloud_api, config.template_ttl)?,
            intake: config.intake,
        })
    }
}

/// Why an upload record could not be processed now. Anything that makes the *file* unusable
/// is not an error here: it is recorded on the dispatch as `failed` with its reason.
#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    #[error("record has no body")]
    EmptyRecord,
    #[error("record is not an S3 event notification: {0}")]
    NotAnS3Event(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Queue(#[from] QueueError),
    #[error("reading the object: {0}")]
    Object(ObjectError),
    #[error("fetching templates from WhatsApp: {0}")]
    WhatsApp(SendError),
    #[error("an intake task stopped: {0}")]
    Task(String),
}

impl From<PipelineError> for UploadError {
    fn from(error: PipelineError) -> Self {
        match error {
            PipelineError::Store(e) => Self::Store(e),
            PipelineError::Queue(e) => Self::Queue(e),
            PipelineError::Task(e) => Self::Task(e),
        }
    }
}

impl Retryable for UploadError {
    fn is_retryable(&self) -> bool {
        match self {
            Self::EmptyRecord | Self::NotAnS3Event(_) => false,
            Self::Store(e) => e.is_retryable(),
            Self::Queue(e) => e.is_retryable(),
            Self::Object(e) => e.is_retryable(),
            Self::WhatsApp(e) => e.is_retryable(),
            Self::Task(_) => true,
        }
    }
}

/// Handles one batch from the upload-events queue. A record that fails is reported as a
/// batch-item failure: SQS delivers it again, and after the queue's maxReceiveCount it lands
/// in the DLQ — never dropped.
pub async fn handle<S, Q, O, W>(ctx: &Upload<S, Q, O, W>, event: SqsEvent) -> SqsBatchResponse
where
    S: DispatchStore + MessageStore + Clone + 'static,
    Q: SendQueue + Clone + 'static,
    O: ObjectStore,
    W: WhatsApp,
{
    let mut response = SqsBatchResponse::default();
    for record in event.records {
        let record_id = record.message_id.clone().unwrap_or_default();
        let span = info_span!("upload_record", sqs_message_id = %record_id);
        if let Err(e) = handle_record(ctx, &record).instrument(span).await {
            error!(sqs_message_id = %record_id, retryable = e.is_retryable(), error = %e, "upload record failed; SQS will deliver it again");
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = record_id;
            response.batch_item_failures.push(failure);
        }
    }
    response
}

async fn handle_record<S, Q, O, W>(
    ctx: &Upload<S, Q, O, W>,
    record: &SqsMessage,
) -> Result<(), UploadError>
where
    S: DispatchStore + MessageStore + Clone + 'static,
    Q: SendQueue + Clone + 'static,
    O: ObjectStore,
    W: WhatsApp,
{
    let body = record.body.as_deref().ok_or(UploadError::EmptyRecord)?;
    let objects = parse_notification(body).map_err(UploadError::NotAnS3Event)?;
    if objects.is_empty() {
        info!("notification names no created object (e.g. s3:TestEvent); nothing to do");
    }
    for object in objects {
        // Boxed: the intake future is large and deeply nested; keeping it off the caller's
        // future keeps that one small and its type shallow.
        Box::pin(process_object(ctx, &object)).await?;
    }
    Ok(())
}

/// Turns one uploaded object into a dispatch; safe to run again for the same object.
pub async fn process_object<S, Q, O, W>(
    ctx: &Upload<S, Q, O, W>,
    object: &ObjectCreated,
) -> Result<String, UploadError>
where
    S: DispatchStore + MessageStore + Clone + 'static,
    Q: SendQueue + Clone + 'static,
    O: ObjectStore,
    W: WhatsApp,
{
    let parsed = UploadKey::parse(&object.key);
    // An upload through a presigned URL of the API carries an upload id in its key: its
    // dispatch id was named when the URL was issued. Any other object: bucket, key, version.
    let id = match parsed
        .as_ref()
        .ok()
        .and_then(|key| key.upload_id.as_deref())
    {
        Some(upload_id) => dispatch_id_for_upload(upload_id),
        None => dispatch_id_for_object(&object.bucket, &object.key, &object.version),
    };
    let span = info_span!("dispatch", dispatch_id = %id, key = %object.key);
    async {
        let (template, language) = match &parsed {
            Ok(key) => (key.template.clone(), key.language.clone()),
            Err(_) => (String::new(), String::new()),
        };
        let dispatch = Dispatch::new(
            id.clone(),
            template,
            language,
            DispatchSource::Upload {
                bucket: object.bucket.clone(),
                key: object.key.clone(),
            },
            &now_rfc3339(),
        );
        let mode = match ctx.store.create_dispatch(&dispatch).await? {
            Created::New => WriteMode::Fresh,
            Created::Existing(existing) if existing.state == DispatchState::Intake => {
                info!("resuming an interrupted intake; rows already recorded are kept");
                WriteMode::KeepExisting
            }
            Created::Existing(existing) => {
                info!(state = %existing.state, "object already processed; nothing to do");
                return Ok(id.clone());
            }
        };
        if let Err(reason) = parsed {
            warn!(%reason, "upload key does not name a template");
            ctx.store.fail_dispatch(&id, &reason).await?;
            return Ok(id.clone());
        }
        match run_intake(ctx, &dispatch, object, mode).await? {
            Ok(summary) => {
                info!(
                    rows = summary.rows,
                    accepted = summary.accepted,
                    rejected = summary.rejected,
                    "intake finished"
                );
                ctx.store.finish_intake(&id, &summary).await?;
            }
            Err(reason) => {
                warn!(%reason, "file cannot be used; dispatch failed");
                ctx.store.fail_dispatch(&id, &reason).await?;
            }
        }
        Ok(id.clone())
    }
    .instrument(span)
    .await
}

/// Reads the file and records every row. The outer error is "try again later"; the inner
/// `Err(reason)` is "this file can never be used", recorded on the dispatch.
async fn run_intake<S, Q, O, W>(
    ctx: &Upload<S, Q, O, W>,
    dispatch: &Dispatch,
    object: &ObjectCreated,
    mode: WriteMode,
) -> Result<Result<IntakeSummary, String>, UploadError>
where
    S: DispatchStore + MessageStore + Clone + 'static,
    Q: SendQueue + Clone + 'static,
    O: ObjectStore,
    W: WhatsApp,
{
    let template = match ctx
        .whatsapp
        .template(&dispatch.template, &dispatch.language)
        .await
        .map_err(UploadError::WhatsApp)?
    {
        Some(template) => template,
        None => {
            return Ok(Err(format!(
                "template {:?} in language {:?} does not exist in the WhatsApp account",
                dispatch.template, dispatch.language
            )));
        }
    };
    // An unsendable template fails the dispatch before the file is downloaded.
    if let Err(e) = Intake::new(&template, ctx.intake.intake.clone()) {
        return Ok(Err(e.to_string()));
    }
    let max_bytes = ctx.intake.read.limits.max_bytes as u64;
    let file = match ctx
        .objects
        .fetch(&object.bucket, &object.key, max_bytes)
        .await
    {
        Ok(file) => file,
        Err(ObjectError::NotFound) => {
            return Ok(Err(
                "the file was deleted before it could be read".to_owned()
            ));
        }
        Err(e @ ObjectError::TooLarge { .. }) => return Ok(Err(e.to_string())),
        Err(e) => return Err(UploadError::Object(e)),
    };
    let rows = match read_sheet(&file.bytes, &ctx.intake.read) {
        Ok(rows) => rows,
        Err(e) => return Ok(Err(e.to_string())),
    };
    let plan = Plan {
        mode,
        header: HeaderRow::Detect,
        delivery: Delivery::Enqueue,
        keep_rejected: false,
    };
    let recorded = match record_rows(
        &ctx.store,
        &ctx.queue,
        dispatch,
        &template,
        &ctx.intake.intake,
        rows,
        plan,
    )
    .await?
    {
        Ok(recorded) => recorded,
        Err(reason) => return Ok(Err(reason)),
    };
    if recorded.summary.rows == 0 {
        return Ok(Err(NO_DATA_ROWS.to_owned()));
    }
    Ok(Ok(recorded.summary))
}
