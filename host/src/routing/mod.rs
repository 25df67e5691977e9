//! The routing table: triggers, named sinks, sequences and parallels.
//!
//! The table is an immutable snapshot swapped whole on every change, so a
//! lookup never waits for a writer and in-flight events keep the snapshot
//! they were routed with (a change never drops them). Every candidate table
//! is checked ([`Table::check`]) before it replaces the current one, and
//! compiled ([`Compiled`]) once: delivery runs on the compiled form.

mod compiled;
pub mod graph;

pub use self::compiled::{Branch, Compiled, Matcher, Parallel, Report, Sink, SinkTarget, Trigger};

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, RwLock};

use crate::config::{
    invalid, Config, DeliverySpec, Destination, Invalid, ParallelSpec, SequenceSpec, SinkSpec,
    SourceSpec, TriggerSpec,
};
use crate::metrics::RoutingMetrics;
use crate::name::Name;
use crate::registry::{FileOwned, ObjectStore, RoutingStores};

/// Every routing object, by kind and name.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Table {
    /// Triggers.
    #[serde(default)]
    pub triggers: BTreeMap<Name, TriggerSpec>,
    /// Named sinks.
    #[serde(default)]
    pub sinks: BTreeMap<Name, SinkSpec>,
    /// Sequences.
    #[serde(default)]
    pub sequences: BTreeMap<Name, SequenceSpec>,
    /// Parallels.
    #[serde(default)]
    pub parallels: BTreeMap<Name, ParallelSpec>,
}

/// A kind of routing object (trigger, sink, sequence, parallel): where its
/// objects are in a config file, a [`Table`] and the data directory. The
/// admin API and the config overlay are written once over this.
pub trait Kind:
    serde::Serialize + serde::de::DeserializeOwned + Clone + Send + Sync + 'static
{
    /// Its name in messages and the audit log, e.g. `trigger`.
    const KIND: &'static str;
    /// Its objects in a table.
    fn map(t: &Table) -> &BTreeMap<Name, Self>;
    /// Its objects in a table, to change.
    fn map_mut(t: &mut Table) -> &mut BTreeMap<Name, Self>;
    /// Its objects in a config file.
    fn in_config(c: &Config) -> &BTreeMap<Name, Self>;
    /// Its durable store.
    fn store(s: &RoutingStores) -> &ObjectStore<Self>;
    /// The names of its objects the config file owns.
    fn file_owned(o: &FileOwned) -> &BTreeSet<Name>;
}

macro_rules! kind {
    ($t:ty, $kind:literal, $field:ident) => {
        impl Kind for $t {
            const KIND: &'static str = $kind;
            fn map(t: &Table) -> &BTreeMap<Name, Self> {
                &t.$field
            }
            fn map_mut(t: &mut Table) -> &mut BTreeMap<Name, Self> {
                &mut t.$field
            }
            fn in_config(c: &Config) -> &BTreeMap<Name, Self> {
                &c.$field
            }
            fn store(s: &RoutingStores) -> &ObjectStore<Self> {
                &s.$field
            }
            fn file_owned(o: &FileOwned) -> &BTreeSet<Name> {
                &o.$field
            }
        }
    };
}

kind!(TriggerSpec, "trigger", triggers);
kind!(SinkSpec, "sink", sinks);
kind!(SequenceSpec, "sequence", sequences);
kind!(ParallelSpec, "parallel", parallels);

