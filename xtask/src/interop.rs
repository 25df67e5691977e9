//! The independent CloudEvents SDKs the interop tests (`tests/all/interop.rs`)
//! drive, installed idempotently under `target/interop/`: the Python SDK v2
//! from PyPI in a venv, and the JavaScript SDK from npm in a local
//! node_modules. Pinned versions, so a run tests what was reviewed.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result};

/// The Python `cloudevents` release (v2 API: `cloudevents.core`).
const PYTHON_SDK: &str = "2.2.0";
/// The JavaScript `cloudevents` release.
const JS_SDK: &str = "10.0.0";

/// Install both SDKs unless the pinned versions are already there.
pub fn install(root: &Path) -> Result<()> {
    let dir = root.join("target").join("interop");
    std::fs::create_dir_all(&dir)?;
    python(&dir).context("installing the Python CloudEvents SDK for the interop tests")?;
    javascript(&dir).context("installing the JavaScript CloudEvents SDK for the interop tests")?;
    Ok(())
}

fn python(dir: &Path) -> Result<()> {
    // The SDK is a library: the venv's own interpreter is the "tool".
    super::pip::tool(&dir.join("venv"), "cloudevents", PYTHON_SDK, "python").map(|_| ())
}

fn javascript(dir: &Path) -> Result<()> {
    let node = dir.join("node");
    std::fs::create_dir_all(&node)?;
    let manifest = node.join("node_modules/cloudevents/package.json");
    let installed = std::fs::read(&manifest)
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .and_then(|v| v["version"].as_str().map(str::to_owned));
    if installed.as_deref() == Some(JS_SDK) {
        return Ok(());
    }
    if !node.join("package.json").is_file() {
        std::fs::write(
            node.join("package.json"),
            "{\"name\": \"sluice-interop\", \"private\": true}\n",
        )?;
    }
    eprintln!(
        "xtask: installing cloudevents@{JS_SDK} (npm) into {}",
        node.display()
    );
    let mut cmd = Command::new("npm");
    cmd.current_dir(&node)
        .args(["install", "--no-audit", "--no-fund", "--silent"])
        .arg(format!("cloudevents@{JS_SDK}"));
    super::run(cmd)
        .context("running npm (install Node.js and npm, e.g. apt-get install nodejs npm)")
}
