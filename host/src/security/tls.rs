//! TLS with rustls and its `ring` provider (no OpenSSL, no aws-lc-rs):
//! server configs for the two listeners from PEM files, and the client
//! config for outbound HTTPS, which verifies certificates against the
//! Mozilla roots (`webpki-roots`) plus an optional extra CA bundle.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::config::TlsFiles;

/// A certificate, key or CA file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A PEM file that cannot be read or holds nothing usable.
    #[error("{path}: {reason}")]
    File {
        /// The file.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// rustls refused the certificate and key.
    #[error("the certificate {cert} and key {key} do not make a TLS config: {reason}")]
    Config {
        /// The certificate file.
        cert: String,
        /// The key file.
        key: String,
        /// rustls's reason.
        reason: String,
    },
}

/// Make `ring` the process's rustls provider (once; later calls do nothing).
/// Every rustls config and `reqwest` client of the host needs it.
pub fn install_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let err = |reason: String| TlsError::File {
        path: path.display().to_string(),
        reason,
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| err(e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| err(e.to_string()))?;
    if certs.is_empty() {
        return Err(err("no PEM certificate in it".into()));
    }
    Ok(certs)
}

/// A server config from a PEM certificate chain and key (HTTP/1.1 only).
///
/// # Errors
/// When a file cannot be read or parsed, or the key does not fit.
pub fn server_config(files: &TlsFiles) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let chain = certs(&files.cert)?;
    let key = PrivateKeyDer::from_pem_file(&files.key).map_err(|e| TlsError::File {
        path: files.key.display().to_string(),
        reason: format!("no usable PEM private key: {e}"),
    })?;
    let config_err = |reason: String| TlsError::Config {
        cert: files.cert.display().to_string(),
        key: files.key.display().to_string(),
        reason,
    };
    let mut config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| config_err(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| config_err(e.to_string()))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The client config for outbound HTTPS: the Mozilla roots plus every
/// certificate in `extra_ca` (PEM).
///
/// # Errors
/// When `extra_ca` cannot be read or holds no usable certificate.
pub fn client_config(extra_ca: Option<&Path>) -> Result<rustls::ClientConfig, TlsError> {
    client_config_also(extra_ca, None)
}

/// [`client_config`], also trusting the PEM certificates of `also`, given
/// as (where they come from, e.g. `K_CA_CERTS`; the PEM text).
///
/// # Errors
/// As [`client_config`], for either source.
pub fn client_config_also(
    extra_ca: Option<&Path>,
    also: Option<(&str, &[u8])>,
) -> Result<rustls::ClientConfig, TlsError> {
    let mut roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    let mut extra = Vec::new();
    if let Some(path) = extra_ca {
        extra.push((path.display().to_string(), certs(path)?));
    }
    if let Some((origin, pem)) = also {
        extra.push((origin.to_owned(), pem_certs(origin, pem)?));
    }
    for (origin, certs) in extra {
        for cert in certs {
            roots.add(cert).map_err(|e| TlsError::File {
                path: origin.clone(),
                reason: format!("not a usable CA certificate: {e}"),
            })?;
        }
    }
    let config = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::File {
            path: "(built-in)".into(),
            reason: e.to_string(),
        })?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(config)
}

/// The certificates of PEM text from `origin`.
fn pem_certs(origin: &str, pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let err = |reason: String| TlsError::File {
        path: origin.to_owned(),
        reason,
    };
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| err(e.to_string()))?;
    if certs.is_empty() {
        return Err(err("no PEM certificate in it".into()));
    }
    Ok(certs)
}

/// A `reqwest` client builder that speaks HTTPS with [`client_config`].
///
/// # Errors
/// As [`client_config`].
pub fn reqwest_builder(extra_ca: Option<&Path>) -> Result<reqwest::ClientBuilder, TlsError> {
    reqwest_builder_also(extra_ca, None)
}

/// A `reqwest` client builder that speaks HTTPS with [`client_config_also`].
///
/// # Errors
/// As [`client_config_also`].
pub fn reqwest_builder_also(
    extra_ca: Option<&Path>,
    also: Option<(&str, &[u8])>,
) -> Result<reqwest::ClientBuilder, TlsError> {
    install_provider();
    Ok(reqwest::Client::builder().tls_backend_preconfigured(client_config_also(extra_ca, also)?))
}
