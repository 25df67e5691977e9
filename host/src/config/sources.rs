//! The `[sources.NAME]` sections of `sluice.toml`: what a source produces,
//! when, and where its events go.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use base64::Engine as _;

use super::schedule::{Schedule, ScheduleError};
use super::{AllowList, BadEntry, DeliverySpec, Destination};
use crate::event::validate_extension_name;

/// Why a `[sources.NAME]` section cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    /// `schedule` or `timezone` is invalid.
    #[error(transparent)]
    Schedule(#[from] ScheduleError),
    /// An `extensions` key is not an extension attribute name.
    #[error("extensions: {0}")]
    Override(crate::event::InvalidEvent),
    /// `delivery` is invalid.
    #[error("delivery: {0}")]
    Delivery(String),
    /// A source bound to the broker declares delivery options.
    #[error(
        "delivery: a source bound to the broker has no delivery of its own; \
         set delivery options on the triggers that route its events"
    )]
    DeliveryToBroker,
    /// Both `data` and `data_base64` are set.
    #[error("set `data` or `data_base64`, not both")]
    BothData,
    /// `data` cannot be encoded as JSON.
    #[error("data: {0}")]
    Json(serde_json::Error),
    /// `data_base64` does not decode.
    #[error("data_base64 is not valid base64: {0}")]
    Base64(base64::DecodeError),
    /// An `allowed_outbound_hosts` entry is invalid.
    #[error("allowed_outbound_hosts: {0}")]
    Outbound(#[from] BadEntry),
    /// `timeout` is zero.
    #[error("timeout must be positive")]
    ZeroTimeout,
    /// `memory_mib` is zero.
    #[error("memory_mib must be positive")]
    ZeroMemory,
}

/// One declared source: a `kind` and its settings.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum SourceSpec {
    /// Emits a fixed event on a cron schedule.
    Ping(PingSpec),
    /// Runs a source function on a cron schedule and emits what it returns.
    Function(FunctionSourceSpec),
}

/// A ping source (`kind = "ping"`): each tick of `schedule` emits one event
/// of type `crate::sources::ping::PING_TYPE` carrying the configured payload.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PingSpec {
    /// Cron expression, 5 fields or 6 with leading seconds, e.g.
    /// `"*/10 * * * * *"` (every ten seconds).
    pub schedule: String,
    /// IANA time zone the schedule is read in, e.g. `"Europe/Berlin"`.
    /// Default UTC.
    #[serde(default)]
    pub timezone: Option<String>,
    /// Payload: a TOML string is sent as text, any other value as JSON.
    #[serde(default)]
    pub data: Option<serde_json::Value>,
    /// Payload as base64 (for binary data); excludes `data`.
    #[serde(default)]
    pub data_base64: Option<String>,
    /// `datacontenttype`; default `text/plain` for string data,
    /// `application/json` for other `data`, none for `data_base64`.
    #[serde(default)]
    pub content_type: Option<String>,
    /// Where the events go: `"broker"` (the host's routing, like an event
    /// POSTed to the ingress), or any other [`Destination`] (a function,
    /// whose reply is dropped; a URL, `log`, `kafka:NAME`, a named sink,
    /// sequence or parallel).
    pub sink: Destination,
    /// Fire the last tick missed while the host was down once, right after
    /// start-up (older missed ticks are skipped). Default false: missed
    /// ticks are not replayed.
    #[serde(default)]
    pub catch_up: bool,
    /// Extension attributes added to every event (as a trigger's
    /// `extensions`; `overrides`, Knative's `ceOverrides`, is accepted too).
    #[serde(default, alias = "overrides")]
    pub extensions: BTreeMap<String, String>,
    /// Retries, backoff, timeout and dead letter of each event's delivery
    /// to `sink` (as for a trigger); default one attempt.
    #[serde(default)]
    pub delivery: Option<DeliverySpec>,
}

