//! The compiled routing table: what delivery runs on.
//!
//! [`Compiled::new`] turns a checked [`Table`] (the serde objects of
//! `sluice.toml` and the admin API) into the runtime form once per change:
//! each trigger's two filter forms become one [`Matcher`] over resolved
//! attributes, and its subscriber, reply destination, extensions and
//! delivery options are resolved; named sinks become a [`SinkTarget`] with
//! their content mode resolved, and each parallel branch carries its own
//! [`Matcher`]. Matching an event allocates nothing: an attribute is read
//! in place (an integer extension is formatted into a stack buffer). A
//! `cesql` expression was parsed and checked when its trigger was read; an
//! evaluation error fails it and is reported (a debug log line and
//! `sluice_routing_filter_errors_total`).

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::cesql;
use crate::cloudevents::Mode;
use crate::config::{
    DeliverySpec, Destination, Extensions, FilterExpr, ParallelSpec, SequenceSpec, SinkKind,
    SinkSpec, TriggerSpec,
};
use crate::event::{Event, ExtensionValue};
use crate::metrics::RoutingMetrics;
use crate::name::Name;

use super::Table;

/// A CloudEvents attribute, resolved from its name once.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Attr {
    Id,
    Source,
    Type,
    SpecVersion,
    DataContentType,
    DataSchema,
    Subject,
    Time,
    Extension(String),
}

impl Attr {
    fn of(name: &str) -> Self {
        match name {
            "id" => Self::Id,
            "source" => Self::Source,
            "type" => Self::Type,
            "specversion" => Self::SpecVersion,
            "datacontenttype" => Self::DataContentType,
            "dataschema" => Self::DataSchema,
            "subject" => Self::Subject,
            "time" => Self::Time,
            other => Self::Extension(other.to_owned()),
        }
    }

    /// Apply `test` to the attribute's string form in `event`; `false`
    /// when the event lacks it.
    fn test(&self, event: &Event, test: impl Fn(&str) -> bool) -> bool {
        let s = match self {
            Self::Id => Some(event.id.as_str()),
            Self::Source => Some(event.source.as_str()),
            Self::Type => Some(event.ty.as_str()),
            Self::SpecVersion => Some(event.specversion.as_str()),
            Self::DataContentType => event.datacontenttype.as_deref(),
            Self::DataSchema => event.dataschema.as_deref(),
            Self::Subject => event.subject.as_deref(),
            Self::Time => event.time.as_deref(),
            Self::Extension(name) => match event.extensions.get(name) {
                None => None,
                Some(ExtensionValue::String(s)) => Some(s.as_str()),
                Some(ExtensionValue::Boolean(b)) => Some(if *b { "true" } else { "false" }),
                Some(ExtensionValue::Integer(i)) => {
                    let mut buf = [0u8; 20];
                    return test(format_i64(*i, &mut buf));
                }
            },
        };
        s.is_some_and(test)
    }
}

/// `i` in decimal, written into `buf` (20 bytes hold any `i64`).
fn format_i64(i: i64, buf: &mut [u8; 20]) -> &str {
    let mut n = i.unsigned_abs();
    let mut at = buf.len();
    loop {
        at -= 1;
        buf[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    if i < 0 {
        at -= 1;
        buf[at] = b'-';
    }
    // Only ASCII digits and `-` were written.
    std::str::from_utf8(&buf[at..]).unwrap_or_default()
}

/// How an attribute is compared (case-sensitive).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Test {
    Exact,
    Prefix,
    Suffix,
    /// Any value: the simple `filter`'s empty value (Knative's rule).
    Present,
}

/// A compiled filter: both of a trigger's filter forms, or a branch's.
#[derive(Debug, Clone)]
pub struct Matcher(Node);

#[derive(Debug, Clone)]
enum Node {
    /// Every test holds (none: every event).
    Tests(Vec<(Attr, Test, String)>),
    All(Vec<Node>),
    Any(Vec<Node>),
    Not(Box<Node>),
    /// The expression is `true`; errors go to the report.
    Cesql(cesql::Filter, Report),
}

/// Who owns a filter (`trigger` or `branch`, and its name), for reporting
/// CESQL evaluation errors.
#[derive(Clone)]
pub struct Report {
    kind: &'static str,
    name: Arc<str>,
    metrics: Option<RoutingMetrics>,
}

impl Report {
    /// Report for `kind` `name`, counted when `metrics` is given.
    pub fn new(kind: &'static str, name: &str, metrics: Option<&RoutingMetrics>) -> Self {
        Self {
            kind,
            name: name.into(),
            metrics: metrics.cloned(),
        }
    }

    fn error(&self, filter: &cesql::Filter, e: &cesql::EvalError) {
        tracing::debug!(
            kind = self.kind,
            name = &*self.name,
            filter = filter.as_str(),
            error = %e,
            "cesql filter raised an error: the event does not pass"
        );
        if let Some(m) = &self.metrics {
            m.filter_error(self.kind, &self.name, e.kind().label());
        }
    }
}

impl std::fmt::Debug for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Report({} {})", self.kind, self.name)
    }
}

