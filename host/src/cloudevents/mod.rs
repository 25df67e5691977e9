//! The CloudEvents HTTP protocol binding (spec v1.0.2,
//! `http-protocol-binding.md`) and JSON event format (`json-format.md`), in
//! both directions, over the host's [`Event`](crate::event::Event).
//!
//! - [`decode`] turns an HTTP request's headers and body into events,
//!   detecting binary, structured or batched mode (§3).
//! - [`encode`] turns an event into headers and a body in the mode asked.
//!
//! Every rule enforced here, with its status code, is listed in
//! `docs/cloudevents.md`.

mod binary;
mod decode;
mod encode;
mod error;
mod json;
mod mode;
#[cfg(test)]
mod proptests;

pub use decode::{check_limits, decode, decode_with, Decoded};
pub use encode::{encode, encode_batch, Encoded};
pub use error::DecodeError;
pub use json::JsonLimits;
pub use mode::Mode;
