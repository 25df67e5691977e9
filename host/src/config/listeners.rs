//! `[ingress]`, `[admin]` and `[outbound]`: the two listeners' limits,
//! credentials and TLS, and the trust roots for HTTPS sinks. Each limit's
//! reason is in `docs/security.md`.

use super::{invalid, Invalid};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The event listener (`--listen`): what senders may do.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IngressConfig {
    /// Largest request body accepted, in bytes (413 past it, before the
    /// rest is read). Default 1 MiB; at least 64 KiB, the event size the
    /// CloudEvents spec says must pass.
    #[serde(default = "default_max_body_bytes")]
    pub max_body_bytes: usize,
    /// Connection limits and timeouts.
    #[serde(default = "ConnectionLimits::events")]
    pub connections: ConnectionLimits,
    /// Deepest nesting of JSON arrays and objects in a structured or
    /// batched body (the batch's own array counts); 400 past it. Default 64.
    #[serde(default = "default_max_json_depth")]
    pub max_json_depth: usize,
    /// Most members in one structured event object (attributes, data
    /// included); 400 past it. Default 128.
    #[serde(default = "default_max_attributes")]
    pub max_attributes: usize,
    /// Per-sender rate limit (by sender token, or by client address when
    /// there is none); 429 with `Retry-After` past it. Off by default.
    #[serde(default)]
    pub rate_limit: Option<RateLimit>,
    /// A file of sender tokens (`NAME:SECRET` per line). When it (or the
    /// `SLUICE_SENDER_TOKENS` variable) is set, event requests need
    /// `Authorization: Bearer SECRET`. Off by default.
    #[serde(default)]
    pub sender_tokens_file: Option<PathBuf>,
    /// Serve TLS on the event listener.
    #[serde(default)]
    pub tls: Option<TlsFiles>,
}

impl Default for IngressConfig {
    fn default() -> Self {
        Self {
            max_body_bytes: default_max_body_bytes(),
            connections: ConnectionLimits::events(),
            max_json_depth: default_max_json_depth(),
            max_attributes: default_max_attributes(),
            rate_limit: None,
            sender_tokens_file: None,
            tls: None,
        }
    }
}

/// The admin listener (`--admin-listen`): deploys, routing, metrics.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminConfig {
    /// A file of admin tokens (`NAME:SCOPE:SECRET` per line, SCOPE `read`
    /// or `write`). With it (or `SLUICE_ADMIN_TOKENS`) every admin request
    /// needs a bearer token; without either the admin listener must be on
    /// loopback.
    #[serde(default)]
    pub tokens_file: Option<PathBuf>,
    /// Largest component accepted for upload, in bytes (413 past it).
    /// Default 64 MiB.
    #[serde(default = "default_max_upload_bytes")]
    pub max_upload_bytes: usize,
    /// Components compiled at once. Default 1, so uploads never take more
    /// than one core from event handling.
    #[serde(default = "default_compile_concurrency")]
    pub compile_concurrency: usize,
    /// Uploads waiting for a compile slot before 503. Default 4.
    #[serde(default = "default_compile_queue")]
    pub compile_queue: usize,
    /// Longest one compilation may take; the upload is refused past it.
    /// Default 60 s.
    #[serde(default = "default_compile_timeout", with = "humantime_serde")]
    pub compile_timeout: Duration,
    /// Connection limits and timeouts.
    #[serde(default = "ConnectionLimits::events")]
    pub connections: ConnectionLimits,
    /// When not empty, only components with one of these SHA-256 digests
    /// (hex, as `GET /admin/v1/functions` shows them) may be uploaded (403
    /// otherwise), so a stolen write token cannot deploy new code. Empty by
    /// default.
    #[serde(default)]
    pub allowed_digests: Vec<String>,
    /// Serve TLS on the admin listener.
    #[serde(default)]
    pub tls: Option<TlsFiles>,
}

