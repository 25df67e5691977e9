//! Who may reach what: admin and sender tokens, the audit log, per-sender
//! rate limits, TLS, and the connection-level limits of both listeners.
//! `docs/security.md` has the threat model and every limit's reason.
//!
//! - [`tokens`]: bearer tokens from a file or the environment, checked in
//!   constant time, with scopes.
//! - [`admin_guard`] (the admin API's middleware) and [`check_sender`]
//!   (called by the event listener on every `POST`): they refuse a request
//!   (401, 403, 429) before any handler sees it.
//! - [`audit`]: one line per admin change.
//! - [`server`]: the accept loop with connection bounds and timeouts.
//! - [`linger`]: a refused request's unread body is drained, so the
//!   client reads the refusal instead of a reset.
//! - [`tls`]: rustls configs, in and out.

pub mod audit;
pub mod linger;
mod lru;
pub mod rate;
pub mod server;
pub mod tls;
pub mod tokens;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

pub use self::audit::{AuditEntry, AuditLog};
pub use self::server::ClientAddr;
pub use self::tokens::{Principal, Scope, Tokens};
use crate::config::Config;
use crate::metrics::SecurityMetrics;

/// The name recorded for admin changes when the admin listener has no
/// tokens (loopback only).
pub const ANONYMOUS: &str = "anonymous";

/// Why the host cannot start with this security configuration.
#[derive(Debug, thiserror::Error)]
pub enum SecurityError {
    /// A token file or variable is unusable.
    #[error(transparent)]
    Tokens(#[from] tokens::TokenError),
    /// A certificate, key or CA file is unusable.
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    /// The audit log cannot be opened.
    #[error("opening the audit log: {0}")]
    Audit(std::io::Error),
    /// The admin listener would be reachable off this machine with no token.
    #[error(
        "the admin listener {addr} is not on loopback and no admin token is configured: \
         anyone who reaches it could deploy code. Set [admin] tokens_file or ${env}, \
         or listen on 127.0.0.1"
    )]
    Exposed {
        /// The admin address.
        addr: SocketAddr,
        /// The variable to set.
        env: &'static str,
    },
}

/// The host's credentials, audit log, rate limiter and TLS configs.
pub struct Security {
    /// Tokens for the admin API; empty means open (loopback only).
    pub admin_tokens: Tokens,
    /// Tokens for senders; empty means senders need none.
    pub sender_tokens: Tokens,
    /// Every admin change.
    pub audit: AuditLog,
    /// The per-sender rate limit, when configured.
    pub limiter: Option<rate::SenderLimiter>,
    /// Refusals, for `/metrics`.
    pub metrics: SecurityMetrics,
    /// TLS of the event listener.
    pub events_tls: Option<Arc<rustls::ServerConfig>>,
    /// TLS of the admin listener.
    pub admin_tls: Option<Arc<rustls::ServerConfig>>,
}

impl Security {
    /// Whether the event listener checks senders at all: sender tokens or
    /// a rate limit are configured. When not, [`check_sender`] is not
    /// called.
    pub fn guards_senders(&self) -> bool {
        !self.sender_tokens.is_empty() || self.limiter.is_some()
    }

    /// Whether `headers` carry a valid sender token (`false` when no sender
    /// tokens are configured). Refuses nothing and counts nothing: for
    /// answers that only say more to a known sender.
    pub fn is_sender(&self, headers: &HeaderMap) -> bool {
        !self.sender_tokens.is_empty() && authenticate(&self.sender_tokens, headers).is_ok()
    }

    /// Load tokens, TLS files and the audit log for `config`.
    ///
    /// # Errors
    /// When any of them cannot be used; nothing is served then.
    pub fn load(
        config: &Config,
        data_dir: &Path,
        metrics: SecurityMetrics,
    ) -> Result<Self, SecurityError> {
        tls::install_provider();
        Ok(Self {
            admin_tokens: admin_tokens(config)?,
            sender_tokens: Tokens::load(
                tokens::Kind::Sender,
                config.ingress.sender_tokens_file.as_deref(),
                tokens::SENDER_TOKENS_ENV,
            )?,
            audit: AuditLog::open(data_dir).map_err(SecurityError::Audit)?,
            limiter: config
                .ingress
                .rate_limit
                .as_ref()
                .map(rate::SenderLimiter::new),
            metrics,
            events_tls: config
                .ingress
                .tls
                .as_ref()
                .map(tls::server_config)
                .transpose()?,
            admin_tls: config
                .admin
                .tls
                .as_ref()
                .map(tls::server_config)
                .transpose()?,
        })
    }
}

/// The admin tokens `config` names (file and environment).
///
/// # Errors
/// When they cannot be read or parsed.
pub fn admin_tokens(config: &Config) -> Result<Tokens, SecurityError> {
    Ok(Tokens::load(
        tokens::Kind::Admin,
        config.admin.tokens_file.as_deref(),
        tokens::ADMIN_TOKENS_ENV,
    )?)
}

