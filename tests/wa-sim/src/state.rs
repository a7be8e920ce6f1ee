//! The state one simulator instance shares between its handlers and its [`crate::SimServer`].

use std::collections::{HashMap, HashSet};
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
    /// When each customer (by `wa_id`) last wrote, on the simulator's clock.
    last_inbound: Mutex<HashMap<String, chrono::DateTime<chrono::Utc>>>,
    /// How far the simulator's clock is ahead of the system's (`POST /_sim/clock`).
    clock_offset: Mutex<chrono::Duration>,
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
            last_inbound: Mutex::new(HashMap::new()),
            clock_offset: Mutex::new(chrono::Duration::zero()),
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
                        self.now(),
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

    /// The simulator's clock: the system's, plus what tests advanced it by.
    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        chrono::Utc::now() + *lock(&self.clock_offset)
    }

    /// Moves the simulator's clock forward (never back: windows only ever pass).
    pub fn advance_clock(&self, by: Duration) {
        let by = chrono::Duration::from_std(by).unwrap_or(chrono::Duration::zero());
        *lock(&self.clock_offset) += by;
    }

    /// The customer with `wa_id` wrote at `at`.
    pub fn record_inbound(&self, wa_id: &str, at: chrono::DateTime<chrono::Utc>) {
        let mut last = lock(&self.last_inbound);
        let entry = last.entry(wa_id.to_owned()).or_insert(at);
        if at > *entry {
            *entry = at;
        }
    }

    /// Whether the customer with `wa_id` wrote within the last 24 hours.
    pub fn window_open(&self, wa_id: &str) -> bool {
        let now = self.now();
        lock(&self.last_inbound)
            .get(wa_id)
            .is_some_and(|at| now - *at < chrono::Duration::hours(24))
    }

    /// The webhook client, for control endpoints that post notifications themselves.
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// The accepted send with this `wamid`.
    pub fn send_by_wamid(&self, wamid: &str) -> Option<AcceptedSend> {
        lock(&self.sends).iter().find(|s| s.wamid == wamid).cloned()
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
