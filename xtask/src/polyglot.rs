//! Python and JavaScript functions: the component tools, installed
//! idempotently under `target/polyglot/` with pinned versions
//! (`componentize-py` from PyPI in a venv, `@bytecodealliance/componentize-js`
//! from npm in a local node_modules), and the build of every
//! `functions/<name>-py` (an `app.py`) and `functions/<name>-js` (an
//! `app.js`) into `target/functions/<name>.wasm`, against `wit/` and with
//! the guest kits in `guest-sdk/python` and `guest-sdk/js`.
//!
//! Both tools build offline: componentize-py ships CPython and its runtime
//! in the wheel; componentize-js ships StarlingMonkey in the npm package
//! (its `--aot` option would download weval, so it is never used).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result};

/// The pinned `componentize-py` release (PyPI).
pub const COMPONENTIZE_PY: &str = "0.25.1";
/// The pinned `@bytecodealliance/componentize-js` release (npm).
pub const COMPONENTIZE_JS: &str = "0.23.0";

/// The installed tools.
pub struct Tools {
    /// `target/polyglot/venv/bin/componentize-py`.
    pub componentize_py: PathBuf,
    /// `target/polyglot/node/node_modules/.bin/componentize-js`.
    pub componentize_js: PathBuf,
}

/// Install both tools unless the pinned versions are already there.
pub fn install(root: &Path) -> Result<Tools> {
    let dir = root.join("target").join("polyglot");
    std::fs::create_dir_all(&dir)?;
    Ok(Tools {
        componentize_py: python(&dir).context("installing componentize-py")?,
        componentize_js: javascript(&dir).context("installing componentize-js")?,
    })
}

fn python(dir: &Path) -> Result<PathBuf> {
    super::pip::tool(
        &dir.join("venv"),
        "componentize-py",
        COMPONENTIZE_PY,
        "componentize-py",
    )
}

fn javascript(dir: &Path) -> Result<PathBuf> {
    let node = dir.join("node");
    std::fs::create_dir_all(&node)?;
    let tool = node.join("node_modules/.bin/componentize-js");
    let manifest = node.join("node_modules/@bytecodealliance/componentize-js/package.json");
    let installed = std::fs::read(&manifest)
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .and_then(|v| v["version"].as_str().map(str::to_owned));
    if installed.as_deref() == Some(COMPONENTIZE_JS) && tool.is_file() {
        return Ok(tool);
    }
    if !node.join("package.json").is_file() {
        std::fs::write(
            node.join("package.json"),
            "{\"name\": \"sluice-polyglot\", \"private\": true}\n",
        )?;
    }
    eprintln!(
        "xtask: installing @bytecodealliance/componentize-js@{COMPONENTIZE_JS} (npm) into {}",
        node.display()
    );
    let mut cmd = Command::new("npm");
    cmd.current_dir(&node)
        .args(["install", "--no-audit", "--no-fund", "--silent"])
        .arg(format!(
            "@bytecodealliance/componentize-js@{COMPONENTIZE_JS}"
        ));
    super::run(cmd)
        .context("running npm (install Node.js and npm, e.g. apt-get install nodejs npm)")?;
    Ok(tool)
}

/// A Python or JavaScript function directory under `functions/`.
struct Function {
    name: String,
    dir: PathBuf,
    lang: Lang,
}

#[derive(Clone, Copy)]
enum Lang {
    Python,
    Js,
}

/// The `functions/<name>` directories holding an `app.py` or `app.js`.
fn functions(functions: &Path) -> Result<Vec<Function>> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(functions)? {
        let dir = entry?.path();
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let lang = if dir.join("app.py").is_file() {
            Lang::Python
        } else if dir.join("app.js").is_file() {
            Lang::Js
        } else {
            continue;
        };
        found.push(Function { name, dir, lang });
    }
    found.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(found)
}

/// The WIT world a function targets: `source` for `*-source-py`/`-js`.
fn world(name: &str) -> &'static str {
    if name.contains("-source") {
        "source"
    } else {
        "handler"
    }
}

/// Build every Python and JavaScript function into `out`; returns how many.
pub fn build(root: &Path, out: &Path) -> Result<usize> {
    let list = functions(&root.join("functions"))?;
    if list.is_empty() {
        return Ok(0);
    }
    let tools = install(root)?;
    let wit = root.join("wit");
    for f in &list {
        let target = out.join(format!("{}.wasm", f.name));
        if up_to_date(&target, &[&f.dir, &wit, &kit_dir(root, f.lang)])? {
            continue;
        }
        eprintln!("xtask: componentizing {} ({})", f.name, f.dir.display());
        match f.lang {
            Lang::Python => {
                let mut cmd = Command::new(&tools.componentize_py);
                cmd.arg("-q")
                    .arg("-d")
                    .arg(&wit)
                    .args(["-w", world(&f.name), "componentize", "-p"])
                    .arg(&f.dir)
                    .arg("-p")
                    .arg(root.join("guest-sdk/python"))
                    .arg("app")
                    .arg("-o")
                    .arg(&target);
                super::run(cmd).with_context(|| format!("building {}", f.name))?;
            }
            Lang::Js => {
                // componentize-js resolves relative imports inside the
                // directory it runs in: stage the sources with the kit.
                let stage = root.join("target/polyglot/stage").join(&f.name);
                let _ = std::fs::remove_dir_all(&stage);
                std::fs::create_dir_all(&stage)?;
                copy_js(&f.dir, &stage)?;
                std::fs::copy(
                    root.join("guest-sdk/js/sluice-guest.js"),
                    stage.join("sluice-guest.js"),
                )?;
                let mut cmd = Command::new(&tools.componentize_js);
                cmd.current_dir(&stage)
                    .arg("app.js")
                    .arg("--wit")
                    .arg(&wit)
                    .args(["-n", world(&f.name)])
                    .args(["-d", "http", "-d", "fetch-event"])
                    .arg("-o")
                    .arg(&target);
                super::run(cmd).with_context(|| format!("building {}", f.name))?;
            }
        }
    }
    Ok(list.len())
}

fn kit_dir(root: &Path, lang: Lang) -> PathBuf {
    match lang {
        Lang::Python => root.join("guest-sdk/python"),
        Lang::Js => root.join("guest-sdk/js"),
    }
}

fn copy_js(from: &Path, to: &Path) -> Result<()> {
    for entry in std::fs::read_dir(from)? {
        let path = entry?.path();
        if path
            .extension()
            .is_some_and(|e| e == "js" || e == "mjs" || e == "json")
        {
            let name = path.file_name().context("a file name")?;
            std::fs::copy(&path, to.join(name))?;
        }
    }
    Ok(())
}

/// Whether `target` is newer than every file under `inputs`: these tools
/// take 10–25 s a component, so unchanged functions are not rebuilt.
pub(crate) fn up_to_date(target: &Path, inputs: &[&Path]) -> Result<bool> {
    let Ok(built) = std::fs::metadata(target).and_then(|m| m.modified()) else {
        return Ok(false);
    };
    fn newest(dir: &Path, best: &mut std::time::SystemTime) -> std::io::Result<()> {
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            let meta = entry.metadata()?;
            if meta.is_dir() {
                if entry.file_name() != "__pycache__" {
                    newest(&entry.path(), best)?;
                }
            } else if meta.modified()? > *best {
                *best = meta.modified()?;
            }
        }
        Ok(())
    }
    let mut latest = std::time::SystemTime::UNIX_EPOCH;
    for dir in inputs {
        newest(dir, &mut latest).with_context(|| format!("reading {}", dir.display()))?;
    }
    Ok(built > latest)
}
