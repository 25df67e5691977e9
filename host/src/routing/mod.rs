//! The trigger table: which triggers take an event.
//!
//! The table is an immutable snapshot swapped whole on every change, so a
//! lookup never waits for a writer and in-flight events keep the snapshot
//! they were routed with.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use crate::config::TriggerSpec;
use crate::event::Event;
use crate::registry::Name;

/// One trigger as routing sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// The trigger's name.
    pub name: Name,
    /// Its definition.
    pub spec: TriggerSpec,
}

/// The current set of triggers.
#[derive(Debug, Default)]
pub struct Routes {
    table: RwLock<Arc<BTreeMap<Name, TriggerSpec>>>,
}

impl Routes {
    /// A table holding `triggers`.
    pub fn new(triggers: BTreeMap<Name, TriggerSpec>) -> Self {
        Self {
            table: RwLock::new(Arc::new(triggers)),
        }
    }

    fn snapshot(&self) -> Arc<BTreeMap<Name, TriggerSpec>> {
        self.table.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Every trigger whose filter passes `event` (each gets its own copy:
    /// fan-out).
    pub fn matching(&self, event: &Event) -> Vec<Route> {
        self.snapshot()
            .iter()
            .filter(|(_, spec)| spec.filter.matches(event))
            .map(|(name, spec)| Route {
                name: name.clone(),
                spec: spec.clone(),
            })
            .collect()
    }

    /// One trigger.
    pub fn get(&self, name: &Name) -> Option<TriggerSpec> {
        self.snapshot().get(name).cloned()
    }

    /// Every trigger, by name.
    pub fn list(&self) -> BTreeMap<Name, TriggerSpec> {
        (*self.snapshot()).clone()
    }

    /// Add or replace a trigger.
    pub fn put(&self, name: Name, spec: TriggerSpec) {
        let mut guard = self.table.write().unwrap_or_else(|p| p.into_inner());
        let mut next = (**guard).clone();
        next.insert(name, spec);
        *guard = Arc::new(next);
    }

    /// Remove a trigger; returns whether it existed.
    pub fn remove(&self, name: &Name) -> bool {
        let mut guard = self.table.write().unwrap_or_else(|p| p.into_inner());
        let mut next = (**guard).clone();
        let existed = next.remove(name).is_some();
        *guard = Arc::new(next);
        existed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Filter;

    fn spec(ty: &str) -> TriggerSpec {
        TriggerSpec {
            filter: Filter {
                attributes: [("type".to_string(), ty.to_string())].into(),
            },
            function: "echo".parse().unwrap(),
            sink: None,
        }
    }

    #[test]
    fn fan_out_to_every_match() {
        let routes = Routes::default();
        routes.put("a".parse().unwrap(), spec("t"));
        routes.put("b".parse().unwrap(), spec("t"));
        routes.put("c".parse().unwrap(), spec("other"));
        let names: Vec<_> = routes
            .matching(&Event::new("1", "/s", "t"))
            .into_iter()
            .map(|r| r.name.to_string())
            .collect();
        assert_eq!(names, ["a", "b"]);
        assert!(routes.remove(&"a".parse().unwrap()));
        assert_eq!(routes.matching(&Event::new("1", "/s", "t")).len(), 1);
    }
}
