//! Named routing objects (triggers, sinks, sequences, parallels) created
//! through the admin API or declared in `sluice.toml`, one JSON file each
//! under `<data-dir>/<kind>/<name>.json`.

use std::collections::BTreeMap;
use std::marker::PhantomData;
use std::path::{Path, PathBuf};

use serde::{de::DeserializeOwned, Serialize};

use super::store::{create_dir, io, write_atomic};
use super::{Name, RegistryError};
use crate::config::{ParallelSpec, SequenceSpec, SinkSpec, TriggerSpec};

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
        })
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