impl Default for AdminConfig {
    fn default() -> Self {
        Self {
            tokens_file: None,
            max_upload_bytes: default_max_upload_bytes(),
            compile_concurrency: default_compile_concurrency(),
            compile_queue: default_compile_queue(),
            compile_timeout: default_compile_timeout(),
            connections: ConnectionLimits::events(),
            allowed_digests: Vec::new(),
            tls: None,
        }
    }
}

/// What one listener allows its connections.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectionLimits {
    /// Longest a client may take to send a request's headers, counted from
    /// when the connection opened or the previous response was sent (so it
    /// is also the keep-alive idle timeout). Default 10 s.
    #[serde(default = "default_header_timeout", with = "humantime_serde")]
    pub header_timeout: Duration,
    /// Longest a client may take to send a request's body; 408 past it.
    /// Default 60 s (a 64 MiB upload then needs about 1 MiB/s).
    #[serde(default = "default_body_timeout", with = "humantime_serde")]
    pub body_timeout: Duration,
    /// Largest header block (request line included), in bytes; 431 past it.
    /// Default 16 KiB.
    #[serde(default = "default_max_header_bytes")]
    pub max_header_bytes: usize,
    /// Most connections open at once; more are closed at once. Default
    /// 1024.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// Most connections open at once from one client address, so one client
    /// cannot take every slot. Default 128.
    #[serde(default = "default_max_connections_per_client")]
    pub max_connections_per_client: usize,
}

impl ConnectionLimits {
    /// The defaults (the same on both listeners).
    pub fn events() -> Self {
        Self {
            header_timeout: default_header_timeout(),
            body_timeout: default_body_timeout(),
            max_header_bytes: default_max_header_bytes(),
            max_connections: default_max_connections(),
            max_connections_per_client: default_max_connections_per_client(),
        }
    }

    fn validate(&self, section: &str) -> Result<(), Invalid> {
        if self.header_timeout.is_zero() || self.body_timeout.is_zero() {
            return Err(invalid!(
                "{section}.connections: header_timeout and body_timeout must be positive"
            ));
        }
        if self.max_header_bytes < MIN_HEADER_BYTES {
            return Err(invalid!(
                "{section}.connections.max_header_bytes must be at least {MIN_HEADER_BYTES}"
            ));
        }
        if self.max_connections == 0 || self.max_connections_per_client == 0 {
            return Err(invalid!(
                "{section}.connections: max_connections and max_connections_per_client must be positive"
            ));
        }
        Ok(())
    }
}

/// The smallest header limit a configuration may set.
pub const MIN_HEADER_BYTES: usize = 1024;

/// A token bucket per sender.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimit {
    /// Requests per second a sender may keep up (may be below 1, e.g. 0.5).
    pub requests_per_second: f64,
    /// Requests a sender may send at once after being quiet. Default: one
    /// second's worth, at least 1.
    #[serde(default)]
    pub burst: Option<u32>,
}

/// The longest an empty rate-limit bucket may take to fill again (`burst`
/// divided by `requests_per_second`): a year. Anything longer is surely a
/// mistake, and the limiter keeps its times as 64-bit nanoseconds.
pub const MAX_RATE_WINDOW: Duration = Duration::from_secs(365 * 24 * 60 * 60);

impl RateLimit {
    /// The bucket size.
    pub fn burst(&self) -> u32 {
        self.burst
            .unwrap_or_else(|| (self.requests_per_second.ceil() as u32).max(1))
    }

    /// The time one request's token takes to come back, at most
    /// [`MAX_RATE_WINDOW`] (also for a rate that validation refuses: this
    /// never panics).
    pub fn period(&self) -> Duration {
        Duration::try_from_secs_f64(self.requests_per_second.recip())
            .map_or(MAX_RATE_WINDOW, |p| p.min(MAX_RATE_WINDOW))
    }

