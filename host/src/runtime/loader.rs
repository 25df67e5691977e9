//! Compiling uploads into precompiled artifacts, and loading artifacts
//! back, rebuilding them from the original when they are missing, made by
//! another engine configuration, or corrupt.
//!
//! An artifact file is wasmtime's serialized component followed by a
//! 16-byte XXH3-128 checksum of it. The checksum is verified before every
//! load, so a file damaged on disk is rebuilt rather than trusted; Sluice
//! never deserializes bytes it did not produce itself. The checksum trails
//! the component so that wasmtime can map the file itself
//! (`Component::deserialize_file`) instead of copying it into fresh memory:
//! that copy was half of a cold start.

use std::collections::HashSet;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex};

use wasmtime::component::{Component, Linker};
use wasmtime::Engine;
use xxhash_rust::xxh3::{xxh3_128, Xxh3};

use super::bindings::HandlerPre;
use super::host::HostState;
use crate::registry::{Digest, FunctionRecord, FunctionStore, RegistryError};

const CHECKSUM_LEN: usize = 16;

/// The artifact layout, part of every artifact's file name (through
/// `engine::engine_key`), so that a host finds no artifact of an older
/// layout and compiles afresh instead of calling it corrupt.
pub(super) const ARTIFACT_FORMAT: &str = "component + trailing xxh3-128";

/// An upload that passed validation, with its precompiled artifact.
pub struct Compiled {
    /// The artifact file's contents (checksum + serialized component).
    pub artifact: Vec<u8>,
    /// The engine configuration it was compiled for.
    pub engine_key: String,
}

/// Why an upload was refused.
#[derive(Debug, thiserror::Error)]
pub enum CompileError {
    /// The bytes are not a usable handler component; the message says why.
    #[error("{0}")]
    Invalid(String),
    /// The compile task itself failed.
    #[error("internal error while compiling: {0}")]
    Internal(String),
}

/// Validate, type-check and precompile an uploaded component.
pub(super) fn compile(
    engine: &Engine,
    engine_key: &str,
    linker: &Linker<HostState>,
    bytes: &[u8],
) -> Result<Compiled, CompileError> {
    check_preamble(bytes)?;
    let serialized = engine
        .precompile_component(bytes)
        .map_err(|e| CompileError::Invalid(format!("invalid component: {e:#}")))?;
    // SAFETY: `serialized` was produced just above by this engine.
    let component = unsafe { Component::deserialize(engine, &serialized) }
        .map_err(|e| CompileError::Internal(format!("{e:#}")))?;
    linker
        .instantiate_pre(&component)
        .and_then(HandlerPre::new)
        .map_err(|e| {
            CompileError::Invalid(format!(
                "the component does not fit the sluice:handler/handler world: {e:#}"
            ))
        })?;
    Ok(Compiled {
        artifact: frame(&serialized),
        engine_key: engine_key.to_owned(),
    })
}

/// Tell apart "not wasm", "a core module" and "a component" up front, so
/// the error says what to do.
fn check_preamble(bytes: &[u8]) -> Result<(), CompileError> {
    const MAGIC: &[u8; 4] = b"\0asm";
    if bytes.len() < 8 || &bytes[..4] != MAGIC {
        return Err(CompileError::Invalid(
            "not a WebAssembly binary (missing the \\0asm magic number)".into(),
        ));
    }
    if bytes[4..8] == [1, 0, 0, 0] {
        return Err(CompileError::Invalid(
            "this is a core WebAssembly module, not a component: encode it as a component \
             (for example with `wasm-tools component new` and the WASI preview1 adapter, \
             or build it with `cargo xtask functions`)"
                .into(),
        ));
    }
    Ok(())
}

fn frame(serialized: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(serialized.len() + CHECKSUM_LEN);
    out.extend_from_slice(serialized);
    out.extend_from_slice(&xxh3_128(serialized).to_le_bytes());
    out
}

/// Whether `file` ends in the checksum of everything before it. Read in
/// chunks through one small buffer, so checking costs no allocation the
/// size of the artifact. A file shorter than a checksum is not intact.
fn intact(file: std::fs::File) -> std::io::Result<bool> {
    let len = file.metadata()?.len();
    let Some(body_len) = len.checked_sub(CHECKSUM_LEN as u64) else {
        return Ok(false);
    };
    let mut body = file.take(body_len);
    let mut hasher = Xxh3::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match body.read(&mut buf)? {
            0 => break,
            n => hasher.update(&buf[..n]),
        }
    }
    let mut sum = [0u8; CHECKSUM_LEN];
    match body.into_inner().read_exact(&mut sum) {
        Ok(()) => Ok(sum == hasher.digest128().to_le_bytes()),
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Ok(false),
        Err(e) => Err(e),
    }
}

