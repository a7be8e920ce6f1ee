//! Scenarios against the local stack: moto (S3, SQS, DynamoDB) started on a free port, the
//! stack provisioned exactly as `make up` does it, and the upload function's real handler
//! with real SDK clients — built here with the request-counting interceptor on them.
//!
//! moto is a Python emulator: its speed is not DynamoDB's or SQS's, so these scenarios
//! report what moto cannot distort (request counts), or say where it sets the figure.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anna_local::provision::{Stack, StackNames, Visibility, provision};
use anna_local::runner::poll_once;
use anna_shared::aws::dynamo::DynamoStore;
use anna_shared::aws::s3::S3Objects;
use anna_shared::aws::sqs::SqsSendQueue;
use anna_shared::config::{IntakeConfig, StoreConfig};
use anna_shared::domain::dispatch::{Dispatch, DispatchSource, DispatchState, IntakeSummary};
use anna_shared::domain::message::MessageStatus;
use anna_shared::ports::DispatchStore;
use anna_shared::whatsapp::client::CloudApiConfig;
use anna_shared::whatsapp::cloud::CloudWhatsApp;
use anna_upload::Upload;
use anyhow::{Context, ensure};
use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse};
use aws_sdk_dynamodb::types::AttributeValue;
use serde::{Deserialize, Serialize};
use wa_sim::{SimConfig, SimServer};

use crate::counting::RequestCounter;
use crate::inputs::{LANGUAGE, TEMPLATE};
use crate::memory::MemStore;

pub fn cloud_api(sim: &SimServer) -> CloudApiConfig {
    CloudApiConfig {
        base_url: sim.base_url(),
        api_version: "v23.0".to_owned(),
        phone_number_id: sim.phone_number_id().to_owned(),
        waba_id: sim.waba_id().to_owned(),
        access_token: sim.access_token().to_owned(),
        timeout: Duration::from_secs(10),
    }
}

/// moto, a freshly provisioned stack, and wa-sim for the template catalogue.
struct Env {
    sdk: aws_config::SdkConfig,
    stack: Stack,
    sim: SimServer,
}

impl Env {
    async fn start(run: usize) -> anyhow::Result<Self> {
        let sdk = anna_integration_tests::sdk_config().await;
        let prefix = format!("bench{}r{run}", std::process::id());
        let stack = provision(
            &sdk,
            StackNames::with_prefix(&prefix),
            Visibility {
                upload: Duration::from_secs(900),
                send: Duration::from_secs(30),
            },
        )
        .await
        .context("provisioning the stack on moto")?;
        let sim = SimServer::start(SimConfig::default(), ([127, 0, 0, 1], 0).into()).await?;
        Ok(Self { sdk, stack, sim })
    }

    fn store_config(&self) -> StoreConfig {
        StoreConfig {
            table: self.stack.names.table.clone(),
            retention_days: 1,
        }
    }

    /// The upload function as `AwsUpload::connect` builds it, but on counted clients.
    fn upload(
        &self,
        counter: &RequestCounter,
    ) -> anyhow::Result<Upload<DynamoStore, SqsSendQueue, S3Objects, CloudWhatsApp>> {
        Ok(Upload {
            store: DynamoStore::new(counter.dynamodb(&self.sdk), &self.store_config()),
            queue: SqsSendQueue::new(counter.sqs(&self.sdk), self.stack.send_queue_url.clone()),
            objects: S3Objects::new(counter.s3(&self.sdk)),
            whatsapp: CloudWhatsApp::new(cloud_api(&self.sim), Duration::from_secs(300))?,
            intake: IntakeConfig::default(),
        })
    }

    /// Uploads the file as an operator would; S3 notifies the upload-events queue.
    async fn put(&self, file: &Path) -> anyhow::Result<String> {
        let name = file
            .file_name()
            .context("input has no file name")?
            .to_string_lossy()
            .into_owned();
        let key = format!("inbox/{TEMPLATE}/{LANGUAGE}/{name}");
        let body = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
        anna_shared::aws::s3_client(&self.sdk)
            .put_object()
            .bucket(&self.stack.names.bucket)
            .key(&key)
            .body(body.into())
            .send()
            .await
            .context("PutObject")?;
        Ok(key)
    }

    fn sqs(&self) -> aws_sdk_sqs::Client {
        aws_sdk_sqs::Client::new(&self.sdk)
    }
}

/// Requests of one intake, by (service, operation).
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct RequestsOutcome {
    pub rows: u64,
    pub accepted: u64,
    pub rejected: u64,
    pub requests: Vec<(String, String, u64)>,
    pub sqs: u64,
    pub dynamodb: u64,
    pub s3: u64,
    /// Handler time against moto: moto's speed, not ours.
    pub seconds: f64,
}

