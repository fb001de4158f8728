//! Loading in phases: parse each file's documents and sort them by kind, merge the documents of
//! a kind, check each kind against its schema, type it, note where each rule was written, and run
//! the semantic checks.

use std::collections::{BTreeMap, BTreeSet};

use super::checks::SemanticChecks;
use super::schema_errors::validate_schema;
use super::tree::{self, Node, NodeValue, Span};
use super::{
    Config, ConfigFiles, Exclusion, Exclusions, Kind, Loader, MappingRules, Merged, Override,
    Overrides, SourceFile, SyncConfig, finish, has_errors, schema,
};
use crate::diag::Diagnostic;

/// Parses, merges, validates and types the config files. On failure every problem found is
/// returned at once, sorted by place.
pub fn load(files: ConfigFiles) -> Result<Config, Vec<Diagnostic>> {
    let mut loader = Loader {
        files: &files.files,
        diagnostics: Vec::new(),
    };
    let by_kind = documents_by_kind(&mut loader, &files.files);
    let mut merged = merge_kinds(&mut loader, by_kind);
    require_sync_config(&mut loader, &merged, &files.files);

    // Kinds the schema rejects are not read further; the others still get their semantic
    // checks, so that one run reports as much as it can (the checks need the SyncConfig).
    let rejected = kinds_the_schema_rejects(&mut loader, &merged);
    if rejected.contains(&Kind::SyncConfig) || loader.diagnostics.iter().any(|d| d.rule == "yaml") {
        return Err(finish(loader.diagnostics));
    }
    let readable = |kind: Kind| merged.get(&kind).filter(|_| !rejected.contains(&kind));
    let sync: Option<SyncConfig> = typed(&mut loader, readable(Kind::SyncConfig));
    let rules: Option<MappingRules> = typed(&mut loader, readable(Kind::MappingRules));
    let exclusions: Option<Exclusions> = typed(&mut loader, readable(Kind::Exclusions));
    let overrides: Option<Overrides> = typed(&mut loader, readable(Kind::Overrides));
    let Some(mut sync) = sync.filter(|_| !has_errors(&loader.diagnostics) || !rejected.is_empty())
    else {
        return Err(finish(loader.diagnostics));
    };
    let mut rules = rules.unwrap_or_default();
    let mut exclusions = exclusions.unwrap_or_default().exclude;
    let mut overrides = overrides.unwrap_or_default().overrides;
    let origins = Origins {
        loader: &loader,
        merged: &merged,
    };
    origins.attach_to_rules(&mut rules);
    if let Some(primary) = &mut sync.policy.primary_contract {
        primary.origin =
            loader.origin(origins.span_at(Kind::SyncConfig, &["policy", "primary_contract"]));
    }
    origins.attach_to_exclusions_and_overrides(&mut exclusions, &mut overrides);

    let checks = SemanticChecks {
        merged: &merged,
        sync: &sync,
        prefix: &files.prefix,
    };
    checks.run(&mut loader, &rules, &exclusions, &overrides);
    if has_errors(&loader.diagnostics) {
        return Err(finish(loader.diagnostics));
    }
    let warnings = finish(loader.diagnostics);
    let sync_tree = merged
        .remove(&Kind::SyncConfig)
        .expect("a typed SyncConfig was merged")
        .node;
    Ok(Config {
        sync,
        rules,
        exclusions,
        overrides,
        files,
        warnings,
        sync_tree,
    })
}

/// Every document of every file, by kind, with where its `kind` is written. Files that are not
/// YAML and documents without a known kind are reported and left out.
fn documents_by_kind(
    loader: &mut Loader,
    files: &[SourceFile],
) -> BTreeMap<Kind, Vec<(Node, Span)>> {
    let mut by_kind: BTreeMap<Kind, Vec<(Node, Span)>> = BTreeMap::new();
    for (file_id, file) in files.iter().enumerate() {
        let documents = match tree::parse_documents(file_id, &file.text) {
            Ok(documents) => documents,
            Err(e) => {
                loader.error(
                    "yaml",
                    e.span,
                    format!("invalid YAML: {}", e.message),
                    "fix the YAML syntax; nothing from this file was used",
                );
                continue;
            }
        };
        for mut document in documents {
            if let NodeValue::Null = document.value {
                continue; // an empty document, e.g. a trailing `---`
            }
            if !matches!(document.value, NodeValue::Map(_)) {
                loader.error(
                    "document",
                    document.span,
                    "a config document must be a mapping with `apiVersion` and `kind`",
                    "start the document with `apiVersion: speakap-sync/v1` and `kind: ...`",
                );
                continue;
            }
            check_api_version(loader, &mut document);
            if let Some((kind, span)) = take_kind(loader, &mut document) {
                by_kind.entry(kind).or_default().push((document, span));
            }
        }
    }
    by_kind
}

