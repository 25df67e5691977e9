//! Source functions (feature `source`): components the host runs on a
//! schedule, each run returning the events to emit.
//!
//! ```ignore
//! use sluice_guest::source::{Context, Output};
//! use sluice_guest::{source, Error, Event};
//!
//! fn run(cx: Context) -> Result<Output, Error> {
//!     let url = cx.config("url").ok_or("config `url` is required")?;
//!     let body = sluice_guest::source::http::get(url)?;
//!     let event = Event::builder()
//!         .ty("com.example.polled")
//!         .data("application/json", body)
//!         .finish()?;
//!     Ok(Output::events(vec![event]))
//! }
//!
//! source!(run);
//! ```
//!
//! The function never learns where its events go: the binding in
//! `sluice.toml` decides. Empty `id` and `source` are filled in by the host.

use crate::bindings::sluice::handler::source_types as wit;
use crate::{Error, Event};

/// What a run is given: the binding's configuration and the state the
/// previous successful run returned.
#[derive(Debug, Clone, Default)]
pub struct Context {
    config: Vec<(String, String)>,
    state: Option<Vec<u8>>,
}

impl Context {
    /// A configuration value by key.
    pub fn config(&self, key: &str) -> Option<&str> {
        self.config
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Every configuration value, sorted by key.
    pub fn config_all(&self) -> &[(String, String)] {
        &self.config
    }

    /// The state the last successful run returned, if any.
    pub fn state(&self) -> Option<&[u8]> {
        self.state.as_deref()
    }
}

/// What a run produced.
#[derive(Debug, Clone, Default)]
pub struct Output {
    /// Events to emit, in order.
    pub events: Vec<Event>,
    /// New state for the next run (`None` keeps the current one).
    pub state: Option<Vec<u8>>,
}

impl Output {
    /// These events, state unchanged.
    pub fn events(events: Vec<Event>) -> Self {
        Self {
            events,
            state: None,
        }
    }

    /// Replace the state handed to the next run.
    pub fn with_state(mut self, state: impl Into<Vec<u8>>) -> Self {
        self.state = Some(state.into());
        self
    }
}

#[doc(hidden)]
pub fn __call(
    run: fn(Context) -> Result<Output, Error>,
    config: Vec<(String, String)>,
    state: Option<Vec<u8>>,
) -> Result<wit::RunOutput, wit::SourceError> {
    run(Context { config, state })
        .map(|out| wit::RunOutput {
            events: out.events.into_iter().map(Event::into_wit).collect(),
            state: out.state,
        })
        .map_err(|e| wit::SourceError { message: e.message })
}

/// Export `fn(Context) -> Result<Output, Error>` as this component's
/// source function. Use it exactly once per crate.
#[macro_export]
macro_rules! source {
    ($run:path) => {
        struct __SluiceSource;

        impl $crate::bindings::Guest for __SluiceSource {
            fn run(
                config: ::std::vec::Vec<(::std::string::String, ::std::string::String)>,
                state: ::std::option::Option<::std::vec::Vec<u8>>,
            ) -> ::std::result::Result<
                $crate::bindings::RunOutput,
                $crate::bindings::SourceError,
            > {
                $crate::source::__call($run, config, state)
            }
        }

        $crate::bindings::__export_source_world!(__SluiceSource with_types_in $crate::bindings);
    };
}

/// Blocking outbound HTTP through `wasi:http/outgoing-handler`. The host
/// only lets requests through to the binding's `allowed_outbound_hosts`;
/// others fail with an error naming `HttpRequestDenied`, and a request to
/// a loopback, private or link-local address the list does not name
/// explicitly with one naming `DestinationIpProhibited`.
pub mod http {
    use wasi::http::outgoing_handler;
    use wasi::http::types::{ErrorCode, Fields, Method, OutgoingRequest, Scheme};
    use wasi::io::streams::StreamError;

    use crate::Error;

    /// Largest response body read.
    pub const MAX_BODY: usize = 4 * 1024 * 1024;

    /// GET `url` (`http://` or `https://`) and return the body of a 2xx
    /// response.
    ///
    /// # Errors
    /// When the host refuses the request (host not allowed), the request
    /// fails, or the status is not 2xx.
    pub fn get(url: &str) -> Result<Vec<u8>, Error> {
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| Error::new(format!("`{url}` is not an absolute URL")))?;
        let scheme = match scheme {
            "http" => Scheme::Http,
            "https" => Scheme::Https,
            other => return Err(Error::new(format!("unsupported scheme `{other}`"))),
        };
        let (authority, path) = match rest.find(['/', '?']) {
            Some(i) if rest[i..].starts_with('/') => (&rest[..i], &rest[i..]),
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        let path = if path.starts_with('?') {
            format!("/{path}")
        } else {
            path.to_owned()
        };
        let request = OutgoingRequest::new(Fields::new());
        let bad = |what: &str| Error::new(format!("invalid {what} in `{url}`"));
        request
            .set_method(&Method::Get)
            .map_err(|()| bad("method"))?;
        request
            .set_scheme(Some(&scheme))
            .map_err(|()| bad("scheme"))?;
        request
            .set_authority(Some(authority))
            .map_err(|()| bad("authority"))?;
        request
            .set_path_with_query(Some(&path))
            .map_err(|()| bad("path"))?;
        let failed = |e: ErrorCode| {
            let hint = match e {
                ErrorCode::HttpRequestDenied => {
                    " (the host is not in this source's allowed_outbound_hosts)"
                }
                ErrorCode::DestinationIpProhibited => {
                    " (it resolves to a loopback, private or link-local address, which \
                     this source's allowed_outbound_hosts must name explicitly)"
                }
                _ => "",
            };
            Error::new(format!("GET {url} failed: {e:?}{hint}"))
        };
        let pending = outgoing_handler::handle(request, None).map_err(failed)?;
        pending.subscribe().block();
        let response = pending
            .get()
            .ok_or_else(|| Error::new("no response"))?
            .map_err(|()| Error::new("response already taken"))?
            .map_err(failed)?;
        let status = response.status();
        let body = response
            .consume()
            .map_err(|()| Error::new("response body already taken"))?;
        let mut out = Vec::new();
        {
            let stream = body
                .stream()
                .map_err(|()| Error::new("response body stream already taken"))?;
            loop {
                match stream.blocking_read(64 * 1024) {
                    Ok(chunk) => {
                        out.extend_from_slice(&chunk);
                        if out.len() > MAX_BODY {
                            return Err(Error::new(format!(
                                "GET {url}: response body over {MAX_BODY} bytes"
                            )));
                        }
                    }
                    Err(StreamError::Closed) => break,
                    Err(StreamError::LastOperationFailed(e)) => {
                        return Err(Error::new(format!(
                            "GET {url}: reading the body failed: {}",
                            e.to_debug_string()
                        )))
                    }
                }
            }
        }
        if !(200..300).contains(&status) {
            return Err(Error::new(format!(
                "GET {url} answered {status}: {}",
                String::from_utf8_lossy(&out[..out.len().min(200)])
            )));
        }
        Ok(out)
    }
}
