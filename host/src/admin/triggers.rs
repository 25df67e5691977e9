//! `/admin/v1/triggers`: bind functions to events.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;

use super::parse_name;
use crate::app::App;
use crate::config::TriggerSpec;
use crate::ingress::ApiError;
use crate::registry::Name;

/// `PUT /triggers/{name}`: create or replace a trigger. It takes effect for
/// the next event routed; events already routed keep their old route.
pub async fn put(
    State(app): State<Arc<App>>,
    Path(name): Path<String>,
    spec: Result<Json<TriggerSpec>, JsonRejection>,
) -> Result<(StatusCode, Json<TriggerSpec>), ApiError> {
    let name = parse_name(&name)?;
    let Json(spec) = spec.map_err(|e| ApiError::bad_request(e.body_text()))?;
    spec.validate().map_err(ApiError::bad_request)?;
    if app.runtime.functions().get(&spec.function).is_none() {
        return Err(ApiError::bad_request(format!(
            "function `{}` is not deployed",
            spec.function
        )));
    }
    app.triggers.put(&name, &spec)?;
    app.routes.put(name.clone(), spec.clone());
    tracing::info!(trigger = %name, function = %spec.function, "trigger set");
    Ok((StatusCode::CREATED, Json(spec)))
}

/// `GET /triggers`.
pub async fn list(State(app): State<Arc<App>>) -> Json<BTreeMap<Name, TriggerSpec>> {
    Json(app.routes.list())
}

/// `GET /triggers/{name}`.
pub async fn get(
    State(app): State<Arc<App>>,
    Path(name): Path<String>,
) -> Result<Json<TriggerSpec>, ApiError> {
    let name = parse_name(&name)?;
    app.routes
        .get(&name)
        .map(Json)
        .ok_or_else(|| ApiError::not_found("trigger", &name))
}

/// `DELETE /triggers/{name}`.
pub async fn delete(
    State(app): State<Arc<App>>,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    let name = parse_name(&name)?;
    app.triggers.remove(&name)?;
    if !app.routes.remove(&name) {
        return Err(ApiError::not_found("trigger", &name));
    }
    tracing::info!(trigger = %name, "trigger removed");
    Ok(StatusCode::NO_CONTENT)
}
