//! A YAML document as a tree whose every node remembers where it was written.
//!
//! saphyr's marked loader gives spans; this module turns its output into a small owned tree
//! (`Node`) that can be merged across files, converted to JSON for schema validation, and
//! asked "where is `/groups/3/when`?" when an error has to point at a line.

use std::borrow::Cow;
use std::collections::HashMap;

use saphyr::{MarkedYaml, Scalar, ScalarStyle, YamlData, YamlLoader};
use saphyr_parser::Parser;
use serde_json::Value;

/// Index of a file in [`super::ConfigFiles::files`].
pub type FileId = usize;

/// A position in a config file: 1-based line and column.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Span {
    pub file: FileId,
    pub line: usize,
    pub column: usize,
}

#[derive(Clone, Debug)]
pub struct Node {
    pub span: Span,
    pub value: NodeValue,
    /// A plain scalar read as a number, boolean or null, as written (`0017`, not 17): what a
    /// "write it in quotes" hint must repeat.
    pub written: Option<Box<str>>,
}

#[derive(Clone, Debug)]
pub enum NodeValue {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    /// `plain` is true for an unquoted scalar: used to hint "quote it" when a string was expected.
    Str {
        text: String,
        plain: bool,
    },
    Seq(Vec<Node>),
    Map(Vec<Entry>),
}

#[derive(Clone, Debug)]
pub struct Entry {
    pub key: String,
    pub key_span: Span,
    pub value: Node,
}

/// A YAML syntax error with its position.
#[derive(Debug)]
pub struct SyntaxError {
    pub span: Span,
    pub message: String,
}

/// Two documents of one kind define the same key.
#[derive(Debug)]
pub struct Conflict {
    pub path: String,
    pub first: Span,
    pub second: Span,
}

/// Parses every document of one file.
pub fn parse_documents(file: FileId, text: &str) -> Result<Vec<Node>, SyntaxError> {
    let mut loader: YamlLoader<MarkedYaml> = YamlLoader::default();
    // Keep the raw text of scalars: map keys such as `007` must not become the number 7.
    loader.early_parse(false);
    let mut parser = Parser::new_from_str(text);
    let scan = parser.load(&mut loader, true);
    let scan_error = scan.err().or_else(|| loader.error().cloned());
    if let Some(error) = scan_error {
        let marker = error.marker();
        return Err(SyntaxError {
            span: Span {
                file,
                line: marker.line(),
                column: marker.col() + 1,
            },
            message: error.info().to_string(),
        });
    }
    loader
        .into_documents()
        .into_iter()
        .map(|doc| convert(file, doc))
        .collect()
}

fn span_of(file: FileId, yaml: &MarkedYaml) -> Span {
    Span {
        file,
        line: yaml.span.start.line(),
        column: yaml.span.start.col() + 1,
    }
}

fn convert(file: FileId, yaml: MarkedYaml) -> Result<Node, SyntaxError> {
    let span = span_of(file, &yaml);
    let error = |message: String| SyntaxError { span, message };
    let mut written = None;
    let value = match yaml.data {
        YamlData::Representation(text, style, tag) => {
            let plain = style == ScalarStyle::Plain;
            let scalar = if tag.is_none() && !plain {
                Some(Scalar::String(text.clone()))
            } else {
                Scalar::parse_from_cow_and_metadata(text.clone(), style, tag.as_ref())
            };
            match scalar {
                Some(scalar) => {
                    let value = scalar_value(scalar, plain);
                    if !matches!(value, NodeValue::Str { .. }) {
                        written = Some(text.as_ref().into());
                    }
                    value
                }
                None => return Err(error(format!("`{text}` does not fit its tag"))),
            }
        }
        YamlData::Value(scalar) => scalar_value(scalar, false),
        YamlData::Sequence(items) => NodeValue::Seq(
            items
                .into_iter()
                .map(|item| convert(file, item))
                .collect::<Result<_, _>>()?,
        ),
        YamlData::Mapping(map) => {
            let mut entries = Vec::with_capacity(map.len());
            // Key → its line: mappings of codes can hold thousands of keys.
            let mut seen: HashMap<String, usize> = HashMap::with_capacity(map.len());
            for (key, value) in map {
                let key_span = span_of(file, &key);
                let key = match key.data {
                    YamlData::Representation(text, _, _) => text.into_owned(),
                    YamlData::Value(scalar) => scalar_text(&scalar),
                    _ => {
                        return Err(SyntaxError {
                            span: key_span,
                            message: "mapping keys must be plain text".into(),
                        });
                    }
                };
                // `101` and `"101"` are different YAML keys but one code here.
                if let Some(first_line) = seen.insert(key.clone(), key_span.line) {
                    return Err(SyntaxError {
                        span: key_span,
                        message: format!(
                            "key `{key}` is set twice in this mapping (first on line {first_line}); \
                             quoted or not, it is the same key"
                        ),
                    });
                }
                entries.push(Entry {
                    key,
                    key_span,
                    value: convert(file, value)?,
                });
            }
            NodeValue::Map(entries)
        }
        YamlData::Tagged(tag, _) => {
            return Err(error(format!("YAML tag `{tag}` is not supported here")));
        }
        YamlData::Alias(_) => return Err(error("unresolved YAML alias".into())),
        YamlData::BadValue => return Err(error("invalid YAML value".into())),
    };
    Ok(Node {
        span,
        value,
        written,
    })
}