/// Takes `apiVersion` out of a document, reporting it when missing or not ours.
fn check_api_version(loader: &mut Loader, document: &mut Node) {
    match &document.take("apiVersion") {
        None => loader.error(
            "document/apiVersion",
            document.span,
            "missing `apiVersion`",
            "add `apiVersion: speakap-sync/v1`",
        ),
        Some(entry) if !matches!(&entry.value.value, NodeValue::Str { text, .. } if text == schema::API_VERSION) => {
            loader.error(
                "document/apiVersion",
                entry.value.span,
                format!("unsupported apiVersion `{}`", entry.value.to_json()),
                "this version of speakap-sync reads `apiVersion: speakap-sync/v1`",
            )
        }
        Some(_) => {}
    }
}

/// Takes `kind` out of a document: the kind with where it is written, or `None` (reported).
fn take_kind(loader: &mut Loader, document: &mut Node) -> Option<(Kind, Span)> {
    let kinds = Kind::ALL.map(Kind::name).join(", ");
    let Some(entry) = document.take("kind") else {
        loader.error(
            "document/kind",
            document.span,
            "missing `kind`",
            format!("add `kind:` with one of {kinds}"),
        );
        return None;
    };
    let NodeValue::Str { text, .. } = &entry.value.value else {
        loader.error(
            "document/kind",
            entry.value.span,
            "`kind` must be text",
            format!("one of {kinds}"),
        );
        return None;
    };
    let Some(kind) = Kind::from_name(text) else {
        loader.error(
            "document/kind",
            entry.value.span,
            format!("unknown kind `{text}`"),
            format!("kinds are {kinds} (spelled exactly so)"),
        );
        return None;
    };
    Some((kind, entry.key_span))
}

/// One tree per kind: its documents merged, a key written twice reported at both places.
fn merge_kinds(
    loader: &mut Loader,
    by_kind: BTreeMap<Kind, Vec<(Node, Span)>>,
) -> BTreeMap<Kind, Merged> {
    let mut merged: BTreeMap<Kind, Merged> = BTreeMap::new();
    for (kind, documents) in by_kind {
        let mut documents = documents.into_iter();
        let (mut first, _) = documents.next().expect("grouped kinds have a document");
        let mut conflicts = Vec::new();
        for (document, _) in documents {
            first.merge(document, "", &mut conflicts);
        }
        for conflict in conflicts {
            let d = Diagnostic::error(
                "duplicate-key",
                format!(
                    "{} `{}` is defined twice",
                    kind.name(),
                    conflict.path.trim_start_matches('/').replace('/', ".")
                ),
            )
            .at(loader.location(conflict.second))
            .related(loader.location(conflict.first), "first defined at")
            .hint("documents of one kind are merged; keep each key in one place");
            loader.diagnostics.push(d);
        }
        merged.insert(kind, Merged { node: first });
    }
    merged
}

/// Reports a configuration without a SyncConfig (unless a file that is not YAML may hold it).
fn require_sync_config(loader: &mut Loader, merged: &BTreeMap<Kind, Merged>, files: &[SourceFile]) {
    if !merged.contains_key(&Kind::SyncConfig)
        && !loader.diagnostics.iter().any(|d| d.rule == "yaml")
    {
        let names: Vec<&str> = files.iter().map(|f| f.path.as_str()).collect();
        loader.diagnostics.push(
            Diagnostic::error(
                "document/kind",
                format!("no SyncConfig document among {}", names.join(", ")),
            )
            .hint("add a document with `kind: SyncConfig` (network, speakap, source)"),
        );
    }
}

/// Checks each kind against its schema, reporting every error; the kinds with errors.
fn kinds_the_schema_rejects(
    loader: &mut Loader,
    merged: &BTreeMap<Kind, Merged>,
) -> BTreeSet<Kind> {
    let mut rejected = BTreeSet::new();
    for (kind, m) in merged {
        let before = loader.diagnostics.len();
        validate_schema(loader, *kind, &m.node);
        if has_errors(&loader.diagnostics[before..]) {
            rejected.insert(*kind);
        }
    }
    rejected
}

