//! `sluice.toml`: the declarative configuration, and the object types the
//! admin API shares with it. Parsed and validated before any socket opens.
//!
//! ```toml
//! [runtime]
//! default_timeout = "1s"
//!
//! [functions.echo]
//! path = "../../target/functions/echo.wasm"
//!
//! [triggers.echo-all]
//! filter = { type = "com.example.ping" }
//! function = "echo"
//! sink = "http://127.0.0.1:9000/"
//!
//! [triggers.rates]
//! filters = [{ prefix = { type = "dev.rates" } }]
//! function = "echo"
//! reply = { sequence = "format" }
//! delivery = { retry = 3, backoff_delay = "100ms", dead_letter = { sink = "dlq" } }
//!
//! [sequences.format]
//! steps = [{ function = "echo" }, { url = "http://127.0.0.1:9001/" }]
//! reply = { sink = "dlq" }
//!
//! [sinks.dlq]
//! type = "log"
//! ```
//!
//! The routing objects (triggers, sinks, sequences, parallels) are described
//! in `docs/routing.md`.

mod allow_list;
mod durability;
mod env_destination;
mod kafka;
mod listeners;
mod objects;
mod routing;
mod runtime;
pub mod schedule;
mod shutdown;
mod sources;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub use allow_list::{AllowList, BadEntry, Entry, InternalAddress, Target};
pub use durability::DurabilityConfig;
pub use env_destination::{EnvDestination, EnvDestinationError, CA_CERTS, CE_OVERRIDES};
pub use kafka::{KafkaBrokerConfig, KafkaConfig, KafkaMode, KafkaSinkConfig, KafkaSourceConfig};
pub use listeners::{
    AdminConfig, ConnectionLimits, IngressConfig, OutboundConfig, RateLimit, TlsFiles,
    MAX_RATE_WINDOW, MIN_BODY_LIMIT, MIN_HEADER_BYTES,
};
pub use objects::{Filter, FunctionSettings, TriggerSpec};
pub use routing::{
    apply_extensions, Backoff, Branch, DeliverySpec, Destination, Extensions, FilterExpr,
    InvalidDestination, ParallelSpec, SequenceSpec, SinkKind, SinkMode, SinkSpec, Step,
};
pub use runtime::RuntimeConfig;
pub use schedule::{Schedule, ScheduleError};
pub use shutdown::ShutdownConfig;
pub use sources::{FunctionSourceSpec, Payload, PingSpec, SourceSpec, SpecError};

use crate::name::Name;

/// The whole configuration file.
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Limits and caches of the wasm runtime.
    #[serde(default)]
    pub runtime: RuntimeConfig,
    /// The event listener: limits, sender tokens, TLS.
    #[serde(default)]
    pub ingress: IngressConfig,
    /// The admin listener: tokens, upload and compile limits, TLS.
    #[serde(default)]
    pub admin: AdminConfig,
    /// Outbound HTTPS: extra trust roots.
    #[serde(default)]
    pub outbound: OutboundConfig,
    /// The durable ingress log.
    #[serde(default)]
    pub durability: DurabilityConfig,
    /// The Kafka bridge.
    #[serde(default)]
    pub kafka: KafkaConfig,
    /// A graceful stop's grace period.
    #[serde(default)]
    pub shutdown: ShutdownConfig,
    /// Functions to deploy at start-up, by name.
    #[serde(default)]
    pub functions: BTreeMap<Name, FunctionConfig>,
    /// Triggers, by name.
    #[serde(default)]
    pub triggers: BTreeMap<Name, TriggerSpec>,
    /// Named sinks, by name.
    #[serde(default)]
    pub sinks: BTreeMap<Name, SinkSpec>,
    /// Sequences, by name.
    #[serde(default)]
    pub sequences: BTreeMap<Name, SequenceSpec>,
    /// Parallels, by name.
    #[serde(default)]
    pub parallels: BTreeMap<Name, ParallelSpec>,
    /// Event sources (ping schedules, source functions), by name; see
    /// [`crate::sources`].
    #[serde(default)]
    pub sources: BTreeMap<Name, SourceSpec>,
}

/// A function declared in the config file.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FunctionConfig {
    /// The component file, relative to the config file.
    pub path: PathBuf,
    /// Limits and environment.
    #[serde(flatten)]
    pub settings: FunctionSettings,
}

/// Why a setting, an object or a set of objects is invalid: a message
/// naming it (e.g. ``sink `s`: an http sink needs a `url` ``).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Invalid(pub String);

/// An [`Invalid`] with a `format!` message.
macro_rules! invalid {
    ($($arg:tt)*) => {
        $crate::config::Invalid(format!($($arg)*))
    };
}
pub(crate) use invalid;

impl From<String> for Invalid {
    fn from(message: String) -> Self {
        Self(message)
    }
}

impl From<&str> for Invalid {
    fn from(message: &str) -> Self {
        Self(message.to_owned())
    }
}

/// A configuration file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file cannot be read.
    #[error("reading {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid TOML for this schema.
    #[error("parsing {path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message, with line and column.
        message: String,
    },
    /// The file parses but does not make sense.
    #[error("{path}: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
}

