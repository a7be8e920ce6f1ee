//! anna-notify on one machine: provisioning of the local stack, event-source emulation
//! (the runner), the API server and the demo. Tests use the same pieces.

pub mod api;
pub mod demo;
pub mod provision;
pub mod runner;
