//! Small file helpers: atomic writes and typed I/O errors.

use std::path::{Path, PathBuf};

use super::RegistryError;

pub(super) fn io(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> RegistryError {
    let path = path.to_path_buf();
    move |source| RegistryError::Io { what, path, source }
}

/// Write `bytes` to `path` so that readers see the old or the new file,
/// never a torn one: write a temporary file, fsync it, rename it over.
pub(super) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), RegistryError> {
    use std::io::Write;
    let tmp: PathBuf = path.with_extension("tmp");
    let mut f = std::fs::File::create(&tmp).map_err(io("creating", &tmp))?;
    f.write_all(bytes).map_err(io("writing", &tmp))?;
    f.sync_all().map_err(io("syncing", &tmp))?;
    std::fs::rename(&tmp, path).map_err(io("renaming into place", path))?;
    if let Some(dir) = path.parent() {
        // Make the rename itself durable.
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
    }
    Ok(())
}

pub(super) fn create_dir(path: &Path) -> Result<(), RegistryError> {
    std::fs::create_dir_all(path).map_err(io("creating directory", path))
}