/// One upload of `file` through S3 → upload-events → the real handler on counted clients.
pub async fn requests(file: &Path, run: usize) -> anyhow::Result<RequestsOutcome> {
    let env = Env::start(run).await?;
    let counter = RequestCounter::default();
    let upload = env.upload(&counter)?;
    env.put(file).await?;
    let sqs = env.sqs();
    // moto's SendMessageBatch takes time in proportion to the messages already queued (from
    // 40 ms on an empty queue to 250 ms at 2,000 messages): left to grow, 100,000 rows would
    // take hours. So the send queue is drained while intake runs, as the sender drains it on
    // a live system; the drain's requests are made on an uncounted client.
    let draining = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let mut drains = tokio::task::JoinSet::new();
    for _ in 0..DRAINERS {
        drains.spawn(drain(
            sqs.clone(),
            env.stack.send_queue_url.clone(),
            draining.clone(),
        ));
    }
    counter.reset();
    let seconds = Arc::new(Mutex::new(0.0));
    // The first record may be S3's test event (sent when the notification is configured):
    // poll until a record made the handler create a dispatch.
    for _ in 0..20 {
        poll_once(
            &sqs,
            &env.stack.upload_queue_url,
            Duration::from_secs(1),
            |event| {
                let seconds = seconds.clone();
                let upload = &upload;
                async move {
                    let started = Instant::now();
                    let response = anna_upload::handle(upload, event).await;
                    *seconds.lock().unwrap_or_else(|e| e.into_inner()) +=
                        started.elapsed().as_secs_f64();
                    response
                }
            },
        )
        .await?;
        if counter.service_total("dynamodb") > 0 {
            break;
        }
    }
    draining.store(false, std::sync::atomic::Ordering::Relaxed);
    while let Some(drained) = drains.join_next().await {
        drained??;
    }
    ensure!(
        counter.service_total("dynamodb") > 0,
        "the S3 notification did not arrive"
    );
    let seconds = *seconds.lock().unwrap_or_else(|e| e.into_inner());
    // Taken before the bench reads the dispatch back through the same (counted) store.
    let (sqs_requests, dynamodb_requests, s3_requests) = (
        counter.service_total("sqs"),
        counter.service_total("dynamodb"),
        counter.service_total("s3"),
    );
    let requests = counter.requests();
    let dispatches = dispatch_of(&upload.store).await?;
    ensure!(
        dispatches.state == DispatchState::Sending,
        "intake ended in {} ({:?})",
        dispatches.state,
        dispatches.reason
    );
    env.sim.shutdown().await;
    Ok(RequestsOutcome {
        rows: u64::from(dispatches.rows),
        accepted: u64::from(dispatches.accepted),
        rejected: u64::from(dispatches.rejected),
        sqs: sqs_requests,
        dynamodb: dynamodb_requests,
        s3: s3_requests,
        requests: requests
            .into_iter()
            .map(|((service, op), n)| (service, op, n))
            .collect(),
        seconds,
    })
}

const DRAINERS: usize = 4;

/// Receives and deletes send-queue records until told to stop.
async fn drain(
    sqs: aws_sdk_sqs::Client,
    queue_url: String,
    running: Arc<std::sync::atomic::AtomicBool>,
) -> anyhow::Result<u64> {
    let mut drained = 0;
    while running.load(std::sync::atomic::Ordering::Relaxed) {
        let received = sqs
            .receive_message()
            .queue_url(&queue_url)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .send()
            .await
            .context("draining the send queue")?;
        let entries: Vec<_> = received
            .messages
            .unwrap_or_default()
            .into_iter()
            .enumerate()
            .filter_map(|(i, m)| {
                aws_sdk_sqs::types::DeleteMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .set_receipt_handle(m.receipt_handle)
                    .build()
                    .ok()
            })
            .collect();
        if entries.is_empty() {
            continue;
        }
        drained += entries.len() as u64;
        sqs.delete_message_batch()
            .queue_url(&queue_url)
            .set_entries(Some(entries))
            .send()
            .await
            .context("deleting drained records")?;
    }
    Ok(drained)
}

