//! Applying `sluice.toml` to the data directory at start-up, in two steps:
//! [`Plan::new`] compiles the file's functions and checks everything (the
//! file's routing objects over the stored ones, the sources' destinations,
//! the functions the file dropped) without writing anything; only then
//! [`Plan::write`] stores the result. A start refused for any reason
//! leaves the store as it was. Who owns what is in `docs/configuration.md`
//! ("The config file and the admin API").

use std::sync::Arc;

use anyhow::{Context, Result};

use crate::config::{
    Config, Destination, FunctionSettings, ParallelSpec, SequenceSpec, SinkSpec, TriggerSpec,
};
use crate::name::Name;
use crate::registry::{Digest, FileOwned, FunctionStore, RoutingStores};
use crate::routing::{Kind, Table};
use crate::runtime::{Compiled, Runtime};

/// What applying the config file will write, all of it checked.
pub struct Plan {
    /// The routing table the host starts with.
    table: Table,
    /// What the file owned at the last start.
    owned: FileOwned,
    /// What it declares now (and owns once written).
    declared: FileOwned,
    /// The file's functions whose bytes or settings changed, compiled.
    deploys: Vec<Deploy>,
    /// Functions the file declared and no longer does (none in use).
    dropped: Vec<Name>,
}

/// A function of the file to store.
struct Deploy {
    name: Name,
    bytes: Vec<u8>,
    compiled: Compiled,
    settings: FunctionSettings,
}

impl Plan {
    /// Compile the file's changed functions, overlay its routing objects on
    /// the stored ones (less those it owned and no longer declares), and
    /// check the result, the sources' destinations, and that no function
    /// the file dropped is still in use. Writes nothing.
    ///
    /// # Errors
    /// The first thing that cannot be used, with the reason.
    pub async fn new(
        c: &Config,
        stores: &RoutingStores,
        functions: &FunctionStore,
        runtime: &Arc<Runtime>,
    ) -> Result<Self> {
        let deploys = compile(c, functions, runtime).await?;
        let owned = stores.file_owned()?;
        let declared = declared(c);
        let mut table = Table::default();
        overlay::<TriggerSpec>(&mut table, stores, c, &owned)?;
        overlay::<SinkSpec>(&mut table, stores, c, &owned)?;
        overlay::<SequenceSpec>(&mut table, stores, c, &owned)?;
        overlay::<ParallelSpec>(&mut table, stores, c, &owned)?;
        let has_kafka_sink = |n: &Name| c.kafka.sinks.contains_key(n);
        // A stored object naming a function that is not deployed only
        // warns (see `App::build`): the function may be uploaded later.
        table
            .check(|_| true, has_kafka_sink)
            .map_err(|e| anyhow::anyhow!("routing: {e}"))?;
        let dropped: Vec<Name> = owned
            .functions
            .difference(&declared.functions)
            .filter(|f| functions.contains(f))
            .cloned()
            .collect();
        let has_function = |f: &Name| {
            declared.functions.contains(f) || (functions.contains(f) && !dropped.contains(f))
        };
        table
            .check_sources(&c.sources, has_function, has_kafka_sink)
            .map_err(|e| anyhow::anyhow!("sources: {e}"))?;
        for f in &dropped {
            let mut users = table.users_of_function(f);
            users.extend(
                c.sources
                    .iter()
                    .filter(|(_, s)| {
                        s.destinations()
                            .any(|d| matches!(d, Destination::Function(n) if n == f))
                    })
                    .map(|(n, _)| format!("source `{n}`")),
            );
            if !users.is_empty() {
                anyhow::bail!(
                    "function `{f}` is no longer declared in the config file, but {} still uses it",
                    users.join(", ")
                );
            }
        }
        Ok(Self {
            table,
            owned,
            declared,
            deploys,
            dropped,
        })
    }

    /// The routing table the host starts with.
    pub fn table(&self) -> &Table {
        &self.table
    }

