//! Named routing objects (triggers, sinks, sequences, parallels) created
//! through the admin API or declared in `sluice.toml`, one JSON file each
//! under `<data-dir>/<kind>/<name>.json`; and [`FileOwned`], which of
//! them (and of the functions) the config file declared, in
//! `<data-dir>/file-owned.json`.

use std::collections::{BTreeMap, BTreeSet};
use std::marker::PhantomData;
use std::path::{Path, PathBuf};

use serde::{de::DeserializeOwned, Serialize};

use super::store::{create_dir, io, write_atomic};
use super::{Name, RegistryError};
use crate::config::{ParallelSpec, SequenceSpec, SinkSpec, TriggerSpec};

/// The names the config file declared when the host last started, by
/// kind: those objects are the file's (removed at start once the file no
/// longer declares them), every other stored object is the admin API's.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct FileOwned {
    /// Trigger names.
    #[serde(default)]
    pub triggers: BTreeSet<Name>,
    /// Sink names.
    #[serde(default)]
    pub sinks: BTreeSet<Name>,
    /// Sequence names.
    #[serde(default)]
    pub sequences: BTreeSet<Name>,
    /// Parallel names.
    #[serde(default)]
    pub parallels: BTreeSet<Name>,
    /// Function names.
    #[serde(default)]
    pub functions: BTreeSet<Name>,
}

impl FileOwned {
    /// Every name in `self` or `other`.
    pub fn union(&self, other: &Self) -> Self {
        let u = |a: &BTreeSet<Name>, b: &BTreeSet<Name>| a.union(b).cloned().collect();
        Self {
            triggers: u(&self.triggers, &other.triggers),
            sinks: u(&self.sinks, &other.sinks),
            sequences: u(&self.sequences, &other.sequences),
            parallels: u(&self.parallels, &other.parallels),
            functions: u(&self.functions, &other.functions),
        }
    }
}

/// The durable copies of the routing objects, one directory per kind.
#[derive(Debug)]
pub struct RoutingStores {
    /// `<data-dir>/triggers`.
    pub triggers: ObjectStore<TriggerSpec>,
    /// `<data-dir>/sinks`.
    pub sinks: ObjectStore<SinkSpec>,
    /// `<data-dir>/sequences`.
    pub sequences: ObjectStore<SequenceSpec>,
    /// `<data-dir>/parallels`.
    pub parallels: ObjectStore<ParallelSpec>,
    /// `<data-dir>/file-owned.json`.
    file_owned: PathBuf,
}

impl RoutingStores {
    /// Open (creating if needed) the four directories under `data_dir`.
    ///
    /// # Errors
    /// When a directory cannot be created.
    pub fn open(data_dir: &Path) -> Result<Self, RegistryError> {
        Ok(Self {
            triggers: ObjectStore::open(data_dir, "triggers")?,
            sinks: ObjectStore::open(data_dir, "sinks")?,
            sequences: ObjectStore::open(data_dir, "sequences")?,
            parallels: ObjectStore::open(data_dir, "parallels")?,
            file_owned: data_dir.join("file-owned.json"),
        })
    }

    /// What the config file owned at the last start (nothing before the
    /// first start, or in a data directory older than this record: its
    /// objects then count as the admin API's until the file declares them).
    ///
    /// # Errors
    /// When the record exists but cannot be read or parsed.
    pub fn file_owned(&self) -> Result<FileOwned, RegistryError> {
        let path = &self.file_owned;
        match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| RegistryError::Corrupt {
                path: path.clone(),
                reason: e.to_string(),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(FileOwned::default()),
            Err(e) => Err(io("reading", path)(e)),
        }
    }

    /// Record what the config file owns.
    ///
    /// # Errors
    /// When writing fails; the earlier record then stays.
    pub fn set_file_owned(&self, owned: &FileOwned) -> Result<(), RegistryError> {
        let bytes = serde_json::to_vec_pretty(owned).expect("names serialize");
        write_atomic(&self.file_owned, &bytes)
    }
}

/// A directory of named JSON objects of type `T`.
#[derive(Debug)]
pub struct ObjectStore<T> {
    dir: PathBuf,
    _t: PhantomData<fn() -> T>,
}

impl<T: Serialize + DeserializeOwned> ObjectStore<T> {
    /// Open (creating if needed) `<data_dir>/<kind>`.
    ///
    /// # Errors
    /// When the directory cannot be created.
    pub fn open(data_dir: &Path, kind: &str) -> Result<Self, RegistryError> {
        let dir = data_dir.join(kind);
        create_dir(&dir)?;
        Ok(Self {
            dir,
            _t: PhantomData,
        })
    }

    /// Every stored object, by name.
    ///
    /// # Errors
    /// When a file cannot be read or parsed.
    pub fn load_all(&self) -> Result<BTreeMap<Name, T>, RegistryError> {
        let mut out = BTreeMap::new();
        for entry in std::fs::read_dir(&self.dir).map_err(io("reading", &self.dir))? {
            let path = entry.map_err(io("reading", &self.dir))?.path();
            let Some(stem) = path.file_stem().and_then(|s| s.to_str()) else {
                continue;
            };
            if path.extension().and_then(|e| e.to_str()) != Some("json") {
                continue;
            }
            let corrupt = |reason: String| RegistryError::Corrupt {
                path: path.clone(),
                reason,
            };
            let name: Name = stem
                .parse()
                .map_err(|e: super::InvalidName| corrupt(e.to_string()))?;
            let bytes = std::fs::read(&path).map_err(io("reading", &path))?;
            let value = serde_json::from_slice(&bytes).map_err(|e| corrupt(e.to_string()))?;
            out.insert(name, value);
        }
        Ok(out)
    }

    /// Store `value` under `name`, replacing what was there.
    ///
    /// # Errors
    /// When writing fails.
    pub fn put(&self, name: &Name, value: &T) -> Result<(), RegistryError> {
        let bytes = serde_json::to_vec_pretty(value).expect("objects serialize");
        write_atomic(&self.path(name), &bytes)
    }

    /// Remove `name`. Returns whether it existed.
    ///
    /// # Errors
    /// When the file exists but cannot be removed.
    pub fn remove(&self, name: &Name) -> Result<bool, RegistryError> {
        let path = self.path(name);
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(io("removing", &path)(e)),
        }
    }

    fn path(&self, name: &Name) -> PathBuf {
        self.dir.join(format!("{name}.json"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_ownership_is_recorded() {
        let dir = tempfile::tempdir().unwrap();
        let stores = RoutingStores::open(dir.path()).unwrap();
        assert_eq!(stores.file_owned().unwrap(), FileOwned::default());
        let mut owned = FileOwned::default();
        owned.triggers.insert("t".parse().unwrap());
        owned.functions.insert("f".parse().unwrap());
        stores.set_file_owned(&owned).unwrap();
        let reopened = RoutingStores::open(dir.path()).unwrap();
        assert_eq!(reopened.file_owned().unwrap(), owned);
    }

    #[test]
    fn put_load_remove() {
        let dir = tempfile::tempdir().unwrap();
        let store: ObjectStore<Vec<u32>> = ObjectStore::open(dir.path(), "things").unwrap();
        let a: Name = "a".parse().unwrap();
        store.put(&a, &vec![1, 2]).unwrap();
        assert_eq!(store.load_all().unwrap()[&a], vec![1, 2]);
        assert!(store.remove(&a).unwrap());
        assert!(store.load_all().unwrap().is_empty());
    }
}
