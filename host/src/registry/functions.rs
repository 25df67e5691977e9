//! Stored function components.
//!
//! Layout under `<data-dir>/functions/<name>/`:
//! - `meta.json`: the [`FunctionRecord`], replaced atomically on deploy;
//! - `<digest>.wasm`: the component as uploaded;
//! - `<digest>.<engine>.cwasm`: its precompiled artifact for one engine
//!   configuration (see [`crate::runtime::EngineKey`]), rebuilt from the
//!   original when missing, stale or corrupt.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, RwLock};

use sha2::{Digest as _, Sha256};

use super::store::{create_dir, io, write_atomic};
use super::{Name, RegistryError};
use crate::config::FunctionSettings;

/// The SHA-256 of a component's bytes, as lower-case hex.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct Digest(String);

impl Digest {
    /// The digest of `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        Self(hex::encode(Sha256::digest(bytes)))
    }

    /// The hex string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", self.0)
    }
}

/// What the registry knows about one deployed function.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FunctionRecord {
    /// The function's name.
    pub name: Name,
    /// Digest of the uploaded component.
    pub digest: Digest,
    /// Size of the uploaded component in bytes.
    pub size: u64,
    /// When it was deployed (RFC 3339).
    pub deployed_at: String,
    /// Limits and environment.
    #[serde(default)]
    pub settings: FunctionSettings,
}

/// Which deploy of a function a record is: new with every [`FunctionStore::put`]
/// (of the same bytes too, whose settings may differ) and unique in this
/// process, so what was loaded from one deploy is never taken for another.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Version(u64);

/// A record in the index, with its version.
#[derive(Debug)]
struct Deployed {
    record: FunctionRecord,
    version: Version,
}

/// The function store.
#[derive(Debug)]
pub struct FunctionStore {
    root: PathBuf,
    index: RwLock<BTreeMap<Name, Deployed>>,
    /// The next [`Version`].
    versions: AtomicU64,
    /// Serialises writers so two deploys of one name cannot interleave.
    write: Mutex<()>,
}

const META: &str = "meta.json";

impl FunctionStore {
    /// Open (creating if needed) the store under `data_dir/functions`.
    ///
    /// # Errors
    /// When the directory cannot be read or a record is corrupt.
    pub fn open(data_dir: &Path) -> Result<Self, RegistryError> {
        let root = data_dir.join("functions");
        create_dir(&root)?;
        let mut index = BTreeMap::new();
        for entry in std::fs::read_dir(&root).map_err(io("reading", &root))? {
            let entry = entry.map_err(io("reading", &root))?;
            let meta = entry.path().join(META);
            if !meta.is_file() {
                continue;
            }
            let bytes = std::fs::read(&meta).map_err(io("reading", &meta))?;
            let record: FunctionRecord =
                serde_json::from_slice(&bytes).map_err(|e| RegistryError::Corrupt {
                    path: meta.clone(),
                    reason: e.to_string(),
                })?;
            let version = Version(index.len() as u64);
            index.insert(record.name.clone(), Deployed { record, version });
        }
        Ok(Self {
            root,
            versions: AtomicU64::new(index.len() as u64),
            index: RwLock::new(index),
            write: Mutex::new(()),
        })
    }

    /// Store a component (already validated and precompiled by the runtime)
    /// under `name`, replacing any earlier version.
    ///
    /// # Errors
    /// When writing fails; the earlier version then stays in place.
    pub fn put(
        &self,
        name: &Name,
        component: &[u8],
        artifact: Option<(&str, &[u8])>,
        settings: FunctionSettings,
    ) -> Result<FunctionRecord, RegistryError> {
        let _guard = self.write.lock().unwrap_or_else(|p| p.into_inner());
        let dir = self.root.join(name.as_str());
        create_dir(&dir)?;
        let digest = Digest::of(component);
        let record = FunctionRecord {
            name: name.clone(),
            digest: digest.clone(),
            size: component.len() as u64,
            deployed_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            settings,
        };
        write_atomic(&dir.join(format!("{}.wasm", digest.as_str())), component)?;
        if let Some((engine, bytes)) = artifact {
            write_atomic(&self.artifact_path(&record, engine), bytes)?;
        }
        let meta = serde_json::to_vec_pretty(&record).expect("records serialize");
        write_atomic(&dir.join(META), &meta)?;
        let version = Version(self.versions.fetch_add(1, Ordering::Relaxed));
        self.index
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(
                name.clone(),
                Deployed {
                    record: record.clone(),
                    version,
                },
            );
        // Files of earlier versions are garbage now.
        remove_other_versions(&dir, digest.as_str());
        Ok(record)
    }

