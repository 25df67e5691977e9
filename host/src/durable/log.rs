//! The log itself: a redb database under the data directory, written by one
//! thread that groups concurrent appends into one transaction (one fsync).

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use redb::{Database, Durability, ReadableDatabase, ReadableTable, TableDefinition};
use std::sync::mpsc;

use tokio::sync::{oneshot, OwnedSemaphorePermit, Semaphore};

use super::record;
use crate::config::DurabilityConfig;
use crate::event::Event;
use crate::metrics::DurableMetrics;

/// Pending events by sequence number.
const ENTRIES: TableDefinition<u64, &[u8]> = TableDefinition::new("entries");
/// `source` NUL `id` of recently accepted events, with when (ms since epoch).
const SEEN: TableDefinition<&str, u64> = TableDefinition::new("seen");

/// A log entry's position; increasing in acceptance order.
pub type Seq = u64;

/// How often expired dedup keys are purged.
const PURGE_EVERY: Duration = Duration::from_secs(10);
/// Longest a removal may stay in a non-durable commit.
const SYNC_REMOVALS_EVERY: Duration = Duration::from_secs(1);
/// How soon removals kept from a failed transaction are tried again when
/// nothing else comes.
const RETRY_REMOVALS_AFTER: Duration = Duration::from_secs(1);
/// Most appends waiting in the log thread's queue; more wait for a place,
/// so a slow disk slows the senders down instead of growing the queue.
/// Removals never wait for a place: there is at most one per pending entry
/// (which `max_entries` bounds), and a delivery that ended must never wait
/// behind the appends that wait for the room its removal frees.
const MAX_QUEUED_APPENDS: usize = 256;
/// Most entries one chunk of the backlog holds.
const BACKLOG_CHUNK_ENTRIES: usize = 256;
/// Most stored bytes one chunk of the backlog holds (at least one entry).
const BACKLOG_CHUNK_BYTES: u64 = 4 << 20;

/// Why the log did not take events.
#[derive(Debug, Clone, thiserror::Error)]
pub enum LogError {
    /// Accepting would exceed `max_entries` or `max_bytes`.
    #[error("the durable log is full ({entries} events, {bytes} bytes pending): retry later")]
    Full {
        /// Events pending.
        entries: u64,
        /// Bytes pending.
        bytes: u64,
    },
    /// The storage failed (disk full, I/O error).
    #[error("the durable log cannot write: {0}")]
    Storage(String),
    /// The log was closed (the host is stopping).
    #[error("the host is shutting down")]
    Closed,
}

impl From<redb::Error> for LogError {
    fn from(e: redb::Error) -> Self {
        Self::Storage(e.to_string())
    }
}

/// What the log thread is asked to do.
enum Command {
    /// An append, with its place in the queue.
    Append(Vec<Event>, Option<String>, Reply, OwnedSemaphorePermit),
    Remove(Seq),
    /// The next chunk of the backlog: entries from the first `Seq` on and
    /// before the second.
    ReadBacklog(Seq, Seq, BacklogReply),
    Close(oneshot::Sender<()>),
}

/// The answer to a backlog read: the entries, and the last one looked at
/// (`None` when there were none left).
type BacklogChunk = (Vec<(Seq, Event)>, Option<Seq>);
/// Where the writer sends a [`BacklogChunk`].
type BacklogReply = oneshot::Sender<Result<BacklogChunk, LogError>>;

/// One append waiting for the writer: its events, dedup scope and answer.
type Append = (Vec<Event>, Option<String>, Reply);

/// The answer to an append: the stored events with their sequence numbers.
type Reply = oneshot::Sender<Result<Vec<(Seq, Event)>, LogError>>;

/// Per append in a transaction: each event's sequence number (`None` for a
/// duplicate), or why the append was refused.
type Answer = Result<Vec<Option<Seq>>, LogError>;

/// A handle to the log thread; cheap to clone.
#[derive(Clone)]
pub struct LogHandle {
    tx: mpsc::Sender<Command>,
    /// Places in the queue of appends ([`MAX_QUEUED_APPENDS`]).
    places: Arc<Semaphore>,
    #[cfg(test)]
    hooks: Arc<tests::Hooks>,
}

