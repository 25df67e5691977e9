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
    state.routes.update(|t| {
        K::map_mut(t).insert(name.clone(), spec.clone());
        check(&state, t)
            .map_err(|e| ApiError::bad_request(format!("{} `{name}`: {e}", K::KIND)))?;
        K::store(&state.stores).put(&name, &spec)?;
        Ok::<_, ApiError>(())
    })?;
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
    state.routes.update(|t| {
        if K::map_mut(t).remove(&name).is_none() {
            return Err(ApiError::not_found(K::KIND, &name));
        }
        check(&state, t).map_err(|e| {
            ApiError::new(
                StatusCode::CONFLICT,
                format!("{} `{name}` is still in use: {e}", K::KIND),
            )
        })?;
        K::store(&state.stores).remove(&name)?;
        Ok(())
    })?;
    tracing::info!(kind = K::KIND, name = %name, "routing object removed");
    record(&state, &who, "delete", K::KIND, name.as_str(), None).await?;
    Ok(StatusCode::NO_CONTENT)
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
