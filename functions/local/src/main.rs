//! `anna-local`: run anna-notify on one machine.
//!
//! - `provision`: create bucket, queues and table on the emulator; write the stack's env file.
//! - `run`: the event sources — upload-events and send queues polled into the real handlers —,
//!   the HTTP API at `ANNA_API_LISTEN` (default 127.0.0.1:3000), and the review every
//!   `ANNA_REVIEW_EVERY_SECONDS` (default 5), as the EventBridge schedule runs it on AWS.
//! - `demo`: upload the example spreadsheets and print what happened to every row.

use std::path::PathBuf;
use std::time::Duration;

use anna_local::demo;
use anna_local::provision::{StackNames, Visibility, provision};
use anna_local::runner::poll_until;
use anna_sender::{AwsSender, SenderConfig};
use anna_shared::aws::dynamo::DynamoStore;
use anna_shared::config::{EnvReader, StoreConfig};
use anna_shared::ports::{DispatchStore, MessageStore};
use anna_upload::{AwsUpload, UploadConfig};
use anyhow::Context;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(version, about = "anna-notify on one machine")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create the stack's resources and write their names to an env file.
    Provision {
        #[arg(long, default_value = "anna-local")]
        prefix: String,
        #[arg(long, default_value = ".local/stack.env")]
        env_file: PathBuf,
    },
    /// Poll the queues into the handlers until interrupted.
    Run,
    /// Upload the example spreadsheets and report every row.
    Demo {
        #[arg(long, default_value = "examples")]
        examples: PathBuf,
        #[arg(long, default_value = "pt_BR")]
        language: String,
        #[arg(long, default_value_t = 120)]
        timeout_seconds: u64,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    anna_shared::telemetry::init();
    let cli = Cli::parse();
    let sdk = anna_shared::aws::sdk_config().await;
    match cli.command {
        Command::Provision { prefix, env_file } => {
            let stack = provision(
                &sdk,
                StackNames::with_prefix(&prefix),
                // Short visibility locally, so a retried record comes back in seconds.
                Visibility {
                    upload: Duration::from_secs(60),
                    send: Duration::from_secs(5),
                },
            )
            .await?;
            let text: String = stack
                .env_lines()
                .into_iter()
                .map(|(k, v)| format!("{k}={v}\n"))
                .collect();
            let mut existing = std::fs::read_to_string(&env_file).unwrap_or_default();
            existing.push_str(&text);
            std::fs::write(&env_file, existing)
                .with_context(|| format!("writing {}", env_file.display()))?;
            println!("provisioned {prefix}; names in {}", env_file.display());
        }
        Command::Run => run(&sdk).await?,
        Command::Demo {
            examples,
            language,
            timeout_seconds,
        } => {
            run_demo(
                &sdk,
                &examples,
                &language,
                Duration::from_secs(timeout_seconds),
            )
            .await?
        }
    }
    Ok(())
}

