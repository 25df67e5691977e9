//! Drawing the routing table as a Mermaid or Graphviz DOT diagram (what
//! `sluice graph` prints): the ingress and broker, triggers with their
//! filters, functions, URLs, sinks, sequences with their steps, parallels
//! with their branches, replies and dead letters.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::Table;
use crate::config::{DeliverySpec, Destination, FilterExpr, SinkKind, SourceSpec, TriggerSpec};
use crate::name::Name;

/// Which diagram language.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    /// Mermaid `flowchart LR` (renders on GitHub).
    #[default]
    Mermaid,
    /// Graphviz DOT.
    Dot,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    Circle,
    Hexagon,
    Rounded,
    Box,
    Subroutine,
    Parallelogram,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Style {
    Solid,
    Reply,
    DeadLetter,
}

#[derive(Default)]
struct Graph {
    nodes: BTreeMap<String, (String, Shape)>,
    order: Vec<String>,
    edges: Vec<(String, String, Option<String>, Style)>,
    urls: BTreeMap<String, String>,
}

impl Graph {
    fn node(&mut self, id: String, label: String, shape: Shape) -> String {
        if !self.nodes.contains_key(&id) {
            self.order.push(id.clone());
            self.nodes.insert(id.clone(), (label, shape));
        }
        id
    }

    fn edge(&mut self, from: &str, to: &str, label: Option<&str>, style: Style) {
        self.edges
            .push((from.into(), to.into(), label.map(Into::into), style));
    }

    /// The node of a destination (created on first use).
    fn dest(&mut self, table: &Table, d: &Destination) -> String {
        match d {
            Destination::Function(n) => self.node(
                id("fn", n.as_str()),
                format!("function {n}"),
                Shape::Rounded,
            ),
            Destination::Url(u) => {
                let next = format!("url_{}", self.urls.len());
                let nid = self.urls.entry(u.to_string()).or_insert(next).clone();
                self.node(nid, u.to_string(), Shape::Parallelogram)
            }
            Destination::Env(e) => {
                let next = format!("url_{}", self.urls.len());
                let nid = self.urls.entry(e.to_string()).or_insert(next).clone();
                self.node(nid, format!("{e}\n{}", e.url), Shape::Parallelogram)
            }
            Destination::Sink(n) => {
                let what = match table.sinks.get(n) {
                    Some(s) if s.kind == SinkKind::Log => "log".to_owned(),
                    Some(s) => s.url.as_ref().map(ToString::to_string).unwrap_or_default(),
                    None => "missing".to_owned(),
                };
                self.node(
                    id("sink", n.as_str()),
                    format!("sink {n}\n{what}"),
                    Shape::Parallelogram,
                )
            }
            Destination::Sequence(n) => id("seq", n.as_str()),
            Destination::Parallel(n) => id("par", n.as_str()),
            Destination::Broker => "broker".to_owned(),
            Destination::Log => self.node("log".into(), "log".into(), Shape::Parallelogram),
            Destination::Kafka(n) => self.node(
                id("kafka", n.as_str()),
                format!("kafka sink {n}"),
                Shape::Parallelogram,
            ),
        }
    }

    fn dead_letter(&mut self, table: &Table, from: &str, d: Option<&DeliverySpec>) {
        if let Some(dl) = d.and_then(|d| d.dead_letter.as_ref()) {
            let to = self.dest(table, dl);
            self.edge(from, &to, Some("dead letter"), Style::DeadLetter);
        }
    }
}

/// `function f` rather than `function:f`; URLs as they are.
fn pretty(d: &Destination) -> String {
    match d {
        Destination::Url(u) => u.to_string(),
        other => other.to_string().replacen(':', " ", 1),
    }
}

fn id(prefix: &str, name: &str) -> String {
    format!("{prefix}_{}", name.replace('-', "_"))
}

/// A one-line summary of a trigger's filters, e.g. `type=a, tenant=x*`.
fn filter_summary(t: &TriggerSpec) -> String {
    let mut parts: Vec<String> = t
        .filter
        .attributes
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    parts.extend(t.filters.iter().map(expr));
    if parts.is_empty() {
        "every event".into()
    } else {
        parts.join(", ")
    }
}

fn expr(e: &FilterExpr) -> String {
    let pairs = |m: &BTreeMap<String, String>, f: &dyn Fn(&str, &str) -> String| {
        m.iter()
            .map(|(k, v)| f(k, v))
            .collect::<Vec<_>>()
            .join(" and ")
    };
    match e {
        FilterExpr::Exact(m) => pairs(m, &|k, v| format!("{k}={v}")),
        FilterExpr::Prefix(m) => pairs(m, &|k, v| format!("{k}={v}*")),
        FilterExpr::Suffix(m) => pairs(m, &|k, v| format!("{k}=*{v}")),
        FilterExpr::All(v) => format!("({})", v.iter().map(expr).collect::<Vec<_>>().join(" and ")),
        FilterExpr::Any(v) => format!("({})", v.iter().map(expr).collect::<Vec<_>>().join(" or ")),
        FilterExpr::Not(e) => format!("not {}", expr(e)),
        FilterExpr::Cesql(f) => format!("cesql({f})"),
    }
}

