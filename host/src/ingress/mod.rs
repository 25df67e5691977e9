//! The event listener (`--listen`): only what senders need.
//!
//! - `POST /`: the broker ingress. Decodes the event(s), answers 202 once
//!   every matching trigger's delivery has started.
//! - `POST /functions/{name}`: direct invocation (the Knative "callable"
//!   contract): the reply event in the response, 204 when there is none.
//! - `OPTIONS` on both: the CloudEvents webhook handshake; other methods
//!   get 405 (see [`webhook`]).
//! - `GET /healthz`: liveness.
//!
//! Every `POST` first passes [`crate::security::sender_guard`] (sender
//! token, rate limit; only when either is configured) and then [`limits`]
//! (body size and deadline, JSON shape), so a refused request never
//! reaches a handler. The admin API and
//! `/metrics` are on the admin listener ([`crate::admin`]); the composition
//! root (`crate::app`) serves both.

mod events;
mod functions;
mod webhook;

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::{from_fn_with_state, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;

use crate::broker::Broker;
use crate::cloudevents::JsonLimits;
use crate::config::IngressConfig;
use crate::http::{body, ApiError};
use crate::runtime::Runtime;
use crate::security::Security;

/// What the event listener's handlers share.
pub struct IngressState {
    /// The one way into routing.
    pub broker: Arc<Broker>,
    /// Runs `POST /functions/{name}`.
    pub runtime: Arc<Runtime>,
    /// Body, deadline and JSON-shape limits.
    pub limits: IngressConfig,
    /// Sender tokens and rate limits.
    pub security: Arc<Security>,
}

/// The router of the event listener.
pub fn router(state: Arc<IngressState>) -> Router {
    let events = Router::new()
        .route(
            "/",
            post(events::accept)
                .options(webhook::options_ingress)
                .fallback(webhook::method_not_allowed),
        )
        .route(
            "/functions/{name}",
            post(functions::invoke)
                .options(webhook::options_function)
                .fallback(webhook::method_not_allowed),
        )
        .route_layer(from_fn_with_state(state.clone(), limits));
    let events = if state.security.guards_senders() {
        events.route_layer(from_fn_with_state(
            state.security.clone(),
            crate::security::sender_guard,
        ))
    } else {
        events
    };
    events
        .route("/healthz", get(|| async { "ok\n" }))
        .fallback(not_here)
        .with_state(state)
}

/// Anything else: 404, naming where the admin API went.
async fn not_here(method: Method, uri: axum::http::Uri) -> ApiError {
    let hint = if uri.path().starts_with("/admin") || uri.path() == "/metrics" {
        ": the admin API and /metrics are served on the admin listener (--admin-listen)"
    } else {
        ""
    };
    ApiError::new(
        StatusCode::NOT_FOUND,
        format!("nothing at {method} {}{hint}", uri.path()),
    )
}

/// Read a `POST` body within `ingress.max_body_bytes` and
/// `ingress.connections.body_timeout`, and check a structured or batched
/// body against `ingress.max_json_depth` and `ingress.max_attributes`,
/// before the handler runs.
async fn limits(State(state): State<Arc<IngressState>>, request: Request, next: Next) -> Response {
    if request.method() != Method::POST {
        return next.run(request).await;
    }
    let (parts, body) = request.into_parts();
    let c = &state.limits;
    let bytes = match body::read_within(
        &parts.headers,
        body,
        c.max_body_bytes,
        c.connections.body_timeout,
        "ingress.max_body_bytes",
    )
    .await
    {
        Ok(b) => b,
        Err(e) => return e.into_response(),
    };
    let shape = JsonLimits {
        max_depth: c.max_json_depth,
        max_members: c.max_attributes,
    };
    if let Err(e) = crate::cloudevents::check_limits(&parts.headers, &bytes, &shape) {
        return ApiError::from(e).into_response();
    }
    next.run(Request::from_parts(parts, axum::body::Body::from(bytes)))
        .await
}
