//! The broker's durable mode: the durable log ([`crate::durable`]) plus the
//! tasks that start each entry's deliveries and remove it once they ended.

use std::path::Path;
use std::sync::Mutex;

use tokio_util::task::TaskTracker;

use crate::config::DurabilityConfig;
use crate::delivery::{Dispatcher, Ended};
use crate::durable::{self, Backlog, LogError, LogHandle, Seq, FILE_NAME};
use crate::event::Event;
use crate::metrics::DurableMetrics;

/// The durable ingress: the log plus the tasks that remove entries once
/// their deliveries end.
pub struct DurableIngress {
    log: LogHandle,
    metrics: DurableMetrics,
    /// Entries left by an earlier run, until [`DurableIngress::replay`].
    backlog: Mutex<Option<Backlog>>,
    removals: TaskTracker,
    /// Becomes `true` once [`DurableIngress::replay`] started every delivery.
    replayed: tokio::sync::watch::Sender<bool>,
}

impl DurableIngress {
    /// Open the log in `data_dir`.
    ///
    /// # Errors
    /// When the log file cannot be opened or read.
    pub fn open(
        data_dir: &Path,
        config: &DurabilityConfig,
        metrics: DurableMetrics,
    ) -> Result<Self, LogError> {
        let (log, backlog) = durable::open(&data_dir.join(FILE_NAME), config, metrics.clone())?;
        if !backlog.is_empty() {
            tracing::info!(
                pending = backlog.len(),
                "durable log has undelivered events from an earlier run"
            );
        }
        Ok(Self {
            log,
            metrics,
            backlog: Mutex::new(Some(backlog)),
            removals: TaskTracker::new(),
            replayed: tokio::sync::watch::Sender::new(false),
        })
    }

    /// Store `events` durably, then start delivering them. Returns once
    /// they are stored and their deliveries have started.
    ///
    /// # Errors
    /// When the log is full or cannot write; nothing was stored then.
    pub async fn accept(
        &self,
        dispatcher: &Dispatcher,
        events: Vec<Event>,
    ) -> Result<(), LogError> {
        for (seq, event) in self.log.append(events).await? {
            self.start(dispatcher, seq, event).await;
        }
        Ok(())
    }

    /// Store `event`, a reply routed back to the broker by `scope` (its
    /// sender and hop count, see [`LogHandle::append_scoped`]), durably;
    /// its deliveries start later, from the log, like any entry's. Returns
    /// once it is stored, without waiting for a delivery slot: the sender
    /// holds one, and waiting for a second could deadlock a full
    /// dispatcher.
    ///
    /// # Errors
    /// When the log is full or cannot write; nothing was stored then.
    pub async fn accept_reply(
        &self,
        dispatcher: &Dispatcher,
        event: Event,
        scope: String,
    ) -> Result<(), LogError> {
        for (seq, event) in self.log.append_scoped(vec![event], Some(scope)).await? {
            let dispatcher = dispatcher.clone();
            let log = self.log.clone();
            self.removals.spawn(async move {
                let ended = dispatcher.dispatch_tracked(event).await.await;
                remove_unless_abandoned(&log, seq, ended);
            });
        }
        Ok(())
    }

    /// Deliver the entries left by an earlier run (at most once per run),
    /// read from the log a chunk at a time as their deliveries start.
    pub async fn replay(&self, dispatcher: &Dispatcher) {
        let backlog = self
            .backlog
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(mut backlog) = backlog.filter(|b| !b.is_empty()) {
            self.metrics.redelivered(backlog.len());
            tracing::info!(
                events = backlog.len(),
                "redelivery of pending events started"
            );
            loop {
                match backlog.next_chunk().await {
                    Ok(chunk) if chunk.is_empty() => break,
                    Ok(chunk) => {
                        for (seq, event) in chunk {
                            self.start(dispatcher, seq, event).await;
                        }
                    }
                    Err(e) => {
                        tracing::error!("reading back the durable log stopped: {e}");
                        break;
                    }
                }
            }
        }
        self.replayed.send_replace(true);
    }

    /// Wait until the replay started all its deliveries, so that a drain
    /// that follows covers them (call before `Dispatcher::drain`).
    pub async fn wait_replayed(&self) {
        let mut rx = self.replayed.subscribe();
        let _ = rx.wait_for(|done| *done).await;
    }

    async fn start(&self, dispatcher: &Dispatcher, seq: Seq, event: Event) {
        let done = dispatcher.dispatch_tracked(event).await;
        let log = self.log.clone();
        self.removals.spawn(async move {
            remove_unless_abandoned(&log, seq, done.await);
        });
    }

    /// Wait until every entry whose deliveries ended has been removed (or
    /// kept, when they were abandoned).
    pub async fn wait_removals(&self) {
        self.removals.close();
        self.removals.wait().await;
    }

    /// After the dispatcher drained (or abandoned what was left): record
    /// the last removals durably and stop the log.
    pub async fn close(&self) {
        self.wait_removals().await;
        self.log.close().await;
        tracing::debug!("durable log closed");
    }
}

/// Forget entry `seq` once its deliveries ended; keep it (delivered again
/// at the next start) when the host stopped before they did.
fn remove_unless_abandoned(log: &LogHandle, seq: Seq, ended: Ended) {
    match ended {
        Ended::Completed => log.remove(seq),
        Ended::Abandoned => {
            tracing::info!(seq, "deliveries abandoned at shutdown: the event stays in the durable log for the next start");
        }
    }
}
