//! The HTTP client for subscribers and sinks: POST one event, read back a
//! reply event or a classified failure.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::cloudevents::{decode, encode, Mode};
use crate::event::Event;
use crate::security::tls::TlsError;

use super::SinkError;

/// Longest response body kept in an error.
pub const MAX_ERROR_BODY: usize = 1024;

/// Deadline of one attempt when the delivery options set none.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// An HTTP client for sinks, with connection pooling. HTTPS verifies the
/// server's certificate against the Mozilla roots and `[outbound] ca_file`.
#[derive(Debug, Clone)]
pub struct HttpSink {
    client: reqwest::Client,
}

impl HttpSink {
    /// A client that trusts the Mozilla roots and, when given, the PEM
    /// certificates in `extra_ca` (`[outbound] ca_file`).
    ///
    /// # Errors
    /// When `extra_ca` cannot be read or holds no usable certificate.
    pub fn new(extra_ca: Option<&std::path::Path>) -> Result<Self, TlsError> {
        let client = crate::security::tls::reqwest_builder(extra_ca)?
            .connect_timeout(std::time::Duration::from_secs(5))
            .build()
            .expect("an HTTP client with a rustls config builds");
        Ok(Self { client })
    }

    /// POST `event` to `url` in `mode` with extra `headers`, within
    /// `timeout`. A 2xx answer carrying a CloudEvent gives that event; a 2xx
    /// without one (or a 202/204) gives none.
    ///
    /// # Errors
    /// [`SinkError`] for a connection failure, a timeout, a non-2xx status,
    /// or a 2xx whose body is not a valid CloudEvent.
    pub async fn post(
        &self,
        url: &url::Url,
        event: &Event,
        mode: Mode,
        headers: &BTreeMap<String, String>,
        timeout: Option<Duration>,
    ) -> Result<Option<Event>, SinkError> {
        self.bounded(url, event, mode, headers, timeout, true).await
    }

    /// POST `event` to a destination that does not reply (a sink, a reply
    /// destination, a dead letter): any 2xx is success, whatever its body.
    ///
    /// # Errors
    /// [`SinkError`] for a connection failure, a timeout or a non-2xx status.
    pub async fn deliver(
        &self,
        url: &url::Url,
        event: &Event,
        mode: Mode,
        headers: &BTreeMap<String, String>,
        timeout: Option<Duration>,
    ) -> Result<(), SinkError> {
        self.bounded(url, event, mode, headers, timeout, false)
            .await
            .map(drop)
    }

    async fn bounded(
        &self,
        url: &url::Url,
        event: &Event,
        mode: Mode,
        headers: &BTreeMap<String, String>,
        timeout: Option<Duration>,
        want_reply: bool,
    ) -> Result<Option<Event>, SinkError> {
        let timeout = timeout.unwrap_or(DEFAULT_TIMEOUT);
        let attempt = self.attempt(url, event, mode, headers, want_reply);
        match tokio::time::timeout(timeout, attempt).await {
            Ok(r) => r,
            Err(_) => Err(SinkError::Timeout {
                url: url.to_string(),
                after: timeout,
            }),
        }
    }

    async fn attempt(
        &self,
        url: &url::Url,
        event: &Event,
        mode: Mode,
        extra: &BTreeMap<String, String>,
        want_reply: bool,
    ) -> Result<Option<Event>, SinkError> {
        let encoded = encode(event, mode);
        let mut request = self
            .client
            .post(url.as_str())
            .headers(encoded.headers)
            .body(encoded.body);
        for (k, v) in extra {
            request = request.header(k, v);
        }
        let response = request.send().await.map_err(|e| SinkError::Connect {
            url: url.to_string(),
            reason: e.to_string(),
        })?;
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.bytes().await.map_err(|e| SinkError::Connect {
            url: url.to_string(),
            reason: format!("reading the response: {e}"),
        })?;
        if !status.is_success() {
            let text = String::from_utf8_lossy(&body);
            return Err(SinkError::Status {
                url: url.to_string(),
                status: status.as_u16(),
                body: truncate(&text),
                retry_after: headers
                    .get(http::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(parse_retry_after),
            });
        }
        let has_event = headers.contains_key("ce-specversion") || !body.is_empty();
        if !want_reply
            || status == http::StatusCode::ACCEPTED
            || status == http::StatusCode::NO_CONTENT
            || !has_event
        {
            return Ok(None);
        }
        match decode(&headers, body.clone()) {
            Ok(d) if d.events.len() == 1 => Ok(d.events.into_iter().next()),
            Ok(d) if d.events.is_empty() => Ok(None),
            Ok(d) => Err(SinkError::InvalidReply {
                url: url.to_string(),
                status: status.as_u16(),
                reason: format!("{} events in one reply; one is allowed", d.events.len()),
                body: truncate(&String::from_utf8_lossy(&body)),
            }),
            Err(e) => Err(SinkError::InvalidReply {
                url: url.to_string(),
                status: status.as_u16(),
                reason: e.to_string(),
                body: truncate(&String::from_utf8_lossy(&body)),
            }),
        }
    }
}

/// The first [`MAX_ERROR_BODY`] bytes of `s`, cut at a character boundary.
pub fn truncate(s: &str) -> String {
    if s.len() <= MAX_ERROR_BODY {
        return s.to_owned();
    }
    let mut end = MAX_ERROR_BODY;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_owned()
}

/// `Retry-After` as delay-seconds or an HTTP-date (RFC 9110 §10.2.3).
pub fn parse_retry_after(v: &str) -> Option<Duration> {
    let v = v.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = chrono::DateTime::parse_from_rfc2822(v).ok()?;
    let delta = at.with_timezone(&chrono::Utc) - chrono::Utc::now();
    Some(delta.to_std().unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_forms() {
        assert_eq!(parse_retry_after("3"), Some(Duration::from_secs(3)));
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(Duration::ZERO)
        );
        let later = (chrono::Utc::now() + chrono::Duration::seconds(100)).to_rfc2822();
        let d = parse_retry_after(&later).unwrap();
        assert!(
            d > Duration::from_secs(90) && d <= Duration::from_secs(100),
            "{d:?}"
        );
        assert_eq!(parse_retry_after("soon"), None);
    }

    #[test]
    fn truncation_keeps_characters_whole() {
        let s = "€".repeat(1000);
        let t = truncate(&s);
        assert!(t.len() <= MAX_ERROR_BODY && t.chars().all(|c| c == '€'));
    }
}