impl Config {
    /// Read, parse and validate a config file. Relative function paths are
    /// resolved against the file's directory.
    ///
    /// # Errors
    /// When the file cannot be read, parsed, or validated.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text, path)
    }

    /// Parse and validate the text of a config file found at `path` (which
    /// only resolves relative paths and names the file in errors; it is not
    /// read). The fuzz target `fuzz/config` drives this.
    ///
    /// # Errors
    /// When the text cannot be parsed or validated.
    pub fn parse(text: &str, path: &Path) -> Result<Self, ConfigError> {
        let mut config: Config = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        config.ingress.resolve(base);
        config.admin.resolve(base);
        config.outbound.resolve(base);
        for f in config.functions.values_mut() {
            if f.path.is_relative() {
                f.path = base.join(&f.path);
            }
        }
        for s in config.sources.values_mut() {
            if let SourceSpec::Function(f) = s {
                if f.path.is_relative() {
                    f.path = base.join(&f.path);
                }
            }
        }
        config
            .validate()
            .map_err(|Invalid(message)| ConfigError::Invalid {
                path: path.to_path_buf(),
                message,
            })?;
        Ok(config)
    }

    /// Cross-object checks the schema cannot express.
    fn validate(&self) -> Result<(), Invalid> {
        self.runtime.validate()?;
        self.ingress.validate()?;
        self.admin.validate()?;
        self.durability.validate()?;
        self.kafka.validate()?;
        for (name, f) in &self.functions {
            f.settings
                .validate(&self.runtime)
                .map_err(|e| format!("function `{name}`: {e}"))?;
        }
        // Each object on its own here; references between objects (and to
        // functions deployed through the admin API) are checked when the
        // routing table is built.
        for (name, t) in &self.triggers {
            t.validate().map_err(|e| format!("trigger `{name}`: {e}"))?;
        }
        for (name, s) in &self.sinks {
            s.validate().map_err(|e| format!("sink `{name}`: {e}"))?;
        }
        for (name, s) in &self.sequences {
            s.validate()
                .map_err(|e| format!("sequence `{name}`: {e}"))?;
        }
        for (name, p) in &self.parallels {
            p.validate()
                .map_err(|e| format!("parallel `{name}`: {e}"))?;
        }
        for (name, s) in &self.sources {
            s.validate().map_err(|e| format!("source `{name}`: {e}"))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_full_file_and_resolves_paths() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sluice.toml");
        std::fs::write(
            &path,
            r#"
            [runtime]
            default_timeout = "250ms"
            idle_timeout = "5s"

            [functions.echo]
            path = "echo.wasm"
            timeout = "2s"
            memory_mib = 16
            env = { GREETING = "hi" }

            [triggers.all]
            filter = { type = "t" }
            function = "echo"
            sink = "log"
            "#,
        )
        .unwrap();
        let c = Config::load(&path).unwrap();
        let echo = &c.functions[&"echo".parse().unwrap()];
        assert_eq!(echo.path, dir.path().join("echo.wasm"));
        assert_eq!(
            echo.settings.timeout,
            Some(std::time::Duration::from_secs(2))
        );
        assert_eq!(
            c.runtime.default_timeout,
            std::time::Duration::from_millis(250)
        );
        assert_eq!(
            c.triggers[&"all".parse().unwrap()].sink,
            Some(Destination::Log)
        );
    }

    #[test]
    fn routing_sections_parse() {
        let c: Config = toml::from_str(
            r#"
            [triggers.t]
            filters = [{ prefix = { type = "a" } }, { not = { exact = { subject = "x" } } }]
            subscriber = { sequence = "q" }
            delivery = { retry = 2, backoff = "linear", backoff_delay = "10ms", dead_letter = { sink = "s" } }
            [sequences.q]
            steps = [{ function = "f" }, { url = "http://127.0.0.1:1/", delivery = { retry = 1 } }]
            reply = "broker"
            [parallels.p]
            branches = [{ subscriber = "log", filters = [{ exact = { type = "b" } }] }]
            [sinks.s]
            url = "http://127.0.0.1:2/"
            mode = "structured"
            "#,
        )
        .unwrap();
        c.validate().unwrap();
        let t = &c.triggers[&"t".parse().unwrap()];
        assert_eq!(t.subscriber(), Destination::Sequence("q".parse().unwrap()));
        assert_eq!(t.delivery.as_ref().unwrap().retry, 2);
        let q = &c.sequences[&"q".parse().unwrap()];
        assert_eq!(q.steps.len(), 2);
        assert_eq!(q.reply, Some(Destination::Broker));
        assert_eq!(c.sinks[&"s".parse().unwrap()].mode, SinkMode::Structured);
        // A trigger needs a subscriber, and a sequence a step.
        let bad: Config = toml::from_str("[triggers.t]\nfilter = {}\n").unwrap();
        assert!(bad.validate().unwrap_err().0.contains("needs a `function`"));
        let bad: Config = toml::from_str("[sequences.q]\nsteps = []\n").unwrap();
        assert!(bad.validate().unwrap_err().0.contains("at least one step"));
    }

    #[test]
    fn unknown_fields_and_bad_values_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sluice.toml");
        std::fs::write(
            &path,
            "[functions.echo]\npath = \"e.wasm\"\ntimeot = \"1s\"\n",
        )
        .unwrap();
        let err = Config::load(&path).unwrap_err().to_string();
        assert!(err.contains("timeot"), "{err}");
        std::fs::write(
            &path,
            "[triggers.t]\nfunction = \"echo\"\nsink = \"ftp://x\"\n",
        )
        .unwrap();
        let err = Config::load(&path).unwrap_err().to_string();
        assert!(err.contains("ftp"), "{err}");
    }
}