impl Node {
    fn tests(test: Test, m: &BTreeMap<String, String>) -> Self {
        Self::Tests(
            m.iter()
                .map(|(k, v)| (Attr::of(k), test, v.clone()))
                .collect(),
        )
    }

    fn of(e: &FilterExpr, report: &Report) -> Self {
        let all = |v: &[FilterExpr]| v.iter().map(|e| Self::of(e, report)).collect();
        match e {
            FilterExpr::Exact(m) => Self::tests(Test::Exact, m),
            FilterExpr::Prefix(m) => Self::tests(Test::Prefix, m),
            FilterExpr::Suffix(m) => Self::tests(Test::Suffix, m),
            FilterExpr::All(v) => Self::All(all(v)),
            FilterExpr::Any(v) => Self::Any(all(v)),
            FilterExpr::Not(e) => Self::Not(Box::new(Self::of(e, report))),
            FilterExpr::Cesql(f) => Self::Cesql(f.clone(), report.clone()),
        }
    }

    fn matches(&self, event: &Event) -> bool {
        match self {
            Self::Tests(tests) => tests.iter().all(|(attr, test, want)| {
                attr.test(event, |have| match test {
                    Test::Exact => have == want.as_str(),
                    Test::Prefix => have.starts_with(want.as_str()),
                    Test::Suffix => have.ends_with(want.as_str()),
                    Test::Present => true,
                })
            }),
            Self::All(v) => v.iter().all(|n| n.matches(event)),
            Self::Any(v) => v.iter().any(|n| n.matches(event)),
            Self::Not(n) => !n.matches(event),
            Self::Cesql(f, report) => f.matches(event).unwrap_or_else(|e| {
                report.error(f, &e);
                false
            }),
        }
    }
}

impl Matcher {
    /// The matcher of a list of filter expressions (all must pass).
    pub fn of_filters(filters: &[FilterExpr], report: &Report) -> Self {
        Self(Node::All(
            filters.iter().map(|e| Node::of(e, report)).collect(),
        ))
    }

    /// The matcher of a trigger: its `filter` (where an empty value
    /// matches every value of a present attribute) and its `filters`.
    pub fn of_trigger(spec: &TriggerSpec, report: &Report) -> Self {
        let simple = spec.filter.attributes.iter().map(|(k, v)| {
            let test = if v.is_empty() {
                Test::Present
            } else {
                Test::Exact
            };
            (Attr::of(k), test, v.clone())
        });
        let mut all = vec![Node::Tests(simple.collect())];
        all.extend(spec.filters.iter().map(|e| Node::of(e, report)));
        Self(Node::All(all))
    }

    /// Whether `event` passes; allocates nothing.
    pub fn matches(&self, event: &Event) -> bool {
        self.0.matches(event)
    }
}

/// One trigger, resolved.
#[derive(Debug, Clone)]
pub struct Trigger {
    /// Its name.
    pub name: Name,
    /// Its filters.
    pub matcher: Matcher,
    /// Where matching events go.
    pub subscriber: Destination,
    /// Where the subscriber's replies go.
    pub reply: Option<Destination>,
    /// Extensions added to what it sends.
    pub extensions: Extensions,
    /// Retries and dead letter, for the subscriber and the reply leg.
    pub delivery: Option<DeliverySpec>,
    /// `sluice_routing_filter_seconds{trigger}`, bound once.
    filter_time: Option<Timer>,
}

/// A bound histogram (opaque in `Debug`).
#[derive(Clone)]
struct Timer(prometheus::Histogram);

impl std::fmt::Debug for Timer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Timer")
    }
}

impl Trigger {
    /// Whether `event` passes the trigger's filters (timed into
    /// `sluice_routing_filter_seconds` when the table is measured).
    pub fn matches(&self, event: &Event) -> bool {
        match &self.filter_time {
            None => self.matcher.matches(event),
            Some(Timer(h)) => {
                let start = std::time::Instant::now();
                let ok = self.matcher.matches(event);
                h.observe(start.elapsed().as_secs_f64());
                ok
            }
        }
    }
}

/// Where a named sink sends.
#[derive(Debug, Clone)]
pub enum SinkTarget {
    /// POST the event to `url`.
    Http {
        /// The sink's URL.
        url: url::Url,
        /// Binary or structured.
        mode: Mode,
        /// Extra request headers.
        headers: BTreeMap<String, String>,
    },
    /// Write the event to the host log.
    Log,
}

