//! Interoperability with independent CloudEvents implementations: the
//! Python SDK v2 (`cloudevents.core.bindings.http`, PyPI) and the
//! JavaScript SDK (`cloudevents`, npm) each send binary, structured and
//! batched events to `POST /functions/echo` on a running host and decode
//! the replies. The echo function sends every event back with its type
//! suffixed, so what the SDK decodes shows both directions: their event
//! arrived intact, and Sluice's reply reads correctly in their SDK.
//!
//! `cargo xtask test` installs both SDKs into `target/interop/` (a venv and
//! a node_modules); these tests fail, never skip, when they are missing.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{json, Value};

use crate::harness::Host;

/// Where `cargo xtask test` installs the SDKs.
fn interop_dir() -> PathBuf {
    std::env::var_os("SLUICE_INTEROP_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/interop"))
}

fn scripts_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/interop")
}

/// Run a client script to completion and parse its JSON lines by mode.
fn run_client(mut cmd: Command, what: &str) -> Vec<Value> {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run the {what} client ({cmd:?}): {e}; run `cargo xtask test`, which installs it"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{what} client failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    let lines: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{what}: bad line {l}: {e}")))
        .collect();
    let modes: Vec<&str> = lines.iter().filter_map(|l| l["mode"].as_str()).collect();
    assert_eq!(
        modes,
        ["binary", "structured", "batched"],
        "{what}:\n{stdout}\n{stderr}"
    );
    lines
}

/// The events both clients send, described for their scripts.
fn spec(id: &str, source: &str, subject: &str) -> Value {
    json!({
        "id": id,
        "source": source,
        "type": "dev.sluice.interop",
        "subject": subject,
        "time": "2026-11-25T10:00:00.250+02:00",
        "extensions": {"tenant": "acme corp", "count": 42, "flag": true},
        "json_data": {"amount": 12.5, "note": "Euro € 😀", "list": [1, null, "x"]},
        "binary_data": "AAEC/w==",
    })
}

fn instant(v: &Value) -> chrono::DateTime<chrono::FixedOffset> {
    let s = v
        .as_str()
        .unwrap_or_else(|| panic!("time is not a string: {v}"));
    chrono::DateTime::parse_from_rfc3339(s).unwrap_or_else(|e| panic!("time {s}: {e}"))
}

/// Percent-decode (for an SDK that does not undo §3.1.3.2 itself).
fn percent_decoded(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8()
        .map(|c| c.into_owned())
        .unwrap_or_else(|_| s.to_owned())
}

/// Equal strings, allowing the SDK to have left §3.1.3.2 percent-encoding
/// in place (the JS SDK does: it decodes no header value).
fn same_text(got: &Value, want: &Value) -> bool {
    let got = got.as_str().unwrap_or_default();
    got == want || percent_decoded(got) == *want
}

/// Check what an SDK decoded from the echo replies against what it sent.
fn check(lines: &[Value], spec: &Value, what: &str) {
    for line in lines {
        let mode = line["mode"].as_str().unwrap();
        assert_eq!(line["status"], 200, "{what} {mode}: {line}");
        assert_eq!(line["error"], Value::Null, "{what} {mode}: {line}");
        let events = line["events"].as_array().unwrap();
        let expected: &[(&str, bool)] = match mode {
            "binary" => &[("-binary", true)],
            "structured" => &[("-structured", false)],
            _ => &[("-batch-0", true), ("-batch-1", false)],
        };
        assert_eq!(events.len(), expected.len(), "{what} {mode}: {line}");
        for (event, (suffix, json_data)) in events.iter().zip(expected) {
            let a = &event["attributes"];
            let ctx = format!("{what} {mode} {suffix}: {event}");
            assert_eq!(
                a["id"].as_str(),
                Some(format!("{}{suffix}", spec["id"].as_str().unwrap()).as_str()),
                "{ctx}"
            );
            assert_eq!(a["type"], "dev.sluice.interop.echoed", "{ctx}");
            assert_eq!(a["source"], spec["source"], "{ctx}");
            assert_eq!(a["specversion"], "1.0", "{ctx}");
            assert!(same_text(&a["subject"], &spec["subject"]), "{ctx}");
            assert_eq!(instant(&a["time"]), instant(&spec["time"]), "{ctx}");
            assert!(same_text(&a["tenant"], &json!("acme corp")), "{ctx}");
            if mode == "binary" {
                // Binary mode has no types: canonical strings (core spec
                // "Type System"). Python's SDK writes its own `True`.
                assert_eq!(a["count"], "42", "{ctx}");
                assert_eq!(
                    a["flag"].as_str().map(str::to_lowercase).as_deref(),
                    Some("true"),
                    "{ctx}"
                );
            } else {
                assert_eq!(a["count"], 42, "{ctx}");
                assert_eq!(a["flag"], true, "{ctx}");
            }
            if *json_data {
                assert_eq!(a["datacontenttype"], "application/json", "{ctx}");
                assert_eq!(event["data"], spec["json_data"], "{ctx}");
            } else {
                assert_eq!(a["datacontenttype"], "application/octet-stream", "{ctx}");
                assert_eq!(
                    event["data"],
                    json!({"base64": spec["binary_data"]}),
                    "{ctx}"
                );
            }
        }
    }
}

#[tokio::test]
async fn python_sdk_v2_round_trips_every_mode() {
    let python = interop_dir().join("venv/bin/python");
    let probe = Command::new(&python)
        .args(["-c", "import cloudevents.core.bindings.http"])
        .output();
    assert!(
        probe.as_ref().is_ok_and(|o| o.status.success()),
        "the Python CloudEvents SDK v2 is not installed at {} ({probe:?}): run `cargo xtask test`, which installs it",
        python.display()
    );
    let host = Host::start().await;
    host.deploy_ok("echo", "echo").await;
    let spec = spec("py-1", "/interop/python", "Euro € 😀 \"quoted\" 100%");
    let mut cmd = Command::new(&python);
    cmd.arg(scripts_dir().join("python_client.py"))
        .arg(host.url("/functions/echo"))
        .arg(spec.to_string());
    let lines = tokio::task::spawn_blocking(move || run_client(cmd, "Python"))
        .await
        .unwrap();
    check(&lines, &spec, "Python");
}

#[tokio::test]
async fn javascript_sdk_round_trips_every_mode() {
    let modules = interop_dir().join("node/node_modules");
    assert!(
        modules.join("cloudevents/package.json").is_file(),
        "the JavaScript CloudEvents SDK is not installed under {}: run `cargo xtask test`, which installs it",
        modules.display()
    );
    let host = Host::start().await;
    host.deploy_ok("echo", "echo").await;
    // The JS SDK neither percent-encodes nor decodes header values, and
    // Node refuses non-ASCII header values, so its subject is ASCII with a
    // space: it arrives raw, Sluice sends it back as `order%2042`, and the
    // check percent-decodes what the SDK reports.
    let spec = spec("js-1", "/interop/js", "order 42");
    let mut cmd = Command::new("node");
    cmd.env("NODE_PATH", &modules)
        .arg(scripts_dir().join("js_client.js"))
        .arg(host.url("/functions/echo"))
        .arg(spec.to_string());
    let lines = tokio::task::spawn_blocking(move || run_client(cmd, "JavaScript"))
        .await
        .unwrap();
    check(&lines, &spec, "JavaScript");
}