fn scalar_value(scalar: Scalar, plain: bool) -> NodeValue {
    match scalar {
        Scalar::Null => NodeValue::Null,
        Scalar::Boolean(b) => NodeValue::Bool(b),
        Scalar::Integer(i) => NodeValue::Int(i),
        Scalar::FloatingPoint(f) => NodeValue::Float(f.into_inner()),
        Scalar::String(text) => NodeValue::Str {
            text: Cow::into_owned(text),
            plain,
        },
    }
}

fn scalar_text(scalar: &Scalar) -> String {
    match scalar {
        Scalar::Null => String::new(),
        Scalar::Boolean(b) => b.to_string(),
        Scalar::Integer(i) => i.to_string(),
        Scalar::FloatingPoint(f) => f.to_string(),
        Scalar::String(s) => s.to_string(),
    }
}

impl Node {
    pub fn to_json(&self) -> Value {
        match &self.value {
            NodeValue::Null => Value::Null,
            NodeValue::Bool(b) => Value::Bool(*b),
            NodeValue::Int(i) => Value::from(*i),
            NodeValue::Float(f) => {
                serde_json::Number::from_f64(*f).map_or(Value::Null, Value::Number)
            }
            NodeValue::Str { text, .. } => Value::String(text.clone()),
            NodeValue::Seq(items) => Value::Array(items.iter().map(Node::to_json).collect()),
            NodeValue::Map(entries) => Value::Object(
                entries
                    .iter()
                    .map(|e| (e.key.clone(), e.value.to_json()))
                    .collect(),
            ),
        }
    }

    pub fn get(&self, key: &str) -> Option<&Entry> {
        match &self.value {
            NodeValue::Map(entries) => entries.iter().find(|e| e.key == key),
            _ => None,
        }
    }

    /// Removes a top-level key and returns its entry.
    pub fn take(&mut self, key: &str) -> Option<Entry> {
        match &mut self.value {
            NodeValue::Map(entries) => {
                let index = entries.iter().position(|e| e.key == key)?;
                Some(entries.remove(index))
            }
            _ => None,
        }
    }

