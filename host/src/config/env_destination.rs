//! `env:NAME` destinations: the URL an environment variable holds, as
//! Knative's SinkBinding injects it into its subject (`K_SINK`), with the
//! extensions of `K_CE_OVERRIDES` added to every event sent there.

use std::fmt;

use super::routing::{validate_extensions, Extensions};

/// The variable Knative's SinkBinding fills with `{"extensions": {...}}`.
pub const CE_OVERRIDES: &str = "K_CE_OVERRIDES";

/// The variable Knative's SinkBinding fills with the sink's CA certificates
/// (PEM), trusted for `env:` destinations.
pub const CA_CERTS: &str = "K_CA_CERTS";

/// An `env:NAME` destination, resolved once when it is parsed (at start
/// for the config file, when it is sent for admin API objects).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EnvDestination {
    /// The variable's name, e.g. `K_SINK`.
    pub var: String,
    /// The absolute http(s) URL it held.
    pub url: url::Url,
    /// The extensions of `K_CE_OVERRIDES`, added to every event sent here.
    pub extensions: Extensions,
}

impl fmt::Display for EnvDestination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "env:{}", self.var)
    }
}

/// Why an `env:NAME` destination cannot be resolved; each names the variable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvDestinationError {
    /// `NAME` is not an environment variable name.
    #[error("invalid destination `env:{0}`: an environment variable name is letters, digits and `_`, not starting with a digit")]
    BadName(String),
    /// The variable is not set (or not Unicode).
    #[error("destination `env:{0}`: the environment variable {0} is not set")]
    Missing(String),
    /// The variable holds something other than an absolute http(s) URL.
    #[error("destination `env:{var}`: the environment variable {var} holds `{value}`, not an absolute http:// or https:// URL")]
    NotUrl {
        /// The variable.
        var: String,
        /// What it holds.
        value: String,
    },
    /// `K_CE_OVERRIDES` is not `{"extensions": {"name": "value", ...}}`.
    #[error("the environment variable K_CE_OVERRIDES is not {{\"extensions\": {{\"name\": \"value\", ...}}}}: {0}")]
    BadOverrides(String),
}

/// Knative's `K_CE_OVERRIDES` document.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Overrides {
    #[serde(default)]
    extensions: Extensions,
}

impl EnvDestination {
    /// Resolve `env:var` against the process environment.
    ///
    /// # Errors
    /// A bad name, a missing variable, a value that is not an http(s) URL,
    /// or an invalid `K_CE_OVERRIDES`.
    pub fn resolve(var: &str) -> Result<Self, EnvDestinationError> {
        Self::resolve_with(var, |k| std::env::var(k).ok())
    }

    /// [`EnvDestination::resolve`] with `lookup` as the environment.
    fn resolve_with(
        var: &str,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, EnvDestinationError> {
        let valid = var.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            && var.chars().next().is_some_and(|c| !c.is_ascii_digit());
        if !valid {
            return Err(EnvDestinationError::BadName(var.to_owned()));
        }
        let value = lookup(var).ok_or_else(|| EnvDestinationError::Missing(var.to_owned()))?;
        let url = match url::Url::parse(&value) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => u,
            _ => {
                return Err(EnvDestinationError::NotUrl {
                    var: var.to_owned(),
                    value,
                })
            }
        };
        let extensions = match lookup(CE_OVERRIDES) {
            None => Extensions::new(),
            Some(text) => {
                let o: Overrides = serde_json::from_str(&text)
                    .map_err(|e| EnvDestinationError::BadOverrides(e.to_string()))?;
                validate_extensions(&o.extensions)
                    .map_err(|e| EnvDestinationError::BadOverrides(e.to_string()))?;
                o.extensions
            }
        };
        Ok(Self {
            var: var.to_owned(),
            url,
            extensions,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::{EnvDestination, EnvDestinationError};

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |k| {
            vars.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    #[test]
    fn resolves_the_url_and_the_overrides() {
        let d = EnvDestination::resolve_with(
            "K_SINK",
            env(&[
                ("K_SINK", "http://sink.default.svc/x"),
                ("K_CE_OVERRIDES", r#"{"extensions":{"team":"a"}}"#),
            ]),
        )
        .unwrap();
        assert_eq!(d.url.as_str(), "http://sink.default.svc/x");
        assert_eq!(d.extensions.get("team").map(String::as_str), Some("a"));
        assert_eq!(d.to_string(), "env:K_SINK");
    }

    #[test]
    fn refusals_name_the_variable() {
        let missing = EnvDestination::resolve_with("K_SINK", env(&[])).unwrap_err();
        assert_eq!(missing, EnvDestinationError::Missing("K_SINK".into()));
        assert!(missing.to_string().contains("K_SINK"));
        let relative = EnvDestination::resolve_with("K_SINK", env(&[("K_SINK", "/x")]));
        assert!(matches!(relative, Err(EnvDestinationError::NotUrl { .. })));
        let ftp = EnvDestination::resolve_with("K_SINK", env(&[("K_SINK", "ftp://h/x")]));
        assert!(matches!(ftp, Err(EnvDestinationError::NotUrl { .. })));
        for bad in ["", "1X", "A-B"] {
            assert!(matches!(
                EnvDestination::resolve_with(bad, env(&[])),
                Err(EnvDestinationError::BadName(_))
            ));
        }
        for o in ["{", r#"{"extensions":{"Bad-Name":"v"}}"#, r#"{"ext":{}}"#] {
            let r = EnvDestination::resolve_with(
                "K_SINK",
                env(&[("K_SINK", "http://h/"), ("K_CE_OVERRIDES", o)]),
            );
            let e = r.unwrap_err();
            assert!(matches!(e, EnvDestinationError::BadOverrides(_)), "{o}");
            assert!(e.to_string().contains("K_CE_OVERRIDES"));
        }
    }
}
