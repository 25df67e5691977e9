//! The HTTP sink: POST the event in binary content mode.

use crate::cloudevents::{encode, Mode};
use crate::event::Event;

use super::SinkError;

/// Longest response body kept in an error.
const MAX_ERROR_BODY: usize = 512;

/// An HTTP client for sinks, with connection pooling.
#[derive(Debug, Clone)]
pub struct HttpSink {
    client: reqwest::Client,
}

impl HttpSink {
    /// A new client.
    pub fn new() -> Self {
        let client = reqwest::Client::builder()
            .connect_timeout(std::time::Duration::from_secs(5))
            .timeout(std::time::Duration::from_secs(30))
            .build()
            .expect("a plain HTTP client builds");
        Self { client }
    }

    /// POST `event` to `url`; success is any 2xx.
    ///
    /// # Errors
    /// [`SinkError`] for a connection failure or a non-2xx status.
    pub async fn send(&self, url: &url::Url, event: &Event) -> Result<(), SinkError> {
        let encoded = encode(event, Mode::Binary);
        let response = self
            .client
            .post(url.as_str())
            .headers(encoded.headers)
            .body(encoded.body)
            .send()
            .await
            .map_err(|e| SinkError::Connect {
                url: url.to_string(),
                reason: e.to_string(),
            })?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let body = response.text().await.unwrap_or_default();
        let body: String = body.chars().take(MAX_ERROR_BODY).collect();
        Err(SinkError::Status {
            url: url.to_string(),
            status: status.as_u16(),
            body,
        })
    }
}

impl Default for HttpSink {
    fn default() -> Self {
        Self::new()
    }
}
