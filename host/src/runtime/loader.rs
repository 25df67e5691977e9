//! Compiling uploads into precompiled artifacts, and loading artifacts
//! back, rebuilding them from the original when they are missing, made by
//! another engine configuration, or corrupt.
//!
//! An artifact file is a 16-byte XXH3-128 checksum of the rest followed by
//! wasmtime's serialized component. The checksum is verified before every
//! deserialization, so a file damaged on disk is rebuilt rather than
//! trusted; Sluice never deserializes bytes it did not produce itself.

use wasmtime::component::{Component, Linker};
use wasmtime::Engine;
use xxhash_rust::xxh3::xxh3_128;

use super::bindings::HandlerPre;
use super::state::HostState;
use crate::registry::{Digest, FunctionRecord, FunctionStore};

const CHECKSUM_LEN: usize = 16;

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
    let mut out = Vec::with_capacity(CHECKSUM_LEN + serialized.len());
    out.extend_from_slice(&xxh3_128(serialized).to_le_bytes());
    out.extend_from_slice(serialized);
    out
}

fn unframe(file: &[u8]) -> Option<&[u8]> {
    if file.len() < CHECKSUM_LEN {
        return None;
    }
    let (sum, body) = file.split_at(CHECKSUM_LEN);
    (sum == xxh3_128(body).to_le_bytes()).then_some(body)
}

/// Load a function's component from its artifact, rebuilding the artifact
/// from the original upload when needed.
pub(super) fn load_artifact(
    engine: &Engine,
    engine_key: &str,
    store: &FunctionStore,
    record: &FunctionRecord,
) -> Result<Component, String> {
    let path = store.artifact_path(record, engine_key);
    match std::fs::read(&path) {
        Ok(file) => match unframe(&file) {
            // SAFETY: the checksum matches what this host wrote for this
            // engine configuration, so these are bytes it produced itself.
            Some(body) => match unsafe { Component::deserialize(engine, body) } {
                Ok(c) => return Ok(c),
                Err(e) => {
                    tracing::warn!(path = %path.display(), "artifact refused, rebuilding: {e:#}")
                }
            },
            None => {
                tracing::warn!(path = %path.display(), "artifact checksum mismatch (corrupt on disk), rebuilding")
            }
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            tracing::info!(function = %record.name, "no artifact for this engine, compiling");
        }
        Err(e) => return Err(format!("reading {}: {e}", path.display())),
    }
    let original = store.original(record).map_err(|e| e.to_string())?;
    if Digest::of(&original) != record.digest {
        return Err(format!(
            "the stored component of `{}` does not match its digest {}; redeploy it",
            record.name, record.digest
        ));
    }
    let serialized = engine
        .precompile_component(&original)
        .map_err(|e| format!("recompiling: {e:#}"))?;
    store
        .put_artifact(record, engine_key, &frame(&serialized))
        .map_err(|e| e.to_string())?;
    // SAFETY: produced just above by this engine.
    unsafe { Component::deserialize(engine, &serialized) }.map_err(|e| format!("{e:#}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_detect_corruption() {
        let framed = frame(b"artifact body");
        assert_eq!(unframe(&framed), Some(&b"artifact body"[..]));
        let mut bad = framed.clone();
        *bad.last_mut().unwrap() ^= 1;
        assert_eq!(unframe(&bad), None);
        assert_eq!(unframe(b"short"), None);
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