/// A source function binding (`kind = "function"`).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FunctionSourceSpec {
    /// The component file (world `sluice:handler/source`), relative to the
    /// config file.
    pub path: PathBuf,
    /// Cron expression, as for ping sources.
    pub schedule: String,
    /// IANA time zone of the schedule. Default UTC.
    #[serde(default)]
    pub timezone: Option<String>,
    /// Where the events go: `"broker"` (the host's routing, like an event
    /// POSTed to the ingress), or any other [`Destination`] (a function,
    /// whose reply is dropped; a URL, `log`, `kafka:NAME`, a named sink,
    /// sequence or parallel).
    pub sink: Destination,
    /// Fire the last tick missed while the host was down once, right after
    /// start-up (older missed ticks are skipped). Default false: missed
    /// ticks are not replayed.
    #[serde(default)]
    pub catch_up: bool,
    /// Extension attributes set on every event the function returns
    /// (overwriting the function's own values of the same name; alias
    /// `overrides`).
    #[serde(default, alias = "overrides")]
    pub extensions: BTreeMap<String, String>,
    /// Retries, backoff, timeout and dead letter of each event's delivery
    /// to `sink`, as for a ping source.
    #[serde(default)]
    pub delivery: Option<DeliverySpec>,
    /// Read-only values handed to every run.
    #[serde(default)]
    pub config: BTreeMap<String, String>,
    /// Hosts the function may reach with `wasi:http`, as `host` (any port)
    /// or `host:port`; `"*"` allows every host. Default none.
    #[serde(default)]
    pub allowed_outbound_hosts: Vec<String>,
    /// CPU deadline of one run; default the runtime's `default_timeout`.
    #[serde(default, with = "humantime_serde")]
    pub timeout: Option<Duration>,
    /// Memory cap of one run, in MiB; default the runtime's.
    #[serde(default)]
    pub memory_mib: Option<u32>,
}

impl SourceSpec {
    /// The cron expression and zone.
    ///
    /// # Errors
    /// When either is invalid.
    pub fn schedule(&self) -> Result<Schedule, ScheduleError> {
        let (expr, tz) = match self {
            Self::Ping(p) => (&p.schedule, &p.timezone),
            Self::Function(f) => (&f.schedule, &f.timezone),
        };
        Schedule::new(expr, tz.as_deref())
    }

    /// Where the events go.
    pub fn target(&self) -> &Destination {
        match self {
            Self::Ping(p) => &p.sink,
            Self::Function(f) => &f.sink,
        }
    }

    /// Every destination its events may reach: where they go and, with
    /// delivery options, the dead letter.
    pub fn destinations(&self) -> impl Iterator<Item = &Destination> {
        let dead_letter = self.delivery().and_then(|d| d.dead_letter.as_ref());
        std::iter::once(self.target()).chain(dead_letter)
    }

    /// The delivery options of the binding.
    pub fn delivery(&self) -> Option<&DeliverySpec> {
        match self {
            Self::Ping(p) => p.delivery.as_ref(),
            Self::Function(f) => f.delivery.as_ref(),
        }
    }

    /// Extension attributes set on every event.
    pub fn extensions(&self) -> &BTreeMap<String, String> {
        match self {
            Self::Ping(p) => &p.extensions,
            Self::Function(f) => &f.extensions,
        }
    }

    /// Whether the last missed tick fires after start-up.
    pub fn catch_up(&self) -> bool {
        match self {
            Self::Ping(p) => p.catch_up,
            Self::Function(f) => f.catch_up,
        }
    }

    /// Check everything the schema cannot.
    ///
    /// # Errors
    /// [`SpecError`] naming the bad setting.
    pub fn validate(&self) -> Result<(), SpecError> {
        self.schedule()?;
        for name in self.extensions().keys() {
            validate_extension_name(name).map_err(SpecError::Override)?;
        }
        if let Some(d) = self.delivery() {
            d.validate()
                .map_err(|e| SpecError::Delivery(e.to_string()))?;
            if self.target() == &Destination::Broker {
                return Err(SpecError::DeliveryToBroker);
            }
        }
        match self {
            Self::Ping(p) => {
                p.payload()?;
            }
            Self::Function(f) => {
                AllowList::new(&f.allowed_outbound_hosts)?;
                if f.timeout.is_some_and(|t| t.is_zero()) {
                    return Err(SpecError::ZeroTimeout);
                }
                if f.memory_mib == Some(0) {
                    return Err(SpecError::ZeroMemory);
                }
            }
        }
        Ok(())
    }
}

/// A ping's payload: its bytes and content type.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Payload {
    /// The data, if any.
    pub data: Option<bytes::Bytes>,
    /// Its media type, if any.
    pub content_type: Option<String>,
}

