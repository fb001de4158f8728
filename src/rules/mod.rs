//! Matchers over HR fields, compiled once (field names to column slots, regexes built) and then
//! evaluated per record.

use regex::Regex;

use crate::config::Matcher;
pub use crate::config::{configured_columns, configured_fields, known_fields};
pub use crate::fields::{FieldName, field_kind};
use crate::hr::{Layout, Record};

/// A matcher ready to run: fields resolved to record slots, regexes compiled.
#[derive(Debug)]
pub enum CompiledMatcher {
    All(Vec<CompiledMatcher>),
    Any(Vec<CompiledMatcher>),
    Not(Box<CompiledMatcher>),
    Test {
        slot: usize,
        multi: bool,
        test: Test,
    },
    /// A field without a configured column never holds.
    Never,
}

#[derive(Debug)]
pub enum Test {
    Equals(String),
    In(Vec<String>),
    /// A `matches` pattern that is plain text, anchored or not (`^Store`, `Manager$`): compared
    /// as text, several times faster than running the regex for every record.
    StartsWith(String),
    EndsWith(String),
    Contains(String),
    Matches(Regex),
}

impl Test {
    fn holds(&self, value: &str) -> bool {
        match self {
            Test::Equals(expected) => value == expected,
            Test::In(values) => values.iter().any(|v| v == value),
            Test::StartsWith(text) => value.starts_with(text.as_str()),
            Test::EndsWith(text) => value.ends_with(text.as_str()),
            Test::Contains(text) => value.contains(text.as_str()),
            Test::Matches(regex) => regex.is_match(value),
        }
    }

    /// The test for a `matches` pattern: a text comparison when the pattern is plain text
    /// between an optional `^` and `$` (which, without flags, anchor at the value's start and
    /// end), the compiled regex otherwise; `None` for a pattern that does not compile.
    fn matching(pattern: &str) -> Option<Test> {
        let (from_start, rest) = match pattern.strip_prefix('^') {
            Some(rest) => (true, rest),
            None => (false, pattern),
        };
        let (to_end, text) = match rest.strip_suffix('$') {
            Some(text) => (true, text),
            None => (false, rest),
        };
        // Text that escaping leaves as it is has no metacharacter (an escaped `\$` included).
        if regex::escape(text) != text {
            return Regex::new(pattern).ok().map(Test::Matches);
        }
        let text = text.to_string();
        Some(match (from_start, to_end) {
            (true, true) => Test::Equals(text),
            (true, false) => Test::StartsWith(text),
            (false, true) => Test::EndsWith(text),
            (false, false) => Test::Contains(text),
        })
    }
}

impl CompiledMatcher {
    /// Config validation has already checked fields and regexes; anything left unresolvable never holds.
    pub fn compile(matcher: &Matcher, layout: &Layout) -> CompiledMatcher {
        let test = |field: &str, test: Test| match layout.slot_of(field) {
            Some(slot) => CompiledMatcher::Test {
                slot,
                multi: layout.fields[slot].is_multi_valued(),
                test,
            },
            None => CompiledMatcher::Never,
        };
        match matcher {
            Matcher::All { all } => {
                CompiledMatcher::All(all.iter().map(|m| Self::compile(m, layout)).collect())
            }
            Matcher::Any { any } => {
                CompiledMatcher::Any(any.iter().map(|m| Self::compile(m, layout)).collect())
            }
            Matcher::Not { not } => CompiledMatcher::Not(Box::new(Self::compile(not, layout))),
            Matcher::Equals { field, equals } => test(field, Test::Equals(equals.clone())),
            Matcher::In { field, values } => test(field, Test::In(values.clone())),
            Matcher::Matches { field, matches } => match Test::matching(matches) {
                Some(matching) => test(field, matching),
                None => CompiledMatcher::Never,
            },
        }
    }

    /// Adds the record slots this matcher reads to `slots` (each once).
    pub fn read_slots(&self, slots: &mut Vec<usize>) {
        match self {
            CompiledMatcher::All(list) | CompiledMatcher::Any(list) => {
                list.iter().for_each(|m| m.read_slots(slots));
            }
            CompiledMatcher::Not(m) => m.read_slots(slots),
            CompiledMatcher::Test { slot, .. } if !slots.contains(slot) => slots.push(*slot),
            CompiledMatcher::Test { .. } | CompiledMatcher::Never => {}
        }
    }

