//! Pure domain logic: no AWS types, no I/O.

pub mod conversation;
pub mod dispatch;
pub mod intake;
pub mod message;
pub mod phone;
pub mod template;
