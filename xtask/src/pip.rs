//! Pinned PyPI packages in project-local venvs (the polyglot tools, Go, the
//! interop SDK).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result};

/// Install PyPI's `package==version` into the venv at `venv` (created when
/// missing) unless that version is there already, and return its
/// executable `bin`.
pub fn tool(venv: &Path, package: &str, version: &str, bin: &str) -> Result<PathBuf> {
    let py = venv.join("bin").join("python");
    let tool = venv.join("bin").join(bin);
    if !py.is_file() {
        if let Some(parent) = venv.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let mut cmd = Command::new("python3");
        cmd.args(["-m", "venv"]).arg(venv);
        super::run(cmd).context(
            "creating a venv (install Python 3 with venv support, e.g. apt-get install python3-venv)",
        )?;
    }
    let installed = Command::new(&py)
        .args([
            "-c",
            &format!("import importlib.metadata as m; print(m.version('{package}'))"),
        ])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned());
    if installed.as_deref() == Some(version) && tool.is_file() {
        return Ok(tool);
    }
    eprintln!(
        "xtask: installing {package}=={version} (PyPI) into {}",
        venv.display()
    );
    let mut cmd = Command::new(&py);
    cmd.args([
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
    ])
    .arg(format!("{package}=={version}"));
    super::run(cmd)?;
    Ok(tool)
}
