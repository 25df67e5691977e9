//! Compiling uploads on a bounded pool: at most `compile_concurrency`
//! compilations at once and `compile_queue` waiting, each within
//! `compile_timeout`, so a burst of uploads (or one enormous component)
//! cannot take the cores event handling needs.
//!
//! A compilation past its timeout is refused, but Cranelift cannot be
//! interrupted: it finishes in the background and keeps its slot until
//! then, so runaway compilations never exceed the pool.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;

use crate::config::AdminConfig;
use crate::runtime::{CompileError, Compiled, Runtime};

/// Why an upload was not compiled.
#[derive(Debug, thiserror::Error)]
pub enum PoolError {
    /// Every slot is busy and the queue is full: 503, retry later.
    #[error("{0} uploads are already compiling or waiting (admin.compile_concurrency, admin.compile_queue); retry later")]
    Busy(usize),
    /// The compilation took longer than the timeout.
    #[error("compiling the component took longer than {0:?} (admin.compile_timeout)")]
    TimedOut(Duration),
    /// The compiler refused it, or failed.
    #[error(transparent)]
    Compile(#[from] CompileError),
}

/// The compile pool of the admin API.
pub struct CompilePool {
    slots: Arc<Semaphore>,
    admitted: Arc<AtomicUsize>,
    max_admitted: usize,
    timeout: Duration,
}

impl CompilePool {
    /// A pool for these admin settings.
    pub fn new(config: &AdminConfig) -> Self {
        Self {
            slots: Arc::new(Semaphore::new(config.compile_concurrency)),
            admitted: Arc::new(AtomicUsize::new(0)),
            max_admitted: config.compile_concurrency + config.compile_queue,
            timeout: config.compile_timeout,
        }
    }

    /// Compile `bytes` on the pool.
    ///
    /// # Errors
    /// [`PoolError`].
    pub async fn compile(
        &self,
        runtime: &Arc<Runtime>,
        bytes: bytes::Bytes,
    ) -> Result<Compiled, PoolError> {
        let admitted = self.admitted.fetch_add(1, Ordering::SeqCst);
        if admitted >= self.max_admitted {
            self.admitted.fetch_sub(1, Ordering::SeqCst);
            return Err(PoolError::Busy(admitted));
        }
        let admission = Admission(self.admitted.clone());
        let slot = self
            .slots
            .clone()
            .acquire_owned()
            .await
            .map_err(|e| CompileError::Internal(e.to_string()))?;
        tracing::info!(bytes = bytes.len(), "compiling an upload");
        let runtime = runtime.clone();
        // The task owns the admission and the slot, so both are held until
        // the compiler really stops, even after a timeout was answered.
        let task = tokio::spawn(async move {
            let _held = (admission, slot);
            runtime.compile(bytes).await
        });
        match tokio::time::timeout(self.timeout, task).await {
            Ok(Ok(result)) => Ok(result?),
            Ok(Err(join)) => Err(CompileError::Internal(join.to_string()).into()),
            Err(_) => Err(PoolError::TimedOut(self.timeout)),
        }
    }
}

/// One admitted upload, released on drop.
struct Admission(Arc<AtomicUsize>);

impl Drop for Admission {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}