    /// One function's record.
    pub fn get(&self, name: &Name) -> Option<FunctionRecord> {
        self.index
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(name)
            .map(|d| d.record.clone())
    }

    /// One function's record with its version, read together.
    pub fn current(&self, name: &Name) -> Option<(Version, FunctionRecord)> {
        self.index
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(name)
            .map(|d| (d.version, d.record.clone()))
    }

    /// The version of `name` deployed now (no copy of its record).
    pub fn version(&self, name: &Name) -> Option<Version> {
        self.index
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(name)
            .map(|d| d.version)
    }

    /// Whether `name` is deployed (no copy of its record).
    pub fn contains(&self, name: &Name) -> bool {
        self.index
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .contains_key(name)
    }

    /// Every function's record, by name.
    pub fn list(&self) -> Vec<FunctionRecord> {
        self.index
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .map(|d| d.record.clone())
            .collect()
    }

    /// Remove a function and its files. Returns whether it existed.
    ///
    /// # Errors
    /// When its files cannot be removed.
    pub fn remove(&self, name: &Name) -> Result<bool, RegistryError> {
        let _guard = self.write.lock().unwrap_or_else(|p| p.into_inner());
        let existed = self
            .index
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(name)
            .is_some();
        if existed {
            let dir = self.root.join(name.as_str());
            std::fs::remove_dir_all(&dir).map_err(io("removing", &dir))?;
        }
        Ok(existed)
    }

    /// The uploaded component's bytes.
    ///
    /// # Errors
    /// When the file cannot be read.
    pub fn original(&self, record: &FunctionRecord) -> Result<Vec<u8>, RegistryError> {
        let path = self
            .root
            .join(record.name.as_str())
            .join(format!("{}.wasm", record.digest.as_str()));
        std::fs::read(&path).map_err(io("reading", &path))
    }

    /// Where the precompiled artifact for `engine` lives (it may not exist).
    pub fn artifact_path(&self, record: &FunctionRecord, engine: &str) -> PathBuf {
        self.root
            .join(record.name.as_str())
            .join(format!("{}.{engine}.cwasm", record.digest.as_str()))
    }

    /// Store a precompiled artifact for `engine`.
    ///
    /// # Errors
    /// When writing fails.
    pub fn put_artifact(
        &self,
        record: &FunctionRecord,
        engine: &str,
        bytes: &[u8],
    ) -> Result<PathBuf, RegistryError> {
        let path = self.artifact_path(record, engine);
        write_atomic(&path, bytes)?;
        Ok(path)
    }
}

/// Remove every file in `dir` that belongs to another digest than `keep`
/// (best effort: a leftover file wastes space but breaks nothing).
fn remove_other_versions(dir: &Path, keep: &str) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name != META && !name.starts_with(keep) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn put_get_reopen_remove() {
        let dir = tempfile::tempdir().unwrap();
        let store = FunctionStore::open(dir.path()).unwrap();
        let name: Name = "echo".parse().unwrap();
        let v1 = store
            .put(
                &name,
                b"one",
                Some(("e1", b"art")),
                FunctionSettings::default(),
            )
            .unwrap();
        assert_eq!(v1.size, 3);
        assert_eq!(
            std::fs::read(store.artifact_path(&v1, "e1")).unwrap(),
            b"art"
        );
        let v2 = store
            .put(&name, b"two", None, FunctionSettings::default())
            .unwrap();
        assert!(
            !store.artifact_path(&v1, "e1").exists(),
            "old version removed"
        );
        let reopened = FunctionStore::open(dir.path()).unwrap();
        assert_eq!(reopened.get(&name), Some(v2.clone()));
        assert_eq!(reopened.original(&v2).unwrap(), b"two");
        assert!(reopened.remove(&name).unwrap());
        assert!(!reopened.remove(&name).unwrap());
        assert!(FunctionStore::open(dir.path()).unwrap().list().is_empty());
    }
}
