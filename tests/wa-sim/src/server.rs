//! The HTTP server: routes, start-up and shutdown.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::extract::Request;
use axum::http::{Method, Uri};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::config::SimConfig;
use crate::error::GraphError;
use crate::sends::AcceptedSend;
use crate::state::SimState;
use crate::{control, listing, messages};

/// How long [`SimServer::shutdown`] waits for open connections before it stops the server.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// A running simulator. Dropping it stops accepting connections too; prefer
/// [`SimServer::shutdown`], which also waits for the server task to end.
pub struct SimServer {
    state: Arc<SimState>,
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl SimServer {
    /// Binds `addr` (port 0 picks a free port), validates the template fixtures and starts
    /// serving on the current Tokio runtime.
    pub async fn start(config: SimConfig, addr: SocketAddr) -> anyhow::Result<SimServer> {
        let listener = TcpListener::bind(addr)
            .await
            .with_context(|| format!("wa-sim: cannot listen on {addr}"))?;
        let addr = listener.local_addr().context("wa-sim: local address")?;
        let state = Arc::new(SimState::new(config, addr).context("wa-sim: invalid templates")?);
        let app = router(state.clone());
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let shutdown = async {
                let _ = stopped.await;
            };
            if let Err(e) = axum::serve(listener, app)
                .with_graceful_shutdown(shutdown)
                .await
            {
                tracing::error!(error = %e, "wa-sim server failed");
            }
        });
        tracing::info!(%addr, "wa-sim started");
        Ok(SimServer {
            state,
            addr,
            stop: Some(stop),
            task: Some(task),
        })
    }

    /// `http://127.0.0.1:PORT` (the loopback address when listening on all interfaces).
    pub fn base_url(&self) -> String {
        base_url_for(self.addr)
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The bearer token it accepts.
    pub fn access_token(&self) -> &str {
        &self.state.access_token
    }

    /// The phone-number id of `POST /{version}/{phone-number-id}/messages`.
    pub fn phone_number_id(&self) -> &str {
        &self.state.phone_number_id
    }

    /// The WABA id of `GET /{version}/{waba-id}/message_templates`.
    pub fn waba_id(&self) -> &str {
        &self.state.waba_id
    }

    /// The business number as webhooks show it.
    pub fn display_phone_number(&self) -> &str {
        &self.state.display_phone_number
    }

    /// Every accepted send so far, in the order accepted.
    pub fn sends(&self) -> Vec<AcceptedSend> {
        self.state.sends()
    }

    /// Replaces the status-webhook settings (like `PUT /_sim/webhooks`).
    pub fn set_webhooks(&self, config: crate::webhooks::WebhookConfig) {
        self.state.set_webhooks(config);
    }

    /// Replaces the injected faults (like `PUT /_sim/faults`).
    pub fn set_faults(&self, faults: crate::faults::Faults) {
        self.state.set_faults(faults);
    }

    /// Moves the simulator's clock forward (like `POST /_sim/clock`).
    pub fn advance_clock(&self, by: Duration) {
        self.state.advance_clock(by);
    }

    /// Forgets the recorded sends (like `DELETE /_sim/sends`).
    pub fn clear_sends(&self) {
        self.state.clear_sends();
    }

    /// Changes the latency added before answering each send, from the next request on.
    pub fn set_latency(&self, d: Duration) {
        self.state.set_latency(d);
    }

    /// Replaces the set of numbers answered with 131026 (non-digits are dropped, so
    /// `+55 11 90000-0000` works too).
    pub fn set_not_on_whatsapp(&self, numbers: impl IntoIterator<Item = String>) {
        self.state.set_not_on_whatsapp(numbers);
    }

    /// Stops accepting connections, lets requests in flight finish (up to 5 s) and ends.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(mut task) = self.task.take()
            && tokio::time::timeout(SHUTDOWN_GRACE, &mut task)
                .await
                .is_err()
        {
            task.abort();
        }
        tracing::info!(addr = %self.addr, "wa-sim stopped");
    }
}

impl Drop for SimServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

impl std::fmt::Debug for SimServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimServer")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

pub(crate) fn base_url_for(addr: SocketAddr) -> String {
    let ip = match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    format!("http://{}", SocketAddr::new(ip, addr.port()))
}

fn router(state: Arc<SimState>) -> Router {
    Router::new()
        .route(
            "/{version}/{phone_number_id}/messages",
            post(messages::send),
        )
        .route("/{version}/{waba_id}/message_templates", get(listing::list))
        .route(
            "/_sim/sends",
            get(control::list_sends).delete(control::clear_sends),
        )
        .route("/_sim/health", get(control::health))
        .route(
            "/_sim/webhooks",
            get(control::get_webhooks).put(control::put_webhooks),
        )
        .route(
            "/_sim/faults",
            get(control::get_faults).put(control::put_faults),
        )
        .route("/_sim/inbound", post(control::inbound))
        .route("/_sim/clock", post(control::advance_clock))
        .fallback(unknown_path)
        .method_not_allowed_fallback(unsupported_method)
        .layer(middleware::from_fn(log_request))
        .with_state(state)
}

async fn unknown_path(uri: Uri) -> Response {
    GraphError::unknown_path(uri.path()).into_response()
}

async fn unsupported_method(method: Method, uri: Uri) -> Response {
    GraphError::unsupported_method(method.as_str(), uri.path()).into_response()
}

async fn log_request(req: Request, next: Next) -> Response {
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let started = std::time::Instant::now();
    let response = next.run(req).await;
    tracing::debug!(
        %method,
        %path,
        status = response.status().as_u16(),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "request"
    );
    response
}
