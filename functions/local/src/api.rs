//! The API on the local stack: the same router the api Lambda runs, served over HTTP.

use std::net::SocketAddr;

use anna_api::SharedContext;
use anyhow::Context;
use tokio::sync::watch;

/// Where the API listens when `ANNA_API_LISTEN` is not set.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:3000";

/// Binds the API's address, so a port already in use stops the runner at start-up.
pub async fn bind(addr: SocketAddr) -> anyhow::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("the API cannot listen on {addr} (set ANNA_API_LISTEN)"))
}

/// Serves the API on `listener` until `shutdown` turns true.
pub async fn serve(
    ctx: SharedContext,
    listener: tokio::net::TcpListener,
    mut shutdown: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, "API listening");
    }
    axum::serve(listener, anna_api::router(ctx))
        .with_graceful_shutdown(async move {
            while !*shutdown.borrow() {
                if shutdown.changed().await.is_err() {
                    break;
                }
            }
        })
        .await
        .context("serving the API")
}