/// Refuse an admin listener off loopback that has no token.
///
/// # Errors
/// [`SecurityError::Exposed`].
pub fn check_admin_exposure(addr: SocketAddr, tokens: &Tokens) -> Result<(), SecurityError> {
    if tokens.is_empty() && !addr.ip().is_loopback() {
        return Err(SecurityError::Exposed {
            addr,
            env: tokens::ADMIN_TOKENS_ENV,
        });
    }
    Ok(())
}

/// A refusal: the status, a JSON reason, and for 401 the
/// `WWW-Authenticate` challenge (RFC 6750 §3).
fn refuse(status: StatusCode, realm: &str, reason: String) -> Response {
    let mut response = (status, axum::Json(serde_json::json!({ "error": reason }))).into_response();
    if status == StatusCode::UNAUTHORIZED {
        if let Ok(v) = HeaderValue::from_str(&format!("Bearer realm=\"{realm}\"")) {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, v);
        }
    }
    response
}

/// Check the request's bearer token against `tokens`.
fn authenticate(
    tokens: &Tokens,
    headers: &HeaderMap,
) -> Result<Principal, (&'static str, &'static str)> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Err((
            "missing",
            "this endpoint needs a bearer token (Authorization: Bearer TOKEN)",
        ));
    };
    let presented = value
        .to_str()
        .ok()
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim);
    let Some(presented) = presented else {
        return Err(("missing", "the Authorization header is not `Bearer TOKEN`"));
    };
    tokens
        .verify(presented)
        .ok_or(("unknown", "the bearer token is not valid here"))
}

/// Middleware of the admin listener: `GET`/`HEAD` need the read scope,
/// every other method the write scope; the probes `/healthz` and
/// `/readyz` need nothing. The
/// [`Principal`] is put in the request's extensions for the audit log.
pub async fn admin_guard(
    State(security): State<Arc<Security>>,
    mut request: Request,
    next: Next,
) -> Response {
    if matches!(request.uri().path(), "/healthz" | "/readyz") {
        return next.run(request).await;
    }
    let principal = if security.admin_tokens.is_empty() {
        Principal {
            name: ANONYMOUS.into(),
            scope: Scope::Write,
        }
    } else {
        match authenticate(&security.admin_tokens, request.headers()) {
            Ok(p) => p,
            Err((reason, message)) => {
                security.metrics.auth_refused("admin", reason);
                return refuse(StatusCode::UNAUTHORIZED, "sluice-admin", message.into());
            }
        }
    };
    let needs = if matches!(*request.method(), Method::GET | Method::HEAD) {
        Scope::Read
    } else {
        Scope::Write
    };
    if principal.scope < needs {
        security.metrics.auth_refused("admin", "scope");
        return refuse(
            StatusCode::FORBIDDEN,
            "sluice-admin",
            format!(
                "the token `{}` has the {} scope; {} {} needs {}",
                principal.name,
                principal.scope.as_str(),
                request.method(),
                request.uri().path(),
                needs.as_str()
            ),
        );
    }
    request.extensions_mut().insert(principal);
    next.run(request).await
}

/// Why the event listener refused a sender.
#[derive(Debug)]
pub enum SenderRefused {
    /// 401: no valid sender token (the reason says which way it failed).
    Token(&'static str),
    /// 429: the sender's rate limit is reached; retry in this many seconds.
    RateLimited(u64),
}

impl IntoResponse for SenderRefused {
    fn into_response(self) -> Response {
        match self {
            Self::Token(message) => refuse(StatusCode::UNAUTHORIZED, "sluice", message.into()),
            Self::RateLimited(secs) => {
                let mut response = refuse(
                    StatusCode::TOO_MANY_REQUESTS,
                    "sluice",
                    format!(
                        "rate limit of this sender reached (ingress.rate_limit); retry in {secs}s"
                    ),
                );
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(secs));
                response
            }
        }
    }
}

/// The event endpoints' check of a sender, before its body is read: the
/// sender token (when sender tokens are configured), then the sender's
/// rate limit, keyed by the token's name, else by the client's address. A
/// request whose token is missing or wrong takes from its address's bucket
/// before it is refused: a spray of bad tokens gets 429, not endless 401s.
///
/// # Errors
/// [`SenderRefused`], counted in the security metrics.
pub fn check_sender(
    security: &Security,
    headers: &HeaderMap,
    client: Option<ClientAddr>,
) -> Result<(), SenderRefused> {
    let address = || match client {
        Some(ClientAddr(addr)) => rate::Sender::Addr(addr.ip()),
        None => rate::Sender::Unknown,
    };
    let sender = if security.sender_tokens.is_empty() {
        address()
    } else {
        match authenticate(&security.sender_tokens, headers) {
            Ok(p) => rate::Sender::Token(p.name),
            Err((reason, message)) => {
                limit_rate(security, &address())?;
                security.metrics.auth_refused("events", reason);
                return Err(SenderRefused::Token(message));
            }
        }
    };
    limit_rate(security, &sender)
}

/// Take a request from `sender`'s bucket, when a rate limit is configured.
fn limit_rate(security: &Security, sender: &rate::Sender) -> Result<(), SenderRefused> {
    let Some(limiter) = &security.limiter else {
        return Ok(());
    };
    limiter.check(sender).map_err(|wait| {
        security.metrics.rate_limited("events");
        let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        SenderRefused::RateLimited(secs.max(1))
    })
}
