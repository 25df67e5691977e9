//! `/admin/v1/functions`: upload, list and remove function components.

use std::sync::Arc;

use axum::extract::{Path, Query, Request, State};
use axum::http::{header, StatusCode};
use axum::{Extension, Json};

use super::AdminState;
use super::{parse_name, record, PoolError};
use crate::config::{Destination, FunctionSettings};
use crate::http::ApiError;
use crate::name::Name;
use crate::registry::FunctionRecord;
use crate::runtime::CompileError;
use crate::security::Principal;

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

/// `PUT /functions/{name}`: validate, precompile (on the bounded pool)
/// and store a component. A refused upload leaves the deployed version in
/// place. The body is read within `admin.max_upload_bytes` (413) and
/// `admin.connections.body_timeout` (408).
pub async fn put(
    State(state): State<Arc<AdminState>>,
    Path(name): Path<String>,
    Query(params): Query<UploadParams>,
    who: Option<Extension<Principal>>,
    request: Request,
) -> Result<(StatusCode, Json<FunctionRecord>), ApiError> {
    let name = parse_name(&name)?;
    let (parts, body) = request.into_parts();
    let headers = parts.headers;
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
        .validate(state.runtime.config())
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let body = crate::http::body::read_within(
        &headers,
        body,
        state.uploads.max_upload_bytes,
        state.uploads.body_timeout,
        "admin.max_upload_bytes",
    )
    .await?;
    if !state.uploads.allowed_digests.is_empty() {
        let digest = crate::registry::Digest::of(&body);
        if !state.uploads.allowed_digests.contains(digest.as_str()) {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                format!("the component {digest} is not in admin.allowed_digests"),
            ));
        }
    }
    let compiled = state
        .uploads
        .compile
        .compile(&state.runtime, body.clone())
        .await
        .map_err(|e| match e {
            PoolError::Compile(CompileError::Invalid(reason)) => ApiError::bad_request(reason),
            PoolError::Compile(CompileError::Internal(reason)) => ApiError::internal(reason),
            e @ PoolError::Busy(_) => {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, e.to_string()).retry_after(1)
            }
            e @ PoolError::TimedOut(_) => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, e.to_string())
            }
        })?;
    let functions = state.runtime.functions().clone();
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
    state.runtime.unload(&record.name);
    tracing::info!(function = %record.name, digest = %record.digest, size = record.size, "deployed");
    record_change(&state, &who, "put", &record).await?;
    Ok((StatusCode::CREATED, Json(record)))
}

/// `GET /functions`.
pub async fn list(State(state): State<Arc<AdminState>>) -> Json<Vec<FunctionRecord>> {
    Json(state.runtime.functions().list())
}

/// `GET /functions/{name}`.
pub async fn get(
    State(state): State<Arc<AdminState>>,
    Path(name): Path<String>,
) -> Result<Json<FunctionRecord>, ApiError> {
    let name = parse_name(&name)?;
    state
        .runtime
        .functions()
        .get(&name)
        .map(Json)
        .ok_or_else(|| ApiError::not_found("function", &name))
}

async fn record_change(
    state: &AdminState,
    who: &Option<Extension<Principal>>,
    action: &'static str,
    r: &FunctionRecord,
) -> Result<(), ApiError> {
    record(
        state,
        who,
        action,
        "function",
        r.name.as_str(),
        Some(r.digest.as_str().to_owned()),
    )
    .await
}

