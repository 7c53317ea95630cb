//! The layering check, read from the source text of `src/`:
//!
//! 1. The top-level modules (a file `src/x.rs` or a directory `src/x/`) form no import cycle
//!    through their domain files. A *handler file* is one that declares HTTP operations
//!    (`#[utoipa::path`); it is the top of its module and is left out of the module graph.
//!    Every other file is domain (rules, stores, views, state) and its `crate::<module>`
//!    references (grouped `use crate::{a, b}` too) are the graph's edges.
//! 2. No module reaches into another module's handler file: what one module needs of another is
//!    that module's domain API (its domain files, or what its `mod.rs` re-exports). The wiring
//!    (`app`, `routes`, `openapi`, `cli`, `seed`) mounts handlers and is exempt.
//!
//! Both failures name the files. The allow-lists below hold what is not yet broken up; they
//! only shrink (a second test fails on an entry that no longer occurs).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Edges of the module graph still allowed although they close a cycle: (from, to, why).
const ALLOWED_EDGES: &[(&str, &str, &str)] = &[
    (
        "parties",
        "rights",
        "what an ended party may still move is written in the ledger's buckets; the rule belongs \
         with the ledger, which already asks parties whether a party has ended",
    ),
    (
        "market",
        "collateral",
        "a disposal offer takes and gives back pledged quantity (market/mod.rs); the encumbrance \
         core is to own disposal and be called by the market through it",
    ),
];

/// Handler files still reached from another module: (importing file, handler file), paths
/// relative to `src/`.
const ALLOWED_HANDLER_IMPORTS: &[(&str, &str)] = &[
    // The encumbrance core (collateral/, forest/) is being rewritten; it is to use the market's
    // and the forest's domain API (`crate::market::…`, re-exported in market/mod.rs).
    ("collateral/freezes/court_transfers.rs", "market/trades.rs"),
    ("collateral/freezes/holds.rs", "market/auctions.rs"),
    ("collateral/freezes/holds.rs", "market/listings.rs"),
    ("collateral/lender.rs", "forest/freezes.rs"),
    ("collateral/lender.rs", "market/trades.rs"),
    ("collateral/lender.rs", "parties/routes.rs"),
    ("collateral/pledges/enforcement.rs", "market/benchmarks.rs"),
    ("collateral/pledges/enforcement.rs", "market/settings.rs"),
    ("forest/parcels/mod.rs", "collateral/lender.rs"),
    // Approvals run the forest's effects; forest/mod.rs is to re-export them.
    ("proposals/routes.rs", "forest/freezes.rs"),
];

/// Modules that mount every module's handlers.
const WIRING: &[&str] = &["app", "routes", "openapi", "cli", "seed"];

type Graph = BTreeMap<String, BTreeMap<String, String>>;

struct Source {
    /// Path relative to `src/` → (top-level module, text without line comments).
    files: BTreeMap<String, (String, String)>,
}

impl Source {
    fn read() -> Source {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut paths = Vec::new();
        rust_files(&src, &mut paths);
        let mut files = BTreeMap::new();
        for path in paths {
            let rel = path
                .strip_prefix(&src)
                .expect("under src/")
                .to_string_lossy()
                .replace('\\', "/");
            let first = rel.split('/').next().unwrap_or_default();
            let module = first.trim_end_matches(".rs").to_string();
            if module == "main" || module == "lib" {
                continue;
            }
            let text = std::fs::read_to_string(&path).expect("a readable file");
            files.insert(rel, (module, without_comments(&text)));
        }
        Source { files }
    }

    fn modules(&self) -> BTreeSet<&str> {
        self.files.values().map(|(m, _)| m.as_str()).collect()
    }

    fn is_handler(&self, rel: &str) -> bool {
        self.files
            .get(rel)
            .is_some_and(|(_, text)| text.contains("#[utoipa::path"))
    }

    /// The deepest file a `crate::a::b::c` path names (`a/b.rs` or `a/b/mod.rs`, …).
    fn resolve(&self, segments: &[String]) -> Option<String> {
        let mut best = None;
        let mut dir = String::new();
        for seg in segments {
            if !dir.is_empty() {
                dir.push('/');
            }
            dir.push_str(seg);
            if self.files.contains_key(&format!("{dir}.rs")) {
                best = Some(format!("{dir}.rs"));
            } else if self.files.contains_key(&format!("{dir}/mod.rs")) {
                best = Some(format!("{dir}/mod.rs"));
            } else {
                break;
            }
        }
        best
    }

