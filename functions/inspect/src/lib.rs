//! Replies with what its sandbox lets it see, as JSON data:
//! `{"count": N, "env": {...}, "file_read": "..."}` where `count` is how
//! many events this instance has handled (1 unless the host reuses
//! instances), `env` its environment variables, and `file_read` what
//! happened when it tried to read `/etc/hostname`.

use std::sync::atomic::{AtomicU64, Ordering};

use sluice_guest::{handler, Error, Event};

static HANDLED: AtomicU64 = AtomicU64::new(0);

fn handle(event: Event) -> Result<Option<Event>, Error> {
    let count = HANDLED.fetch_add(1, Ordering::Relaxed) + 1;
    let env: serde_json::Map<String, serde_json::Value> = std::env::vars()
        .map(|(k, v)| (k, serde_json::Value::String(v)))
        .collect();
    let file_read = match std::fs::read_to_string("/etc/hostname") {
        Ok(_) => "ok".to_owned(),
        Err(e) => format!("error: {e}"),
    };
    let reply = event
        .to_builder()
        .ty("dev.sluice.inspected")
        .extension("count", count as i64)
        .json(&serde_json::json!({ "count": count, "env": env, "file_read": file_read }))?
        .build()?;
    Ok(Some(reply))
}

handler!(handle);