impl PingSpec {
    /// Resolve `data` / `data_base64` / `content_type` into a payload.
    ///
    /// # Errors
    /// When both data forms are set or the base64 does not decode.
    pub fn payload(&self) -> Result<Payload, SpecError> {
        let (data, default_type) = match (&self.data, &self.data_base64) {
            (Some(_), Some(_)) => return Err(SpecError::BothData),
            (Some(serde_json::Value::String(s)), None) => {
                (Some(s.clone().into_bytes()), Some("text/plain"))
            }
            (Some(v), None) => (
                Some(serde_json::to_vec(v).map_err(SpecError::Json)?),
                Some("application/json"),
            ),
            (None, Some(b)) => (
                Some(
                    base64::engine::general_purpose::STANDARD
                        .decode(b.trim())
                        .map_err(SpecError::Base64)?,
                ),
                None,
            ),
            (None, None) => (None, None),
        };
        Ok(Payload {
            data: data.map(bytes::Bytes::from),
            content_type: self
                .content_type
                .clone()
                .or_else(|| default_type.map(str::to_owned)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(toml_text: &str) -> Result<SourceSpec, String> {
        let spec: SourceSpec = toml::from_str(toml_text).map_err(|e| e.to_string())?;
        spec.validate().map_err(|e| e.to_string())?;
        Ok(spec)
    }

    #[test]
    fn ping_payloads() {
        let s = parse(
            "kind = \"ping\"\nschedule = \"* * * * * *\"\nsink = \"log\"\ndata = { a = 1 }\n",
        )
        .unwrap();
        let SourceSpec::Ping(p) = s else { panic!() };
        let pl = p.payload().unwrap();
        assert_eq!(pl.data.as_deref(), Some(&b"{\"a\":1}"[..]));
        assert_eq!(pl.content_type.as_deref(), Some("application/json"));

        let s =
            parse("kind = \"ping\"\nschedule = \"* * * * *\"\nsink = \"broker\"\ndata = \"hi\"\n")
                .unwrap();
        let SourceSpec::Ping(p) = s else { panic!() };
        assert_eq!(
            p.payload().unwrap().content_type.as_deref(),
            Some("text/plain")
        );

        let s = parse("kind = \"ping\"\nschedule = \"* * * * *\"\nsink = \"log\"\ndata_base64 = \"AAEC\"\ncontent_type = \"application/octet-stream\"\n").unwrap();
        let SourceSpec::Ping(p) = s else { panic!() };
        assert_eq!(p.payload().unwrap().data.as_deref(), Some(&[0u8, 1, 2][..]));
    }

    #[test]
    fn bad_specs_are_refused_with_a_reason() {
        let both = parse("kind = \"ping\"\nschedule = \"* * * * *\"\nsink = \"log\"\ndata = \"x\"\ndata_base64 = \"AA==\"\n");
        assert!(both.unwrap_err().contains("not both"));
        let cron = parse("kind = \"ping\"\nschedule = \"every minute\"\nsink = \"log\"\n");
        assert!(cron.unwrap_err().contains("schedule"));
        let tz = parse("kind = \"ping\"\nschedule = \"* * * * *\"\ntimezone = \"Mars/Olympus\"\nsink = \"log\"\n");
        assert!(tz.unwrap_err().contains("Mars/Olympus"));
        let sink = parse("kind = \"ping\"\nschedule = \"* * * * *\"\nsink = \"ftp://x\"\n");
        assert!(sink.unwrap_err().contains("ftp://x"));
        let ext = parse("kind = \"ping\"\nschedule = \"* * * * *\"\nsink = \"log\"\noverrides = { Team = \"x\" }\n");
        assert!(ext.unwrap_err().contains("Team"));
        let unknown =
            parse("kind = \"ping\"\nschedule = \"* * * * *\"\nsink = \"log\"\ndat = \"x\"\n");
        assert!(unknown.unwrap_err().contains("dat"));
        let broker = parse("kind = \"ping\"\nschedule = \"* * * * *\"\nsink = \"broker\"\ndelivery = { retry = 2 }\n");
        assert!(broker.unwrap_err().contains("triggers"));
        let retries = parse("kind = \"ping\"\nschedule = \"* * * * *\"\nsink = \"log\"\ndelivery = { retry = 1000 }\n");
        assert!(retries.unwrap_err().contains("retry must be at most"));
    }

    #[test]
    fn a_binding_delivers_to_its_destination_with_its_options() {
        let s = parse("kind = \"ping\"\nschedule = \"* * * * *\"\nsink = \"kafka:out\"\ndelivery = { retry = 3, backoff_delay = \"50ms\", dead_letter = \"log\" }\n").unwrap();
        assert_eq!(s.target(), &Destination::Kafka("out".parse().unwrap()));
        let d = s.delivery().unwrap();
        assert_eq!(
            (d.retry, d.dead_letter.clone()),
            (3, Some(Destination::Log))
        );
    }
}
