//! wa-sim: a WhatsApp Cloud API simulator for anna-notify's tests and demo.
//!
//! Start it in-process on a free port:
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use wa_sim::{SimConfig, SimServer};
//! let sim = SimServer::start(SimConfig::default(), "127.0.0.1:0".parse()?).await?;
//! let url = format!("{}/v23.0/{}/messages", sim.base_url(), sim.phone_number_id());
//! // … send with `Authorization: Bearer sim-token` …
//! assert!(sim.sends().is_empty());
//! sim.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! HTTP surface (any `/{version}/` of the form `vN.N`):
//!
//! - `POST /{version}/{phone-number-id}/messages`: template sends, validated like the Cloud API
//!   against the template catalogue; the success answer or the Graph error object.
//! - `GET /{version}/{waba-id}/message_templates`: the catalogue, cursor-paged.
//! - `GET /_sim/sends[?biz_prefix=…]`, `DELETE /_sim/sends`, `GET /_sim/health`,
//!   `GET`/`PUT /_sim/faults` (see [`Faults`]), `GET`/`PUT /_sim/webhooks`.
//! - `POST /_sim/inbound`: a simulated customer writes (`{"from", "text"}`) or taps a
//!   quick-reply button of a template it was sent (`{"button": {"wamid", "index"}}`); the
//!   signed webhook is posted before the answer, and the customer's 24-hour window opens.
//! - `POST /_sim/clock` (`{"advance_seconds": n}`): moves the simulator's clock forward.
//!
//! Free-form `text` sends are accepted only inside the recipient's 24-hour window (131047
//! otherwise).
//!
//! Module map, and where the later pieces go:
//!
//! - `messages`: the send pipeline; `messages::template` validates templates,
//!   `messages::free_form` takes text inside the 24-hour window (131047 outside it).
//!   Fault injection and the throughput limit (130429) slot into the pipeline before the
//!   recipient check (see the comment there).
//! - `listing`: `message_templates`. `templates`: the parsed catalogue.
//! - `state`: shared state; `SimState::record` is where signed status webhooks get scheduled.
//! - `control`: `/_sim/…` endpoints: recorded sends, faults, webhooks, inbound messages, clock.
//! - `error`: the Graph error object. `graph`: version and bearer checks. `phone`: `to` and
//!   `wa_id`. `ids`: `wamid`s and paging cursors.

mod config;
mod control;
mod error;
mod faults;
mod graph;
mod ids;
mod listing;
mod messages;
mod phone;
mod sends;
mod server;
mod state;
mod templates;
mod webhooks;

pub use config::{DEFAULT_TEMPLATES_JSON, SimConfig, default_templates, parse_templates};
pub use error::GraphError;
pub use faults::Faults;
pub use sends::AcceptedSend;
pub use server::SimServer;
pub use webhooks::{WebhookConfig, signature};
