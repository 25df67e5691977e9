//! The routing model shared by `sluice.toml` and the admin API: filter
//! dialects, destinations, delivery options, named sinks, sequences and
//! parallels (Knative Eventing's objects, in one process).

use super::env_destination::EnvDestination;
use super::{invalid, Invalid};
use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use crate::cesql::Filter as Cesql;
use crate::cloudevents::Mode;
use crate::event::{Event, ExtensionValue};
use crate::name::Name;

/// One filter expression in Knative's dialects. An event passes a list of
/// expressions when it passes every one.
///
/// ```toml
/// filters = [
///   { prefix = { type = "dev.sluice.rates" } },
///   { not = { exact = { subject = "TEST" } } },
///   { any = [ { suffix = { source = "/ecb" } }, { exact = { tenant = "acme" } } ] },
///   { cesql = "type LIKE 'dev.sluice.%' AND INT(amount) > 100" },
/// ]
/// ```
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase", deny_unknown_fields)]
pub enum FilterExpr {
    /// Every listed attribute equals the value.
    Exact(BTreeMap<String, String>),
    /// Every listed attribute starts with the value.
    Prefix(BTreeMap<String, String>),
    /// Every listed attribute ends with the value.
    Suffix(BTreeMap<String, String>),
    /// Every sub-expression passes (an empty list passes).
    All(Vec<FilterExpr>),
    /// At least one sub-expression passes (an empty list fails).
    Any(Vec<FilterExpr>),
    /// The sub-expression fails.
    Not(Box<FilterExpr>),
    /// A CloudEvents SQL expression is `true` (an evaluation error or a
    /// value that is not a boolean fails); parsed and checked when read.
    Cesql(Cesql),
}

impl FilterExpr {
    /// Whether `event` passes. Matching is case-sensitive, and a test on an
    /// attribute the event lacks fails.
    pub fn matches(&self, event: &Event) -> bool {
        let each = |m: &BTreeMap<String, String>, test: fn(&str, &str) -> bool| {
            m.iter()
                .all(|(k, want)| event.attribute(k).is_some_and(|have| test(&have, want)))
        };
        match self {
            Self::Exact(m) => each(m, |h, w| h == w),
            Self::Prefix(m) => each(m, |h, w| h.starts_with(w)),
            Self::Suffix(m) => each(m, |h, w| h.ends_with(w)),
            Self::All(v) => v.iter().all(|e| e.matches(event)),
            Self::Any(v) => v.iter().any(|e| e.matches(event)),
            Self::Not(e) => !e.matches(event),
            Self::Cesql(f) => f.matches(event).unwrap_or(false),
        }
    }

    /// Check attribute names (and that `exact`/`prefix`/`suffix` name at
    /// least one attribute).
    ///
    /// # Errors
    /// A message naming the bad attribute.
    pub fn validate(&self) -> Result<(), Invalid> {
        match self {
            Self::Exact(m) | Self::Prefix(m) | Self::Suffix(m) => {
                if m.is_empty() {
                    return Err("an exact/prefix/suffix filter needs at least one attribute".into());
                }
                m.keys().try_for_each(|k| validate_attribute_name(k))
            }
            Self::All(v) | Self::Any(v) => v.iter().try_for_each(FilterExpr::validate),
            Self::Not(e) => e.validate(),
            // Checked when it was read.
            Self::Cesql(_) => Ok(()),
        }
    }
}

/// Check that `name` can name a context attribute or an extension.
///
/// # Errors
/// A message naming the attribute.
pub fn validate_attribute_name(name: &str) -> Result<(), Invalid> {
    let context = matches!(
        name,
        "id" | "source"
            | "type"
            | "specversion"
            | "datacontenttype"
            | "dataschema"
            | "subject"
            | "time"
    );
    if context || crate::event::validate_extension_name(name).is_ok() {
        Ok(())
    } else {
        Err(invalid!(
            "filter attribute `{name}` is not a valid attribute name"
        ))
    }
}

/// Extension attributes added to every event a trigger, sink or step sends
/// (Knative's `ceOverrides`). Values are strings.
pub type Extensions = BTreeMap<String, String>;

/// Check extension names.
///
/// # Errors
/// A message naming the bad extension.
pub fn validate_extensions(o: &Extensions) -> Result<(), Invalid> {
    for k in o.keys() {
        crate::event::validate_extension_name(k)
            .map_err(|_| format!("extension `{k}` is not a valid extension name"))?;
    }
    Ok(())
}

