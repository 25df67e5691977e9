//! `[durability]`: the durable ingress log (see `docs/durability.md`).

use super::Invalid;
use std::time::Duration;

/// Settings of the durable ingress log.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DurabilityConfig {
    /// Keep accepted events in a durable log before answering 202, and
    /// deliver from it at least once. Default `true`; `false` delivers from
    /// memory only (an accepted event is lost if the host dies).
    #[serde(default = "default_enabled")]
    pub enabled: bool,
    /// Most events pending in the log; past it `POST /` answers 503.
    /// Default 1,000,000.
    #[serde(default = "default_max_entries")]
    pub max_entries: u64,
    /// Most bytes of pending events in the log; past it `POST /` answers
    /// 503. Default 1 GiB.
    #[serde(default = "default_max_bytes")]
    pub max_bytes: u64,
    /// Drop an event whose `source` + `id` was accepted within this window
    /// (answered 202 without delivering it again). Off by default.
    #[serde(default, with = "humantime_serde")]
    pub dedup_window: Option<Duration>,
    /// Most events written by one group commit (one fsync). Default 4096.
    #[serde(default = "default_max_batch")]
    pub max_batch: usize,
}

impl Default for DurabilityConfig {
    fn default() -> Self {
        Self {
            enabled: default_enabled(),
            max_entries: default_max_entries(),
            max_bytes: default_max_bytes(),
            dedup_window: None,
            max_batch: default_max_batch(),
        }
    }
}

impl DurabilityConfig {
    /// Checks the schema cannot express.
    pub(crate) fn validate(&self) -> Result<(), Invalid> {
        if self.max_entries == 0 || self.max_bytes == 0 || self.max_batch == 0 {
            return Err("durability: max_entries, max_bytes and max_batch must be positive".into());
        }
        Ok(())
    }
}

const fn default_enabled() -> bool {
    true
}

const fn default_max_entries() -> u64 {
    1_000_000
}

const fn default_max_bytes() -> u64 {
    1024 * 1024 * 1024
}

const fn default_max_batch() -> usize {
    4096
}
