//! Source functions as a source sees them: the runtime's
//! [`SourceFunction`] (loaded from its cached artifact, run with the same
//! admission, deadline, memory cap and metrics as handlers) plus the state
//! kept between runs in `DATA_DIR/sources/NAME.state`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::spec::FunctionSourceSpec;
use super::PrepareError;
use crate::event::Event;
use crate::metrics::SourceMetrics;
use crate::registry::Name;
use crate::runtime::host::outbound_http::{AllowList, OutboundPolicy};
use crate::runtime::{InvokeError, Runtime, SourceFunction, SourceSettings};

/// A loaded source function and the state its last run returned.
pub struct StatefulFunction {
    name: Name,
    function: SourceFunction,
    state: Option<Vec<u8>>,
    state_file: PathBuf,
}

impl StatefulFunction {
    /// Read the component of `spec` and load it through the runtime, with
    /// its artifact cached in `artifacts`; read the state an earlier run
    /// left in `dir`.
    ///
    /// # Errors
    /// When the file cannot be read or the component cannot be used.
    pub async fn load(
        runtime: &Arc<Runtime>,
        name: &Name,
        spec: &FunctionSourceSpec,
        metrics: &SourceMetrics,
        dir: &Path,
        artifacts: &Path,
    ) -> Result<Self, PrepareError> {
        let bytes = std::fs::read(&spec.path).map_err(|source| PrepareError::Io {
            action: "reading",
            path: spec.path.clone(),
            source,
        })?;
        let allowed = AllowList::new(&spec.allowed_outbound_hosts)
            .map_err(|e| PrepareError::Spec(super::SpecError::Outbound(e)))?;
        let settings = SourceSettings {
            timeout: spec.timeout,
            memory_mib: spec.memory_mib,
            config: spec
                .config
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            outbound: OutboundPolicy {
                source: Arc::from(name.as_str()),
                allowed: Arc::new(allowed),
                metrics: Some(metrics.clone()),
            },
        };
        let function = runtime
            .load_source(name.as_str(), bytes, settings, artifacts)
            .await?;
        let state_file = dir.join(format!("{name}.state"));
        Ok(Self {
            name: name.clone(),
            function,
            state: std::fs::read(&state_file).ok(),
            state_file,
        })
    }

    /// Where its artifact is cached.
    pub fn artifact(&self) -> &Path {
        self.function.artifact()
    }

    /// Run once at the tick `time`; keep the state it returns (in memory
    /// and on disk) and hand back its events.
    ///
    /// # Errors
    /// Why the run produced nothing; the state stays as it was.
    pub async fn run(&mut self, time: &str) -> Result<Vec<Event>, InvokeError> {
        let out = self.function.run(time, self.state.clone()).await?;
        if let Some(new_state) = out.state {
            if let Err(e) = std::fs::write(&self.state_file, &new_state) {
                tracing::warn!(source = %self.name, "saving source state failed (kept in memory): {e}");
            }
            self.state = Some(new_state);
        }
        Ok(out.events)
    }
}

/// Remove the artifacts in `dir` that no source uses (left by components
/// that changed or sources that are gone). Failures are only logged.
pub fn prune_artifacts(dir: &Path, used: &[&Path]) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if !used.contains(&path.as_path()) {
            match std::fs::remove_file(&path) {
                Ok(()) => tracing::debug!(path = %path.display(), "unused source artifact removed"),
                Err(e) => {
                    tracing::warn!(path = %path.display(), "removing an unused source artifact failed: {e}")
                }
            }
        }
    }
}
