//! The CloudEvents webhook abuse-protection handshake (HTTP 1.1 Web Hooks
//! for Event Delivery v1.0.2, §4) and the answer to other methods.
//!
//! A sender asks with `OPTIONS` and `WebHook-Request-Origin` whether it may
//! deliver to a URL; Sluice accepts events from every origin, so it grants
//! the origin asked for (§4.2.1) and places no rate limit (§4.2.2,
//! `WebHook-Allowed-Rate: *`; overload still answers 429). Callbacks
//! (`WebHook-Request-Callback`, §4.1.3) are not needed: permission is
//! granted at once.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};

use super::IngressState;
use crate::http::ApiError;

/// The methods event endpoints answer (§4.2: `Allow` names POST).
const ALLOW: &str = "POST, OPTIONS";
const REQUEST_ORIGIN: HeaderName = HeaderName::from_static("webhook-request-origin");
const ALLOWED_ORIGIN: HeaderName = HeaderName::from_static("webhook-allowed-origin");
const ALLOWED_RATE: HeaderName = HeaderName::from_static("webhook-allowed-rate");

/// `OPTIONS /`: the validation handshake for the broker ingress.
pub async fn options_ingress(headers: HeaderMap) -> Response {
    handshake(&headers)
}

/// `OPTIONS /functions/{name}`: the handshake for one function; 404 when
/// the function does not exist, since nothing there expects deliveries.
/// With sender tokens configured, only a request with a valid token learns
/// that: without one, every name gets the same handshake, so nobody learns
/// which functions exist (a webhook validator sends no credentials; the
/// deliveries that follow need the token anyway).
pub async fn options_function(
    State(state): State<Arc<IngressState>>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let security = &state.security;
    let may_know = security.sender_tokens.is_empty() || security.is_sender(&headers);
    let known = name
        .parse::<crate::name::Name>()
        .ok()
        .filter(|n| state.runtime.functions().contains(n));
    if may_know && known.is_none() {
        return Err(ApiError::not_found("function", &name));
    }
    Ok(handshake(&headers))
}

/// 200 with `Allow`; with `WebHook-Allowed-Origin` and
/// `WebHook-Allowed-Rate` when the request is a validation request (it
/// carries `WebHook-Request-Origin`, §4.1.2). A plain `OPTIONS` only learns
/// the allowed methods (RFC 7231 §4.3.7).
fn handshake(headers: &HeaderMap) -> Response {
    let mut response = StatusCode::OK.into_response();
    let h = response.headers_mut();
    h.insert(header::ALLOW, HeaderValue::from_static(ALLOW));
    if let Some(origin) = headers.get(REQUEST_ORIGIN) {
        h.insert(ALLOWED_ORIGIN, origin.clone());
        h.insert(ALLOWED_RATE, HeaderValue::from_static("*"));
    }
    response
}

/// 405 for any other method on an event endpoint, with `Allow` and a JSON
/// reason.
pub async fn method_not_allowed(method: Method) -> Response {
    let mut response = ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        format!("method {method} is not allowed here; send events with POST ({ALLOW})"),
    )
    .into_response();
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static(ALLOW));
    response
}