    /// The module graph of the domain files, and every reach into another module's handler file.
    fn analyse(&self) -> (Graph, BTreeSet<(String, String)>) {
        let modules = self.modules();
        let mut graph: Graph = modules
            .iter()
            .map(|m| (m.to_string(), BTreeMap::new()))
            .collect();
        let mut reaches = BTreeSet::new();
        for (rel, (module, text)) in &self.files {
            let handler = self.is_handler(rel);
            for path in crate_paths(text) {
                let Some(to) = path.first().filter(|m| modules.contains(m.as_str())) else {
                    continue;
                };
                if to == module {
                    continue;
                }
                if !handler {
                    graph
                        .get_mut(module)
                        .expect("every module is a node")
                        .entry(to.clone())
                        .or_insert_with(|| rel.clone());
                }
                if let Some(target) = self.resolve(&path) {
                    if !WIRING.contains(&module.as_str())
                        && !target.ends_with("mod.rs")
                        && self.is_handler(&target)
                    {
                        reaches.insert((rel.clone(), target));
                    }
                }
            }
        }
        (graph, reaches)
    }
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .expect("src/ is readable")
        .map(|e| e.expect("a directory entry").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Text with line comments removed, so a comment naming a module is no dependency.
fn without_comments(text: &str) -> String {
    text.lines()
        .map(|line| match line.find("//") {
            Some(i) => &line[..i],
            None => line,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn ident_at(text: &str) -> &str {
    let end = text
        .find(|c: char| !(c.is_alphanumeric() || c == '_'))
        .unwrap_or(text.len());
    &text[..end]
}

/// The leading identifiers of a path (`a::b::C` → a, b, C), and the text after `::{` when the
/// path opens a group (`a::{b, c}`).
fn path_at(text: &str) -> (Vec<String>, Option<&str>) {
    let mut segments = Vec::new();
    let mut rest = text;
    loop {
        let id = ident_at(rest);
        if id.is_empty() {
            return (segments, None);
        }
        segments.push(id.to_string());
        rest = &rest[id.len()..];
        match rest.strip_prefix("::") {
            Some(r) => match r.strip_prefix('{') {
                Some(group) => return (segments, Some(group)),
                None => rest = r,
            },
            None => return (segments, None),
        }
    }
}

/// The top-level items of a `{…}` group that `text` starts after its `{`.
fn group_items(text: &str) -> Vec<&str> {
    let mut items = Vec::new();
    let (mut depth, mut start) = (0usize, 0usize);
    for (i, c) in text.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => {
                items.push(&text[start..i]);
                break;
            }
            '}' => depth -= 1,
            ',' if depth == 0 => {
                items.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    items
}

/// Every `crate::…` path of `text`, as segments; a group (`crate::a::{b, c::D}`) gives one path
/// per item (`a::b`, `a::c::D`), one level deep.
fn crate_paths(text: &str) -> Vec<Vec<String>> {
    let mut found = Vec::new();
    for (i, _) in text.match_indices("crate::") {
        let rest = &text[i + "crate::".len()..];
        let (head, after) = match rest.strip_prefix('{') {
            Some(group) => (Vec::new(), Some(group)),
            None => path_at(rest),
        };
        match after {
            Some(group) => {
                for item in group_items(group) {
                    let (tail, _) = path_at(item.trim_start());
                    let mut path = head.clone();
                    path.extend(tail.into_iter().filter(|s| s != "self"));
                    if !path.is_empty() {
                        found.push(path);
                    }
                }
            }
            None if !head.is_empty() => found.push(head),
            None => {}
        }
    }
    found
}

/// Tarjan's strongly connected components with more than one module.
fn cycles(graph: &Graph) -> Vec<Vec<String>> {
    struct Walk<'a> {
        graph: &'a Graph,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on_stack: BTreeSet<&'a str>,
        found: Vec<Vec<String>>,
    }
    impl<'a> Walk<'a> {
        fn visit(&mut self, v: &'a str) {
            let i = self.index.len();
            self.index.insert(v, i);
            self.low.insert(v, i);
            self.stack.push(v);
            self.on_stack.insert(v);
            for w in self.graph[v].keys() {
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
                    component.push(w.to_string());
                    if w == v {
                        break;
                    }
                }
                if component.len() > 1 {
                    component.sort();
                    self.found.push(component);
                }
            }
        }
    }
    let mut walk = Walk {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        found: Vec::new(),
    };
    for v in graph.keys() {
        if !walk.index.contains_key(v.as_str()) {
            walk.visit(v);
        }
    }
    walk.found
}

/// The edges inside one component, with the file that makes each.
fn describe(graph: &Graph, component: &[String]) -> String {
    let mut lines = vec![format!("cycle among {}:", component.join(", "))];
    for from in component {
        for (to, file) in &graph[from] {
            if component.contains(to) {
                lines.push(format!("  {from} -> {to}   (e.g. src/{file})"));
            }
        }
    }
    lines.join("\n")
}

fn without_allowed_edges(mut graph: Graph) -> Graph {
    for (from, to, _) in ALLOWED_EDGES {
        if let Some(edges) = graph.get_mut(*from) {
            edges.remove(*to);
        }
    }
    graph
}

#[test]
fn domain_modules_import_each_other_without_cycles() {
    let (graph, _) = Source::read().analyse();
    let graph = without_allowed_edges(graph);
    let found: Vec<String> = cycles(&graph).iter().map(|c| describe(&graph, c)).collect();
    assert!(
        found.is_empty(),
        "import cycles between top-level modules:\n{}",
        found.join("\n")
    );
}

#[test]
fn no_module_reaches_into_another_modules_handler_file() {
    let (_, reaches) = Source::read().analyse();
    let unexpected: Vec<String> = reaches
        .iter()
        .filter(|(from, to)| !ALLOWED_HANDLER_IMPORTS.contains(&(from.as_str(), to.as_str())))
        .map(|(from, to)| format!("  src/{from} uses src/{to}"))
        .collect();
    assert!(
        unexpected.is_empty(),
        "handler files used from another module (expose a domain API in its mod.rs instead):\n{}",
        unexpected.join("\n")
    );
}

#[test]
fn allow_lists_hold_only_what_still_occurs() {
    let (graph, reaches) = Source::read().analyse();
    let stale_edges: Vec<String> = ALLOWED_EDGES
        .iter()
        .filter(|(from, to, _)| !graph.get(*from).is_some_and(|e| e.contains_key(*to)))
        .map(|(from, to, _)| format!("  ALLOWED_EDGES: ({from:?}, {to:?}, …)"))
        .collect();
    let stale_reaches: Vec<String> = ALLOWED_HANDLER_IMPORTS
        .iter()
        .filter(|(from, to)| !reaches.contains(&(from.to_string(), to.to_string())))
        .map(|(from, to)| format!("  ALLOWED_HANDLER_IMPORTS: ({from:?}, {to:?})"))
        .collect();
    let stale: Vec<String> = stale_edges.into_iter().chain(stale_reaches).collect();
    assert!(
        stale.is_empty(),
        "entries of tests/layering.rs that no longer occur: delete them\n{}",
        stale.join("\n")
    );
}

#[test]
fn the_check_reads_paths_groups_and_cycles() {
    let paths = crate_paths(
        "use crate::{app, auth::Role, db::{self, DbConn}};\nlet x = crate::kernel::f();\nuse crate::market::{listings::{self, X}, trades};",
    );
    let shown: Vec<String> = paths.iter().map(|p| p.join("::")).collect();
    assert_eq!(
        shown,
        [
            "app",
            "auth::Role",
            "db",
            "kernel::f",
            "market::listings",
            "market::trades"
        ]
    );
    let mut g: Graph = BTreeMap::new();
    for (from, to) in [("a", "b"), ("b", "c"), ("c", "a"), ("c", "d")] {
        g.entry(from.into())
            .or_default()
            .insert(to.into(), format!("{from}.rs"));
        g.entry(to.into()).or_default();
    }
    assert_eq!(
        cycles(&g),
        vec![vec!["a".to_string(), "b".into(), "c".into()]]
    );
}
