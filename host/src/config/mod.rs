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
//! ```

mod durability;
mod objects;
mod runtime;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub use durability::DurabilityConfig;
pub use objects::{Filter, FunctionSettings, Sink, TriggerSpec};
pub use runtime::RuntimeConfig;

use crate::registry::Name;

/// The whole configuration file.
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Limits and caches of the wasm runtime.
    #[serde(default)]
    pub runtime: RuntimeConfig,
    /// Ingress settings.
    #[serde(default)]
    pub ingress: IngressConfig,
    /// The durable ingress log.
    #[serde(default)]
    pub durability: DurabilityConfig,
    /// The Kafka bridge.
    #[serde(default)]
    pub kafka: crate::kafka::KafkaConfig,
    /// Functions to deploy at start-up, by name.
    #[serde(default)]
    pub functions: BTreeMap<Name, FunctionConfig>,
    /// Triggers, by name.
    #[serde(default)]
    pub triggers: BTreeMap<Name, TriggerSpec>,
}

/// HTTP ingress settings.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IngressConfig {
    /// Largest request body accepted, in bytes (413 past it). Default 1 MiB.
    #[serde(default = "default_max_body_bytes")]
    pub max_body_bytes: usize,
}

impl Default for IngressConfig {
    fn default() -> Self {
        Self {
            max_body_bytes: default_max_body_bytes(),
        }
    }
}

const fn default_max_body_bytes() -> usize {
    1024 * 1024
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
        let mut config: Config = toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        for f in config.functions.values_mut() {
            if f.path.is_relative() {
                f.path = base.join(&f.path);
            }
        }
        config.validate().map_err(|message| ConfigError::Invalid {
            path: path.to_path_buf(),
            message,
        })?;
        Ok(config)
    }

    /// Cross-object checks the schema cannot express.
    fn validate(&self) -> Result<(), String> {
        self.runtime.validate()?;
        self.durability.validate()?;
        self.kafka.validate()?;
        for (name, f) in &self.functions {
            f.settings
                .validate(&self.runtime)
                .map_err(|e| format!("function `{name}`: {e}"))?;
        }
        for (name, t) in &self.triggers {
            t.validate().map_err(|e| format!("trigger `{name}`: {e}"))?;
            if !self.functions.contains_key(&t.function) {
                // Functions may also be deployed through the admin API, so
                // this is only checked again when routing is built.
                tracing::debug!(trigger = %name, function = %t.function, "trigger names a function not in the config file");
            }
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
        assert_eq!(c.triggers[&"all".parse().unwrap()].sink, Some(Sink::Log));
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
