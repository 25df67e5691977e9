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

/// Where cargo-deny keeps the advisory database (deny.toml's `db-path`):
/// a clone of the RustSec advisory-db repository in a folder named after
/// its URL, `advisory-db-3157b0e258782691`.
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
    let have_db = std::fs::read_dir(root.join(ADVISORY_DB)).is_ok_and(|entries| {
        entries.flatten().any(|e| {
            e.file_name().to_string_lossy().starts_with("advisory-db-")
                && e.path().join("crates").is_dir()
        })
    });
    if have_db {
        // `--offline`: use the database as it is, never fetch.
        let mut advisories = deny();
        advisories.args(["--offline", "check", "advisories"]);
        super::run(advisories)?;
    } else {
        eprintln!(
            "xtask: cargo deny: advisories NOT checked: the RustSec database is fetched from \
             GitHub, which this machine cannot reach; clone \
             https://github.com/rustsec/advisory-db into \
             {ADVISORY_DB}/advisory-db-3157b0e258782691 (or run `cargo deny check advisories` \
             once where GitHub is reachable) to check them"
        );
    }
    Ok(())
}
