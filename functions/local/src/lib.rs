//! anna-notify on one machine: provisioning of the local stack, event-source emulation
//! (the runner), and the demo. Tests use the same pieces.

pub mod demo;
pub mod provision;
pub mod runner;
