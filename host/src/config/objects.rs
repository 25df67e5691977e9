//! Objects shared by the config file and the admin API.

use super::{invalid, Invalid};
use std::collections::BTreeMap;
use std::time::Duration;

use super::routing::{validate_extensions, DeliverySpec, Destination, Extensions, FilterExpr};
use super::RuntimeConfig;
use crate::event::Event;
use crate::name::Name;

/// Per-function limits and environment. Unset limits use the runtime's
/// defaults.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FunctionSettings {
    /// CPU deadline of one invocation, e.g. `"500ms"`.
    #[serde(
        default,
        with = "humantime_serde",
        skip_serializing_if = "Option::is_none"
    )]
    pub timeout: Option<Duration>,
    /// Memory cap of one instance, in MiB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_mib: Option<u32>,
    /// Most invocations running at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_concurrency: Option<u32>,
    /// Most direct invocations waiting for a slot before `429`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_queue: Option<u32>,
    /// Reuse each instance for up to this many events instead of a fresh
    /// instance per event (faster for heavy guests, but state can leak
    /// between events). Unset or 1: a fresh instance every time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reuse: Option<u32>,
    /// Environment variables the function sees (it sees no others).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
}

impl FunctionSettings {
    /// Check the settings against the runtime's ceilings.
    ///
    /// # Errors
    /// A message naming the bad setting.
    pub fn validate(&self, runtime: &RuntimeConfig) -> Result<(), Invalid> {
        if let Some(m) = self.memory_mib {
            if m == 0 || m > runtime.max_memory_mib {
                return Err(invalid!(
                    "memory_mib must be between 1 and {} (runtime.max_memory_mib)",
                    runtime.max_memory_mib
                ));
            }
        }
        if self.timeout.is_some_and(|t| t.is_zero()) {
            return Err("timeout must be positive".into());
        }
        if self.max_concurrency == Some(0) {
            return Err("max_concurrency must be at least 1".into());
        }
        if self.reuse == Some(0) {
            return Err("reuse must be at least 1".into());
        }
        Ok(())
    }
}

/// Which events a trigger takes: every listed attribute must equal the
/// given value exactly (case-sensitive), and an empty value matches every
/// value of the attribute (Knative's rule), so `tenant = ""` asks only that
/// the event has one. An empty filter takes every event; a filter on an
/// attribute the event lacks does not match.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct Filter {
    /// Attribute name → required value.
    pub attributes: BTreeMap<String, String>,
}

impl Filter {
    /// Whether `event` passes the filter.
    pub fn matches(&self, event: &Event) -> bool {
        self.attributes.iter().all(|(name, want)| {
            event
                .attribute(name)
                .is_some_and(|have| want.is_empty() || &have == want)
        })
    }
}

/// A trigger: events passing its filters go to its subscriber (a function,
/// or any other [`Destination`]), and the subscriber's reply goes to its
/// reply destination (dropped when there is none).
///
/// The original short form `{"filter": {...}, "function": "f", "sink":
/// "http://..."}` is still accepted: `function` is shorthand for
/// `subscriber = { function = "f" }` and `sink` another name for `reply`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TriggerSpec {
    /// Attribute-equality filter (every listed attribute must equal).
    #[serde(default)]
    pub filter: Filter,
    /// Knative filter expressions; every one must pass as well.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub filters: Vec<FilterExpr>,
    /// The function that handles matching events (short form of
    /// `subscriber`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function: Option<Name>,
    /// Where matching events go (when `function` is not given).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subscriber: Option<Destination>,
    /// Where replies go (the short form's name for `reply`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sink: Option<Destination>,
    /// Where replies go.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply: Option<Destination>,
    /// Extension attributes added to what the trigger sends its subscriber.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub extensions: Extensions,
    /// Retries and dead letter for the subscriber.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery: Option<DeliverySpec>,
}

impl TriggerSpec {
    /// A trigger from `filter` to `function` with an optional short-form
    /// reply sink.
    pub fn to_function(filter: Filter, function: Name, sink: Option<Destination>) -> Self {
        Self {
            filter,
            filters: Vec::new(),
            function: Some(function),
            subscriber: None,
            sink,
            reply: None,
            extensions: BTreeMap::new(),
            delivery: None,
        }
    }

    /// Whether `event` passes both filter forms.
    pub fn matches(&self, event: &Event) -> bool {
        self.filter.matches(event) && self.filters.iter().all(|f| f.matches(event))
    }

    /// Where matching events go.
    pub fn subscriber(&self) -> Destination {
        match (&self.function, &self.subscriber) {
            (Some(f), _) => Destination::Function(f.clone()),
            (None, Some(d)) => d.clone(),
            // `validate` refuses this; a log keeps the event visible.
            (None, None) => Destination::Log,
        }
    }

    /// Where replies go, if anywhere.
    pub fn reply_to(&self) -> Option<Destination> {
        self.sink.as_ref().or(self.reply.as_ref()).cloned()
    }

    /// Check the trigger on its own (references are checked by the routing
    /// table).
    ///
    /// # Errors
    /// A message naming the problem.
    pub fn validate(&self) -> Result<(), Invalid> {
        for name in self.filter.attributes.keys() {
            super::routing::validate_attribute_name(name)?;
        }
        self.filters.iter().try_for_each(FilterExpr::validate)?;
        match (&self.function, &self.subscriber) {
            (Some(_), Some(_)) => return Err("give `function` or `subscriber`, not both".into()),
            (None, None) => return Err("a trigger needs a `function` or a `subscriber`".into()),
            (None, Some(Destination::Broker)) => {
                return Err("a subscriber cannot be the broker (it would loop)".into())
            }
            _ => {}
        }
        if self.sink.is_some() && self.reply.is_some() {
            return Err("give `sink` or `reply`, not both".into());
        }
        validate_extensions(&self.extensions)?;
        if let Some(d) = &self.delivery {
            d.validate()?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_filter_semantics() {
        let mut e = Event::new("1", "/s", "t");
        e.extensions.insert(
            "tenant".into(),
            crate::event::ExtensionValue::String("acme".into()),
        );
        let f = |pairs: &[(&str, &str)]| Filter {
            attributes: pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        };
        assert!(f(&[]).matches(&e));
        assert!(f(&[("type", "t")]).matches(&e));
        assert!(f(&[("type", "t"), ("tenant", "acme")]).matches(&e));
        assert!(!f(&[("type", "T")]).matches(&e), "case-sensitive");
        assert!(!f(&[("subject", "")]).matches(&e), "missing attribute");
        // An empty value matches any value of a present attribute.
        assert!(f(&[("type", "t"), ("tenant", "")]).matches(&e));
        assert!(!f(&[("type", "T"), ("tenant", "")]).matches(&e));
    }

    #[test]
    fn destination_strings_parse_and_round_trip() {
        use super::Destination;
        assert_eq!("log".parse::<Destination>(), Ok(Destination::Log));
        assert!(matches!(
            "http://127.0.0.1:9/x".parse::<Destination>(),
            Ok(Destination::Url(_))
        ));
        for s in [
            "broker",
            "log",
            "function:convert",
            "sink:dlq",
            "sequence:q",
            "parallel:p",
            "kafka:out",
            "http://127.0.0.1:9/x",
        ] {
            assert_eq!(s.parse::<Destination>().unwrap().to_string(), s);
        }
        for bad in ["ftp://x", "nonsense", "function:", "function:Bad Name"] {
            let err = bad.parse::<Destination>().unwrap_err().to_string();
            assert!(err.contains(bad), "{err}");
        }
    }
}
