//! Installing the Debian packages a task needs, and only those missing:
//! `apt-get` as root, through `sudo` otherwise. After installing, each file
//! a task is about to run or link with is checked, so a missing one is named
//! with its package instead of surfacing later as an `os error 2`.

use std::path::Path;
use std::process::Command;

use anyhow::{bail, Result};

/// A file a task runs or links with, and the Debian package that ships it.
#[derive(Debug, Clone, Copy)]
pub struct Requirement {
    /// Absolute path of the file.
    pub path: &'static str,
    /// The package providing it.
    pub package: &'static str,
}

impl Requirement {
    /// `path`, shipped by `package`.
    pub const fn new(path: &'static str, package: &'static str) -> Self {
        Self { path, package }
    }

    fn present(&self) -> bool {
        // `exists` follows links, so a dangling one counts as missing.
        Path::new(self.path).exists()
    }
}

/// Make every file in `requirements` present: install the packages of the
/// missing ones (and any not installed), then check each file again.
/// `hint` is added to the error (what else the user could do).
pub fn provide(requirements: &[Requirement], hint: &str) -> Result<()> {
    let mut missing: Vec<&str> = requirements
        .iter()
        .filter(|r| !r.present() || !installed(r.package))
        .map(|r| r.package)
        .collect();
    missing.dedup();
    if !missing.is_empty() {
        install(&missing, hint)?;
    }
    let absent: Vec<String> = requirements
        .iter()
        .filter(|r| !r.present())
        .map(|r| format!("{} (from package `{}`)", r.path, r.package))
        .collect();
    if !absent.is_empty() {
        bail!(
            "still missing after apt-get install: {}; install the package by hand{hint}",
            absent.join(", ")
        );
    }
    Ok(())
}

/// Whether dpkg has `name` installed.
pub fn installed(name: &str) -> bool {
    Command::new("dpkg-query")
        .args(["-W", "-f=${Status}", name])
        .output()
        .map(|o| {
            o.status.success()
                && String::from_utf8_lossy(&o.stdout).contains("install ok installed")
        })
        .unwrap_or(false)
}

/// `apt-get purge` `packages`.
pub fn purge(packages: &[&str]) -> Result<()> {
    eprintln!("xtask: purging {} with apt-get", packages.join(" "));
    let mut args = vec!["purge", "-y", "-qq"];
    args.extend_from_slice(packages);
    apt_get(&args, packages, "")
}

/// `apt-get update` and `apt-get install` `packages`.
pub fn install(packages: &[&str], hint: &str) -> Result<()> {
    eprintln!("xtask: installing {} with apt-get", packages.join(" "));
    apt_get(&["update", "-qq"], packages, hint)?;
    let mut args = vec!["install", "-y", "-qq", "--no-install-recommends"];
    args.extend_from_slice(packages);
    apt_get(&args, packages, hint)
}

/// Run `apt-get args` (through sudo when not root); on failure, say to
/// install (or remove) `packages` by hand.
fn apt_get(args: &[&str], packages: &[&str], hint: &str) -> Result<()> {
    let mut cmd = if is_root() {
        Command::new("apt-get")
    } else {
        let mut c = Command::new("sudo");
        c.arg("apt-get");
        c
    };
    // Wait for a dpkg lock held by another apt (on a fresh machine,
    // often unattended-upgrades) instead of failing at once.
    cmd.args(["-o", "DPkg::Lock::Timeout=600"])
        .args(args)
        .env("DEBIAN_FRONTEND", "noninteractive");
    let status = match cmd.status() {
        Ok(status) => status,
        Err(e) => bail!(
            "could not run {} ({e}); handle {} by hand{hint}",
            crate::describe(&cmd),
            packages.join(" ")
        ),
    };
    if !status.success() {
        bail!(
            "{} failed ({status}); handle {} by hand{hint}",
            crate::describe(&cmd),
            packages.join(" ")
        );
    }
    Ok(())
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}