/// Set `extensions` on `event`.
pub fn apply_extensions(event: &mut Event, extensions: &Extensions) {
    for (k, v) in extensions {
        event
            .extensions
            .insert(k.clone(), ExtensionValue::String(v.clone()));
    }
}

/// Where an event goes: a subscriber, a reply destination, a dead letter or
/// a sequence step.
///
/// Written as a string (`"log"`, `"broker"`, an `http(s)://` URL, or `KIND:NAME`
/// such as `"function:f"`, `"kafka:out"` and `"env:K_SINK"`) or a
/// table with one key: `{ function = "f" }`, `{ sink = "s" }`,
/// `{ url = "http://..." }`, `{ sequence = "q" }`, `{ parallel = "p" }`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Destination {
    /// Run this function in-process; its result is the reply.
    Function(Name),
    /// POST the event (binary mode) to an external service; a CloudEvent in
    /// its 2xx response is the reply.
    Url(url::Url),
    /// A named sink (see [`SinkSpec`]); sinks never reply.
    Sink(Name),
    /// Run a named sequence; without a reply destination of its own, its
    /// last reply is the reply.
    Sequence(Name),
    /// Run a named parallel; its branches route their own replies.
    Parallel(Name),
    /// Route the event again through the broker (hop counter decremented).
    Broker,
    /// Write it to the host log.
    Log,
    /// Produce it to a Kafka sink declared under `[kafka.sinks.NAME]`.
    Kafka(Name),
    /// POST it (binary mode, like [`Destination::Url`]) to the URL an
    /// environment variable held when this was parsed (`env:K_SINK`, as
    /// Knative's SinkBinding injects it), with `K_CE_OVERRIDES`'
    /// extensions added.
    Env(Box<EnvDestination>),
}

/// A destination string or table that is not one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidDestination(String);

impl From<InvalidDestination> for Invalid {
    fn from(e: InvalidDestination) -> Self {
        Self(e.0)
    }
}

impl FromStr for Destination {
    type Err = InvalidDestination;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse_str(s)
    }
}

impl Destination {
    /// Parse the string form: `log`, `broker`, an `http(s)://` URL, or
    /// `KIND:NAME` for `function`, `sink`, `sequence`, `parallel`, `kafka`
    /// and `env` (resolved here, see [`EnvDestination`]) (what [`Destination`]'s `Display` writes).
    fn parse_str(s: &str) -> Result<Self, InvalidDestination> {
        match s {
            "log" => return Ok(Self::Log),
            "broker" => return Ok(Self::Broker),
            _ => {}
        }
        if let Some((kind, name)) = s.split_once(':') {
            let named = |f: fn(Name) -> Self| {
                name.parse::<Name>()
                    .map(f)
                    .map_err(|e| InvalidDestination(format!("invalid destination `{s}`: {e}")))
            };
            match kind {
                "function" => return named(Self::Function),
                "sink" => return named(Self::Sink),
                "sequence" => return named(Self::Sequence),
                "parallel" => return named(Self::Parallel),
                "kafka" => return named(Self::Kafka),
                "env" => {
                    return EnvDestination::resolve(name)
                        .map(|e| Self::Env(Box::new(e)))
                        .map_err(|e| InvalidDestination(e.to_string()))
                }
                _ => {}
            }
        }
        parse_http_url(s).map(Self::Url)
    }

    fn from_value(v: serde_json::Value) -> Result<Self, InvalidDestination> {
        let bad = |m: String| InvalidDestination(m);
        let map = match v {
            serde_json::Value::String(s) => return Self::parse_str(&s),
            serde_json::Value::Object(m) => m,
            other => {
                return Err(bad(format!(
                    "a destination is a string or a table, not `{other}`"
                )))
            }
        };
        let mut it = map.into_iter();
        let (Some((key, value)), None) = (it.next(), it.next()) else {
            return Err(bad("a destination table has exactly one key: function, url, sink, sequence, parallel or kafka".into()));
        };
        let text = value
            .as_str()
            .ok_or_else(|| bad(format!("destination `{key}` must be a string")))?;
        let name = || text.parse::<Name>().map_err(|e| bad(e.to_string()));
        Ok(match key.as_str() {
            "function" => Self::Function(name()?),
            "sink" => Self::Sink(name()?),
            "sequence" => Self::Sequence(name()?),
            "parallel" => Self::Parallel(name()?),
            "url" => Self::Url(parse_http_url(text)?),
            "kafka" => Self::Kafka(name()?),
            other => {
                return Err(bad(format!(
                "unknown destination kind `{other}`: use function, url, sink, sequence, parallel or kafka"
            )))
            }
        })
    }