fn build(table: &Table) -> Graph {
    let mut g = Graph::default();
    g.node("ingress".into(), "HTTP ingress".into(), Shape::Box);
    g.node("broker".into(), "broker".into(), Shape::Circle);
    g.edge("ingress", "broker", None, Style::Solid);
    // Sequences and parallels first, so their nodes exist for references.
    for (n, q) in &table.sequences {
        let head = g.node(
            id("seq", n.as_str()),
            format!("sequence {n}"),
            Shape::Subroutine,
        );
        let mut prev = head;
        for (i, s) in q.steps.iter().enumerate() {
            let step = g.node(
                format!("{}_{i}", id("seq", n.as_str())),
                format!("{}. {}", i + 1, pretty(&s.to)),
                Shape::Box,
            );
            g.edge(&prev, &step, None, Style::Solid);
            if matches!(
                s.to,
                Destination::Sequence(_) | Destination::Parallel(_) | Destination::Sink(_)
            ) {
                let to = g.dest(table, &s.to);
                g.edge(&step, &to, Some("calls"), Style::Solid);
            }
            g.dead_letter(table, &step, s.delivery.as_ref());
            prev = step;
        }
        if let Some(r) = &q.reply {
            let to = g.dest(table, r);
            g.edge(&prev, &to, Some("reply"), Style::Reply);
        }
    }
    for (n, p) in &table.parallels {
        let head = g.node(
            id("par", n.as_str()),
            format!("parallel {n}"),
            Shape::Subroutine,
        );
        for (i, b) in p.branches.iter().enumerate() {
            let filter = if b.filters.is_empty() {
                "every event".to_owned()
            } else {
                b.filters.iter().map(expr).collect::<Vec<_>>().join(", ")
            };
            let branch = g.node(
                format!("{head}_{i}"),
                format!("branch {}\n{filter}", i + 1),
                Shape::Hexagon,
            );
            g.edge(&head, &branch, None, Style::Solid);
            let to = g.dest(table, &b.subscriber);
            g.edge(&branch, &to, None, Style::Solid);
            if let Some(r) = b.reply.as_ref().or(p.reply.as_ref()) {
                let to = g.dest(table, r);
                g.edge(&branch, &to, Some("reply"), Style::Reply);
            }
            g.dead_letter(table, &branch, b.delivery.as_ref());
        }
    }
    for (n, t) in &table.triggers {
        let node = g.node(
            id("trigger", n.as_str()),
            format!("trigger {n}\n{}", filter_summary(t)),
            Shape::Hexagon,
        );
        g.edge("broker", &node, None, Style::Solid);
        let to = g.dest(table, &t.subscriber());
        g.edge(&node, &to, None, Style::Solid);
        if let Some(r) = t.reply_to() {
            let to = g.dest(table, &r);
            g.edge(&node, &to, Some("reply"), Style::Reply);
        }
        g.dead_letter(table, &node, t.delivery.as_ref());
    }
    for (n, s) in &table.sinks {
        let node = g.dest(table, &Destination::Sink(n.clone()));
        g.dead_letter(table, &node, s.delivery.as_ref());
    }
    g
}

/// Draw each source and the edge to what it is bound to.
fn add_sources(g: &mut Graph, table: &Table, sources: &BTreeMap<Name, SourceSpec>) {
    for (n, spec) in sources {
        let (kind, schedule) = match spec {
            SourceSpec::Ping(p) => ("ping", p.schedule.as_str()),
            SourceSpec::Function(f) => ("source function", f.schedule.as_str()),
        };
        let node = g.node(
            id("src", n.as_str()),
            format!("{kind} {n}\n{schedule}"),
            Shape::Box,
        );
        let to = match spec.target() {
            Destination::Broker => "broker".to_owned(),
            d => g.dest(table, d),
        };
        g.edge(&node, &to, None, Style::Solid);
        g.dead_letter(table, &node, spec.delivery());
    }
}

/// The diagram of `table` in `format`.
pub fn render(table: &Table, format: Format) -> String {
    render_with_sources(table, &BTreeMap::new(), format)
}

/// The diagram of `table` plus the event sources bound into it.
pub fn render_with_sources(
    table: &Table,
    sources: &BTreeMap<Name, SourceSpec>,
    format: Format,
) -> String {
    let mut g = build(table);
    add_sources(&mut g, table, sources);
    match format {
        Format::Mermaid => mermaid(&g),
        Format::Dot => dot(&g),
    }
}

