//! The modules form layers: no module reaches another that reaches back to it (through any
//! number of others). `fields` is the leaf every layer may use; `commands` is on top. A `use` or
//! path that closes a circle fails this test, naming the modules and files on it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Top-level module → the modules its (non-test) code names as `crate::<module>`, with files.
fn imports() -> BTreeMap<String, BTreeMap<String, BTreeSet<String>>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut graph: BTreeMap<String, BTreeMap<String, BTreeSet<String>>> = BTreeMap::new();
    let mut stack = vec![src.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let relative = path
                .strip_prefix(&src)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            if !relative.ends_with(".rs")
                || relative.starts_with("bin/")
                || relative == "main.rs"
                || relative == "lib.rs"
            {
                continue;
            }
            let module = relative
                .split('/')
                .next()
                .unwrap()
                .trim_end_matches(".rs")
                .to_string();
            let text = std::fs::read_to_string(&path).unwrap();
            let code = text.split("#[cfg(test)]\nmod tests").next().unwrap();
            for (i, _) in code.match_indices("crate::") {
                let target: String = code[i + 7..]
                    .chars()
                    .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                    .collect();
                if !target.is_empty() && target != module {
                    graph
                        .entry(module.clone())
                        .or_default()
                        .entry(target)
                        .or_default()
                        .insert(relative.clone());
                }
            }
        }
    }
    graph
}

/// The modules reachable from `from`.
fn reachable(
    graph: &BTreeMap<String, BTreeMap<String, BTreeSet<String>>>,
    from: &str,
) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut todo = vec![from.to_string()];
    while let Some(module) = todo.pop() {
        for next in graph.get(&module).into_iter().flat_map(|m| m.keys()) {
            if seen.insert(next.clone()) {
                todo.push(next.clone());
            }
        }
    }
    seen
}

#[test]
fn no_module_imports_another_in_a_circle() {
    let graph = imports();
    let mut circles = Vec::new();
    for (module, targets) in &graph {
        for (target, files) in targets {
            if reachable(&graph, target).contains(module) {
                circles.push(format!("{module} -> {target} (in {files:?}) and back"));
            }
        }
    }
    assert!(
        circles.is_empty(),
        "import circles:\n{}",
        circles.join("\n")
    );
}

#[test]
fn fields_is_the_leaf() {
    let graph = imports();
    assert!(
        graph.get("fields").is_none_or(|t| t.is_empty()),
        "fields imports {:?}",
        graph.get("fields")
    );
    assert!(graph.contains_key("resolve"), "the walk found the modules");
}

#[test]
fn the_speakap_client_knows_nothing_of_hr_config_resolve_or_plan() {
    let reached = reachable(&imports(), "speakap");
    for above in ["hr", "config", "resolve", "plan"] {
        assert!(
            !reached.contains(above),
            "speakap reaches {above}: {reached:?}"
        );
    }
}
