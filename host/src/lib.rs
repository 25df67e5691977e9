//! Sluice: a WebAssembly function host for CloudEvents.
//!
//! One event's path through the host (see `docs/architecture.md`):
//!
//! 1. [`ingress`] receives an HTTP request and [`cloudevents`] decodes it
//!    into validated [`event::Event`]s.
//! 2. [`routing`] finds every trigger whose filter the event passes.
//! 3. [`delivery`] starts one task per matching trigger, which asks the
//!    [`runtime`] to run the trigger's function in a fresh wasm sandbox.
//! 4. The function's reply goes to the trigger's sink ([`sinks`]).
//!
//! [`registry`] stores what users deploy through [`admin`] or declare in
//! [`config`]; [`app`] assembles the pieces; [`cli`] is the command line.

pub mod admin;
pub mod app;
pub mod cli;
pub mod cloudevents;
pub mod config;
pub mod delivery;
pub mod durable;
pub mod event;
pub mod ingress;
pub mod kafka;
pub mod metrics;
pub mod registry;
pub mod routing;
pub mod runtime;
pub mod sinks;
