//! The configuration: YAML documents read from git, merged per kind, checked against the JSON
//! schema and by semantic checks, then turned into typed structs that remember where each rule was
//! written.

mod columns;
pub mod model;
pub mod paths;
pub mod repo;
pub mod schema;
pub mod tree;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::OnceLock;

use jsonschema::error::ValidationErrorKind;
use serde_json::Value;

pub use columns::{configured_columns, configured_fields, known_fields};
pub use model::*;
pub use repo::{ConfigFiles, Revision, SourceFile, read_config_files};

use crate::diag::{self, Diagnostic, Location};
use crate::fields::FieldName;
use tree::{Node, NodeValue, Span};

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

/// Parses, merges, validates and types the config files. On failure every problem found is
/// returned at once, sorted by place.
pub fn load(files: ConfigFiles) -> Result<Config, Vec<Diagnostic>> {
    let mut loader = Loader {
        files: &files.files,
        diagnostics: Vec::new(),
    };
    let mut by_kind: BTreeMap<Kind, Vec<(Node, Span)>> = BTreeMap::new();
    for (file_id, file) in files.files.iter().enumerate() {
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
            let api_version = document.take("apiVersion");
            let kind_entry = document.take("kind");
            match &api_version {
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
            let kinds = Kind::ALL.map(Kind::name).join(", ");
            let kind = match &kind_entry {
                None => {
                    loader.error(
                        "document/kind",
                        document.span,
                        "missing `kind`",
                        format!("add `kind:` with one of {kinds}"),
                    );
                    continue;
                }
                Some(entry) => match &entry.value.value {
                    NodeValue::Str { text, .. } => match Kind::from_name(text) {
                        Some(kind) => (kind, entry.key_span),
                        None => {
                            loader.error(
                                "document/kind",
                                entry.value.span,
                                format!("unknown kind `{text}`"),
                                format!("kinds are {kinds} (spelled exactly so)"),
                            );
                            continue;
                        }
                    },
                    _ => {
                        loader.error(
                            "document/kind",
                            entry.value.span,
                            "`kind` must be text",
                            format!("one of {kinds}"),
                        );
                        continue;
                    }
                },
            };
            by_kind.entry(kind.0).or_default().push((document, kind.1));
        }
    }

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

    if !merged.contains_key(&Kind::SyncConfig)
        && !loader.diagnostics.iter().any(|d| d.rule == "yaml")
    {
        let names: Vec<&str> = files.files.iter().map(|f| f.path.as_str()).collect();
        loader.diagnostics.push(
            Diagnostic::error(
                "document/kind",
                format!("no SyncConfig document among {}", names.join(", ")),
            )
            .hint("add a document with `kind: SyncConfig` (network, speakap, source)"),
        );
    }

    // Kinds the schema rejects are not read further; the others still get their semantic
    // checks, so that one run reports as much as it can (the checks need the SyncConfig).
    let mut rejected = BTreeSet::new();
    for (kind, m) in &merged {
        let before = loader.diagnostics.len();
        validate_schema(&mut loader, *kind, &m.node);
        if has_errors(&loader.diagnostics[before..]) {
            rejected.insert(*kind);
        }
    }
    if rejected.contains(&Kind::SyncConfig) || loader.diagnostics.iter().any(|d| d.rule == "yaml") {
        return Err(finish(loader.diagnostics));
    }
    let readable = |kind: Kind| merged.get(&kind).filter(|_| !rejected.contains(&kind));
    let sync: Option<SyncConfig> = typed(&mut loader, readable(Kind::SyncConfig));
    let rules: Option<MappingRules> = typed(&mut loader, readable(Kind::MappingRules));
    let exclusions: Option<Exclusions> = typed(&mut loader, readable(Kind::Exclusions));
    let overrides: Option<Overrides> = typed(&mut loader, readable(Kind::Overrides));
    let Some(sync) = sync.filter(|_| !has_errors(&loader.diagnostics) || !rejected.is_empty())
    else {
        return Err(finish(loader.diagnostics));
    };
    let mut rules = rules.unwrap_or_default();
    let mut exclusions = exclusions.unwrap_or_default().exclude;
    let mut overrides = overrides.unwrap_or_default().overrides;

    // Attach where each rule was written.
    let span_at = |kind: Kind, path: &[&str]| {
        merged
            .get(&kind)
            .map(|m| m.node.locate(path.iter().copied()).span)
            .unwrap_or_default()
    };
    for (i, rule) in rules.groups.iter_mut().enumerate() {
        rule.origin = loader.origin(span_at(Kind::MappingRules, &["groups", &i.to_string()]));
    }
    for (i, rule) in rules.roles.iter_mut().enumerate() {
        rule.origin = loader.origin(span_at(Kind::MappingRules, &["roles", &i.to_string()]));
    }
    for (i, rule) in rules.local_admins.iter_mut().enumerate() {
        rule.origin = loader.origin(span_at(
            Kind::MappingRules,
            &["local_admins", &i.to_string()],
        ));
    }
    for (table_name, table) in [
        ("business_units", &mut rules.business_units),
        ("departments", &mut rules.departments),
    ] {
        if let Some(table) = table {
            // One pass over the written entries: a lookup per code would be quadratic.
            let written = merged
                .get(&Kind::MappingRules)
                .and_then(|m| m.node.find([table_name, "map"]));
            if let Some(NodeValue::Map(entries)) = written.map(|node| &node.value) {
                table.origins = entries
                    .iter()
                    .map(|e| (e.key.clone(), loader.origin(e.value.span)))
                    .collect();
            }
            table.default_origin =
                loader.origin(span_at(Kind::MappingRules, &[table_name, "default"]));
        }
    }
    for (i, exclusion) in exclusions.iter_mut().enumerate() {
        exclusion.origin = loader.origin(span_at(Kind::Exclusions, &["exclude", &i.to_string()]));
    }
    for (i, o) in overrides.iter_mut().enumerate() {
        o.origin = loader.origin(span_at(Kind::Overrides, &["overrides", &i.to_string()]));
    }

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

fn has_errors(diagnostics: &[Diagnostic]) -> bool {
    diagnostics
        .iter()
        .any(|d| d.severity == diag::Severity::Error)
}

fn finish(mut diagnostics: Vec<Diagnostic>) -> Vec<Diagnostic> {
    diag::sort(&mut diagnostics);
    diagnostics
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

/// A validator that also checks `format` (dates such as an override's `until`), which JSON
/// Schema 2020-12 otherwise only annotates: a wrong date is then reported at its place.
fn checking_formats(schema: &Value) -> jsonschema::Validator {
    jsonschema::options()
        .should_validate_formats(true)
        .build(schema)
        .expect("generated schemas are valid")
}

fn validators() -> &'static BTreeMap<Kind, (jsonschema::Validator, Value)> {
    static VALIDATORS: OnceLock<BTreeMap<Kind, (jsonschema::Validator, Value)>> = OnceLock::new();
    VALIDATORS.get_or_init(|| {
        Kind::ALL
            .into_iter()
            .map(|kind| {
                let schema = schema::document_schema(kind);
                let validator = checking_formats(&schema);
                (kind, (validator, schema))
            })
            .collect()
    })
}

fn validate_schema(loader: &mut Loader, kind: Kind, node: &Node) {
    let mut instance = node.to_json();
    if let Value::Object(map) = &mut instance {
        map.insert(
            "apiVersion".into(),
            Value::String(schema::API_VERSION.into()),
        );
        map.insert("kind".into(), Value::String(kind.name().into()));
    }
    let (validator, schema) = &validators()[&kind];
    for error in validator.iter_errors(&instance) {
        report_schema_error(loader, kind, schema, node, &error, &[]);
    }
}

/// The `oneOf` variant of the `source` section that its `type` names, as a schema of its own
/// (with the definitions it refers to): a mistake inside the section is then reported as
/// itself, not as "not a valid HR source".
fn source_variant(schema: &Value, source: &Node) -> Option<Value> {
    let wanted = match &source.get("type")?.value.value {
        NodeValue::Str { text, .. } => text.clone(),
        _ => return None,
    };
    let variant = schema
        .pointer("/$defs/Source/oneOf")?
        .as_array()?
        .iter()
        .find(|v| v.pointer("/properties/type/const") == Some(&Value::String(wanted.clone())))?;
    let mut variant = variant.clone();
    variant
        .as_object_mut()?
        .insert("$defs".into(), schema.get("$defs")?.clone());
    Some(variant)
}

/// Reports one schema error as a diagnostic at its place. `within` is the instance path of the
/// part of `node` the error's path is relative to.
fn report_schema_error(
    loader: &mut Loader,
    kind: Kind,
    schema: &Value,
    node: &Node,
    error: &jsonschema::ValidationError<'_>,
    within: &[String],
) {
    let segments: Vec<String> = within
        .iter()
        .cloned()
        .chain(
            error
                .instance_path()
                .iter()
                .map(|segment| segment.to_string()),
        )
        .collect();
    let target = node.locate(&segments);
    let keyword = error.kind().keyword();
    let rule = format!("schema/{keyword}");
    let at = if segments.is_empty() {
        kind.name().to_string()
    } else {
        segments.join(".")
    };
    match error.kind() {
        ValidationErrorKind::AdditionalProperties { unexpected } => {
            let allowed = allowed_keys(schema, error.schema_path().as_str());
            for key in unexpected {
                let span = target.key_span(key).unwrap_or(target.span);
                loader.error(
                    &rule,
                    span,
                    format!("unknown key `{key}` in {at}"),
                    format!("check the spelling; allowed here: {}", allowed.join(", ")),
                );
            }
        }
        ValidationErrorKind::Required { property } => {
            let property = property.as_str().unwrap_or_default().to_string();
            loader.error(
                &rule,
                target.span,
                format!("missing required key `{property}` in {at}"),
                format!("add `{property}:`"),
            );
        }
        ValidationErrorKind::Type { .. }
            if target.is_plain_scalar() && error.to_string().contains("\"string\"") =>
        {
            loader.error(
                &rule,
                target.span,
                format!("{at}: {error}"),
                format!(
                    "write it in quotes, e.g. \"{}\", so YAML keeps it as text",
                    scalar_text(target)
                ),
            );
        }
        ValidationErrorKind::AnyOf { .. }
        | ValidationErrorKind::OneOfNotValid { .. }
        | ValidationErrorKind::OneOfMultipleValid { .. } => {
            let path = error.schema_path().as_str().to_string();
            if path.contains("Matcher") {
                let (span, message, hint) = matcher_problem(target).unwrap_or_else(|| {
                    (
                        target.span,
                        format!("{at} is not a valid matcher"),
                        MATCHER_SHAPES.to_string(),
                    )
                });
                loader.error(&rule, span, message, hint);
                return;
            }
            if segments.len() == 1
                && segments[0] == "source"
                && let Some(variant) = source_variant(schema, target)
            {
                let validator = checking_formats(&variant);
                let instance = target.to_json();
                for inner in validator.iter_errors(&instance) {
                    report_schema_error(loader, kind, &variant, node, &inner, &segments);
                }
                return;
            }
            let (message, hint) = if segments.len() == 1
                && segments[0] == "source"
                && let Some(entry) = target.get("type")
            {
                let types: Vec<String> = schema
                    .pointer("/$defs/Source/oneOf")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(|v| v.pointer("/properties/type/const")?.as_str())
                    .map(|t| format!("`{t}`"))
                    .collect();
                (
                    format!(
                        "source.type `{}` is not a type of HR source",
                        scalar_text(&entry.value)
                    ),
                    format!("use one of {} (lower case)", types.join(", ")),
                )
            } else if segments.first().map(String::as_str) == Some("source") {
                (
                        format!("{at} is not a valid HR source"),
                        "`source.type` is `csv` or `excel` (with path and columns), `sftp` (host, user, key_env or password_env, known_hosts, path, columns) or `afas` (url, connector, token_env, columns); see the README".to_string(),
                    )
            } else {
                (
                    format!("{at}: {error}"),
                    "see the README, or the JSON schema that `speakap-sync schema` writes"
                        .to_string(),
                )
            };
            loader.error(&rule, target.span, message, hint);
        }
        ValidationErrorKind::Format { format } => {
            let example = match format.as_str() {
                "date" => "a date is written YYYY-MM-DD, e.g. 2027-01-31",
                _ => "see the README",
            };
            loader.error(
                &rule,
                target.span,
                format!("{at}: `{}` is not a valid {format}", scalar_text(target)),
                example,
            );
        }
        ValidationErrorKind::Enum { options } => {
            let allowed: Vec<String> = options
                .as_array()
                .into_iter()
                .flatten()
                .map(|o| {
                    o.as_str()
                        .map_or_else(|| o.to_string(), |t| format!("{t:?}"))
                })
                .collect();
            loader.error(
                &rule,
                target.span,
                format!("{at}: `{}` is not an accepted value", scalar_text(target)),
                format!("use one of {}", allowed.join(", ")),
            );
        }
        ValidationErrorKind::Pattern { pattern } if at == "network" => {
            loader.error(
                &rule,
                target.span,
                format!("network: `{}` is not a network EID", scalar_text(target)),
                format!("a network EID is 16 lowercase hexadecimal characters ({pattern})"),
            );
        }
        _ => {
            loader.error(
                &rule,
                target.span,
                format!("{at}: {error}"),
                "see the README, or the JSON schema that `speakap-sync schema` writes",
            );
        }
    }
}

const MATCHER_SHAPES: &str = "a matcher is {field, equals}, {field, in: [..]}, {field, matches}, {all: [..]}, {any: [..]} or {not: ..}";

/// Says precisely what is wrong with a matcher the schema rejected (its `anyOf` error says only
/// that no shape fits), descending into `all`, `any` and `not`.
fn matcher_problem(node: &Node) -> Option<(Span, String, String)> {
    const TESTS: [&str; 3] = ["equals", "in", "matches"];
    const KEYS: [&str; 7] = ["field", "equals", "in", "matches", "all", "any", "not"];
    let NodeValue::Map(entries) = &node.value else {
        return Some((
            node.span,
            "a matcher must be a mapping".into(),
            MATCHER_SHAPES.into(),
        ));
    };
    if let Some(e) = entries.iter().find(|e| !KEYS.contains(&e.key.as_str())) {
        return Some((
            e.key_span,
            format!("unknown key `{}` in a matcher", e.key),
            "test a field with `equals`, `in` or `matches`, or combine matchers with `all`, `any` and `not`".into(),
        ));
    }
    for key in ["equals", "matches", "field"] {
        if let Some(e) = node.get(key)
            && !matches!(e.value.value, NodeValue::Str { .. })
        {
            return Some((
                e.value.span,
                format!("`{key}` takes text, not `{}`", e.value.to_json()),
                format!(
                    "write it in quotes, e.g. {key}: \"{}\"",
                    scalar_text(&e.value)
                ),
            ));
        }
    }
    if let Some(e) = node.get("in") {
        match &e.value.value {
            NodeValue::Seq(items) => {
                if let Some(item) = items
                    .iter()
                    .find(|i| !matches!(i.value, NodeValue::Str { .. }))
                {
                    return Some((
                        item.span,
                        format!(
                            "`in` takes a list of text values; `{}` is not text",
                            item.to_json()
                        ),
                        format!("write it in quotes: \"{}\"", scalar_text(item)),
                    ));
                }
            }
            _ => {
                return Some((
                    e.value.span,
                    "`in` takes a list, e.g. in: [A, B]".into(),
                    MATCHER_SHAPES.into(),
                ));
            }
        }
    }
    let tests: Vec<&str> = TESTS
        .iter()
        .copied()
        .filter(|t| node.get(t).is_some())
        .collect();
    let has_field = node.get("field").is_some();
    // One shape per matcher: a test of a field, `all`, `any` or `not`.
    let shapes: Vec<&str> = [
        (has_field || !tests.is_empty()).then_some("a field test"),
        node.get("all").map(|_| "`all`"),
        node.get("any").map(|_| "`any`"),
        node.get("not").map(|_| "`not`"),
    ]
    .into_iter()
    .flatten()
    .collect();
    if shapes.len() > 1 {
        return Some((
            node.span,
            format!(
                "a matcher has one shape; this one has {}",
                shapes.join(" and ")
            ),
            "to require several conditions, list them under `all: [..]`".into(),
        ));
    }
    match (has_field, tests.as_slice()) {
        (true, []) => {
            return Some((
                node.span,
                "a matcher with `field` needs a test".into(),
                "add `equals`, `in` or `matches`".into(),
            ));
        }
        (false, [test, ..]) => {
            return Some((
                node.span,
                format!("`{test}` needs a `field` to test"),
                "add `field: <name>`".into(),
            ));
        }
        (_, [_, _, ..]) => {
            return Some((
                node.span,
                format!("one test per matcher, found {}", tests.join(" and ")),
                "combine several tests with `all: [..]`".into(),
            ));
        }
        _ => {}
    }
    for key in ["all", "any"] {
        if let Some(e) = node.get(key) {
            match &e.value.value {
                NodeValue::Seq(items) => {
                    if let Some(problem) = items.iter().find_map(matcher_problem) {
                        return Some(problem);
                    }
                }
                _ => {
                    return Some((
                        e.value.span,
                        format!("`{key}` takes a list of matchers"),
                        MATCHER_SHAPES.into(),
                    ));
                }
            }
        }
    }
    node.get("not").and_then(|e| matcher_problem(&e.value))
}

/// A scalar as the person wrote it (`0017` stays `0017`).
fn scalar_text(node: &Node) -> String {
    match (&node.value, &node.written) {
        (NodeValue::Str { text, .. }, _) => text.clone(),
        (_, Some(written)) => written.to_string(),
        _ => node.to_json().to_string(),
    }
}

/// The property names allowed by the object schema whose `additionalProperties` failed.
fn allowed_keys(schema: &Value, keyword_path: &str) -> Vec<String> {
    let parent = keyword_path
        .strip_suffix("/additionalProperties")
        .unwrap_or(keyword_path);
    let mut keys: Vec<String> = schema
        .pointer(parent)
        .and_then(|s| s.get("properties"))
        .and_then(Value::as_object)
        .map(|p| {
            p.keys()
                .filter(|k| *k != "apiVersion" && *k != "kind")
                .cloned()
                .collect()
        })
        .unwrap_or_default();
    keys.sort();
    keys
}

struct SemanticChecks<'a> {
    merged: &'a BTreeMap<Kind, Merged>,
    sync: &'a SyncConfig,
    /// The config directory in the repository: paths may not climb out of the repository.
    prefix: &'a str,
}