/// A named sink, compiled.
#[derive(Debug, Clone)]
pub struct Sink {
    /// Where it sends.
    pub target: SinkTarget,
    /// Extensions added to every event it sends.
    pub extensions: Extensions,
    /// Its own retries and dead letter (when its sender gives none).
    pub delivery: Option<DeliverySpec>,
}

impl Sink {
    /// `None` for an HTTP sink without a URL, which [`SinkSpec::validate`]
    /// refuses before a table is compiled.
    fn of(spec: &SinkSpec) -> Option<Self> {
        let target = match (spec.kind, &spec.url) {
            (SinkKind::Http, Some(url)) => SinkTarget::Http {
                url: url.clone(),
                mode: spec.mode.into(),
                headers: spec.headers.clone(),
            },
            (SinkKind::Http, None) => return None,
            (SinkKind::Log, _) => SinkTarget::Log,
        };
        Some(Self {
            target,
            extensions: spec.extensions.clone(),
            delivery: spec.delivery.clone(),
        })
    }
}

/// One branch of a parallel, compiled.
#[derive(Debug, Clone)]
pub struct Branch {
    /// Its filters.
    pub matcher: Matcher,
    /// Where it sends the event.
    pub subscriber: Destination,
    /// Where its subscriber's reply goes (the parallel's when unset).
    pub reply: Option<Destination>,
    /// Its retries and dead letter.
    pub delivery: Option<DeliverySpec>,
}

/// A parallel, compiled.
#[derive(Debug, Clone)]
pub struct Parallel {
    /// The branches.
    pub branches: Vec<Branch>,
    /// Where replies of branches without their own `reply` go.
    pub reply: Option<Destination>,
}

impl Parallel {
    fn of(name: &Name, spec: &ParallelSpec, metrics: Option<&RoutingMetrics>) -> Self {
        Self {
            branches: spec
                .branches
                .iter()
                .enumerate()
                .map(|(i, b)| Branch {
                    matcher: Matcher::of_filters(
                        &b.filters,
                        &Report::new("branch", &format!("{name}/{i}"), metrics),
                    ),
                    subscriber: b.subscriber.clone(),
                    reply: b.reply.clone(),
                    delivery: b.delivery.clone(),
                })
                .collect(),
            reply: spec.reply.clone(),
        }
    }
}

/// The runtime routing table, compiled from a checked [`Table`]; the table
/// it came from is kept for the admin API and for sequences, whose steps
/// are used as written.
#[derive(Debug)]
pub struct Compiled {
    triggers: Vec<Trigger>,
    sinks: BTreeMap<Name, Sink>,
    parallels: BTreeMap<Name, Parallel>,
    table: Arc<Table>,
}

impl Compiled {
    /// Compile `table` (checked by [`Table::check`] beforehand); with
    /// `metrics`, trigger filters are timed.
    pub fn new(table: Arc<Table>, metrics: Option<&RoutingMetrics>) -> Self {
        let triggers = table
            .triggers
            .iter()
            .map(|(name, spec)| Trigger {
                name: name.clone(),
                matcher: Matcher::of_trigger(spec, &Report::new("trigger", name.as_str(), metrics)),
                subscriber: spec.subscriber(),
                reply: spec.reply_to(),
                extensions: spec.extensions.clone(),
                delivery: spec.delivery.clone(),
                filter_time: metrics.map(|m| Timer(m.filter_timer(name.as_str()))),
            })
            .collect();
        let sinks = table
            .sinks
            .iter()
            .filter_map(|(name, s)| Some((name.clone(), Sink::of(s)?)))
            .collect();
        let parallels = table
            .parallels
            .iter()
            .map(|(name, p)| (name.clone(), Parallel::of(name, p, metrics)))
            .collect();
        Self {
            triggers,
            sinks,
            parallels,
            table,
        }
    }