/// Why a stored component could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// Reading or writing a file failed.
    #[error("{action} {}: {source}", path.display())]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// Why it failed.
        source: std::io::Error,
    },
    /// The function store refused.
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// The stored original does not match the recorded digest.
    #[error(
        "the stored component of `{function}` does not match its digest {digest}; redeploy it"
    )]
    DigestMismatch {
        /// The function.
        function: String,
        /// The recorded digest.
        digest: Digest,
    },
    /// The bytes are not a component (or not one this engine compiles).
    #[error("{0}")]
    Invalid(String),
    /// Compiling or deserializing failed.
    #[error("compiling: {0:#}")]
    Compile(wasmtime::Error),
    /// The component does not link against the world it is used as.
    #[error("the component does not fit the sluice:handler/{world} world: {reason:#}")]
    DoesNotFit {
        /// `handler` or `source`.
        world: &'static str,
        /// The linker's reason.
        reason: wasmtime::Error,
    },
    /// The compile task itself failed.
    #[error("internal error while loading: {0}")]
    Internal(String),
}

/// A component read from its artifact, or compiled because the artifact
/// was missing, stale or damaged.
pub(super) struct Artifact {
    /// The component.
    pub component: Component,
    /// The freshly written artifact, when it had to be compiled.
    pub compiled: Option<Vec<u8>>,
}

/// Read the artifact at `path`; `None` (logged) when it is missing, made by
/// another engine configuration, or damaged, so the caller compiles.
fn read_artifact(engine: &Engine, path: &Path) -> Result<Option<Component>, LoadError> {
    let checked = std::fs::File::open(path).and_then(intact);
    match checked {
        // SAFETY: the checksum matches what this host wrote for this
        // engine configuration, so these are bytes it produced itself.
        Ok(true) => match unsafe { Component::deserialize_file(engine, path) } {
            Ok(c) => return Ok(Some(c)),
            Err(e) => {
                tracing::warn!(path = %path.display(), "artifact refused, rebuilding: {e:#}")
            }
        },
        Ok(false) => {
            tracing::warn!(path = %path.display(), "artifact checksum mismatch (corrupt on disk), rebuilding")
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(source) => {
            return Err(LoadError::Io {
                action: "reading",
                path: path.to_owned(),
                source,
            })
        }
    }
    Ok(None)
}

/// Compile `original` into a component and its framed artifact.
fn compile_artifact(engine: &Engine, original: &[u8]) -> Result<Artifact, LoadError> {
    check_preamble(original).map_err(|e| LoadError::Invalid(e.to_string()))?;
    let serialized = engine
        .precompile_component(original)
        .map_err(|e| LoadError::Invalid(format!("invalid component: {e:#}")))?;
    // SAFETY: produced just above by this engine.
    let component =
        unsafe { Component::deserialize(engine, &serialized) }.map_err(LoadError::Compile)?;
    Ok(Artifact {
        component,
        compiled: Some(frame(&serialized)),
    })
}

/// The artifacts being compiled right now, so that a load needing one of
/// them waits for that compile and reads its result instead of compiling
/// the same component a second time.
#[derive(Debug, Default)]
pub(super) struct Compiling {
    paths: Mutex<HashSet<PathBuf>>,
    done: Condvar,
    #[cfg(test)]
    pub(super) hooks: tests::Hooks,
}

/// The one compile of an artifact, until dropped.
struct Claim<'a> {
    compiling: &'a Compiling,
    path: PathBuf,
}

impl Compiling {
    /// Claim the compile of `path`, first waiting for one under way (then
    /// `true`: the artifact may be there now).
    fn claim(&self, path: &Path) -> (Claim<'_>, bool) {
        let mut paths = self.paths.lock().unwrap_or_else(|p| p.into_inner());
        let mut waited = false;
        while paths.contains(path) {
            waited = true;
            #[cfg(test)]
            self.hooks.waiting(1);
            paths = self.done.wait(paths).unwrap_or_else(|p| p.into_inner());
            #[cfg(test)]
            self.hooks.waiting(-1);
        }
        paths.insert(path.to_owned());
        drop(paths);
        #[cfg(test)]
        self.hooks.hold();
        let claim = Claim {
            compiling: self,
            path: path.to_owned(),
        };
        (claim, waited)
    }
}

impl Drop for Claim<'_> {
    fn drop(&mut self) {
        let mut paths = self
            .compiling
            .paths
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        paths.remove(&self.path);
        self.compiling.done.notify_all();
    }
}

/// Load a function's component from its artifact, rebuilding the artifact
/// from the original upload when needed (once: a load that finds it being
/// rebuilt waits for that). Blocking: file reads, and maybe Cranelift.
pub(super) fn load_artifact(
    engine: &Engine,
    engine_key: &str,
    store: &FunctionStore,
    record: &FunctionRecord,
    compiling: &Compiling,
) -> Result<Artifact, LoadError> {
    let path = store.artifact_path(record, engine_key);
    let found = |component| Artifact {
        component,
        compiled: None,
    };
    if let Some(component) = read_artifact(engine, &path)? {
        return Ok(found(component));
    }
    let (_claim, waited) = compiling.claim(&path);
    if waited {
        if let Some(component) = read_artifact(engine, &path)? {
            return Ok(found(component));
        }
    }
    let artifact = compile_stored(engine, store, record)?;
    if let Some(bytes) = &artifact.compiled {
        store.put_artifact(record, engine_key, bytes)?;
    }
    Ok(artifact)
}

