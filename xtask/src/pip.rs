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

/// The copy of the requirements file kept in a [`pinned`] venv once
/// installed from it: a venv without it (made before the pins, or by hand)
/// or with other pins is installed again.
const INSTALLED_FROM: &str = "sluice-requirements.txt";

/// The venv at `venv` with exactly the hash-pinned wheels of
/// `requirements` (a path under `root`), made from scratch unless it was
/// installed from that same file and `probe` (Python code) runs in it; its
/// python.
pub fn pinned(root: &Path, venv: &Path, requirements: &str, probe: &str) -> Result<PathBuf> {
    let python = venv.join("bin/python");
    let file = root.join(requirements);
    let wanted =
        std::fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?;
    let installed_from = venv.join(INSTALLED_FROM);
    let ready = std::fs::read_to_string(&installed_from).is_ok_and(|r| r == wanted)
        && Command::new(&python)
            .args(["-c", probe])
            .status()
            .is_ok_and(|s| s.success());
    if ready {
        return Ok(python);
    }
    // From scratch: pip would take an installed version as it is, without
    // checking it against the hashes.
    if venv.exists() {
        std::fs::remove_dir_all(venv).with_context(|| format!("removing {}", venv.display()))?;
    }
    let mut mk = Command::new("python3");
    mk.args(["-m", "venv"]).arg(venv);
    super::run(mk)?;
    eprintln!("xtask: installing {requirements} into {}", venv.display());
    let mut pip = Command::new(&python);
    pip.args([
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "--require-hashes",
        "--only-binary=:all:",
        "-r",
    ])
    .arg(&file);
    super::run(pip)?;
    std::fs::write(&installed_from, &wanted)
        .with_context(|| format!("writing {}", installed_from.display()))?;
    Ok(python)
}
