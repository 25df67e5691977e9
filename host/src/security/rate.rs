//! Per-sender rate limits: one token bucket (`governor`'s GCRA) per sender
//! token name, or per client IP address for senders without a token.

use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};

use crate::config::{RateLimit, MAX_RATE_WINDOW};

/// Most senders tracked before idle buckets (full again) are dropped.
const MAX_TRACKED: usize = 100_000;

/// The rate limiter of the event listener.
pub struct SenderLimiter {
    limiter: DefaultKeyedRateLimiter<String>,
    clock: DefaultClock,
}

impl SenderLimiter {
    /// A limiter for `limit` (validated: see `RateLimit`). Never panics,
    /// even on a limit validation refuses: the bucket is bounded to fill
    /// within [`MAX_RATE_WINDOW`].
    pub fn new(limit: &RateLimit) -> Self {
        let period = limit.period();
        let most = MAX_RATE_WINDOW.as_nanos() / period.as_nanos().max(1);
        let burst = u32::try_from(most).map_or(limit.burst(), |most| limit.burst().min(most));
        let burst = NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN);
        let quota = Quota::with_period(period)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_validation_refuses_still_build_a_limiter() {
        for (rate, burst) in [
            (1e-320, None),
            (1e-12, None),
            (1e-3, Some(u32::MAX)),
            (1e300, None),
            (f64::NAN, None),
        ] {
            let limiter = SenderLimiter::new(&RateLimit {
                requests_per_second: rate,
                burst,
            });
            assert_eq!(limiter.check("a"), Ok(()), "{rate}");
        }
    }
}
