//! The HTTP client for subscribers and sinks: POST one event, read back a
//! reply event or a classified failure. Response bodies are read as a
//! stream and never past a limit: a subscriber's reply up to
//! `runtime.max_reply_bytes`, anything else up to [`MAX_ERROR_BODY`].

use std::collections::BTreeMap;
use std::time::Duration;

use crate::cloudevents::{decode, encode, Mode};
use crate::event::Event;
use crate::security::tls::TlsError;

use super::SinkError;

/// Longest response body kept in an error, and the most read of a body
/// that is not a reply (an error answer, a sink's answer).
pub const MAX_ERROR_BODY: usize = 1024;

/// The header a subscriber gets: Sluice processes its reply (Knative's
/// data plane requires it of brokers and channels).
const PREFER: (&str, &str) = ("prefer", "reply");

/// Deadline of one attempt when the delivery options set none.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// A client from `builder`: a short connect timeout, no redirects.
fn build(builder: reqwest::ClientBuilder) -> reqwest::Client {
    // A redirect is not followed: a 3xx is a failed attempt (Knative's
    // data plane), where following it would resend the event elsewhere
    // (or, for a 302, as a GET without it).
    builder
        .connect_timeout(std::time::Duration::from_secs(5))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("an HTTP client with a rustls config builds")
}

/// An HTTP client for sinks, with connection pooling. HTTPS verifies the
/// server's certificate against the Mozilla roots and `[outbound] ca_file`.
/// Redirects are not followed: a 3xx answer is a failure.
#[derive(Debug, Clone)]
pub struct HttpSink {
    client: reqwest::Client,
    /// The client for `env:` destinations: `client`, unless
    /// [`HttpSink::with_sink_binding_ca`] added `K_CA_CERTS`.
    sink_binding: reqwest::Client,
    max_reply: usize,
}

impl HttpSink {
    /// A client that trusts the Mozilla roots and, when given, the PEM
    /// certificates in `extra_ca` (`[outbound] ca_file`), and reads at most
    /// `max_reply` bytes of a subscriber's reply (`runtime.max_reply_bytes`).
    ///
    /// # Errors
    /// When `extra_ca` cannot be read or holds no usable certificate.
    pub fn new(extra_ca: Option<&std::path::Path>, max_reply: usize) -> Result<Self, TlsError> {
        let client = build(crate::security::tls::reqwest_builder(extra_ca)?);
        Ok(Self {
            sink_binding: client.clone(),
            client,
            max_reply,
        })
    }

    /// This sink, whose [`HttpSink::for_sink_binding`] also trusts the PEM
    /// certificates of `pem` (Knative SinkBinding's `K_CA_CERTS`, named so
    /// in errors) beside the roots of [`HttpSink::new`].
    ///
    /// # Errors
    /// When `extra_ca` or `pem` holds no usable certificate.
    pub fn with_sink_binding_ca(
        self,
        extra_ca: Option<&std::path::Path>,
        pem: &[u8],
    ) -> Result<Self, TlsError> {
        let also = Some((crate::config::CA_CERTS, pem));
        Ok(Self {
            sink_binding: build(crate::security::tls::reqwest_builder_also(extra_ca, also)?),
            ..self
        })
    }

    /// The sink for `env:` destinations (see [`HttpSink::with_sink_binding_ca`]).
    #[must_use]
    pub fn for_sink_binding(&self) -> Self {
        Self {
            client: self.sink_binding.clone(),
            sink_binding: self.sink_binding.clone(),
            max_reply: self.max_reply,
        }
    }

    /// POST `event` to a subscriber at `url` in `mode` with extra
    /// `headers`, within `timeout`, saying `Prefer: reply` (Knative's data
    /// plane: the sender processes replies). A 2xx answer carrying a
    /// CloudEvent gives that event; a 2xx without one (or a 202/204) gives
    /// none.
    ///
    /// # Errors
    /// [`SinkError`] for a connection failure, a timeout, a non-2xx status,
    /// a 2xx whose body is longer than the reply limit, or one that is not
    /// a valid CloudEvent.
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
    /// destination, a dead letter), without `Prefer: reply`: any 2xx is
    /// success, whatever its body (which is not read past
    /// [`MAX_ERROR_BODY`]).
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
        if want_reply {
            request = request.header(PREFER.0, PREFER.1);
        }
        let mut response = request.send().await.map_err(|e| SinkError::Connect {
            url: url.to_string(),
            reason: e.to_string(),
        })?;
        let status = response.status();
        if !status.is_success() {
            // The status decides; the body only explains, so a prefix of it
            // is enough, and a failure to read it changes nothing.
            let mut body = Vec::new();
            _ = read_limited(&mut response, MAX_ERROR_BODY, &mut body).await;
            return Err(SinkError::Status {
                url: url.to_string(),
                status: status.as_u16(),
                body: truncate(&String::from_utf8_lossy(&body)),
                retry_after: response
                    .headers()
                    .get(http::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(parse_retry_after),
            });
        }
        if !want_reply
            || status == http::StatusCode::ACCEPTED
            || status == http::StatusCode::NO_CONTENT
        {
            discard(response).await;
            return Ok(None);
        }
        let too_large = || SinkError::ReplyTooLarge {
            url: url.to_string(),
            status: status.as_u16(),
            limit: self.max_reply,
        };
        // A body announced longer than the limit is refused unread.
        let announced = response.content_length().unwrap_or(0);
        if announced > self.max_reply as u64 {
            return Err(too_large());
        }
        let mut body = Vec::with_capacity(announced as usize);
        match read_limited(&mut response, self.max_reply, &mut body).await {
            Read::Whole => {}
            Read::TooLong => return Err(too_large()),
            Read::Failed(e) => {
                return Err(SinkError::Connect {
                    url: url.to_string(),
                    reason: format!("reading the response: {e}"),
                })
            }
        }
        let headers = response.headers();
        let body = bytes::Bytes::from(body);
        if !headers.contains_key("ce-specversion") && body.is_empty() {
            return Ok(None);
        }
        match decode(headers, body.clone()) {
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

/// How reading a body within a limit ended.
enum Read {
    /// All of it was read.
    Whole,
    /// It is longer than the limit: the limit's worth was read.
    TooLong,
    /// The connection failed while reading.
    Failed(reqwest::Error),
}

/// Append `response`'s body to `into`, chunk by chunk, stopping at `limit`
/// bytes (a longer body is cut there and not read further).
async fn read_limited(response: &mut reqwest::Response, limit: usize, into: &mut Vec<u8>) -> Read {
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                let room = limit.saturating_sub(into.len());
                if chunk.len() > room {
                    into.extend_from_slice(&chunk[..room]);
                    return Read::TooLong;
                }
                into.extend_from_slice(&chunk);
            }
            Ok(None) => return Read::Whole,
            Err(e) => return Read::Failed(e),
        }
    }
}

/// Let go of a response whose body does not matter. A short body of
/// announced length is read to its end, so the connection goes back to the
/// pool; any other is dropped unread (closing the connection) rather than
/// read for as long as the server cares to send.
async fn discard(mut response: reqwest::Response) {
    let short = response
        .content_length()
        .is_some_and(|n| n <= MAX_ERROR_BODY as u64);
    if short {
        let mut sink = Vec::new();
        _ = read_limited(&mut response, MAX_ERROR_BODY, &mut sink).await;
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
