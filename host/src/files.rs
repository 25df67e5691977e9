//! The host's one way to write a file that must survive a crash (stored
//! routing objects, functions and their artifacts, source state): write a
//! temporary file next to it, fsync it, rename it over the old one, and
//! fsync the directory. A reader sees the old file or the new one, never a
//! torn one. (The durable log has its own format and is the one exception.)
//!
//! Blocking: from async code, call it inside `tokio::task::spawn_blocking`.

use std::io::Write as _;
use std::path::{Path, PathBuf};

/// A file that could not be written.
#[derive(Debug, thiserror::Error)]
#[error("{action} {}: {source}", path.display())]
pub struct WriteError {
    /// What was being done, e.g. `syncing`.
    pub action: &'static str,
    /// The file.
    pub path: PathBuf,
    /// Why it failed.
    pub source: std::io::Error,
}

/// Replace the contents of `path` with `bytes` atomically and durably (see
/// the module docs). On failure the old file, if any, is left as it was.
///
/// # Errors
/// The step that failed, with the file it was done on.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), WriteError> {
    write_then(path, bytes, |_| Ok(()))
}

/// The temporary file [`write_atomic`] writes before renaming it to `path`:
/// `path` with `.tmp` appended, so it never has the extension readers of
/// `path` look for. Writers of one path are serialised by their callers.
pub fn temp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".tmp");
    path.with_file_name(name)
}

/// [`write_atomic`], running `before_rename` on the synced temporary file
/// just before it is renamed into place (tests fail it to simulate a crash
/// there).
fn write_then(
    path: &Path,
    bytes: &[u8],
    before_rename: impl FnOnce(&Path) -> std::io::Result<()>,
) -> Result<(), WriteError> {
    let tmp = temp_path(path);
    if let Err(e) = replace(path, &tmp, bytes, before_rename) {
        // Best effort: a leftover temporary file is never read, and the
        // next write of `path` replaces it.
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    if let Some(dir) = path.parent() {
        // Make the rename itself durable.
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
    }
    Ok(())
}

/// Write and sync `tmp`, then rename it to `path`.
fn replace(
    path: &Path,
    tmp: &Path,
    bytes: &[u8],
    before_rename: impl FnOnce(&Path) -> std::io::Result<()>,
) -> Result<(), WriteError> {
    let fail = |action: &'static str, at: &Path| {
        let path = at.to_path_buf();
        move |source| WriteError {
            action,
            path,
            source,
        }
    };
    let mut f = std::fs::File::create(tmp).map_err(fail("creating", tmp))?;
    f.write_all(bytes).map_err(fail("writing", tmp))?;
    f.sync_all().map_err(fail("syncing", tmp))?;
    before_rename(tmp).map_err(fail("writing", tmp))?;
    std::fs::rename(tmp, path).map_err(fail("renaming into place", path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_the_contents_and_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.state");
        write_atomic(&path, b"one").unwrap();
        write_atomic(&path, b"two").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"two");
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["x.state"]);
    }

    #[test]
    fn a_crash_before_the_rename_leaves_the_old_file_intact() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.state");
        write_atomic(&path, b"old state").unwrap();
        let mut seen = None;
        let err = write_then(&path, b"new state, longer than the old", |tmp| {
            // The new bytes are complete and synced in the temporary file,
            // and the real file has not been touched yet.
            seen = Some(std::fs::read(tmp).unwrap());
            assert_eq!(std::fs::read(&path).unwrap(), b"old state");
            Err(std::io::Error::other("simulated crash"))
        })
        .unwrap_err();
        assert_eq!(
            seen.as_deref(),
            Some(&b"new state, longer than the old"[..])
        );
        assert!(err.to_string().contains("simulated crash"), "{err}");
        assert_eq!(std::fs::read(&path).unwrap(), b"old state");
    }

    #[test]
    fn the_temporary_file_never_has_the_real_extension() {
        let p = Path::new("/d/t.json");
        assert_eq!(temp_path(p), Path::new("/d/t.json.tmp"));
        assert_ne!(temp_path(p).extension(), p.extension());
        // Two files of one stem do not share a temporary file.
        assert_ne!(
            temp_path(Path::new("/d/s.state")),
            temp_path(Path::new("/d/s.last-tick"))
        );
    }
}
