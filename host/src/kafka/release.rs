//! Letting go of Kafka clients without hanging the host.
//!
//! Dropping a librdkafka consumer closes it: it leaves its group and
//! commits stored offsets, polling until the broker answered, with no time
//! limit; dropping a producer flushes and waits for its broker threads. With
//! the broker gone, either can block for a long time. So clients are never
//! dropped on an executor thread: [`release`] drops a value on a thread of
//! its own and waits for that for a bounded time, and [`Detached`] does the
//! same, without waiting, whenever a client is dropped some other way.

use std::time::Duration;

/// Drop `value` on a thread of its own; wait at most `limit` for that.
/// Returns whether it finished in time. When it did not, the thread goes
/// on in the background (and ends with the process at the latest).
pub async fn release<T: Send + 'static>(what: &str, value: T, limit: Duration) -> bool {
    let (done, finished) = tokio::sync::oneshot::channel::<()>();
    let spawned = std::thread::Builder::new()
        .name("sluice-release".into())
        .spawn(move || {
            drop(value);
            let _ = done.send(());
        });
    if let Err(e) = spawned {
        tracing::warn!("no thread to release {what} on ({e}); released in place");
        return true;
    }
    match tokio::time::timeout(limit, finished).await {
        Ok(_) => true,
        Err(_) => {
            tracing::warn!(
                "releasing {what} took over {limit:?} (an unreachable Kafka broker?); not waiting for it"
            );
            false
        }
    }
}

/// A value whose drop happens on a thread of its own (for Kafka clients
/// dropped by a cancelled task); [`Detached::release`] lets go of it with a
/// bounded wait instead.
pub struct Detached<T: Send + 'static>(Option<T>);

impl<T: Send + 'static> Detached<T> {
    /// Wrap `value`.
    pub fn new(value: T) -> Self {
        Self(Some(value))
    }

    /// Drop the value as [`release`] does.
    pub async fn release(mut self, what: &str, limit: Duration) -> bool {
        match self.0.take() {
            Some(value) => release(what, value, limit).await,
            None => true,
        }
    }
}

impl<T: Send + 'static> std::ops::Deref for Detached<T> {
    type Target = T;
    fn deref(&self) -> &T {
        // Only `release` and `drop` take the value, and both consume self.
        self.0.as_ref().unwrap_or_else(|| unreachable!())
    }
}

impl<T: Send + 'static> Drop for Detached<T> {
    fn drop(&mut self) {
        if let Some(value) = self.0.take() {
            let _ = std::thread::Builder::new()
                .name("sluice-release".into())
                .spawn(move || drop(value));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Blocks its dropper until told to stop.
    struct Stuck(std::sync::mpsc::Receiver<()>);

    impl Drop for Stuck {
        fn drop(&mut self) {
            let _ = self.0.recv();
        }
    }

    #[tokio::test]
    async fn a_slow_drop_is_not_waited_for_past_the_limit() {
        let (tx, rx) = std::sync::mpsc::channel();
        assert!(!release("stuck", Stuck(rx), Duration::from_millis(50)).await);
        tx.send(()).unwrap();
        assert!(release("quick", 1u8, Duration::from_secs(5)).await);
        // Dropping a detached stuck value does not block this thread.
        let (tx, rx) = std::sync::mpsc::channel();
        drop(Detached::new(Stuck(rx)));
        tx.send(()).unwrap();
    }
}
