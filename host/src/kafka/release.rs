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

    /// Run `f` on a thread of its own and return its result, failing the
    /// test (instead of hanging it) when that takes over 10 s.
    fn within<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
        let limit = Duration::from_secs(10);
        let (done, result) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = done.send(f());
        });
        result
            .recv_timeout(limit)
            .unwrap_or_else(|_| panic!("{what} blocked for over {limit:?}"))
    }

    /// [`release`] of `value` with `limit`, on a runtime of its own.
    fn release_on_a_runtime<T: Send + 'static>(
        what: &'static str,
        value: T,
        limit: Duration,
    ) -> bool {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap()
            .block_on(release(what, value, limit))
    }

    #[test]
    fn a_slow_drop_is_not_waited_for_past_the_limit() {
        let (tx, rx) = std::sync::mpsc::channel();
        let finished = within("releasing a stuck value", move || {
            release_on_a_runtime("stuck", Stuck(rx), Duration::from_millis(50))
        });
        assert!(!finished);
        tx.send(()).unwrap();
        let finished = within("releasing a value", || {
            release_on_a_runtime("quick", 1u8, Duration::from_secs(5))
        });
        assert!(finished);
        // Dropping a detached stuck value does not block the dropping thread.
        let (tx, rx) = std::sync::mpsc::channel();
        within("dropping a detached stuck value", move || {
            drop(Detached::new(Stuck(rx)));
        });
        tx.send(()).unwrap();
    }
}
