//! Keeping the demo and the test suite on one build of the host.
//!
//! `cargo run -p sluice` resolves features from the host's normal
//! dependencies; `cargo test -p sluice` adds its dev-dependencies, and Cargo
//! unifies features across both. A dev-dependency that turns on one more
//! feature of a shared crate (tokio's `process`, say) gives that crate, and
//! everything above it up to wasmtime and the host, a second build. The
//! host's `Cargo.toml` enables those features itself; this check fails the
//! test command as soon as a change makes the two resolutions differ again.

use anyhow::{bail, Context, Result};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Fail, naming the crates, if `cargo run -p sluice` and `cargo test -p
/// sluice` would build any shared crate with different features.
pub fn check(root: &Path) -> Result<()> {
    let run = resolve(root, &["--edges", "normal,build"])?;
    let test = resolve(root, &[])?;
    let mut differ = Vec::new();
    for (package, features) in &run {
        if let Some(test_features) = test.get(package) {
            if test_features != features {
                let extra: Vec<&String> = test_features.difference(features).collect();
                differ.push(format!("{package} (tests add {extra:?})"));
            }
        }
    }
    if !differ.is_empty() {
        bail!(
            "the host's dev-dependencies change the features of {}; enable the same \
             features in host/Cargo.toml's [dependencies] so `cargo xtask demo` and \
             `cargo xtask test` share one build",
            differ.join(", ")
        );
    }
    Ok(())
}

/// Each package of the host's dependency tree with the set of feature sets
/// it is built with (a crate can be built twice, as a normal and as a build
/// dependency).
fn resolve(root: &Path, edges: &[&str]) -> Result<BTreeMap<String, BTreeSet<String>>> {
    let out = crate::cargo()
        .current_dir(root)
        .args(["tree", "--quiet", "--package", "sluice", "--prefix", "none"])
        .args(["--format", "{p}|{f}"])
        .args(edges)
        .output()
        .context("running cargo tree")?;
    if !out.status.success() {
        bail!(
            "cargo tree failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let mut packages: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let line = line.trim_end_matches(" (*)");
        let Some((package, features)) = line.split_once('|') else {
            continue;
        };
        packages
            .entry(package.trim().to_owned())
            .or_default()
            .insert(features.trim().to_owned());
    }
    Ok(packages)
}
