//! Installing the Debian packages a task needs, and only those missing:
//! `apt-get` as root, through `sudo` otherwise.

use std::process::Command;

use anyhow::{bail, Context, Result};

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

/// Install whichever of `packages` are missing; nothing happens when all are
/// there. `hint` is added to the error when apt-get fails (what else the
/// user could do).
pub fn ensure(packages: &[&str], hint: &str) -> Result<()> {
    let missing: Vec<&str> = packages.iter().copied().filter(|p| !installed(p)).collect();
    if missing.is_empty() {
        return Ok(());
    }
    install(&missing, hint)
}

/// `apt-get update` and `apt-get install` `packages`.
pub fn install(packages: &[&str], hint: &str) -> Result<()> {
    eprintln!("xtask: installing {} with apt-get", packages.join(" "));
    let sudo = !is_root();
    let apt = |args: &[&str]| -> Result<()> {
        let mut cmd = if sudo {
            let mut c = Command::new("sudo");
            c.arg("apt-get");
            c
        } else {
            Command::new("apt-get")
        };
        cmd.args(args).env("DEBIAN_FRONTEND", "noninteractive");
        let status = cmd.status().with_context(|| format!("running {cmd:?}"))?;
        if !status.success() {
            bail!(
                "{cmd:?} failed ({status}); install {} by hand{hint}",
                packages.join(" ")
            );
        }
        Ok(())
    };
    apt(&["update", "-qq"])?;
    let mut args = vec!["install", "-y", "-qq", "--no-install-recommends"];
    args.extend_from_slice(packages);
    apt(&args)
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}
