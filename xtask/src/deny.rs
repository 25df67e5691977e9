//! `cargo deny` over the workspace, as part of `cargo xtask test`: licenses,
//! bans (duplicate versions, wildcards) and sources always; advisories only
//! when the RustSec database is already on disk, because fetching it needs
//! GitHub, which this project's machines cannot reach (see deny.toml).
//!
//! cargo-deny is installed into `target/tools` (pinned, `--locked`) the
//! first time, from crates.io.

use std::path::Path;
use std::process::Command;

use anyhow::Result;

/// The cargo-deny release the checks are written for.
const VERSION: &str = "0.20.2";

/// Where an advisory database put there by hand is looked for (a clone of
/// the RustSec advisory-db repository).
pub const ADVISORY_DB: &str = "target/tools/advisory-db";

/// Install cargo-deny when missing, then run the checks.
pub fn check(root: &Path) -> Result<()> {
    let tools = root.join("target/tools");
    let bin = tools.join("bin/cargo-deny");
    let installed = Command::new(&bin)
        .arg("--version")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains(VERSION));
    if !installed {
        let mut install = super::cargo();
        install
            .args(["install", "--locked", "--root"])
            .arg(&tools)
            .args(["cargo-deny", "--version", VERSION]);
        super::run(install)?;
    }
    let deny = || {
        let mut cmd = Command::new(&bin);
        cmd.current_dir(root).args(["deny", "--locked"]);
        cmd
    };
    let mut offline = deny();
    offline.args(["check", "bans", "licenses", "sources"]);
    super::run(offline)?;
    let db = root.join(ADVISORY_DB);
    if db.join(".git").exists() || db.join("crates").is_dir() {
        let mut advisories = deny();
        advisories.args(["check", "--disable-fetch", "advisories"]);
        super::run(advisories)?;
    } else {
        eprintln!(
            "xtask: cargo deny: advisories NOT checked: the RustSec database is fetched from \
             GitHub, which this machine cannot reach; clone \
             https://github.com/rustsec/advisory-db into {ADVISORY_DB} to check them"
        );
    }
    Ok(())
}