async fn run(sdk: &aws_config::SdkConfig) -> anyhow::Result<()> {
    // Every function runs in this process: GET /v1/metrics shows what CloudWatch would.
    anna_shared::metrics::keep_totals();
    let mut env = EnvReader::from_env();
    let upload_queue = env.required("ANNA_UPLOAD_QUEUE_URL");
    let listen = env.or("ANNA_API_LISTEN", anna_local::api::DEFAULT_LISTEN);
    // Every few seconds locally, so the demo sees dispatches completed; every 5 minutes on AWS.
    let review_every = env.bounded_or("ANNA_REVIEW_EVERY_SECONDS", 5, 1..=3_600);
    env.finish()?;
    let listen: std::net::SocketAddr = listen.parse().with_context(|| {
        format!("ANNA_API_LISTEN={listen:?} is not an address like 127.0.0.1:3000")
    })?;
    let upload_config = UploadConfig::from_env()?;
    let sender_config = SenderConfig::from_env()?;
    let api_config = anna_api::ApiConfig::from_env()?;
    if api_config.keys.is_empty() {
        tracing::warn!("ANNA_API_KEYS is not set: every /v1 request will be refused with 401");
    }
    let sqs = aws_sdk_sqs::Client::new(sdk);
    let send_queue = upload_config.send_queue_url.clone();
    let (stop, shutdown) = tokio::sync::watch::channel(false);

    let mut tasks = tokio::task::JoinSet::new();
    let api = std::sync::Arc::new(anna_api::ApiContext::connect(sdk, api_config)?);
    let review = anna_review::AwsReview::connect(sdk, anna_review::ReviewConfig::from_env()?)?;
    tasks.spawn(anna_local::runner::review_loop(
        review,
        Duration::from_secs(review_every),
        shutdown.clone(),
    ));
    let listener = anna_local::api::bind(listen).await?;
    let api_shutdown = shutdown.clone();
    tasks.spawn(async move {
        if let Err(e) = anna_local::api::serve(api, listener, api_shutdown).await {
            tracing::error!(error = %format!("{e:#}"), "the API stopped");
        }
    });
    let upload = AwsUpload::connect(sdk, upload_config)?;
    tasks.spawn(poll_until(
        sqs.clone(),
        upload_queue,
        shutdown.clone(),
        move |event| {
            let upload = upload.clone();
            async move { anna_upload::handle(&upload, event).await }
        },
    ));
    // One poller per allowed concurrent invocation, each pacing itself at rate / concurrency,
    // so the local rate equals the configured one.
    for _ in 0..sender_config.pacing.max_concurrency {
        let sender = std::sync::Arc::new(AwsSender::connect(sdk, sender_config.clone())?);
        tasks.spawn(poll_until(
            sqs.clone(),
            send_queue.clone(),
            shutdown.clone(),
            move |event| {
                let sender = sender.clone();
                async move { anna_sender::handle(&sender, event).await }
            },
        ));
    }
    tracing::info!(
        senders = sender_config.pacing.max_concurrency,
        "local runner polling upload-events and send queues"
    );
    tokio::signal::ctrl_c().await.ok();
    let _ = stop.send(true);
    while tasks.join_next().await.is_some() {}
    Ok(())
}

async fn run_demo(
    sdk: &aws_config::SdkConfig,
    examples: &std::path::Path,
    language: &str,
    timeout: Duration,
) -> anyhow::Result<()> {
    let mut env = EnvReader::from_env();
    let bucket = env.required("ANNA_UPLOAD_BUCKET");
    let store_config = StoreConfig::read(&mut env);
    let api = format!(
        "http://{}",
        env.or("ANNA_API_LISTEN", anna_local::api::DEFAULT_LISTEN)
    );
    let api_key = env
        .or("ANNA_API_KEYS", "")
        .split(',')
        .next()
        .unwrap_or_default()
        .trim()
        .to_owned();
    env.finish()?;
    let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(sdk), &store_config);
    let s3 = anna_shared::aws::s3_client(sdk);

    let uploads = demo::uploads_for(examples, language)?;
    println!(
        "uploading {} example spreadsheets into s3://{bucket}/inbox/ …",
        uploads.len()
    );
    let placed = demo::put_uploads(&s3, &bucket, &uploads).await?;
    for (_, dispatch_id) in &placed {
        demo::wait_until_settled(&store, dispatch_id, timeout).await?;
    }
    // The review the runner schedules, run once more now: it completes the dispatches whose
    // rows are all final (with an exact recount) and reports what it found.
    let review = anna_review::AwsReview::connect(sdk, anna_review::ReviewConfig::from_env()?)?;
    let report = anna_review::run(&review, chrono::Utc::now()).await?;
    let mut all = Vec::new();
    for (upload, dispatch_id) in &placed {
        let messages = store.list_messages(dispatch_id).await?;
        let dispatch = store
            .get_dispatch(dispatch_id)
            .await?
            .with_context(|| format!("dispatch {dispatch_id} vanished"))?;
        print!(
            "{}",
            demo::render_table(
                &format!("{} → dispatch {dispatch_id}", upload.key),
                dispatch.state.as_str(),
                dispatch.reason.as_deref(),
                &messages
            )
        );
        all.extend(messages);
    }
    println!(
        "\ntotals over {} dispatches: {}",
        placed.len(),
        demo::totals(&all)
    );
    println!(
        "review: {} dispatches examined, {} completed, {} unknown outcomes resolved, {} stuck \
         messages re-queued, {} flagged undelivered (CloudWatch metrics on AWS: namespace \
         anna-notify)",
        report.examined,
        report.completed,
        report.unknown_outcomes,
        report.requeued_stuck,
        report.flagged_undelivered
    );
    match demo::fetch_metrics(&api, &api_key).await {
        Ok(lines) => println!("\nmetrics of the local stack (GET {api}/v1/metrics):\n{lines}"),
        Err(e) => println!("\nmetrics: could not read {api}/v1/metrics: {e}"),
    }
    Ok(())
}
