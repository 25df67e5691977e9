//! The event listener (`--listen`): only what senders need.
//!
//! - `POST /`: the broker ingress. Decodes the event(s), answers 202 once
//!   every matching trigger's delivery has started.
//! - `POST /functions/{name}`: direct invocation (the Knative "callable"
//!   contract): the reply event in the response, 204 when there is none.
//! - `OPTIONS` on both: the CloudEvents webhook handshake; other methods
//!   get 405 (see [`webhook`]).
//! - `GET /healthz`: liveness; `GET /readyz`: readiness
//!   ([`crate::readiness`]). While the host drains at shutdown, both
//!   `POST`s are refused with 503.
//!
//! [`Ingress`] is the listener's service. The two `POST` endpoints are
//! matched by hand and go straight to their handlers, after [`admit`]:
//! the sender check ([`crate::security::check_sender`]: token, rate
//! limit; only when either is configured), then the body's size and
//! deadline and the JSON shape, so a refused request never reaches a
//! handler. Everything else goes through an axum router. (The two `POST`s
//! are the hot path: the router with its layers and extractors cost about
//! 6.6k instructions per event, docs/performance.md.) The admin API and
//! `/metrics` are on the admin listener ([`crate::admin`]); the
//! composition root (`crate::app`) serves both.

mod events;
mod functions;
mod webhook;

use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::request::Parts;
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, options};
use axum::Router;
use futures_util::future::BoxFuture;
use tower::{Service, ServiceExt as _};

use crate::broker::Broker;
use crate::cloudevents::JsonLimits;
use crate::config::IngressConfig;
use crate::http::{body, ApiError};
use crate::readiness::Readiness;
use crate::runtime::Runtime;
use crate::security::{ClientAddr, Security, SenderRefused};

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
    /// For `/readyz`, and to refuse events while draining.
    pub readiness: Readiness,
}

/// The event listener's service: see the [module docs](self).
#[derive(Clone)]
pub struct Ingress {
    state: Arc<IngressState>,
    router: Router,
}

impl Ingress {
    /// The service over `state`.
    pub fn new(state: Arc<IngressState>) -> Self {
        Self {
            router: router(state.clone()),
            state,
        }
    }
}

/// Where a request goes.
enum Endpoint<'a> {
    /// `POST /`.
    Broker,
    /// `POST /functions/{name}`, the name as it is in the path.
    Function(&'a str),
    /// Anything else: the router.
    Other,
}

impl<'a> Endpoint<'a> {
    fn of(method: &Method, path: &'a str) -> Self {
        if method != Method::POST {
            return Self::Other;
        }
        if path == "/" {
            return Self::Broker;
        }
        match path.strip_prefix("/functions/") {
            Some(name) if !name.is_empty() && !name.contains('/') => Self::Function(name),
            _ => Self::Other,
        }
    }
}

impl Service<Request> for Ingress {
    type Response = Response;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Response, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let state = self.state.clone();
        let endpoint = Endpoint::of(request.method(), request.uri().path());
        if !matches!(endpoint, Endpoint::Other) && state.readiness.is_draining() {
            // Stopping: what is accepted now could not be delivered.
            return Box::pin(async {
                Ok(
                    ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "the host is shutting down")
                        .into_response(),
                )
            });
        }
        match endpoint {
            Endpoint::Broker => Box::pin(async move {
                Ok(match admit(&state, request).await {
                    Ok((parts, body)) => events::accept(&state, parts, body).await.into_response(),
                    Err(refused) => refused.into_response(),
                })
            }),
            Endpoint::Function(name) => {
                // Decoded here, while the path is borrowed; a bad name is
                // answered after `admit`, like any other request.
                let name = functions::decode_name(name);
                Box::pin(async move {
                    Ok(match (admit(&state, request).await, name) {
                        (Err(refused), _) => refused.into_response(),
                        (Ok(_), Err(not_a_name)) => not_a_name.into_response(),
                        (Ok((parts, body)), Ok(name)) => {
                            functions::invoke(&state, &name, parts, body)
                                .await
                                .into_response()
                        }
                    })
                })
            }
            Endpoint::Other => Box::pin(self.router.clone().oneshot(request)),
        }
    }
}

/// The router of everything but the two `POST`s: the webhook handshake,
/// 405 for other methods, `/healthz`, `/readyz` and the 404s.
fn router(state: Arc<IngressState>) -> Router {
    // A POST to either path never reaches this router (see `Ingress`).
    Router::new()
        .route(
            "/",
            options(webhook::options_ingress).fallback(webhook::method_not_allowed),
        )
        .route(
            "/functions/{name}",
            options(webhook::options_function).fallback(webhook::method_not_allowed),
        )
        .route("/healthz", get(|| async { "ok\n" }))
        .route(
            "/readyz",
            get(|State(s): State<Arc<IngressState>>| async move { s.readiness.stage().answer() }),
        )
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

/// Why [`admit`] refused a `POST`.
enum Refused {
    /// The sender check: 401, 429.
    Sender(SenderRefused),
    /// The body: 413, 408, 400, 415.
    Request(ApiError),
}

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        match self {
            Self::Sender(e) => e.into_response(),
            Self::Request(e) => e.into_response(),
        }
    }
}

/// Let a `POST` in: the sender check (when configured), then its body,
/// read within `ingress.max_body_bytes` and
/// `ingress.connections.body_timeout` and, when structured or batched,
/// checked against `ingress.max_json_depth` and `ingress.max_attributes`.
async fn admit(state: &IngressState, request: Request) -> Result<(Parts, Bytes), Refused> {
    if state.security.guards_senders() {
        let client = request.extensions().get::<ClientAddr>().copied();
        crate::security::check_sender(&state.security, request.headers(), client)
            .map_err(Refused::Sender)?;
    }
    let (parts, body) = request.into_parts();
    let c = &state.limits;
    let bytes = body::read_within(
        &parts.headers,
        body,
        c.max_body_bytes,
        c.connections.body_timeout,
        "ingress.max_body_bytes",
    )
    .await
    .map_err(Refused::Request)?;
    let shape = JsonLimits {
        max_depth: c.max_json_depth,
        max_members: c.max_attributes,
    };
    crate::cloudevents::check_limits(&parts.headers, &bytes, &shape)
        .map_err(|e| Refused::Request(e.into()))?;
    Ok((parts, bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_two_posts_are_endpoints() {
        let of = |method: &Method, path| Endpoint::of(method, path);
        assert!(matches!(of(&Method::POST, "/"), Endpoint::Broker));
        assert!(matches!(
            of(&Method::POST, "/functions/echo"),
            Endpoint::Function("echo")
        ));
        for path in ["/functions/", "/functions", "/functions/a/b", "/x", ""] {
            assert!(matches!(of(&Method::POST, path), Endpoint::Other), "{path}");
        }
        for method in [Method::GET, Method::OPTIONS, Method::PUT] {
            assert!(matches!(of(&method, "/"), Endpoint::Other));
            assert!(matches!(of(&method, "/functions/echo"), Endpoint::Other));
        }
    }
}
