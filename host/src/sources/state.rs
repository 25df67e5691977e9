//! What a source keeps between runs, one file each under
//! `DATA_DIR/sources/`: a source function's state (`NAME.state`) and, with
//! `catch_up`, the last tick that ran (`NAME.last-tick`).
//!
//! Written with [`crate::files::write_atomic`] (a crash leaves the old file
//! or the new one, never a torn one) and read and written off the async
//! workers.

use std::path::PathBuf;
use std::sync::Arc;

use crate::files::WriteError;

/// One state file of a source.
#[derive(Debug, Clone)]
pub struct StateFile {
    path: Arc<PathBuf>,
}

impl StateFile {
    /// The file at `path` (it need not exist yet).
    pub fn new(path: PathBuf) -> Self {
        Self {
            path: Arc::new(path),
        }
    }

    /// Its contents; `None` when it does not exist.
    ///
    /// # Errors
    /// When it exists but cannot be read.
    pub async fn read(&self) -> std::io::Result<Option<Vec<u8>>> {
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || match std::fs::read(&*path) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        })
        .await
        .map_err(std::io::Error::other)?
    }

    /// Replace its contents with `bytes`, atomically and durably.
    ///
    /// # Errors
    /// When it cannot be written; the old contents then stay.
    pub async fn write(&self, bytes: Vec<u8>) -> Result<(), WriteError> {
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || crate::files::write_atomic(&path, &bytes))
            .await
            .map_err(|e| WriteError {
                action: "writing",
                path: (*self.path).clone(),
                source: std::io::Error::other(e),
            })?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_torn_temporary_file_is_never_read_as_state() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.state");
        let file = StateFile::new(path.clone());
        // A crash while the first state was being written: only a partial
        // temporary file exists.
        let tmp = crate::files::temp_path(&path);
        std::fs::write(&tmp, b"{\"cursor\":").unwrap();
        assert_eq!(file.read().await.unwrap(), None);

        file.write(b"{\"cursor\":1}".to_vec()).await.unwrap();
        assert_eq!(file.read().await.unwrap().unwrap(), b"{\"cursor\":1}");
        // A crash while the next state was being written.
        std::fs::write(&tmp, b"{\"cur").unwrap();
        assert_eq!(file.read().await.unwrap().unwrap(), b"{\"cursor\":1}");
        // The next write replaces the leftover.
        file.write(b"{\"cursor\":2}".to_vec()).await.unwrap();
        assert_eq!(file.read().await.unwrap().unwrap(), b"{\"cursor\":2}");
        assert!(!tmp.exists());
    }
}