    /// A short label, e.g. `function:echo`, for logs and dead-letter
    /// extensions.
    pub fn label(&self) -> String {
        self.to_string()
    }
}

fn parse_http_url(s: &str) -> Result<url::Url, InvalidDestination> {
    match url::Url::parse(s) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => Ok(u),
        _ => Err(InvalidDestination(format!(
            "invalid destination `{s}`: use an http:// or https:// URL, `log`, `broker`, `KIND:NAME` (function, sink, sequence, parallel, kafka, env) or a table like {{ function = \"name\" }}"
        ))),
    }
}

impl fmt::Display for Destination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Function(n) => write!(f, "function:{n}"),
            Self::Url(u) => f.write_str(u.as_str()),
            Self::Sink(n) => write!(f, "sink:{n}"),
            Self::Sequence(n) => write!(f, "sequence:{n}"),
            Self::Parallel(n) => write!(f, "parallel:{n}"),
            Self::Broker => f.write_str("broker"),
            Self::Log => f.write_str("log"),
            Self::Kafka(n) => write!(f, "kafka:{n}"),
            Self::Env(e) => fmt::Display::fmt(e, f),
        }
    }
}

impl serde::Serialize for Destination {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let (key, value) = match self {
            Self::Url(u) => return s.serialize_str(u.as_str()),
            Self::Broker => return s.serialize_str("broker"),
            Self::Log => return s.serialize_str("log"),
            Self::Env(e) => return s.serialize_str(&e.to_string()),
            Self::Function(n) => ("function", n),
            Self::Sink(n) => ("sink", n),
            Self::Sequence(n) => ("sequence", n),
            Self::Parallel(n) => ("parallel", n),
            Self::Kafka(n) => ("kafka", n),
        };
        let mut m = s.serialize_map(Some(1))?;
        m.serialize_entry(key, value.as_str())?;
        m.end()
    }
}

impl<'de> serde::Deserialize<'de> for Destination {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = serde_json::Value::deserialize(d)?;
        Self::from_value(v).map_err(serde::de::Error::custom)
    }
}

/// How retries are spaced.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backoff {
    /// Retry n waits `backoff_delay * n`.
    Linear,
    /// Retry n waits `backoff_delay * 2^(n-1)`.
    #[default]
    Exponential,
}

/// Knative's delivery options, for a trigger, a sink, a sequence step or a
/// parallel branch.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeliverySpec {
    /// Retries after the first attempt (default 0).
    #[serde(default)]
    pub retry: u32,
    /// How retries are spaced (default exponential).
    #[serde(default)]
    pub backoff: Backoff,
    /// The base delay of the backoff (default 200ms).
    #[serde(default = "default_backoff_delay", with = "humantime_serde")]
    pub backoff_delay: Duration,
    /// The longest wait before a retry (default 5m): the backoff grows up
    /// to it and then stays there (Knative's backoff cap).
    #[serde(default = "default_backoff_max", with = "humantime_serde")]
    pub backoff_max: Duration,
    /// Deadline of one attempt (default: 30s for HTTP, the function's own
    /// timeout for functions).
    #[serde(
        default,
        with = "humantime_serde",
        skip_serializing_if = "Option::is_none"
    )]
    pub timeout: Option<Duration>,
    /// Longest `Retry-After` honoured on a 429 or 503 (default 30s).
    #[serde(default = "default_retry_after_max", with = "humantime_serde")]
    pub retry_after_max: Duration,
    /// Where an event goes once its retries are exhausted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dead_letter: Option<Destination>,
}

fn default_backoff_delay() -> Duration {
    Duration::from_millis(200)
}

fn default_retry_after_max() -> Duration {
    Duration::from_secs(30)
}

fn default_backoff_max() -> Duration {
    DEFAULT_BACKOFF_MAX
}

/// The default [`DeliverySpec::backoff_max`]: 5 minutes.
pub const DEFAULT_BACKOFF_MAX: Duration = Duration::from_secs(5 * 60);

impl Default for DeliverySpec {
    fn default() -> Self {
        Self {
            retry: 0,
            backoff: Backoff::default(),
            backoff_delay: default_backoff_delay(),
            backoff_max: default_backoff_max(),
            timeout: None,
            retry_after_max: default_retry_after_max(),
            dead_letter: None,
        }
    }
}