/// `DELETE /functions/{name}`; refused while a trigger, sequence, parallel
/// or source still uses it.
pub async fn delete(
    State(state): State<Arc<AdminState>>,
    Path(name): Path<String>,
    who: Option<Extension<Principal>>,
) -> Result<StatusCode, ApiError> {
    let name = parse_name(&name)?;
    let removing = state.clone();
    let removed = tokio::task::spawn_blocking(move || remove_unused(&removing, &name))
        .await
        .map_err(ApiError::internal)??;
    state.runtime.unload(&removed.name);
    tracing::info!(function = %removed.name, "removed");
    record_change(&state, &who, "delete", &removed).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Remove the function `name` unless a routing object or a source uses it. The check
/// and the removal are one edit of the routing table, under the lock that
/// every routing edit checks the functions it names under: an object
/// created meanwhile is either seen using the function (409) or finds it
/// gone (400). Blocking: file removal.
fn remove_unused(state: &AdminState, name: &Name) -> Result<FunctionRecord, ApiError> {
    let functions = state.runtime.functions();
    state.routes.update(|table| {
        let mut users = table.users_of_function(name);
        users.extend(
            state
                .sources
                .iter()
                .filter(|(_, s)| {
                    s.destinations()
                        .any(|d| matches!(d, Destination::Function(f) if f == name))
                })
                .map(|(n, _)| format!("source `{n}`")),
        );
        if !users.is_empty() {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                format!(
                    "function `{name}` is used by {}; delete them first",
                    users.join(", ")
                ),
            ));
        }
        let Some(existing) = functions.get(name) else {
            return Err(ApiError::not_found("function", name));
        };
        #[cfg(test)]
        tests::before_removal();
        if !functions.remove(name)? {
            return Err(ApiError::not_found("function", name));
        }
        Ok(existing)
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::config::{Config, Filter, TriggerSpec};
    use crate::registry::{FunctionStore, RoutingStores};
    use crate::routing::Routes;
    use crate::runtime::Runtime;
    use crate::security::Security;

    type Hook = Box<dyn FnOnce() + Send>;

    /// Runs once in the next removal, after its check that nothing uses
    /// the function and before the function is removed.
    static BEFORE_REMOVAL: Mutex<Option<Hook>> = Mutex::new(None);

    pub(super) fn before_removal() {
        let hook = BEFORE_REMOVAL.lock().unwrap().take();
        if let Some(hook) = hook {
            hook();
        }
    }

    fn admin_state(dir: &std::path::Path) -> Arc<AdminState> {
        let config = Config::default();
        let metrics = crate::metrics::Metrics::new();
        let functions = Arc::new(FunctionStore::open(dir).unwrap());
        let runtime =
            Runtime::new(config.runtime.clone(), functions, metrics.runtime.clone()).unwrap();
        Arc::new(AdminState {
            runtime: Arc::new(runtime),
            routes: Arc::new(Routes::default()),
            stores: RoutingStores::open(dir).unwrap(),
            kafka_sinks: Default::default(),
            security: Arc::new(Security::load(&config, dir, metrics.security.clone()).unwrap()),
            uploads: super::super::Uploads::new(&config.admin),
            metrics,
            sources: Default::default(),
            readiness: crate::readiness::Readiness::new(),
        })
    }

    /// `PUT /triggers/t`, a trigger running `f`, on a thread of its own.
    fn create_trigger(state: &Arc<AdminState>) -> std::thread::JoinHandle<Result<(), ApiError>> {
        let state = state.clone();
        std::thread::spawn(move || {
            let spec = TriggerSpec::to_function(Filter::default(), "f".parse().unwrap(), None);
            let put = super::super::routing::put::<TriggerSpec>(
                State(state),
                Path("t".into()),
                None,
                Ok(Json(spec)),
            );
            let rt = tokio::runtime::Builder::new_current_thread()
                .build()
                .unwrap();
            rt.block_on(put).map(|_| ())
        })
    }

    /// A trigger naming `f` is created between the removal's check that
    /// nothing uses `f` and the removal itself: one of the two must lose.
    #[tokio::test]
    async fn a_function_is_never_removed_under_a_new_trigger() {
        let dir = tempfile::tempdir().unwrap();
        let state = admin_state(dir.path());
        let f: Name = "f".parse().unwrap();
        state
            .runtime
            .functions()
            .put(&f, b"bytes", None, FunctionSettings::default())
            .unwrap();
        let (put_tx, put_rx) = std::sync::mpsc::channel();
        let racing = state.clone();
        *BEFORE_REMOVAL.lock().unwrap() = Some(Box::new(move || {
            let put = create_trigger(&racing);
            // Until the trigger is stored, or waits for this removal.
            while !put.is_finished() && racing.routes.edits_waiting() == 0 {
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            put_tx.send(put).unwrap();
        }));
        let status = |e: ApiError| axum::response::IntoResponse::into_response(e).status();
        let deleted = delete(State(state.clone()), Path("f".into()), None)
            .await
            .map_err(status);
        let created = put_rx.recv().unwrap().join().unwrap().map_err(status);
        let t: Name = "t".parse().unwrap();
        let trigger = state.routes.snapshot().triggers.get(&t).cloned();
        let function = state.runtime.functions().get(&f);
        match (&deleted, &created) {
            (Ok(_), Err(e)) => assert_eq!(*e, StatusCode::BAD_REQUEST),
            (Err(e), Ok(())) => assert_eq!(*e, StatusCode::CONFLICT),
            _ => panic!("deleted: {deleted:?}, trigger created: {created:?}"),
        }
        assert_eq!(
            trigger.is_some(),
            function.is_some(),
            "trigger `t` names function `f`: {trigger:?}, {function:?}"
        );
    }
}