/// A node of the call graph between sequences and parallels.
type Node = (&'static str, Name);

impl Table {
    /// The routing objects of a config file.
    pub fn from_config(c: &Config) -> Self {
        Self {
            triggers: c.triggers.clone(),
            sinks: c.sinks.clone(),
            sequences: c.sequences.clone(),
            parallels: c.parallels.clone(),
        }
    }

    /// Every destination an object refers to, with the object it belongs to
    /// (`"trigger `t`"`), for reference checks and the graph.
    pub fn references(&self) -> Vec<(String, Destination)> {
        let mut out = Vec::new();
        let delivery = |out: &mut Vec<(String, Destination)>, o: &str, d: &Option<DeliverySpec>| {
            if let Some(dl) = d.as_ref().and_then(|d| d.dead_letter.clone()) {
                out.push((o.to_owned(), dl));
            }
        };
        for (n, t) in &self.triggers {
            let o = format!("trigger `{n}`");
            out.push((o.clone(), t.subscriber()));
            if let Some(r) = t.reply_to() {
                out.push((o.clone(), r));
            }
            delivery(&mut out, &o, &t.delivery);
        }
        for (n, s) in &self.sinks {
            delivery(&mut out, &format!("sink `{n}`"), &s.delivery);
        }
        for (n, q) in &self.sequences {
            let o = format!("sequence `{n}`");
            for s in &q.steps {
                out.push((o.clone(), s.to.clone()));
                delivery(&mut out, &o, &s.delivery);
            }
            if let Some(r) = &q.reply {
                out.push((o.clone(), r.clone()));
            }
        }
        for (n, p) in &self.parallels {
            let o = format!("parallel `{n}`");
            for b in &p.branches {
                out.push((o.clone(), b.subscriber.clone()));
                if let Some(r) = &b.reply {
                    out.push((o.clone(), r.clone()));
                }
                delivery(&mut out, &o, &b.delivery);
            }
            if let Some(r) = &p.reply {
                out.push((o.clone(), r.clone()));
            }
        }
        out
    }

    /// Check every object and every reference: each object must be valid on
    /// its own, every named function (per `has_function`), Kafka sink (per
    /// `has_kafka_sink`), sink, sequence and parallel must exist, and sequences and parallels must not call
    /// each other in a cycle (which would never end: only the broker's hop
    /// counter bounds loops).
    ///
    /// # Errors
    /// A message naming the object and the problem.
    pub fn check(
        &self,
        has_function: impl Fn(&Name) -> bool,
        has_kafka_sink: impl Fn(&Name) -> bool,
    ) -> Result<(), Invalid> {
        self.check_but(&has_function, &has_kafka_sink, &[])
    }

    /// Check the table an edit turned `before` into, for what the edit
    /// brings: as [`Table::check`], except that a reference to a missing
    /// function that `before` already had (the same object naming the same
    /// function, e.g. one whose function was lost) does not refuse it. So
    /// one stale object does not block every later edit of the others.
    ///
    /// # Errors
    /// A message naming the object and the problem.
    pub fn check_edit(
        &self,
        before: &Table,
        has_function: impl Fn(&Name) -> bool,
        has_kafka_sink: impl Fn(&Name) -> bool,
    ) -> Result<(), Invalid> {
        let stale: Vec<(String, Destination)> = before
            .references()
            .into_iter()
            .filter(|(_, d)| matches!(d, Destination::Function(f) if !has_function(f)))
            .collect();
        self.check_but(&has_function, &has_kafka_sink, &stale)
    }

    /// [`Table::check`], passing over the references in `known`.
    fn check_but(
        &self,
        has_function: &impl Fn(&Name) -> bool,
        has_kafka_sink: &impl Fn(&Name) -> bool,
        known: &[(String, Destination)],
    ) -> Result<(), Invalid> {
        for (n, t) in &self.triggers {
            t.validate().map_err(|e| format!("trigger `{n}`: {e}"))?;
        }
        for (n, s) in &self.sinks {
            s.validate().map_err(|e| format!("sink `{n}`: {e}"))?;
        }
        for (n, s) in &self.sequences {
            s.validate().map_err(|e| format!("sequence `{n}`: {e}"))?;
        }
        for (n, p) in &self.parallels {
            p.validate().map_err(|e| format!("parallel `{n}`: {e}"))?;
        }
        for r in self.references() {
            if !known.contains(&r) {
                self.check_reference(&r.0, &r.1, has_function, has_kafka_sink)?;
            }
        }
        self.check_cycles()
    }

    /// Check that the destinations of `sources` (where their events go,
    /// their dead letters) exist: named sinks, sequences and parallels in
    /// this table, functions per `has_function`, Kafka sinks per
    /// `has_kafka_sink`.
    ///
    /// # Errors
    /// A message naming the source and what is missing.
    pub fn check_sources(
        &self,
        sources: &BTreeMap<Name, SourceSpec>,
        has_function: impl Fn(&Name) -> bool,
        has_kafka_sink: impl Fn(&Name) -> bool,
    ) -> Result<(), Invalid> {
        for (n, s) in sources {
            let owner = format!("source `{n}`");
            for d in s.destinations() {
                self.check_reference(&owner, d, &has_function, &has_kafka_sink)?;
            }
        }
        Ok(())
    }

    /// Check that the destination `d` of `owner` exists.
    fn check_reference(
        &self,
        owner: &str,
        d: &Destination,
        has_function: &impl Fn(&Name) -> bool,
        has_kafka_sink: &impl Fn(&Name) -> bool,
    ) -> Result<(), Invalid> {
        let missing = match d {
            Destination::Function(f) if !has_function(f) => Some("function"),
            Destination::Sink(s) if !self.sinks.contains_key(s) => Some("sink"),
            Destination::Sequence(s) if !self.sequences.contains_key(s) => Some("sequence"),
            Destination::Parallel(p) if !self.parallels.contains_key(p) => Some("parallel"),
            Destination::Kafka(k) if !has_kafka_sink(k) => {
                return Err(invalid!(
                    "{owner}: kafka sink `{k}` does not exist (declare it as [kafka.sinks.{k}])"
                ))
            }
            _ => None,
        };
        if let Some(kind) = missing {
            let name = match d {
                Destination::Function(n)
                | Destination::Sink(n)
                | Destination::Sequence(n)
                | Destination::Parallel(n) => n.as_str(),
                _ => "",
            };
            return Err(invalid!("{owner}: {kind} `{name}` does not exist"));
        }
        Ok(())
    }

    fn edges(&self, node: &Node) -> Vec<Node> {
        let mut dests: Vec<&Destination> = Vec::new();
        match node.0 {
            "sequence" => {
                if let Some(q) = self.sequences.get(&node.1) {
                    for s in &q.steps {
                        dests.push(&s.to);
                        if let Some(dl) = s.delivery.as_ref().and_then(|d| d.dead_letter.as_ref()) {
                            dests.push(dl);
                        }
                    }
                    dests.extend(q.reply.iter());
                }
            }
            _ => {
                if let Some(p) = self.parallels.get(&node.1) {
                    for b in &p.branches {
                        dests.push(&b.subscriber);
                        dests.extend(b.reply.iter());
                        if let Some(dl) = b.delivery.as_ref().and_then(|d| d.dead_letter.as_ref()) {
                            dests.push(dl);
                        }
                    }
                    dests.extend(p.reply.iter());
                }
            }
        }
        dests
            .into_iter()
            .filter_map(|d| match d {
                Destination::Sequence(n) => Some(("sequence", n.clone())),
                Destination::Parallel(n) => Some(("parallel", n.clone())),
                _ => None,
            })
            .collect()
    }

    fn check_cycles(&self) -> Result<(), Invalid> {
        let nodes: Vec<Node> = self
            .sequences
            .keys()
            .map(|n| ("sequence", n.clone()))
            .chain(self.parallels.keys().map(|n| ("parallel", n.clone())))
            .collect();
        let mut done: BTreeSet<Node> = BTreeSet::new();
        for start in nodes {
            let mut path: Vec<Node> = Vec::new();
            self.visit(start, &mut path, &mut done)?;
        }
        Ok(())
    }

    fn visit(
        &self,
        node: Node,
        path: &mut Vec<Node>,
        done: &mut BTreeSet<Node>,
    ) -> Result<(), Invalid> {
        if done.contains(&node) {
            return Ok(());
        }
        if let Some(i) = path.iter().position(|n| n == &node) {
            let cycle: Vec<String> = path[i..]
                .iter()
                .chain(std::iter::once(&node))
                .map(|(k, n)| format!("{k} `{n}`"))
                .collect();
            return Err(invalid!(
                "cycle in sequence/parallel definitions: {}",
                cycle.join(" -> ")
            ));
        }
        path.push(node.clone());
        for next in self.edges(&node) {
            self.visit(next, path, done)?;
        }
        path.pop();
        done.insert(node);
        Ok(())
    }

    /// Which objects use function `f`, e.g. `["trigger `t`"]`.
    pub fn users_of_function(&self, f: &Name) -> Vec<String> {
        let mut users: Vec<String> = self
            .references()
            .into_iter()
            .filter(|(_, d)| matches!(d, Destination::Function(n) if n == f))
            .map(|(o, _)| o)
            .collect();
        users.dedup();
        users
    }
}

/// The current routing table.
pub struct Routes {
    compiled: RwLock<Arc<Compiled>>,
    writer: Mutex<()>,
    metrics: Option<RoutingMetrics>,
    /// Edits waiting for `writer` (tests drive interleavings with it).
    #[cfg(test)]
    waiting: std::sync::atomic::AtomicUsize,
}

impl std::fmt::Debug for Routes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Routes")
            .field("compiled", &self.compiled())
            .finish_non_exhaustive()
    }
}