impl LogHandle {
    /// Write `events` durably (fsync'd) as one unit: all or none. Returns
    /// the stored events with their sequence numbers, in order; duplicates
    /// within the dedup window are left out (not stored again).
    ///
    /// # Errors
    /// [`LogError`] when nothing was stored.
    pub async fn append(&self, events: Vec<Event>) -> Result<Vec<(Seq, Event)>, LogError> {
        self.append_scoped(events, None).await
    }

    /// [`LogHandle::append`] with the dedup key widened by `scope`: a reply
    /// routed back to the broker often keeps its parent's `source` and `id`
    /// (an echo), so its key also names its sender and hop count. A parent
    /// redelivered after a crash then produces a duplicate reply, which the
    /// window catches, while the parent itself is never mistaken for one.
    ///
    /// # Errors
    /// [`LogError`] when nothing was stored.
    pub async fn append_scoped(
        &self,
        events: Vec<Event>,
        scope: Option<String>,
    ) -> Result<Vec<(Seq, Event)>, LogError> {
        let place = self
            .places
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| LogError::Closed)?;
        let (tx, rx) = oneshot::channel();
        #[cfg(test)]
        self.hooks.queued(1);
        self.tx
            .send(Command::Append(events, scope, tx, place))
            .map_err(|_| LogError::Closed)?;
        rx.await.map_err(|_| LogError::Closed)?
    }

    /// Forget entry `seq` (all its deliveries ended). Written lazily: a
    /// crash before the next durable commit redelivers it.
    pub fn remove(&self, seq: Seq) {
        let _ = self.tx.send(Command::Remove(seq));
    }

    /// Make pending removals durable and stop the log thread.
    pub async fn close(&self) {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Command::Close(tx)).is_ok() {
            let _ = rx.await;
        }
    }
}

/// The entries an earlier run left in the log, read back in chunks of at
/// most [`BACKLOG_CHUNK_ENTRIES`] entries or [`BACKLOG_CHUNK_BYTES`] bytes,
/// so a long backlog is never in memory at once.
pub struct Backlog {
    log: LogHandle,
    /// Entries pending when the log was opened.
    len: u64,
    /// Where the next chunk starts.
    from: Seq,
    /// The first sequence number of this run: what follows is not backlog.
    end: Seq,
}

impl Backlog {
    /// How many entries were pending when the log was opened.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether nothing was pending when the log was opened.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The next chunk, oldest first; empty once everything was read.
    /// Entries removed meanwhile are not in it; one that cannot be decoded
    /// (which would be a bug) is logged and removed.
    ///
    /// # Errors
    /// When the log cannot be read or is closed.
    pub async fn next_chunk(&mut self) -> Result<Vec<(Seq, Event)>, LogError> {
        while self.from < self.end {
            let (tx, rx) = oneshot::channel();
            self.log
                .tx
                .send(Command::ReadBacklog(self.from, self.end, tx))
                .map_err(|_| LogError::Closed)?;
            let (chunk, last) = rx.await.map_err(|_| LogError::Closed)??;
            self.from = last.map_or(self.end, |seq| seq + 1);
            if !chunk.is_empty() {
                return Ok(chunk);
            }
        }
        Ok(Vec::new())
    }
}