/// The one dispatch of a fresh stack, found through the by-created index (a Scan of a table
/// of 100,000 messages takes moto minutes).
async fn dispatch_of(store: &DynamoStore) -> anyhow::Result<Dispatch> {
    let page = store
        .list_dispatches(1, None)
        .await
        .context("listing the dispatch")?;
    let id = page
        .dispatches
        .into_iter()
        .next()
        .context("no dispatch was created")?
        .id;
    store.get_dispatch(&id).await?.context("dispatch vanished")
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct FirstMessageOutcome {
    /// From the handler receiving the S3 event to the first SendMessageBatch answered.
    pub seconds: f64,
    /// Of which: until GetObject answered (moto's S3 serving the file).
    pub get_object_seconds: Option<f64>,
    /// Until the first BatchWriteItem answered.
    pub first_write_seconds: Option<f64>,
    pub file_bytes: u64,
}

/// Time from the S3 event reaching the handler to the first message on the send queue.
/// The handler is stopped there: writing a million rows into moto would measure moto.
pub async fn first_message(file: &Path, run: usize) -> anyhow::Result<FirstMessageOutcome> {
    let env = Env::start(run).await?;
    let counter = RequestCounter::default();
    let upload = env.upload(&counter)?;
    env.put(file).await?;
    let sqs = env.sqs();
    counter.reset();
    let outcome = Arc::new(Mutex::new(None));
    for _ in 0..20 {
        poll_once(
            &sqs,
            &env.stack.upload_queue_url,
            Duration::from_secs(2),
            |event| {
                let outcome = outcome.clone();
                let upload = &upload;
                let counter = &counter;
                async move {
                    let record = event.records.first().and_then(|r| r.message_id.clone());
                    let started = Instant::now();
                    let first = async {
                        loop {
                            if let Some(at) = counter.first_response("sqs", "SendMessageBatch") {
                                return at;
                            }
                            tokio::time::sleep(Duration::from_millis(1)).await;
                        }
                    };
                    tokio::select! {
                        at = first => {
                            let since = |at: Option<Instant>| {
                                at.map(|at| at.saturating_duration_since(started).as_secs_f64())
                            };
                            *outcome.lock().unwrap_or_else(|e| e.into_inner()) = Some(FirstMessageOutcome {
                                seconds: since(Some(at)).unwrap_or_default(),
                                get_object_seconds: since(counter.first_response("s3", "GetObject")),
                                first_write_seconds: since(counter.first_response("dynamodb", "BatchWriteItem")),
                                file_bytes: 0,
                            });
                        }
                        response = anna_upload::handle(upload, event) => {
                            tracing_failure(&response);
                        }
                    }
                    // Leave the record on the queue: this run is over either way.
                    let mut response = SqsBatchResponse::default();
                    let mut failure = BatchItemFailure::default();
                    failure.item_identifier = record.unwrap_or_default();
                    response.batch_item_failures.push(failure);
                    response
                }
            },
        )
        .await?;
        if outcome.lock().unwrap_or_else(|e| e.into_inner()).is_some() {
            break;
        }
    }
    let mut outcome = outcome
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .take()
        .context("the handler ended without sending a message to the queue")?;
    outcome.file_bytes = std::fs::metadata(file)?.len();
    Ok(outcome)
}

fn tracing_failure(response: &SqsBatchResponse) {
    if !response.batch_item_failures.is_empty() {
        eprintln!("upload handler reported a failure before the first message");
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct StatusOutcome {
    /// Per request, milliseconds: `GET /v1/dispatches/{id}` through the API's router (key
    /// check, store reads, JSON), against moto.
    pub api_ms: Vec<f64>,
    /// Per read, milliseconds: the dispatch item and its settled counters, read concurrently.
    pub moto_ms: Vec<f64>,
    /// The same read on the in-memory store: our code alone.
    pub memory_ms: Vec<f64>,
    pub messages: u64,
    pub counted: i64,
}

/// The progress read behind `GET /v1/dispatches/{id}` on a dispatch of `messages` messages:
/// the dispatch item plus the sharded settled counters (`DynamoStore::settled_counts`).
pub async fn status(messages: u32, reads: usize) -> anyhow::Result<StatusOutcome> {
    let env = Env::start(0).await?;
    let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&env.sdk), &env.store_config());
    let id = "bench-status-1m".to_owned();
    let now = anna_shared::aws::dynamo::now_rfc3339();
    let dispatch = Dispatch::new(
        id.clone(),
        TEMPLATE.to_owned(),
        LANGUAGE.to_owned(),
        DispatchSource::Api,
        &now,
    );
    store.create_dispatch(&dispatch).await?;
    let rejected = messages / 200;
    let summary = IntakeSummary {
        columns: crate::inputs::HEADER
            .iter()
            .map(|s| (*s).to_owned())
            .collect(),
        rows: messages,
        accepted: messages - rejected,
        rejected,
    };
    store.finish_intake(&id, &summary).await?;
    // Sharded counters as the sender leaves them: most sent, some failed, spread over 16.
    let dynamo = aws_sdk_dynamodb::Client::new(&env.sdk);
    let sent = i64::from(summary.accepted) * 98 / 100;
    let failed = i64::from(summary.accepted) / 100;
    let shards = anna_shared::aws::dynamo::COUNTER_SHARDS as i64;
    for shard in 0..shards {
        let part = |total: i64| total / shards + i64::from(shard < total % shards);
        dynamo
            .update_item()
            .table_name(&env.stack.names.table)
            .key("pk", AttributeValue::S(format!("D#{id}")))
            .key("sk", AttributeValue::S(format!("COUNT#{shard:02}")))
            .update_expression("ADD #sent :sent, #failed :failed")
            .expression_attribute_names("#sent", MessageStatus::Sent.as_str())
            .expression_attribute_names("#failed", MessageStatus::Failed.as_str())
            .expression_attribute_values(":sent", AttributeValue::N(part(sent).to_string()))
            .expression_attribute_values(":failed", AttributeValue::N(part(failed).to_string()))
            .send()
            .await
            .context("writing a counter shard")?;
    }
    let mut outcome = StatusOutcome {
        messages: u64::from(messages),
        ..StatusOutcome::default()
    };
    // One read first, to open the connection as a warm function has it open.
    let _ = tokio::try_join!(store.get_dispatch(&id), store.settled_counts(&id))?;
    for _ in 0..reads {
        let started = Instant::now();
        let (dispatch, counts) =
            tokio::try_join!(store.get_dispatch(&id), store.settled_counts(&id))?;
        outcome.moto_ms.push(started.elapsed().as_secs_f64() * 1e3);
        ensure!(dispatch.is_some(), "dispatch missing");
        outcome.counted = counts.values().sum();
    }
    ensure!(
        outcome.counted == sent + failed,
        "counters sum to {} instead of {}",
        outcome.counted,
        sent + failed
    );

    // The same through the API's router, as API Gateway hands it a request: what the
    // server spends on the answer (the network in front of it aside).
    let api_env: std::collections::HashMap<String, String> = [
        ("ANNA_TABLE", env.stack.names.table.clone()),
        ("ANNA_SEND_QUEUE_URL", env.stack.send_queue_url.clone()),
        ("ANNA_UPLOAD_BUCKET", env.stack.names.bucket.clone()),
        ("ANNA_API_KEYS", "bench-key".to_owned()),
        ("WA_API_BASE_URL", env.sim.base_url()),
        ("WA_PHONE_NUMBER_ID", env.sim.phone_number_id().to_owned()),
        ("WA_WABA_ID", env.sim.waba_id().to_owned()),
        ("WA_ACCESS_TOKEN", env.sim.access_token().to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let config = anna_api::ApiConfig::read(anna_shared::config::EnvReader::from_map(api_env))
        .map_err(|e| anyhow::anyhow!("api configuration: {e}"))?;
    let router = anna_api::router(std::sync::Arc::new(anna_api::ApiContext::connect(
        &env.sdk, config,
    )?));
    let request = || {
        axum::http::Request::get(format!("/v1/dispatches/{id}"))
            .header("authorization", "Bearer bench-key")
            .body(axum::body::Body::empty())
    };
    for i in 0..=reads {
        use tower::ServiceExt;
        let started = Instant::now();
        let response = router.clone().oneshot(request()?).await?;
        let status = response.status();
        let body = axum::body::to_bytes(response.into_body(), 1 << 20).await?;
        let elapsed = started.elapsed().as_secs_f64() * 1e3;
        ensure!(status.is_success(), "GET /v1/dispatches/{id}: {status}");
        let body: serde_json::Value = serde_json::from_slice(&body)?;
        ensure!(
            body["totals"]["sent"].as_i64() == Some(sent),
            "the API's totals are not the counters': {body}"
        );
        // The first opens the connection, as a warm function has it open.
        if i > 0 {
            outcome.api_ms.push(elapsed);
        }
    }

    let memory = MemStore::keeping();
    let mut in_memory = dispatch.clone();
    in_memory.state = DispatchState::Sending;
    memory.put_dispatch(in_memory);
    memory.add_settled(&id, MessageStatus::Sent, sent);
    memory.add_settled(&id, MessageStatus::Failed, failed);
    for _ in 0..reads {
        let started = Instant::now();
        let dispatch = memory.get_dispatch(&id).await?;
        let counts = memory.settled_counts(&id);
        outcome
            .memory_ms
            .push(started.elapsed().as_secs_f64() * 1e3);
        ensure!(
            dispatch.is_some() && !counts.is_empty(),
            "in-memory read failed"
        );
    }
    env.sim.shutdown().await;
    Ok(outcome)
}