impl Default for Routes {
    fn default() -> Self {
        Self::new(Table::default())
    }
}

impl Routes {
    /// A table holding `table`.
    pub fn new(table: Table) -> Self {
        Self::build(table, None)
    }

    /// A table holding `table` whose trigger filters are timed into
    /// `metrics` (`sluice_routing_filter_seconds`).
    pub fn measured(table: Table, metrics: RoutingMetrics) -> Self {
        Self::build(table, Some(metrics))
    }

    fn build(table: Table, metrics: Option<RoutingMetrics>) -> Self {
        let compiled = Compiled::new(Arc::new(table), metrics.as_ref());
        Self {
            compiled: RwLock::new(Arc::new(compiled)),
            writer: Mutex::new(()),
            metrics,
            #[cfg(test)]
            waiting: Default::default(),
        }
    }

    /// The current table; it never changes under the caller.
    pub fn snapshot(&self) -> Arc<Table> {
        self.compiled().table().clone()
    }

    /// The current table, compiled; it never changes under the caller.
    pub fn compiled(&self) -> Arc<Compiled> {
        self.compiled
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Change the table: `edit` gets a copy, and when it returns `Ok` the
    /// copy replaces the table. Writers are serialised; readers never wait.
    ///
    /// # Errors
    /// Whatever `edit` returns; the table is then unchanged.
    pub fn update<R, E>(&self, edit: impl FnOnce(&mut Table) -> Result<R, E>) -> Result<R, E> {
        let _writer = self.lock_writer();
        let mut next = (*self.snapshot()).clone();
        let r = edit(&mut next)?;
        let compiled = Arc::new(Compiled::new(Arc::new(next), self.metrics.as_ref()));
        *self.compiled.write().unwrap_or_else(|p| p.into_inner()) = compiled;
        Ok(r)
    }

    #[cfg(not(test))]
    fn lock_writer(&self) -> std::sync::MutexGuard<'_, ()> {
        self.writer.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Like the real one, counting the edits that wait for another.
    #[cfg(test)]
    fn lock_writer(&self) -> std::sync::MutexGuard<'_, ()> {
        use std::sync::atomic::Ordering::SeqCst;
        if let Ok(writer) = self.writer.try_lock() {
            return writer;
        }
        self.waiting.fetch_add(1, SeqCst);
        let writer = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        self.waiting.fetch_sub(1, SeqCst);
        writer
    }

