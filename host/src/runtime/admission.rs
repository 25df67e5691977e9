//! Per-function admission control: at most `max_concurrency` invocations
//! of a function run at once; others wait in a queue of at most
//! `max_queue`, and are shed (`InvokeError::Busy`, answered 429) past it.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::InvokeError;

/// How a caller waits for a slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    /// Wait in the bounded queue; shed when it is full.
    Bounded,
    /// Wait however long it takes (the caller bounds its own concurrency,
    /// as the dispatcher does).
    Unbounded,
}

/// The slots and queue of one function.
#[derive(Debug)]
pub struct Admission {
    slots: Arc<Semaphore>,
    queued: AtomicUsize,
    max_queue: usize,
}

impl Admission {
    /// `max_concurrency` slots and a queue of `max_queue`.
    pub fn new(max_concurrency: usize, max_queue: usize) -> Self {
        Self {
            slots: Arc::new(Semaphore::new(max_concurrency.max(1))),
            queued: AtomicUsize::new(0),
            max_queue,
        }
    }

    /// Take a slot, waiting as `wait` says. The slot is released when the
    /// returned permit drops.
    ///
    /// # Errors
    /// [`InvokeError::Busy`] when `wait` is bounded and the queue is full.
    pub async fn enter(&self, wait: Wait) -> Result<OwnedSemaphorePermit, InvokeError> {
        if let Ok(permit) = self.slots.clone().try_acquire_owned() {
            return Ok(permit);
        }
        let queued = self.queued.fetch_add(1, Ordering::AcqRel);
        if wait == Wait::Bounded && queued >= self.max_queue {
            self.queued.fetch_sub(1, Ordering::AcqRel);
            return Err(InvokeError::Busy);
        }
        let permit = self.slots.clone().acquire_owned().await;
        self.queued.fetch_sub(1, Ordering::AcqRel);
        permit.map_err(|_| InvokeError::Busy)
    }

    /// How many callers are waiting.
    #[cfg(test)]
    pub fn queued(&self) -> usize {
        self.queued.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn sheds_past_the_queue_and_admits_after_release() {
        let a = Arc::new(Admission::new(1, 1));
        let first = a.enter(Wait::Bounded).await.unwrap();
        // One may wait...
        let waiter = {
            let a = a.clone();
            tokio::spawn(async move { a.enter(Wait::Bounded).await.map(drop) })
        };
        while a.queued() == 0 {
            tokio::task::yield_now().await;
        }
        // ...the next is shed, unless it waits without bound.
        assert!(matches!(
            a.enter(Wait::Bounded).await,
            Err(InvokeError::Busy)
        ));
        drop(first);
        waiter.await.unwrap().unwrap();
        assert!(a.enter(Wait::Unbounded).await.is_ok());
    }
}