    /// Store the plan: the file's changed functions, its routing objects,
    /// the removal of what it dropped, and the record of what it owns.
    ///
    /// # Errors
    /// When writing fails.
    pub fn write(
        self,
        c: &Config,
        stores: &RoutingStores,
        functions: &FunctionStore,
    ) -> Result<()> {
        for d in self.deploys {
            functions.put(
                &d.name,
                &d.bytes,
                Some((&d.compiled.engine_key, &d.compiled.artifact)),
                d.settings,
            )?;
            tracing::info!(function = %d.name, "deployed from config");
        }
        // What is about to be written counts as the file's first, so that a
        // crash halfway leaves nothing the file wrote looking like the
        // admin API's.
        stores.set_file_owned(&self.owned.union(&self.declared))?;
        save::<TriggerSpec>(stores, c, &self.owned)?;
        save::<SinkSpec>(stores, c, &self.owned)?;
        save::<SequenceSpec>(stores, c, &self.owned)?;
        save::<ParallelSpec>(stores, c, &self.owned)?;
        for f in &self.dropped {
            functions.remove(f)?;
            tracing::info!(function = %f, "removed: no longer declared in the config file");
        }
        stores.set_file_owned(&self.declared)?;
        Ok(())
    }
}

/// Read and compile the file's functions whose bytes or settings differ
/// from the stored ones.
async fn compile(
    c: &Config,
    functions: &FunctionStore,
    runtime: &Arc<Runtime>,
) -> Result<Vec<Deploy>> {
    let mut deploys = Vec::new();
    for (name, f) in &c.functions {
        let bytes = std::fs::read(&f.path)
            .with_context(|| format!("reading function `{name}` from {}", f.path.display()))?;
        let unchanged = functions
            .get(name)
            .is_some_and(|r| r.digest == Digest::of(&bytes) && r.settings == f.settings);
        if unchanged {
            continue;
        }
        let compiled = runtime
            .compile(bytes.clone().into())
            .await
            .with_context(|| format!("function `{name}` ({})", f.path.display()))?;
        deploys.push(Deploy {
            name: name.clone(),
            bytes,
            compiled,
            settings: f.settings.clone(),
        });
    }
    Ok(deploys)
}

/// The names the config file declares.
fn declared(c: &Config) -> FileOwned {
    FileOwned {
        triggers: c.triggers.keys().cloned().collect(),
        sinks: c.sinks.keys().cloned().collect(),
        sequences: c.sequences.keys().cloned().collect(),
        parallels: c.parallels.keys().cloned().collect(),
        functions: c.functions.keys().cloned().collect(),
    }
}

/// The stored objects of kind `K`, less those the file owned (`owned`) and
/// no longer declares, with the file's over them.
fn overlay<K: Kind>(
    table: &mut Table,
    stores: &RoutingStores,
    c: &Config,
    owned: &FileOwned,
) -> Result<()> {
    let map = K::map_mut(table);
    *map = K::store(stores).load_all()?;
    let (file, ours) = (K::in_config(c), K::file_owned(owned));
    map.retain(|name, _| !ours.contains(name) || file.contains_key(name));
    for name in file.keys() {
        if map.contains_key(name) && !ours.contains(name) {
            tracing::warn!(kind = K::KIND, name = %name, "created through the admin API, now declared in the config file: the file's definition replaces it, and the file owns it from now on");
        }
    }
    map.extend(file.clone());
    Ok(())
}

/// Write the file's objects of kind `K`, and remove those it owned
/// (`owned`) and no longer declares.
fn save<K: Kind>(stores: &RoutingStores, c: &Config, owned: &FileOwned) -> Result<()> {
    let file = K::in_config(c);
    for (name, spec) in file {
        K::store(stores).put(name, spec)?;
    }
    for name in K::file_owned(owned) {
        if !file.contains_key(name) && K::store(stores).remove(name)? {
            tracing::info!(kind = K::KIND, name = %name, "removed: no longer declared in the config file");
        }
    }
    Ok(())
}
