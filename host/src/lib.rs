//! Sluice: a WebAssembly function host for CloudEvents.
//!
//! One event's path through the host (see `docs/architecture.md`):
//!
//! 1. [`ingress`] receives an HTTP request and [`cloudevents`] decodes it
//!    into validated [`event::Event`]s, which it hands to the [`broker`]
//!    (in memory, the durable log or Kafka: the one way into routing).
//! 2. [`routing`] finds every trigger whose filters the event passes
//!    ([`cesql`] evaluates CloudEvents SQL filters).
//! 3. [`delivery`] starts one task per matching trigger, which sends the
//!    event to the trigger's subscriber (a function the [`runtime`] runs in
//!    a fresh wasm sandbox, an HTTP service, a sequence or a parallel), with
//!    retries and a dead letter.
//! 4. The reply goes to the trigger's reply destination: a sink ([`sinks`]),
//!    a function, or the broker again (see `docs/routing.md`).
//!
//! [`sources`] emit events on schedules (ping sources, source functions)
//! into the broker, a function or a sink.
//!
//! [`registry`] stores what users deploy through [`admin`] or declare in
//! [`config`]; [`app`] assembles the pieces; [`cli`] is the command line.
//! [`security`] guards both listeners (tokens, limits, TLS, audit log).

pub mod admin;
pub mod app;
pub mod broker;
pub mod cesql;
pub mod cli;
pub mod cloudevents;
pub mod config;
pub mod delivery;
pub mod durable;
pub mod event;
pub mod files;
pub mod http;
pub mod ingress;
pub mod kafka;
pub mod metrics;
pub mod name;
pub mod readiness;
pub mod registry;
pub mod routing;
pub mod runtime;
pub mod security;
pub mod sinks;
pub mod sources;