/// Most retries accepted, so a typo cannot make an event retry for days.
pub const MAX_RETRIES: u32 = 100;

impl DeliverySpec {
    /// How long to wait before retry number `n` (1-based), before any
    /// `Retry-After`: the backoff's schedule, never longer than
    /// [`DeliverySpec::backoff_max`].
    pub fn delay(&self, n: u32) -> Duration {
        let scheduled = match self.backoff {
            Backoff::Linear => self.backoff_delay.saturating_mul(n),
            Backoff::Exponential => self
                .backoff_delay
                .saturating_mul(2u32.saturating_pow(n.saturating_sub(1))),
        };
        scheduled.min(self.backoff_max)
    }

    /// Check the numbers.
    ///
    /// # Errors
    /// A message naming the bad option.
    pub fn validate(&self) -> Result<(), Invalid> {
        if self.retry > MAX_RETRIES {
            return Err(invalid!("retry must be at most {MAX_RETRIES}"));
        }
        if self.timeout.is_some_and(|t| t.is_zero()) {
            return Err("delivery timeout must be positive".into());
        }
        if self.backoff_max.is_zero() {
            return Err("backoff_max must be positive".into());
        }
        if self.dead_letter == Some(Destination::Broker) {
            return Err("a dead letter cannot be the broker (it could loop)".into());
        }
        Ok(())
    }
}

/// How a named HTTP sink encodes events.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SinkMode {
    /// Attributes in `ce-` headers (default).
    #[default]
    Binary,
    /// One JSON document.
    Structured,
}

impl From<SinkMode> for Mode {
    fn from(m: SinkMode) -> Self {
        match m {
            SinkMode::Binary => Mode::Binary,
            SinkMode::Structured => Mode::Structured,
        }
    }
}

/// What kind of sink.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SinkKind {
    /// POST to `url`.
    #[default]
    Http,
    /// Write to the host log.
    Log,
}

/// A named, reusable sink.
///
/// ```toml
/// [sinks.ledger]
/// url = "http://127.0.0.1:9000/"
/// mode = "structured"
/// headers = { authorization = "Bearer x" }
/// extensions = { pipeline = "rates" }
/// delivery = { retry = 3, backoff_delay = "100ms", dead_letter = { sink = "dlq" } }
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SinkSpec {
    /// `http` (default) or `log`.
    #[serde(default, rename = "type")]
    pub kind: SinkKind,
    /// Where an HTTP sink posts; required for `http`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<url::Url>,
    /// Content mode of an HTTP sink.
    #[serde(default)]
    pub mode: SinkMode,
    /// Extra request headers.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// Extension attributes added to every event sent.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub extensions: Extensions,
    /// Retries and dead letter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery: Option<DeliverySpec>,
}

impl SinkSpec {
    /// Check the sink on its own.
    ///
    /// # Errors
    /// A message naming the problem.
    pub fn validate(&self) -> Result<(), Invalid> {
        match (self.kind, &self.url) {
            (SinkKind::Http, None) => return Err("an http sink needs a `url`".into()),
            (SinkKind::Http, Some(u)) => {
                parse_http_url(u.as_str())?;
            }
            (SinkKind::Log, Some(_)) => return Err("a log sink takes no `url`".into()),
            (SinkKind::Log, None) => {}
        }
        for (k, v) in &self.headers {
            http::HeaderName::try_from(k.as_str())
                .map_err(|_| format!("header name `{k}` is invalid"))?;
            http::HeaderValue::try_from(v.as_str())
                .map_err(|_| format!("header `{k}` has an invalid value"))?;
        }
        validate_extensions(&self.extensions)?;
        if let Some(d) = &self.delivery {
            d.validate()?;
        }
        Ok(())
    }
}

/// One step of a sequence: a destination plus its delivery options.
///
/// ```toml
/// steps = [{ function = "enrich" }, { url = "http://...", delivery = { retry = 2 } }]
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// Where the step sends the event.
    pub to: Destination,
    /// Retries and dead letter of this step.
    pub delivery: Option<DeliverySpec>,
}

