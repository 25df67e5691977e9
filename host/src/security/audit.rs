//! The audit log: one JSON line per admin change in
//! `<data-dir>/audit.log` (who, what, when), written and fsync'd before
//! the change is answered, and readable at `GET /admin/v1/audit`.

use std::collections::VecDeque;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Most entries kept in memory for `GET /admin/v1/audit` (the file keeps
/// every one).
pub const KEPT: usize = 10_000;

/// One admin change.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AuditEntry {
    /// When the change was made (RFC 3339, UTC).
    pub time: String,
    /// The name of the token that made it (`anonymous` when the admin
    /// listener has no tokens).
    pub token: String,
    /// `put` or `delete`.
    pub action: String,
    /// The object's kind: `function`, `trigger`, `sink`, `sequence`, `parallel`.
    pub kind: String,
    /// The object's name.
    pub name: String,
    /// For a function upload, the component's digest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
}

/// The audit log of one host.
#[derive(Debug)]
pub struct AuditLog {
    path: PathBuf,
    inner: Mutex<Inner>,
}

#[derive(Debug)]
struct Inner {
    file: std::fs::File,
    recent: VecDeque<AuditEntry>,
}

impl AuditLog {
    /// Open (or create) the log under `data_dir`, loading its newest entries.
    ///
    /// # Errors
    /// When the file cannot be opened.
    pub fn open(data_dir: &Path) -> std::io::Result<Self> {
        let path = data_dir.join("audit.log");
        let mut recent = VecDeque::new();
        if let Ok(f) = std::fs::File::open(&path) {
            for line in std::io::BufReader::new(f).lines() {
                let Ok(line) = line else { break };
                // A torn last line (a crash mid-write) is skipped.
                if let Ok(e) = serde_json::from_str::<AuditEntry>(&line) {
                    if recent.len() == KEPT {
                        recent.pop_front();
                    }
                    recent.push_back(e);
                }
            }
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)?;
        Ok(Self {
            path,
            inner: Mutex::new(Inner { file, recent }),
        })
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Append one entry, stamped now, and fsync it.
    ///
    /// # Errors
    /// When it cannot be written; the caller refuses the change then.
    pub fn record(
        &self,
        token: &str,
        action: &str,
        kind: &str,
        name: &str,
        digest: Option<String>,
    ) -> std::io::Result<()> {
        let entry = AuditEntry {
            time: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            token: token.to_owned(),
            action: action.to_owned(),
            kind: kind.to_owned(),
            name: name.to_owned(),
            digest,
        };
        let mut line = serde_json::to_vec(&entry).map_err(std::io::Error::other)?;
        line.push(b'\n');
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        inner.file.write_all(&line)?;
        inner.file.sync_data()?;
        if inner.recent.len() == KEPT {
            inner.recent.pop_front();
        }
        inner.recent.push_back(entry);
        Ok(())
    }

    /// The newest `limit` entries, oldest first.
    pub fn recent(&self, limit: usize) -> Vec<AuditEntry> {
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let skip = inner.recent.len().saturating_sub(limit);
        inner.recent.iter().skip(skip).cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let log = AuditLog::open(dir.path()).unwrap();
        log.record("ci", "put", "function", "echo", Some("sha256:ab".into()))
            .unwrap();
        log.record("ci", "delete", "trigger", "t", None).unwrap();
        drop(log);
        let log = AuditLog::open(dir.path()).unwrap();
        let all = log.recent(10);
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].digest.as_deref(), Some("sha256:ab"));
        assert_eq!(log.recent(1)[0].action, "delete");
    }
}
