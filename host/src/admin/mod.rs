//! The admin API under `/admin/v1`: deploy functions, bind triggers.
//!
//! | method and path | body | answer |
//! |---|---|---|
//! | `PUT /functions/{name}` | component bytes, `Content-Type: application/wasm`; optional query `timeout=500ms&memory_mib=32` | 201 `{name, digest, size, ...}`; 400 with the compiler's reason |
//! | `GET /functions` | | 200 list |
//! | `GET /functions/{name}` | | 200 record, 404 |
//! | `DELETE /functions/{name}` | | 204, 404, 409 while a trigger uses it |
//! | `PUT /{triggers,sinks,sequences,parallels}/{name}` | JSON object (see `docs/routing.md`), e.g. `{"filter": {"type": ...}, "function": ..., "sink": ...}` | 201, 400 with the reason (nothing changed) |
//! | `GET /{kind}`, `GET /{kind}/{name}` | | 200, 404 |
//! | `DELETE /{kind}/{name}` | | 204, 404, 409 while another object refers to it |
//! | `GET /routing` | | 200 the whole routing table |

mod functions;
mod routing;

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::routing::get;
use axum::Router;

use crate::app::App;

/// Largest component accepted for upload.
pub const MAX_COMPONENT_BYTES: usize = 64 * 1024 * 1024;

/// The admin routes, to be nested under `/admin/v1`.
pub fn router() -> Router<Arc<App>> {
    Router::new()
        .route("/functions", get(functions::list))
        .route(
            "/functions/{name}",
            get(functions::get)
                .put(functions::put)
                .delete(functions::delete),
        )
        .layer(DefaultBodyLimit::max(MAX_COMPONENT_BYTES))
        .merge(kind::<crate::config::TriggerSpec>("triggers"))
        .merge(kind::<crate::config::SinkSpec>("sinks"))
        .merge(kind::<crate::config::SequenceSpec>("sequences"))
        .merge(kind::<crate::config::ParallelSpec>("parallels"))
        .route("/routing", get(routing::table))
        .route("/sources", get(routing::sources))
}

/// The four routes of one kind of routing object.
fn kind<K: routing::Kind>(plural: &str) -> Router<Arc<App>> {
    Router::new()
        .route(&format!("/{plural}"), get(routing::list::<K>))
        .route(
            &format!("/{plural}/{{name}}"),
            get(routing::get::<K>)
                .put(routing::put::<K>)
                .delete(routing::delete::<K>),
        )
}

/// Parse a path segment as a name, answering 400 when it is not one.
fn parse_name(raw: &str) -> Result<crate::registry::Name, crate::ingress::ApiError> {
    raw.parse().map_err(|e: crate::registry::InvalidName| {
        crate::ingress::ApiError::bad_request(e.to_string())
    })
}
