//! Per-sender rate limits: one token bucket (`governor`'s GCRA) per
//! [`Sender`]: its sender token's name, or its client address.
//!
//! The buckets are kept for the [`MAX_TRACKED`] most recently seen senders
//! ([`Lru`]): a new sender past that evicts the least recently seen one, so
//! the work per request stays constant however many addresses a client
//! sprays from. An evicted sender starts over with a full bucket when it
//! comes back; a sender that keeps sending stays among the most recent and
//! keeps its bucket.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::nanos::Nanos;
use governor::state::StateStore;
use governor::{Quota, RateLimiter};

use super::lru::Lru;
use crate::config::{RateLimit, MAX_RATE_WINDOW};

/// Most senders whose buckets are kept.
pub const MAX_TRACKED: usize = 100_000;

/// Whose bucket a request takes from.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Sender {
    /// An authenticated sender, by its token's name.
    Token(String),
    /// A client address: senders without a token, and requests whose token
    /// is missing or wrong.
    Addr(IpAddr),
    /// A request without a client address.
    Unknown,
}

/// The buckets: each sender's GCRA state (its theoretical arrival time).
#[derive(Clone)]
struct Buckets(Arc<Mutex<Lru<Sender, Nanos>>>);

impl Buckets {
    fn lock(&self) -> std::sync::MutexGuard<'_, Lru<Sender, Nanos>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl StateStore for Buckets {
    type Key = Sender;

    fn measure_and_replace<T, F, E>(&self, key: &Sender, f: F) -> Result<T, E>
    where
        F: Fn(Option<Nanos>) -> Result<(T, Nanos), E>,
    {
        let mut lru = self.lock();
        if let Some(state) = lru.get_mut(key) {
            let (outcome, next) = f(Some(*state))?;
            *state = next;
            return Ok(outcome);
        }
        let (outcome, next) = f(None)?;
        lru.insert(key.clone(), next);
        Ok(outcome)
    }
}

/// The rate limiter of the event listener.
pub struct SenderLimiter {
    limiter: RateLimiter<Sender, Buckets, DefaultClock>,
    buckets: Buckets,
    clock: DefaultClock,
}

impl SenderLimiter {
    /// A limiter for `limit` (validated: see `RateLimit`), keeping the
    /// buckets of [`MAX_TRACKED`] senders.
    pub fn new(limit: &RateLimit) -> Self {
        Self::with_capacity(limit, MAX_TRACKED)
    }

    /// A limiter for `limit` keeping the buckets of `capacity` senders.
    /// Never panics, even on a limit validation refuses: the bucket is
    /// bounded to fill within [`MAX_RATE_WINDOW`].
    pub fn with_capacity(limit: &RateLimit, capacity: usize) -> Self {
        let period = limit.period();
        let most = MAX_RATE_WINDOW.as_nanos() / period.as_nanos().max(1);
        let burst = u32::try_from(most).map_or(limit.burst(), |most| limit.burst().min(most));
        let burst = NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN);
        let quota = Quota::with_period(period)
            .unwrap_or_else(|| Quota::per_second(NonZeroU32::MAX))
            .allow_burst(burst);
        let clock = DefaultClock::default();
        let buckets = Buckets(Arc::new(Mutex::new(Lru::new(capacity))));
        Self {
            limiter: RateLimiter::new(quota, buckets.clone(), clock.clone()),
            buckets,
            clock,
        }
    }

    /// Take one request from `sender`'s bucket; `Err(wait)` when it is
    /// empty, with the time until the next request would pass.
    pub fn check(&self, sender: &Sender) -> Result<(), Duration> {
        self.limiter
            .check_key(sender)
            .map_err(|not_until| not_until.wait_time_from(self.clock.now()))
    }

    /// How many senders' buckets are kept (at most the capacity).
    pub fn tracked(&self) -> usize {
        self.buckets.lock().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limit(requests_per_second: f64, burst: Option<u32>) -> RateLimit {
        RateLimit {
            requests_per_second,
            burst,
        }
    }

    fn addr(i: u32) -> Sender {
        Sender::Addr(IpAddr::from(i.to_be_bytes()))
    }

    #[test]
    fn limits_validation_refuses_still_build_a_limiter() {
        for (rate, burst) in [
            (1e-320, None),
            (1e-12, None),
            (1e-3, Some(u32::MAX)),
            (1e300, None),
            (f64::NAN, None),
        ] {
            let limiter = SenderLimiter::new(&limit(rate, burst));
            assert_eq!(limiter.check(&Sender::Unknown), Ok(()), "{rate}");
        }
    }

    #[test]
    fn a_spray_of_addresses_neither_grows_the_buckets_nor_frees_a_busy_sender() {
        const CAP: usize = 64;
        let limiter = SenderLimiter::with_capacity(&limit(0.001, Some(1)), CAP);
        let tracked = || limiter.tracked();
        let busy = Sender::Token("busy".into());
        assert_eq!(limiter.check(&busy), Ok(()));
        assert!(limiter.check(&busy).is_err());
        for i in 0..(CAP as u32 * 20) {
            // Each new address has a full bucket of its own...
            assert_eq!(limiter.check(&addr(i)), Ok(()));
            assert!(tracked() <= CAP);
            // ...and the busy sender, seen all along, keeps its empty one.
            if i % 8 == 0 {
                assert!(limiter.check(&busy).is_err(), "after {i}");
            }
        }
        assert_eq!(tracked(), CAP);
        // A sender quiet while CAP others came starts over.
        let quiet = addr(u32::MAX);
        assert_eq!(limiter.check(&quiet), Ok(()));
        assert!(limiter.check(&quiet).is_err());
        for i in 0..CAP as u32 {
            assert_eq!(limiter.check(&addr(1_000_000 + i)), Ok(()));
        }
        assert_eq!(limiter.check(&quiet), Ok(()));
    }
}
