//! Routing benchmark (`cargo bench -p sluice --bench routing`): events
//! matched per second against 10, 100 and 1,000 triggers, by the match
//! loop delivery used before the compiled table (`TriggerSpec::matches` on
//! the serde objects, the filter-time metric looked up by label per
//! trigger) and by the compiled table (`Compiled::matching`, metric bound
//! once), each with and without the metric.
//!
//! A second table compares 100 triggers with `cesql` filters against 100
//! triggers with the equivalent `exact`/`prefix`/`not` filters, on the
//! compiled table without the metric, in the same run
//! (`cargo bench -p sluice --bench routing -- cesql` runs that one only).
//!
//! Not criterion: one number per row (events/s over a fixed window) is what
//! docs/performance.md reports. Each measurement is bounded in time.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::table;
use sluice::config::{Filter, FilterExpr, TriggerSpec};
use sluice::event::{Event, ExtensionValue};
use sluice::metrics::Metrics;
use sluice::routing::{Compiled, Table};

const WINDOW: Duration = Duration::from_secs(2);

/// `n` triggers: trigger i takes type `dev.sluice.t{i % 10}` from sources
/// under `/tenant/{i}`, and not subject `test`: a typical mix of the
/// simple filter and Knative's dialects. The event matches one in ten
/// triggers' type and one trigger's source.
fn triggers(n: usize) -> Table {
    let mut t = Table::default();
    for i in 0..n {
        let filters: Vec<FilterExpr> = serde_json::from_value(serde_json::json!([
            {"prefix": {"source": format!("/tenant/{i}")}},
            {"not": {"exact": {"subject": "test"}}},
            {"any": [{"exact": {"priority": "1"}}, {"exact": {"region": "eu"}}]},
        ]))
        .unwrap();
        let spec = TriggerSpec {
            filters,
            ..TriggerSpec::to_function(
                Filter {
                    attributes: [("type".to_owned(), format!("dev.sluice.t{}", i % 10))].into(),
                },
                "echo".parse().unwrap(),
                None,
            )
        };
        t.triggers
            .insert(format!("trigger-{i}").parse().unwrap(), spec);
    }
    t
}

fn event() -> Event {
    let mut e = Event::new("bench-1", "/tenant/7/orders", "dev.sluice.t7");
    e.subject = Some("order-1".into());
    e.extensions
        .insert("priority".into(), ExtensionValue::Integer(1));
    e
}

/// Events per second `matched` sustains over [`WINDOW`]; also returns the
/// matches of the last call (the same for every variant).
fn rate(mut matched: impl FnMut(&Event) -> usize) -> (f64, usize) {
    let e = event();
    let start = Instant::now();
    let mut n = 0u64;
    let mut last = 0;
    while start.elapsed() < WINDOW {
        for _ in 0..64 {
            last = matched(std::hint::black_box(&e));
        }
        n += 64;
    }
    (n as f64 / start.elapsed().as_secs_f64(), last)
}

/// `n` triggers with the same selection as each other in two forms: trigger
/// i takes type `dev.sluice.t{i % 10}` from sources under `/tenant/{i}`,
/// and not subject `test`, written in Knative's dialects or in CESQL.
fn dialect_and_cesql_triggers(n: usize) -> (Table, Table) {
    let (mut dialects, mut cesql) = (Table::default(), Table::default());
    for i in 0..n {
        let ty = format!("dev.sluice.t{}", i % 10);
        let spec = |filters: serde_json::Value| TriggerSpec {
            filters: serde_json::from_value(filters).unwrap(),
            ..TriggerSpec::to_function(Filter::default(), "echo".parse().unwrap(), None)
        };
        let name = format!("trigger-{i}").parse().unwrap();
        dialects.triggers.insert(
            name,
            spec(serde_json::json!([
                {"exact": {"type": ty}},
                {"prefix": {"source": format!("/tenant/{i}")}},
                {"not": {"exact": {"subject": "test"}}},
            ])),
        );
        let name = format!("trigger-{i}").parse().unwrap();
        cesql.triggers.insert(
            name,
            spec(serde_json::json!([{
                "cesql": format!(
                    "type = '{ty}' AND source LIKE '/tenant/{i}%' \
                     AND (NOT EXISTS subject OR subject <> 'test')"
                )
            }])),
        );
    }
    (dialects, cesql)
}

fn cesql_against_dialects() {
    let n = 100;
    let (dialects, cesql) = dialect_and_cesql_triggers(n);
    let dialects = Compiled::new(Arc::new(dialects), None);
    let cesql = Compiled::new(Arc::new(cesql), None);
    let (d, m0) = rate(|e| dialects.matching(e).count());
    let (c, m1) = rate(|e| cesql.matching(e).count());
    assert!(m0 == 1 && m1 == 1, "{m0} {m1}");
    table(
        "Routing: CESQL filters against the equivalent dialects, events matched per second (one core)",
        &["triggers", "exact/prefix/not", "cesql", "ratio"],
        &[vec![
            n.to_string(),
            format!("{d:.0}"),
            format!("{c:.0}"),
            format!("{:.2}", c / d),
        ]],
    );
}

fn main() {
    cesql_against_dialects();
    if std::env::args().any(|a| a == "cesql") {
        return;
    }
    let metrics = Metrics::new();
    let routing = metrics.routing.clone();
    let mut rows = Vec::new();
    for n in [10, 100, 1000] {
        let table = Arc::new(triggers(n));
        // Before: the loop `Dispatcher::start` ran on the serde objects.
        let (before, m0) = rate(|e| {
            let mut matched = 0;
            for (name, spec) in &table.triggers {
                let start = Instant::now();
                let ok = spec.matches(e);
                routing.filter_time(name.as_str(), start.elapsed());
                matched += usize::from(ok);
            }
            matched
        });
        let (before_bare, m1) = rate(|e| table.triggers.values().filter(|s| s.matches(e)).count());
        // After: the compiled table, as delivery runs it now.
        let measured = Compiled::new(table.clone(), Some(&routing));
        let (after, m2) = rate(|e| measured.matching(e).count());
        let bare = Compiled::new(table.clone(), None);
        let (after_bare, m3) = rate(|e| bare.matching(e).count());
        assert!(
            m0 == 1 && m1 == 1 && m2 == 1 && m3 == 1,
            "{m0} {m1} {m2} {m3}"
        );
        rows.push(vec![
            n.to_string(),
            format!("{before:.0}"),
            format!("{after:.0}"),
            format!("{:.2}", after / before),
            format!("{before_bare:.0}"),
            format!("{after_bare:.0}"),
            format!("{:.2}", after_bare / before_bare),
        ]);
    }
    table(
        "Routing: events matched per second (one core)",
        &[
            "triggers",
            "before (with filter metric)",
            "after (with filter metric)",
            "ratio",
            "before (filters only)",
            "after (filters only)",
            "ratio",
        ],
        &rows,
    );
}