impl SemanticChecks<'_> {
    fn span(&self, kind: Kind, path: &[&str]) -> Span {
        self.merged
            .get(&kind)
            .map(|m| m.node.locate(path.iter().copied()).span)
            .unwrap_or_default()
    }

    fn check_paths(&self, loader: &mut Loader) {
        for setting in paths::path_settings(self.sync) {
            if let Some(why) = paths::written_outside(self.prefix, setting.value) {
                loader.error(
                    "path",
                    self.span(Kind::SyncConfig, setting.keys),
                    format!(
                        "`{}` is {:?}: {why}; files named in the config must be inside the config repository",
                        setting.name(),
                        setting.value
                    ),
                    setting.hint,
                );
            }
        }
    }

    fn check_source(&self, loader: &mut Loader) {
        let at = |key: &str| self.span(Kind::SyncConfig, &["source", key]);
        // One HR column feeding two profile fields is a slip (`phone: Functie`); the XID and the
        // UPN may well be the email column, and extra fields may reuse any column.
        let columns = configured_columns(self.sync);
        let profile_fields = columns.iter().filter(|(field, _, _)| {
            !matches!(field, FieldName::Xid | FieldName::Upn | FieldName::Extra(_))
        });
        let mut seen: Vec<(String, &FieldName)> = Vec::new();
        for (field, column, _) in profile_fields {
            let key = crate::fields::normalize(column);
            if let Some((_, first)) = seen.iter().find(|(c, _)| *c == key) {
                loader.warning(
                    "columns",
                    at("columns"),
                    format!(
                        "column \"{column}\" feeds both `{}` and `{}`",
                        first.name(),
                        field.name()
                    ),
                    "check `source.columns`: each profile field has its own column",
                );
            } else {
                seen.push((key, field));
            }
        }
        let encoding = match &self.sync.source {
            Source::Csv(s) => Some(&s.encoding),
            Source::Sftp(s) => Some(&s.encoding),
            _ => None,
        };
        if let Some(label) = encoding
            && encoding_rs::Encoding::for_label(label.as_bytes()).is_none()
        {
            loader.error(
                "encoding",
                at("encoding"),
                format!("unknown encoding `{label}`"),
                "use a WHATWG encoding label such as windows-1252, iso-8859-15 or utf-8",
            );
        }
        match &self.sync.source {
            Source::Sftp(sftp) => {
                if sftp.key_env.is_some() == sftp.password_env.is_some() {
                    loader.error(
                        "sftp",
                        at("user"),
                        "give exactly one of `key_env` and `password_env`",
                        "name the environment variable holding the private key or the password",
                    );
                }
                if sftp.key_passphrase_env.is_some() && sftp.key_env.is_none() {
                    loader.error(
                        "sftp",
                        at("key_passphrase_env"),
                        "`key_passphrase_env` needs `key_env`",
                        "remove it, or set `key_env`",
                    );
                }
                if !sftp.path.starts_with('/') {
                    loader.error(
                        "sftp",
                        at("path"),
                        format!("`{}` is not an absolute remote path", sftp.path),
                        "write the full path on the server, e.g. /upload/employees-*.csv",
                    );
                }
            }
            Source::Afas(afas) => {
                let url = reqwest::Url::parse(&afas.url);
                if !matches!(&url, Ok(u) if u.scheme() == "https" || u.scheme() == "http") {
                    loader.error(
                        "afas",
                        at("url"),
                        format!("`{}` is not an http(s) URL", afas.url),
                        "for example https://12345.rest.afas.online/ProfitRestServices",
                    );
                }
                if afas.connector.is_empty()
                    || !afas
                        .connector
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.')
                {
                    loader.error(
                        "afas",
                        at("connector"),
                        format!("`{}` is not a GetConnector name", afas.connector),
                        "use the connector's name as shown in AFAS Profit, e.g. Speakap_Medewerkers",
                    );
                }
            }
            _ => {}
        }
    }

    fn run(
        &self,
        loader: &mut Loader,
        rules: &MappingRules,
        exclusions: &[Exclusion],
        overrides: &[Override],
    ) {
        let fields = known_fields(self.sync);
        let format = self.sync.source.format();
        let embedded = self.sync.speakap.url == "embedded";
        if embedded && self.sync.speakap.embedded.is_none() {
            loader.error(
                "embedded",
                self.span(Kind::SyncConfig, &["speakap", "url"]),
                "`url: embedded` needs `speakap.embedded` with `seed` and `state` files",
                "add `embedded: {seed: simulator/seed.json, state: .speakap-sim/state.json}`",
            );
        }
        if !embedded {
            if self.sync.speakap.embedded.is_some() {
                loader.error(
                    "embedded",
                    self.span(Kind::SyncConfig, &["speakap", "embedded"]),
                    "`speakap.embedded` only applies with `url: embedded`",
                    "remove `embedded`, or set `url: embedded` to use the simulator",
                );
            }
            if reqwest::Url::parse(&self.sync.speakap.url).is_err() {
                loader.error(
                    "url",
                    self.span(Kind::SyncConfig, &["speakap", "url"]),
                    format!("`{}` is not a URL", self.sync.speakap.url),
                    "for example https://api.speakap.io, or `embedded` for the simulator",
                );
            }
        }
        let policy = &self.sync.policy;
        if jiff::tz::TimeZone::get(&policy.timezone.0).is_err() {
            loader.error(
                "timezone",
                self.span(Kind::SyncConfig, &["policy", "timezone"]),
                format!("unknown time zone `{}`", policy.timezone.0),
                "use an IANA name such as Europe/Amsterdam",
            );
        }
        let sample = jiff::civil::date(2026, 12, 31);
        let round_trip = jiff::fmt::strtime::format(format.date_format, sample)
            .ok()
            .and_then(|text| crate::fields::parse_date(format.date_format, &text));
        if round_trip != Some(sample) {
            loader.error(
                "date-format",
                self.span(Kind::SyncConfig, &["source", "date_format"]),
                format!(
                    "date_format `{}` cannot write and read back a date",
                    format.date_format
                ),
                "use strftime directives for day, month and year, e.g. %d-%m-%Y or %Y-%m-%d",
            );
        }
        self.check_source(loader);
        self.check_paths(loader);
        let channel_needs = match policy.invite.channel {
            InviteChannel::Sms => Some((
                "phone",
                format.columns.phone.is_some(),
                "SMS invitations go to the phone number",
            )),
            InviteChannel::Sso => Some((
                "upn",
                format.columns.upn.is_some(),
                "SSO accounts are made for the UPN",
            )),
            _ => None,
        };
        if let Some((column, false, why)) = channel_needs {
            loader.error(
                "invite",
                self.span(Kind::SyncConfig, &["policy", "invite", "channel"]),
                format!("this invite channel needs `source.columns.{column}`"),
                format!("{why}: map the HR column that holds it"),
            );
        }
        for (name, column) in &format.columns.extra {
            if FieldName::builtin(name).is_some() {
                loader.error(
                    "columns",
                    self.span(Kind::SyncConfig, &["source", "columns", "extra", name]),
                    format!("extra field `{name}` has the name of a built-in field"),
                    format!("map `{}` under another name", column.name()),
                );
            }
        }

        for (table_name, table) in [
            ("business_units", &rules.business_units),
            ("departments", &rules.departments),
        ] {
            let Some(table) = table else { continue };
            for (code, group) in &table.map {
                if code.trim().is_empty() {
                    loader.error(
                        "mapping",
                        self.span(Kind::MappingRules, &[table_name, "map", code]),
                        format!("empty code in {table_name}.map"),
                        "every code maps a value that occurs in the HR record",
                    );
                }
                if group.trim().is_empty() {
                    loader.error(
                        "mapping",
                        self.span(Kind::MappingRules, &[table_name, "map", code]),
                        format!("code `{code}` in {table_name}.map maps to an empty group name"),
                        "give the exact name of the Speakap group",
                    );
                }
            }
            if table.unknown != UnknownCode::Default && table.default.is_some() {
                loader.warning(
                    "mapping",
                    self.span(Kind::MappingRules, &[table_name, "default"]),
                    format!("{table_name}: `default` is used only with `unknown: default`"),
                    "set `unknown: default`, or remove `default:`",
                );
            }
            if table.unknown == UnknownCode::Default && table.default.is_none() {
                loader.error(
                    "mapping",
                    self.span(Kind::MappingRules, &[table_name, "unknown"]),
                    format!("{table_name}: `unknown: default` needs `default: <group name>`"),
                    "add `default:` or choose `unknown: reject` or `ignore`",
                );
            }
            let column_present = match table_name {
                "business_units" => format.columns.locations.is_some(),
                _ => format.columns.departments.is_some(),
            };
            if !column_present {
                let column = if table_name == "business_units" {
                    "locations"
                } else {
                    "departments"
                };
                loader.diagnostics.push(
                    Diagnostic::warning(
                        "mapping",
                        format!("{table_name} is mapped but no `{column}` column is configured"),
                    )
                    .at(loader.location(self.span(Kind::MappingRules, &[table_name])))
                    .hint(format!(
                        "add `source.columns.{column}`, or remove the table"
                    )),
                );
            }
        }

        let mut matcher_sites: Vec<(Vec<String>, &Matcher, Kind)> = Vec::new();
        for (i, rule) in rules.groups.iter().enumerate() {
            matcher_sites.push((
                vec!["groups".into(), i.to_string(), "when".into()],
                &rule.when,
                Kind::MappingRules,
            ));
        }
        for (i, rule) in rules.roles.iter().enumerate() {
            matcher_sites.push((
                vec!["roles".into(), i.to_string(), "when".into()],
                &rule.when,
                Kind::MappingRules,
            ));
        }
        for (i, rule) in rules.local_admins.iter().enumerate() {
            matcher_sites.push((
                vec!["local_admins".into(), i.to_string(), "when".into()],
                &rule.when,
                Kind::MappingRules,
            ));
        }
        for (i, exclusion) in exclusions.iter().enumerate() {
            if let Some(when) = &exclusion.when {
                matcher_sites.push((
                    vec!["exclude".into(), i.to_string(), "when".into()],
                    when,
                    Kind::Exclusions,
                ));
            }
        }
        for (path, matcher, kind) in matcher_sites {
            self.check_matcher(loader, kind, path, matcher, &fields);
        }

        let mut seen_exclusions: BTreeMap<&str, Span> = BTreeMap::new();
        for (i, exclusion) in exclusions.iter().enumerate() {
            let span = self.span(Kind::Exclusions, &["exclude", &i.to_string()]);
            match (&exclusion.xid, &exclusion.when) {
                (Some(_), Some(_)) | (None, None) => loader.error(
                    "exclusion",
                    span,
                    "an exclusion names either `xid` or `when`, not both or neither",
                    "split it into two exclusions, or add the missing one",
                ),
                (Some(xid), None) => {
                    if xid.trim().is_empty() {
                        loader.error(
                            "exclusion",
                            span,
                            "empty `xid`",
                            "give the employee ID to exclude",
                        );
                    } else if let Some(first) = seen_exclusions.insert(xid, span) {
                        let d = Diagnostic::error(
                            "duplicate-key",
                            format!("XID `{xid}` is excluded twice"),
                        )
                        .at(loader.location(span))
                        .related(loader.location(first), "first excluded at")
                        .hint("keep one exclusion per XID");
                        loader.diagnostics.push(d);
                    }
                }
                (None, Some(_)) => {}
            }
        }

        let mut seen_overrides: BTreeMap<&str, Span> = BTreeMap::new();
        for (i, o) in overrides.iter().enumerate() {
            let span = self.span(Kind::Overrides, &["overrides", &i.to_string()]);
            if let Some(first) = seen_overrides.insert(&o.xid, span) {
                let d = Diagnostic::error(
                    "duplicate-key",
                    format!("XID `{}` has two overrides", o.xid),
                )
                .at(loader.location(span))
                .related(loader.location(first), "first override at")
                .hint("merge them into one override");
                loader.diagnostics.push(d);
            }
            if let Some(x) = o.add_groups.iter().find(|g| o.remove_groups.contains(g)) {
                loader.error(
                    "override",
                    span,
                    format!("group `{x}` is both added and removed"),
                    "keep it in one of add_groups or remove_groups",
                );
            }
        }
    }

    fn check_matcher(
        &self,
        loader: &mut Loader,
        kind: Kind,
        path: Vec<String>,
        matcher: &Matcher,
        fields: &[String],
    ) {
        let span =
            |p: &[String]| self.span(kind, &p.iter().map(String::as_str).collect::<Vec<_>>());
        let field = match matcher {
            Matcher::All { all: list } | Matcher::Any { any: list } => {
                let key = if matches!(matcher, Matcher::All { .. }) {
                    "all"
                } else {
                    "any"
                };
                if list.is_empty() {
                    loader.error(
                        "matcher",
                        span(&path),
                        format!("`{key}` has no matchers"),
                        "list at least one matcher",
                    );
                }
                for (i, m) in list.iter().enumerate() {
                    let mut child = path.clone();
                    child.extend([key.to_string(), i.to_string()]);
                    self.check_matcher(loader, kind, child, m, fields);
                }
                return;
            }
            Matcher::Not { not } => {
                let mut child = path.clone();
                child.push("not".into());
                self.check_matcher(loader, kind, child, not, fields);
                return;
            }
            Matcher::Matches { field, matches } => {
                if let Err(e) = regex::Regex::new(matches) {
                    let mut at = path.clone();
                    at.push("matches".into());
                    let detail = e.to_string();
                    let last = detail.lines().last().unwrap_or_default().to_string();
                    loader.error(
                        "regex",
                        span(&at),
                        format!("invalid regular expression `{matches}`: {last}"),
                        "fix the pattern (Rust regex syntax)",
                    );
                }
                field
            }
            Matcher::Equals { field, .. } | Matcher::In { field, .. } => field,
        };
        if !fields.iter().any(|f| f == field) {
            let mut at = path;
            at.push("field".into());
            loader.error(
                "matcher",
                span(&at),
                format!("unknown field `{field}`"),
                format!("fields with a configured column: {}", fields.join(", ")),
            );
        }
    }
}
