//! The modules form layers: no module reaches another that reaches back to it (through any
//! number of others). `fields` is the leaf every layer may use; `commands` is on top. A `use` or
//! path that closes a circle fails this test, naming the modules and files on it. Two checks of
//! the same kind keep the shape: only the simulator and the embedded connection name the
//! simulator, and no function is longer than a phase should be. ARCHITECTURE.md's code map is
//! kept in layer order.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Every `.rs` file under `src/`, as (path relative to `src/`, text).
fn sources() -> Vec<(String, String)> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    let mut stack = vec![src.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let relative = path.strip_prefix(&src).unwrap().to_string_lossy();
                let text = std::fs::read_to_string(&path).unwrap();
                files.push((relative.replace('\\', "/"), text));
            }
        }
    }
    files.sort();
    files
}

/// Top-level module → the modules its (non-test) code names as `crate::<module>`, with files.
fn imports() -> BTreeMap<String, BTreeMap<String, BTreeSet<String>>> {
    let mut graph: BTreeMap<String, BTreeMap<String, BTreeSet<String>>> = BTreeMap::new();
    for (relative, text) in sources() {
        if relative.starts_with("bin/") || relative == "main.rs" || relative == "lib.rs" {
            continue;
        }
        let module = relative
            .split('/')
            .next()
            .unwrap()
            .trim_end_matches(".rs")
            .to_string();
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

/// ARCHITECTURE.md's code map lists the modules from the bottom layer up; this keeps it so.
/// Every module of the crate has a row, and no module imports one whose first row comes later.
#[test]
fn the_code_map_lists_every_module_below_the_modules_that_import_it() {
    let map =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("ARCHITECTURE.md"))
            .unwrap();
    let mut order: Vec<String> = Vec::new();
    for row in map.lines().filter(|l| l.starts_with("| `src/")) {
        let paths = row.split('|').nth(1).unwrap();
        for path in paths.split('`').filter(|p| p.starts_with("src/")) {
            let module = path["src/".len()..]
                .split('/')
                .next()
                .unwrap()
                .trim_end_matches(".rs")
                .to_string();
            if !order.contains(&module) {
                order.push(module);
            }
        }
    }
    let position = |module: &str| order.iter().position(|m| m == module);
    let mut wrong = Vec::new();
    for (relative, _) in sources() {
        let module = relative.split('/').next().unwrap().trim_end_matches(".rs");
        if module != "lib" && position(module).is_none() {
            wrong.push(format!("src/{relative} has no row"));
        }
    }
    for (module, targets) in imports() {
        for (target, files) in targets {
            if position(&target) > position(&module) {
                wrong.push(format!(
                    "{module} imports {target}, which is listed after it (in {files:?})"
                ));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "ARCHITECTURE.md's code map is out of date:\n{}",
        wrong.join("\n")
    );
}

/// The simulator is behind the `simulator` feature: the reconciler builds without it only if
/// nothing but the simulator itself and the embedded connection names it.
#[test]
fn only_the_simulator_and_the_embedded_connection_name_the_simulator() {
    let allowed = |path: &str| {
        path.starts_with("sim/") || path == "bin/speakap-sim.rs" || path == "commands/embedded.rs"
    };
    let mut naming = Vec::new();
    for (path, text) in sources().iter().filter(|(path, _)| !allowed(path)) {
        for (number, line) in text.lines().enumerate() {
            let names_it = line.contains("crate::sim")
                || line.contains("speakap_sync::sim")
                || line.match_indices("sim::").any(|(i, _)| {
                    i == 0 || !line[..i].ends_with(|c: char| c.is_alphanumeric() || c == '_')
                });
            if names_it {
                naming.push(format!("src/{path}:{}: {}", number + 1, line.trim()));
            }
        }
    }
    assert!(
        naming.is_empty(),
        "only src/sim/, speakap-sim and commands/embedded.rs may name the simulator:\n{}",
        naming.join("\n")
    );
}

/// The longest a function of the crate may be, in lines from `fn` to its closing brace.
const MAX_FUNCTION_LINES: usize = 80;

/// Functions still over the limit, as (file, name): each is to be split into its phases. A
/// function that is no longer over the limit must leave this list.
const LONG_FUNCTIONS: &[(&str, &str)] = &[];

/// Functions outside tests longer than `max` lines, as (file, name, first line, lines). A
/// function ends at the first line after it that is its closing brace at its own indentation,
/// as rustfmt writes it.
fn long_functions(max: usize) -> Vec<(String, String, usize, usize)> {
    let mut long = Vec::new();
    for (path, text) in sources() {
        if path.ends_with("/tests.rs") {
            continue;
        }
        let code = text.split("#[cfg(test)]\nmod tests").next().unwrap();
        let lines: Vec<&str> = code.lines().collect();
        for (start, line) in lines.iter().enumerate() {
            let Some(name) = function_name(line) else {
                continue;
            };
            let indent = line.len() - line.trim_start().len();
            let closing = format!("{}}}", " ".repeat(indent));
            let Some(length) = lines[start..].iter().position(|l| *l == closing) else {
                continue; // a declaration without a body, or a body on the `fn` line
            };
            if length + 1 > max {
                long.push((path.clone(), name, start + 1, length + 1));
            }
        }
    }
    long
}

/// The name of the function a line starts, if it starts one.
fn function_name(line: &str) -> Option<String> {
    let mut rest = line.trim_start();
    if let Some(after) = rest.strip_prefix("pub") {
        rest = match after.strip_prefix('(') {
            Some(scoped) => scoped.split_once(')')?.1,
            None => after,
        }
        .trim_start();
    }
    for qualifier in ["const ", "async ", "unsafe "] {
        rest = rest.strip_prefix(qualifier).unwrap_or(rest);
    }
    let name: String = rest
        .strip_prefix("fn ")?
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect();
    (!name.is_empty()).then_some(name)
}

#[test]
fn no_function_is_longer_than_the_limit() {
    let long = long_functions(MAX_FUNCTION_LINES);
    let listed = |path: &str, name: &str| LONG_FUNCTIONS.contains(&(path, name));
    let unlisted: Vec<String> = long
        .iter()
        .filter(|(path, name, _, _)| !listed(path, name))
        .map(|(path, name, line, length)| format!("src/{path}:{line}: `{name}`, {length} lines"))
        .collect();
    assert!(
        unlisted.is_empty(),
        "functions over {MAX_FUNCTION_LINES} lines; split each into one function per phase:\n{}",
        unlisted.join("\n")
    );
    let split: Vec<String> = LONG_FUNCTIONS
        .iter()
        .filter(|(path, name)| !long.iter().any(|(p, n, _, _)| p == path && n == name))
        .map(|(path, name)| format!("src/{path}: `{name}`"))
        .collect();
    assert!(
        split.is_empty(),
        "no longer over {MAX_FUNCTION_LINES} lines (or gone): remove from LONG_FUNCTIONS:\n{}",
        split.join("\n")
    );
}

#[test]
fn the_length_check_finds_long_functions() {
    // The walk sees this crate's functions: with a low enough limit, `plan` is among them.
    let long = long_functions(10);
    assert!(
        long.iter()
            .any(|(path, name, _, _)| path == "plan/mod.rs" && name == "plan"),
        "{long:?}"
    );
    assert_eq!(
        function_name("    pub(super) async fn joiners(&self) {"),
        Some("joiners".into())
    );
    assert_eq!(function_name("    let fn_name = 1;"), None);
}