/// Open (or create) the log at `path`; returns the handle and the entries
/// still pending from an earlier run, to read in chunks.
///
/// # Errors
/// When the file cannot be opened or read.
pub fn open(
    path: &Path,
    config: &DurabilityConfig,
    metrics: DurableMetrics,
) -> Result<(LogHandle, Backlog), LogError> {
    let db = Database::create(path).map_err(redb::Error::from)?;
    let mut bytes = 0u64;
    let mut next = 0u64;
    let mut sizes = std::collections::HashMap::new();
    {
        let w = db.begin_write().map_err(redb::Error::from)?;
        w.open_table(ENTRIES).map_err(redb::Error::from)?;
        w.open_table(SEEN).map_err(redb::Error::from)?;
        w.commit().map_err(redb::Error::from)?;
        // Sizes only: the entries themselves are read when replayed.
        let r = db.begin_read().map_err(redb::Error::from)?;
        let t = r.open_table(ENTRIES).map_err(redb::Error::from)?;
        for item in t.iter().map_err(redb::Error::from)? {
            let (k, v) = item.map_err(redb::Error::from)?;
            let (seq, len) = (k.value(), v.value().len() as u64);
            next = seq + 1;
            bytes += len;
            sizes.insert(seq, len);
        }
    }
    let entries = sizes.len() as u64;
    metrics.pending(entries, bytes);
    let (tx, rx) = mpsc::channel();
    #[cfg(test)]
    let hooks = Arc::new(tests::Hooks::default());
    let writer = Writer {
        db,
        metrics,
        config: config.clone(),
        next,
        entries,
        bytes,
        sizes,
        last_purge: Instant::now(),
        last_sync: Instant::now(),
        unsynced_removals: false,
        removals: Vec::new(),
        retry_at: Instant::now(),
        #[cfg(test)]
        hooks: hooks.clone(),
    };
    std::thread::Builder::new()
        .name("sluice-log".into())
        .spawn(move || writer.run(rx))
        .map_err(|e| LogError::Storage(e.to_string()))?;
    let log = LogHandle {
        tx,
        places: Arc::new(Semaphore::new(MAX_QUEUED_APPENDS)),
        #[cfg(test)]
        hooks,
    };
    let backlog = Backlog {
        log: log.clone(),
        len: entries,
        from: 0,
        end: next,
    };
    Ok((log, backlog))
}

/// The state of the log thread.
struct Writer {
    db: Database,
    metrics: DurableMetrics,
    config: DurabilityConfig,
    next: Seq,
    entries: u64,
    bytes: u64,
    /// Stored size of each pending entry, to keep `bytes` without reading.
    sizes: std::collections::HashMap<Seq, u64>,
    last_purge: Instant,
    last_sync: Instant,
    unsynced_removals: bool,
    /// Removals not committed yet: those queued since the last transaction,
    /// and those a failed transaction kept (they are what frees room, on a
    /// full disk most of all).
    removals: Vec<Seq>,
    /// When removals a failed transaction kept are tried again.
    retry_at: Instant,
    #[cfg(test)]
    hooks: Arc<tests::Hooks>,
}

impl Writer {
    fn run(mut self, rx: mpsc::Receiver<Command>) {
        loop {
            // Wait for work; while removals are kept or not yet durable,
            // wake up to write them after a while even if nothing else comes.
            let first = match self.due() {
                Some(due) => match rx.recv_timeout(due.saturating_duration_since(Instant::now())) {
                    Ok(c) => Some(c),
                    Err(mpsc::RecvTimeoutError::Timeout) => {
                        self.write(Vec::new());
                        self.sync();
                        continue;
                    }
                    Err(mpsc::RecvTimeoutError::Disconnected) => None,
                },
                None => rx.recv().ok(),
            };
            let Some(first) = first else {
                self.write(Vec::new());
                self.sync();
                return;
            };
            #[cfg(test)]
            self.hooks.stall();
            let mut appends: Vec<Append> = Vec::new();
            let mut reads = Vec::new();
            let mut close = None;
            let mut n_events = 0;
            let mut next = Some(first);
            while let Some(cmd) = next.take() {
                match cmd {
                    Command::Append(events, scope, reply, _place) => {
                        #[cfg(test)]
                        self.hooks.queued(-1);
                        n_events += events.len();
                        appends.push((events, scope, reply));
                    }
                    Command::Remove(seq) => self.removals.push(seq),
                    Command::ReadBacklog(after, end, reply) => reads.push((after, end, reply)),
                    Command::Close(reply) => close = Some(reply),
                }
                if n_events < self.config.max_batch && close.is_none() {
                    next = rx.try_recv().ok();
                }
            }
            self.write(appends);
            for (after, end, reply) in reads {
                let _ = reply.send(self.read_backlog(after, end));
            }
            if let Some(reply) = close {
                self.sync();
                drop(self); // release the file lock before answering
                let _ = reply.send(());
                return;
            }
        }
    }

