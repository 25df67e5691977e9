//! `/admin/v1/functions`: upload, list and remove function components.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::Json;

use super::parse_name;
use crate::app::App;
use crate::config::FunctionSettings;
use crate::ingress::ApiError;
use crate::registry::FunctionRecord;
use crate::runtime::CompileError;

/// Optional limits given with an upload.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UploadParams {
    /// CPU deadline, e.g. `500ms`.
    #[serde(default, with = "humantime_serde")]
    timeout: Option<std::time::Duration>,
    /// Memory cap in MiB.
    memory_mib: Option<u32>,
    /// Most invocations at once.
    max_concurrency: Option<u32>,
    /// Most direct invocations waiting before 429.
    max_queue: Option<u32>,
    /// Events per instance before it is replaced.
    reuse: Option<u32>,
}

/// `PUT /functions/{name}`: validate, precompile and store a component.
/// A refused upload leaves the deployed version in place.
pub async fn put(
    State(app): State<Arc<App>>,
    Path(name): Path<String>,
    Query(params): Query<UploadParams>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, Json<FunctionRecord>), ApiError> {
    let name = parse_name(&name)?;
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    if !ct.is_some_and(|ct| {
        ct.split(';')
            .next()
            .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/wasm"))
    }) {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "upload the component with Content-Type: application/wasm",
        ));
    }
    let settings = FunctionSettings {
        timeout: params.timeout,
        memory_mib: params.memory_mib,
        max_concurrency: params.max_concurrency,
        max_queue: params.max_queue,
        reuse: params.reuse,
        env: Default::default(),
    };
    settings
        .validate(app.runtime.config())
        .map_err(ApiError::bad_request)?;
    let compiled = app
        .runtime
        .compile(body.clone())
        .await
        .map_err(|e| match e {
            CompileError::Invalid(reason) => ApiError::bad_request(reason),
            CompileError::Internal(reason) => ApiError::internal(reason),
        })?;
    let functions = app.runtime.functions().clone();
    let record = tokio::task::spawn_blocking(move || {
        functions.put(
            &name,
            &body,
            Some((&compiled.engine_key, &compiled.artifact)),
            settings,
        )
    })
    .await
    .map_err(ApiError::internal)??;
    app.runtime.unload(&record.name);
    tracing::info!(function = %record.name, digest = %record.digest, size = record.size, "deployed");
    Ok((StatusCode::CREATED, Json(record)))
}

/// `GET /functions`.
pub async fn list(State(app): State<Arc<App>>) -> Json<Vec<FunctionRecord>> {
    Json(app.runtime.functions().list())
}

/// `GET /functions/{name}`.
pub async fn get(
    State(app): State<Arc<App>>,
    Path(name): Path<String>,
) -> Result<Json<FunctionRecord>, ApiError> {
    let name = parse_name(&name)?;
    app.runtime
        .functions()
        .get(&name)
        .map(Json)
        .ok_or_else(|| ApiError::not_found("function", &name))
}

/// `DELETE /functions/{name}`; refused while a trigger, sequence or parallel still uses it.
pub async fn delete(
    State(app): State<Arc<App>>,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    let name = parse_name(&name)?;
    let users = app.routes.snapshot().users_of_function(&name);
    if !users.is_empty() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            format!(
                "function `{name}` is used by {}; delete them first",
                users.join(", ")
            ),
        ));
    }
    if !app.runtime.functions().remove(&name)? {
        return Err(ApiError::not_found("function", &name));
    }
    app.runtime.unload(&name);
    tracing::info!(function = %name, "removed");
    Ok(StatusCode::NO_CONTENT)
}