    /// The node a JSON pointer's segments lead to, or the deepest one that exists.
    pub fn locate<I, S>(&self, segments: I) -> &Node
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut node = self;
        for segment in segments {
            let segment = segment.as_ref();
            let next = match &node.value {
                NodeValue::Map(entries) => {
                    entries.iter().find(|e| e.key == segment).map(|e| &e.value)
                }
                NodeValue::Seq(items) => segment.parse::<usize>().ok().and_then(|i| items.get(i)),
                _ => None,
            };
            match next {
                Some(next) => node = next,
                None => break,
            }
        }
        node
    }

    /// The node a JSON pointer's segments lead to, if every one of them is written.
    pub fn find<I, S>(&self, segments: I) -> Option<&Node>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        segments
            .into_iter()
            .try_fold(self, |node, segment| match &node.value {
                NodeValue::Map(_) => node.get(segment.as_ref()).map(|e| &e.value),
                NodeValue::Seq(items) => segment
                    .as_ref()
                    .parse::<usize>()
                    .ok()
                    .and_then(|i| items.get(i)),
                _ => None,
            })
    }

    /// The span of a key in this mapping node, if present.
    pub fn key_span(&self, key: &str) -> Option<Span> {
        self.get(key).map(|e| e.key_span)
    }

    pub fn is_plain_scalar(&self) -> bool {
        matches!(
            self.value,
            NodeValue::Str { plain: true, .. }
                | NodeValue::Int(_)
                | NodeValue::Float(_)
                | NodeValue::Bool(_)
                | NodeValue::Null
        )
    }

    /// Merges another document of the same kind into this one: mappings merge key by key,
    /// sequences are concatenated, and a key set in both is a conflict naming both places.
    pub fn merge(&mut self, other: Node, path: &str, conflicts: &mut Vec<Conflict>) {
        match (&mut self.value, other.value) {
            (NodeValue::Map(mine), NodeValue::Map(theirs)) => {
                // Keys indexed once: a search of `mine` per key made merging maps of codes
                // quadratic (a 40,000-key map took 6 s).
                let mut index: HashMap<String, usize> = mine
                    .iter()
                    .enumerate()
                    .map(|(i, e)| (e.key.clone(), i))
                    .collect();
                for entry in theirs {
                    match index.get(&entry.key) {
                        Some(&i) => {
                            let existing = &mut mine[i];
                            let child_path = format!("{path}/{}", entry.key);
                            let both_containers = matches!(
                                (&existing.value.value, &entry.value.value),
                                (NodeValue::Map(_), NodeValue::Map(_))
                                    | (NodeValue::Seq(_), NodeValue::Seq(_))
                            );
                            if both_containers {
                                existing.value.merge(entry.value, &child_path, conflicts);
                            } else {
                                conflicts.push(Conflict {
                                    path: child_path,
                                    first: existing.key_span,
                                    second: entry.key_span,
                                });
                            }
                        }
                        None => {
                            index.insert(entry.key.clone(), mine.len());
                            mine.push(entry);
                        }
                    }
                }
            }
            (NodeValue::Seq(mine), NodeValue::Seq(theirs)) => mine.extend(theirs),
            (_, _) => conflicts.push(Conflict {
                path: path.to_string(),
                first: self.span,
                second: other.span,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(text: &str) -> Node {
        parse_documents(0, text).unwrap().remove(0)
    }

    #[test]
    fn keys_keep_their_written_text() {
        let node = doc("map:\n  007: Store\n  102: Supply\n");
        let json = node.to_json();
        assert_eq!(json["map"]["007"], "Store");
        assert_eq!(json["map"]["102"], "Supply");
    }

    #[test]
    fn scalars_resolve_like_yaml_1_2() {
        let json = doc("a: 12\nb: '12'\nc: yes\nd: true\ne: ~\n").to_json();
        assert_eq!(json["a"], 12);
        assert_eq!(json["b"], "12");
        assert_eq!(json["c"], "yes");
        assert_eq!(json["d"], true);
        assert!(json["e"].is_null());
    }

    #[test]
    fn locate_points_at_the_line_of_a_nested_value() {
        let node = doc("groups:\n  - group: A\n    when:\n      field: job_title\n");
        let found = node.locate(["groups", "0", "when", "field"]);
        assert_eq!((found.span.line, found.span.column), (4, 14));
        let missing = node.locate(["groups", "0", "nope"]);
        assert_eq!(missing.span.line, 2);
    }

    #[test]
    fn duplicate_keys_in_one_mapping_are_a_syntax_error() {
        let error = parse_documents(0, "a: 1\na: 2\n").unwrap_err();
        assert_eq!(error.span.line, 2);
        let error = parse_documents(0, "map:\n  \"101\": A\n  102: B\n  101: C\n").unwrap_err();
        assert_eq!((error.span.line, error.span.column), (4, 3));
        assert!(
            error
                .message
                .contains("key `101` is set twice in this mapping (first on line 2)"),
            "{}",
            error.message
        );
    }

    #[test]
    fn merge_concatenates_lists_and_reports_conflicts_with_both_places() {
        let mut first = doc("groups: [a]\nmap:\n  x: 1\n");
        let mut second = parse_documents(1, "groups: [b]\nmap:\n  x: 2\n  y: 3\n").unwrap();
        let mut conflicts = Vec::new();
        first.merge(second.remove(0), "", &mut conflicts);
        assert_eq!(first.to_json()["groups"], serde_json::json!(["a", "b"]));
        assert_eq!(conflicts.len(), 1);
        assert_eq!(conflicts[0].path, "/map/x");
        assert_eq!((conflicts[0].first.file, conflicts[0].first.line), (0, 3));
        assert_eq!((conflicts[0].second.file, conflicts[0].second.line), (1, 3));
    }
}
