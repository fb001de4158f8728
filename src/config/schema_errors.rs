//! Schema errors reported as a person can act on them: at the place in the file, in words
//! about the configuration rather than about JSON Schema, with what to write instead.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use jsonschema::error::ValidationErrorKind;
use serde_json::Value;

use super::tree::{Node, NodeValue, Span};
use super::{Kind, Loader, schema};

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

pub(super) fn validate_schema(loader: &mut Loader, kind: Kind, node: &Node) {
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
    let rule = format!("schema/{}", error.kind().keyword());
    let at = if segments.is_empty() {
        kind.name().to_string()
    } else {
        segments.join(".")
    };
    let found = SchemaError {
        kind,
        schema,
        node,
        error,
        segments: &segments,
        target,
        at: &at,
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
        ValidationErrorKind::AnyOf { .. }
        | ValidationErrorKind::OneOfNotValid { .. }
        | ValidationErrorKind::OneOfMultipleValid { .. } => {
            found.report_no_shape_fits(loader, &rule)
        }
        _ => {
            let (message, hint) = found.message_and_hint();
            loader.error(&rule, target.span, message, hint);
        }
    }
}

const SEE_THE_SCHEMA: &str = "see the README, or the JSON schema that `speakap-sync schema` writes";

/// One schema error and the part of the document it is about.
struct SchemaError<'a> {
    kind: Kind,
    schema: &'a Value,
    /// The whole document of `kind`.
    node: &'a Node,
    error: &'a jsonschema::ValidationError<'a>,
    /// The instance path of `target` in `node`.
    segments: &'a [String],
    target: &'a Node,
    /// `segments` as a person reads them (`source.columns`), or the kind for the whole document.
    at: &'a str,
}

impl SchemaError<'_> {
    /// The message and hint for an error about one value or key.
    fn message_and_hint(&self) -> (String, String) {
        let (at, error, target) = (self.at, self.error, self.target);
        match error.kind() {
            ValidationErrorKind::Required { property } => {
                let property = property.as_str().unwrap_or_default().to_string();
                (
                    format!("missing required key `{property}` in {at}"),
                    format!("add `{property}:`"),
                )
            }
            ValidationErrorKind::Type { .. }
                if target.is_plain_scalar() && error.to_string().contains("\"string\"") =>
            {
                (
                    format!("{at}: {error}"),
                    format!(
                        "write it in quotes, e.g. \"{}\", so YAML keeps it as text",
                        scalar_text(target)
                    ),
                )
            }
            ValidationErrorKind::Format { format } => {
                let example = match format.as_str() {
                    "date" => "a date is written YYYY-MM-DD, e.g. 2027-01-31",
                    _ => "see the README",
                };
                (
                    format!("{at}: `{}` is not a valid {format}", scalar_text(target)),
                    example.to_string(),
                )
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
                (
                    format!("{at}: `{}` is not an accepted value", scalar_text(target)),
                    format!("use one of {}", allowed.join(", ")),
                )
            }
            ValidationErrorKind::Pattern { pattern } if at == "network" => (
                format!("network: `{}` is not a network EID", scalar_text(target)),
                format!("a network EID is 16 lowercase hexadecimal characters ({pattern})"),
            ),
            _ => (format!("{at}: {error}"), SEE_THE_SCHEMA.to_string()),
        }
    }

    /// An `anyOf`/`oneOf` error says only that no shape fits: a matcher is then examined for
    /// what is wrong, an HR source is checked against the variant its `type` names.
    fn report_no_shape_fits(&self, loader: &mut Loader, rule: &str) {
        let target = self.target;
        if self.error.schema_path().as_str().contains("Matcher") {
            let (span, message, hint) = matcher_problem(target).unwrap_or_else(|| {
                (
                    target.span,
                    format!("{} is not a valid matcher", self.at),
                    MATCHER_SHAPES.to_string(),
                )
            });
            loader.error(rule, span, message, hint);
            return;
        }
        let is_source = self.segments.len() == 1 && self.segments[0] == "source";
        if is_source && let Some(variant) = source_variant(self.schema, target) {
            let validator = checking_formats(&variant);
            let instance = target.to_json();
            for inner in validator.iter_errors(&instance) {
                report_schema_error(
                    loader,
                    self.kind,
                    &variant,
                    self.node,
                    &inner,
                    self.segments,
                );
            }
            return;
        }
        let (message, hint) = self.no_shape_message(is_source);
        loader.error(rule, target.span, message, hint);
    }

    fn no_shape_message(&self, is_source: bool) -> (String, String) {
        if is_source && let Some(entry) = self.target.get("type") {
            let types: Vec<String> = self
                .schema
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
        } else if self.segments.first().map(String::as_str) == Some("source") {
            (
                format!("{} is not a valid HR source", self.at),
                "`source.type` is `csv` or `excel` (with path and columns), `sftp` (host, user, key_env or password_env, known_hosts, path, columns) or `afas` (url, connector, token_env, columns); see the README".to_string(),
            )
        } else {
            (
                format!("{}: {}", self.at, self.error),
                SEE_THE_SCHEMA.to_string(),
            )
        }
    }
}