    /// When the thread must wake up without a command: to retry kept
    /// removals, or to make committed ones durable.
    fn due(&self) -> Option<Instant> {
        if !self.removals.is_empty() {
            Some(self.retry_at)
        } else if self.unsynced_removals {
            Some(self.last_sync + SYNC_REMOVALS_EVERY)
        } else {
            None
        }
    }

    /// One transaction: the removals, then each append as a unit. When it
    /// fails, the appends are refused and the removals kept for the next.
    fn write(&mut self, appends: Vec<Append>) {
        if appends.is_empty() && self.removals.is_empty() {
            return;
        }
        let removals = std::mem::take(&mut self.removals);
        let durable = !appends.is_empty();
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let started = Instant::now();
        let result = self.transact(&appends, &removals, durable, now_ms);
        self.metrics.pending(self.entries, self.bytes);
        match result {
            Ok(answers) => {
                if durable {
                    let (mut stored, mut duplicates) = (0, 0);
                    for (answer, (events, _, _)) in answers.iter().zip(&appends) {
                        match answer {
                            Ok(seqs) => {
                                let n = seqs.iter().flatten().count() as u64;
                                stored += n;
                                duplicates += seqs.len() as u64 - n;
                            }
                            Err(_) => self.metrics.refused(events.len() as u64, true),
                        }
                    }
                    self.metrics
                        .committed(stored, duplicates, started.elapsed());
                }
                for ((events, _, reply), answer) in appends.into_iter().zip(answers) {
                    let stored = answer.map(|seqs| {
                        seqs.into_iter()
                            .zip(events)
                            .filter_map(|(seq, e)| seq.map(|s| (s, e)))
                            .collect()
                    });
                    let _ = reply.send(stored);
                }
            }
            Err(e) => {
                tracing::error!(
                    kept_removals = removals.len(),
                    "durable log write failed: {e}"
                );
                self.removals.extend(removals);
                self.retry_at = Instant::now() + RETRY_REMOVALS_AFTER;
                for (events, _, _) in &appends {
                    self.metrics.refused(events.len() as u64, false);
                }
                for (_, _, reply) in appends {
                    let _ = reply.send(Err(e.clone()));
                }
            }
        }
    }

    fn transact(
        &mut self,
        appends: &[Append],
        removals: &[Seq],
        durable: bool,
        now_ms: u64,
    ) -> Result<Vec<Answer>, LogError> {
        #[cfg(test)]
        self.hooks.fail()?;
        let mut w = self.db.begin_write().map_err(redb::Error::from)?;
        w.set_durability(if durable {
            Durability::Immediate
        } else {
            Durability::None
        })
        .map_err(redb::Error::from)?;
        let (mut entries, mut bytes, mut next) = (self.entries, self.bytes, self.next);
        let mut added = Vec::new();
        let mut removed = Vec::new();
        let mut answers = Vec::with_capacity(appends.len());
        {
            let mut table = w.open_table(ENTRIES).map_err(redb::Error::from)?;
            let mut seen = w.open_table(SEEN).map_err(redb::Error::from)?;
            for seq in removals {
                if table.remove(*seq).map_err(redb::Error::from)?.is_some() {
                    if let Some(size) = self.sizes.get(seq) {
                        entries -= 1;
                        bytes -= size;
                        removed.push(*seq);
                    }
                }
            }
            let window_ms = self.config.dedup_window.map(|w| w.as_millis() as u64);
            for (events, scope, _) in appends {
                let scope = scope.as_deref();
                let mut keys_in_request = HashSet::new();
                let mut plan = Vec::with_capacity(events.len());
                for event in events {
                    let dup = match window_ms {
                        Some(window) => {
                            let key = dedup_key(event, scope);
                            let recent = seen
                                .get(key.as_str())
                                .map_err(redb::Error::from)?
                                .is_some_and(|at| now_ms.saturating_sub(at.value()) < window);
                            recent || !keys_in_request.insert(key)
                        }
                        None => false,
                    };
                    plan.push((!dup).then(|| record::encode(event)));
                }
                let new_entries = plan.iter().flatten().count() as u64;
                let new_bytes: u64 = plan.iter().flatten().map(|r| r.len() as u64).sum();
                if entries + new_entries > self.config.max_entries
                    || bytes + new_bytes > self.config.max_bytes
                {
                    answers.push(Err(LogError::Full { entries, bytes }));
                    continue;
                }
                let mut seqs = Vec::with_capacity(plan.len());
                for (event, rec) in events.iter().zip(plan) {
                    let Some(rec) = rec else {
                        seqs.push(None);
                        continue;
                    };
                    table
                        .insert(next, rec.as_slice())
                        .map_err(redb::Error::from)?;
                    if window_ms.is_some() {
                        seen.insert(dedup_key(event, scope).as_str(), now_ms)
                            .map_err(redb::Error::from)?;
                    }
                    added.push((next, rec.len() as u64));
                    seqs.push(Some(next));
                    next += 1;
                }
                entries += new_entries;
                bytes += new_bytes;
                answers.push(Ok(seqs));
            }
            if let Some(window) = window_ms {
                if self.last_purge.elapsed() >= PURGE_EVERY {
                    seen.retain(|_, at| now_ms.saturating_sub(at) < window)
                        .map_err(redb::Error::from)?;
                    self.last_purge = Instant::now();
                }
            }
        }
        w.commit().map_err(redb::Error::from)?;
        self.entries = entries;
        self.bytes = bytes;
        self.next = next;
        for seq in removed {
            self.sizes.remove(&seq);
        }
        self.sizes.extend(added);
        if durable {
            self.last_sync = Instant::now();
            self.unsynced_removals = false;
        } else if !removals.is_empty() {
            self.unsynced_removals = true;
        }
        Ok(answers)
    }

