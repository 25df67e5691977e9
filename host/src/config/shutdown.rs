//! `[shutdown]`: how long a stopping host waits for what is running.

use std::time::Duration;

/// Settings of a graceful stop (SIGTERM or Ctrl-C).
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShutdownConfig {
    /// Once the sources stopped: how long requests and deliveries still
    /// running get to finish (default 30s; `0s` abandons them at once).
    /// What has not finished then is abandoned: the durable log keeps its
    /// event, delivered again after the restart. Backoff waits end at the
    /// stop whatever this is.
    #[serde(default = "default_grace", with = "humantime_serde")]
    pub grace: Duration,
}

impl Default for ShutdownConfig {
    fn default() -> Self {
        Self {
            grace: default_grace(),
        }
    }
}

const fn default_grace() -> Duration {
    Duration::from_secs(30)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grace_parses_with_a_default() {
        let c: ShutdownConfig = toml::from_str("").unwrap();
        assert_eq!(c.grace, Duration::from_secs(30));
        let c: ShutdownConfig = toml::from_str("grace = \"5s\"").unwrap();
        assert_eq!(c.grace, Duration::from_secs(5));
        assert!(toml::from_str::<ShutdownConfig>("grace = \"soon\"").is_err());
        assert!(toml::from_str::<ShutdownConfig>("grase = \"5s\"").is_err());
    }
}
