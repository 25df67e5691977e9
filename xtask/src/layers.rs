//! The host's module graph has no circle, and its layers point one way
//! (docs/architecture.md, "Layers"): the composition root `app` is
//! imported by the CLI only, and `metrics`, `event`, `name`, `files` and
//! `readiness` import nothing of the crate.
//!
//! A text scan, not a compiler pass: every `crate::a::b` path in a file of
//! `host/src` (outside comments) is an edge from that file's top-level
//! module to `a`. That is what a reader sees, and it is enough to catch a
//! lower layer reaching up.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use anyhow::{bail, Context, Result};

/// Modules that import nothing of the crate.
const LEAVES: &[&str] = &["metrics", "event", "name", "files", "readiness"];

/// Check `host/src` under `root`.
pub fn check(root: &Path) -> Result<()> {
    let graph = graph(&root.join("host").join("src"))?;
    let mut problems = Vec::new();
    for (from, to) in &graph {
        if LEAVES.contains(&from.as_str()) && !to.is_empty() {
            problems.push(format!("`{from}` is a leaf but imports {to:?}"));
        }
        if to.contains("app") && from != "cli" {
            problems.push(format!(
                "`{from}` imports the composition root `app` (only `cli` may)"
            ));
        }
    }
    for cycle in cycles(&graph) {
        problems.push(format!("import circle: {}", cycle.join(" -> ")));
    }
    if !problems.is_empty() {
        bail!("host/src layers: {}", problems.join("; "));
    }
    eprintln!(
        "xtask: host/src layers ok ({} modules, no circle)",
        graph.len()
    );
    Ok(())
}

/// Top-level module → the top-level modules its files name.
fn graph(src: &Path) -> Result<BTreeMap<String, BTreeSet<String>>> {
    let mut files = Vec::new();
    collect(src, &mut files)?;
    let modules: BTreeSet<String> = files
        .iter()
        .map(|f| top_module(src, f))
        .filter(|m| !matches!(m.as_str(), "lib" | "main"))
        .collect();
    let mut graph: BTreeMap<String, BTreeSet<String>> = modules
        .iter()
        .map(|m| (m.clone(), BTreeSet::new()))
        .collect();
    for file in &files {
        let from = top_module(src, file);
        let Some(edges) = graph.get_mut(&from) else {
            continue;
        };
        let text =
            std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
        for line in text.lines() {
            let code = line.split("//").next().unwrap_or("");
            for target in crate_paths(code) {
                if target != from && modules.contains(&target) {
                    edges.insert(target);
                }
            }
        }
    }
    Ok(graph)
}

fn collect(dir: &Path, out: &mut Vec<std::path::PathBuf>) -> Result<()> {
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        if path.is_dir() {
            collect(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    Ok(())
}

/// `host/src/routing/compiled.rs` → `routing`; `host/src/app.rs` → `app`.
fn top_module(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).unwrap_or(file);
    let first = rel
        .components()
        .next()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .unwrap_or_default();
    first.trim_end_matches(".rs").to_owned()
}

/// The first segment after each `crate::` in `code`, including each item
/// of a `crate::{a, b::c}` group.
fn crate_paths(code: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = code;
    while let Some(i) = rest.find("crate::") {
        // `sluice_crate::` or `mycrate::` are not `crate::`.
        let before = rest[..i].chars().next_back();
        rest = &rest[i + "crate::".len()..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue;
        }
        if let Some(group) = rest.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            for item in group[..end].split(',') {
                if let Some(name) = ident(item.trim()) {
                    out.push(name);
                }
            }
        } else if let Some(name) = ident(rest) {
            out.push(name);
        }
    }
    out
}

fn ident(s: &str) -> Option<String> {
    let name: String = s
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect();
    (!name.is_empty()).then_some(name)
}

/// Every strongly connected component with more than one module (Tarjan).
fn cycles(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    struct Tarjan<'g> {
        graph: &'g BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'g str, usize>,
        low: BTreeMap<&'g str, usize>,
        stack: Vec<&'g str>,
        on_stack: BTreeSet<&'g str>,
        out: Vec<Vec<String>>,
    }
    impl<'g> Tarjan<'g> {
        fn visit(&mut self, v: &'g str) {
            let n = self.index.len();
            self.index.insert(v, n);
            self.low.insert(v, n);
            self.stack.push(v);
            self.on_stack.insert(v);
            for w in self.graph.get(v).into_iter().flatten() {
                let w = w.as_str();
                if !self.index.contains_key(w) {
                    self.visit(w);
                    let lw = self.low[w];
                    let lv = self.low.get_mut(v).expect("visited");
                    *lv = (*lv).min(lw);
                } else if self.on_stack.contains(w) {
                    let iw = self.index[w];
                    let lv = self.low.get_mut(v).expect("visited");
                    *lv = (*lv).min(iw);
                }
            }
            if self.low[v] == self.index[v] {
                let mut component = Vec::new();
                while let Some(w) = self.stack.pop() {
                    self.on_stack.remove(w);
                    component.push(w.to_owned());
                    if w == v {
                        break;
                    }
                }
                if component.len() > 1 {
                    component.sort();
                    self.out.push(component);
                }
            }
        }
    }
    let mut t = Tarjan {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        out: Vec::new(),
    };
    for v in graph.keys() {
        if !t.index.contains_key(v.as_str()) {
            t.visit(v);
        }
    }
    t.out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_and_groups_are_read() {
        assert_eq!(
            crate_paths("use crate::{config::X, name::Name}; crate::app::App"),
            ["config", "name", "app"]
        );
        assert!(crate_paths("use sluice_crate::x;").is_empty());
    }

    #[test]
    fn a_circle_is_found() {
        let g: BTreeMap<String, BTreeSet<String>> = [
            ("a", vec!["b"]),
            ("b", vec!["c"]),
            ("c", vec!["a"]),
            ("d", vec!["a"]),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.into_iter().map(str::to_owned).collect()))
        .collect();
        assert_eq!(cycles(&g), vec![vec!["a", "b", "c"]]);
    }
}
