//! `anna-local`: run anna-notify on one machine.
//!
//! - `provision`: create bucket, queues and table on the emulator; write the stack's env file.
//! - `run`: the event sources — upload-events and send queues polled into the real handlers.
//! - `demo`: upload the example spreadsheets and print what happened to every row.

use std::path::PathBuf;
use std::time::Duration;

use anna_local::demo;
use anna_local::provision::{StackNames, Visibility, provision};
use anna_local::runner::poll_until;
use anna_sender::{AwsSender, SenderConfig};
use anna_shared::aws::dynamo::DynamoStore;
use anna_shared::config::{EnvReader, StoreConfig};
use anna_shared::ports::DispatchStore;
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
    let mut env = EnvReader::from_env();
    let upload_queue = env.required("ANNA_UPLOAD_QUEUE_URL");
    env.finish()?;
    let upload_config = UploadConfig::from_env()?;
    let sender_config = SenderConfig::from_env()?;
    let sqs = aws_sdk_sqs::Client::new(sdk);
    let send_queue = upload_config.send_queue_url.clone();
    let (stop, shutdown) = tokio::sync::watch::channel(false);

    let mut tasks = tokio::task::JoinSet::new();
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
    env.finish()?;
    let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(sdk), &store_config);
    let s3 = anna_shared::aws::s3_client(sdk);

    let uploads = demo::uploads_for(examples, language)?;
    println!(
        "uploading {} example spreadsheets into s3://{bucket}/inbox/ …",
        uploads.len()
    );
    let placed = demo::put_uploads(&s3, &bucket, &uploads).await?;
    let mut all = Vec::new();
    for (upload, dispatch_id) in &placed {
        let messages = demo::wait_until_settled(&store, dispatch_id, timeout).await?;
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
    Ok(())
}