    pub fn holds(&self, record: &Record, separator: char) -> bool {
        match self {
            CompiledMatcher::All(list) => list.iter().all(|m| m.holds(record, separator)),
            CompiledMatcher::Any(list) => list.iter().any(|m| m.holds(record, separator)),
            CompiledMatcher::Not(m) => !m.holds(record, separator),
            CompiledMatcher::Test { slot, multi, test } => {
                let value = record.value(*slot);
                if *multi {
                    split_values(value, separator).any(|v| test.holds(v))
                } else {
                    test.holds(value)
                }
            }
            CompiledMatcher::Never => false,
        }
    }
}

/// The non-empty, trimmed values of a multi-valued cell.
pub fn split_values(value: &str, separator: char) -> impl Iterator<Item = &str> {
    value
        .split(separator)
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hr::{Layout, Records};

    fn layout() -> Layout {
        Layout::new(vec![
            (FieldName::Xid, "id".into()),
            (FieldName::JobTitle, "Functie".into()),
            (FieldName::Locations, "Vestiging".into()),
        ])
    }

    /// Whether `m` holds for a record of these values.
    fn holds(m: &CompiledMatcher, values: &[&str]) -> bool {
        let records = Records::from_rows(values.len(), [(2, values.to_vec())]);
        let record = records.iter().next().unwrap();
        m.holds(record, '|')
    }

    fn matcher(yaml_json: serde_json::Value) -> CompiledMatcher {
        let m: Matcher = serde_json::from_value(yaml_json).unwrap();
        CompiledMatcher::compile(&m, &layout())
    }

    #[test]
    fn equals_is_exact() {
        let m = matcher(serde_json::json!({"field": "job_title", "equals": "Store Manager"}));
        assert!(holds(&m, &["1", "Store Manager", ""]));
        assert!(!holds(&m, &["1", "store manager", ""]));
    }

    #[test]
    fn multi_valued_fields_hold_when_any_value_passes() {
        let m = matcher(serde_json::json!({"field": "locations", "in": ["ST002"]}));
        assert!(holds(&m, &["1", "x", "ST001| ST002"]));
        assert!(!holds(&m, &["1", "x", "ST001"]));
    }

    #[test]
    fn combinators_compose() {
        let m = matcher(serde_json::json!({"all": [
            {"field": "job_title", "matches": "(?i)manager"},
            {"not": {"field": "locations", "equals": "ST003"}}
        ]}));
        assert!(holds(&m, &["1", "Assistant Manager", "ST001"]));
        assert!(!holds(&m, &["1", "Assistant Manager", "ST003"]));
        assert!(!holds(&m, &["1", "Cashier", "ST001"]));
    }

    proptest::proptest! {
        /// A pattern of plain text is compared as text exactly where the regex would match.
        #[test]
        fn plain_text_patterns_match_as_the_regex_does(
            pattern in "\\^?[ab.$^\\\\é ]{0,4}\\$?",
            value in "[ab.$^\\\\é \n]{0,6}",
        ) {
            let Ok(regex) = Regex::new(&pattern) else {
                return Ok(());
            };
            let test = Test::matching(&pattern).expect("the pattern compiles");
            proptest::prop_assert_eq!(test.holds(&value), regex.is_match(&value), "{:?}", test);
        }
    }

    #[test]
    fn plain_text_patterns_become_text_comparisons() {
        let kind = |pattern| match Test::matching(pattern) {
            Some(Test::Equals(_)) => "equals",
            Some(Test::StartsWith(_)) => "starts",
            Some(Test::EndsWith(_)) => "ends",
            Some(Test::Contains(_)) => "contains",
            Some(Test::Matches(_)) => "regex",
            _ => "none",
        };
        assert_eq!(kind("^Store Manager$"), "equals");
        assert_eq!(kind("^Store"), "starts");
        assert_eq!(kind("Manager$"), "ends");
        assert_eq!(kind("Bakery"), "contains");
        assert_eq!(kind("(?i)manager"), "regex");
        assert_eq!(kind("Manager\\$"), "regex");
        assert_eq!(kind("a.b"), "regex");
        assert_eq!(kind("("), "none");
    }

    #[test]
    fn a_field_without_a_column_never_holds() {
        let m = matcher(serde_json::json!({"field": "phone", "equals": ""}));
        assert!(!holds(&m, &["1", "x", ""]));
    }
}
