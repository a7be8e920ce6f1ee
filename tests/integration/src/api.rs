//! The HTTP API for integration tests: the real router, served in-process on a free port with
//! a context on the test's own moto resources and wa-sim, driven over HTTP with reqwest.

use std::sync::Arc;
use std::time::Duration;

use anna_api::config::{ApiConfig, ApiKeys, ApiLimits};
use anna_api::{ApiContext, SharedContext};
use anna_shared::aws::dynamo::now_rfc3339;
use anna_shared::config::{IntakeConfig, StoreConfig};
use anna_shared::schedule::{ReleaseReport, release_due_dispatches};
use anna_shared::whatsapp::client::CloudApiConfig;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::{ACCESS_TOKEN, PHONE_NUMBER_ID, TestStack, WABA_ID};

/// The API key the test server accepts.
pub const API_KEY: &str = "integration-test-key";
/// The app secret the test server checks webhook signatures with (wa-sim signs with it).
pub const APP_SECRET: &str = "integration-app-secret";
/// The verify token of the test server's webhook.
pub const VERIFY_TOKEN: &str = "integration-verify-token";

/// A running API server.
pub struct ApiServer {
    /// `http://127.0.0.1:PORT`
    pub base: String,
    pub client: reqwest::Client,
    pub ctx: SharedContext,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl ApiServer {
    pub async fn start(stack: &TestStack) -> Self {
        Self::start_with(stack, ApiLimits::default()).await
    }

    pub async fn start_with(stack: &TestStack, limits: ApiLimits) -> Self {
        Self::start_full(stack, limits, None).await
    }

    /// With conversation events published to `events` as well as stored.
    pub async fn start_publishing(
        stack: &TestStack,
        events: Arc<dyn anna_shared::events::EventPublisher>,
    ) -> Self {
        Self::start_full(stack, ApiLimits::default(), Some(events)).await
    }

    async fn start_full(
        stack: &TestStack,
        limits: ApiLimits,
        events: Option<Arc<dyn anna_shared::events::EventPublisher>>,
    ) -> Self {
        let config = ApiConfig {
            store: StoreConfig {
                table: stack.stack.names.table.clone(),
                retention_days: 1,
            },
            send_queue_url: stack.stack.send_queue_url.clone(),
            bucket: stack.stack.names.bucket.clone(),
            cloud_api: CloudApiConfig {
                base_url: stack.sim.base_url(),
                api_version: "v23.0".to_owned(),
                phone_number_id: PHONE_NUMBER_ID.to_owned(),
                waba_id: WABA_ID.to_owned(),
                access_token: ACCESS_TOKEN.to_owned(),
                timeout: Duration::from_secs(5),
            },
            template_ttl: Duration::from_secs(60),
            intake: IntakeConfig::default(),
            keys: ApiKeys::from_list(API_KEY),
            limits,
            webhook: anna_api::webhook::WebhookSecrets {
                app_secret: APP_SECRET.to_owned(),
                verify_token: VERIFY_TOKEN.to_owned(),
            },
            opt_out: Default::default(),
            event_bus: None,
        };
        let mut ctx = ApiContext::connect(&stack.sdk, config).expect("API context");
        if let Some(events) = events {
            ctx.events = events;
        }
        let ctx = Arc::new(ctx);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a free port");
        let base = format!("http://{}", listener.local_addr().expect("address"));
        let app = anna_api::router(ctx.clone());
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let shutdown = async {
                let _ = stopped.await;
            };
            if let Err(e) = axum::serve(listener, app)
                .with_graceful_shutdown(shutdown)
                .await
            {
                tracing::error!(error = %e, "test API server failed");
            }
        });
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .expect("HTTP client");
        Self {
            base,
            client,
            ctx,
            stop: Some(stop),
            task: Some(task),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A GET with the API key.
    pub fn get(&self, path: &str) -> reqwest::RequestBuilder {
        self.client.get(self.url(path)).bearer_auth(API_KEY)
    }

    /// A DELETE with the API key.
    pub fn delete(&self, path: &str) -> reqwest::RequestBuilder {
        self.client.delete(self.url(path)).bearer_auth(API_KEY)
    }

    /// A POST with the API key.
    pub fn post(&self, path: &str) -> reqwest::RequestBuilder {
        self.client.post(self.url(path)).bearer_auth(API_KEY)
    }

    /// GETs `path` and reads the JSON answer, asserting the status.
    pub async fn get_json(&self, path: &str, status: u16) -> serde_json::Value {
        let response = self.get(path).send().await.expect("request");
        read_json(response, status).await
    }

    /// POSTs `body` to `path` and reads the JSON answer, asserting the status.
    pub async fn post_json(
        &self,
        path: &str,
        body: &serde_json::Value,
        status: u16,
    ) -> serde_json::Value {
        let response = self.post(path).json(body).send().await.expect("request");
        read_json(response, status).await
    }

    /// What the local runner's timer does: releases scheduled dispatches due at `now`.
    pub async fn release_due(&self, now: &str) -> ReleaseReport {
        release_due_dispatches(&self.ctx.store, &self.ctx.queue, now)
            .await
            .expect("releasing scheduled dispatches")
    }

    /// Releases what is due now.
    pub async fn release_due_now(&self) -> ReleaseReport {
        self.release_due(&now_rfc3339()).await
    }

    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for ApiServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// The JSON body of `response`, after checking its status (the body is shown when it differs).
pub async fn read_json(response: reqwest::Response, status: u16) -> serde_json::Value {
    let actual = response.status().as_u16();
    let text = response.text().await.expect("body");
    assert_eq!(actual, status, "unexpected status; body: {text}");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}