    fn validate(&self) -> Result<(), Invalid> {
        let rate = self.requests_per_second;
        if !(rate.is_finite() && rate > 0.0) || self.burst == Some(0) {
            return Err(
                "ingress.rate_limit: requests_per_second and burst must be positive".into(),
            );
        }
        let window = f64::from(self.burst()) / rate;
        if window > MAX_RATE_WINDOW.as_secs_f64() {
            return Err(invalid!(
                "ingress.rate_limit: an empty bucket would take {window:.3e} s to fill \
                 (burst / requests_per_second); at most {} s (a year) is allowed",
                MAX_RATE_WINDOW.as_secs()
            ));
        }
        Ok(())
    }
}

/// A PEM certificate chain and its private key.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsFiles {
    /// The certificate chain, leaf first (PEM).
    pub cert: PathBuf,
    /// The private key (PEM: PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

/// The smallest body limit a configuration may set: the spec's 64 KiB.
pub const MIN_BODY_LIMIT: usize = 64 * 1024;

/// Outbound HTTPS (sinks, subscribers, dead letters).
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutboundConfig {
    /// Extra trust roots (PEM) beside the system's, e.g. a private CA.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
}

impl IngressConfig {
    pub(super) fn validate(&self) -> Result<(), Invalid> {
        if self.max_body_bytes < MIN_BODY_LIMIT {
            return Err(invalid!(
                "ingress.max_body_bytes must be at least {} (64 KiB events must always pass)",
                MIN_BODY_LIMIT
            ));
        }
        self.connections.validate("ingress")?;
        let ceiling = crate::cloudevents::JsonLimits::CEILING;
        if !(2..=ceiling.max_depth).contains(&self.max_json_depth)
            || !(4..=ceiling.max_members).contains(&self.max_attributes)
        {
            return Err(invalid!(
                "ingress: max_json_depth must be 2 to {} and max_attributes 4 to {}",
                ceiling.max_depth,
                ceiling.max_members
            ));
        }
        if let Some(r) = &self.rate_limit {
            r.validate()?;
        }
        Ok(())
    }

    pub(super) fn resolve(&mut self, base: &Path) {
        resolve(&mut self.sender_tokens_file, base);
        resolve_tls(&mut self.tls, base);
    }
}

impl AdminConfig {
    pub(super) fn validate(&self) -> Result<(), Invalid> {
        self.connections.validate("admin")?;
        if self.compile_concurrency == 0 || self.compile_timeout.is_zero() {
            return Err("admin: compile_concurrency and compile_timeout must be positive".into());
        }
        if self.max_upload_bytes < 8 {
            return Err("admin.max_upload_bytes is too small for any component".into());
        }
        for d in &self.allowed_digests {
            let hex = d.strip_prefix("sha256:").unwrap_or(d);
            if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(invalid!(
                    "admin.allowed_digests: `{d}` is not a SHA-256 digest (64 hex digits)"
                ));
            }
        }
        Ok(())
    }

    pub(super) fn resolve(&mut self, base: &Path) {
        resolve(&mut self.tokens_file, base);
        resolve_tls(&mut self.tls, base);
    }
}

impl OutboundConfig {
    pub(super) fn resolve(&mut self, base: &Path) {
        resolve(&mut self.ca_file, base);
    }
}

fn resolve(path: &mut Option<PathBuf>, base: &Path) {
    if let Some(p) = path {
        if p.is_relative() {
            *p = base.join(&*p);
        }
    }
}

fn resolve_tls(tls: &mut Option<TlsFiles>, base: &Path) {
    if let Some(t) = tls {
        for p in [&mut t.cert, &mut t.key] {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        }
    }
}

