//! The admin listener (`--admin-listen`, default `127.0.0.1:8081`): the
//! admin API under `/admin/v1`, `GET /metrics`, `GET /healthz` and
//! `GET /readyz` ([`crate::readiness`]). Every request but the probes
//! passes [`crate::security::admin_guard`] (read
//! scope for `GET`, write scope for changes); every change is written to
//! the audit log before it is answered.
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
//! | `GET /sources` | | 200 the event sources |
//! | `GET /audit?limit=N` | | 200 the newest N (default 100) audit entries, oldest first |

mod compile;
mod functions;
mod routing;

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::routing::get;
use axum::{Extension, Json, Router};

pub use self::compile::{CompilePool, PoolError};
use crate::config::SourceSpec;
use crate::http::ApiError;
use crate::metrics::Metrics;
use crate::name::Name;
use crate::readiness::Readiness;
use crate::registry::RoutingStores;
use crate::routing::Routes;
use crate::runtime::Runtime;
use crate::security::{AuditEntry, Principal, Security};

/// What the admin listener's handlers share.
pub struct AdminState {
    /// The wasm runtime (and through it, the function store).
    pub runtime: Arc<Runtime>,
    /// The routing table that changes swap.
    pub routes: Arc<Routes>,
    /// Durable copies of the routing objects.
    pub stores: RoutingStores,
    /// The Kafka sinks the config file declares (`kafka:NAME` must name
    /// one of them).
    pub kafka_sinks: std::collections::BTreeSet<Name>,
    /// Tokens and the audit log.
    pub security: Arc<Security>,
    /// Upload limits and the compile pool.
    pub uploads: Uploads,
    /// Every metric, for `GET /metrics`.
    pub metrics: Metrics,
    /// The sources as the config file declares them (read-only).
    pub sources: std::collections::BTreeMap<Name, SourceSpec>,
    /// For `/readyz`.
    pub readiness: Readiness,
}

/// Upload limits and the pool uploads compile on.
pub struct Uploads {
    /// Where uploads compile.
    pub compile: CompilePool,
    /// Largest upload, in bytes.
    pub max_upload_bytes: usize,
    /// Longest an upload's body may take to arrive.
    pub body_timeout: std::time::Duration,
    /// The only component digests (lower-case hex) that may be uploaded,
    /// when not empty.
    pub allowed_digests: std::collections::BTreeSet<String>,
}

impl Uploads {
    /// The limits and pool for these settings.
    pub fn new(config: &crate::config::AdminConfig) -> Self {
        Self {
            compile: CompilePool::new(config),
            max_upload_bytes: config.max_upload_bytes,
            body_timeout: config.connections.body_timeout,
            allowed_digests: config
                .allowed_digests
                .iter()
                .map(|d| d.strip_prefix("sha256:").unwrap_or(d).to_ascii_lowercase())
                .collect(),
        }
    }
}

/// The whole router of the admin listener.
pub fn router(state: Arc<AdminState>) -> Router {
    Router::new()
        .nest("/admin/v1", api())
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .route(
            "/readyz",
            get(|State(s): State<Arc<AdminState>>| async move { s.readiness.stage().answer() }),
        )
        .layer(axum::middleware::from_fn_with_state(
            state.security.clone(),
            crate::security::admin_guard,
        ))
        .with_state(state)
}

/// `GET /metrics`: the Prometheus text exposition.
async fn metrics(State(state): State<Arc<AdminState>>) -> impl axum::response::IntoResponse {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(),
    )
}

/// The admin routes, nested under `/admin/v1`.
fn api() -> Router<Arc<AdminState>> {
    Router::new()
        .route("/functions", get(functions::list))
        .route(
            "/functions/{name}",
            get(functions::get)
                .put(functions::put)
                .delete(functions::delete),
        )
        .route("/audit", get(audit))
        .merge(kind::<crate::config::TriggerSpec>("triggers"))
        .merge(kind::<crate::config::SinkSpec>("sinks"))
        .merge(kind::<crate::config::SequenceSpec>("sequences"))
        .merge(kind::<crate::config::ParallelSpec>("parallels"))
        .route("/routing", get(routing::table))
        .route("/sources", get(routing::sources))
}

/// The four routes of one kind of routing object.
fn kind<K: crate::routing::Kind>(plural: &str) -> Router<Arc<AdminState>> {
    Router::new()
        .route(&format!("/{plural}"), get(routing::list::<K>))
        .route(
            &format!("/{plural}/{{name}}"),
            get(routing::get::<K>)
                .put(routing::put::<K>)
                .delete(routing::delete::<K>),
        )
}

/// `?limit=N` of `GET /audit`.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct AuditQuery {
    limit: Option<usize>,
}

/// `GET /audit`: the newest entries, oldest first.
async fn audit(
    State(state): State<Arc<AdminState>>,
    Query(q): Query<AuditQuery>,
) -> Json<Vec<AuditEntry>> {
    Json(state.security.audit.recent(q.limit.unwrap_or(100)))
}

/// Record one change in the audit log (written and fsync'd on a blocking
/// thread); a change that cannot be recorded is not made (the caller checks
/// before changing anything when it can).
async fn record(
    state: &AdminState,
    who: &Option<Extension<Principal>>,
    action: &'static str,
    kind: &'static str,
    name: &str,
    digest: Option<String>,
) -> Result<(), ApiError> {
    let token = who
        .as_ref()
        .map_or(crate::security::ANONYMOUS, |Extension(p)| p.name.as_str())
        .to_owned();
    let (security, name) = (state.security.clone(), name.to_owned());
    tokio::task::spawn_blocking(move || {
        security
            .audit
            .record(&token, action, kind, &name, digest)
            .map_err(|e| ApiError::internal(format!("writing the audit log: {e}")))
    })
    .await
    .map_err(ApiError::internal)?
}

/// Parse a path segment as a name, answering 400 when it is not one.
fn parse_name(raw: &str) -> Result<Name, ApiError> {
    raw.parse()
        .map_err(|e: crate::name::InvalidName| ApiError::bad_request(e.to_string()))
}

/// An [`AdminState`] over a fresh data directory `dir` with the default
/// config, for the handlers' unit tests.
#[cfg(test)]
fn test_state(dir: &std::path::Path) -> Arc<AdminState> {
    let config = crate::config::Config::default();
    let metrics = Metrics::new();
    let functions = Arc::new(crate::registry::FunctionStore::open(dir).unwrap());
    let runtime = Runtime::new(config.runtime.clone(), functions, metrics.runtime.clone()).unwrap();
    Arc::new(AdminState {
        runtime: Arc::new(runtime),
        routes: Arc::new(Routes::default()),
        stores: RoutingStores::open(dir).unwrap(),
        kafka_sinks: Default::default(),
        security: Arc::new(Security::load(&config, dir, metrics.security.clone()).unwrap()),
        uploads: Uploads::new(&config.admin),
        metrics,
        sources: Default::default(),
        readiness: crate::readiness::Readiness::new(),
    })
}
