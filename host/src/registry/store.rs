//! Small file helpers of the registry: typed I/O errors, and the host's
//! atomic writes ([`crate::files`]) with them.

use std::path::Path;

use super::RegistryError;

pub(super) fn io(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> RegistryError {
    let path = path.to_path_buf();
    move |source| RegistryError::Io { what, path, source }
}

/// [`crate::files::write_atomic`], the host's one way to write a file,
/// with the registry's error.
pub(super) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), RegistryError> {
    crate::files::write_atomic(path, bytes).map_err(|e| RegistryError::Io {
        what: e.action,
        path: e.path,
        source: e.source,
    })
}

pub(super) fn create_dir(path: &Path) -> Result<(), RegistryError> {
    std::fs::create_dir_all(path).map_err(io("creating directory", path))
}