    /// The entries from `from` on and before `end`, oldest first, within
    /// one chunk's bounds, and the last one looked at. An entry that cannot
    /// be decoded is logged and queued for removal.
    fn read_backlog(&mut self, from: Seq, end: Seq) -> Result<BacklogChunk, LogError> {
        let r = self.db.begin_read().map_err(redb::Error::from)?;
        let t = r.open_table(ENTRIES).map_err(redb::Error::from)?;
        let (mut chunk, mut last, mut bytes) = (Vec::new(), None, 0u64);
        for item in t.range(from..end).map_err(redb::Error::from)? {
            if chunk.len() == BACKLOG_CHUNK_ENTRIES || bytes >= BACKLOG_CHUNK_BYTES {
                break;
            }
            let (k, v) = item.map_err(redb::Error::from)?;
            let (seq, value) = (k.value(), v.value());
            last = Some(seq);
            bytes += value.len() as u64;
            match record::decode(value) {
                Ok(event) => chunk.push((seq, event)),
                Err(e) => {
                    tracing::error!(seq, "dropping a log entry: {e}");
                    self.removals.push(seq);
                }
            }
        }
        Ok((chunk, last))
    }

    /// A durable empty commit, so earlier non-durable removals persist.
    fn sync(&mut self) {
        if !self.unsynced_removals {
            return;
        }
        let result = (|| -> Result<(), redb::Error> {
            let mut w = self.db.begin_write()?;
            w.set_durability(Durability::Immediate)?;
            w.commit()?;
            Ok(())
        })();
        match result {
            Ok(()) => {
                self.unsynced_removals = false;
                self.last_sync = Instant::now();
            }
            Err(e) => {
                tracing::error!("syncing the durable log failed: {e}");
                // Tried again a period later, not in a busy loop.
                self.last_sync = Instant::now();
            }
        }
    }
}