const fn default_max_body_bytes() -> usize {
    1024 * 1024
}
const fn default_max_json_depth() -> usize {
    64
}
const fn default_max_attributes() -> usize {
    128
}
const fn default_max_upload_bytes() -> usize {
    64 * 1024 * 1024
}
const fn default_compile_concurrency() -> usize {
    1
}
const fn default_compile_queue() -> usize {
    4
}
const fn default_compile_timeout() -> Duration {
    Duration::from_secs(60)
}
const fn default_header_timeout() -> Duration {
    Duration::from_secs(10)
}
const fn default_body_timeout() -> Duration {
    Duration::from_secs(60)
}
const fn default_max_header_bytes() -> usize {
    16 * 1024
}
const fn default_max_connections() -> usize {
    1024
}
const fn default_max_connections_per_client() -> usize {
    128
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    fn check(toml: &str) -> Result<(), String> {
        Config::parse(toml, std::path::Path::new("/x/sluice.toml"))
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    #[test]
    fn limits_out_of_range_are_refused_with_the_key() {
        assert!(check("[ingress]\nmax_json_depth = 64\n").is_ok());
        for (toml, key) in [
            ("[ingress]\nmax_json_depth = 129\n", "max_json_depth"),
            ("[ingress]\nmax_attributes = 2\n", "max_attributes"),
            ("[ingress]\nmax_body_bytes = 1000\n", "max_body_bytes"),
            (
                "[ingress.connections]\nheader_timeout = \"0s\"\n",
                "header_timeout",
            ),
            (
                "[ingress.connections]\nmax_header_bytes = 100\n",
                "max_header_bytes",
            ),
            (
                "[admin.connections]\nmax_connections = 0\n",
                "max_connections",
            ),
            (
                "[ingress.rate_limit]\nrequests_per_second = 0\n",
                "rate_limit",
            ),
            ("[admin]\ncompile_concurrency = 0\n", "compile_concurrency"),
            ("[admin]\nallowed_digests = [\"abc\"]\n", "allowed_digests"),
            ("[admin]\ntokens = \"x\"\n", "tokens"),
        ] {
            let err = check(toml).unwrap_err();
            assert!(err.contains(key), "{toml}: {err}");
        }
    }

    #[test]
    fn rates_whose_bucket_never_refills_are_refused_and_never_panic() {
        for (rate, burst) in [
            ("1e-320", ""),
            ("5e-324", ""),
            ("1e-9", ""),
            ("0.001", ", burst = 4000000000"),
        ] {
            let toml =
                format!("[ingress]\nrate_limit = {{ requests_per_second = {rate}{burst} }}\n");
            let err = check(&toml).unwrap_err();
            assert!(
                err.contains("ingress.rate_limit") && err.contains("a year"),
                "{toml}: {err}"
            );
        }
        // A slow rate within the window is fine: one a week, burst 10.
        assert!(
            check("[ingress]\nrate_limit = { requests_per_second = 1.6e-6, burst = 10 }\n").is_ok()
        );
        // Even unvalidated, the period is bounded instead of panicking.
        for rate in [1e-320, 0.0, -1.0, f64::NAN, f64::INFINITY, 1e300] {
            let r = crate::config::RateLimit {
                requests_per_second: rate,
                burst: None,
            };
            assert!(r.period() <= super::MAX_RATE_WINDOW, "{rate}");
        }
    }

    #[test]
    fn paths_resolve_against_the_file_and_rates_become_periods() {
        let c = Config::parse(
            "[admin]\ntokens_file = \"t\"\n[ingress]\ntls = { cert = \"c.pem\", key = \"/k.pem\" }\n\
             rate_limit = { requests_per_second = 0.5 }\n[outbound]\nca_file = \"ca.pem\"\n",
            std::path::Path::new("/etc/sluice/sluice.toml"),
        )
        .unwrap();
        assert_eq!(
            c.admin.tokens_file.unwrap(),
            std::path::Path::new("/etc/sluice/t")
        );
        let tls = c.ingress.tls.unwrap();
        assert_eq!(tls.cert, std::path::Path::new("/etc/sluice/c.pem"));
        assert_eq!(tls.key, std::path::Path::new("/k.pem"));
        assert_eq!(
            c.outbound.ca_file.unwrap(),
            std::path::Path::new("/etc/sluice/ca.pem")
        );
        let r = c.ingress.rate_limit.unwrap();
        assert_eq!(
            (r.burst(), r.period()),
            (1, std::time::Duration::from_secs(2))
        );
    }
}
