//! Client commands over a running host's admin API (`--host`,
//! `SLUICE_ADMIN_URL`) and event listener (`sluice send`: `--url`,
//! `SLUICE_URL`).

use std::path::Path;

use anyhow::{bail, Context, Result};
use bytes::Bytes;

use super::{EventsArg, HostArg};
use crate::cloudevents::{decode, encode, Mode};
use crate::config::{Filter, TriggerSpec};
use crate::event::Event;

fn url(base: &str, path: &str) -> String {
    format!("{}{path}", base.trim_end_matches('/'))
}

/// The environment variable holding the admin token.
pub const ADMIN_TOKEN_ENV: &str = "SLUICE_ADMIN_TOKEN";
/// The environment variable holding a sender token for `sluice send`.
pub const SENDER_TOKEN_ENV: &str = "SLUICE_SENDER_TOKEN";

/// A client of one host's admin API, with its token.
pub struct Admin {
    base: String,
    http: reqwest::Client,
    token: Option<String>,
}

impl Admin {
    /// The client `arg` describes; the token comes from
    /// `SLUICE_ADMIN_TOKEN_FILE`/`--token-file`, else `SLUICE_ADMIN_TOKEN`.
    ///
    /// # Errors
    /// When the token or CA file cannot be read.
    pub fn new(arg: &HostArg) -> Result<Self> {
        let token = match &arg.token_file {
            Some(path) => Some(
                std::fs::read_to_string(path)
                    .with_context(|| format!("reading the admin token from {}", path.display()))?
                    .trim()
                    .to_owned(),
            ),
            None => std::env::var(ADMIN_TOKEN_ENV)
                .ok()
                .filter(|t| !t.is_empty()),
        };
        Ok(Self {
            base: arg.url.clone(),
            http: http_client(arg.ca_file.as_deref())?,
            token,
        })
    }

    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let r = self.http.request(method, url(&self.base, path));
        match &self.token {
            Some(t) => r.bearer_auth(t),
            None => r,
        }
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> Result<reqwest::Response> {
        let response = request
            .send()
            .await
            .map_err(|e| connect_error(&e, &self.base, "the admin API"))?;
        check(
            response,
            self.token.is_some(),
            "SLUICE_ADMIN_TOKEN or SLUICE_ADMIN_TOKEN_FILE",
        )
        .await
    }
}

/// An HTTP client trusting the built-in roots and `ca_file`.
fn http_client(ca_file: Option<&Path>) -> Result<reqwest::Client> {
    Ok(crate::security::tls::reqwest_builder(ca_file)?.build()?)
}

/// Say what failed to connect, plainly.
fn connect_error(e: &reqwest::Error, base: &str, what: &str) -> anyhow::Error {
    if e.is_connect() {
        let mut source: Option<&dyn std::error::Error> = Some(e);
        let mut refused = false;
        while let Some(s) = source {
            if let Some(io) = s.downcast_ref::<std::io::Error>() {
                refused |= io.kind() == std::io::ErrorKind::ConnectionRefused;
            }
            source = s.source();
        }
        if refused {
            return anyhow::anyhow!(
                "cannot reach {what} at {base}: connection refused (is `sluice serve` running, \
                 and is this its address? the admin API is on --admin-listen, default \
                 127.0.0.1:8081; set --host or SLUICE_ADMIN_URL)"
            );
        }
        return anyhow::anyhow!("cannot reach {what} at {base}: {e:#}");
    }
    anyhow::anyhow!("talking to {what} at {base}: {e:#}")
}

/// Fail with the server's reason unless the status is a success; 401 and
/// 403 say what to do about the token.
async fn check(
    response: reqwest::Response,
    had_token: bool,
    token_env: &str,
) -> Result<reqwest::Response> {
    if response.status().is_success() {
        return Ok(response);
    }
    let status = response.status();
    let body = response.text().await.unwrap_or_default();
    let reason = serde_json::from_str::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_owned))
        .unwrap_or(body);
    match status {
        reqwest::StatusCode::UNAUTHORIZED if had_token => {
            bail!("{status}: {reason} (the token was refused: check {token_env})")
        }
        reqwest::StatusCode::UNAUTHORIZED => {
            bail!("{status}: {reason} (no token was sent: set {token_env})")
        }
        reqwest::StatusCode::FORBIDDEN => bail!(
            "{status}: {reason} (the token is valid but may not do this: use a token with the write scope)"
        ),
        _ => bail!("{status}: {reason}"),
    }
}

/// `sluice deploy`.
pub async fn deploy(
    admin: &Admin,
    name: &str,
    file: &Path,
    timeout: Option<String>,
    memory_mib: Option<u32>,
) -> Result<()> {
    let bytes = tokio::fs::read(file)
        .await
        .with_context(|| format!("reading {}", file.display()))?;
    let mut query: Vec<(&str, String)> = Vec::new();
    if let Some(t) = timeout {
        query.push(("timeout", t));
    }
    if let Some(m) = memory_mib {
        query.push(("memory_mib", m.to_string()));
    }
    let started = std::time::Instant::now();
    let size = bytes.len();
    let response = admin
        .send(
            admin
                .request(reqwest::Method::PUT, &format!("/admin/v1/functions/{name}"))
                .query(&query)
                .header("content-type", "application/wasm")
                .header("content-length", size)
                .body(super::progress::body(bytes)),
        )
        .await?;
    let record: serde_json::Value = response.json().await?;
    eprintln!(
        "deployed `{name}` ({size} bytes), ready after {:.1?}",
        started.elapsed()
    );
    println!("{}", serde_json::to_string_pretty(&record)?);
    Ok(())
}

