//! The HTTP front door: CloudEvents in, on one listener with the admin API.
//!
//! - `POST /`: the broker ingress. Decodes the event(s), answers 202 once
//!   every matching trigger's delivery has started.
//! - `POST /functions/{name}`: direct invocation (the Knative "callable"
//!   contract): the reply event in the response, 204 when there is none.
//! - `/admin/v1/...`: see [`crate::admin`].
//! - `OPTIONS` on both: the CloudEvents webhook handshake; other methods
//!   get 405 (see [`webhook`]).
//! - `GET /healthz`: liveness; `GET /metrics`: Prometheus metrics.

mod body;
mod events;
mod functions;
mod response;
mod webhook;

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::Router;

pub use self::body::MIN_BODY_LIMIT;
pub use self::response::ApiError;
use crate::app::App;

/// The full HTTP router of a host.
pub fn router(app: Arc<App>) -> Router {
    let max_body = app.ingress.max_body_bytes;
    Router::new()
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
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/metrics", get(metrics))
        .nest("/admin/v1", crate::admin::router())
        .layer(DefaultBodyLimit::max(max_body))
        .with_state(app)
}

/// `GET /metrics`: the Prometheus text exposition.
async fn metrics(
    axum::extract::State(app): axum::extract::State<Arc<App>>,
) -> impl axum::response::IntoResponse {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        app.metrics.render(),
    )
}

/// Serve `router` on `listener` until `shutdown` completes, then let
/// running deliveries finish.
///
/// # Errors
/// When the server fails.
pub async fn serve(
    app: Arc<App>,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(app.clone()))
        .with_graceful_shutdown(shutdown)
        .await?;
    app.broker.shutdown().await;
    Ok(())
}