fn dedup_key(event: &Event, scope: Option<&str>) -> String {
    match scope {
        None => format!("{}\0{}", event.source, event.id),
        Some(s) => format!("{}\0{}\0{s}", event.source, event.id),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicIsize, AtomicUsize, Ordering::SeqCst};
    use std::sync::Mutex;

    /// What tests do to the log thread.
    #[derive(Default)]
    pub(super) struct Hooks {
        /// Transactions to fail, as a full disk fails them.
        failures: AtomicUsize,
        /// Set by a test: the thread stops once it has its next command,
        /// until the sending side is dropped.
        stall: Mutex<Option<mpsc::Receiver<()>>>,
        /// Appends sent and not yet taken into a transaction.
        queued: AtomicIsize,
    }

    impl Hooks {
        pub(super) fn queued(&self, n: isize) {
            self.queued.fetch_add(n, SeqCst);
        }

        pub(super) fn stall(&self) {
            let stall = self.stall.lock().unwrap_or_else(|p| p.into_inner()).take();
            if let Some(until) = stall {
                let _ = until.recv();
            }
        }

        pub(super) fn fail(&self) -> Result<(), LogError> {
            match self
                .failures
                .fetch_update(SeqCst, SeqCst, |n| n.checked_sub(1))
            {
                Ok(_) => Err(LogError::Storage(
                    "no space left on device (injected)".into(),
                )),
                Err(_) => Ok(()),
            }
        }
    }

    /// Every entry of `backlog`, read chunk by chunk.
    async fn read_all(mut backlog: Backlog) -> Vec<(Seq, Event)> {
        let mut all = Vec::new();
        loop {
            let chunk = backlog.next_chunk().await.unwrap();
            if chunk.is_empty() {
                return all;
            }
            all.extend(chunk);
        }
    }

    fn event(id: &str) -> Event {
        Event {
            id: id.into(),
            source: "/s".into(),
            ty: "t".into(),
            specversion: "1.0".into(),
            datacontenttype: None,
            dataschema: None,
            subject: None,
            time: None,
            extensions: Default::default(),
            data: Some(bytes::Bytes::from_static(b"{}")),
        }
    }

    fn durable_metrics() -> DurableMetrics {
        crate::metrics::Metrics::new().durable
    }

    /// Open a log whose metrics the test reads back.
    fn open_measured(
        path: &Path,
        config: &DurabilityConfig,
    ) -> (LogHandle, crate::metrics::Metrics) {
        let metrics = crate::metrics::Metrics::new();
        let (log, _) = open(path, config, metrics.durable.clone()).unwrap();
        (log, metrics)
    }

    fn ids(stored: &[(Seq, Event)]) -> Vec<&str> {
        stored.iter().map(|(_, e)| e.id.as_str()).collect()
    }

    #[tokio::test]
    async fn pending_entries_survive_a_reopen_and_removed_ones_do_not() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.redb");
        let config = DurabilityConfig::default();
        let (log, backlog) = open(&path, &config, durable_metrics()).unwrap();
        assert!(backlog.is_empty());
        assert!(read_all(backlog).await.is_empty());
        let stored = log
            .append(vec![event("a"), event("b"), event("c")])
            .await
            .unwrap();
        assert_eq!(ids(&stored), ["a", "b", "c"]);
        log.remove(stored[1].0);
        log.close().await;
        let (log, backlog) = open(&path, &config, durable_metrics()).unwrap();
        assert_eq!(backlog.len(), 2);
        let pending = read_all(backlog).await;
        assert_eq!(ids(&pending), ["a", "c"]);
        // New entries continue the sequence after the pending ones.
        let more = log.append(vec![event("d")]).await.unwrap();
        assert!(more[0].0 > pending[1].0);
        log.close().await;
    }

    #[tokio::test]
    async fn a_full_log_refuses_whole_requests_and_frees_up_on_removal() {
        let dir = tempfile::tempdir().unwrap();
        let config = DurabilityConfig {
            max_entries: 3,
            ..DurabilityConfig::default()
        };
        let (log, metrics) = open_measured(&dir.path().join("log.redb"), &config);
        let stored = log.append(vec![event("a"), event("b")]).await.unwrap();
        let err = log.append(vec![event("c"), event("d")]).await.unwrap_err();
        let text = metrics.render();
        for line in [
            "sluice_durable_log_appended_total 2",
            "sluice_durable_log_entries 2",
            "sluice_durable_log_refused_total{reason=\"full\"} 2",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "{line} missing in:\n{text}"
            );
        }
        assert!(matches!(err, LogError::Full { entries: 2, .. }), "{err}");
        assert!(err.to_string().contains("full"));
        log.remove(stored[0].0);
        let ok = log.append(vec![event("c"), event("d")]).await.unwrap();
        assert_eq!(ids(&ok), ["c", "d"]);
        log.close().await;

        let small = DurabilityConfig {
            max_bytes: 10,
            ..DurabilityConfig::default()
        };
        let (log, _) = open(&dir.path().join("small.redb"), &small, durable_metrics()).unwrap();
        assert!(matches!(
            log.append(vec![event("a")]).await,
            Err(LogError::Full { .. })
        ));
        log.close().await;
    }

    #[tokio::test]
    async fn duplicates_within_the_window_are_stored_once() {
        let dir = tempfile::tempdir().unwrap();
        let config = DurabilityConfig {
            dedup_window: Some(Duration::from_secs(60)),
            ..DurabilityConfig::default()
        };
        let (log, metrics) = open_measured(&dir.path().join("log.redb"), &config);
        let first = log.append(vec![event("a"), event("a")]).await.unwrap();
        assert_eq!(ids(&first), ["a"]);
        assert!(metrics
            .render()
            .lines()
            .any(|l| l == "sluice_durable_log_duplicates_total 1"));
        // Still a duplicate after its entry was delivered and removed.
        log.remove(first[0].0);
        assert!(log.append(vec![event("a")]).await.unwrap().is_empty());
        let mut other = event("a");
        other.source = "/other".into();
        assert_eq!(log.append(vec![other]).await.unwrap().len(), 1);
        log.close().await;
    }

    #[tokio::test]
    async fn a_reply_is_not_a_duplicate_of_its_parent_but_its_repeat_is() {
        let dir = tempfile::tempdir().unwrap();
        let config = DurabilityConfig {
            dedup_window: Some(Duration::from_secs(60)),
            ..DurabilityConfig::default()
        };
        let (log, _) = open(&dir.path().join("log.redb"), &config, durable_metrics()).unwrap();
        assert_eq!(log.append(vec![event("a")]).await.unwrap().len(), 1);
        // An echo's reply keeps the parent's source and id.
        let scope = || Some("reply/trigger/t\x00254".to_owned());
        let reply = log.append_scoped(vec![event("a")], scope()).await;
        assert_eq!(reply.unwrap().len(), 1);
        // The parent, redelivered after a crash, sends the same reply again.
        let again = log.append_scoped(vec![event("a")], scope()).await;
        assert!(again.unwrap().is_empty());
        // Another trigger's reply to the same event is its own.
        let other = log
            .append_scoped(vec![event("a")], Some("reply/trigger/u\x00254".into()))
            .await;
        assert_eq!(other.unwrap().len(), 1);
        log.close().await;
    }

    #[tokio::test]
    async fn concurrent_appends_all_land() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.redb");
        let (log, _) = open(&path, &DurabilityConfig::default(), durable_metrics()).unwrap();
        let tasks: Vec<_> = (0..64)
            .map(|i| {
                let log = log.clone();
                tokio::spawn(async move { log.append(vec![event(&i.to_string())]).await })
            })
            .collect();
        for t in tasks {
            assert_eq!(t.await.unwrap().unwrap().len(), 1);
        }
        log.close().await;
        let (_, backlog) = open(&path, &DurabilityConfig::default(), durable_metrics()).unwrap();
        assert_eq!(read_all(backlog).await.len(), 64);
    }

    #[tokio::test]
    async fn removals_survive_a_failed_write_and_free_the_full_log() {
        let dir = tempfile::tempdir().unwrap();
        let config = DurabilityConfig {
            max_entries: 2,
            ..DurabilityConfig::default()
        };
        let (log, _) = open(&dir.path().join("log.redb"), &config, durable_metrics()).unwrap();
        let stored = log.append(vec![event("a"), event("b")]).await.unwrap();
        let full = log.append(vec![event("c")]).await;
        assert!(matches!(full, Err(LogError::Full { .. })), "{full:?}");
        // The transaction that carries the removal fails, as on a full disk.
        log.hooks.failures.store(1, SeqCst);
        log.remove(stored[0].0);
        while log.hooks.failures.load(SeqCst) > 0 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        // The removal is kept and frees the room for the next append.
        let ok = log.append(vec![event("c")]).await;
        assert_eq!(ids(&ok.unwrap()), ["c"]);
        log.close().await;
    }

    #[tokio::test]
    async fn appends_wait_for_a_place_in_the_queue_and_removals_never_do() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.redb");
        let (log, _) = open(&path, &DurabilityConfig::default(), durable_metrics()).unwrap();
        let old = log.append(vec![event("old")]).await.unwrap();
        let n = MAX_QUEUED_APPENDS + 8;
        let (release, stalled) = mpsc::channel::<()>();
        *log.hooks.stall.lock().unwrap() = Some(stalled);
        let tried = Arc::new(AtomicUsize::new(0));
        let appends: Vec<_> = (0..n)
            .map(|i| {
                let (log, tried) = (log.clone(), tried.clone());
                tokio::spawn(async move {
                    tried.fetch_add(1, SeqCst);
                    log.append(vec![event(&i.to_string())]).await
                })
            })
            .collect();
        while tried.load(SeqCst) < n {
            tokio::task::yield_now().await;
        }
        // Every append was tried: the queue holds as many as it has places.
        assert_eq!(log.hooks.queued.load(SeqCst), MAX_QUEUED_APPENDS as isize);
        // A removal is taken at once, even behind a full queue.
        log.remove(old[0].0);
        drop(release);
        for a in appends {
            assert_eq!(a.await.unwrap().unwrap().len(), 1);
        }
        log.close().await;
        let (log, backlog) = open(&path, &DurabilityConfig::default(), durable_metrics()).unwrap();
        let pending = read_all(backlog).await;
        assert_eq!(pending.len(), n);
        assert!(!ids(&pending).contains(&"old"));
        log.close().await;
    }

    #[tokio::test]
    async fn the_backlog_is_read_back_in_bounded_chunks() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.redb");
        let config = DurabilityConfig::default();
        let (log, _) = open(&path, &config, durable_metrics()).unwrap();
        let n = 2 * BACKLOG_CHUNK_ENTRIES + 10;
        let mut stored = Vec::new();
        for i in 0..n {
            stored.extend(log.append(vec![event(&i.to_string())]).await.unwrap());
        }
        // Large entries: bounded by bytes before they are by count.
        let mut large = event("large");
        large.data = Some(vec![b'x'; 1 << 20].into());
        for _ in 0..6 {
            stored.extend(log.append(vec![large.clone()]).await.unwrap());
            large.id.push('+');
        }
        log.remove(stored[3].0);
        log.close().await;

        let (log, mut backlog) = open(&path, &config, durable_metrics()).unwrap();
        assert_eq!(backlog.len(), stored.len() as u64 - 1);
        // Appended after the start: not part of the backlog.
        log.append(vec![event("new")]).await.unwrap();
        let mut chunks = Vec::new();
        loop {
            let chunk = backlog.next_chunk().await.unwrap();
            if chunk.is_empty() {
                break;
            }
            let bytes: usize = chunk.iter().map(|(_, e)| record::encode(e).len()).sum();
            assert!(chunk.len() <= BACKLOG_CHUNK_ENTRIES, "{}", chunk.len());
            assert!(bytes < BACKLOG_CHUNK_BYTES as usize + (2 << 20), "{bytes}");
            chunks.push(chunk);
        }
        assert!(chunks.len() >= 4, "{} chunks", chunks.len());
        let read: Vec<_> = chunks.concat();
        let mut expected = stored.clone();
        expected.remove(3);
        assert_eq!(ids(&read), ids(&expected));
        log.close().await;
    }

    #[test]
    fn an_unwritable_place_is_a_storage_error() {
        let dir = tempfile::tempdir().unwrap();
        let err = open(
            &dir.path().join("missing/dir/log.redb"),
            &DurabilityConfig::default(),
            durable_metrics(),
        )
        .err()
        .unwrap();
        assert!(matches!(err, LogError::Storage(_)), "{err}");
    }
}