    /// How many edits wait for another to finish.
    #[cfg(test)]
    pub(crate) fn edits_waiting(&self) -> usize {
        self.waiting.load(std::sync::atomic::Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Filter, Step};
    use crate::event::Event;

    fn spec(ty: &str) -> TriggerSpec {
        TriggerSpec::to_function(
            Filter {
                attributes: [("type".to_string(), ty.to_string())].into(),
            },
            "echo".parse().unwrap(),
            None,
        )
    }

    fn n(s: &str) -> Name {
        s.parse().unwrap()
    }

    #[test]
    fn an_edit_is_refused_for_the_problems_it_brings_only() {
        // `stale` names `echo`, which is not deployed.
        let mut before = Table::default();
        before.triggers.insert(n("stale"), spec("s"));
        let has_echo = |f: &Name| f.as_str() == "echo";
        let none = |_: &Name| false;
        // Another trigger, not naming a function: fine despite `stale`.
        let mut after = before.clone();
        let mut log = spec("o");
        log.function = None;
        log.subscriber = Some(Destination::Log);
        after.triggers.insert(n("other"), log);
        assert!(after.check(none, none).is_err());
        assert_eq!(after.check_edit(&before, none, none), Ok(()));
        // A new reference to the missing function is refused.
        let mut after = before.clone();
        after.triggers.insert(n("new"), spec("n"));
        let err = after.check_edit(&before, none, none).unwrap_err().0;
        assert!(err.contains("trigger `new`: function `echo`"), "{err}");
        assert_eq!(after.check_edit(&before, has_echo, none), Ok(()));
    }

    #[test]
    fn fan_out_to_every_match() {
        let routes = Routes::default();
        routes
            .update(|t| {
                t.triggers.insert(n("a"), spec("t"));
                t.triggers.insert(n("b"), spec("t"));
                t.triggers.insert(n("c"), spec("other"));
                Ok::<_, ()>(())
            })
            .unwrap();
        let compiled = routes.compiled();
        let event = Event::new("1", "/s", "t");
        let names: Vec<_> = compiled
            .matching(&event)
            .map(|(_, t)| t.name.to_string())
            .collect();
        assert_eq!(names, ["a", "b"]);
        let old = routes.snapshot();
        routes
            .update(|t| {
                t.triggers.remove(&n("a"));
                Ok::<_, ()>(())
            })
            .unwrap();
        assert_eq!(routes.compiled().matching(&event).count(), 1);
        assert_eq!(old.triggers.len(), 3, "an old snapshot is unchanged");
        let r: Result<(), &str> = routes.update(|t| {
            t.triggers.clear();
            Err("no")
        });
        assert!(r.is_err());
        assert_eq!(
            routes.snapshot().triggers.len(),
            2,
            "failed edit changes nothing"
        );
    }

    fn seq(steps: &[Destination]) -> SequenceSpec {
        SequenceSpec {
            steps: steps
                .iter()
                .map(|d| Step {
                    to: d.clone(),
                    delivery: None,
                })
                .collect(),
            reply: None,
        }
    }

    #[test]
    fn references_and_cycles_are_checked() {
        let all = |_: &Name| true;
        let mut t = Table::default();
        t.triggers.insert(n("t"), spec("x"));
        assert_eq!(t.check(all, all), Ok(()));
        let err = t.check(|_| false, all).unwrap_err().0;
        assert!(err.contains("function `echo` does not exist"), "{err}");

        t.sequences.insert(
            n("a"),
            seq(&[
                Destination::Function(n("echo")),
                Destination::Sequence(n("b")),
            ]),
        );
        let err = t.check(all, all).unwrap_err().0;
        assert!(err.contains("sequence `b` does not exist"), "{err}");
        t.sequences
            .insert(n("b"), seq(&[Destination::Parallel(n("p"))]));
        t.parallels.insert(
            n("p"),
            ParallelSpec {
                branches: vec![crate::config::Branch {
                    filters: vec![],
                    subscriber: Destination::Function(n("echo")),
                    reply: Some(Destination::Sink(n("out"))),
                    delivery: None,
                }],
                reply: None,
            },
        );
        let err = t.check(all, all).unwrap_err().0;
        assert!(err.contains("sink `out` does not exist"), "{err}");
        t.sinks.insert(
            n("out"),
            SinkSpec {
                kind: crate::config::SinkKind::Log,
                ..SinkSpec::default()
            },
        );
        assert_eq!(t.check(all, all), Ok(()));
        // p's branch replies into a: a -> b -> p -> a.
        t.parallels.get_mut(&n("p")).unwrap().branches[0].reply =
            Some(Destination::Sequence(n("a")));
        let err = t.check(all, all).unwrap_err().0;
        assert!(err.contains("cycle"), "{err}");
        assert!(err.contains("sequence `a`"), "{err}");
        // A sequence calling itself.
        let mut t = Table::default();
        t.sequences
            .insert(n("s"), seq(&[Destination::Sequence(n("s"))]));
        assert!(t.check(all, all).unwrap_err().0.contains("cycle"));
    }
}
