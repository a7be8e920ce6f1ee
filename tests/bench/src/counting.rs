//! Counting AWS requests from outside the code under test: an SDK interceptor on the clients
//! the benchmark builds, called once per HTTP attempt (retries included), keyed by service and
//! operation, and noting when the first response of each operation came back.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use aws_sdk_dynamodb::config::interceptors::{
    BeforeDeserializationInterceptorContextRef, BeforeTransmitInterceptorContextRef,
};
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::orchestrator::Metadata;

#[derive(Debug, Default)]
struct Counts {
    /// (service, operation) → HTTP attempts.
    requests: BTreeMap<(String, String), u64>,
    /// (service, operation) → when its first response arrived.
    first_response: BTreeMap<(String, String), Instant>,
}

/// Shared by every client it is installed on.
#[derive(Debug, Clone, Default)]
pub struct RequestCounter {
    counts: Arc<Mutex<Counts>>,
}

fn key(cfg: &ConfigBag) -> (String, String) {
    cfg.load::<Metadata>().map_or_else(
        || ("unknown".to_owned(), "unknown".to_owned()),
        |m| (m.service().to_owned(), m.name().to_owned()),
    )
}

impl RequestCounter {
    pub fn reset(&self) {
        let mut counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        *counts = Counts::default();
    }

    /// Requests per (service, operation).
    pub fn requests(&self) -> BTreeMap<(String, String), u64> {
        self.counts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .requests
            .clone()
    }

    /// Requests to one service (as the SDK names it: "DynamoDB", "SQS", "S3").
    pub fn service_total(&self, service: &str) -> u64 {
        self.requests()
            .iter()
            .filter(|((s, _), _)| s.eq_ignore_ascii_case(service))
            .map(|(_, n)| n)
            .sum()
    }

    /// When the first response of an operation came back.
    pub fn first_response(&self, service: &str, operation: &str) -> Option<Instant> {
        self.counts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .first_response
            .iter()
            .find(|((s, o), _)| s.eq_ignore_ascii_case(service) && o == operation)
            .map(|(_, at)| *at)
    }

    pub fn dynamodb(&self, sdk: &aws_config::SdkConfig) -> aws_sdk_dynamodb::Client {
        let config = aws_sdk_dynamodb::config::Builder::from(sdk)
            .interceptor(self.clone())
            .build();
        aws_sdk_dynamodb::Client::from_conf(config)
    }

    pub fn sqs(&self, sdk: &aws_config::SdkConfig) -> aws_sdk_sqs::Client {
        let config = aws_sdk_sqs::config::Builder::from(sdk)
            .interceptor(self.clone())
            .build();
        aws_sdk_sqs::Client::from_conf(config)
    }

    /// Path-style, as `anna_shared::aws::s3_client` builds it for an endpoint override.
    pub fn s3(&self, sdk: &aws_config::SdkConfig) -> aws_sdk_s3::Client {
        let config = aws_sdk_s3::config::Builder::from(sdk)
            .force_path_style(sdk.endpoint_url().is_some())
            .interceptor(self.clone())
            .build();
        aws_sdk_s3::Client::from_conf(config)
    }
}

impl Intercept for RequestCounter {
    fn name(&self) -> &'static str {
        "anna-bench-request-counter"
    }

    fn read_before_transmit(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let key = key(cfg);
        let mut counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        *counts.requests.entry(key).or_insert(0) += 1;
        Ok(())
    }

    fn read_after_transmit(
        &self,
        _context: &BeforeDeserializationInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let key = key(cfg);
        let now = Instant::now();
        let mut counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        counts.first_response.entry(key).or_insert(now);
        Ok(())
    }
}