/// Compile the artifact of `record` for this engine unless there is one
/// (waiting for a compile of it under way). `true` when it compiled.
/// Blocking: Cranelift.
pub(super) fn ensure_artifact(
    engine: &Engine,
    engine_key: &str,
    store: &FunctionStore,
    record: &FunctionRecord,
    compiling: &Compiling,
) -> Result<bool, LoadError> {
    let path = store.artifact_path(record, engine_key);
    if path.exists() {
        return Ok(false);
    }
    let _claim = compiling.claim(&path);
    if path.exists() {
        return Ok(false);
    }
    let artifact = compile_stored(engine, store, record)?;
    if let Some(bytes) = &artifact.compiled {
        store.put_artifact(record, engine_key, bytes)?;
    }
    Ok(true)
}

/// Compile a stored function from its original upload, checked against
/// its digest.
fn compile_stored(
    engine: &Engine,
    store: &FunctionStore,
    record: &FunctionRecord,
) -> Result<Artifact, LoadError> {
    tracing::info!(function = %record.name, "no usable artifact for this engine, compiling");
    let original = store.original(record)?;
    if Digest::of(&original) != record.digest {
        return Err(LoadError::DigestMismatch {
            function: record.name.to_string(),
            digest: record.digest.clone(),
        });
    }
    compile_artifact(engine, &original)
}

/// Where the artifact of a component with `digest` lives in the
/// content-addressed cache `dir`, for this engine configuration.
pub(super) fn cached_artifact_path(dir: &Path, digest: &Digest, engine_key: &str) -> PathBuf {
    dir.join(format!("{}.{engine_key}.cwasm", digest.as_str()))
}

/// Load the component `original` through the content-addressed artifact
/// cache `dir` (source functions, which are not in the function store):
/// the artifact named by its digest and the engine's key is used when it is
/// there and intact; otherwise `original` is compiled, and the caller
/// writes the artifact with [`store_cached`] once the component links.
pub(super) fn load_cached(
    engine: &Engine,
    path: &Path,
    original: &[u8],
) -> Result<Artifact, LoadError> {
    if let Some(component) = read_artifact(engine, path)? {
        return Ok(Artifact {
            component,
            compiled: None,
        });
    }
    compile_artifact(engine, original)
}

/// Write a freshly compiled artifact into the cache (with
/// [`crate::files::write_atomic`]).
pub(super) fn store_cached(path: &Path, artifact: &[u8]) -> Result<(), LoadError> {
    let io = |action: &'static str| {
        move |source| LoadError::Io {
            action,
            path: path.to_owned(),
            source,
        }
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io("creating the directory of"))?;
    }
    crate::files::write_atomic(path, artifact).map_err(|e| LoadError::Io {
        action: e.action,
        path: e.path,
        source: e.source,
    })
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use std::sync::atomic::{AtomicIsize, Ordering::SeqCst};

    /// What tests do to compiles.
    #[derive(Debug, Default)]
    pub(in crate::runtime) struct Hooks {
        /// Set by a test: the next claim of a compile waits until the
        /// sending side is dropped.
        pub(in crate::runtime) hold: Mutex<Option<std::sync::mpsc::Receiver<()>>>,
        /// Loads waiting for a compile under way.
        waiting: AtomicIsize,
    }

    impl Hooks {
        pub(super) fn waiting(&self, n: isize) {
            self.waiting.fetch_add(n, SeqCst);
        }

        pub(super) fn hold(&self) {
            let hold = self.hold.lock().unwrap_or_else(|p| p.into_inner()).take();
            if let Some(until) = hold {
                let _ = until.recv();
            }
        }

        /// How many loads wait for a compile under way.
        pub(in crate::runtime) fn waiters(&self) -> isize {
            self.waiting.load(SeqCst)
        }
    }

    #[test]
    fn frames_detect_corruption() {
        let dir = tempfile::tempdir().unwrap();
        let check = |bytes: &[u8]| {
            let path = dir.path().join("artifact");
            std::fs::write(&path, bytes).unwrap();
            intact(std::fs::File::open(&path).unwrap()).unwrap()
        };
        let body = vec![7u8; 200_000]; // longer than the read buffer
        let framed = frame(&body);
        assert!(check(&framed));
        for at in [0, 100_000, framed.len() - 1] {
            let mut bad = framed.clone();
            bad[at] ^= 1;
            assert!(!check(&bad), "a flipped byte at {at} goes unnoticed");
        }
        assert!(!check(&framed[..framed.len() - 1]));
        assert!(!check(b"short"));
        assert!(check(&frame(b"")));
    }

    #[test]
    fn preamble_errors_say_what_to_do() {
        let e = check_preamble(b"garbage!").unwrap_err().to_string();
        assert!(e.contains("not a WebAssembly binary"), "{e}");
        let e = check_preamble(b"\0asm\x01\0\0\0").unwrap_err().to_string();
        assert!(e.contains("core WebAssembly module"), "{e}");
        assert!(check_preamble(b"\0asm\x0d\0\x01\0").is_ok());
    }
}
