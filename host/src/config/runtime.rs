//! `[runtime]`: engine-wide limits and the loaded-function cache.

use super::{invalid, Invalid};
use std::time::Duration;

/// Engine-wide runtime settings.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuntimeConfig {
    /// Most instances alive at once across all functions (the size of the
    /// pooling allocator). Default 1000.
    #[serde(default = "default_max_instances")]
    pub max_instances: u32,
    /// CPU deadline of one invocation unless a function sets its own.
    /// Default 1 s.
    #[serde(default = "default_timeout", with = "humantime_serde")]
    pub default_timeout: Duration,
    /// Memory cap of one instance unless a function sets its own, in MiB.
    /// Default 64.
    #[serde(default = "default_memory_mib")]
    pub default_memory_mib: u32,
    /// Largest memory cap any function may ask for, in MiB (the pooling
    /// allocator's slot size). Default 256.
    #[serde(default = "default_max_memory_mib")]
    pub max_memory_mib: u32,
    /// Most invocations of one function running at once, unless the
    /// function sets its own. Default 64.
    #[serde(default = "default_max_concurrency")]
    pub default_max_concurrency: u32,
    /// Most direct invocations of one function waiting for a slot before
    /// they are answered 429, unless the function sets its own. Default 256.
    #[serde(default = "default_max_queue")]
    pub default_max_queue: u32,
    /// A reused instance (see a function's `reuse`) idle this long is
    /// dropped. Default 10 s.
    #[serde(default = "default_reuse_idle", with = "humantime_serde")]
    pub reuse_idle_timeout: Duration,
    /// Largest reply event a handler may return, and most bytes read of an
    /// HTTP subscriber's reply. Default 1 MiB.
    #[serde(default = "default_max_reply_bytes")]
    pub max_reply_bytes: usize,
    /// A loaded function unused for this long is unloaded (scale to zero).
    /// Default 60 s.
    #[serde(default = "default_idle_timeout", with = "humantime_serde")]
    pub idle_timeout: Duration,
    /// Most functions kept loaded at once. Default 1000.
    #[serde(default = "default_max_resident")]
    pub max_resident: u64,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        Self {
            max_instances: default_max_instances(),
            default_timeout: default_timeout(),
            default_memory_mib: default_memory_mib(),
            max_memory_mib: default_max_memory_mib(),
            default_max_concurrency: default_max_concurrency(),
            default_max_queue: default_max_queue(),
            reuse_idle_timeout: default_reuse_idle(),
            max_reply_bytes: default_max_reply_bytes(),
            idle_timeout: default_idle_timeout(),
            max_resident: default_max_resident(),
        }
    }
}

impl RuntimeConfig {
    pub(super) fn validate(&self) -> Result<(), Invalid> {
        if self.max_instances == 0 {
            return Err("runtime.max_instances must be at least 1".into());
        }
        if self.default_memory_mib == 0 || self.default_memory_mib > self.max_memory_mib {
            return Err(invalid!(
                "runtime.default_memory_mib must be between 1 and max_memory_mib ({})",
                self.max_memory_mib
            ));
        }
        if self.max_memory_mib > 4096 {
            return Err("runtime.max_memory_mib is at most 4096 (32-bit linear memory)".into());
        }
        if self.default_max_concurrency == 0 {
            return Err("runtime.default_max_concurrency must be at least 1".into());
        }
        if self.default_timeout.is_zero() {
            return Err("runtime.default_timeout must be positive".into());
        }
        Ok(())
    }
}

const fn default_max_instances() -> u32 {
    1000
}
const fn default_timeout() -> Duration {
    Duration::from_secs(1)
}
const fn default_memory_mib() -> u32 {
    64
}
const fn default_max_memory_mib() -> u32 {
    256
}
const fn default_max_concurrency() -> u32 {
    64
}
const fn default_max_queue() -> u32 {
    256
}
const fn default_reuse_idle() -> Duration {
    Duration::from_secs(10)
}
const fn default_max_reply_bytes() -> usize {
    1024 * 1024
}
const fn default_idle_timeout() -> Duration {
    Duration::from_secs(60)
}
const fn default_max_resident() -> u64 {
    1000
}