impl serde::Serialize for Step {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut v = serde_json::to_value(&self.to).map_err(serde::ser::Error::custom)?;
        if let Some(d) = &self.delivery {
            let d = serde_json::to_value(d).map_err(serde::ser::Error::custom)?;
            v = match v {
                serde_json::Value::Object(mut m) => {
                    m.insert("delivery".into(), d);
                    serde_json::Value::Object(m)
                }
                serde_json::Value::String(u) => {
                    serde_json::json!({ "url": u, "delivery": d })
                }
                other => other,
            };
        }
        v.serialize(s)
    }
}

impl<'de> serde::Deserialize<'de> for Step {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let mut v = serde_json::Value::deserialize(d)?;
        let delivery = match v.as_object_mut().and_then(|m| m.remove("delivery")) {
            Some(d) => Some(serde_json::from_value(d).map_err(D::Error::custom)?),
            None => None,
        };
        if let serde_json::Value::Object(m) = &mut v {
            if let Some(u) = m.get("url").cloned() {
                if m.len() == 1 {
                    v = u;
                }
            }
        }
        let to = Destination::from_value(v).map_err(D::Error::custom)?;
        Ok(Self { to, delivery })
    }
}

/// An ordered chain: step i's reply is step i+1's input; a step that
/// returns no event ends the chain; the last reply goes to `reply`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SequenceSpec {
    /// The steps, in order (at least one).
    pub steps: Vec<Step>,
    /// Where the last reply goes; without one, it is the sequence's reply
    /// to whoever called it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply: Option<Destination>,
}

/// One branch of a parallel.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Branch {
    /// Knative filter expressions; every one must pass (none: every event).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub filters: Vec<FilterExpr>,
    /// Where the branch sends the event.
    pub subscriber: Destination,
    /// Where the subscriber's reply goes (default: the parallel's `reply`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply: Option<Destination>,
    /// Retries and dead letter of this branch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery: Option<DeliverySpec>,
}

/// Fan-out: the event goes to every branch whose filters pass.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParallelSpec {
    /// The branches (at least one).
    pub branches: Vec<Branch>,
    /// Where replies of branches without their own `reply` go.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply: Option<Destination>,
}

impl SequenceSpec {
    /// Check the sequence on its own (references are checked by the
    /// routing table).
    ///
    /// # Errors
    /// A message naming the problem.
    pub fn validate(&self) -> Result<(), Invalid> {
        if self.steps.is_empty() {
            return Err("a sequence needs at least one step".into());
        }
        for (i, s) in self.steps.iter().enumerate() {
            if s.to == Destination::Broker {
                return Err(invalid!("step {i}: a step cannot be the broker"));
            }
            if let Some(d) = &s.delivery {
                d.validate().map_err(|e| format!("step {i}: {e}"))?;
            }
        }
        Ok(())
    }
}

