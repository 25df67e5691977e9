//! Finding (or installing) a Rust toolchain that builds `wasm32-wasip1`.
//!
//! Where rustup has the `wasm32-wasip1` target installed, that is used.
//! Otherwise Debian's `rustc-web` toolchain is used, building `std` from
//! source (`rust-web-src`) against Debian's `wasi-libc`; its packages are
//! installed with apt when missing.

use std::path::Path;
use std::process::Command;

use anyhow::{bail, Context, Result};

const TARGET: &str = "wasm32-wasip1";

/// Debian packages the fallback recipe needs.
const DEBIAN_PACKAGES: [&str; 4] = ["rustc-web", "rust-web-src", "lld-22", "wasi-libc"];

/// A way to build wasm32-wasip1 crates.
pub enum WasmToolchain {
    /// rustup's toolchain with the target installed.
    Rustup,
    /// Debian's rustc-web, building std from source.
    Debian,
}

impl WasmToolchain {
    /// Prefer rustup's target; otherwise make sure Debian's packages are
    /// installed and use them.
    pub fn detect_or_install() -> Result<Self> {
        if rustup_has_target() {
            return Ok(Self::Rustup);
        }
        let missing: Vec<&str> = DEBIAN_PACKAGES
            .into_iter()
            .filter(|p| !debian_package_installed(p))
            .collect();
        if !missing.is_empty() {
            install_debian_packages(&missing)?;
        }
        Ok(Self::Debian)
    }

    /// Build the workspace at `dir` in release mode into `target_dir`.
    pub fn build(&self, dir: &Path, target_dir: &Path, packages: &[String]) -> Result<()> {
        let mut cmd = match self {
            Self::Rustup => {
                let mut cmd = Command::new("cargo");
                clean_env(&mut cmd);
                cmd.args(["build", "--release", "--target", TARGET]);
                cmd
            }
            Self::Debian => {
                let mut cmd = Command::new("/usr/bin/cargo");
                clean_env(&mut cmd);
                cmd.env_remove("RUSTUP_TOOLCHAIN")
                    .env("RUSTC", "/usr/bin/rustc")
                    .env("RUSTC_BOOTSTRAP", "1")
                    .args(["build", "--release", "--target", TARGET])
                    .args(["-Zbuild-std=std,panic_abort"])
                    .args([
                        "--config",
                        r#"target.wasm32-wasip1.rustflags=["-L","/usr/lib/wasm32-wasi","-Clink-self-contained=no"]"#,
                    ]);
                cmd
            }
        };
        cmd.args(packages)
            .current_dir(dir)
            .env("CARGO_TARGET_DIR", target_dir);
        let status = cmd.status().with_context(|| format!("running {cmd:?}"))?;
        if !status.success() {
            bail!("building the functions failed ({status}); command: {cmd:?}");
        }
        Ok(())
    }
}

/// Remove what the outer `cargo run` set, so the nested build is not
/// steered by the host build's compiler, flags or target directory.
fn clean_env(cmd: &mut Command) {
    for (key, _) in std::env::vars_os() {
        let Some(key) = key.to_str() else { continue };
        let keep = key == "CARGO_HOME"
            || key.starts_with("CARGO_REGISTRIES_")
            || key.starts_with("CARGO_NET_")
            || key.starts_with("CARGO_HTTP_");
        let drop = (key.starts_with("CARGO") && !keep)
            || matches!(
                key,
                "RUSTC" | "RUSTDOC" | "RUSTC_WRAPPER" | "RUSTC_WORKSPACE_WRAPPER" | "RUSTFLAGS"
            );
        if drop {
            cmd.env_remove(key);
        }
    }
}

fn rustup_has_target() -> bool {
    Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .map(|o| {
            o.status.success()
                && String::from_utf8_lossy(&o.stdout)
                    .lines()
                    .any(|l| l.trim() == TARGET)
        })
        .unwrap_or(false)
}

fn debian_package_installed(name: &str) -> bool {
    Command::new("dpkg-query")
        .args(["-W", "-f=${Status}", name])
        .output()
        .map(|o| {
            o.status.success()
                && String::from_utf8_lossy(&o.stdout).contains("install ok installed")
        })
        .unwrap_or(false)
}

fn install_debian_packages(packages: &[&str]) -> Result<()> {
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
                "{cmd:?} failed ({status}); install {} by hand, or `rustup target add {TARGET}`",
                packages.join(" ")
            );
        }
        Ok(())
    };
    apt(&["update", "-qq"])?;
    let mut args = vec!["install", "-y", "-qq"];
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