/// `sluice trigger`.
pub async fn trigger(
    admin: &Admin,
    name: &str,
    function: &str,
    ty: Option<String>,
    source: Option<String>,
    sink: Option<String>,
) -> Result<()> {
    let mut filter = Filter::default();
    if let Some(t) = ty {
        filter.attributes.insert("type".into(), t);
    }
    if let Some(s) = source {
        filter.attributes.insert("source".into(), s);
    }
    let spec = TriggerSpec::to_function(
        filter,
        function.parse()?,
        sink.map(|s| s.parse()).transpose()?,
    );
    admin
        .send(
            admin
                .request(reqwest::Method::PUT, &format!("/admin/v1/triggers/{name}"))
                .json(&spec),
        )
        .await?;
    println!("trigger `{name}` set");
    Ok(())
}

/// `sluice send`.
pub async fn send(
    events: &EventsArg,
    ty: String,
    source: String,
    id: Option<String>,
    data: Option<String>,
    to: Option<String>,
) -> Result<()> {
    let mut event = Event::new(
        id.unwrap_or_else(|| uuid::Uuid::new_v4().to_string()),
        source,
        ty,
    );
    event.time = Some(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true));
    if let Some(d) = data {
        serde_json::from_str::<serde_json::Value>(&d).context("--data must be JSON")?;
        event.datacontenttype = Some("application/json".into());
        event.data = Some(Bytes::from(d));
    }
    event.validate()?;
    let target = to.unwrap_or_else(|| url(&events.url, "/"));
    let encoded = encode(&event, Mode::Binary);
    let mut request = http_client(events.ca_file.as_deref())?
        .post(&target)
        .headers(encoded.headers)
        .body(encoded.body);
    let token = std::env::var(SENDER_TOKEN_ENV)
        .ok()
        .filter(|t| !t.is_empty());
    if let Some(t) = &token {
        request = request.bearer_auth(t);
    }
    let response = request
        .send()
        .await
        .map_err(|e| connect_error(&e, &target, "the event listener"))?;
    let response = check(response, token.is_some(), SENDER_TOKEN_ENV).await?;
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.bytes().await?;
    println!("{status} (sent event {})", event.id);
    if !body.is_empty() || headers.keys().any(|k| k.as_str().starts_with("ce-")) {
        let reply = decode(&headers, body).context("decoding the reply")?;
        for e in reply.events {
            let structured = encode(&e, Mode::Structured);
            let value: serde_json::Value = serde_json::from_slice(&structured.body)?;
            println!("{}", serde_json::to_string_pretty(&value)?);
        }
    }
    Ok(())
}

/// `sluice ls`.
pub async fn ls(admin: &Admin) -> Result<()> {
    let functions: Vec<crate::registry::FunctionRecord> = admin
        .send(admin.request(reqwest::Method::GET, "/admin/v1/functions"))
        .await?
        .json()
        .await?;
    let table: crate::routing::Table = admin
        .send(admin.request(reqwest::Method::GET, "/admin/v1/routing"))
        .await?
        .json()
        .await?;
    let triggers = table.triggers;
    println!("FUNCTIONS");
    for f in functions {
        println!("  {:<24} {:>9} B  {}", f.name.as_str(), f.size, f.digest);
    }
    println!("TRIGGERS");
    for (name, t) in triggers {
        let filter: Vec<String> = t
            .filter
            .attributes
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let reply = t
            .reply_to()
            .map_or_else(|| "-".to_owned(), |s| s.to_string());
        let extra = if t.filters.is_empty() {
            ""
        } else {
            " +filters"
        };
        println!(
            "  {name:<24} [{}{extra}] -> {} -> {reply}",
            filter.join(" "),
            t.subscriber()
        );
    }
    if !table.sinks.is_empty() {
        println!("SINKS");
        for (name, s) in &table.sinks {
            let target = s
                .url
                .as_ref()
                .map_or_else(|| "log".to_owned(), ToString::to_string);
            println!("  {name:<24} {target}");
        }
    }
    if !table.sequences.is_empty() {
        println!("SEQUENCES");
        for (name, q) in &table.sequences {
            let steps: Vec<String> = q.steps.iter().map(|s| s.to.to_string()).collect();
            let reply = q
                .reply
                .as_ref()
                .map_or_else(|| "-".to_owned(), ToString::to_string);
            println!("  {name:<24} {} -> {reply}", steps.join(" -> "));
        }
    }
    if !table.parallels.is_empty() {
        println!("PARALLELS");
        for (name, p) in &table.parallels {
            let branches: Vec<String> = p
                .branches
                .iter()
                .map(|b| b.subscriber.to_string())
                .collect();
            println!("  {name:<24} {{{}}}", branches.join(", "));
        }
    }
    Ok(())
}

/// `sluice graph`: draw a config file's routing, or a running host's.
pub async fn graph(
    host: &HostArg,
    config: Option<&std::path::Path>,
    format: crate::routing::graph::Format,
) -> Result<()> {
    let (table, sources) = match config {
        Some(path) => {
            let c = crate::config::Config::load(path)?;
            (crate::routing::Table::from_config(&c), c.sources)
        }
        None => {
            let admin = Admin::new(host)?;
            let table = admin
                .send(admin.request(reqwest::Method::GET, "/admin/v1/routing"))
                .await?
                .json()
                .await?;
            let sources = admin
                .send(admin.request(reqwest::Method::GET, "/admin/v1/sources"))
                .await?
                .json()
                .await?;
            (table, sources)
        }
    };
    print!(
        "{}",
        crate::routing::graph::render_with_sources(&table, &sources, format)
    );
    Ok(())
}
