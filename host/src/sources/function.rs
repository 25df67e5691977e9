//! Source functions as a source sees them: the runtime's
//! [`SourceFunction`] (loaded from its cached artifact, run with the same
//! admission, deadline, memory cap and metrics as handlers) plus the state
//! kept between runs in `DATA_DIR/sources/NAME.state` (a [`StateFile`]).

use std::path::Path;
use std::sync::Arc;

use super::state::StateFile;
use super::PrepareError;
use crate::config::{AllowList, FunctionSourceSpec, SpecError};
use crate::event::Event;
use crate::metrics::SourceMetrics;
use crate::name::Name;
use crate::runtime::host::outbound_http::OutboundPolicy;
use crate::runtime::{InvokeError, Runtime, SourceFunction, SourceSettings};

/// What one run of a source function returned.
pub struct Run {
    /// Its events, in order.
    pub events: Vec<Event>,
    /// The state for the next run (`None`: keep the current one).
    pub state: Option<Vec<u8>>,
}

/// A loaded source function and the state its last run returned.
pub struct StatefulFunction {
    name: Name,
    function: SourceFunction,
    state: Option<Vec<u8>>,
    state_file: StateFile,
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
            .map_err(|e| PrepareError::Spec(SpecError::Outbound(e)))?;
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
        let state_file = StateFile::new(dir.join(format!("{name}.state")));
        let state = state_file.read().await.unwrap_or_else(|e| {
            tracing::warn!(source = %name, "reading the source's state failed (starting without): {e}");
            None
        });
        Ok(Self {
            name: name.clone(),
            function,
            state,
            state_file,
        })
    }

    /// Where its artifact is cached.
    pub fn artifact(&self) -> &Path {
        self.function.artifact()
    }

    /// Run once at the tick `time` with the last committed state; hand
    /// back its events and the state it returned, which the caller
    /// [`commit`](Self::commit)s once every event was taken. Until then
    /// the next run starts from the old state again (at least once: an
    /// event that was refused is produced again).
    ///
    /// # Errors
    /// Why the run produced nothing; the state stays as it was.
    pub async fn run(&mut self, time: &str) -> Result<Run, InvokeError> {
        let out = self.function.run(time, self.state.clone()).await?;
        Ok(Run {
            events: out.events,
            state: out.state,
        })
    }

    /// Keep `state` (in memory and on disk) for the next run.
    pub async fn commit(&mut self, state: Vec<u8>) {
        if let Err(e) = self.state_file.write(state.clone()).await {
            tracing::warn!(source = %self.name, "saving source state failed (kept in memory): {e}");
        }
        self.state = Some(state);
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