fn mermaid(g: &Graph) -> String {
    let esc = |s: &str| s.replace('"', "#quot;").replace('\n', "<br/>");
    let mut out = String::from("flowchart LR\n");
    for nid in &g.order {
        let (label, shape) = &g.nodes[nid];
        let l = esc(label);
        let node = match shape {
            Shape::Circle => format!("{nid}((\"{l}\"))"),
            Shape::Hexagon => format!("{nid}{{{{\"{l}\"}}}}"),
            Shape::Rounded => format!("{nid}(\"{l}\")"),
            Shape::Box => format!("{nid}[\"{l}\"]"),
            Shape::Subroutine => format!("{nid}[[\"{l}\"]]"),
            Shape::Parallelogram => format!("{nid}[/\"{l}\"/]"),
        };
        let _ = writeln!(out, "    {node}");
    }
    for (from, to, label, style) in &g.edges {
        let arrow = match (style, label) {
            (Style::Solid, None) => "-->".to_owned(),
            (Style::Solid, Some(l)) => format!("-- \"{}\" -->", esc(l)),
            (Style::Reply, l) => format!("-. \"{}\" .->", esc(l.as_deref().unwrap_or("reply"))),
            (Style::DeadLetter, l) => {
                format!("-. \"{}\" .-x", esc(l.as_deref().unwrap_or("dead letter")))
            }
        };
        let _ = writeln!(out, "    {from} {arrow} {to}");
    }
    out
}

fn dot(g: &Graph) -> String {
    let esc = |s: &str| {
        s.replace('\\', "\\\\")
            .replace('"', "\\\"")
            .replace('\n', "\\n")
    };
    let mut out =
        String::from("digraph sluice {\n    rankdir=LR;\n    node [fontname=\"Helvetica\"];\n");
    for nid in &g.order {
        let (label, shape) = &g.nodes[nid];
        let shape = match shape {
            Shape::Circle => "circle",
            Shape::Hexagon => "hexagon",
            Shape::Rounded => "box, style=rounded",
            Shape::Box => "box",
            Shape::Subroutine => "box3d",
            Shape::Parallelogram => "parallelogram",
        };
        let _ = writeln!(out, "    {nid} [label=\"{}\", shape={shape}];", esc(label));
    }
    for (from, to, label, style) in &g.edges {
        let mut attrs = Vec::new();
        if let Some(l) = label {
            attrs.push(format!("label=\"{}\"", esc(l)));
        }
        match style {
            Style::Solid => {}
            Style::Reply => attrs.push("style=dashed".into()),
            Style::DeadLetter => attrs.push("style=dotted, color=red".into()),
        }
        let attrs = if attrs.is_empty() {
            String::new()
        } else {
            format!(" [{}]", attrs.join(", "))
        };
        let _ = writeln!(out, "    {from} -> {to}{attrs};");
    }
    out.push_str("}\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> Table {
        let toml = r#"
            [sinks.out]
            url = "http://127.0.0.1:9000/"
            [sinks.dlq]
            type = "log"
            [sequences.format]
            steps = [{ function = "enrich" }, { function = "format" }]
            reply = { sink = "out" }
            [triggers.rates]
            filters = [{ prefix = { type = "dev.rates" } }, { not = { exact = { subject = "TEST" } } }]
            function = "convert"
            reply = { sequence = "format" }
            delivery = { retry = 3, dead_letter = { sink = "dlq" } }
        "#;
        let c: crate::config::Config = toml::from_str(toml).unwrap();
        Table::from_config(&c)
    }

    #[test]
    fn mermaid_shows_every_object_and_edge() {
        let m = render(&table(), Format::Mermaid);
        assert!(m.starts_with("flowchart LR\n"), "{m}");
        for needle in [
            "broker --> trigger_rates",
            "trigger rates<br/>type=dev.rates*, not subject=TEST",
            "trigger_rates --> fn_convert",
            "trigger_rates -. \"reply\" .-> seq_format",
            "seq_format --> seq_format_0",
            "seq_format_0 --> seq_format_1",
            "seq_format_1 -. \"reply\" .-> sink_out",
            "trigger_rates -. \"dead letter\" .-x sink_dlq",
        ] {
            assert!(m.contains(needle), "missing `{needle}` in\n{m}");
        }
    }

    #[test]
    fn sources_are_drawn_with_their_bindings() {
        let sources: BTreeMap<Name, SourceSpec> = toml::from_str(
            r#"
            [tick]
            kind = "ping"
            schedule = "*/5 * * * * *"
            sink = "broker"

            [rates]
            kind = "function"
            path = "rates.wasm"
            schedule = "0 * * * * *"
            sink = "function:convert"
            delivery = { retry = 2, dead_letter = "log" }
            "#,
        )
        .unwrap();
        let m = render_with_sources(&table(), &sources, Format::Mermaid);
        assert!(m.contains("ping tick<br/>*/5 * * * * *"), "{m}");
        assert!(m.contains("src_tick --> broker"), "{m}");
        assert!(m.contains("src_rates --> fn_convert"), "{m}");
        assert!(m.contains(r#"src_rates -. "dead letter" .-x log"#), "{m}");
    }

    #[test]
    fn dot_is_a_digraph_with_the_same_edges() {
        let d = render(&table(), Format::Dot);
        assert!(d.starts_with("digraph sluice {") && d.trim_end().ends_with('}'));
        assert!(d.contains("broker -> trigger_rates;"), "{d}");
        assert!(
            d.contains("seq_format_1 -> sink_out [label=\"reply\", style=dashed];"),
            "{d}"
        );
        assert!(
            d.contains(
                "trigger_rates -> sink_dlq [label=\"dead letter\", style=dotted, color=red];"
            ),
            "{d}"
        );
    }
}
