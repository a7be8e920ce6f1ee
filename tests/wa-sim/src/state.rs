//! The state one simulator instance shares between its handlers and its [`crate::SimServer`].

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use crate::config::SimConfig;
use crate::faults::{FaultState, Faults, Verdict};
use crate::phone;
use crate::sends::AcceptedSend;
use crate::templates::Catalog;
use crate::webhooks::{self, WebhookConfig};

pub struct SimState {
    pub access_token: String,
    pub waba_id: String,
    pub phone_number_id: String,
    pub display_phone_number: String,
    pub catalog: Catalog,
    /// Where the server listens; the fallback host for `paging.next` links.
    pub local_addr: SocketAddr,
    latency: Mutex<Duration>,
    not_on_whatsapp: Mutex<HashSet<String>>,
    sends: Mutex<Vec<AcceptedSend>>,
    faults: Mutex<FaultState>,
    webhooks: Mutex<WebhookConfig>,
    http: reqwest::Client,
}

/// Locks a mutex, carrying on with the data if a panicking thread poisoned it: every critical
/// section here leaves the data consistent.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl SimState {
    pub fn new(config: SimConfig, local_addr: SocketAddr) -> anyhow::Result<Self> {
        let catalog = Catalog::from_values(&config.templates)?;
        Ok(Self {
            access_token: config.access_token,
            waba_id: config.waba_id,
            phone_number_id: config.phone_number_id,
            display_phone_number: config.display_phone_number,
            catalog,
            local_addr,
            latency: Mutex::new(config.latency),
            not_on_whatsapp: Mutex::new(normalise_numbers(config.not_on_whatsapp)),
            sends: Mutex::new(Vec::new()),
            faults: Mutex::new(FaultState::new(config.faults)),
            webhooks: Mutex::new(config.webhooks),
            http: reqwest::Client::new(),
        })
    }

    pub fn latency(&self) -> Duration {
        *lock(&self.latency)
    }

    pub fn set_latency(&self, d: Duration) {
        *lock(&self.latency) = d;
    }

    pub fn set_not_on_whatsapp(&self, numbers: impl IntoIterator<Item = String>) {
        *lock(&self.not_on_whatsapp) = normalise_numbers(numbers);
    }

    /// Whether a recipient (its digits, or the `wa_id` they map to) is configured as not on
    /// WhatsApp.
    pub fn is_not_on_whatsapp(&self, digits: &str, wa_id: &str) -> bool {
        let set = lock(&self.not_on_whatsapp);
        set.contains(digits) || set.contains(wa_id)
    }

    pub fn faults(&self) -> Faults {
        lock(&self.faults).faults.clone()
    }

    /// Replaces the faults; the throughput window and pair-rate memory start afresh.
    pub fn set_faults(&self, faults: Faults) {
        *lock(&self.faults) = FaultState::new(faults);
    }

    pub fn fault_verdict(&self, recipient: &str) -> Verdict {
        lock(&self.faults).check(recipient, std::time::Instant::now())
    }

    pub fn lose_answer(&self) -> bool {
        lock(&self.faults).lose_answer()
    }

    pub fn webhooks(&self) -> WebhookConfig {
        lock(&self.webhooks).clone()
    }

    pub fn set_webhooks(&self, config: WebhookConfig) {
        *lock(&self.webhooks) = config;
    }

    /// Records an accepted send and, when a webhook URL is set, schedules its signed status
    /// webhooks (on the current runtime: the handler's).
    pub fn record(&self, send: AcceptedSend) {
        let config = self.webhooks();
        if let Some(url) = config.url.clone() {
            let bodies: Vec<_> = webhooks::plan(&config)
                .into_iter()
                .map(|status| {
                    webhooks::status_body(
                        &self.waba_id,
                        &self.phone_number_id,
                        &self.display_phone_number,
                        &send,
                        status,
                    )
                })
                .collect();
            let http = self.http.clone();
            let step = std::time::Duration::from_millis(config.step_ms);
            tokio::spawn(async move {
                for body in bodies {
                    tokio::time::sleep(step).await;
                    webhooks::post(&http, &url, &config.app_secret, &body).await;
                }
            });
        }
        lock(&self.sends).push(send);
    }

    pub fn sends(&self) -> Vec<AcceptedSend> {
        lock(&self.sends).clone()
    }

    /// Clears the record; answers how many sends it held.
    pub fn clear_sends(&self) -> usize {
        let mut sends = lock(&self.sends);
        let n = sends.len();
        sends.clear();
        n
    }
}

fn normalise_numbers(numbers: impl IntoIterator<Item = String>) -> HashSet<String> {
    numbers
        .into_iter()
        .map(|n| phone::digits_only(&n))
        .filter(|n| !n.is_empty())
        .collect()
}