    /// Every trigger whose filters pass `event`, with its index in
    /// [`Compiled::triggers`], in name order: the one match loop.
    pub fn matching<'a>(
        &'a self,
        event: &'a Event,
    ) -> impl Iterator<Item = (usize, &'a Trigger)> + 'a {
        self.triggers
            .iter()
            .enumerate()
            .filter(|(_, t)| t.matches(event))
    }

    /// Named sink `name`.
    pub fn sink(&self, name: &Name) -> Option<&Sink> {
        self.sinks.get(name)
    }

    /// Sequence `name` (its steps need no compiling).
    pub fn sequence(&self, name: &Name) -> Option<&SequenceSpec> {
        self.table.sequences.get(name)
    }

    /// Parallel `name`.
    pub fn parallel(&self, name: &Name) -> Option<&Parallel> {
        self.parallels.get(name)
    }

    /// Every trigger, in name order.
    pub fn triggers(&self) -> &[Trigger] {
        &self.triggers
    }

    /// The table this was compiled from.
    pub fn table(&self) -> &Arc<Table> {
        &self.table
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Filter;

    #[test]
    fn integers_format_like_display() {
        for i in [0, 7, -7, 10, 1234567890, i64::MIN, i64::MAX] {
            let mut buf = [0u8; 20];
            assert_eq!(format_i64(i, &mut buf), i.to_string());
        }
    }

    #[test]
    fn compiled_filters_agree_with_the_spec_ones() {
        let exprs: Vec<FilterExpr> = serde_json::from_value(serde_json::json!([
            {"prefix": {"type": "dev.sluice."}},
            {"not": {"exact": {"subject": "test"}}},
            {"any": [{"suffix": {"source": "/ecb"}}, {"exact": {"tenant": "acme"}}]},
            {"all": [{"exact": {"n": "42"}}, {"exact": {"flag": "true"}}]}
        ]))
        .unwrap();
        let spec = TriggerSpec {
            filters: exprs,
            ..TriggerSpec::to_function(
                Filter {
                    attributes: [("specversion".to_owned(), "1.0".to_owned())].into(),
                },
                "f".parse().unwrap(),
                None,
            )
        };
        let m = Matcher::of_trigger(&spec, &Report::new("trigger", "t", None));
        let mut e = Event::new("1", "https://x/ecb", "dev.sluice.rate");
        e.extensions.insert("n".into(), ExtensionValue::Integer(42));
        e.extensions
            .insert("flag".into(), ExtensionValue::Boolean(true));
        let mut cases = vec![e.clone()];
        let mut c = e.clone();
        c.subject = Some("test".into());
        cases.push(c);
        let mut c = e.clone();
        c.source = "/other".into();
        cases.push(c.clone());
        c.extensions
            .insert("tenant".into(), ExtensionValue::String("acme".into()));
        cases.push(c);
        let mut c = e.clone();
        c.extensions
            .insert("n".into(), ExtensionValue::Integer(-42));
        cases.push(c);
        let mut c = e.clone();
        c.extensions.remove("flag");
        cases.push(c);
        let mut c = e;
        c.ty = "other".into();
        cases.push(c);
        let results: Vec<bool> = cases.iter().map(|e| m.matches(e)).collect();
        for (e, got) in cases.iter().zip(&results) {
            assert_eq!(*got, spec.matches(e), "{e:?}");
        }
        assert_eq!(results, [true, false, false, true, false, false, false]);
    }

    #[test]
    fn an_empty_simple_filter_value_asks_only_for_the_attribute() {
        let pairs = [("type", "x"), ("tenant", "")];
        let spec = TriggerSpec::to_function(
            Filter {
                attributes: pairs
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                    .collect(),
            },
            "f".parse().unwrap(),
            None,
        );
        let m = Matcher::of_trigger(&spec, &Report::new("trigger", "t", None));
        let with = |ty: &str, tenant: Option<ExtensionValue>| {
            let mut e = Event::new("1", "/s", ty);
            if let Some(t) = tenant {
                e.extensions.insert("tenant".into(), t);
            }
            e
        };
        let cases = [
            (with("x", Some(ExtensionValue::String("acme".into()))), true),
            (with("x", Some(ExtensionValue::String(String::new()))), true),
            (with("x", Some(ExtensionValue::Integer(7))), true),
            (with("x", None), false),
            (
                with("y", Some(ExtensionValue::String("acme".into()))),
                false,
            ),
        ];
        for (e, want) in cases {
            assert_eq!(m.matches(&e), want, "{e:?}");
            assert_eq!(spec.matches(&e), want, "{e:?}");
        }
    }

    #[test]
    fn cesql_filters_join_the_other_dialects() {
        let exprs: Vec<FilterExpr> = serde_json::from_value(serde_json::json!([
            {"prefix": {"type": "dev.sluice."}},
            {"cesql": "amount > 100 AND tenant IN ('acme', 'globex')"},
            {"not": {"cesql": "region = 'test'"}},
        ]))
        .unwrap();
        let m = Matcher::of_filters(&exprs, &Report::new("branch", "p/0", None));
        let mut e = Event::new("1", "/s", "dev.sluice.order");
        e.extensions
            .insert("amount".into(), ExtensionValue::Integer(150));
        e.extensions
            .insert("tenant".into(), ExtensionValue::String("acme".into()));
        // `region` is missing: the inner expression fails with an error,
        // so the `not` passes (Knative's semantics).
        assert!(m.matches(&e));
        e.extensions
            .insert("region".into(), ExtensionValue::String("test".into()));
        assert!(!m.matches(&e));
        e.extensions.remove("region");
        e.extensions
            .insert("amount".into(), ExtensionValue::String("99".into()));
        assert!(!m.matches(&e));
        e.extensions.remove("amount");
        assert!(!m.matches(&e));
    }
}
