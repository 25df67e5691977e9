//! Finding (or installing) a Rust toolchain that builds `wasm32-wasip1`.
//!
//! Where rustup has the `wasm32-wasip1` target installed, that is used.
//! Otherwise Debian's `rustc-web` toolchain is used, building `std` from
//! source (`rust-web-src`) against Debian's `wasi-libc`; its packages are
//! installed with apt when missing, and every file the recipe executes or
//! links with is checked before the build starts.

use std::path::Path;
use std::process::Command;

use anyhow::{bail, Context, Result};

use crate::apt::Requirement;

const TARGET: &str = "wasm32-wasip1";

/// What the Debian recipe runs or links with, and the package providing
/// each. `rustc-web` only *recommends* `cargo-web` and `rust-web-llvm`, and
/// apt runs without recommends, so every package is named here.
pub const DEBIAN_RECIPE: [Requirement; 6] = [
    Requirement::new("/usr/bin/rustc", "rustc-web"),
    Requirement::new("/usr/bin/cargo", "cargo-web"),
    Requirement::new(
        "/usr/lib/rustlib/src/rust/library/std/Cargo.toml",
        "rust-web-src",
    ),
    // `/usr/bin/rust-lld` is a link to `lld-22`'s binary: both must be there.
    Requirement::new("/usr/bin/rust-lld", "rust-web-llvm"),
    Requirement::new("/usr/bin/lld-22", "lld-22"),
    Requirement::new("/usr/lib/wasm32-wasi/libc.a", "wasi-libc"),
];

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
        crate::apt::provide(
            &DEBIAN_RECIPE,
            &format!(", or `rustup target add {TARGET}`"),
        )?;
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
        let status = cmd
            .status()
            .with_context(|| format!("running {}", crate::describe(&cmd)))?;
        if !status.success() {
            bail!(
                "building the functions failed ({status}); command: {}",
                crate::describe(&cmd)
            );
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