const MATCHER_SHAPES: &str = "a matcher is {field, equals}, {field, in: [..]}, {field, matches}, {all: [..]}, {any: [..]} or {not: ..}";

/// What is wrong with a matcher: where, what, and what to do.
type Problem = (Span, String, String);

/// Says precisely what is wrong with a matcher the schema rejected (its `anyOf` error says only
/// that no shape fits), descending into `all`, `any` and `not`.
fn matcher_problem(node: &Node) -> Option<Problem> {
    unknown_matcher_key(node)
        .or_else(|| matcher_value_not_text(node))
        .or_else(|| matcher_shape_problem(node))
        .or_else(|| nested_matcher_problem(node))
}

/// A matcher that is not a mapping, or has a key no matcher has.
fn unknown_matcher_key(node: &Node) -> Option<Problem> {
    const KEYS: [&str; 7] = ["field", "equals", "in", "matches", "all", "any", "not"];
    let NodeValue::Map(entries) = &node.value else {
        return Some((
            node.span,
            "a matcher must be a mapping".into(),
            MATCHER_SHAPES.into(),
        ));
    };
    let e = entries.iter().find(|e| !KEYS.contains(&e.key.as_str()))?;
    Some((
        e.key_span,
        format!("unknown key `{}` in a matcher", e.key),
        "test a field with `equals`, `in` or `matches`, or combine matchers with `all`, `any` and `not`".into(),
    ))
}

/// A field name or tested value that YAML read as something other than text.
fn matcher_value_not_text(node: &Node) -> Option<Problem> {
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
    let e = node.get("in")?;
    let NodeValue::Seq(items) = &e.value.value else {
        return Some((
            e.value.span,
            "`in` takes a list, e.g. in: [A, B]".into(),
            MATCHER_SHAPES.into(),
        ));
    };
    let item = items
        .iter()
        .find(|i| !matches!(i.value, NodeValue::Str { .. }))?;
    Some((
        item.span,
        format!(
            "`in` takes a list of text values; `{}` is not text",
            item.to_json()
        ),
        format!("write it in quotes: \"{}\"", scalar_text(item)),
    ))
}

/// A matcher with more than one shape, or a field test without its field or its one test.
fn matcher_shape_problem(node: &Node) -> Option<Problem> {
    const TESTS: [&str; 3] = ["equals", "in", "matches"];
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
        (true, []) => Some((
            node.span,
            "a matcher with `field` needs a test".into(),
            "add `equals`, `in` or `matches`".into(),
        )),
        (false, [test, ..]) => Some((
            node.span,
            format!("`{test}` needs a `field` to test"),
            "add `field: <name>`".into(),
        )),
        (_, [_, _, ..]) => Some((
            node.span,
            format!("one test per matcher, found {}", tests.join(" and ")),
            "combine several tests with `all: [..]`".into(),
        )),
        _ => None,
    }
}

/// The first problem inside `all`, `any` or `not`.
fn nested_matcher_problem(node: &Node) -> Option<Problem> {
    for key in ["all", "any"] {
        if let Some(e) = node.get(key) {
            let NodeValue::Seq(items) = &e.value.value else {
                return Some((
                    e.value.span,
                    format!("`{key}` takes a list of matchers"),
                    MATCHER_SHAPES.into(),
                ));
            };
            if let Some(problem) = items.iter().find_map(matcher_problem) {
                return Some(problem);
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
