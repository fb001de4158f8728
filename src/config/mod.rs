//! The configuration: YAML documents read from git, merged per kind, checked against the JSON
//! schema and by semantic checks, then turned into typed structs that remember where each rule was
//! written.

mod checks;
mod columns;
mod load;
pub mod model;
pub mod paths;
pub mod repo;
pub mod schema;
mod schema_errors;
pub mod tree;

pub use columns::{configured_columns, configured_fields, known_fields};
pub use load::{load, load_sync_config};
pub use model::*;
pub use repo::{ConfigFiles, Revision, SourceFile, read_config_files};

use crate::diag::{self, Diagnostic, Location};
use tree::{Node, Span};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    SyncConfig,
    MappingRules,
    Exclusions,
    Overrides,
}

impl Kind {
    pub const ALL: [Kind; 4] = [
        Kind::SyncConfig,
        Kind::MappingRules,
        Kind::Exclusions,
        Kind::Overrides,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Kind::SyncConfig => "SyncConfig",
            Kind::MappingRules => "MappingRules",
            Kind::Exclusions => "Exclusions",
            Kind::Overrides => "Overrides",
        }
    }

    fn from_name(name: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.name() == name)
    }
}

/// A loaded, valid configuration.
#[derive(Debug)]
pub struct Config {
    pub sync: SyncConfig,
    pub rules: MappingRules,
    pub exclusions: Vec<Exclusion>,
    pub overrides: Vec<Override>,
    pub files: ConfigFiles,
    /// Non-fatal findings (shown by `validate` and in plans).
    pub warnings: Vec<Diagnostic>,
    /// The merged SyncConfig documents as written: where each setting is.
    sync_tree: Node,
}

impl Config {
    /// Where a SyncConfig setting is written (`None` when it is left to its default).
    pub fn setting_origin(&self, keys: &[&str]) -> Option<Origin> {
        let node = self.sync_tree.find(keys)?;
        Some(Origin {
            file: self.files.files[node.span.file].path.as_str().into(),
            line: node.span.line,
        })
    }
}

/// The merged documents of one kind with where each came from.
struct Merged {
    node: Node,
}

/// Where the value at `path` in the merged documents of `kind` was written, or the deepest
/// node on the way to it that was.
fn span_at(merged: &std::collections::BTreeMap<Kind, Merged>, kind: Kind, path: &[&str]) -> Span {
    merged
        .get(&kind)
        .map(|m| m.node.locate(path.iter().copied()).span)
        .unwrap_or_default()
}

struct Loader<'a> {
    files: &'a [SourceFile],
    diagnostics: Vec<Diagnostic>,
}

impl Loader<'_> {
    fn location(&self, span: Span) -> Location {
        Location {
            file: self.files[span.file].path.clone(),
            line: span.line,
            column: span.column,
        }
    }

    fn origin(&self, span: Span) -> Origin {
        Origin {
            file: self.files[span.file].path.as_str().into(),
            line: span.line,
        }
    }

    fn error(
        &mut self,
        rule: &str,
        span: Span,
        message: impl Into<String>,
        hint: impl Into<String>,
    ) {
        self.report(Diagnostic::error(rule, message), span, hint);
    }

    fn warning(
        &mut self,
        rule: &str,
        span: Span,
        message: impl Into<String>,
        hint: impl Into<String>,
    ) {
        self.report(Diagnostic::warning(rule, message), span, hint);
    }

    fn report(&mut self, diagnostic: Diagnostic, span: Span, hint: impl Into<String>) {
        let d = diagnostic.at(self.location(span)).hint(hint);
        self.diagnostics.push(d);
    }
}

fn has_errors(diagnostics: &[Diagnostic]) -> bool {
    diagnostics
        .iter()
        .any(|d| d.severity == diag::Severity::Error)
}

fn finish(mut diagnostics: Vec<Diagnostic>) -> Vec<Diagnostic> {
    diag::sort(&mut diagnostics);
    diagnostics
}

#[cfg(test)]
mod tests {
    use super::*;

    const EMBEDDED: &str = r#"apiVersion: speakap-sync/v1
kind: SyncConfig
network: "0123456789abcdef"
speakap:
  url: embedded
  embedded: { seed: simulator/seed.json, state: .speakap-sim/state.json }
source: { type: csv, path: hr.csv, columns: { xid: id, email: mail, last_name: name } }
"#;

    #[test]
    fn the_contract_policies_need_merging_and_a_location_column() {
        let text = "apiVersion: speakap-sync/v1
kind: SyncConfig
network: \"0123456789abcdef\"
speakap: { url: \"http://127.0.0.1:9\" }
source: { type: csv, path: hr.csv, columns: { xid: id, email: mail, last_name: name } }
policy:
  primary_contract: { when: { field: last_name, equals: X } }
  require_business_unit: true
";
        // Errors first, then warnings.
        let errors = load(ConfigFiles::in_memory("c0ffee", text)).expect_err("refused");
        let found: Vec<_> = (errors.iter())
            .map(|d| (d.message.as_str(), d.location.as_ref().map(|l| l.line)))
            .collect();
        assert_eq!(
            found,
            [
                (
                    "a business unit is required but `source.columns.locations` is not mapped",
                    Some(8)
                ),
                (
                    "`primary_contract` has no effect: rows with one employee ID are skipped",
                    Some(7)
                ),
            ]
        );
    }

    /// Run with and without `--no-default-features`: a build without the simulator rejects
    /// `url: embedded` when the configuration loads, before anything is read or sent.
    #[test]
    fn url_embedded_loads_only_in_a_build_with_the_simulator() {
        let loaded = load(ConfigFiles::in_memory("c0ffee", EMBEDDED));
        if cfg!(feature = "simulator") {
            assert!(loaded.is_ok(), "{:?}", loaded.err());
        } else {
            let errors = loaded.expect_err("a build without the simulator rejects it");
            let error = errors
                .iter()
                .find(|d| d.rule == "embedded")
                .expect("the `embedded` check fired");
            assert!(
                error.message.contains("without the `simulator` feature"),
                "{error:?}"
            );
            let location = error.location.as_ref().expect("located");
            assert_eq!(location.line, 5, "{location:?}");
        }
    }
}