impl ParallelSpec {
    /// Check the parallel on its own.
    ///
    /// # Errors
    /// A message naming the problem.
    pub fn validate(&self) -> Result<(), Invalid> {
        if self.branches.is_empty() {
            return Err("a parallel needs at least one branch".into());
        }
        for (i, b) in self.branches.iter().enumerate() {
            let e = |m: Invalid| invalid!("branch {i}: {m}");
            b.filters
                .iter()
                .try_for_each(FilterExpr::validate)
                .map_err(e)?;
            if b.subscriber == Destination::Broker {
                return Err(e("a subscriber cannot be the broker".into()));
            }
            if let Some(d) = &b.delivery {
                d.validate().map_err(e)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event() -> Event {
        let mut e = Event::new(
            "id-1",
            "https://ecb.example/rates",
            "dev.sluice.rates.daily",
        );
        e.subject = Some("EUR/USD".into());
        e.extensions
            .insert("tenant".into(), ExtensionValue::String("acme".into()));
        e.extensions
            .insert("priority".into(), ExtensionValue::Integer(3));
        e
    }

    fn f(json: serde_json::Value) -> FilterExpr {
        let f: FilterExpr = serde_json::from_value(json).unwrap();
        f.validate().unwrap();
        f
    }

    #[test]
    fn every_dialect_and_combination() {
        use serde_json::json;
        let e = event();
        let table = [
            (json!({"exact": {"type": "dev.sluice.rates.daily"}}), true),
            (json!({"exact": {"type": "dev.sluice.rates.DAILY"}}), false),
            (json!({"exact": {"type": "dev.sluice.rates"}}), false),
            (json!({"exact": {"tenant": "acme"}}), true),
            (json!({"exact": {"priority": "3"}}), true),
            (json!({"exact": {"missing": ""}}), false),
            (
                json!({"exact": {"tenant": "acme", "subject": "EUR/USD"}}),
                true,
            ),
            (
                json!({"exact": {"tenant": "acme", "subject": "EUR/GBP"}}),
                false,
            ),
            (json!({"prefix": {"type": "dev.sluice."}}), true),
            (json!({"prefix": {"type": "Dev.sluice."}}), false),
            (json!({"prefix": {"tenant": "ac"}}), true),
            (json!({"prefix": {"dataschema": ""}}), false),
            (json!({"prefix": {"subject": "EUR/"}}), true),
            (json!({"suffix": {"source": "/rates"}}), true),
            (json!({"suffix": {"source": "/RATES"}}), false),
            (json!({"suffix": {"tenant": "me"}}), true),
            (json!({"suffix": {"missing": ""}}), false),
            (json!({"all": []}), true),
            (
                json!({"all": [{"prefix": {"type": "dev."}}, {"suffix": {"type": ".daily"}}]}),
                true,
            ),
            (
                json!({"all": [{"prefix": {"type": "dev."}}, {"suffix": {"type": ".weekly"}}]}),
                false,
            ),
            (json!({"any": []}), false),
            (
                json!({"any": [{"exact": {"tenant": "x"}}, {"exact": {"tenant": "acme"}}]}),
                true,
            ),
            (
                json!({"any": [{"exact": {"tenant": "x"}}, {"exact": {"tenant": "y"}}]}),
                false,
            ),
            (json!({"not": {"exact": {"tenant": "acme"}}}), false),
            (json!({"not": {"exact": {"tenant": "x"}}}), true),
            (json!({"not": {"exact": {"missing": "x"}}}), true),
            (json!({"not": {"not": {"prefix": {"id": "id-"}}}}), true),
            (
                json!({"all": [{"any": [{"exact": {"subject": "EUR/USD"}}, {"exact": {"subject": "GBP/USD"}}]}, {"not": {"suffix": {"type": ".test"}}}]}),
                true,
            ),
            (
                json!({"any": [{"all": [{"exact": {"tenant": "acme"}}, {"exact": {"priority": "4"}}]}, {"not": {"prefix": {"source": "https://"}}}]}),
                false,
            ),
        ];
        for (json, want) in table {
            assert_eq!(f(json.clone()).matches(&e), want, "{json}");
        }
    }

    #[test]
    fn bad_filters_are_refused() {
        use serde_json::json;
        assert!(serde_json::from_value::<FilterExpr>(json!({"prefx": {"type": "x"}})).is_err());
        assert!(serde_json::from_value::<FilterExpr>(json!({"exact": "x"})).is_err());
        let bad: FilterExpr = serde_json::from_value(json!({"exact": {"Bad-Name": "x"}})).unwrap();
        assert!(bad.validate().is_err());
        let empty: FilterExpr = serde_json::from_value(json!({"not": {"prefix": {}}})).unwrap();
        assert!(empty.validate().is_err());
    }

    #[test]
    fn destinations_parse_in_both_forms_and_round_trip() {
        use serde_json::json;
        let cases = [
            (json!("log"), Destination::Log),
            (json!("broker"), Destination::Broker),
            (
                json!("http://127.0.0.1:9/x"),
                Destination::Url("http://127.0.0.1:9/x".parse().unwrap()),
            ),
            (
                json!({"function": "f"}),
                Destination::Function("f".parse().unwrap()),
            ),
            (
                json!({"sink": "s"}),
                Destination::Sink("s".parse().unwrap()),
            ),
            (
                json!({"sequence": "q"}),
                Destination::Sequence("q".parse().unwrap()),
            ),
            (
                json!({"parallel": "p"}),
                Destination::Parallel("p".parse().unwrap()),
            ),
        ];
        for (json, want) in cases {
            let d: Destination = serde_json::from_value(json.clone()).unwrap();
            assert_eq!(d, want);
            let back: Destination =
                serde_json::from_value(serde_json::to_value(&d).unwrap()).unwrap();
            assert_eq!(back, want);
        }
        for bad in [
            json!("ftp://x"),
            json!({"function": "Bad Name"}),
            json!({"queue": "x"}),
            json!({"function": "a", "sink": "b"}),
            json!(3),
        ] {
            assert!(
                serde_json::from_value::<Destination>(bad.clone()).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn backoff_schedules() {
        let mut d = DeliverySpec {
            backoff_delay: Duration::from_millis(100),
            ..DeliverySpec::default()
        };
        let ms = |d: &DeliverySpec| (1..=4).map(|n| d.delay(n).as_millis()).collect::<Vec<_>>();
        assert_eq!(ms(&d), [100, 200, 400, 800]);
        d.backoff = Backoff::Linear;
        assert_eq!(ms(&d), [100, 200, 300, 400]);
    }

    #[test]
    fn backoff_never_waits_past_its_cap() {
        let ms = |d: &DeliverySpec| (1..=20).map(|n| d.delay(n).as_millis()).collect::<Vec<_>>();
        // retry = 20 with the default delay: 0.2 s doubling reaches the
        // default 5 minute cap at retry 12 and stays there (uncapped, the
        // last wait alone would be 0.2 s * 2^19, about 29 hours).
        let d = DeliverySpec {
            retry: 20,
            ..DeliverySpec::default()
        };
        assert_eq!(d.validate(), Ok(()));
        let waits = ms(&d);
        assert_eq!(waits[..4], [200, 400, 800, 1600]);
        assert_eq!(waits[10], 204_800);
        assert!(waits[11..].iter().all(|&w| w == 300_000), "{waits:?}");
        let total: u128 = waits.iter().sum();
        assert!(total <= 20 * 300_000, "{total}");
        // Linear and a smaller cap; a base delay above the cap is clamped.
        let d = DeliverySpec {
            backoff: Backoff::Linear,
            backoff_delay: Duration::from_secs(1),
            backoff_max: Duration::from_secs(3),
            ..DeliverySpec::default()
        };
        assert_eq!(ms(&d)[..5], [1000, 2000, 3000, 3000, 3000]);
        let d = DeliverySpec {
            backoff_delay: Duration::from_secs(600),
            ..DeliverySpec::default()
        };
        assert_eq!(d.delay(1), DEFAULT_BACKOFF_MAX);
        // The most retries with the longest schedule never overflow.
        let d = DeliverySpec {
            retry: MAX_RETRIES,
            backoff_delay: Duration::from_secs(u64::MAX / 4),
            ..DeliverySpec::default()
        };
        assert_eq!(d.delay(MAX_RETRIES), DEFAULT_BACKOFF_MAX);
    }

    #[test]
    fn backoff_max_parses_and_is_checked() {
        let d: DeliverySpec = toml::from_str("retry = 3\nbackoff_max = \"2s\"").unwrap();
        assert_eq!(d.backoff_max, Duration::from_secs(2));
        let back: DeliverySpec = serde_json::from_value(serde_json::to_value(&d).unwrap()).unwrap();
        assert_eq!(back, d);
        let d: DeliverySpec = toml::from_str("retry = 3").unwrap();
        assert_eq!(d.backoff_max, DEFAULT_BACKOFF_MAX);
        let zero: DeliverySpec = toml::from_str("backoff_max = \"0s\"").unwrap();
        assert!(zero.validate().unwrap_err().0.contains("backoff_max"));
    }

    #[test]
    fn steps_carry_their_delivery() {
        let s: Step = toml::from_str(
            "function = \"f\"\ndelivery = { retry = 2, backoff = \"linear\", backoff_delay = \"10ms\" }",
        )
        .unwrap();
        assert_eq!(s.to, Destination::Function("f".parse().unwrap()));
        assert_eq!(s.delivery.as_ref().unwrap().retry, 2);
        let u: Step = toml::from_str("url = \"http://127.0.0.1:1/\"").unwrap();
        assert!(matches!(u.to, Destination::Url(_)));
        let back: Step = serde_json::from_value(serde_json::to_value(&s).unwrap()).unwrap();
        assert_eq!(back, s);
    }

    #[test]
    fn sinks_validate() {
        let ok: SinkSpec = toml::from_str(
            "url = \"http://127.0.0.1:1/\"\nmode = \"structured\"\nheaders = { x-key = \"v\" }",
        )
        .unwrap();
        assert_eq!(ok.validate(), Ok(()));
        let log: SinkSpec = toml::from_str("type = \"log\"").unwrap();
        assert_eq!(log.validate(), Ok(()));
        let no_url = SinkSpec::default();
        assert!(no_url.validate().is_err());
        let bad_ext: SinkSpec =
            toml::from_str("type = \"log\"\nextensions = { Bad = \"x\" }").unwrap();
        assert!(bad_ext.validate().is_err());
    }
}
