//! Per-sender rate limits: one token bucket (`governor`'s GCRA) per sender
//! token name, or per client IP address for senders without a token.

use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};

use crate::config::RateLimit;

/// Most senders tracked before idle buckets (full again) are dropped.
const MAX_TRACKED: usize = 100_000;

/// The rate limiter of the event listener.
pub struct SenderLimiter {
    limiter: DefaultKeyedRateLimiter<String>,
    clock: DefaultClock,
}

impl SenderLimiter {
    /// A limiter for `limit` (already validated: positive and finite).
    pub fn new(limit: &RateLimit) -> Self {
        let burst = NonZeroU32::new(limit.burst()).unwrap_or(NonZeroU32::MIN);
        let quota = Quota::with_period(limit.period())
            .unwrap_or_else(|| Quota::per_second(NonZeroU32::MAX))
            .allow_burst(burst);
        Self {
            limiter: DefaultKeyedRateLimiter::keyed(quota),
            clock: DefaultClock::default(),
        }
    }

    /// Take one request from `sender`'s bucket; `Err(wait)` when it is
    /// empty, with the time until the next request would pass.
    pub fn check(&self, sender: &str) -> Result<(), Duration> {
        if self.limiter.len() > MAX_TRACKED {
            self.limiter.retain_recent();
        }
        self.limiter
            .check_key(&sender.to_owned())
            .map_err(|not_until| not_until.wait_time_from(self.clock.now()))
    }
}
