//! `/admin/v1/{triggers,sinks,sequences,parallels}`: the routing objects.
//!
//! Every change is checked against the whole candidate table (references,
//! cycles) and the sources' destinations before it is stored and swapped
//! in; a refused change leaves both
//! the table and the data directory as they were. Events already routed
//! keep the table they were routed with.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Extension, Json};

use super::AdminState;
use super::{parse_name, record};
use crate::config::Invalid;
use crate::http::ApiError;
use crate::name::Name;
use crate::routing::{Kind, Table};
use crate::security::Principal;

/// `PUT /{kind}s/{name}`: create or replace. 201 with the stored object;
/// 400 with the reason when it (or the table with it) is invalid.
pub async fn put<K: Kind>(
    State(state): State<Arc<AdminState>>,
    Path(name): Path<String>,
    who: Option<Extension<Principal>>,
    spec: Result<Json<K>, JsonRejection>,
) -> Result<(StatusCode, Json<K>), ApiError> {
    let name = parse_name(&name)?;
    let Json(spec) = spec.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let (edited, stored) = (name.clone(), spec.clone());
    off_worker(&state, move |state| {
        state.routes.update(|t| {
            K::map_mut(t).insert(edited.clone(), stored.clone());
            check(state, t)
                .map_err(|e| ApiError::bad_request(format!("{} `{edited}`: {e}", K::KIND)))?;
            K::store(&state.stores).put(&edited, &stored)?;
            Ok(())
        })
    })
    .await?;
    tracing::info!(kind = K::KIND, name = %name, "routing object set");
    record(&state, &who, "put", K::KIND, name.as_str(), None).await?;
    Ok((StatusCode::CREATED, Json(spec)))
}

/// `GET /{kind}s`.
pub async fn list<K: Kind>(State(state): State<Arc<AdminState>>) -> Json<BTreeMap<Name, K>> {
    Json(K::map(&state.routes.snapshot()).clone())
}

/// `GET /{kind}s/{name}`.
pub async fn get<K: Kind>(
    State(state): State<Arc<AdminState>>,
    Path(name): Path<String>,
) -> Result<Json<K>, ApiError> {
    let name = parse_name(&name)?;
    K::map(&state.routes.snapshot())
        .get(&name)
        .cloned()
        .map(Json)
        .ok_or_else(|| ApiError::not_found(K::KIND, &name))
}

/// `DELETE /{kind}s/{name}`: 204; 404 when absent; 409 while another
/// object or a source refers to it.
pub async fn delete<K: Kind>(
    State(state): State<Arc<AdminState>>,
    Path(name): Path<String>,
    who: Option<Extension<Principal>>,
) -> Result<StatusCode, ApiError> {
    let name = parse_name(&name)?;
    let removed = name.clone();
    off_worker(&state, move |state| {
        state.routes.update(|t| {
            if K::map_mut(t).remove(&removed).is_none() {
                return Err(ApiError::not_found(K::KIND, &removed));
            }
            check(state, t).map_err(|e| {
                ApiError::new(
                    StatusCode::CONFLICT,
                    format!("{} `{removed}` is still in use: {e}", K::KIND),
                )
            })?;
            K::store(&state.stores).remove(&removed)?;
            Ok(())
        })
    })
    .await?;
    tracing::info!(kind = K::KIND, name = %name, "routing object removed");
    record(&state, &who, "delete", K::KIND, name.as_str(), None).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Run `edit`, an update of the routing table that writes the store (an
/// fsync) under the table's writer lock, on a blocking thread, so neither
/// holds an async worker.
async fn off_worker<R: Send + 'static>(
    state: &Arc<AdminState>,
    edit: impl FnOnce(&AdminState) -> Result<R, ApiError> + Send + 'static,
) -> Result<R, ApiError> {
    let state = state.clone();
    tokio::task::spawn_blocking(move || edit(&state))
        .await
        .map_err(ApiError::internal)?
}

/// Check the table an edit produced from the current one, for what the
/// edit brings ([`Table::check_edit`]: a stored trigger naming a function
/// that is gone does not block edits of other objects), and the
/// destinations of the sources (which the config file declares and an edit
/// must not take away). Called inside [`crate::routing::Routes::update`],
/// so the current table is the one `t` was copied from.
fn check(state: &AdminState, t: &Table) -> Result<(), Invalid> {
    let functions = state.runtime.functions();
    let has_function = |f: &Name| functions.contains(f);
    let has_kafka_sink = |k: &Name| state.kafka_sinks.contains(k);
    t.check_edit(&state.routes.snapshot(), has_function, has_kafka_sink)?;
    t.check_sources(&state.sources, has_function, has_kafka_sink)
}

/// `GET /sources`: the event sources the host runs, as its config file
/// declares them (sources are managed in the config file only).
pub async fn sources(
    State(state): State<Arc<AdminState>>,
) -> Json<std::collections::BTreeMap<crate::name::Name, crate::config::SourceSpec>> {
    Json(state.sources.clone())
}

/// `GET /routing`: the whole table (what `sluice graph --host` draws, with
/// `GET /sources`).
pub async fn table(State(state): State<Arc<AdminState>>) -> Json<Table> {
    Json((*state.routes.snapshot()).clone())
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;
    use std::time::Duration;

    use super::*;
    use crate::config::SinkSpec;

    /// A routing edit waits for the table's writer lock and then fsyncs
    /// the store: neither may hold the async worker. On a runtime of one
    /// worker, a `PUT` waits for a lock held elsewhere while the worker
    /// goes on running other tasks.
    #[test]
    fn an_edit_waiting_for_the_writer_leaves_the_async_worker_free() {
        let dir = tempfile::tempdir().unwrap();
        let state = super::super::test_state(dir.path());
        let (release, released) = mpsc::channel::<()>();
        let (held_tx, held) = mpsc::channel::<()>();
        let holder = state.clone();
        // Holds the writer lock until told to let go, or for at most 10 s;
        // says which it was.
        let holding = std::thread::spawn(move || {
            holder
                .routes
                .update(|_| {
                    held_tx.send(()).unwrap();
                    Ok::<_, ()>(released.recv_timeout(Duration::from_secs(10)).is_ok())
                })
                .unwrap()
        });
        held.recv().unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        rt.block_on(async {
            let spec: SinkSpec =
                serde_json::from_value(serde_json::json!({"url": "http://127.0.0.1:9/"})).unwrap();
            let put = tokio::spawn(put::<SinkSpec>(
                State(state.clone()),
                Path("s".into()),
                None,
                Ok(Json(spec)),
            ));
            // This task runs only while the worker is free: it sees the
            // edit wait for the lock, then lets the lock go. (An edit that
            // held the worker finishes first, once the holder gave up.)
            while state.routes.edits_waiting() == 0 && !put.is_finished() {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            let _ = release.send(());
            put.await
                .unwrap()
                .map(drop)
                .map_err(|_| "the PUT failed")
                .unwrap();
        });
        assert!(
            holding.join().unwrap(),
            "the edit held the async worker while it waited for the writer lock"
        );
        assert!(state
            .routes
            .snapshot()
            .sinks
            .contains_key(&"s".parse().unwrap()));
    }
}
