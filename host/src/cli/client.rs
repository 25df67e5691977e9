//! Client commands over a running host's HTTP API.

use std::path::Path;

use anyhow::{bail, Context, Result};
use bytes::Bytes;

use crate::cloudevents::{decode, encode, Mode};
use crate::config::{Filter, TriggerSpec};
use crate::event::Event;

fn url(base: &str, path: &str) -> String {
    format!("{}{path}", base.trim_end_matches('/'))
}

/// Fail with the server's reason unless the status is a success.
async fn check(response: reqwest::Response) -> Result<reqwest::Response> {
    if response.status().is_success() {
        return Ok(response);
    }
    let status = response.status();
    let body = response.text().await.unwrap_or_default();
    let reason = serde_json::from_str::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_owned))
        .unwrap_or(body);
    bail!("{status}: {reason}")
}

/// `sluice deploy`.
pub async fn deploy(
    host: &str,
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
    let response = reqwest::Client::new()
        .put(url(host, &format!("/admin/v1/functions/{name}")))
        .query(&query)
        .header("content-type", "application/wasm")
        .header("content-length", size)
        .body(super::progress::body(bytes))
        .send()
        .await
        .with_context(|| format!("connecting to {host}"))?;
    let record: serde_json::Value = check(response).await?.json().await?;
    eprintln!(
        "deployed `{name}` ({size} bytes), ready after {:.1?}",
        started.elapsed()
    );
    println!("{}", serde_json::to_string_pretty(&record)?);
    Ok(())
}

/// `sluice trigger`.
pub async fn trigger(
    host: &str,
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
    let response = reqwest::Client::new()
        .put(url(host, &format!("/admin/v1/triggers/{name}")))
        .json(&spec)
        .send()
        .await
        .with_context(|| format!("connecting to {host}"))?;
    check(response).await?;
    println!("trigger `{name}` set");
    Ok(())
}

/// `sluice send`.
pub async fn send(
    host: &str,
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
    let target = to.unwrap_or_else(|| url(host, "/"));
    let encoded = encode(&event, Mode::Binary);
    let response = reqwest::Client::new()
        .post(&target)
        .headers(encoded.headers)
        .body(encoded.body)
        .send()
        .await
        .with_context(|| format!("connecting to {target}"))?;
    let response = check(response).await?;
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
pub async fn ls(host: &str) -> Result<()> {
    let client = reqwest::Client::new();
    let functions: Vec<crate::registry::FunctionRecord> = check(
        client
            .get(url(host, "/admin/v1/functions"))
            .send()
            .await
            .with_context(|| format!("connecting to {host}"))?,
    )
    .await?
    .json()
    .await?;
    let table: crate::routing::Table =
        check(client.get(url(host, "/admin/v1/routing")).send().await?)
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
    host: &str,
    config: Option<&std::path::Path>,
    format: crate::routing::graph::Format,
) -> Result<()> {
    let (table, sources) = match config {
        Some(path) => {
            let c = crate::config::Config::load(path)?;
            (crate::routing::Table::from_config(&c), c.sources)
        }
        None => {
            let client = reqwest::Client::new();
            let get = |path: &'static str| {
                let request = client.get(url(host, path)).send();
                async move {
                    check(
                        request
                            .await
                            .with_context(|| format!("connecting to {host}"))?,
                    )
                    .await
                }
            };
            let table = get("/admin/v1/routing").await?.json().await?;
            let sources = get("/admin/v1/sources").await?.json().await?;
            (table, sources)
        }
    };
    print!(
        "{}",
        crate::routing::graph::render_with_sources(&table, &sources, format)
    );
    Ok(())
}
