//! `wa-sim`: the WhatsApp Cloud API simulator as a process (what `make demo` sends to).
//!
//! Prints one line `wa-sim listening on http://…` on stdout when ready; logs go to stderr
//! (`RUST_LOG`, default `info`). Stops cleanly on SIGTERM or Ctrl-C.

use std::io::{IsTerminal, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use tracing_subscriber::EnvFilter;
use wa_sim::{SimConfig, SimServer, parse_templates};

#[derive(Debug, Parser)]
#[command(name = "wa-sim", version, about = "WhatsApp Cloud API simulator")]
struct Args {
    /// Address to listen on.
    #[arg(long, env = "WA_SIM_LISTEN", default_value = "127.0.0.1:4010")]
    listen: SocketAddr,
    /// Bearer token the API accepts.
    #[arg(long, env = "WA_SIM_TOKEN", default_value = "sim-token")]
    token: String,
    /// Latency added before answering each send, in milliseconds.
    #[arg(long, env = "WA_SIM_LATENCY_MS", default_value_t = 0)]
    latency_ms: u64,
    /// Numbers answered with 131026 (comma-separated; pass an empty string for none).
    #[arg(
        long,
        env = "WA_SIM_NOT_ON_WHATSAPP",
        value_delimiter = ',',
        default_value = "5511900000000"
    )]
    not_on_whatsapp: Vec<String>,
    /// JSON file with Graph template objects (an array, or a whole message_templates
    /// answer) replacing the built-in fixtures.
    /// Where to post signed status webhooks (e.g. http://127.0.0.1:3000/webhook).
    #[arg(long, env = "WA_SIM_WEBHOOK_URL")]
    webhook_url: Option<String>,
    /// The app secret webhooks are signed with.
    #[arg(long, env = "WA_SIM_APP_SECRET", default_value = "sim-app-secret")]
    app_secret: String,
    /// Injected faults as JSON, e.g. '{"server_error_rate":0.05,"throughput_per_second":80}'.
    #[arg(long, env = "WA_SIM_FAULTS")]
    faults: Option<String>,
    #[arg(long, env = "WA_SIM_TEMPLATES")]
    templates: Option<PathBuf>,
    /// WhatsApp Business Account id.
    #[arg(long, env = "WA_SIM_WABA_ID", default_value = "100000000000001")]
    waba_id: String,
    /// Business phone-number id.
    #[arg(
        long,
        env = "WA_SIM_PHONE_NUMBER_ID",
        default_value = "106540352242922"
    )]
    phone_number_id: String,
    /// Business display phone number.
    #[arg(
        long,
        env = "WA_SIM_DISPLAY_PHONE_NUMBER",
        default_value = "15550783881"
    )]
    display_phone_number: String,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();
    let args = Args::parse();

    let mut config = SimConfig::with_default_templates();
    if let Some(path) = &args.templates {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read templates from {}", path.display()))?;
        config.templates =
            parse_templates(&text).with_context(|| format!("templates in {}", path.display()))?;
    }
    config.access_token = args.token;
    config.waba_id = args.waba_id;
    config.phone_number_id = args.phone_number_id;
    config.display_phone_number = args.display_phone_number;
    config.latency = Duration::from_millis(args.latency_ms);
    config.webhooks.url = args.webhook_url.clone();
    config.webhooks.app_secret = args.app_secret.clone();
    if let Some(faults) = &args.faults {
        let faults: wa_sim::Faults =
            serde_json::from_str(faults).context("--faults is not a valid faults object")?;
        faults
            .validate()
            .map_err(|why| anyhow::anyhow!("--faults: {why}"))?;
        config.faults = faults;
    }
    config.not_on_whatsapp = args
        .not_on_whatsapp
        .iter()
        .map(|n| n.trim().to_owned())
        .filter(|n| !n.is_empty())
        .collect();

    let server = SimServer::start(config, args.listen).await?;
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "wa-sim listening on {}", server.base_url())?;
        out.flush()?;
    }

    shutdown_signal().await;
    tracing::info!("shutting down");
    server.shutdown().await;
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}
