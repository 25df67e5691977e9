//! `/admin/v1/{triggers,sinks,sequences,parallels}`: the routing objects.
//!
//! Every change is checked against the whole candidate table (references,
//! cycles) before it is stored and swapped in; a refused change leaves both
//! the table and the data directory as they were. Events already routed
//! keep the table they were routed with.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use serde::{de::DeserializeOwned, Serialize};

use super::{parse_name, record};
use crate::app::App;
use crate::config::{ParallelSpec, SequenceSpec, SinkSpec, TriggerSpec};
use crate::ingress::ApiError;
use crate::registry::{Name, ObjectStore};
use crate::routing::Table;
use crate::security::Principal;

/// A kind of routing object the admin API manages.
pub trait Kind: Serialize + DeserializeOwned + Clone + Send + Sync + 'static {
    /// Its name in messages, e.g. `trigger`.
    const KIND: &'static str;
    /// Its map in the table.
    fn map(t: &Table) -> &BTreeMap<Name, Self>;
    /// Its map in the table, to change.
    fn map_mut(t: &mut Table) -> &mut BTreeMap<Name, Self>;
    /// Its durable store.
    fn store(app: &App) -> &ObjectStore<Self>;
}

macro_rules! kind {
    ($t:ty, $kind:literal, $field:ident) => {
        impl Kind for $t {
            const KIND: &'static str = $kind;
            fn map(t: &Table) -> &BTreeMap<Name, Self> {
                &t.$field
            }
            fn map_mut(t: &mut Table) -> &mut BTreeMap<Name, Self> {
                &mut t.$field
            }
            fn store(app: &App) -> &ObjectStore<Self> {
                &app.stores.$field
            }
        }
    };
}

kind!(TriggerSpec, "trigger", triggers);
kind!(SinkSpec, "sink", sinks);
kind!(SequenceSpec, "sequence", sequences);
kind!(ParallelSpec, "parallel", parallels);

/// `PUT /{kind}s/{name}`: create or replace. 201 with the stored object;
/// 400 with the reason when it (or the table with it) is invalid.
pub async fn put<K: Kind>(
    State(app): State<Arc<App>>,
    Path(name): Path<String>,
    who: Option<Extension<Principal>>,
    spec: Result<Json<K>, JsonRejection>,
) -> Result<(StatusCode, Json<K>), ApiError> {
    let name = parse_name(&name)?;
    let Json(spec) = spec.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let functions = app.runtime.functions().clone();
    app.routes.update(|t| {
        K::map_mut(t).insert(name.clone(), spec.clone());
        t.check(
            |f| functions.get(f).is_some(),
            |k| app.dispatcher.has_kafka_sink(k),
        )
        .map_err(|e| ApiError::bad_request(format!("{} `{name}`: {e}", K::KIND)))?;
        K::store(&app).put(&name, &spec)?;
        Ok::<_, ApiError>(())
    })?;
    tracing::info!(kind = K::KIND, name = %name, "routing object set");
    record(&app, &who, "put", K::KIND, name.as_str(), None)?;
    Ok((StatusCode::CREATED, Json(spec)))
}

/// `GET /{kind}s`.
pub async fn list<K: Kind>(State(app): State<Arc<App>>) -> Json<BTreeMap<Name, K>> {
    Json(K::map(&app.routes.snapshot()).clone())
}

/// `GET /{kind}s/{name}`.
pub async fn get<K: Kind>(
    State(app): State<Arc<App>>,
    Path(name): Path<String>,
) -> Result<Json<K>, ApiError> {
    let name = parse_name(&name)?;
    K::map(&app.routes.snapshot())
        .get(&name)
        .cloned()
        .map(Json)
        .ok_or_else(|| ApiError::not_found(K::KIND, &name))
}

/// `DELETE /{kind}s/{name}`: 204; 404 when absent; 409 while another
/// object refers to it.
pub async fn delete<K: Kind>(
    State(app): State<Arc<App>>,
    Path(name): Path<String>,
    who: Option<Extension<Principal>>,
) -> Result<StatusCode, ApiError> {
    let name = parse_name(&name)?;
    let functions = app.runtime.functions().clone();
    app.routes.update(|t| {
        if K::map_mut(t).remove(&name).is_none() {
            return Err(ApiError::not_found(K::KIND, &name));
        }
        t.check(
            |f| functions.get(f).is_some(),
            |k| app.dispatcher.has_kafka_sink(k),
        )
        .map_err(|e| {
            ApiError::new(
                StatusCode::CONFLICT,
                format!("{} `{name}` is still in use: {e}", K::KIND),
            )
        })?;
        K::store(&app).remove(&name)?;
        Ok(())
    })?;
    tracing::info!(kind = K::KIND, name = %name, "routing object removed");
    record(&app, &who, "delete", K::KIND, name.as_str(), None)?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /sources`: the event sources the host runs, as its config file
/// declares them (sources are managed in the config file only).
pub async fn sources(
    State(app): State<Arc<App>>,
) -> Json<std::collections::BTreeMap<crate::registry::Name, crate::sources::SourceSpec>> {
    Json(app.source_specs.clone())
}

/// `GET /routing`: the whole table (what `sluice graph --host` draws, with
/// `GET /sources`).
pub async fn table(State(app): State<Arc<App>>) -> Json<Table> {
    Json((*app.routes.snapshot()).clone())
}
