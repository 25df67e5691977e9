//! End-to-end tests: each starts the real `sluice` binary on a loopback
//! port, deploys real components built from `functions/` (run
//! `cargo xtask functions` first; `cargo xtask test` does), and talks to it
//! over HTTP. Replies are caught by a real HTTP sink server in the test.

mod harness;

mod admin;
mod broker;
mod cesql;
mod cloudevents_http;
mod config_file;
mod data_plane;
mod durability;
mod event_path;
mod interop;
mod isolation;
mod kafka;
mod kubernetes;
mod outbound;
mod polyglot;
mod readiness;
mod routing;
mod runtime;
mod scaffold;
mod security;
mod shutdown;
mod sink_binding;
mod sources;
