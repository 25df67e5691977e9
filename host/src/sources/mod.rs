//! Event sources: producers that emit events into routing, a function or a
//! sink, without knowing where that is (Knative's SinkBinding idea). See
//! `docs/sources.md`.
//!
//! Every kind of source implements [`Source`] and runs as one task tracked
//! by [`Sources`], with a [`SourceContext`] (the way into routing, the
//! delivery engine, the shutdown signal, the metrics) instead of a
//! reference to the host:
//!
//! - [`scheduled`]: ping sources and source functions, on a cron schedule;
//! - [`kafka`]: Kafka sources and the Kafka broker's consumer.
//!
//! The modules of the scheduled kinds:
//!
//! Their schema (`[sources.NAME]`, [`crate::config::SourceSpec`]) and cron
//! schedules ([`crate::config::Schedule`]) are parsed with the config.
//!
//! - [`ping`]: the fixed event of a ping source.
//! - [`function`]: source functions (`sluice:handler/source` components),
//!   which the runtime runs like handlers.
//! - [`state`]: what they keep between runs, in files written atomically.
//!
//! # Stopping
//! [`Sources::stop`] fires the shutdown signal: each source stops waiting
//! for new work (its next tick, the next Kafka record) and finishes what it
//! started, for at most [`STOP_GRACE`]; a source still busy then is
//! dropped. The host drains deliveries only after that.

pub mod context;
pub mod function;
pub mod kafka;
pub mod ping;
pub mod scheduled;
pub mod state;

use std::collections::BTreeMap;
use std::future::Future;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use self::context::{EmitError, SourceContext};

use self::scheduled::ScheduledSource;
use crate::config::{SourceSpec, SpecError};
use crate::name::Name;
use crate::runtime::Runtime;

/// The `source` attribute of events from the source `name`.
pub fn source_uri(name: &str) -> String {
    format!("/sluice/sources/{name}")
}

/// Something that produces events: a ping schedule, a source function, a
/// Kafka consumer (Spin's `Trigger`, Vector's `SourceConfig::build`).
pub trait Source: Send + 'static {
    /// The source's name, for logs.
    fn name(&self) -> &Name;

    /// Run until `cx.shutdown()` fires (or the source has nothing more to
    /// do), handing every event on through `cx`. After the signal a source
    /// finishes the work it started and returns.
    fn run(self, cx: SourceContext) -> impl Future<Output = ()> + Send;
}

/// How long [`Sources::stop`] lets sources finish what they started.
pub const STOP_GRACE: Duration = Duration::from_secs(3);

/// The running sources. Dropping it signals them to stop.
pub struct Sources {
    cx: SourceContext,
    tasks: TaskTracker,
    /// Fired after [`STOP_GRACE`]: drops the sources still running.
    abandon: CancellationToken,
    count: AtomicUsize,
}

/// Every scheduled source, checked and loaded but not started yet.
pub struct PreparedSources {
    sources: Vec<ScheduledSource>,
}

/// A source that cannot be started.
#[derive(Debug, thiserror::Error)]
#[error("source `{name}`: {reason}")]
pub struct SourceError {
    name: Name,
    reason: PrepareError,
}

/// Why a source cannot be started.
#[derive(Debug, thiserror::Error)]
pub enum PrepareError {
    /// Its spec is invalid.
    #[error(transparent)]
    Spec(#[from] SpecError),
    /// Its data directory cannot be used.
    #[error("{action} {}: {source}", path.display())]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file or directory.
        path: std::path::PathBuf,
        /// Why it failed.
        source: std::io::Error,
    },
    /// Its component cannot be loaded.
    #[error(transparent)]
    Load(#[from] crate::runtime::LoadError),
}

impl PreparedSources {
    /// Check every spec and load every source function (through the
    /// runtime, from its cached artifact when there is one). State left by
    /// earlier runs is read from `DATA_DIR/sources/NAME.state`; artifacts
    /// live in `DATA_DIR/sources/artifacts/`, and those no source uses any
    /// more are removed.
    ///
    /// # Errors
    /// The first source that cannot be used.
    pub async fn prepare(
        specs: &BTreeMap<Name, SourceSpec>,
        runtime: &Arc<Runtime>,
        metrics: &crate::metrics::SourceMetrics,
        data_dir: &Path,
    ) -> Result<Self, SourceError> {
        let dir = data_dir.join("sources");
        let artifacts = dir.join("artifacts");
        let mut sources = Vec::new();
        for (name, spec) in specs {
            let source = ScheduledSource::prepare(name, spec, runtime, metrics, &dir, &artifacts)
                .await
                .map_err(|reason| SourceError {
                    name: name.clone(),
                    reason,
                })?;
            sources.push(source);
        }
        let used: Vec<&Path> = sources
            .iter()
            .filter_map(ScheduledSource::artifact)
            .collect();
        function::prune_artifacts(&artifacts, &used);
        Ok(Self { sources })
    }
}

impl Sources {
    /// No sources running yet; those started later run with `cx`.
    pub fn new(cx: SourceContext) -> Self {
        Self {
            cx,
            tasks: TaskTracker::new(),
            abandon: CancellationToken::new(),
            count: AtomicUsize::new(0),
        }
    }

    /// Start `source` in a task of its own.
    pub fn spawn<S: Source>(&self, source: S) {
        let cx = self.cx.clone();
        let abandon = self.abandon.clone();
        let name = source.name().clone();
        self.count.fetch_add(1, Ordering::Relaxed);
        self.tasks.spawn(async move {
            tokio::select! {
                () = source.run(cx) => {}
                () = abandon.cancelled() => {
                    tracing::warn!(source = %name, "source still busy after {STOP_GRACE:?}; dropped");
                }
            }
        });
    }

    /// Start every prepared source.
    pub fn start(&self, prepared: PreparedSources) {
        for source in prepared.sources {
            self.spawn(source);
        }
    }

    /// Stop every source: signal them, give them [`STOP_GRACE`] to finish
    /// what they started, then drop those still running. Returns once every
    /// source task has ended.
    pub async fn stop(&self) {
        self.cx.shutdown().cancel();
        self.tasks.close();
        if tokio::time::timeout(STOP_GRACE, self.tasks.wait())
            .await
            .is_err()
        {
            self.abandon.cancel();
            self.tasks.wait().await;
        }
        tracing::debug!("sources stopped");
    }

    /// How many sources were started.
    pub fn len(&self) -> usize {
        self.count.load(Ordering::Relaxed)
    }

    /// Whether no source was started.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Drop for Sources {
    fn drop(&mut self) {
        self.cx.shutdown().cancel();
        self.abandon.cancel();
    }
}