/// Where each rule, table entry, exclusion and override was written, for plans and `explain`.
struct Origins<'a> {
    loader: &'a Loader<'a>,
    merged: &'a BTreeMap<Kind, Merged>,
}

impl Origins<'_> {
    fn span_at(&self, kind: Kind, path: &[&str]) -> Span {
        super::span_at(self.merged, kind, path)
    }

    fn attach_to_rules(&self, rules: &mut MappingRules) {
        let loader = self.loader;
        for (i, rule) in rules.groups.iter_mut().enumerate() {
            rule.origin =
                loader.origin(self.span_at(Kind::MappingRules, &["groups", &i.to_string()]));
        }
        for (i, rule) in rules.roles.iter_mut().enumerate() {
            rule.origin =
                loader.origin(self.span_at(Kind::MappingRules, &["roles", &i.to_string()]));
        }
        for (i, rule) in rules.local_admins.iter_mut().enumerate() {
            rule.origin =
                loader.origin(self.span_at(Kind::MappingRules, &["local_admins", &i.to_string()]));
        }
        for (table_name, table) in [
            ("business_units", &mut rules.business_units),
            ("departments", &mut rules.departments),
        ] {
            if let Some(table) = table {
                // One pass over the written entries: a lookup per code would be quadratic.
                let written = self
                    .merged
                    .get(&Kind::MappingRules)
                    .and_then(|m| m.node.find([table_name, "map"]));
                if let Some(NodeValue::Map(entries)) = written.map(|node| &node.value) {
                    table.origins = entries
                        .iter()
                        .map(|e| (e.key.clone(), loader.origin(e.value.span)))
                        .collect();
                }
                table.default_origin =
                    loader.origin(self.span_at(Kind::MappingRules, &[table_name, "default"]));
            }
        }
    }

    fn attach_to_exclusions_and_overrides(
        &self,
        exclusions: &mut [Exclusion],
        overrides: &mut [Override],
    ) {
        for (i, exclusion) in exclusions.iter_mut().enumerate() {
            exclusion.origin = self
                .loader
                .origin(self.span_at(Kind::Exclusions, &["exclude", &i.to_string()]));
        }
        for (i, o) in overrides.iter_mut().enumerate() {
            o.origin = self
                .loader
                .origin(self.span_at(Kind::Overrides, &["overrides", &i.to_string()]));
        }
    }
}

/// `None` when the kind has no document, or (reported) when the value does not fit the types.
fn typed<T: serde::de::DeserializeOwned>(
    loader: &mut Loader,
    merged: Option<&Merged>,
) -> Option<T> {
    let m = merged?;
    match serde_json::from_value(m.node.to_json()) {
        Ok(value) => Some(value),
        Err(e) => {
            // The schema accepted it, so this is a gap between schema and types: still say where.
            loader.error(
                "schema",
                m.node.span,
                format!("cannot read this document: {e}"),
                "check the values against schema/",
            );
            None
        }
    }
}

/// The SyncConfig of a commit whose other documents may be broken (a pull request repairing
/// them): its SyncConfig documents alone, if they merge and pass the schema. Files that are not
/// valid YAML are passed over: whatever is read was written in that commit or is a default.
pub fn load_sync_config(files: &ConfigFiles) -> Option<SyncConfig> {
    let mut loader = Loader {
        files: &files.files,
        diagnostics: Vec::new(),
    };
    let mut merged: Option<Node> = None;
    let mut conflicts = Vec::new();
    for (file_id, file) in files.files.iter().enumerate() {
        let Ok(documents) = tree::parse_documents(file_id, &file.text) else {
            continue;
        };
        for mut document in documents {
            let kind = document.take("kind").map(|entry| entry.value.value);
            if !matches!(kind, Some(NodeValue::Str { text, .. }) if text == Kind::SyncConfig.name())
            {
                continue;
            }
            document.take("apiVersion");
            match &mut merged {
                Some(first) => first.merge(document, "", &mut conflicts),
                None => merged = Some(document),
            }
        }
    }
    let node = merged.filter(|_| conflicts.is_empty())?;
    validate_schema(&mut loader, Kind::SyncConfig, &node);
    if has_errors(&loader.diagnostics) {
        return None;
    }
    serde_json::from_value(node.to_json()).ok()
}
